"""The analysis report (专报) over the hand-built KPI history: HTML sections, Excel sheets, PDF when possible."""

from __future__ import annotations

import logging
import re
from datetime import datetime

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from test_kpi import MARCH, D, T, _act, _new, history  # noqa: F401  (the fixture)

from cityhub.analytics import kpi, reports
from cityhub.org.models import Unit


def test_report_has_every_section_and_sheet(db_session, history, tmp_path):  # noqa: F811
    result = reports.generate(db_session, period=MARCH, out_dir=tmp_path, formats=("html", "xlsx"), min_sample=5)
    html = result.files["html"].read_text(encoding="utf-8")
    for section in ("summary", "volumes", "categories", "streets", "kpis", "rankings", "hot-topics", "findings"):
        assert f'id="{section}"' in html, section
    assert "月度专报（2026-03）" in html
    # self-contained: charts are embedded, nothing is fetched
    assert "data:image/png;base64," in html
    assert not re.search(r'(src|href)="https?://', html)
    # both departments have n = 4 assignments: below the minimum sample, listed apart
    assert "样本不足（少于5件）" in html
    # Scores with one decimal, in the KPI table and the rankings alike.
    rankings = html[html.index('id="kpis"') : html.index('id="hot-topics"')]
    assert re.findall(r'<td class="num">(-|\d+\.\d)</td></tr>', rankings)
    assert not re.search(r'<td class="num">\d+\.\d\d+</td></tr>', rankings)
    wb = load_workbook(result.files["xlsx"])
    assert wb.sheetnames == [
        "每日受理量",
        "诉求类别排行",
        "镇街诉求量排行",
        "考核指标（镇街）",
        "指标说明",
        "综合考核排名",
        "热点问题",
        "分析发现",
    ]
    daily = list(wb["每日受理量"].iter_rows(min_row=2, values_only=True))
    assert len(daily) == 31 and sum(n for _, n in daily) == 7  # o1-o6 and o8 were created in March
    ranking = list(wb["综合考核排名"].iter_rows(min_row=2, values_only=True))
    assert {(r[0], r[1], r[2], r[3]) for r in ranking} == {
        ("职能部门", "样本不足（少于5件）", "城管局", 4),
        ("职能部门", "样本不足（少于5件）", "住建局", 4),
    }
    # Every sheet's header is in Chinese (codes such as tier or topic status are named), and the HTML's time is local.
    for ws in wb.worksheets:
        header = next(ws.iter_rows(max_row=1, values_only=True))
        assert not any(re.fullmatch(r"[a-z_]+", str(h)) for h in header), (ws.title, header)
        # A rate is named in words, its code not beside it (the 指标说明 sheet says the code).
        assert not any(k.name in str(h) for k in kpi.KPIS for h in header), (ws.title, header)
    assert re.search(r"生成时间：\d{4}-\d\d-\d\d \d\d:\d\d CST", html)
    # What each figure counts, in plain words (the note pointed a leader to "cityhub analytics 文档"), in both.
    assert "cityhub" not in html and "<h3>指标说明</h3>" in html
    assert "<td>退单率</td><td>被该单位退回的派单</td>" in html
    definitions = list(wb["指标说明"].iter_rows(values_only=True))
    assert definitions[0] == ("指标", "分子（计入达标的）", "分母（计入统计的）", "方向", "权重", "代码")
    assert [row[-1] for row in definitions[1:]] == [k.name for k in kpi.KPIS]
    kpis = next(wb["考核指标（镇街）"].iter_rows(max_row=1, values_only=True))
    assert "满意率分子" in kpis and "满意率分母" in kpis
    assert len(definitions) == 9 and (definitions[7][0], definitions[7][3]) == ("重复投诉率", "越低越好")
    assert "30 天内" in definitions[7][1]  # the repeat window said


