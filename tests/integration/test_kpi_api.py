"""The assessment endpoints (/api/v1/kpi) over the app on both backends, on the hand-counted history of test_kpi:
who sees which units' figures, rankings only for overseers, and the analysis report (专报) as a file."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from test_kpi import EXPECTED, H, T, history  # noqa: F401  (the fixture)

from app_helpers import shared_app
from cityhub.auth.service import create_token
from cityhub.org.models import Role, User
from cityhub.workorders import service
from cityhub.workorders.schemas import OrderCreate


@pytest.fixture
def people(app_db, db_session, history):  # noqa: F811
    """Bearer headers of a leader (the district), the handler of department D, the supervisor of street S, and a
    citizen."""
    district = history["units"]["S"].parent_id
    users = {
        "leader": User(username="k-lead", full_name="领导", role=Role.LEADER, unit_id=district),
        "handler": User(username="k-hand", full_name="承办", role=Role.HANDLER, unit_id=history["d"]),
        "street_supervisor": User(
            username="k-sup", full_name="街道督办", role=Role.SUPERVISOR, unit_id=history["units"]["S"].id
        ),
        "citizen": User(username="k-cit", full_name="市民", role=Role.CITIZEN),
    }
    db_session.add_all(users.values())
    db_session.flush()
    headers = {
        name: {"Authorization": f"Bearer {create_token(db_session, user_id=u.id, name='t')[1]}"}
        for name, u in users.items()
    }
    db_session.commit()  # the app reads over its own connections
    with TestClient(shared_app(), raise_server_exceptions=False) as client:
        yield client, headers


def test_overseers_see_every_unit_staff_their_own_citizens_nothing(people):
    client, headers = people
    everyone = client.get("/api/v1/kpi", params={"period": "2026-03"}, headers=headers["leader"])
    assert everyone.status_code == 200, everyone.text
    rows = {u["code"]: u for u in everyone.json()["units"]}
    assert set(rows) == {"K-D1", "K-D2"}
    for key, code in (("D", "K-D1"), ("D2", "K-D2")):
        got = {name: (v["numerator"], v["denominator"]) for name, v in rows[code]["kpis"].items()}
        assert got == EXPECTED[key]
    own = client.get("/api/v1/kpi", params={"period": "2026-03"}, headers=headers["handler"]).json()
    assert [u["code"] for u in own["units"]] == ["K-D1"]
    assert client.get("/api/v1/kpi", params={"period": "2026-03"}, headers=headers["citizen"]).status_code == 403
    assert (
        client.get("/api/v1/kpi/ranking", params={"period": "2026-03"}, headers=headers["handler"]).status_code == 403
    )
    bad = client.get("/api/v1/kpi", params={"period": "March"}, headers=headers["leader"])
    assert bad.status_code == 422 and bad.json()["message"]


def test_the_analysis_report_downloads_as_html_or_excel_for_overseers(people):
    client, headers = people
    url = "/api/v1/kpi/report"
    html = client.get(url, params={"period": "2026-03"}, headers=headers["leader"])
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "月度专报（2026-03）" in html.text and html.headers["content-disposition"].startswith("inline")
    xlsx = client.get(url, params={"period": "2026-03", "format": "xlsx", "min_sample": 1}, headers=headers["leader"])
    assert xlsx.status_code == 200 and 'filename="report-2026-03.xlsx"' in xlsx.headers["content-disposition"]
    workbook = load_workbook(io.BytesIO(xlsx.content))
    daily = list(workbook["每日受理量"].iter_rows(min_row=2, values_only=True))
    assert sum(n for _, n in daily) == 7  # the orders created in March
    wrong = client.get(url, params={"period": "2026-03", "format": "doc"}, headers=headers["leader"])
    assert wrong.status_code == 422 and "html, pdf, xlsx" in wrong.json()["message"]
    assert client.get(url, params={"period": "2026-03"}, headers=headers["handler"]).status_code == 403


def test_a_drilldown_lists_orders_only_to_whoever_sees_them(people, history):  # noqa: F811
    """A drill-down names the orders behind a figure: a street's supervisor drills into its street, not into a
    department's orders it does not see (404, as a missing unit); the district's leader into any unit, a handler into
    its own."""
    client, headers = people
    url = "/api/v1/kpi/drilldown"
    d1 = {"period": "2026-03", "unit_id": history["d"], "kpi": "return_rate"}
    street = {**d1, "unit_id": history["units"]["S"].id}
    leader = client.get(url, params=d1, headers=headers["leader"])
    assert leader.status_code == 200 and leader.json()["denominator_count"] == EXPECTED["D"]["return_rate"][1]
    assert client.get(url, params=d1, headers=headers["handler"]).status_code == 200
    assert client.get(url, params={**d1, "unit_id": history["d2"]}, headers=headers["handler"]).status_code == 404
    refused = client.get(url, params=d1, headers=headers["street_supervisor"])
    assert refused.status_code == 404 and str(history["d"]) in refused.json()["message"]
    own = client.get(url, params=street, headers=headers["street_supervisor"])
    assert own.status_code == 200 and own.json()["denominator"] == []


def test_the_report_shows_leaders_the_appeals_of_its_hot_topics_masked(people, db_session):
    """The report's hot topics are titled by someone's appeal (here, before any mining, a title three appeals share):
    a leader reads orders masked and reads the door number in it scrubbed, as the dashboard shows it; a supervisor
    reads it as written."""
    client, headers = people
    for i in range(3):
        data = OrderCreate(channel="hotline", title="怡景南路5号附近刺鼻气味", content="气味很重", created_at=T + i * H)
        service.create_order(db_session, data=data, actor=service.Actor(name="op"))
    db_session.commit()
    params = {"period": "2026-03"}
    leader = client.get("/api/v1/kpi/report", params=params, headers=headers["leader"])
    assert leader.status_code == 200
    hot = leader.text[leader.text.index('id="hot-topics"') :]
    assert "怡景南路" in hot and "怡景南路5号" not in hot
    workbook = client.get("/api/v1/kpi/report", params={**params, "format": "xlsx"}, headers=headers["leader"])
    topics = [
        row[2] for row in load_workbook(io.BytesIO(workbook.content))["热点问题"].iter_rows(min_row=2, values_only=True)
    ]
    assert any(t and "怡景南路" in t for t in topics) and not any(t and "怡景南路5号" in t for t in topics)
    supervisor = client.get("/api/v1/kpi/report", params=params, headers=headers["street_supervisor"])
    assert "怡景南路5号" in supervisor.text[supervisor.text.index('id="hot-topics"') :]


def test_the_report_is_in_the_language_asked_else_in_the_readers_web_ui_language(people, monkeypatch):
    """``lang`` says the report's language (zh, en, the web UI's zh-CN); without it, the web UI's language of the
    reader decides — the language switch's cookie, else Accept-Language where the UI follows the browser's."""
    from cityhub.config import get_settings

    client, headers = people
    url, leader = "/api/v1/kpi/report", headers["leader"]
    english = client.get(url, params={"period": "2026-03", "lang": "en"}, headers=leader)
    assert english.status_code == 200 and '<html lang="en"' in english.text
    assert "monthly report (2026-03)" in english.text and "月度专报" not in english.text
    assert 'filename="report-2026-03.html"' in english.headers["content-disposition"]
    chinese = client.get(url, params={"period": "2026-03", "lang": "zh-CN"}, headers=leader)
    assert chinese.status_code == 200 and '<html lang="zh-CN"' in chinese.text and "月度专报（2026-03）" in chinese.text
    refused = client.get(url, params={"period": "2026-03", "lang": "fr"}, headers=leader)
    assert refused.status_code == 422 and refused.json()["details"] == {"field": "lang"}
    assert refused.json()["message"] == "the report's language must be zh or en (zh-CN is zh), not 'fr'"

    def sheets(extra: dict[str, str]) -> list[str]:
        answer = client.get(url, params={"period": "2026-03", "format": "xlsx"}, headers={**leader, **extra})
        assert answer.status_code == 200, answer.text
        return load_workbook(io.BytesIO(answer.content)).sheetnames[:1]

    assert sheets({}) == ["每日受理量"]
    assert sheets({"Cookie": "cityhub_lang=en"}) == ["Orders received per day"]
    browser = {"Accept-Language": "en-US,en;q=0.9"}
    assert sheets(browser) == ["每日受理量"]  # the web UI is in Chinese until its user switches
    monkeypatch.setenv("CITYHUB_UI_LANGUAGE_FROM_BROWSER", "true")
    get_settings.cache_clear()
    try:
        assert sheets(browser) == ["Orders received per day"]
        assert sheets({**browser, "Cookie": "cityhub_lang=zh-CN"}) == ["每日受理量"]  # the user's switch first
    finally:
        get_settings.cache_clear()
