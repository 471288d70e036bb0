"""Analysis reports (专报): a weekly or monthly statistical report with charts, to HTML, PDF and Excel.

:func:`build_report` gathers the figures of one period (volumes by day, top categories and streets, the enterprise
appeals by need when there are any (:func:`enterprise_needs`), KPIs and rankings from :mod:`cityhub.analytics.kpi`,
hot topics, findings against the previous period);
:func:`render_html` fills the Jinja2 template ``templates/report.html.j2`` (self-contained: charts are
embedded as base64 PNG, no external resources); :func:`render_pdf` prints that HTML with WeasyPrint;
:func:`write_xlsx` writes the tables with openpyxl.

The report is written in Simplified Chinese (``zh``, the default) or English (``en``, :data:`LANGUAGES`;
:func:`report_language` reads a language as the command line and the API are given it, the web UI's ``zh-CN``
too). Every visible word of the HTML/PDF, the charts and the workbook comes from :data:`LABELS` (one catalogue per
language; ``{n|one|other}`` is the word agreeing with the count ``n``, as in the web UI's catalogues), except the
names the product keeps in one place of their own: a KPI's (``kpi.KpiDef.label``) and a unit tier's (the web UI's
catalogue, ``tier.*``). What the data holds — the district's, units' and categories' names, a hot topic's title,
key phrases, places and groups — is shown as it is.

Charts are drawn locally with matplotlib. Chinese needs a CJK font: :func:`find_cjk_font` looks for Noto
Sans/Serif CJK, WenQuanYi or Source Han (Debian: ``fonts-noto-cjk`` or ``fonts-wqy-zenhei``); without one the
charts are still drawn and a warning is logged (labels may show as boxes).
"""

from __future__ import annotations

import base64
import io
import logging
import threading
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from cityhub.analytics import kpi
from cityhub.config import get_settings
from cityhub.formatting import percent
from cityhub.intake import enterprise
from cityhub.localnames import english_names
from cityhub.org.models import Unit, UnitTier
from cityhub.web.i18n import Translator, count_text, decimal_text, filled, translate, word_marks
from cityhub.web.theme import color_scheme
from cityhub.workorders.lifecycle import CLOSED_STATES, NOT_A_PROBLEM_OF_ITS_OWN, State
from cityhub.workorders.models import Category, Order

if TYPE_CHECKING:
    from cityhub.auth.principal import Principal
    from cityhub.dispatch.outcomes import DispatchOutcomes

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).parent / "templates"
TEMPLATE = "report.html.j2"
FORMATS = ("html", "pdf", "xlsx")

LANGUAGES = ("zh", "en")
# The web UI's language of each report language (``cityhub.web.i18n.LANGUAGES``): the HTML's ``lang``, the
# catalogue the report borrows a unit tier's name from, and how a UI language names the report's.
UI_LANGUAGES = {"zh": "zh-CN", "en": "en"}
# The report's sections in their order, numbered as the language numbers them (``numerals``, ``numbered``).
# ``enterprise`` (企业诉求) only when the period has enterprise appeals (:attr:`ReportData.sections`).
SECTIONS = (
    "summary",
    "volumes",
    "categories",
    "streets",
    "enterprise",
    "kpis",
    "rankings",
    "hot_topics",
    "findings",
)

