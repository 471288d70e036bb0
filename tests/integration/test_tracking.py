"""The citizens' progress lookup and rating (办理进度查询) on both backends: the API and the page, number + phone,
answers alike for a wrong number or phone, failures rate-limited, the rating audited as the citizen's callback."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import web_helpers
from app_helpers import shared_app
from cityhub.auth import passwords
from cityhub.db import session_scope
from cityhub.org.models import Role, Unit, User
from cityhub.workorders.models import Order, OrderEvent

PHONE = "13812345678"


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Low failure limits, set before the app reads its settings."""
    monkeypatch.setenv("CITYHUB_LOGIN_MAX_PER_USERNAME", "3")
    monkeypatch.setenv("CITYHUB_LOGIN_MAX_PER_IP", "6")
    monkeypatch.setenv("CITYHUB_SESSION_COOKIE_SECURE", "false")  # the test client speaks plain http


@pytest.fixture
def world(limits, admin_client) -> dict[str, Any]:
    """An appeal received, dispatched, accepted, commented internally and replied; an anonymous client."""
    c = admin_client
    with session_scope() as s:
        unit = s.scalars(select(Unit).where(Unit.code == "T-QU")).one()
        unit_id, unit_name = unit.id, unit.name
    order = c.post(
        "/api/v1/orders",
        json={"channel": "hotline", "title": "路灯不亮", "content": "云景路3号路灯坏了一周", "citizen_phone": PHONE},
    ).json()
    oid = order["id"]
    for action, body in (
        ("dispatch", {"unit_id": unit_id}),
        ("accept", {}),
        ("comment", {"text": "内部备注：施工队周三到"}),
        ("reply", {"text": "已更换灯泡，路灯恢复照明。"}),
    ):
        answer = c.post(f"/api/v1/orders/{oid}/actions/{action}", json=body)
        assert answer.status_code == 200, (action, answer.text)
    anonymous = TestClient(shared_app(), raise_server_exceptions=False)
    return {"id": oid, "number": order["number"], "unit": unit_name, "client": anonymous, "admin": c}


def test_the_citizen_sees_progress_and_the_reply_with_the_number_and_phone(world) -> None:
    c = world["client"]
    found = c.post("/api/v1/track", json={"number": world["number"].lower(), "phone": "+86 138-1234-5678"})
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["number"] == world["number"] and body["state"] == "replied" and body["can_rate"] is True
    assert body["reply_text"] == "已更换灯泡，路灯恢复照明。" and body["unit"] == world["unit"]
    actions = [m["action"] for m in body["milestones"]]
    assert actions == ["create", "dispatch", "accept", "reply"]  # the internal comment is not shown
    assert "内部备注" not in found.text and "管理员" not in found.text  # nor the people who acted


def test_a_wrong_number_or_phone_answers_alike_and_failures_are_limited(world) -> None:
    c = world["client"]
    wrong_phone = c.post("/api/v1/track", json={"number": world["number"], "phone": "13900000000"})
    unknown = c.post("/api/v1/track", json={"number": "BY20000101-000001", "phone": PHONE})
    assert wrong_phone.status_code == unknown.status_code == 404
    assert wrong_phone.json()["message"] == unknown.json()["message"]
    blank = c.post("/api/v1/track", json={"number": world["number"], "phone": "  "})
    assert blank.status_code == 422 and blank.json()["details"]["field"] == "phone"
    # Three failures at one number (CITYHUB_LOGIN_MAX_PER_USERNAME): even the right phone is refused a while.
    c.post("/api/v1/track", json={"number": world["number"], "phone": "13900000001"})
    c.post("/api/v1/track", json={"number": world["number"], "phone": "13900000002"})
    limited = c.post("/api/v1/track", json={"number": world["number"], "phone": PHONE})
    assert limited.status_code == 429 and "this order number" in limited.json()["message"]
    # Six from one address (CITYHUB_LOGIN_MAX_PER_IP): every number is refused from there.
    for i in range(2):
        c.post("/api/v1/track", json={"number": f"BY20000101-00000{i + 2}", "phone": PHONE})
    elsewhere = c.post("/api/v1/track", json={"number": "BY20000101-000009", "phone": PHONE})
    assert elsewhere.status_code == 429 and "this address" in elsewhere.json()["message"]
    assert int(limited.headers["Retry-After"]) > 0 and int(elsewhere.headers["Retry-After"]) > 0  # had none


