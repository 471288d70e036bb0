"""The analysis report (专报) over the hand-built KPI history: HTML sections, Excel sheets, PDF when possible."""

from __future__ import annotations

import re

import pytest
from openpyxl import load_workbook
from test_kpi import MARCH, D, T, _act, _new, history  # noqa: F401  (the fixture)

from cityhub.analytics import reports


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
    assert re.search(r"生成时间：\d{4}-\d\d-\d\d \d\d:\d\d CST", html)


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


def test_pdf_renders_when_weasyprint_works(db_session, history, tmp_path):  # noqa: F811
    ok, why = reports.pdf_available()
    if not ok:
        pytest.skip(why)
    result = reports.generate(db_session, period=MARCH, out_dir=tmp_path, formats=("pdf",))
    data = result.files["pdf"].read_bytes()
    assert data.startswith(b"%PDF") and len(data) > 10_000


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