LABELS: dict[str, dict[str, str]] = {
    "zh": {
        "title_month": "{district}12345热线及城市运行月度专报（{period}）",
        "title_week": "{district}12345热线及城市运行周报（{period}）",
        "title_other": "{district}12345热线及城市运行专报（{period}）",
        "numerals": "一二三四五六七八九",
        "numbered": "{n}、{title}",
        "colon": "：",
        "sep": "、",
        "list_sep": "，",
        "gap": "　",
        "pieces": "件",
        "to": "至",
        "lower_better": "（越低越好）",
        "generated": "生成时间",
        "period": "统计周期",
        "summary": "总体情况",
        "total": "受理工单",
        "valid": "有效工单",
        "valid_note": "不含重复并单 {merged} 件、作废 {cancelled} 件",
        "previous": "上期",
        "change": "环比",
        "daily_avg": "日均",
        "auto_share": "自动派单率",
        "auto_note": "首次派单 {total} 件；自动派单准确率 {auto}，人工派单 {manual}（首个承办单位未退回、未改派）",
        "under_way": (
            "本期尚未结束：统计至 {through}，日均按已过 {days} 天计，上期取同样天数（{first} 至 {last}）比较。"
        ),
        "volumes": "每日受理量",
        "categories": "诉求类别排行",
        "streets": "镇街诉求量排行",
        "kpis": "考核指标（镇街）",
        "rankings": "综合考核排名",
        "hot_topics": "热点问题",
        "findings": "分析发现",
        "rank": "排名",
        "category": "类别",
        "street": "镇街",
        "unit": "单位",
        "count": "件数",
        "share": "占比",
        "day": "日期",
        "n": "样本量",
        "score": "综合得分",
        "insufficient": "样本不足（少于{min}件）",
        "topic": "热点问题",
        "heat": "热度",
        "heat_level": "热度等级",
        "places": "涉及地点",
        "streets_count": "{n} 个镇街",
        "no_topics": "本期无热点问题数据。",
        "finding": "{street}「{category}」类诉求 {now} 件，较上期 {earlier} 件增加 {delta} 件（{pct}）。",
        "no_findings": "本期各镇街、各类别诉求量无明显增长。",
        "method": "说明：考核指标按工单审计轨迹计算，各指标所计见上文“指标说明”；排名要求样本量不少于 {min} 件。",
        "exempted": "核减工单",
        "exempted_note": (
            "考核核减：本期经批准的核减申请使全区 {n} 件工单的相关考核数据未计入"
            "（“核减工单”列为各街镇的件数，含所辖社区）；上表各项指标的分子和分母均已剔除这些数据，与原始件数核对时请加回。"
        ),
        "exempted_total": "全区核减工单合计",
        "definitions": "指标说明",
        "kpi": "指标",
        "code": "代码",
        "numerator": "分子（计入达标的）",
        "denominator": "分母（计入统计的）",
        "direction": "方向",
        "higher": "越高越好",
        "lower": "越低越好",
        "weight": "权重",
        "hot_fallback": "（尚未进行热点挖掘，以下为按标题聚合的简易统计；运行热点挖掘后显示热点问题）",
        "period_count": "本期件数",
        "size": "累计件数",
        "span": "本期起止",
        "groups": "涉及人群",
        "label": "关键词",
        "status": "状态",
        "new_topic": "新",
        "weights": "综合得分权重",
        "new": "新增",
        "tier": "层级",
        "topic_id": "热点编号",
        "delta": "增加件数",
        "numerator_of": "{kpi}分子",
        "denominator_of": "{kpi}分母",
        "enterprise": "企业诉求（按诉求领域）",
        "need": "诉求领域",
        "need_unnamed": "未填诉求领域",
        "share_numerator": "{share}分子",
        "share_denominator": "{share}分母",
        "received": "受理件数",
        "open": "在办",
        "closed": "已办结",
        "resolution": "解决率",
        "on_time": "按时答复率",
        "satisfaction": "满意率",
        "enterprise_note": (
            "企业呼渠道及热线等渠道中以企业身份反映的诉求，按受理时间计入本期；解决率为已办结中已解决的比例，"
            "按时答复率为已答复中未曾超期的比例，满意率为已回访中满意的比例。"
        ),
    },
    "en": {
        "title_month": "{district} 12345 hotline and city operations: monthly report ({period})",
        "title_week": "{district} 12345 hotline and city operations: weekly report ({period})",
        "title_other": "{district} 12345 hotline and city operations: report ({period})",
        "numerals": "123456789",
        "numbered": "{n}. {title}",
        "colon": ": ",
        "sep": ", ",
        "list_sep": ", ",
        "gap": " · ",
        "pieces": "",
        "to": "to",
        "lower_better": " (lower is better)",
        "generated": "Generated",
        "period": "Period",
        "summary": "Overview",
        "total": "Orders received",
        "valid": "Valid orders",
        "valid_note": (
            "excluding {merged} merged {merged|duplicate|duplicates} and {cancelled} cancelled {cancelled|call|calls}"
        ),
        "previous": "Previous period",
        "change": "Change",
        "daily_avg": "Daily average",
        "auto_share": "Dispatched automatically",
        "auto_note": (
            "{total} first {total|dispatch|dispatches}; kept by the first unit (not returned, not re-dispatched): "
            "{auto} of the automatic, {manual} of the manual"
        ),
        "under_way": (
            "The period is not over: counted through {through}; the daily average is over the {days} "
            "{days|day|days} gone, compared with as many days of the previous period ({first} to {last})."
        ),
        "volumes": "Orders received per day",
        "categories": "Top categories of appeal",
        "streets": "Appeals by street and town",
        "kpis": "Assessment (streets and towns)",
        "rankings": "Overall ranking",
        "hot_topics": "Hot topics",
        "findings": "Findings",
        "rank": "Rank",
        "category": "Category",
        "street": "Street/town",
        "unit": "Unit",
        "count": "Orders",
        "share": "Share",
        "day": "Date",
        "n": "Sample",
        "score": "Score",
        "insufficient": "Sample too small (fewer than {min} {min|order|orders})",
        "topic": "Hot topic",
        "heat": "Heat",
        "heat_level": "Heat rank",
        "places": "Places",
        "streets_count": "{n} {n|street or town|streets and towns}",
        "no_topics": "No hot topics this period.",
        "finding": (
            "{street}, {category}: {now} {now|appeal|appeals}, up {delta} from {earlier} in the previous period "
            "({pct})."
        ),
        "no_findings": "No category of appeal grew markedly in any street or town this period.",
        "method": (
            "Note: the assessment figures are computed from the orders' audit trail, each as the definitions above "
            "say; a unit is ranked on a sample of at least {min} {min|order|orders}."
        ),
        "exempted": "Exempted orders",
        "exempted_note": (
            "Assessment exemptions: approved exemption requests left the facts of {n} {n|order|orders} of the district "
            "out of this period's figures (the column Exempted orders gives each street's or town's, its communities' "
            "included); no numerator or denominator above counts them: add them back to reconcile with raw counts."
        ),
        "exempted_total": "Exempted orders, whole district",
        "definitions": "What each figure counts",
        "kpi": "Figure",
        "code": "Code",
        "numerator": "Numerator (what counts as met)",
        "denominator": "Denominator (what is counted)",
        "direction": "Direction",
        "higher": "higher is better",
        "lower": "lower is better",
        "weight": "Weight",
        "hot_fallback": (
            "(Hot topics have not been mined yet: below, orders grouped by identical title; the hot topics show "
            "once they are mined.)"
        ),
        "period_count": "Orders this period",
        "size": "Orders in all",
        "span": "First and last day",
        "groups": "Groups affected",
        "label": "Key phrases",
        "status": "Status",
        "new_topic": "new",
        "weights": "Weights of the score",
        "new": "new",
        "tier": "Tier",
        "topic_id": "Topic no.",
        "delta": "Increase",
        "numerator_of": "{kpi}: numerator",
        "denominator_of": "{kpi}: denominator",
        "enterprise": "Enterprise appeals by need",
        "need": "Need",
        "need_unnamed": "Need not given",
        "share_numerator": "{share}: numerator",
        "share_denominator": "{share}: denominator",
        "received": "Received",
        "open": "Open",
        "closed": "Closed",
        "resolution": "Resolved",
        "on_time": "Answered on time",
        "satisfaction": "Satisfied",
        "enterprise_note": (
            "Appeals made on behalf of an enterprise, on the enterprise channel or any other, counted in the period "
            "they were received; resolved: of those closed; answered on time: of those answered, never past a time "
            "limit; satisfied: of those called back."
        ),
    },
}


def ui_language(lang: str) -> str:
    """The web UI's language of the report's ``lang`` (zh-CN for one it does not know)."""
    return UI_LANGUAGES.get(lang, "zh-CN")


def report_language(value: str) -> str:
    """The report's language (:data:`LANGUAGES`) that ``value`` names: ``zh`` or ``en``, or a web UI language
    (``zh-CN``, :data:`UI_LANGUAGES`); ValidationFailed naming the field ``lang`` otherwise."""
    named = {code.lower(): lang for lang, code in UI_LANGUAGES.items()} | {lang: lang for lang in LANGUAGES}
    lang = named.get(value.strip().lower())
    if lang is None:
        from cityhub.errors import ValidationFailed

        raise ValidationFailed(
            f"the report's language must be zh or en (zh-CN is zh), not {value!r}", details={"field": "lang"}
        )
    return lang