def test_the_citizen_rates_the_reply_once_audited_as_theirs(world) -> None:
    c = world["client"]
    who = {"number": world["number"], "phone": PHONE}
    for vague in ("yes", 1, "false"):  # a rating is true or false, nothing read as one
        assert c.post("/api/v1/track/rate", json={**who, "satisfied": vague}).status_code == 422, vague
    unexplained = c.post("/api/v1/track/rate", json={**who, "satisfied": False})
    assert unexplained.status_code == 422 and unexplained.json()["details"]["field"] == "reason"
    rated = c.post("/api/v1/track/rate", json={**who, "satisfied": False, "reason": "晚上还是不亮"})
    assert rated.status_code == 200, rated.text
    assert rated.json()["state"] == "called_back" and rated.json()["satisfied"] is False
    assert rated.json()["can_rate"] is False
    again = c.post("/api/v1/track/rate", json={**who, "satisfied": True})
    assert again.status_code == 409
    with session_scope() as s:
        event = s.scalars(
            select(OrderEvent).where(OrderEvent.order_id == world["id"], OrderEvent.action == "callback")
        ).one()
        assert event.actor_name == "市民（尾号5678）" and event.actor_id is None and event.reason == "晚上还是不亮"
    # The supervisor sees it as any callback: the order can be reopened for the unsatisfied citizen.
    actions = world["admin"].get(f"/api/v1/orders/{world['id']}/actions").json()
    assert "reopen" in actions
    # The order page names who rated it in the reader's language (the trail keeps the product's Chinese form).
    admin = _district_supervisor("t-sup")
    assert "市民（尾号5678）" in admin.get(f"/orders/{world['id']}").text
    admin.cookies.set("cityhub_lang", "en")
    english = admin.get(f"/orders/{world['id']}").text
    admin.cookies.delete("cityhub_lang")
    assert "Citizen (phone ending 5678)" in english and "尾号" not in english


def _district_supervisor(username: str) -> Any:
    """A supervisor of the test district, signed in on the pages."""
    with session_scope() as s:
        district = s.scalars(select(Unit).where(Unit.code == "T-QU")).one()
        s.add(
            User(
                username=username,
                full_name="督办员",
                role=Role.SUPERVISOR,
                unit_id=district.id,
                password_hash=passwords.hash_password(web_helpers.PASSWORD),
            )
        )
    return web_helpers.login(username)