def test_the_summary_counts_valid_orders_apart_from_merged_duplicates_and_cancelled_calls(
    db_session,
    history,  # noqa: F811
    tmp_path,
):
    data = reports.build_report(db_session, period=MARCH, charts=False)
    assert (data.total, data.merged, data.cancelled, data.valid) == (7, 0, 0, 7)
    # 派单成效: every March order was first sent by hand; o3 came back from the first unit.
    assert data.dispatch is not None and data.dispatch.automatic.dispatched == 0
    assert data.dispatch.manual.dispatched == 7 and data.dispatch.manual.kept == 6
    master, duplicate, invalid = (_new(db_session, T + 3 * D, f"1370000000{i}") for i in range(3))
    _act(db_session, duplicate, "merge", T + 3 * D, master_id=master)
    _act(db_session, invalid, "cancel", T + 3 * D, reason="无效来电")
    data = reports.build_report(db_session, period=MARCH, charts=False)
    assert (data.total, data.merged, data.cancelled, data.valid) == (10, 1, 1, 8)
    html = reports.generate(db_session, period=MARCH, out_dir=tmp_path, formats=("html",)).files["html"]
    card = re.search(r'<div class="card" id="valid">.*?</div>', html.read_text(encoding="utf-8"), re.S)
    assert card is not None and "<b>8</b>" in card.group(0) and "不含重复并单 1 件、作废 1 件" in card.group(0)
    card = re.search(r'<div class="card" id="dispatch">.*?</div>', html.read_text(encoding="utf-8"), re.S)
    assert card is not None and "<b>0.0%</b>" in card.group(0) and "人工派单 85.7%" in card.group(0)


def test_findings_compare_with_the_previous_period(db_session, history):  # noqa: F811
    rows = reports.findings(db_session, period=MARCH, previous=MARCH.previous(), min_count=1)
    assert rows == []  # the orders have no category and street, so no category × street cell exists


def test_pdf_renders_when_weasyprint_works(db_session, history, tmp_path, caplog):  # noqa: F811
    ok, why = reports.pdf_available()
    if not ok:
        pytest.skip(why)
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        result = reports.generate(db_session, period=MARCH, out_dir=tmp_path, formats=("pdf",))
    data = result.files["pdf"].read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 10_000
    # the screen's rules (dark theme, phone layout) are no CSS WeasyPrint warns of in every 专报 made
    assert [r.getMessage() for r in caplog.records if r.name.startswith("weasyprint")] == []


def test_a_period_under_way_is_compared_like_for_like(db_session, tmp_path):
    """This month's report, made on its n-th day: daily figures and the mean over the n days gone, the month
    before over its first n days; a month that has ended keeps its whole."""
    from datetime import datetime, timedelta

    from cityhub.analytics import kpi
    from cityhub.config import get_settings
    from cityhub.workorders import service
    from cityhub.workorders.schemas import OrderCreate

    tz = get_settings().tz
    now = datetime.now(tz)
    this = kpi.month_period(now.year, now.month)
    before = this.previous()
    actor = service.Actor(name="op")
    for day in (0, 2, 20):  # the previous month's 1st, 3rd and 21st
        at = datetime.combine(before.first + timedelta(days=day), datetime.min.time(), tzinfo=tz).replace(hour=10)
        service.create_order(
            db_session, data=OrderCreate(channel="hotline", content="路灯不亮", created_at=at), actor=actor
        )
    service.create_order(db_session, data=OrderCreate(channel="hotline", content="路灯不亮"), actor=actor)
    db_session.flush()

    data = reports.build_report(db_session, period=this, charts=False)
    elapsed = (now.date() - this.first).days + 1
    assert data.through == now.date() and len(data.daily) == elapsed and data.total == 1
    assert (data.previous.first, data.previous.last) == (before.first, before.first + timedelta(days=elapsed - 1))
    assert data.previous_total == sum(day < elapsed for day in (0, 2, 20))
    html = reports.render_html(data)
    assert 'id="under-way"' in html and f"日均按已过 {elapsed} 天计" in html
    ended = reports.build_report(db_session, period=before, charts=False)
    assert ended.through is None and len(ended.daily) == before.days and ended.previous_total == 0
    assert 'id="under-way"' not in reports.render_html(ended)


def test_a_topic_row_spans_the_days_of_its_orders_in_the_period():
    row = {
        "time_span": ["2025-11-02T01:00:00+00:00", "2026-05-30T01:00:00+00:00"],
        "period_span": ["2026-03-03T01:00:00+00:00", "2026-03-28T15:30:00+00:00"],
    }
    assert reports._span(row) == "2026-03-03 至 2026-03-28"
    assert reports._span({"time_span": row["time_span"]}) == "2025-11-02 至 2026-05-30"
    assert reports._score(None) == "-" and reports._score(87.349) == "87.3"