def labels(lang: str = "zh") -> dict[str, str]:
    """The catalogue of ``lang`` (zh for a language without one)."""
    return LABELS.get(lang, LABELS["zh"])


def say(lang: str, key: str, **params: Any) -> str:
    """The label ``key`` of ``lang`` with ``params`` filled in as the web UI fills its messages (``i18n.filled``): its
    words agreeing with their counts, each count (``i18n.COUNT_PARAMS``) grouped as the language writes it (3,006)."""
    return filled(ui_language(lang), labels(lang)[key], params)


def count(value: Any, lang: str = "zh") -> Any:
    """A figure standing alone (a card's, a table cell's) grouped as ``lang`` writes counts (``i18n.count_text``:
    3,006); anything but a whole number as it is. The workbook keeps its figures numbers."""
    return count_text(ui_language(lang), value)


def decimal(value: Any, lang: str = "zh", digits: int = 1) -> Any:
    """A figure with decimals (the daily average) grouped as ``lang`` groups counts (``i18n.decimal_text``:
    1,234.5)."""
    return decimal_text(ui_language(lang), value, digits)


def headings(lang: str = "zh", sections: tuple[str, ...] = SECTIONS) -> dict[str, str]:
    """Each section's heading, numbered (一、总体情况 / 1. Overview) among ``sections``, those the report has."""
    lab = labels(lang)
    return {key: lab["numbered"].format(n=lab["numerals"][i], title=lab[key]) for i, key in enumerate(sections)}


def need_name(need: str | None, lang: str = "zh") -> str:
    """An enterprise appeal's need (``intake.enterprise.NEEDS``) as the web UI names it in ``lang`` (用电, Power);
    None — an appeal that names no need — as the report says it."""
    if need is None:
        return labels(lang)["need_unnamed"]
    return translate(ui_language(lang), f"enterprise_need.{need}", need)


def phrases(label: str | None, lang: str = "zh") -> str | None:
    """A hot topic's key phrases as the web UI lists them in ``lang`` (限值、报警、责任; 限值, 报警, 责任)."""
    return Translator(ui_language(lang)).listed(label)


def heat_words(row: Mapping[str, Any], lang: str = "zh") -> Any:
    """A hot topic's heat as the topic pages word it in ``lang`` (``topic_views.heat_words``: 很高 · 第 3, and the
    sentence with its figure), None for a row without a heat."""
    from cityhub.analytics import topic_views

    return topic_views.heat_words(ui_language(lang), row)


def tier_name(tier: str, lang: str = "zh") -> str:
    """A unit tier as the web UI names it in ``lang`` (镇街, Street/town)."""
    return translate(ui_language(lang), f"tier.{tier}", tier)


def topic_status(status: Any, lang: str = "zh") -> Any:
    """A hot topic's status (active, rising, dormant, new) as the web UI's topic pages name it in ``lang`` (持续,
    Rising); another value as it is."""
    return translate(ui_language(lang), f"brain.topics.status.{status}", status)


def left_out(by_state: Mapping[Any, int]) -> dict[str, int]:
    """Of counts by state, what 有效工单 leaves out of 受理工单: ``{"merged": n, "cancelled": n}``
    (``lifecycle.NOT_A_PROBLEM_OF_ITS_OWN``)."""
    return {state.value: by_state.get(state, 0) for state in NOT_A_PROBLEM_OF_ITS_OWN}


# --- data -------------------------------------------------------------------------------------------------


@dataclass
class ReportData:
    period: kpi.Period
    previous: kpi.Period
    generated_at: datetime
    district: str
    total: int
    previous_total: int
    daily: list[tuple[str, int]]
    categories: list[dict[str, Any]]
    streets: list[dict[str, Any]]
    kpis: list[kpi.UnitKpis]
    rankings: dict[str, kpi.Ranking]
    hot_topics: list[dict[str, Any]]
    hot_topics_fallback: bool
    findings: list[dict[str, Any]]
    min_sample: int
    charts: dict[str, str] = field(default_factory=dict)  # name → data: URI
    # The last local day counted when the period is not over yet (daily figures stop there, and the previous
    # period is compared over as many days from its start); None for a period that has ended.
    through: date | None = None
    # Of ``total``: duplicates merged into another order and calls cancelled as invalid (``NOT_A_PROBLEM_OF_ITS_OWN``).
    merged: int = 0
    cancelled: int = 0
    # How dispatch did (派单成效, ``cityhub.dispatch.outcomes``): the period's first dispatches, the share sent
    # automatically and what the first unit kept.
    dispatch: DispatchOutcomes | None = None
    # 企业诉求: the period's enterprise appeals by need (:func:`enterprise_needs`); none, no such section.
    enterprise: list[NeedFigures] = field(default_factory=list)
    # 考核核减: the orders whose facts approved exemptions left out of the period's figures, any unit's, each once.
    exempted_orders: int = 0

    @property
    def sections(self) -> tuple[str, ...]:
        """The report's sections (:data:`SECTIONS`), without 企业诉求 when the period has no enterprise appeal."""
        return tuple(key for key in SECTIONS if key != "enterprise" or self.enterprise)

    @property
    def valid(self) -> int:
        """有效工单: ``total`` without merged duplicates and cancelled calls."""
        return self.total - self.merged - self.cancelled

    @property
    def generated_local(self) -> str:
        """When the report was made, in the district's time zone, as its readers' clocks say."""
        return f"{self.generated_at.astimezone(get_settings().tz):%Y-%m-%d %H:%M %Z}"


def _in_period(period: kpi.Period) -> Any:
    return (Order.created_at >= period.start, Order.created_at < period.end)


def _count(session: Session, period: kpi.Period) -> int:
    return int(session.scalar(select(func.count()).select_from(Order).where(*_in_period(period))) or 0)


def _daily(session: Session, period: kpi.Period) -> list[tuple[str, int]]:
    # Bucketing by local day is done here: SQL date functions and time zones differ between the backends.
    tz = get_settings().tz
    counts: Counter[str] = Counter()
    for (created,) in session.execute(select(Order.created_at).where(*_in_period(period))):
        counts[created.astimezone(tz).date().isoformat()] += 1
    return [(d.isoformat(), counts.get(d.isoformat(), 0)) for d in period.local_days()]


