"""The dispatcher's and the intake's machine-written reasons, as the web pages show them: in Chinese, with unit names.

The reasons come from the real producers (``dispatch.rules``), so a change of their wording that the web's
catalogue does not follow fails here instead of showing English in the Chinese UI.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from cityhub.dispatch import rules
from cityhub.dispatch.rules import RuleTier, TargetKind
from cityhub.nlp.reply_quality import FINDING_FIGURES
from cityhub.web.i18n import Translator
from cityhub.web.machine_text import explain

ZH = Translator("zh-CN")
NAMES = {432: "区城管执法局", 7: "景泰街道", 8: "京溪街道"}
NOW = datetime(2026, 12, 1, tzinfo=UTC)
# English words of the machine forms: none may be left once explained.
ENGLISH = re.compile(r"\b(rule|unit|category|threshold|priority|keywords|place|returned|ambiguous|also|if)\b")


def _candidates() -> list[rules.Candidate]:
    facts = rules.OrderFacts(
        text="景泰街道路灯坏了",
        now=NOW,
        category_chain=(5, 1),
        category_label="城乡建设",
        place_chain=(7, 1),
        street_id=7,
    )
    found = rules.match(
        [
            rules.Rule(
                1, "职责 区城管执法局", RuleTier.DEPARTMENT, target_unit_id=432, keywords=("路灯",), category_id=5
            ),
            rules.Rule(2, "城乡建设 → 本街道", RuleTier.STREET, TargetKind.LOCAL_STREET, place_unit_id=1),
            rules.Rule(3, "路灯 → 城管", RuleTier.DEPARTMENT, target_unit_id=432, keywords=("路灯",)),
        ],
        facts,
    )
    assert len(found) == 2
    # The department is suggested only under the second reading of the category.
    street_only = [c for c in found if c.unit_id == 7]
    return rules.combine([rules.Hypothesis("城乡建设", 0.7, street_only), rules.Hypothesis("环境保护", 0.3, found)])


def test_every_suggestion_reason_is_explained_with_unit_names() -> None:
    for candidate in _candidates():
        text = explain(ZH, "; ".join(candidate.reasons), NAMES)
        assert not ENGLISH.search(text), text
    by_unit = {c.unit_id: explain(ZH, "; ".join(c.reasons), NAMES) for c in _candidates()}
    assert "规则 #1「职责 区城管执法局」→ 区城管执法局（职能部门，大事不出区，优先级 50）" in by_unit[432]
    assert "关键词：路灯" in by_unit[432] and "另有规则 #3「路灯 → 城管」" in by_unit[432]
    assert "若分类为「环境保护」（概率 0.30）" in by_unit[432]  # a unit of the second reading only
    assert by_unit[7].startswith("规则 #2「城乡建设 → 本街道」→ 工单所在街道（镇街，中事不出镇，优先级 50）；属地：#1")
    # In English the tier is named as the English rules page names it, without the Chinese motto beside it.
    english = explain(Translator("en"), "; ".join(_candidates()[0].reasons), NAMES)
    assert english.startswith("rule #2 “城乡建设 → 本街道” → the order's own street (Street/town, priority 50)")


def test_a_community_rule_sent_to_the_street_says_the_community_was_not_known() -> None:
    facts = rules.OrderFacts(text="邻里纠纷", now=NOW, place_chain=(7, 1), street_id=7)
    local = rules.Rule(4, "邻里纠纷 → 本社区", RuleTier.COMMUNITY, TargetKind.LOCAL_COMMUNITY, keywords=("邻里",))
    (candidate,) = rules.match([local], facts)
    text = explain(ZH, "; ".join(candidate.reasons), NAMES)
    assert text.startswith("规则 #4「邻里纠纷 → 本社区」→ 工单所在街道（未识别到社区）（镇街，中事不出镇，优先级 50）")
    assert not ENGLISH.search(text), text


def test_the_keywords_a_rule_matched_are_listed_in_the_readers_language() -> None:
    # The dispatcher lists them with 、: an English reader read "keywords: 医保、异地就医", a Chinese comma in English.
    reason = "; ".join(
        rules.match(
            [rules.Rule(1, "职责 区医保局", RuleTier.DEPARTMENT, target_unit_id=432, keywords=("医保", "异地就医"))],
            rules.OrderFacts(
                text="异地就医医保报销", now=NOW, category_chain=(), category_label=None, place_chain=(), street_id=None
            ),
        )[0].reasons
    )
    assert "keywords 医保、异地就医" in reason
    assert "keywords: 医保, 异地就医" in explain(Translator("en"), reason, NAMES)
    assert "关键词：医保、异地就医" in explain(ZH, reason, NAMES)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"candidates": []},
        {"candidates": [], "returned": True},
        {"returned": True},
        {"tie": True},
        {"category_from_intake": True},
        {"probability": 0.95},
        {"probability": 0.5},
        {"probability": 0.99, "evidence": 1, "min_evidence": 3},
        {"has_model": False},
        {"has_model": False, "rule_auto_priority": 99},
        {"has_model": False, "model_unavailable": True},
        {"category_label": None, "probability": None},
    ],
    ids=str,
)
def test_every_decision_reason_is_explained(kwargs: dict[str, object]) -> None:
    candidates = _candidates()
    if kwargs.pop("tie", False):
        candidates = [candidates[0], rules.Candidate(**{**candidates[0].__dict__, "unit_id": 8, "rule_id": 9})]
    args: dict[str, object] = {
        "candidates": candidates,
        "probability": 0.9,
        "threshold": 0.9,
        "category_label": "城乡建设",
        "category_from_intake": False,
        "has_model": True,
        "rule_auto_priority": 40,
        **kwargs,
    }
    reason = rules.decide(**args).reason  # type: ignore[arg-type]
    text = explain(ZH, reason, NAMES)
    assert text != reason and not ENGLISH.search(text), (reason, text)


def test_intake_and_placing_reasons_and_a_persons_own_words() -> None:
    assert explain(ZH, "auto-merge: duplicate of BY20261201-000008, score 1.00") == (
        "自动合并：与工单 BY20261201-000008 重复（相似度 1.00）"
    )
    assert explain(ZH, "monitoring: responsible unit of sensor WL-001") == "监测报警：派至监测点 WL-001 的责任单位"
    twin = rules.possible_duplicate("BY20261201-000008", 0.7412)
    assert explain(ZH, f"{twin}; rule #3 → unit 432", NAMES) == (
        "可能与未办结的工单 BY20261201-000008 重复（相似度 0.74，地点相符），请合并或人工派单；规则 #3 → 区城管执法局"
    )
    assert explain(ZH, "category set by the classifier: 城乡建设/物业服务; place found from the address: 嘉禾街道") == (
        "按分类模型补填分类：城乡建设/物业服务；按地址识别：嘉禾街道"
    )
    assert explain(ZH, "place set to 石井街道 (street only)") == "属地更正为 石井街道（仅街道）"
    # A person's dispatch to a suggested unit (dispatch.service.hand_dispatch_reading, from workorders.service.act).
    assert explain(ZH, "category set at dispatch: 城乡建设 (the classifier's reading of the suggestion chosen)") == (
        "派单时选用了系统建议，按其分类判断记为：城乡建设"
    )
    # A place a dispatcher confirmed while teaching the address library (dispatch.service.correct_place).
    taught = "place confirmed as 石井街道 (street only); place aliases of 石井街道 taught: 石井大道, 石井桥"
    assert explain(ZH, taught) == "属地确认为 石井街道（仅街道）；记为石井街道的地名别名：石井大道、石井桥"
    assert explain(Translator("en"), taught) == (
        "place confirmed as 石井街道 (street only); taught as place aliases of 石井街道: 石井大道, 石井桥"
    )
    # A knowledge entry an import created or changed, as the configuration log keeps its reason.
    from cityhub.knowledge.service import IMPORTED_FROM

    imported = IMPORTED_FROM.format(name="知识库 2026.csv")
    assert explain(ZH, imported) == "由 知识库 2026.csv 导入"
    assert explain(Translator("en"), imported) == "imported from 知识库 2026.csv"
    # A category a dispatcher (or an instant answer's knowledge entry) set, as the services write it.
    assert explain(ZH, "category set to 城乡建设/供水") == "分类更正为 城乡建设/供水"
    assert explain(ZH, "place found from the text: 稻香街道 / 桂花社区") == "按正文识别：稻香街道 / 桂花社区"
    # The reply check's findings keep their explanation, without the code.
    from cityhub.nlp.reply_quality import score_reply

    quality = score_reply("路灯不亮", "景泰街道云景路路灯不亮，请维修并说明时间", "您好，收悉，谢谢。")
    assert quality.reasons and any("_" in r.split(":")[0] for r in quality.reasons)
    finding = explain(ZH, "答复质量偏弱，请督办员审核：" + "; ".join(quality.reasons))
    assert finding.startswith("答复质量偏弱，请督办员审核：") and not re.search(r"[a-z]_[a-z]|\bempty\b", finding)
    # Every finding in the reader's language, its figures in it, in the language's own brackets.
    stored = [
        "low_overall: 综合得分 0.31 低于 0.45",
        "unrelated: 答复与诉求关联度低 (0.08)",
        "incomplete: 诉求 3 个要点中约 1.5 个得到回应",
        "no_basis: 未说明政策依据或核查事实",
        "late: 答复用时 12.5 个工作日",
    ]
    note = "答复质量偏弱，请督办员审核：" + "; ".join(stored)
    assert explain(ZH, note) == (
        "答复质量偏弱，请督办员审核：综合得分 0.31 低于 0.45；答复与诉求关联度低（0.08）；"
        "诉求 3 个要点中约 1.5 个得到回应；未说明政策依据或核查事实；答复用时 12.5 个工作日"
    )
    english = explain(Translator("en"), note)
    assert english.startswith("Weak reply, for a supervisor to review: Overall score 0.31, below 0.45")
    assert (
        "The reply has little to do with the appeal (0.08)" in english
        and "About 1.5 of the appeal's 3 points" in english
    )
    assert not re.search(r"[\u4e00-\u9fff]", english)
    # What every code the scorer writes says, in both languages (a code without a message would show its key).
    for code in FINDING_FIGURES:
        for lang in ("zh-CN", "en"):
            assert (
                Translator(lang)(
                    f"why.reply.{code}",
                    score="0.1",
                    points="2",
                    addressed="1",
                    days="9",
                    overall="0.2",
                    threshold="0.4",
                )
                != f"why.reply.{code}"
            )
    # A finding whose figures cannot be read back (an older wording) is shown as it was stored.
    assert explain(ZH, "late: 答复很慢") == "答复很慢"
    # A person's reason is shown as written, its punctuation too.
    assert explain(ZH, "来电核实; 市民已确认地址") == "来电核实; 市民已确认地址"
    assert explain(ZH, None) == "" and explain(ZH, "") == ""


def test_what_an_alarm_writes_reads_in_the_readers_language_and_its_older_chinese_text_as_written() -> None:
    """An alarm's comments on its order and the notes of its trail (``monitoring.service``) are fixed English forms:
    the English UI showed the Chinese they were written in before."""
    en = Translator("en")
    ack = "alarm #7 acknowledged by system at 2026-12-04 10:05; note: sensor retired: 道路改造"
    assert explain(ZH, ack) == "监测报警 #7 已确认：系统，2026-12-04 10:05；说明：监测点停用：道路改造"
    assert explain(en, ack) == "alarm #7 acknowledged by System at 2026-12-04 10:05; note: sensor retired: 道路改造"
    again = 'sensor "桂花路隧道" alarmed again (alarm #8) at 2026-12-04 10:05: depth 32.5cm >= limit 20cm'
    assert (
        explain(ZH, again)
        == "监测点“桂花路隧道”再次报警（监测报警 #8）：2026-12-04 10:05 积水深度 32.5cm，达到限值 20cm"
    )
    assert explain(en, again + "; snapshot: https://v.example/1.jpg").endswith(
        "Water depth 32.5cm, at the limit of 20cm; snapshot: https://v.example/1.jpg"
    )
    assert explain(en, "sensor silent: no reading within 1 min of its registration") == (
        "sensor silent: no reading within 1 minute of its registration"
    )
    assert explain(ZH, "readings back within the limit") == "监测值已回到限值以内"
    # A person's note is theirs, whatever it holds.
    assert explain(ZH, "alarm #9 cleared by 值班员 at 2026-12-04 10:05; note: 已排水") == (
        "监测报警 #9 已解除：值班员，2026-12-04 10:05；说明：已排水"
    )
    older = "监测报警 #7 已确认：值班员，2026-12-04 10:05。说明：已到场"
    assert explain(ZH, older) == older == explain(en, older)