# Chinese characters and the full-width punctuation that goes with them (、：（）「」，　 …).
CJK = re.compile(r"[\u2e80-\u303f\u3400-\u9fff\uf900-\ufaff\ufe30-\ufe4f\uff00-\uffef]")
IN_ENGLISH = "the report's language does not depend on the database backend"


def _data_strings(session, *more: str) -> list[str]:
    """What the data holds and the report shows as it is: units', categories' names (and their path's parts),
    orders' titles (the title grouping's topics), longest first."""
    from sqlalchemy import select

    from cityhub.org.models import Unit
    from cityhub.workorders.models import Category, Order

    names = set(more) | set(session.scalars(select(Unit.name))) | set(session.scalars(select(Order.title)))
    for path in session.scalars(select(Category.path)):
        names |= {path, *path.split("/")}
    return sorted((n for n in names if n), key=len, reverse=True)


def _stray_chinese(text: str, data: list[str]) -> list[str]:
    """The Chinese left in ``text`` once the data's strings are taken out, each with what surrounds it."""
    for name in data:
        text = text.replace(name, "")
    return [text[max(0, m.start() - 30) : m.end() + 30] for m in CJK.finditer(text)]


def _workbook_texts(path) -> list[str]:
    wb = load_workbook(path)
    return [ws.title for ws in wb.worksheets] + [
        str(value) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for value in row if value
    ]


@pytest.mark.sqlite_only(IN_ENGLISH)
def test_the_report_in_english_has_english_words_and_no_chinese_but_the_datas(db_session, history, tmp_path):  # noqa: F811
    # Units named in English as the English pages name them: a name entered, a place's pinyin, else the Chinese name.
    bureau = db_session.scalars(select(Unit).where(Unit.name == "城管局")).one()
    bureau.name_en = "Urban Management Bureau"
    db_session.flush()
    result = reports.generate(
        db_session, period=MARCH, out_dir=tmp_path, formats=("html", "xlsx"), min_sample=5, lang="en"
    )
    html = result.files["html"].read_text(encoding="utf-8")
    assert '<html lang="en"' in html
    assert "<h1>Ceshi District 12345 hotline and city operations: monthly report (2026-03)</h1>" in html
    assert "<h2>1. Overview</h2>" in html and "<h2>8. Findings</h2>" in html
    assert "<th>On-time acceptance</th>" in html and "Return rate 10 (lower is better)" in html
    assert "Sample too small (fewer than 5 orders)" in html and "excluding 0 merged duplicates" in html
    assert re.search(r"Period: 2026-03-01 — 2026-03-31 · Generated: \d{4}-\d\d-\d\d \d\d:\d\d CST", html)
    data = _data_strings(db_session)
    assert _stray_chinese(html, data) == []
    wb = load_workbook(result.files["xlsx"])
    assert wb.sheetnames == [
        "Orders received per day",
        "Top categories of appeal",
        "Appeals by street and town",
        "Assessment (streets and towns)",
        "What each figure counts",
        "Overall ranking",
        "Hot topics",
        "Findings",
    ]
    ranking = list(wb["Overall ranking"].iter_rows(min_row=2, values_only=True))
    assert {(r[0], r[1], r[2], r[3]) for r in ranking} == {
        ("Department", "Sample too small (fewer than 5 orders)", "Urban Management Bureau", 4),
        ("Department", "Sample too small (fewer than 5 orders)", "住建局", 4),
    }
    kpis = next(wb["Assessment (streets and towns)"].iter_rows(max_row=1, values_only=True))
    assert "Satisfaction" in kpis and "Satisfaction: numerator" in kpis and "Satisfaction: denominator" in kpis
    assert not any(k.name in str(h) for k in kpi.KPIS for h in kpis)
    assert "<td>Return rate</td><td>assignments the unit returned</td>" in html and "documentation" not in html
    # Each ranking headed by its tier as the workbook's column names it (the departments' read "Unit", 单位).
    ranking_section = html[html.index('<section id="rankings">') : html.index('<section id="hot-topics">')]
    assert re.findall(r"<h3>(.*?)</h3>", ranking_section) == ["Street/town", "Department"]
    assert _stray_chinese("\n".join(_workbook_texts(result.files["xlsx"])), data) == []

    # What March's history does not show: a period under way, mined hot topics, findings.
    built = reports.build_report(db_session, period=MARCH, charts=False, lang="en")
    built.through = MARCH.first.replace(day=3)
    built.daily = built.daily[:3]
    built.hot_topics_fallback = False
    built.hot_topics = [
        {
            "id": 7,
            "topic": "小区夜间施工噪音扰民",
            "label": "施工、噪音",
            "count": 1,
            "size": 9,
            "heat": 12.5,
            "status": "rising",
            "new": True,
            "period_span": ["2026-03-03T01:00:00+00:00", "2026-03-28T15:30:00+00:00"],
            "period_places": ["景泰街", "京溪路"],
            "groups": ["老年人", "儿童"],
        }
    ]
    built.findings = [
        {
            "category": "路灯",
            "category_path": "城乡建设/路灯",
            "street": "测试街道",
            "now": 1,
            "before": 0,
            "delta": 1,
            "growth": None,
        }
    ]
    html = reports.render_html(built, lang="en")
    assert "counted through 2026-03-03; the daily average is over the 3 days gone" in html
    assert '<span class="tag">new</span>' in html and "2026-03-03 to 2026-03-28" in html and "景泰街, 京溪路" in html
    assert "<li>测试街道, 路灯: 1 appeal, up 1 from 0 in the previous period (new).</li>" in html
    assert "<small>Older people, Children</small>" in html  # the groups as the product names them, not data
    reports.write_xlsx(built, tmp_path / "en.xlsx", lang="en")
    [row] = load_workbook(tmp_path / "en.xlsx")["Hot topics"].iter_rows(min_row=2, values_only=True)
    assert row[7:9] == ("Rising", "2026-03-03 to 2026-03-28") and row[10] == "Older people, Children"
    # The key phrases the product listed with 、 are listed as English lists are ("施工、噪音" in English).
    assert row[3] == "施工, 噪音" and "<small>施工, 噪音</small>" in html
    topic = built.hot_topics[0]
    topic_data = [
        *data,
        topic["topic"],
        *topic["label"].split("、"),
        *topic["period_places"],
        "城乡建设/路灯",
        "路灯",
    ]
    assert _stray_chinese(html, topic_data) == []
    assert _stray_chinese("\n".join(_workbook_texts(tmp_path / "en.xlsx")), topic_data) == []