def _category_names(session: Session) -> dict[int, str]:
    return {cid: path for cid, path in session.execute(select(Category.id, Category.path))}


def _unit_names(session: Session) -> dict[int, str]:
    return {uid: name for uid, name in session.execute(select(Unit.id, Unit.name))}


def _names(session: Session, lang: str) -> tuple[dict[int, str], dict[int, str]]:
    """The categories' paths and the units' names by id as the report in ``lang`` names them: an English report as
    the English pages do (:mod:`cityhub.localnames`: a name entered, a place's pinyin, else the Chinese name)."""
    cats, units = _category_names(session), _unit_names(session)
    if ui_language(lang) != "en":
        return cats, units
    english = english_names(session)
    return (
        {cid: english.category(path) for cid, path in cats.items()},
        {uid: english.unit(name) for uid, name in units.items()},
    )


def _grouped(session: Session, period: kpi.Period, *columns: Any) -> list[tuple[Any, ...]]:
    return [
        tuple(r) for r in session.execute(select(*columns, func.count()).where(*_in_period(period)).group_by(*columns))
    ]


def _top(rows: list[tuple[Any, int]], names: dict[int, str], total: int, k: int) -> list[dict[str, Any]]:
    rows = sorted(((key, n) for key, n in rows if key is not None), key=lambda t: (-t[1], names.get(t[0], "")))
    return [
        {"rank": i, "name": names.get(key, str(key)), "count": n, "share": n / total if total else 0.0}
        for i, (key, n) in enumerate(rows[:k], start=1)
    ]


def findings(
    session: Session,
    *,
    period: kpi.Period,
    previous: kpi.Period,
    k: int = 8,
    min_count: int = 5,
    lang: str = "zh",
) -> list[dict[str, Any]]:
    """The largest increases of category × street against the previous period (absolute, then relative), the
    categories and streets named as the report in ``lang`` names them."""
    now = {(c, s): n for c, s, n in _grouped(session, period, Order.category_id, Order.street_id)}
    before = {(c, s): n for c, s, n in _grouped(session, previous, Order.category_id, Order.street_id)}
    cats, units = _names(session, lang)
    rows = []
    for (c, s), n in now.items():
        if c is None or s is None or n < min_count:
            continue
        b = before.get((c, s), 0)
        if n > b:
            rows.append(
                {
                    "category": cats.get(c, str(c)).split("/")[-1],
                    "category_path": cats.get(c, str(c)),
                    "street": units.get(s, str(s)),
                    "now": n,
                    "before": b,
                    "delta": n - b,
                    "growth": (n - b) / b if b else None,
                }
            )
    rows.sort(key=lambda r: (-r["delta"], -(r["growth"] or 1e9), r["street"], r["category"]))
    return rows[:k]


@dataclass(frozen=True)
class NeedFigures:
    """The enterprise appeals (企业呼, ``intake.enterprise``) of one need received in a period, and what became of
    them so far: open, closed (of which resolved), answered (of which on time: never past a time limit, nor replied
    after it), called back (of which satisfied)."""

    need: str | None  # of ``intake.enterprise.NEEDS``; None: the appeal names no need
    received: int
    open: int
    closed: int
    resolved: int
    answered: int
    on_time: int
    rated: int
    satisfied: int

    @property
    def resolution(self) -> float | None:
        return self.resolved / self.closed if self.closed else None

    @property
    def on_time_share(self) -> float | None:
        return self.on_time / self.answered if self.answered else None

    @property
    def satisfaction(self) -> float | None:
        return self.satisfied / self.rated if self.rated else None


