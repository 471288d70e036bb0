"""The analysis report's languages: one catalogue each, alike in keys and placeholders, and the names it borrows."""

from __future__ import annotations

from string import Formatter

import pytest

from cityhub.analytics import kpi, reports
from cityhub.errors import ValidationFailed
from cityhub.web import i18n


def _placeholders(text: str) -> set[str]:
    counted = {m.group(1) for m in i18n.PLURAL.finditer(text)}
    plain = {name for _, name, _, _ in Formatter().parse(i18n.PLURAL.sub("", text)) if name}
    assert counted <= plain, (text, counted - plain)  # a word agrees with a count the message says
    return plain


@pytest.mark.parametrize("lang", [lang for lang in reports.LANGUAGES if lang != "zh"])
def test_every_language_says_what_chinese_says_with_the_same_placeholders(lang):
    chinese, other = reports.LABELS["zh"], reports.LABELS[lang]
    assert set(other) == set(chinese)
    assert {k: _placeholders(v) for k, v in other.items()} == {k: _placeholders(v) for k, v in chinese.items()}
    assert len(other["numerals"]) >= len(reports.SECTIONS)


def test_a_count_agrees_with_its_noun_in_english():
    assert reports.say("en", "insufficient", min=1) == "Sample too small (fewer than 1 order)"
    assert reports.say("en", "insufficient", min=30) == "Sample too small (fewer than 30 orders)"
    assert reports.say("zh", "insufficient", min=30) == "样本不足（少于30件）"
    assert reports.headings("en")["findings"] == "9. Findings" and reports.headings("zh")["summary"] == "一、总体情况"
    # Numbered among the sections a report has: without 企业诉求 (a period without enterprise appeals), one fewer.
    without = tuple(key for key in reports.SECTIONS if key != "enterprise")
    assert reports.headings("en", without)["findings"] == "8. Findings" and "enterprise" not in reports.headings(
        "en", without
    )


def test_the_report_language_is_zh_or_en_and_the_web_uis_chinese_is_zh():
    assert [reports.report_language(v) for v in ("zh", "en", "zh-CN", "EN", " en ")] == ["zh", "en", "zh", "en", "en"]
    assert {reports.report_language(ui) for ui in i18n.LANGUAGES} == set(reports.LANGUAGES)
    for wrong in ("fr", "", "english", "zh-TW"):
        with pytest.raises(ValidationFailed) as refused:
            reports.report_language(wrong)
        assert refused.value.details == {"field": "lang"} and "zh or en" in refused.value.message


def test_the_report_names_kpis_and_tiers_as_the_web_ui_does():
    for lang, ui in reports.UI_LANGUAGES.items():
        assert [k.label(lang) for k in kpi.KPIS] == [i18n.translate(ui, f"kpi.{k.name}") for k in kpi.KPIS]
    assert reports.tier_name("street") == "镇街" and reports.tier_name("department", "en") == "Department"
    # Named as the web UI's topic pages name them, in either language.
    assert reports.topic_status("rising", "en") == "Rising" and reports.topic_status("dormant") == "平息"