@pytest.mark.sqlite_only("the command's language option does not depend on the database backend")
def test_the_command_writes_the_report_in_the_language_asked(app_db, db_session, history, cli_run, tmp_path):  # noqa: F811
    db_session.commit()  # the command reads over its own connection
    code, out, err = cli_run(
        "report", "--period", "2026-03", "--lang", "en", "--format", "xlsx", "--out", str(tmp_path)
    )
    assert code == 0 and out == f"xlsx\t{tmp_path / 'report-2026-03.xlsx'}\n"
    assert load_workbook(tmp_path / "report-2026-03.xlsx").sheetnames[0] == "Orders received per day"
    code, out, err = cli_run("report", "--period", "2026-03", "--lang", "fr", "--out", str(tmp_path / "fr"))
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1
    assert "Invalid value for '--lang'" in err and "must be zh or en" in err
    assert not (tmp_path / "fr").exists()


@pytest.mark.sqlite_only(IN_ENGLISH)
@pytest.mark.parametrize(
    ("lang", "title"),
    [
        ("zh", "测试区12345热线及城市运行专报（2026-03-07 — 2026-04-05）"),
        ("en", "Ceshi District 12345 hotline and city operations: report (2026-03-07 — 2026-04-05)"),
    ],
)
def test_a_range_of_days_is_titled_as_its_period_line_writes_it(db_session, history, tmp_path, lang, title):  # noqa: F811
    """专报 of any 30 days was titled with the range as typed (2026-03-07..2026-04-05) under a period line writing it
    2026-03-07 — 2026-04-05: the title now reads as that line does, in the HTML (and the PDF printed from it) and as
    the workbook's title."""
    period = kpi.parse_period("2026-03-07..2026-04-05")
    result = reports.generate(db_session, period=period, out_dir=tmp_path, formats=("html", "xlsx"), lang=lang)
    html = result.files["html"].read_text(encoding="utf-8")
    assert f"<h1>{title}</h1>" in html and f"<title>{title}</title>" in html
    assert ".." not in html[: html.index("</h1>")]
    assert "2026-03-07 — 2026-04-05" in html[html.index("</h1>") :]  # the period line, as before
    assert load_workbook(result.files["xlsx"]).properties.title == title