def enterprise_needs(session: Session, *, period: kpi.Period, where: Any = None) -> list[NeedFigures]:
    """The period's enterprise appeals — orders whose attributes name the enterprise that asks, whatever their
    channel — by need (:class:`NeedFigures`), the most received first, an appeal naming no need last; ``where`` (a
    condition on :class:`Order`, a reader's data scope) limits the orders counted. One GROUP BY of the period's
    orders, as the dashboard's and the report's other counts by state, category and street."""
    from cityhub.workorders.lifecycle import OPEN_STATES
    from cityhub.workorders.models import ENTERPRISE_NAME, ENTERPRISE_NEED

    def counted(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    closed = sorted(CLOSED_STATES)
    answered = or_(Order.replied_at.is_not(None), Order.instant_answered.is_(True))
    late = or_(Order.first_overdue_at.is_not(None), Order.replied_at > Order.due_at)
    rows = session.execute(
        select(
            ENTERPRISE_NEED,
            func.count(),
            counted(Order.state.in_(sorted(OPEN_STATES))),
            counted(Order.state.in_(closed)),
            counted(Order.state == State.CLOSED_RESOLVED),
            counted(answered),
            func.coalesce(func.sum(case((late, 0), (answered, 1), else_=0)), 0),
            counted(Order.satisfied.is_not(None)),
            counted(Order.satisfied.is_(True)),
        )
        .where(*_in_period(period), ENTERPRISE_NAME.is_not(None), *([] if where is None else [where]))
        .group_by(ENTERPRISE_NEED)
    ).all()
    order = {need: i for i, need in enumerate(enterprise.NEEDS)}
    figures = [NeedFigures(need, *(int(n) for n in counts)) for need, *counts in rows]
    return sorted(figures, key=lambda f: (f.need is None, -f.received, order.get(f.need or "", len(order))))


def hot_topics_for_period(
    session: Session, *, period: kpi.Period, k: int = 10, where: Any = None
) -> tuple[list[dict[str, Any]], bool]:
    """Top hot topics of the period and whether it is the fallback; ``where`` (a condition on :class:`Order`, a
    reader's data scope) limits the orders counted.

    When topics have been mined (``cityhub analytics hot-topics``), the stored topics with orders in the period
    (:func:`cityhub.analytics.hot_topics.topics_for_period`: label, representative title, orders in the period,
    size, heat, places — of all the topic's orders and of the period's, which the dashboard and the report show —
    time span; orders cancelled as invalid are left out, ``topics_store.counted``). Before any mining, orders are
    grouped by identical title — a crude stand-in,
    clearly marked in the report, that still surfaces repeated problems; such a row says in how many streets its
    orders are (``streets``) instead of its places.
    """
    from cityhub.analytics import hot_topics, topics_store

    if topics_store.stored_topic_count(session):
        return hot_topics.topics_for_period(session, period.start, period.end, k, where=where), False
    rows = session.execute(
        select(Order.title, func.count().label("n"), func.count(func.distinct(Order.street_id)))
        .where(*_in_period(period), topics_store.counted(), *([] if where is None else [where]))
        .group_by(Order.title)
        .having(func.count() >= 3)
        .order_by(func.count().desc(), Order.title)
        .limit(k)
    ).all()
    return [{"topic": t, "count": n, "heat": None, "streets": s} for t, n, s in rows], True


def group_names(groups: Any, lang: str = "zh") -> Any:
    """A topic's population groups (老年人 …) as the web UI names them in ``lang`` (``group.*``); text as it is."""
    if not isinstance(groups, list | tuple):
        return groups
    ui = ui_language(lang)
    return [translate(ui, f"group.{g}", str(g)) for g in groups]


def _join(value: Any, lang: str = "zh") -> str:
    """Places/groups of a topic row for a table cell: lists joined as the language lists (、, comma), text as it
    is."""
    if value is None:
        return ""
    return value if isinstance(value, str) else labels(lang)["sep"].join(str(v) for v in value)


def _places(t: dict[str, Any], lang: str = "zh") -> str:
    """Where a topic row's orders of the period are: its places, or (a row of the title grouping) in how many
    streets."""
    if "streets" in t:
        return say(lang, "streets_count", n=t["streets"])
    return _join(t.get("period_places"), lang)


def _score(value: float | None) -> str:
    """A composite score as the report prints it: one decimal, '-' when there is none."""
    return "-" if value is None else f"{value:.1f}"


def _span(t: dict[str, Any], lang: str = "zh") -> str:
    """The first and the last day of a topic's orders within the period (the topic's whole span when the row
    has no period's)."""
    from cityhub.analytics import hot_topics

    first, last = (t.get("period_span") or t.get("time_span") or [None, None])[:2]
    to = labels(lang)["to"]
    return f"{hot_topics.local_date(first)} {to} {hot_topics.local_date(last)}" if first or last else ""


def build_report(
    session: Session,
    *,
    period: kpi.Period,
    min_sample: int = kpi.DEFAULT_MIN_SAMPLE,
    top: int = 10,
    charts: bool = True,
    lang: str = "zh",
    reader: Principal | None = None,
) -> ReportData:
    """The figures of ``period``; ``reader``: who will read it (None: the CLI's operator) — a hot topic's
    representative title is someone's appeal, shown to whoever reads orders masked as the topics' pages show it."""
    generated_at = datetime.now(UTC)
    today = generated_at.astimezone(get_settings().tz).date()
    previous, counted, through = period.previous(), period, None
    if period.first <= today <= period.last:  # a period under way: like for like, not a few days against a whole
        through = today
        counted = kpi.Period(period.label, "range", period.first, today)
        days = min((today - period.first).days, previous.days - 1)
        previous = kpi.Period(previous.label, "range", previous.first, previous.first + timedelta(days=days))
    by_state = dict(_grouped(session, period, Order.state))
    total, left = sum(by_state.values()), left_out(by_state)
    district_id = session.scalar(select(Unit.id).where(Unit.tier == UnitTier.DISTRICT).order_by(Unit.id).limit(1))
    leaf_names, units = _names(session, lang)
    street_rows = [(s, n) for s, n in _grouped(session, period, Order.street_id)]
    cat_rows = [(c, n) for c, n in _grouped(session, period, Order.category_id)]
    # kpi.compute's rows may be its cache's: renamed in copies
    all_kpis = [replace(u, name=units.get(u.unit_id, u.name)) for u in kpi.compute(session, period=period)]
    streets = [u for u in all_kpis if u.tier == UnitTier.STREET.value]
    depts = [u for u in all_kpis if u.tier == UnitTier.DEPARTMENT.value]
    rankings = {
        "street": kpi.rank(streets, min_sample=min_sample),
        "department": kpi.rank(depts, min_sample=min_sample),
    }
    topics, fallback = hot_topics_for_period(session, period=period, k=top)
    if reader is not None:
        from cityhub.analytics.topic_views import shown

        topics = shown(topics, reader)
    if ui_language(lang) == "en":  # the places' streets and communities by their English names, as the pages name them
        english = english_names(session)
        topics = [
            {
                **t,
                **{
                    k: [english.unit(p) for p in t[k]]
                    for k in ("places", "period_places")
                    if isinstance(t.get(k), list)
                },
            }
            for t in topics
        ]
    from cityhub.dispatch.outcomes import outcomes

    data = ReportData(
        period=period,
        previous=previous,
        generated_at=generated_at,
        district=units.get(district_id, "") if district_id is not None else "",
        total=total,
        previous_total=_count(session, previous),
        daily=_daily(session, counted),
        categories=_top(cat_rows, leaf_names, total, top),
        streets=_top(street_rows, units, total, top),
        kpis=streets,
        rankings=rankings,
        hot_topics=topics,
        hot_topics_fallback=fallback,
        findings=findings(session, period=period, previous=previous, lang=lang),
        min_sample=min_sample,
        through=through,
        merged=left["merged"],
        cancelled=left["cancelled"],
        dispatch=outcomes(session, period=period),
        enterprise=enterprise_needs(session, period=period),
        exempted_orders=len(frozenset().union(*(u.exempted_order_ids for u in all_kpis))),
    )
    if charts:
        data.charts = draw_charts(data, lang=lang)
    return data


def keep_warm(session: Session, *, today: date | None = None, lang: str = "zh") -> dict[str, int]:
    """The district's reports of this month and last month — the ones a leader opens from the dashboard — built
    once in ``lang`` and thrown away, so that the first one a leader asks for after the server starts (and after
    each round of :func:`cityhub.analytics.kpi.keep_warm`) does not wait for what a build does once per process or
    keeps: matplotlib's import and its fonts (about a second), the charts of figures that have not moved since
    (``_charts``), the KPI figures (``kpi.compute``'s cache: made current just before) and the report's template.
    Nothing of a report's content is kept: each report is built afresh from the database, only faster. How many
    reports were built and how many of their sets of charts had to be drawn."""
    day = today or datetime.now(UTC).astimezone(get_settings().tz).date()
    this_month = kpi.month_period(day.year, day.month)
    drawn = _charts.cache_info().misses
    periods = (this_month, this_month.previous())
    for period in periods:
        render_html(build_report(session, period=period, lang=lang), lang=lang)
    return {"built": len(periods), "charts_drawn": _charts.cache_info().misses - drawn}


# --- charts -----------------------------------------------------------------------------------------------

CJK_FONT_NAMES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Noto Serif CJK SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Source Han Sans SC",
    "Source Han Sans CN",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
)


