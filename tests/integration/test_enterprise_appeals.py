"""Enterprise appeals (企业呼) on both backends: an enterprise's staff say which enterprise asks — its unified social
credit code checked — and for what (water, power, land, labour, funding), through the web form and the API; the order
page shows it; a wrong code is refused naming its field, nothing kept."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app_helpers import shared_app
from cityhub.auth.service import create_token
from cityhub.db import session_scope
from cityhub.intake.enterprise import check_character, credit_code_problem, normal_code
from cityhub.org.models import User
from cityhub.workorders.models import Channel, Order
from web_helpers import PASSWORD, build_world, hidden, intake_form, login

# Codes published as examples of GB 32100-2015: they check.
VALID = ("91350100M000100Y43", "91110000600037341L")


def test_a_credit_code_checks_by_gb_32100() -> None:
    for code in VALID:
        assert credit_code_problem(code) is None, code
        assert check_character(code[:17]) == code[17]
    assert normal_code(" 91350100m000100-y43 ") == VALID[0]
    assert credit_code_problem(VALID[0][:-1] + "4") == (
        "does not check: its last character should be 3, not 4 (a character mistyped?)"
    )
    assert credit_code_problem(VALID[0][:17]) == "has 17 characters, not 18"
    assert credit_code_problem("91350100M00O100Y43").startswith("holds O, which no such code does")  # type: ignore[union-attr]
    # Every single mistyped character is caught (the check character's purpose).
    for i in range(17):
        for other in "0123456789ABCDEFGHJKLMNPQRTUWXY":
            if other != VALID[1][i]:
                assert credit_code_problem(VALID[1][:i] + other + VALID[1][i + 1 :]) is not None, (i, other)


@pytest.fixture
def world(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("CITYHUB_FILES_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("CITYHUB_SESSION_COOKIE_SECURE", "false")
    with session_scope() as s:
        built = build_world(s)
        operator = s.scalars(select(User).where(User.username == "op")).one()
        return {"token": create_token(s, user_id=operator.id, name="t")[1], "world": built}


def _orders() -> int:
    with session_scope() as s:
        return int(s.scalar(select(func.count()).select_from(Order)) or 0)


def test_the_api_takes_an_enterprise_appeal_and_refuses_a_wrong_code_by_name(world: dict[str, Any]) -> None:
    client = TestClient(shared_app(), raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {world['token']}"}
    appeal = {
        "channel": "enterprise",
        "appeal_type": "help",
        "content": "新厂房申请用电报装两个月了还没接电，影响投产。",
        "attributes": {
            "enterprise_name": " 广州云景制衣有限公司 ",
            "credit_code": "91350100m000100y43",
            "enterprise_need": "power",
        },
    }
    made = client.post("/api/v1/orders", json=appeal, headers=headers)
    assert made.status_code == 201, made.text
    # Read back as who asks and for what, the name trimmed and the code written as codes are.
    assert made.json()["enterprise"] == {"name": "广州云景制衣有限公司", "credit_code": VALID[0], "need": "power"}
    listed = client.get("/api/v1/orders", headers=headers).json()["items"]
    assert [o["enterprise"] for o in listed] == [made.json()["enterprise"]]
    refusals = {
        "credit_code": ({"credit_code": VALID[0][:-1] + "4"}, "its last character should be 3, not 4"),
        "enterprise_need": ({"enterprise_need": "electricity"}, "must be one of water, power, land, labour, funding"),
    }
    for key, (change, said) in refusals.items():
        bad = {**appeal, "attributes": {**appeal["attributes"], **change}}
        refused = client.post("/api/v1/orders", json=bad, headers=headers)
        assert refused.status_code == 422, refused.text
        error = refused.json()["details"]["errors"][0]
        assert error["field"] == "attributes" and error["message"].startswith(key) and said in error["message"]
    nameless = {**appeal, "attributes": {"credit_code": VALID[0]}}
    refused = client.post("/api/v1/orders", json=nameless, headers=headers)
    assert refused.status_code == 422 and "enterprise_name is missing" in refused.text
    assert _orders() == 1


def test_an_enterprise_files_through_the_web_form_and_the_order_says_who_asks_and_for_what(
    world: dict[str, Any],
) -> None:
    citizen = login("cit")
    form = citizen.get("/intake").text
    assert 'data-testid="enterprise"' in form and "以企业身份反映" in form and "统一社会信用代码" in form
    data = intake_form(
        citizen,
        appeal_type="help",
        content="我们公司缺工三十人左右，请问区里有没有招聘对接活动？",
        enterprise_name="广州云景制衣有限公司",
        credit_code=VALID[0][:-1] + "4",
        enterprise_need="labour",
    )
    data.pop("channel")  # a citizen's form has none
    refused = citizen.post("/intake", data=data)
    assert refused.status_code == 422
    # Said at the code's field, in the reader's language; the form keeps what was typed and opens the section.
    assert "统一社会信用代码校验不通过：最后一位应为3" in refused.text
    assert 'id="f-credit_code" name="credit_code"' in refused.text and 'aria-invalid="true"' in refused.text
    assert 'data-testid="enterprise" open' in refused.text and "广州云景制衣有限公司" in refused.text
    assert _orders() == 0

    done = citizen.post("/intake", data={**data, "credit_code": VALID[0]}, follow_redirects=False)
    assert done.status_code == 303, done.text
    with session_scope() as s:
        order = s.scalars(select(Order)).one()
        assert order.channel == Channel.ENTERPRISE  # 企业呼, not the web form's channel
        assert order.attributes == {
            "enterprise_name": "广州云景制衣有限公司",
            "credit_code": VALID[0],
            "enterprise_need": "labour",
        }
        order_id = order.id
    own = citizen.get(f"/orders/{order_id}").text  # the enterprise sees what it said it is, no other channel data
    assert '<div data-key="enterprise_name"><small>企业名称</small> 广州云景制衣有限公司</div>' in own
    page = login("op").get(f"/orders/{order_id}").text
    assert "企业呼" in page and "广州云景制衣有限公司" in page
    assert '<div data-key="enterprise_need"><small>诉求领域</small> 用工</div>' in page

    # An operator registers an enterprise's call on the hotline: the channel stays the hotline's.
    operator = login("op")
    operator.get("/intake")
    called = intake_form(operator, content="园区用水水压不足，生产线停了半天。", enterprise_name="广州景泰食品有限公司")
    assert (
        operator.post("/intake", data={**called, "enterprise_need": "water"}, follow_redirects=False).status_code == 303
    )
    with session_scope() as s:
        hotline = s.scalars(select(Order).where(Order.channel == Channel.HOTLINE)).one()
        assert hotline.attributes == {"enterprise_name": "广州景泰食品有限公司", "enterprise_need": "water"}
    assert hidden(form)  # the citizen's form carried its CSRF token


def test_a_wrong_credit_code_is_said_with_the_forms_other_problems_in_one_round(world: dict[str, Any]) -> None:
    operator = login("op")
    operator.get("/intake")
    typed = intake_form(
        operator,
        citizen_phone="12ab",
        title="",
        content="",
        enterprise_name="广州云景制衣有限公司",
        credit_code=VALID[0][:-1] + "4",
    )
    refused = operator.post("/intake", data=typed)
    assert refused.status_code == 422
    # The code, the phone and the missing text each at their field at once (the phone and the text were said only
    # once the code was right); the missing text said there, not a second time at the top of the form.
    assert "统一社会信用代码校验不通过" in refused.text
    assert 'data-testid="field-error-citizen_phone"' in refused.text and "电话号码只能包含数字" in refused.text
    assert 'data-testid="field-error-content"' in refused.text
    assert refused.text.count("请填写诉求内容或标题") == 1 and 'data-testid="field-error-_form"' not in refused.text
    right = operator.post("/intake", data={**typed, "credit_code": VALID[0]})  # the code fixed: the rest remains
    assert "统一社会信用代码" in right.text and "统一社会信用代码校验不通过" not in right.text
    assert "电话号码只能包含数字" in right.text and right.text.count("请填写诉求内容或标题") == 1
    assert _orders() == 0


def test_the_order_list_narrows_to_the_enterprise_appeals_of_one_need(world: dict[str, Any]) -> None:
    """诉求领域 (``enterprise_need``): the API's and the page's list of 企业呼's appeals of one need — read from the
    order's attributes on both backends — not the other enterprises' nor the citizens' appeals."""
    client = TestClient(shared_app(), raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {world['token']}"}
    for name, need, content in (
        ("广州云景制衣有限公司", "power", "新厂房申请用电报装两个月了还没接电。"),
        ("广州景泰食品有限公司", "water", "园区用水水压不足，生产线停了半天。"),
        ("广州白云皮具有限公司", "power", "工厂每周停电两三次，影响生产。"),
    ):
        appeal = {
            "channel": "enterprise",
            "content": content,
            "attributes": {"enterprise_name": name, "enterprise_need": need},
        }
        assert client.post("/api/v1/orders", json=appeal, headers=headers).status_code == 201
    citizen = {
        "channel": "hotline",
        "content": "小区停电了，什么时候来电？",
        "attributes": {"enterprise_need_x": "power"},
    }
    assert client.post("/api/v1/orders", json=citizen, headers=headers).status_code == 201

    def listed(**params: Any) -> set[str]:
        answer = client.get("/api/v1/orders", params=params, headers=headers)
        assert answer.status_code == 200, answer.text
        return {o["enterprise"]["name"] if o["enterprise"] else o["content"] for o in answer.json()["items"]}

    assert listed(enterprise_need="power") == {"广州云景制衣有限公司", "广州白云皮具有限公司"}
    assert listed(enterprise_need=["water", "power"]) == {
        "广州云景制衣有限公司",
        "广州景泰食品有限公司",
        "广州白云皮具有限公司",
    }
    assert listed(enterprise_need="land") == set()
    wrong = client.get("/api/v1/orders", params={"enterprise_need": "electricity"}, headers=headers)
    assert wrong.status_code == 422 and wrong.json()["details"]["errors"][0]["field"] == "query.enterprise_need.0"

    page = login("op")
    # Offered once the list is of 企业呼's appeals (it took a row of every list's criteria before).
    assert 'id="enterprise_need"' not in page.get("/orders").text
    assert 'id="enterprise_need"' in page.get("/orders", params={"channel": "enterprise"}).text
    shown = page.get("/orders", params={"enterprise_need": "water"}).text
    assert "园区用水水压不足" in shown and "新厂房申请用电报装" not in shown and "小区停电了" not in shown
    assert '<option value="water" selected>用水</option>' in shown
    refused = page.get("/orders", params={"enterprise_need": "electricity"})
    assert refused.status_code == 200 and "小区停电了" in refused.text  # an unknown need is said, not applied


# --------------------------------------------------------------------------------------- figures by need


def _appeal(street: int, need: str | None, *, days_ago: float = 1, enterprise: bool = True, **columns: Any) -> int:
    """An appeal received ``days_ago`` on ``street``, of an enterprise needing ``need`` unless ``enterprise`` is
    false (a citizen's), then ``columns`` set as its handling left them (state, reply, time limit, callback)."""
    from datetime import timedelta

    from cityhub.db import utcnow
    from cityhub.workorders import service
    from cityhub.workorders.schemas import OrderCreate

    attributes = {"enterprise_name": "广州云景制衣有限公司"} | ({"enterprise_need": need} if need else {})
    data = OrderCreate(
        channel="enterprise" if enterprise else "hotline",
        content="新厂房申请用电报装两个月了还没接电。" if enterprise else "小区停电了，什么时候来电？",
        attributes=attributes if enterprise else None,
        created_at=utcnow() - timedelta(days=days_ago),
    )
    with session_scope() as s:
        order, _ = service.create_order(s, data=data, actor=service.Actor(name="op"))
        order.street_id = street
        for name, value in columns.items():
            setattr(order, name, value)
        return order.id


@pytest.fixture
def needs(world: dict[str, Any]) -> dict[str, Any]:
    """The last 30 days' appeals: 景泰街道 (a) an enterprise's power appeal resolved on time to its satisfaction and
    one of water in progress; 京溪街道 (b) a power appeal replied after its limit, closed unresolved, unsatisfied, and
    an enterprise's appeal naming no need; beside them a citizen's appeal and an enterprise's of two months ago."""
    from datetime import timedelta

    from cityhub.db import utcnow
    from cityhub.workorders.lifecycle import State

    now = utcnow()
    a, b = world["world"].street_a, world["world"].street_b
    done = {"replied_at": now - timedelta(hours=30), "due_at": now - timedelta(hours=20)}
    resolved = _appeal(a, "power", days_ago=2, state=State.CLOSED_RESOLVED, satisfied=True, resolved=True, **done)
    _appeal(a, "water", state=State.IN_PROGRESS)
    late = {"replied_at": now - timedelta(hours=10), "first_overdue_at": now - timedelta(hours=20)}
    unresolved = _appeal(b, "power", days_ago=3, state=State.CLOSED_UNRESOLVED, satisfied=False, resolved=False, **late)
    _appeal(b, None)
    _appeal(a, None, enterprise=False)
    older = _appeal(a, "power", days_ago=60)
    with session_scope() as s:
        from cityhub.auth import service as auth
        from cityhub.org.models import Role
        from cityhub.org.schemas import UserCreate

        auth.create_account(
            s,
            data=UserCreate(username="jx_sup", full_name="街道督办", role=Role.SUPERVISOR, unit_id=b),
            password=PASSWORD,
        )
        numbers = {oid: s.get(Order, oid).number for oid in (resolved, unresolved, older)}  # type: ignore[union-attr]
    return world | {"power": [numbers[resolved], numbers[unresolved]], "older": numbers[older]}


def _rows(html: str) -> dict[str, list[str]]:
    """The dashboard's 企业诉求 table: each need's row (by its data-need) as its cells' texts."""
    section = re.search(r'<section data-testid="enterprise-needs">(.*?)</section>', html, re.S)
    assert section, "no 企业诉求 section"
    return {
        need: [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for need, row in re.findall(r'<tr data-need="([^"]*)">(.*?)</tr>', section.group(1))
    }


def test_the_dashboard_counts_enterprise_appeals_by_need_in_the_readers_scope(needs: dict[str, Any]) -> None:
    """企业诉求: the period's enterprise appeals by need with how many are open, closed, resolved, answered on time
    and satisfied — not the citizens' appeals, not another period's; a street's supervisor counts the street's."""
    from cityhub.analytics import kpi, reports

    with session_scope() as s:
        figures = reports.enterprise_needs(s, period=kpi.period_or_recent(None))
    assert [
        (f.need, f.received, f.open, f.closed, f.resolved, f.answered, f.on_time, f.rated, f.satisfied) for f in figures
    ] == [
        ("power", 2, 0, 2, 1, 2, 1, 2, 1),
        ("water", 1, 1, 0, 0, 0, 0, 0, 0),
        (None, 1, 1, 0, 0, 0, 0, 0, 0),
    ]
    lead = login("lead")
    page = lead.get("/dashboard")
    assert page.status_code == 200 and "<h2>企业诉求（按诉求领域）</h2>" in page.text
    assert _rows(page.text) == {
        "power": ["用电", "2", "0", "2", "50.0%", "50.0%", "50.0%"],
        "water": ["用水", "1", "1", "0", "—", "—", "—"],
        "": ["未填诉求领域", "1", "1", "0", "—", "—", "—"],
    }
    # A need's count opens the list of those appeals of the period.
    link = re.search(
        r'<tr data-need="power"><td[^>]*>[^<]*</td><td class="num"[^>]*><a href="([^"]+)">2</a>', page.text
    )
    assert link, "no link to the power appeals"
    listed = lead.get(html.unescape(link.group(1)))
    assert listed.status_code == 200 and all(number in listed.text for number in needs["power"])
    assert needs["older"] not in listed.text
    # 在办 and 已办结 open the list of exactly those appeals of the need, as many as the figure says.
    cells = re.search(r'<tr data-need="power">(.*?)</tr>', page.text)
    assert cells
    linked = re.findall(r'<td class="num"[^>]*><a href="([^"]+)">(\d+)</a></td>', cells.group(1))
    assert [n for _, n in linked] == ["2", "0", "2"]  # received, open, closed
    for (href, n), numbers in zip(linked[1:], ([], needs["power"]), strict=True):
        assert "enterprise_need=power" in href and "created_from=" in href
        answer = lead.get(html.unescape(href)).text
        assert len(re.findall(r'<a href="/orders/\d+">', answer)) == int(n)
        assert all(number in answer for number in numbers)
    water = re.search(r'<tr data-need="water">(.*?)</tr>', page.text)
    assert water
    [_, (still_open, one), (closed, none)] = re.findall(
        r'<td class="num"[^>]*><a href="([^"]+)">(\d+)</a></td>', water.group(1)
    )
    assert (one, none) == ("1", "0") and "state=open" in still_open and "state=closed" in closed
    assert len(re.findall(r'<a href="/orders/\d+">', lead.get(html.unescape(still_open)).text)) == 1
    # The need-less row has nothing to link to (the list cannot ask for "no need").
    assert "<a " not in re.search(r'<tr data-need="">(.*?)</tr>', page.text).group(1)

    street = login("jx_sup").get("/dashboard").text
    assert _rows(street) == {
        "power": ["用电", "1", "0", "1", "0.0%", "0.0%", "0.0%"],
        "": ["未填诉求领域", "1", "1", "0", "—", "—", "—"],
    }

    english = lead.get("/lang/en", params={"next": "/dashboard"}).text
    assert "<h2>Enterprise appeals by need</h2>" in english and "<th>Answered on time</th>" in english
    assert _rows(english)["power"][0] == "Power" and _rows(english)[""][0] == "Need not given"
    # A period without enterprise appeals has no such section.
    assert 'data-testid="enterprise-needs"' not in lead.get("/dashboard", params={"period": "2020"}).text


def test_the_report_has_a_section_and_a_sheet_of_enterprise_appeals_by_need(
    needs: dict[str, Any], tmp_path: Path
) -> None:
    """专报: 企业诉求 after the streets, numbered among the sections (the later ones one further), and its sheet in
    the workbook, in Chinese and in English; a period without enterprise appeals has neither."""
    from openpyxl import load_workbook

    from cityhub.analytics import kpi, reports

    period = kpi.period_or_recent(None)
    with session_scope() as s:
        zh = reports.generate(s, period=period, out_dir=tmp_path / "zh", formats=("html", "xlsx"))
        en = reports.generate(s, period=period, out_dir=tmp_path / "en", formats=("html", "xlsx"), lang="en")
        none = reports.generate(s, period=kpi.parse_period("2020"), out_dir=tmp_path / "none", formats=("html", "xlsx"))
    page = zh.files["html"].read_text(encoding="utf-8")
    assert '<section id="enterprise">' in page and "<h2>五、企业诉求（按诉求领域）</h2>" in page
    assert "<h2>六、考核指标（镇街）</h2>" in page and "<h2>九、分析发现</h2>" in page
    section = page[page.index('<section id="enterprise">') : page.index('<section id="kpis">')]
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(<td.*?)</tr>", section)]
    assert cells == [
        ["用电", "2", "0", "2", "50.0%", "50.0%", "50.0%"],
        ["用水", "1", "1", "0", "-", "-", "-"],
        ["未填诉求领域", "1", "1", "0", "-", "-", "-"],
    ]
    sheet = load_workbook(zh.files["xlsx"])["企业诉求（按诉求领域）"]
    assert list(sheet.iter_rows(values_only=True)) == [
        (
            *("诉求领域", "受理件数", "在办", "已办结", "解决率", "按时答复率", "满意率"),
            *("解决率分子", "解决率分母", "按时答复率分子", "按时答复率分母", "满意率分子", "满意率分母"),
        ),
        ("用电", 2, 0, 2, 0.5, 0.5, 0.5, 1, 2, 1, 2, 1, 2),
        ("用水", 1, 1, 0, None, None, None, 0, 0, 0, 0, 0, 0),
        ("未填诉求领域", 1, 1, 0, None, None, None, 0, 0, 0, 0, 0, 0),
    ]
    assert load_workbook(zh.files["xlsx"]).sheetnames.index("企业诉求（按诉求领域）") == 3  # after the streets'

    page = en.files["html"].read_text(encoding="utf-8")
    assert "<h2>5. Enterprise appeals by need</h2>" in page and "<h2>9. Findings</h2>" in page
    assert "<th>Answered on time</th>" in page and "<td>Power</td>" in page and "<td>Need not given</td>" in page
    rows = list(load_workbook(en.files["xlsx"])["Enterprise appeals by need"].iter_rows(values_only=True))
    assert rows[0][:2] == ("Need", "Received") and rows[1][:2] == ("Power", 2) and rows[3][0] == "Need not given"

    page = none.files["html"].read_text(encoding="utf-8")
    assert 'id="enterprise"' not in page and "<h2>五、考核指标（镇街）</h2>" in page and "<h2>八、分析发现</h2>" in page
    assert "企业诉求（按诉求领域）" not in load_workbook(none.files["xlsx"]).sheetnames