def test_reports_kept_warm_are_answered_without_drawing_or_computing_and_say_the_same(
    db_session,
    history,  # noqa: F811
    tmp_path,
):
    """``reports.keep_warm`` (what ``cityhub serve`` runs after each round of the KPI figures) builds this month's
    and last month's reports: the first report of last month a leader then opens draws no chart and computes no
    KPI, and says word for word what a report built from nothing says (but the time it was made)."""
    from datetime import date

    s = db_session
    s.commit()  # as the server's sessions see it: figures read while writes are pending are never kept

    def cold() -> str:
        kpi.clear_cache()
        reports._charts.cache_clear()
        reports._environment.cache_clear()
        return reports.generate(s, period=MARCH, out_dir=tmp_path / "cold", formats=("html",), min_sample=5)

    cold_html = cold().files["html"].read_text(encoding="utf-8")
    kpi.clear_cache()
    reports._charts.cache_clear()
    assert reports.keep_warm(s, today=date(2026, 4, 10)) == {"built": 2, "charts_drawn": 2}  # April's and March's
    computed, drawn = kpi.computations, reports._charts.cache_info().misses
    warm = reports.generate(s, period=MARCH, out_dir=tmp_path / "warm", formats=("html",), min_sample=5)
    assert (kpi.computations, reports._charts.cache_info().misses) == (computed, drawn)
    warm_html = warm.files["html"].read_text(encoding="utf-8")

    def made(html: str) -> str:
        return re.sub(r"生成时间：[^<]*", "生成时间：", html)

    assert made(warm_html) == made(cold_html) and "data:image/png;base64," in warm_html
    assert reports.keep_warm(s, today=date(2026, 4, 10)) == {"built": 2, "charts_drawn": 0}  # nothing moved
    _new(s, T + 3 * D, "13800000099")  # a new order of March: its daily figures moved
    s.commit()
    assert reports.keep_warm(s, today=date(2026, 4, 10)) == {"built": 2, "charts_drawn": 1}  # March's drawn again


def test_a_serving_process_builds_this_month_s_and_last_month_s_reports_before_anyone_asks(app_db, db_session):
    """``cityhub serve``'s warm-up thread builds the reports after each round of the KPI figures
    (``main._warm_up_reports``): this month's and last month's charts are drawn then, and the next round, nothing
    having moved, draws none."""
    from cityhub import main

    kpi.clear_cache()
    reports._charts.cache_clear()
    main._warm_up_reports()
    assert reports._charts.cache_info().misses == 2
    assert reports.keep_warm(db_session) == {"built": 2, "charts_drawn": 0}