def _known_cjk_font() -> str | None:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    for name in CJK_FONT_NAMES:
        if name in installed:
            return name
    for f in font_manager.fontManager.ttflist:  # any font that declares itself CJK
        if any(tag in f.name for tag in ("CJK", "Hei", "Song", "Kai", "Ming")):
            return str(f.name)
    return None


@cache
def find_cjk_font() -> str | None:
    """The family name of an installed CJK font matplotlib can use, or None (with a warning).

    matplotlib reads the system's fonts once and keeps the list in its cache directory: a CJK font installed after
    (``.ci/run`` and the README install fonts-wqy-zenhei) was never seen, so the charts lost their Chinese on a machine
    that had the font. When the cached list holds none, the system's font files it does not know are added to it."""
    font = _known_cjk_font()
    if font is None:
        from matplotlib import font_manager

        known = {f.fname for f in font_manager.fontManager.ttflist}
        for path in font_manager.findSystemFonts():
            if path not in known:
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):  # a file FreeType cannot read: not a font to use
                    continue
        font = _known_cjk_font()
    if font is None:
        log.warning("no CJK font found (install fonts-noto-cjk or fonts-wqy-zenhei): chart labels may not render")
    return font


def _figure_uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def draw_charts(data: ReportData, *, lang: str = "zh") -> dict[str, str]:
    """The report's three charts as PNG data URIs, titled in ``lang``. Drawing takes a second or more (matplotlib);
    the same figures asked again in the same language — the report of a period nothing changed in, opened again or
    in another format — are drawn once (the last :data:`CHARTS_KEPT` sets of figures are kept in this process)."""
    ranked = tuple(tuple((r["name"], r["count"]) for r in rows) for rows in (data.categories, data.streets))
    return dict(_charts(lang, tuple(data.daily), *ranked))


CHARTS_KEPT = 16  # sets of charts drawn kept in memory: ~100-200 KB each
# One set of charts drawn at a time in this process: the style they are drawn in (``rc_context``) and the warnings
# silenced are matplotlib's and Python's global state, and a leader's report is drawn in a request's thread while the
# server's warm-up (``keep_warm``) draws in its own.
_DRAWING = threading.Lock()


@lru_cache(maxsize=CHARTS_KEPT)
def _charts(
    lang: str,
    daily: tuple[tuple[str, int], ...],
    categories: tuple[tuple[str, int], ...],
    streets: tuple[tuple[str, int], ...],
) -> tuple[tuple[str, str], ...]:
    with _DRAWING:
        return _draw(lang, daily, categories, streets)


def _draw(
    lang: str,
    daily: tuple[tuple[str, int], ...],
    categories: tuple[tuple[str, int], ...],
    streets: tuple[tuple[str, int], ...],
) -> tuple[tuple[str, str], ...]:
    """The three charts, as :func:`_charts` keeps them: figures of their own (``Figure``, not pyplot's registry of
    open figures), drawn in the report's style."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    # The count axes' ticks are whole numbers written as the report writes its counts (1,500, not 1500).
    counts = FuncFormatter(lambda value, _: count(round(value), lang))
    font = find_cjk_font()
    # matplotlib logs a line per chart when a CJK font has only a "medium" weight; the font is fine.
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    lab, heading = labels(lang), headings(lang)
    style: dict[str, Any] = {"font.size": 9, "axes.unicode_minus": False}
    if font:
        style["font.family"] = [font, "DejaVu Sans"]
    out: dict[str, str] = {}
    with matplotlib.rc_context(style), warnings.catch_warnings():  # type: ignore[arg-type]
        warnings.simplefilter("ignore")  # missing glyphs without a CJK font: already logged once
        fig = Figure(figsize=(7.5, 2.6))
        ax = fig.subplots()
        days = [d[5:] for d, _ in daily]
        ax.plot(days, [n for _, n in daily], marker="o", markersize=3, color="#1f5fa8")
        ax.fill_between(days, [n for _, n in daily], alpha=0.15, color="#1f5fa8")
        ax.set_ylabel(lab["count"])
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(counts)
        ax.set_title(heading["volumes"])
        step = max(1, len(days) // 12)
        ax.set_xticks(range(0, len(days), step), [days[i] for i in range(0, len(days), step)])
        ax.grid(alpha=0.3)
        out["daily"] = _figure_uri(fig)
        for key, rows, color in (("categories", categories, "#d9822b"), ("streets", streets, "#2b8a3e")):
            fig = Figure(figsize=(7.5, 0.3 * max(len(rows), 3) + 0.8))
            ax = fig.subplots()
            names = [name.split("/")[-1] for name, _ in rows][::-1]
            ax.barh(names, [count for _, count in rows][::-1], color=color)
            ax.set_title(heading[key])
            ax.set_xlabel(lab["count"])
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.xaxis.set_major_formatter(counts)
            ax.grid(axis="x", alpha=0.3)
            out[key] = _figure_uri(fig)
    return tuple(out.items())


# --- rendering --------------------------------------------------------------------------------------------


def period_dates(period: kpi.Period) -> str:
    """The period's first and last day as the report writes them (its 统计周期 line): 2026-11-07 — 2026-12-06."""
    return f"{period.first} — {period.last}"


def title_of(data: ReportData, lang: str = "zh") -> str:
    """The report's title: a period of a name of its own (2026-03, 2026-Q4, 2026-W49, a day) by that name, a range of
    days by its first and last day (:func:`period_dates`), never as typed (2026-11-07..2026-12-06)."""
    key = {"month": "title_month", "week": "title_week"}.get(data.period.kind, "title_other")
    period = period_dates(data.period) if data.period.kind == "range" else data.period.label
    return say(lang, key, district=data.district, period=period).strip()


def finding_texts(data: ReportData, lang: str = "zh") -> list[str]:
    lab = labels(lang)
    return [
        say(
            lang,
            "finding",
            street=f["street"],
            category=f["category"],
            now=f["now"],
            earlier=f["before"],
            delta=f["delta"],
            pct=lab["new"] if f["growth"] is None else "+" + percent(f["growth"], 0),
        )
        for f in data.findings
    ]