def _token(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def test_the_page_looks_up_and_rates_behind_its_form_token(world) -> None:
    c = world["client"]
    status = c.get("/", headers={"Accept": "text/html"})
    assert 'href="/track"' in status.text and 'href="/track"' in c.get("/login").text
    form = c.get("/track")
    assert form.status_code == 200 and form.headers["cache-control"] == "no-store"
    who = {"number": world["number"], "phone": PHONE}
    forged = c.post("/track", data={**who, "csrf_token": "forged"})
    assert forged.status_code == 403 and 'data-testid="track-order"' not in forged.text
    found = c.post("/track", data={**who, "csrf_token": _token(forged.text)})  # each page its own token
    assert found.status_code == 200 and 'data-testid="track-order"' in found.text
    assert "已更换灯泡，路灯恢复照明。" in found.text and world["unit"] in found.text
    # the appeal's type and how it was sent, each on its own row as the citizen's order page has them
    assert 'data-testid="track-type">咨询</td>' in found.text
    assert 'data-testid="track-channel">12345热线</td>' in found.text
    wrong = c.post("/track", data={**who, "phone": "13900000000", "csrf_token": _token(found.text)})
    assert wrong.status_code == 404 and "未找到" in wrong.text
    unchosen = c.post("/track/rate", data={**who, "csrf_token": _token(wrong.text)})
    assert unchosen.status_code == 422 and 'data-testid="track-rate-error"' in unchosen.text
    rated = c.post("/track/rate", data={**who, "satisfied": "1", "csrf_token": _token(unchosen.text)})
    assert rated.status_code == 200 and 'data-testid="track-notice"' in rated.text
    assert 'data-testid="track-satisfied"' in rated.text and 'data-testid="track-rate"' not in rated.text
    assert c.post("/api/v1/track", json=who).json()["satisfied"] is True


def test_the_citizen_rates_the_reply_basically_satisfied_through_the_api(world) -> None:
    """POST /api/v1/track/rate took satisfied true or false only, where a text message and the pages offer 基本满意
    too. It now takes rating (basically_satisfied: satisfied, kept apart), refused when it disagrees with satisfied,
    and the lookup answers it."""
    c = world["client"]
    who = {"number": world["number"], "phone": PHONE}
    wrong = c.post("/api/v1/track/rate", json={**who, "satisfied": False, "rating": "basically_satisfied"})
    assert wrong.status_code == 422 and "disagrees" in wrong.text
    rated = c.post("/api/v1/track/rate", json={**who, "satisfied": True, "rating": "basically_satisfied"})
    assert rated.status_code == 200, rated.text
    assert rated.json()["satisfied"] is True and rated.json()["rating"] == "basically_satisfied"
    assert c.post("/api/v1/track", json=who).json()["rating"] == "basically_satisfied"


def test_the_progress_reads_as_what_happened_in_english(world) -> None:
    """The milestones were named by the staff's buttons — "Receive", "Dispatch · 人和镇", "Accept": in English they say
    what happened to the appeal; in Chinese too, not the staff's 派单 and 签收 (转交办理, 接收办理)."""
    c = world["client"]
    who = {"number": world["number"], "phone": PHONE}
    chinese = c.post("/track", data={**who, "csrf_token": _token(c.get("/track").text)}).text
    c.get("/lang/en")
    english = c.post("/track", data={**who, "csrf_token": _token(c.get("/track").text)}).text
    c.get("/lang/zh-CN")

    def steps(page: str) -> list[str]:
        listed = page.split('data-testid="track-milestones">')[1].split("</ol>")[0]
        return [
            re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", li)).strip() for li in re.findall(r"</time>(.*?)</li>", listed)
        ]

    unit = world["unit"]
    named = "Baiyun District"  # the unit's name to an English reader (localnames), as the signed-in pages say it
    assert unit == "白云区"
    assert steps(english) == ["Received", f"Passed on · {named}", f"Taken on · {named}", f"Replied · {named}"]
    assert steps(chinese) == ["受理", f"转交办理 · {unit}", f"接收办理 · {unit}", f"答复 · {unit}"]


def test_a_refused_lookup_or_rating_keeps_what_the_citizen_typed(world) -> None:
    c = world["client"]
    who = {"number": world["number"], "phone": PHONE}
    wrong = c.post("/track", data={**who, "phone": "138 1234 5670", "csrf_token": _token(c.get("/track").text)})
    # The number and the phone typed stay, to be corrected (the phone had to be typed again).
    assert wrong.status_code == 404 and 'value="138 1234 5670"' in wrong.text
    assert f'value="{world["number"]}"' in wrong.text
    # A rating without a choice keeps its words; 不满意 without words keeps the choice.
    unchosen = c.post("/track/rate", data={**who, "reason": "晚上还是不亮", "csrf_token": _token(wrong.text)})
    assert unchosen.status_code == 422 and "请选择“满意”“基本满意”或“不满意”" in unchosen.text
    assert ">晚上还是不亮</textarea>" in unchosen.text
    unexplained = c.post("/track/rate", data={**who, "satisfied": "0", "csrf_token": _token(unchosen.text)})
    assert unexplained.status_code == 422 and "请说明仍未解决的问题" in unexplained.text
    assert 'name="satisfied" value="0" checked' in unexplained.text
    assert 'name="satisfied" value="1" checked' not in unexplained.text


def test_an_unsatisfied_rating_waits_in_the_supervisors_list_until_reopened(world) -> None:
    """回访不满意: the citizen's 不满意 leaves the order 已回访 for staff to decide (重办, or 办结 as not resolved) —
    the supervisor's quick view and the API's ``satisfied=false`` list it, marked, and no order rated 满意; the
    citizen's lookup says what happens next; reopened, it leaves the list and the lookup no longer says so."""
    c, admin = world["client"], world["admin"]
    who = {"number": world["number"], "phone": PHONE}
    content = admin.post("/api/v1/orders", json={"channel": "hotline", "content": "云景路5号井盖缺失"}).json()
    unit_id = admin.get(f"/api/v1/orders/{world['id']}").json()["lead_unit_id"]
    for action, body in (
        ("dispatch", {"unit_id": unit_id}),
        ("accept", {}),
        ("reply", {"text": "已补装井盖。"}),
        ("callback", {"satisfied": True}),
    ):
        assert admin.post(f"/api/v1/orders/{content['id']}/actions/{action}", json=body).status_code == 200, action
    rated = c.post("/api/v1/track/rate", json={**who, "satisfied": False, "reason": "晚上还是不亮"})
    assert rated.status_code == 200, rated.text
    sup = _district_supervisor("t-sup2")
    views = dict(
        (label, href.replace("&amp;", "&"))
        for href, label in re.findall(
            r'<a href="([^"]*)" data-testid="quick-view"[^>]*>([^<]*)<', sup.get("/orders").text
        )
    )
    assert views["回访不满意"] == "/orders?state=called_back&satisfied=false&sort=oldest"

    def listed(path: str) -> set[str]:
        page = sup.get(path)
        assert page.status_code == 200, page.text[:300]
        return {n for n in (world["number"], content["number"]) if n in page.text}

    page = sup.get(views["回访不满意"]).text
    assert listed(views["回访不满意"]) == {world["number"]}
    assert 'data-testid="unsatisfied"' in page and '<option value="false" selected>不满意</option>' in page
    assert listed("/orders?satisfied=true") == {content["number"]}
    assert 'data-testid="unsatisfied"' not in sup.get("/orders?satisfied=true").text
    wrong = sup.get("/orders?satisfied=maybe")
    assert wrong.status_code == 200 and 'data-testid="field-error-satisfied"' in wrong.text
    api = admin.get("/api/v1/orders", params={"satisfied": "false", "state": "called_back"}).json()["items"]
    assert [o["number"] for o in api] == [world["number"]]
    assert admin.get("/api/v1/orders", params={"satisfied": "perhaps"}).status_code == 422
    lookup = c.post("/track", data={**who, "csrf_token": _token(c.get("/track").text)})
    assert 'data-testid="track-unsatisfied-next"' in lookup.text and "决定重新办理" in lookup.text
    reopened = admin.post(f"/api/v1/orders/{world['id']}/actions/reopen", json={"reason": "市民反映仍不亮"})
    assert reopened.status_code == 200, reopened.text
    assert listed(views["回访不满意"]) == set()
    assert admin.get("/api/v1/orders", params={"satisfied": "false"}).json()["items"] == []
    lookup = c.post("/track", data={**who, "csrf_token": _token(c.get("/track").text)})
    assert 'data-testid="track-order"' in lookup.text and 'data-testid="track-unsatisfied-next"' not in lookup.text


def test_an_order_without_a_phone_cannot_be_looked_up(world) -> None:
    made = world["admin"].post("/api/v1/orders", json={"channel": "web", "content": "匿名反映占道经营"}).json()
    answer = world["client"].post("/api/v1/track", json={"number": made["number"], "phone": PHONE})
    assert answer.status_code == 404


def test_another_appeal_merged_in_is_not_shown_to_the_citizen(world) -> None:
    """A second citizen's appeal merged into this one leaves an entry on this order's trail for the units; the
    citizen looking up their appeal is not shown it, nor the other appeal's number, name or phone."""
    admin = world["admin"]
    other = admin.post(
        "/api/v1/orders",
        json={
            "channel": "hotline",
            "content": "云景路3号路灯不亮",
            "citizen_name": "李四",
            "citizen_phone": "13900002222",
        },
    ).json()
    merged = admin.post(f"/api/v1/orders/{other['id']}/actions/merge", json={"master_id": world["id"]})
    assert merged.status_code == 200, merged.text
    staff = admin.get(f"/api/v1/orders/{world['id']}/events").json()
    assert staff[-1]["action"] == "merged_in" and staff[-1]["payload"]["merged_number"] == other["number"]
    c = world["client"]
    found = c.post("/api/v1/track", json={"number": world["number"], "phone": PHONE})
    assert [m["action"] for m in found.json()["milestones"]] == ["create", "dispatch", "accept", "reply"]
    page = c.post(
        "/track", data={"number": world["number"], "phone": PHONE, "csrf_token": _token(c.get("/track").text)}
    )
    assert page.status_code == 200 and 'data-testid="track-order"' in page.text
    for answer in (found.text, page.text):
        assert other["number"] not in answer and "李四" not in answer and "13900002222" not in answer


def test_the_citizen_of_a_merged_appeal_follows_the_one_handled_for_both(world) -> None:
    """Merged into another citizen's appeal, theirs was told 请以该工单的进度为准 and nothing more: that appeal's
    lookup needs the other citizen's phone. Now their lookup says where it stands — its state, unit, reply — with
    none of the other citizen's words or data, their name in the reply replaced."""
    admin = world["admin"]
    master = admin.post(
        "/api/v1/orders",
        json={
            "channel": "hotline",
            "content": "云景路5号路灯不亮",
            "citizen_name": "王五",
            "citizen_phone": "13900003333",
        },
    ).json()
    mine = admin.post(
        "/api/v1/orders", json={"channel": "hotline", "content": "云景路5号的路灯晚上不亮", "citizen_phone": PHONE}
    ).json()
    assert admin.post(f"/api/v1/orders/{mine['id']}/actions/merge", json={"master_id": master["id"]}).status_code == 200
    c = world["client"]

    def looked_up() -> dict[str, Any]:
        found = c.post("/api/v1/track", json={"number": mine["number"], "phone": PHONE})
        assert found.status_code == 200, found.text
        assert "云景路5号路灯不亮" not in found.text and "13900003333" not in found.text  # the other appeal's own
        return found.json()

    waiting = looked_up()
    assert waiting["merged_into"] == master["number"]
    assert waiting["merged_progress"]["state"] == "received" and waiting["merged_progress"]["reply_text"] is None
    with session_scope() as s:
        unit_id = s.scalars(select(Unit.id).where(Unit.code == "T-QU")).one()
    for action, body in (
        ("dispatch", {"unit_id": unit_id}),
        ("accept", {}),
        ("reply", {"text": "王五先生您好，已更换云景路5号的灯泡，路灯恢复照明。"}),
        ("callback", {"satisfied": True}),
    ):
        assert admin.post(f"/api/v1/orders/{master['id']}/actions/{action}", json=body).status_code == 200, action
    progress = looked_up()["merged_progress"]
    # The other citizen rated it: for this one it is the reply, not 已评价.
    assert progress["state"] == "replied" and progress["unit"] == world["unit"] and progress["replied_at"]
    # Scrubbed as the data-sharing API's texts are: the name, and the house number with it.
    assert progress["reply_text"] == "[已隐去]先生您好，已更换云景路[门牌号]的灯泡，路灯恢复照明。"
    page = c.post("/track", data={"number": mine["number"], "phone": PHONE, "csrf_token": _token(c.get("/track").text)})
    assert page.status_code == 200 and 'data-testid="merged-progress"' in page.text
    assert "已更换云景路[门牌号]的灯泡" in page.text and "王五" not in page.text and "13900003333" not in page.text


def test_a_returned_appeal_shows_no_limit_until_it_is_dispatched_again(world) -> None:
    """退单 stops the clock (the next dispatch starts a new limit): the lookup showed the old 办结时限 as if it ran."""
    admin, c = world["admin"], world["client"]
    with session_scope() as s:
        unit_id = s.scalars(select(Unit.id).where(Unit.code == "T-QU")).one()
    made = admin.post(
        "/api/v1/orders", json={"channel": "hotline", "content": "云景路的井盖缺失", "citizen_phone": PHONE}
    ).json()

    def due() -> object:
        found = c.post("/api/v1/track", json={"number": made["number"], "phone": PHONE})
        assert found.status_code == 200, found.text
        return found.json()["due_at"]

    for action, body in (("dispatch", {"unit_id": unit_id}), ("return", {"reason": "不属本单位"})):
        done = admin.post(f"/api/v1/orders/{made['id']}/actions/{action}", json=body)
        assert done.status_code == 200, done.text
        if action == "dispatch":
            assert due() is not None
    assert due() is None
    page = c.post("/track", data={"number": made["number"], "phone": PHONE, "csrf_token": _token(c.get("/track").text)})
    assert 'data-testid="track-due"' not in page.text and "正在分派" in page.text


def test_being_dispatched_is_said_only_of_an_appeal_that_waits_for_it(world) -> None:
    """正在分派 stood for any order without a unit: one cancelled (or answered on the spot) before dispatch has no
    unit to come, so its lookup names none; one received and waiting says it is being dispatched."""
    admin, c = world["admin"], world["client"]

    def looked_up(number: str) -> str:
        form = c.get("/track")
        page = c.post("/track", data={"number": number, "phone": PHONE, "csrf_token": _token(form.text)})
        assert page.status_code == 200, page.text
        return page.text

    made = [
        admin.post(
            "/api/v1/orders",
            json={"channel": "hotline", "title": title, "content": "云景路的井盖缺失", "citizen_phone": PHONE},
        ).json()
        for title in ("井盖缺失", "井盖缺失（重复来电）")
    ]
    cancelled = admin.post(f"/api/v1/orders/{made[1]['id']}/actions/cancel", json={"reason": "重复来电，已合并处理"})
    assert cancelled.status_code == 200, cancelled.text
    assert re.search(r'data-testid="track-unit">正在分派<', looked_up(made[0]["number"]))
    assert 'data-testid="track-unit"' not in looked_up(made[1]["number"])
    assert f'data-testid="track-unit">{world["unit"]}<' in looked_up(world["number"])


def test_the_lookup_and_the_citizens_page_say_the_limit_and_when_it_was_answered(world) -> None:
    """/track hid the time limit once the order was replied, where the citizen's own order page showed it: both say
    办结时限 before and after the reply and, while a reply stands, when it was given — within the limit or after it;
    sent back (退回答复), no answer stands."""
    c, admin = world["client"], world["admin"]
    with session_scope() as s:
        citizen = User(
            username="t-cit",
            full_name="市民",
            role=Role.CITIZEN,
            phone=PHONE,
            password_hash=passwords.hash_password(web_helpers.PASSWORD),
        )
        s.add(citizen)
        s.flush()
        s.get(Order, world["id"]).citizen_user_id = citizen.id
    mine = web_helpers.login("t-cit")

    def said() -> tuple[list[str | None], list[str | None]]:
        lookup = c.post(
            "/track", data={"number": world["number"], "phone": PHONE, "csrf_token": _token(c.get("/track").text)}
        )
        page = mine.get(f"/orders/{world['id']}")
        assert lookup.status_code == 200 and page.status_code == 200
        due = [_cell(lookup.text, "track-due"), _cell(page.text, "due-at")]
        answered = [_cell(lookup.text, "answered"), _cell(page.text, "answered")]
        return due, answered

    due, answered = said()
    assert due[0] is not None and due[0] == due[1]
    assert answered[0] is not None and answered[0] == answered[1] and answered[0].endswith("· 在办结时限内")
    with session_scope() as s:  # the reply came after the limit
        order = s.get(Order, world["id"])
        order.due_at = order.replied_at - timedelta(hours=1)
    due, answered = said()
    assert due[0] is not None and due[0] == due[1]
    assert answered[0] == answered[1] and "<strong>超过办结时限</strong>" in (answered[0] or "")
    sent_back = admin.post(f"/api/v1/orders/{world['id']}/actions/reject_reply", json={"reason": "未说明更换时间"})
    assert sent_back.status_code == 200, sent_back.text
    due, answered = said()
    assert due[0] is not None and due[0] == due[1] and answered == [None, None]


def _cell(page: str, testid: str) -> str | None:
    found = re.search(rf'data-testid="{testid}">(.*?)</td>', page)
    return found.group(1) if found else None


def test_an_appeal_waiting_to_be_dispatched_says_when_to_expect_an_answer(world) -> None:
    """Before dispatch there is no 办结时限 yet: the progress lookup said nothing of when an answer would come. It
    says the limit the rules give such an appeal once it reaches its department (``answer_within``); a dispatched
    one keeps its own limit instead."""
    c, admin = world["client"], world["admin"]
    waiting = admin.post(
        "/api/v1/orders",
        json={"channel": "hotline", "title": "井盖缺失", "content": "云景路口井盖缺失", "citizen_phone": PHONE},
    ).json()
    body = c.post("/api/v1/track", json={"number": waiting["number"], "phone": PHONE}).json()
    assert body["due_at"] is None and body["answer_within"] > 0 and body["answer_round_the_clock"] is False
    dispatched = c.post("/api/v1/track", json={"number": world["number"], "phone": PHONE}).json()
    assert dispatched["answer_within"] is None and dispatched["due_at"] is not None
    # the page says it in words, as the citizen's order page does
    form = c.get("/track").text
    page = c.post("/track", data={"number": waiting["number"], "phone": PHONE, "csrf_token": _token(form)}).text
    assert re.search(r'data-testid="expected-answer">派至负责部门后一般 \d+ 个工作日内答复</td>', page)