@pytest.mark.parametrize(("lang", "pieces"), [("zh", "3,006</b> 件"), ("en", "3,006</b>")])
def test_the_reports_counts_are_grouped_as_the_web_ui_groups_them_and_the_workbook_keeps_numbers(
    db_session,
    history,  # noqa: F811
    tmp_path,
    lang,
    pieces,
):
    """A district's month counts in thousands: the 专报 wrote "3006 first dispatches", "受理工单 3006 件", where the
    pages write 3,006 (``i18n.count_text``, one rule for both); the workbook's figures stay numbers."""
    built = reports.build_report(db_session, period=MARCH, charts=False, lang=lang)
    built.total, built.previous_total, built.merged = 3006, 23456, 1200
    built.categories = [{"rank": 1, "name": "城乡建设/路灯", "count": 1234, "share": 0.41}]
    built.findings = [
        {
            "category": "路灯",
            "category_path": "城乡建设/路灯",
            "street": "测试街道",
            "now": 2500,
            "before": 1000,
            "delta": 1500,
            "growth": 1.5,
        }
    ]
    html = reports.render_html(built, lang=lang)
    assert pieces in html and "23,456</b>" in html and "1,806</b>" in html  # 有效: 3006 − 1200 merged
    assert "1,200" in html and '<td class="num">1,234</td>' in html
    assert ("2,500 件，较上期 1,000 件增加 1,500 件" if lang == "zh" else "2,500 appeals, up 1,500 from 1,000") in html
    assert "3006" not in html and "23456" not in html
    assert reports.say(lang, "auto_note", total=3006, auto="90%", manual="80%").startswith(
        "首次派单 3,006 件" if lang == "zh" else "3,006 first dispatches"
    )
    assert reports.say(lang, "insufficient", min=1000).count("1000") == 1  # a limit, not a count: as it is
    reports.write_xlsx(built, tmp_path / "grouped.xlsx", lang=lang)
    wb = load_workbook(tmp_path / "grouped.xlsx")
    [row] = wb.worksheets[1].iter_rows(min_row=2, values_only=True)
    assert row[2] == 1234 and isinstance(row[2], int)
    [finding] = wb.worksheets[-1].iter_rows(min_row=2, values_only=True)
    assert finding[2:] == (2500, 1000, 1500)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_reports_daily_average_and_chart_axes_are_grouped_and_its_workbook_cells_are_formatted_numbers(
    db_session,
    history,  # noqa: F811
    tmp_path,
    monkeypatch,
    lang,
):
    """A year's 专报 read 日均 1234.5 and axes of 1000 … 2500 beside counts written 3,006; the workbook's counts and
    shares were bare (1234, 0.4123) and a KPI's numerator and denominator one text cell, "1234/3006", no spreadsheet
    can add up: each is a number now, a count #,##0, a share 0.0%."""
    built = reports.build_report(db_session, period=MARCH, charts=False, lang=lang)
    built.total, built.daily = 37035, [(f"2026-03-{d:02}", 1000 + 100 * d) for d in range(1, 31)]
    built.categories = [{"rank": 1, "name": "城乡建设/路灯", "count": 1234, "share": 0.41}]
    built.streets = [{"rank": 1, "name": "测试街道", "count": 2500, "share": 0.83}]
    assert "<b>1,234.5</b>" in reports.render_html(built, lang=lang)  # 37,035 over 30 days

    drawn = []
    monkeypatch.setattr(reports, "_figure_uri", lambda fig: drawn.append(fig) or "")
    reports._draw(lang, tuple(built.daily), (("城乡建设/路灯", 1234),), (("测试街道", 2500),))
    daily, categories, streets = drawn
    for fig in drawn:
        fig.canvas.draw()
    ticks = [t.get_text() for t in daily.axes[0].get_yticklabels()] + [
        t.get_text() for fig in (categories, streets) for t in fig.axes[0].get_xticklabels()
    ]
    assert "2,500" in ticks and "1,000" in ticks, ticks
    assert not [t for t in ticks if re.fullmatch(r"\d{4,}(\.\d+)?", t)], ticks

    rates = {k.name: kpi.Rate(1234, 3006) for k in kpi.KPIS}
    built.kpis = [kpi.UnitKpis(1, "S1", "测试街道", "street", rates, sample=3006, score=81.25)]
    reports.write_xlsx(built, tmp_path / "formats.xlsx", lang=lang)
    wb = load_workbook(tmp_path / "formats.xlsx")
    category = wb.worksheets[1]["C2"], wb.worksheets[1]["D2"]
    assert (category[0].value, category[0].number_format) == (1234, "#,##0")
    # a day is a date cell (sorted, filtered and charted as dates), not the text 2026-11-01
    day = wb.worksheets[0]["A2"]
    assert isinstance(day.value, datetime) and day.is_date and day.number_format == "yyyy-mm-dd", day.value
    assert day.value.date().isoformat() == built.daily[0][0]
    assert (category[1].value, category[1].number_format) == (0.41, "0.0%")
    sheet = wb.worksheets[3]
    header = [c.value for c in sheet[1]]
    first = header.index(reports.say(lang, "numerator_of", kpi=kpi.KPIS[0].label(lang)))
    unit = sheet[2]
    assert (unit[first].value, unit[first + 1].value) == (1234, 3006)
    assert unit[first].number_format == unit[first + 1].number_format == "#,##0"
    assert unit[3].number_format == "0.0%" and unit[1].number_format == "#,##0"
    texts = [c.value for ws in wb.worksheets for row in ws.iter_rows(min_row=2) for c in row]
    assert not [v for v in texts if isinstance(v, str) and re.fullmatch(r"\d+/\d+", v)]