@lru_cache(maxsize=len(LANGUAGES) + 1)
def _environment(lang: str) -> Any:
    """The Jinja2 environment of the report in ``lang``: made once per language and process, so the template is
    compiled once, not at each report (Jinja keeps it and reloads it only when its file changes)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html", "j2"]),
        finalize=lambda value: word_marks(ui_language(lang), value),  # a masked title's [电话] …
    )
    env.filters["pct"] = percent
    env.filters["count"] = lambda value: count(value, lang)
    env.filters["decimal"] = lambda value: decimal(value, lang)
    env.filters["joined"] = lambda value: _join(value, lang)
    env.filters["groups"] = lambda value: _join(group_names(value, lang), lang)
    env.filters["places"] = lambda row: _places(row, lang)
    env.filters["span"] = lambda row: _span(row, lang)
    env.filters["score"] = _score
    env.filters["tier"] = lambda tier: tier_name(tier, lang)
    env.filters["phrases"] = lambda label: phrases(label, lang)
    return env


def render_html(data: ReportData, *, lang: str = "zh", theme: str = "system") -> str:
    """The report as one HTML file. ``theme`` is the web UI's (``web.theme``: the reader's choice, light or dark,
    else the system's, which the page follows by ``prefers-color-scheme``) and colours the screen only: printed, and
    as the PDF, the report is light."""
    change = (data.total - data.previous_total) / data.previous_total if data.previous_total else None
    template = _environment(lang).get_template(TEMPLATE)
    return template.render(
        d=data,
        heat=lambda row: heat_words(row, lang),
        L=labels(lang),
        H=headings(lang, data.sections),
        need_name=lambda need: need_name(need, lang),
        say=lambda key, **params: say(lang, key, **params),
        html_lang=ui_language(lang),
        title=title_of(data, lang),
        dates=period_dates(data.period),
        kpi_defs=[(k, k.label(lang)) for k in kpi.KPIS],
        kpi_plain=[(k.label(lang), *k.explained(lang)) for k in kpi.KPIS],
        change=change,
        findings=finding_texts(data, lang),
        font=find_cjk_font() or "sans-serif",
        theme=theme,
        color_scheme=color_scheme(theme),
    )


def render_pdf(html: str, target: Path) -> Path:
    """Print the report HTML to PDF with WeasyPrint (needs the pango libraries)."""
    from weasyprint import HTML

    HTML(string=html, base_url=str(TEMPLATE_DIR)).write_pdf(str(target))
    return target


def pdf_available() -> tuple[bool, str]:
    """Whether :func:`render_pdf` can work here, and why not."""
    try:
        import weasyprint  # noqa: F401
    except Exception as exc:  # ImportError, or OSError when pango is missing
        return False, f"WeasyPrint unavailable: {exc}"
    return True, ""


def _need_shares(f: NeedFigures) -> tuple[float | None, float | None, float | None]:
    """Resolved, answered on time, satisfied: the three shares of a need's row, in the report's columns' order."""
    return f.resolution, f.on_time_share, f.satisfaction


# The workbook's number formats (Excel's): a count grouped by thousands, a share as a percentage with one decimal
# (as ``formatting.percent`` writes it), a composite score with one decimal (:func:`_score`).
COUNT, PERCENT, SCORE, DAY = "#,##0", "0.0%", "0.0", "yyyy-mm-dd"


