"""The English names a page shows (``cityhub.localnames.EnglishNames``): by the Chinese text a page holds."""

from __future__ import annotations

from cityhub.localnames import EnglishNames, _agreed


def test_a_path_is_put_in_english_part_by_part_and_an_unknown_name_stays_as_it_is() -> None:
    names = EnglishNames(
        units={"景泰街道": "Jingtai Subdistrict"},
        paths={"城乡建设": "Urban-rural development", "城乡建设/住房保障": "Urban-rural development/住房保障"},
        categories={"城乡建设": "Urban-rural development", "其他": "Other"},
    )
    assert names.unit("景泰街道") == "Jingtai Subdistrict" and names.unit("京溪街道") == "京溪街道"
    assert names.category("城乡建设/住房保障") == "Urban-rural development/住房保障"
    assert names.category("其他") == "Other" and names.category("环境保护") == "环境保护"
    # A path the taxonomy no longer has (a renamed node): part by part by name.
    assert names.category("城乡建设/旧名/其他") == "Urban-rural development/旧名/Other"


def test_a_chinese_name_is_put_in_english_only_when_all_that_bear_it_agree() -> None:
    agreed = _agreed([("新村社区", "Xincun"), ("新村社区", None), ("其他", "Other"), ("其他", "Other"), ("甲", None)])
    assert agreed == {"其他": "Other"}


def test_a_risk_finding_names_its_category_and_place_in_the_readers_words() -> None:
    """What and where of a finding (``machine_text.finding_words``): "All appeals" standing alone after What, as
    "Whole district" after Where; a category and a place with English names in English, others in Chinese."""
    from datetime import date

    from cityhub.analytics.risk import Finding
    from cityhub.web.i18n import Translator
    from cityhub.web.machine_text import finding_words

    names = EnglishNames(
        units={"景泰街道": "Jingtai Subdistrict"}, paths={}, categories={"噪音污染": "Noise pollution"}
    )
    english = Translator("en", names=lambda: names)
    day = date(2026, 12, 1)
    every = Finding("anomaly", None, "district", None, day, date(2026, 12, 2), "count", 9.0, 9, 3.0, 3.0)
    assert finding_words(english, every)["what"] == "All appeals"
    assert finding_words(english, every)["where"] == "Whole district"
    noise = Finding("rising", "景泰街道", "street", "环境保护/环境污染/噪音污染", day, day, "rate", 2.0, 8, 4.0, 2.0)
    assert (finding_words(english, noise)["what"], finding_words(english, noise)["where"]) == (
        "Noise pollution",
        "Jingtai Subdistrict",
    )
    chinese = finding_words(Translator("zh-CN", names=lambda: names), noise)
    assert (chinese["what"], chinese["where"]) == ("噪音污染", "景泰街道")


def test_machine_written_reasons_name_their_units_in_the_readers_words() -> None:
    """A dispatch reason names its units by id (``rule #3 → unit 432``): an English reader reads the unit's English
    name where it has one, a Chinese reader the Chinese name."""
    from cityhub.web.i18n import Translator
    from cityhub.web.machine_text import explain

    names = EnglishNames(units={"区城管执法局": "Urban Management Bureau"}, paths={}, categories={})
    directory = {432: "区城管执法局", 7: "景泰街道"}
    english = Translator("en", names=lambda: names)
    assert explain(english, "rule #3 → unit 432", directory).endswith("Urban Management Bureau")
    assert explain(english, "rule #3 → unit 7", directory).endswith("景泰街道")
    assert explain(Translator("zh-CN", names=lambda: names), "rule #3 → unit 432", directory).endswith("区城管执法局")