def write_xlsx(data: ReportData, target: Path, *, lang: str = "zh") -> Path:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    lab = labels(lang)
    wb = Workbook()
    wb.properties.title = title_of(data, lang)  # the workbook's title, as the HTML and the PDF are headed
    # Each sheet: its name, header, rows and the number formats of its columns that are not counts (by index); a
    # count (a whole number) is written #,##0 — grouped in the reader's spreadsheet as the HTML groups it —, a topic's
    # id and a weight as they are.
    sheets: list[tuple[str, list[str], list[list[Any]], dict[int, str]]] = [
        # a day as a date cell (a spreadsheet sorts, filters and charts it as one), not its text
        (lab["volumes"], [lab["day"], lab["count"]], [[date.fromisoformat(d), n] for d, n in data.daily], {0: DAY}),
        (
            lab["categories"],
            [lab["rank"], lab["category"], lab["count"], lab["share"]],
            [[r["rank"], r["name"], r["count"], round(r["share"], 4)] for r in data.categories],
            {3: PERCENT},
        ),
        (
            lab["streets"],
            [lab["rank"], lab["street"], lab["count"], lab["share"]],
            [[r["rank"], r["name"], r["count"], round(r["share"], 4)] for r in data.streets],
            {3: PERCENT},
        ),
        *(
            [
                (
                    lab["enterprise"],
                    [
                        lab["need"],
                        lab["received"],
                        lab["open"],
                        lab["closed"],
                        lab["resolution"],
                        lab["on_time"],
                        lab["satisfaction"],
                    ]
                    + [
                        lab[part].format(share=lab[key])
                        for key in ("resolution", "on_time", "satisfaction")
                        for part in ("share_numerator", "share_denominator")
                    ],
                    [
                        [need_name(f.need, lang), f.received, f.open, f.closed]
                        + [None if share is None else round(share, 4) for share in _need_shares(f)]
                        + [f.resolved, f.closed, f.on_time, f.answered, f.satisfied, f.rated]
                        for f in data.enterprise
                    ],
                    {4: PERCENT, 5: PERCENT, 6: PERCENT},
                )
            ]
            if data.enterprise
            else []
        ),
        (
            lab["kpis"],
            [lab["unit"], lab["n"], lab["score"]]
            + [k.label(lang) for k in kpi.KPIS]
            + [lab[part].format(kpi=k.label(lang)) for k in kpi.KPIS for part in ("numerator_of", "denominator_of")]
            + [lab["exempted"]],
            [
                [u.name, u.sample, None if u.score is None else round(u.score, 2)]
                + [None if u.rates[k.name].value is None else round(u.rates[k.name].value or 0, 4) for k in kpi.KPIS]
                + [n for k in kpi.KPIS for n in (u.rates[k.name].numerator, u.rates[k.name].denominator)]
                + [u.exempted_orders]
                for u in data.kpis
            ]
            # the district's total last, under the column (a street's count includes its communities')
            + [[lab["exempted_total"]] + [None] * (2 + 3 * len(kpi.KPIS)) + [data.exempted_orders]],
            {2: SCORE, **{3 + i: PERCENT for i in range(len(kpi.KPIS))}},
        ),
        (
            lab["definitions"],
            # The headers of the other sheets name a figure in words; its code (the API's name) is said here.
            [lab["kpi"], lab["numerator"], lab["denominator"], lab["direction"], lab["weight"], lab["code"]],
            [[k.label(lang), *k.explained(lang), lab[k.direction], k.weight, k.name] for k in kpi.KPIS],
            {4: "0"},
        ),
        (
            lab["rankings"],
            [lab["tier"], lab["rank"], lab["unit"], lab["n"], lab["score"]],
            [
                [tier_name(tier, lang), r["rank"], r["name"], r["n"], r["value"]]
                for tier, ranking in data.rankings.items()
                for r in ranking.ranked
            ]
            + [
                [
                    tier_name(tier, lang),
                    say(lang, "insufficient", min=data.min_sample),
                    r["name"],
                    r["n"],
                    r["value"],
                ]
                for tier, ranking in data.rankings.items()
                for r in ranking.insufficient
            ],
            {4: SCORE},
        ),
        (
            lab["hot_topics"],
            [
                lab["rank"],
                lab["topic_id"],
                lab["topic"],
                lab["label"],
                lab["period_count"],
                lab["size"],
                lab["heat"],
                lab["status"],
                lab["span"],
                lab["places"],
                lab["groups"],
                lab["heat_level"],
            ],
            [
                [
                    i,
                    t.get("id"),
                    word_marks(ui_language(lang), t.get("topic")),
                    phrases(t.get("label"), lang),
                    t.get("count"),
                    t.get("size"),
                    t.get("heat"),
                    topic_status(t.get("status"), lang),
                    _span(t, lang),
                    _places(t, lang),
                    _join(group_names(t.get("groups"), lang), lang),
                    getattr(heat_words(t, lang), "short", None),
                ]
                for i, t in enumerate(data.hot_topics, start=1)
            ],
            {1: "0", 6: "0.00"},
        ),
        (
            lab["findings"],
            [lab["street"], lab["category"], lab["count"], lab["previous"], lab["delta"]],
            [[f["street"], f["category_path"], f["now"], f["before"], f["delta"]] for f in data.findings],
            {},
        ),
    ]
    first = True
    for name, header, rows, formats in sheets:
        ws = wb.active if first else wb.create_sheet()
        first = False
        assert ws is not None
        ws.title = name[:31]
        ws.append(header)
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for row in rows:
            ws.append(row)
            for i, cell in enumerate(ws[ws.max_row]):
                if i in formats:
                    cell.number_format = formats[i]
                elif isinstance(cell.value, int) and not isinstance(cell.value, bool):
                    cell.number_format = COUNT
        for col in ws.columns:
            letter = col[0].column_letter
            ws.column_dimensions[letter].width = min(60, max(8, *(len(str(c.value or "")) * 1.6 for c in col)))
    wb.save(target)
    return target


@dataclass
class ReportFiles:
    period: str
    files: dict[str, Path]
    warnings: list[str]


def generate(
    session: Session,
    *,
    period: kpi.Period,
    out_dir: Path,
    formats: tuple[str, ...] = FORMATS,
    min_sample: int = kpi.DEFAULT_MIN_SAMPLE,
    lang: str = "zh",
    reader: Principal | None = None,
    theme: str = "system",
) -> ReportFiles:
    """Build the report of ``period`` (for ``reader``, :func:`build_report`) and write it in ``formats`` to
    ``out_dir`` (report-<period>.<ext>) in ``lang`` (:func:`report_language`); the HTML file in ``theme`` on screen
    (:func:`render_html`)."""
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        from cityhub.errors import ValidationFailed

        raise ValidationFailed(
            f"unknown format(s) {unknown} (known: {', '.join(FORMATS)})", details={"field": "format"}
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = "html" in formats or "pdf" in formats
    lang = report_language(lang)
    data = build_report(session, period=period, min_sample=min_sample, charts=charts, lang=lang, reader=reader)
    stem = out_dir / f"report-{period.label.replace('..', '_')}"
    files: dict[str, Path] = {}
    notes: list[str] = []
    if find_cjk_font() is None:
        notes.append("no CJK font found: install fonts-noto-cjk or fonts-wqy-zenhei")
    # One HTML for both: its theme colours the screen only, so the PDF (printed) is light whatever the theme.
    html = render_html(data, lang=lang, theme=theme) if charts else ""
    if "html" in formats:
        files["html"] = stem.with_suffix(".html")
        files["html"].write_text(html, encoding="utf-8")
    if "pdf" in formats:
        ok, why = pdf_available()
        if ok:
            files["pdf"] = render_pdf(html, stem.with_suffix(".pdf"))
        else:
            notes.append(why)
    if "xlsx" in formats:
        files["xlsx"] = write_xlsx(data, stem.with_suffix(".xlsx"), lang=lang)
    return ReportFiles(period.label, files, notes)


MEDIA_TYPES = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@dataclass(frozen=True)
class ReportDownload:
    content: bytes
    media_type: str
    filename: str


def download(
    session: Session,
    *,
    period: kpi.Period,
    fmt: str,
    reader: Principal,
    min_sample: int = kpi.DEFAULT_MIN_SAMPLE,
    lang: str = "zh",
    theme: str = "system",
) -> ReportDownload:
    """The report of ``period`` in one format for ``reader``, as bytes for an HTTP answer (:func:`generate` into a
    temporary directory); ValidationFailed for an unknown format or a PDF this machine cannot print."""
    import tempfile

    from cityhub.errors import ValidationFailed

    if fmt not in FORMATS:
        raise ValidationFailed(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}", details={"field": "format"})
    with tempfile.TemporaryDirectory(prefix="cityhub-report-") as folder:
        result = generate(
            session,
            period=period,
            out_dir=Path(folder),
            formats=(fmt,),
            min_sample=min_sample,
            lang=lang,
            reader=reader,
            theme=theme,
        )
        if fmt not in result.files:
            raise ValidationFailed(f"the {fmt} report cannot be made here: {'; '.join(result.warnings)}")
        path = result.files[fmt]
        return ReportDownload(path.read_bytes(), MEDIA_TYPES[fmt], path.name)
