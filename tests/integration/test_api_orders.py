"""The order endpoints over the ASGI app on both backends: one error body, versions, masking, audit trail.

The client acts as a district administrator (bearer token), who may do everything; a district leader's token
checks masking, since leaders need not see citizens' personal data.
"""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from cityhub.auth.service import create_token
from cityhub.db import session_scope
from cityhub.org.models import Role, Unit, UnitTier, User


@pytest.fixture
def client(admin_client):
    """The shared administrator client, with a department to dispatch to and a leader's headers."""
    with session_scope() as s:
        district_id = s.scalars(select(User.unit_id).where(User.role == Role.ADMIN)).one()
        unit = Unit(code="API-D01", name="城管局", tier=UnitTier.DEPARTMENT, parent_id=district_id)
        leader = User(username="api-leader", full_name="区领导", role=Role.LEADER, unit_id=district_id)
        s.add_all([unit, leader])
        s.flush()
        unit_id = unit.id
        _, leader_token = create_token(s, user_id=leader.id, name="test")
    admin_client.unit_id = unit_id
    admin_client.district_id = district_id
    admin_client.leader = {"Authorization": f"Bearer {leader_token}"}
    return admin_client


REPLAY, DIFFERS = "x-cityhub-replay", "x-cityhub-replay-differs"


def _create(client, status=201, **extra):
    body = {
        "channel": "web",
        "content": "小区路灯不亮已经一周",
        "citizen_name": "王五",
        "citizen_phone": "13812345678",
        **extra,
    }
    response = client.post("/api/v1/orders", json=body)
    assert response.status_code == status, response.text
    assert response.headers["location"] == f"/api/v1/orders/{response.json()['id']}"
    assert response.headers.get("x-cityhub-replay") == (None if status == 201 else "true")
    return response.json()


def test_create_masks_personal_data_and_is_idempotent(client):
    order = _create(client, external_id="web-1")
    assert order["citizen_phone"] == "13812345678" and order["citizen_name"] == "王五"
    assert order["state"] == "received" and order["version"] == 1
    seen_by_leader = client.get(f"/api/v1/orders/{order['id']}", headers=client.leader).json()
    assert seen_by_leader["citizen_phone"] == "138****5678" and seen_by_leader["citizen_name"] == "王*"
    listed = client.get("/api/v1/orders", headers=client.leader).json()["items"]
    assert [(o["citizen_name"], o["citizen_phone"]) for o in listed] == [("王*", "138****5678")]
    # Sent again (a retry after a timeout): nothing new, 200 and the header say so, the body is the order's as a
    # GET gives it.
    again = _create(client, 200, external_id="web-1", content="小区路灯不亮 已经一周")  # the words spaced otherwise
    assert again == client.get(f"/api/v1/orders/{order['id']}").json()
    assert again["id"] == order["id"]
    # The id as another system writes it (padded, a line end kept) is the same appeal, as in the bulk import.
    padded = _create(client, 200, external_id=" web-1\n")
    assert padded["id"] == order["id"] and padded["external_id"] == "web-1"
    assert _create(client, external_id="  ")["external_id"] is None
    # A field the API does not know is refused by name, not dropped with what it held.
    typo = client.post(
        "/api/v1/orders", json={"channel": "web", "content": "井盖丢了", "citizen_mobile": "13800000000"}
    )
    assert typo.status_code == 422 and "citizen_mobile" in typo.text
    # The same id saying something else is no re-sent appeal: refused naming the order, its words not lost silently.
    other = client.post("/api/v1/orders", json={"channel": "web", "external_id": "web-1", "content": "井盖丢了"})
    assert other.status_code == 409 and order["number"] in other.json()["message"]
    assert other.json()["details"]["field"] == "external_id"


def test_a_replay_names_the_fields_it_gave_otherwise_than_the_order_holds_them(client):
    """A platform that corrected an appeal's address or phone and re-sent it under the same external_id got 200 and
    the order back — the correction silently not applied (a replay changes nothing), where the client believed it
    kept. The replay now names those fields in X-Cityhub-Replay-Differs; a replay saying the same has no such header."""
    order = _create(client, external_id="city-77", address="白云区三元里大道100号", lat=23.16, lng=113.26)
    same = client.post(
        "/api/v1/orders",
        json={
            "channel": "web",
            "external_id": "city-77",
            "content": "小区路灯不亮已经一周",
            "citizen_phone": "138 1234 5678",
            "lat": 23.16,
            "lng": 113.26,
        },
    )
    assert same.status_code == 200 and same.headers[REPLAY] == "true" and DIFFERS not in same.headers
    corrected = client.post(
        "/api/v1/orders",
        json={
            "channel": "web",
            "external_id": "city-77",
            "content": "小区路灯不亮已经一周",
            "citizen_name": "王五",
            "citizen_phone": "13900000000",
            "address": "白云区三元里大道102号",
            "urgency": "urgent",
        },
    )
    assert corrected.status_code == 200 and corrected.headers[REPLAY] == "true"
    assert corrected.headers[DIFFERS] == "citizen_phone, address, urgency"
    kept = client.get(f"/api/v1/orders/{order['id']}").json()
    assert (kept["citizen_phone"], kept["address"], kept["urgency"]) == (
        "13812345678",
        "白云区三元里大道100号",
        "normal",
    )
    assert corrected.json() == kept


def test_an_empty_external_id_is_no_id_on_every_intake_path(client, cli_run):
    """An empty (or blank) ``external_id`` is treated as absent wherever a caller gives one — the API, the command
    line, a file's id column — never stored as the id "" that a second appeal would then replay: the API's and the
    command line's appeals are each a new order without an id, and the import gives such a row the id of its own
    cells, as to a row of a file without an id column (the same file imported again skips it)."""
    first, second = _create(client, external_id=""), _create(client, external_id="")
    assert first["id"] != second["id"] and first["external_id"] is None and second["external_id"] is None

    made = []
    for _ in range(2):
        code, out, err = cli_run("orders", "create", "--content", "楼道灯坏了", "--external-id", "")
        assert code == 0, err
        made.append(json.loads(out))
    assert [(o["created"], o["external_id"]) for o in made] == [(True, None), (True, None)]
    assert made[0]["id"] != made[1]["id"]

    sheet = {"file": ("ids.csv", "编号,反映内容\n,桥下积水\n  ,人民路井盖缺失\n".encode(), "text/csv")}
    choices = {"column": ["content=反映内容", "external_id=编号"], "channel": "mailbox"}
    done = client.post("/api/v1/orders/import", data=choices, files=sheet)
    assert (done.status_code, done.json()["imported"]) == (200, 2), done.text
    ids = [o["external_id"] for o in client.get("/api/v1/orders", params={"channel": "mailbox"}).json()["items"]]
    assert len(set(ids)) == 2 and all(i and i.startswith("h:") for i in ids), ids
    again = client.post("/api/v1/orders/import", data=choices, files=sheet).json()
    assert (again["imported"], again["skipped_existing"]) == (0, 2)


CALL = (
    "本人李雪梅，身份证44010619850101123X，住三元里大道88号5栋1907室，手机１３９１２３４５６７８，"
    "备用139.1234.5678，邻居（电话一三九八七六五四三二一）夜间装修噪音。"
)
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)?")
CALL_SECRETS = ("李雪梅", "44010619850101123X", "88号", "5栋", "1907", "１３９", "139.1234", "一三九八", "13912345678")


def _unit_staff(client, code: str, tier: UnitTier, role: Role) -> tuple[int, dict[str, str]]:
    """A unit under the district (``code``) and the bearer headers of one of its staff in ``role``."""
    with session_scope() as s:
        unit = Unit(code=code, name=f"单位{code}", tier=tier, parent_id=client.district_id)
        s.add(unit)
        s.flush()
        user = User(username=f"{role.value}-{code}", full_name="工作人员", role=role, unit_id=unit.id)
        s.add(user)
        s.flush()
        _, token = create_token(s, user_id=user.id, name="test")
        return unit.id, {"Authorization": f"Bearer {token}"}


def _headers_of_handler(client, *, unit_code: str) -> tuple[int, dict[str, str]]:
    """A department under the district and its handler's bearer headers."""
    return _unit_staff(client, unit_code, UnitTier.DEPARTMENT, Role.HANDLER)


@pytest.mark.parametrize("name", ["unit_id", "street_id", "community_id", "category_id", "import_batch_id"])
def test_an_id_filter_beyond_every_key_lists_nothing_on_either_backend(client, name):
    """An id no row can have (beyond the 32-bit keys) names nothing: an empty list, as on SQLite — PostgreSQL refused
    to compare it, and the list answered 422 "integer out of range" there alone."""
    _create(client, external_id=f"far-{name}")
    answer = client.get("/api/v1/orders", params={name: 2**40, "count": "true"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["items"] == [] and answer.json()["total"] == 0
    assert client.get("/api/v1/orders", params={"count": "true"}).json()["total"] == 1


def test_masked_views_scrub_what_the_citizen_typed_into_the_text(client):
    """A leader and an assisting unit see no more of the citizen in title, content, reply, address and trail than
    in the masked name and phone; whoever sees the citizen's data sees it all."""
    order = _create(
        client,
        channel="hotline",
        content=CALL,
        citizen_name="李雪梅",
        citizen_phone="13912345678",
        address="白云区三元里街道三元里大道88号5栋1907室",
        lat=23.16321,
        lng=113.26487,
    )
    helper_id, helper = _headers_of_handler(client, unit_code="API-D02")
    url = f"/api/v1/orders/{order['id']}/actions"
    for action, body in (
        ("dispatch", {"unit_id": client.unit_id}),
        ("add_assist", {"unit_id": helper_id}),
        ("accept", {}),
        ("comment", {"text": "已电话联系李雪梅 139 1234 5678，约好到5栋1907室看现场"}),
        ("assist_accept", {"unit_id": helper_id}),
        ("assist_reply", {"unit_id": helper_id, "text": "已协助核查5栋1907室"}),
        ("reply", {"text": "已到三元里大道88号5栋1907室核查并处理，李雪梅表示满意"}),
    ):
        done = client.post(f"{url}/{action}", json=body)
        assert done.status_code == 200, done.text

    for headers in (client.leader, helper):
        one = client.get(f"/api/v1/orders/{order['id']}", headers=headers)
        listed = client.get("/api/v1/orders", headers=headers)
        trail = client.get(f"/api/v1/orders/{order['id']}/events", headers=headers)
        for response in (one, listed, trail):
            assert response.status_code == 200
            # Times are left out of the search: a timestamp's microseconds may read 1907 too.
            text = _TIMESTAMP.sub("", response.text)
            for secret in CALL_SECRETS:
                assert secret not in text, (response.url, secret)
        seen = one.json()
        assert seen["citizen_name"] == "李**" and seen["address"] == "白云区三元里街道三元里大道"
        assert seen["lat"] == 23.16 and seen["lng"] == 113.26
        assert seen["content"].startswith("本人[已隐去]，身份证[身份证号]，住三元里大道[门牌号]，")
        assert seen["title"].startswith("本人[已隐去]") and "三元里大道[门牌号]" in seen["reply_text"]
        assert listed.json()["items"][0] == seen
        assert seen["assists"][0]["reply_text"] == "已协助核查[门牌号]"
        comment = next(e for e in trail.json() if e["action"] == "comment")
        assert comment["payload"]["text"] == "已电话联系[已隐去] [电话]，约好到[门牌号]看现场"

    full = client.get(f"/api/v1/orders/{order['id']}").json()  # the administrator sees the citizen's data
    assert full["content"] == CALL and full["address"] == "白云区三元里街道三元里大道88号5栋1907室"
    assert full["lat"] == 23.16321 and "李雪梅" in client.get(f"/api/v1/orders/{order['id']}/events").text


def test_similar_orders_are_scrubbed_for_whoever_sees_orders_masked(client):
    """Another order's title and reply excerpt in the similar-orders answer are shown as that order's own page would
    show them: scrubbed for a leader, whole for the administrator."""
    title = "李雪梅反映三元里大道88号5栋1907室楼上夜间装修噪音扰民"
    first = _create(client, channel="hotline", title=title, content=CALL, citizen_name="李雪梅")
    url = f"/api/v1/orders/{first['id']}/actions"
    for action, body in (
        ("dispatch", {"unit_id": client.unit_id}),
        ("accept", {}),
        ("reply", {"text": "已到三元里大道88号5栋1907室核查，已联系李雪梅说明处理情况"}),
    ):
        assert client.post(f"{url}/{action}", json=body).status_code == 200
    second = _create(client, content=CALL.replace("李雪梅", "赵六"), citizen_name="赵六")

    led = client.get(f"/api/v1/orders/{second['id']}/similar", headers=client.leader)
    assert led.status_code == 200, led.text
    shown = [c for c in led.json()["similar"] + led.json()["duplicates"] if c["order_id"] == first["id"]]
    assert shown, led.json()  # the first order is found, so the check below could fail
    for secret in ("李雪梅", "88号", "5栋", "1907"):
        assert secret not in led.text, secret
    assert all(c["title"].startswith("[已隐去]反映三元里大道[门牌号]") for c in shown)

    whole = client.get(f"/api/v1/orders/{second['id']}/similar").text  # the administrator's answer
    assert title in whole and "李雪梅说明处理情况" in whole


def test_actions_move_the_order_and_versions_guard_updates(client):
    order = _create(client)
    url = f"/api/v1/orders/{order['id']}/actions"
    done = client.post(f"{url}/dispatch", json={"unit_id": client.unit_id, "version": 1})
    assert done.status_code == 200 and done.json()["state"] == "dispatched" and done.json()["version"] == 2
    stale = client.post(f"{url}/accept", json={"version": 1})
    assert stale.status_code == 409 and stale.json()["code"] == "conflict"
    by_header = client.post(f"{url}/accept", json={}, headers={"If-Match": '"2"'})
    assert by_header.status_code == 200 and by_header.json()["state"] == "accepted"
    assert client.get(f"/api/v1/orders/{order['id']}/actions").json().count("reply") == 1
    trail = client.get(f"/api/v1/orders/{order['id']}/events").json()
    assert [e["action"] for e in trail] == ["create", "dispatch", "accept"]
    assert {e["actor_name"] for e in trail} == {"管理员"} and all(e["actor_id"] for e in trail)


def test_an_if_match_that_names_no_version_is_refused_not_ignored(client):
    """An If-Match header that was not a plain number was ignored — the action taken whatever the order had become,
    the lost update the header is sent to prevent — and one of a Latin-1 digit (²) was a 500. Each is now a 422
    naming the header, nothing done; a version as a number, quoted or weak, and ``*`` are taken as before."""
    order = _create(client)
    url = f"/api/v1/orders/{order['id']}/actions"
    assert client.post(f"{url}/comment", json={"text": "先看一下"}).json()["version"] == 2
    for value in ("abc", '"1", "2"', "0", "v2", b"\xb2", '"-1"'):
        refused = client.post(f"{url}/comment", json={"text": "过时的副本"}, headers={"If-Match": value})
        assert (refused.status_code, refused.json()["code"]) == (422, "validation_failed"), (value, refused.text)
        assert refused.json()["details"]["field"] == "If-Match" and "If-Match must be" in refused.json()["message"]
        # checked when the body says the version too
        both = client.post(f"{url}/comment", json={"text": "x", "version": 2}, headers={"If-Match": value})
        assert both.status_code == 422, (value, both.text)
    trail = client.get(f"/api/v1/orders/{order['id']}/events").json()
    assert [e["action"] for e in trail] == ["create", "comment"]
    assert client.post(f"{url}/comment", json={"text": "x"}, headers={"If-Match": 'W/"1"'}).status_code == 409
    for value in ('W/"2"', '"3"', "4", "*"):
        assert client.post(f"{url}/comment", json={"text": "x"}, headers={"If-Match": value}).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("post", "/api/v1/orders", {"channel": "fax", "content": "x"}, 422, "validation_failed"),
        ("post", "/api/v1/orders", {"channel": "web"}, 422, "validation_failed"),
        ("get", "/api/v1/orders/987654321", None, 404, "not_found"),
        ("get", "/api/v1/orders?limit=0", None, 422, "validation_failed"),
        ("post", "/api/v1/orders/987654321/actions/accept", {}, 404, "not_found"),
        ("post", "/api/v1/orders/1/actions/fly", {}, 422, "validation_failed"),
        ("get", "/api/v1/nothing-here", None, 404, "http_error"),
    ],
)
def test_every_error_has_one_body(client, method, path, body, status, code):
    response = getattr(client, method)(path, **({"json": body} if body is not None else {}))
    assert response.status_code == status
    payload = response.json()
    assert set(payload) == {"code", "message", "details"} and payload["code"] == code and payload["message"]


def test_illegal_action_is_409_naming_state_and_action(client):
    order = _create(client)
    response = client.post(f"/api/v1/orders/{order['id']}/actions/close", json={})
    assert response.status_code == 409
    assert response.json()["details"] == {"state": "received", "action": "close", "reason": ""}


def test_a_machine_detection_that_names_no_appeal_type_is_a_report(client):
    """A camera's detection (with its snapshot) or a sensor's alarm posted without a type is a problem found, as the
    monitoring package files its alarms — not a consultation, the default of a person's appeal, which 秒回 would
    answer and close."""
    snapshot = {"filename": "frame.jpg", "url": "https://video.example.org/snap/881.jpg", "content_type": "image/jpeg"}
    body = {"channel": "video_ai", "content": "占道经营：识别置信度 0.93", "external_id": "cam-7:881"}
    detection = client.post("/api/v1/orders", json={**body, "attachments": [snapshot], "lat": 23.18, "lng": 113.27})
    assert detection.status_code == 201, detection.text
    assert detection.json()["appeal_type"] == "report"
    assert [a["url"] for a in detection.json()["attachments"]] == [snapshot["url"]]
    alarm = _create(client, channel="sensor", content="积水深度 35 cm，超过 20 cm")
    said = _create(client, channel="sensor", content="水质传感器离线", appeal_type="help")
    call = _create(client, channel="hotline", content="咨询社保卡补办流程")
    assert [alarm["appeal_type"], said["appeal_type"], call["appeal_type"]] == ["report", "help", "consultation"]


def test_search_filters(client):
    first = _create(client, content="垃圾堆积无人清理", appeal_type="complaint")
    _create(client, content="咨询社保卡补办流程", appeal_type="consultation", channel="hotline")
    client.post(f"/api/v1/orders/{first['id']}/actions/dispatch", json={"unit_id": client.unit_id})
    page = client.get("/api/v1/orders", params={"q": "垃圾", "count": "true"}).json()
    assert [o["id"] for o in page["items"]] == [first["id"]] and page["total"] == 1
    assert client.get("/api/v1/orders", params={"state": "dispatched"}).json()["items"][0]["id"] == first["id"]
    hotline = client.get("/api/v1/orders", params={"channel": "hotline"}).json()["items"]
    assert [o["appeal_type"] for o in hotline] == ["consultation"]
    assert client.get("/api/v1/orders", params={"unit_id": client.unit_id}).json()["items"][0]["id"] == first["id"]
    one = client.get("/api/v1/orders", params={"limit": 1}).json()
    assert len(one["items"]) == 1 and one["has_more"] is True


def test_created_window_without_a_zone_is_local_time(client):
    """``created_from=2026-11-01`` (a date, or a time without a zone) is the district's local time, not a 500."""
    from datetime import datetime, timedelta

    from cityhub.config import get_settings

    order = _create(client)
    local = datetime.fromisoformat(order["created_at"]).astimezone(get_settings().tz)
    today, tomorrow = local.date().isoformat(), (local.date() + timedelta(days=1)).isoformat()

    def total(**params):
        answer = client.get("/api/v1/orders", params={**params, "count": "true"})
        assert answer.status_code == 200, answer.text
        return answer.json()["total"]

    assert total(created_from=today, created_to=tomorrow) == 1  # local midnight to local midnight
    assert total(created_to=today) == 0  # before the local day began
    naive = local.replace(tzinfo=None)
    assert (
        total(
            created_from=(naive - timedelta(minutes=1)).isoformat(),
            created_to=(naive + timedelta(minutes=1)).isoformat(),
        )
        == 1
    )
    assert total(created_from=(naive + timedelta(minutes=1)).isoformat()) == 0
    assert client.get("/api/v1/orders", params={"created_from": "2026-13-40"}).status_code == 422


def test_times_at_the_ends_of_the_calendar_are_refused_naming_them(client):
    """Year 1 at +08:00 has no UTC time and 9999-12-31 at -08:00 is past the calendar's last UTC day: refused as the
    request's mistake, never a server error."""
    for name, value in [
        ("created_from", "0001-01-01"),
        ("created_to", "0001-01-01T00:00:00+08:00"),
        ("created_from", "9999-12-31T23:59:59-08:00"),
    ]:
        response = client.get("/api/v1/orders", params={name: value})
        assert response.status_code == 422, (name, value, response.text)
        assert response.json()["details"]["errors"][0]["field"] == f"query.{name}"
    body = {"channel": "hotline", "content": "路灯不亮", "created_at": "0001-01-01T00:00:00+08:00"}
    response = client.post("/api/v1/orders", json=body)
    assert response.status_code == 422 and response.json()["details"]["errors"][0]["field"] == "created_at"


def test_a_reversed_creation_window_is_refused_not_answered_empty(client):
    _create(client)
    reversed_window = client.get("/api/v1/orders", params={"created_from": "2026-12-01", "created_to": "2026-01-01"})
    assert reversed_window.status_code == 422 and reversed_window.json()["details"]["field"] == "created_from"
    assert "created_from must be before created_to" in reversed_window.json()["message"]


def test_a_rating_is_true_or_false_not_a_word_read_as_one(client):
    order = _create(client)
    url = f"/api/v1/orders/{order['id']}/actions"
    for action, body in (("dispatch", {"unit_id": client.unit_id}), ("accept", {}), ("reply", {"text": "已修复"})):
        assert client.post(f"{url}/{action}", json=body).status_code == 200
    for vague in ("yes", 1, "false"):
        answer = client.post(f"{url}/callback", json={"satisfied": vague})
        assert answer.status_code == 422 and answer.json()["details"]["errors"][0]["field"] == "satisfied", vague
    assert client.post(f"{url}/callback", json={"satisfied": True}).json()["satisfied"] is True


def test_healthz_reads_the_revision_over_its_own_session(client, monkeypatch):
    """A health probe every few seconds must not open (and throw away) a database connection of its own each time."""
    from cityhub import db, migrate

    expected = migrate.current()
    assert expected is not None

    def no_new_engine(*args, **kwargs):
        raise AssertionError("healthz opened an engine of its own")

    monkeypatch.setattr(db, "make_engine", no_new_engine)
    assert client.get("/healthz").json()["revision"] == expected


def test_healthz_counts_orders_once_for_a_while(client, monkeypatch):
    from cityhub.config import get_settings

    first = client.get("/healthz").json()
    _create(client)
    again = client.get("/healthz").json()  # within CITYHUB_STATUS_COUNTS_SECONDS (10): the same count
    assert again["orders_total"] == first["orders_total"]
    assert again["orders_counted_at"] == first["orders_counted_at"]
    monkeypatch.setenv("CITYHUB_STATUS_COUNTS_SECONDS", "0")
    get_settings.cache_clear()
    try:
        fresh = client.get("/healthz").json()
    finally:
        get_settings.cache_clear()
    assert fresh["orders_total"] == first["orders_total"] + 1 and fresh["orders"]["received"] >= 1
    assert fresh["orders_counted_at"] > first["orders_counted_at"]


def test_an_order_is_answered_with_where_it_was_placed_from(client):
    with session_scope() as s:
        street = Unit(code="API-S01", name="云景街道", tier=UnitTier.STREET, parent_id=client.district_id)
        s.add(street)
        s.flush()
        street_id = street.id
    placed = _create(client, content="云景街道市场门口的路灯不亮已经一周")
    assert (placed["street_id"], placed["community_id"], placed["place_source"]) == (street_id, None, "text")
    unplaced = _create(client)
    assert (unplaced["street_id"], unplaced["place_source"]) == (None, "none")
    assert client.get(f"/api/v1/orders/{placed['id']}").json()["place_source"] == "text"
    listed = client.get("/api/v1/orders", params={"place_source": ["none"]}).json()["items"]
    assert [o["id"] for o in listed] == [unplaced["id"]]
    bad = client.get("/api/v1/orders", params={"place_source": "moon"})
    assert bad.status_code == 422 and "place_source" in bad.text


def test_an_orders_attachments_are_read_with_it_and_left_out_of_its_lists(client):
    """A citizen's photo comes in by its link; whoever reads the order sees it (the leader's masked view too: it
    shows the problem), an order list does not load them."""
    photo = {"filename": "路灯.jpg", "url": "https://uploads.example.org/2026/路灯.jpg", "content_type": "image/jpeg"}
    order = _create(client, attachments=[{**photo, "size": 120_000}, {"filename": "b", "url": " http://x.org/b "}])
    for headers in ({}, client.leader):
        read = client.get(f"/api/v1/orders/{order['id']}", headers=headers).json()
        assert [(a["filename"], a["url"], a["content_type"], a["size"]) for a in read["attachments"]] == [
            (photo["filename"], photo["url"], "image/jpeg", 120_000),
            ("b", "http://x.org/b", None, None),
        ]
    assert order["attachments"] == read["attachments"]  # the creating request's answer says the same
    [listed] = client.get("/api/v1/orders").json()["items"]
    assert listed["id"] == order["id"] and listed["attachments"] == []


def test_what_an_order_cannot_be_is_refused_naming_the_field(client):
    with session_scope() as s:
        a = Unit(code="API-SA", name="甲街道", tier=UnitTier.STREET, parent_id=client.district_id)
        b = Unit(code="API-SB", name="乙街道", tier=UnitTier.STREET, parent_id=client.district_id)
        s.add_all([a, b])
        s.flush()
        s.add(Unit(code="API-SB-1", name="乙社区居委会", tier=UnitTier.COMMUNITY, parent_id=b.id))
    base = {"channel": "web", "content": "小区路灯不亮已经一周"}
    cases = [
        ({"content": "\u200b\u200b "}, "an order needs a title or content"),  # shows nothing
        ({"content": "路灯\x00不亮"}, "must not contain NUL characters"),  # PostgreSQL cannot store it
        ({"created_at": "2099-01-01T00:00:00+08:00"}, "created_at is in the future"),
        ({"created_at": "1970-01-01T00:00:00+08:00"}, "created_at is before 1990-01-01"),  # heads the queue
        ({"attachments": [{"filename": "a", "url": "javascript:alert(1)"}]}, "url must be an http(s) URL"),
        ({"attachments": [{"filename": "a", "url": "http://:80/a.jpg"}]}, "url must be an http(s) URL"),  # no host
        ({"attachments": [{"filename": "a", "url": "https://x.org/a", "content_type": "x" * 101}]}, "at most 100"),
        ({"citizen_user_id": 987654}, "unknown citizen_user_id 987654"),
        ({"attributes": {"reading": "9" * 70_000}}, "attributes are longer than 65536 characters"),
        ({"street_code": "API-SA", "community_code": "API-SB-1"}, "community_code 'API-SB-1' is not in street_code"),
        ({"lat": "NaN", "lng": 113.2}, "finite number"),  # it said "less than or equal to 90"
    ]
    for extra, words in cases:
        response = client.post("/api/v1/orders", json={**base, **extra})
        assert response.status_code == 422 and words in response.text, (extra, response.text)
    placed = _create(client, community_code="API-SB-1")  # a community alone brings its street
    assert placed["community_id"] and placed["street_id"]


def test_an_action_without_a_parameter_it_needs_is_422_naming_it(client):
    order = _create(client)
    response = client.post(f"/api/v1/orders/{order['id']}/actions/dispatch", json={})
    assert response.status_code == 422
    assert response.json()["details"]["field"] == "unit_id" and "needs 'unit_id'" in response.json()["message"]
    url = f"/api/v1/orders/{order['id']}/actions"
    assert client.post(f"{url}/dispatch", json={"unit_id": client.unit_id}).status_code == 200
    assert client.post(f"{url}/accept", json={}).status_code == 200
    nul = client.post(f"{url}/reply", json={"text": "已修复\x00"})
    assert nul.status_code == 422 and nul.json()["details"]["field"] == "text"
    nan = client.post(f"{url}/request_extension", json={"days": "NaN", "reason": "等待配件"})
    assert nan.status_code == 422 and nan.json()["details"]["errors"][0]["field"] == "days"
    # Too many days is the value's fault, whatever the order's state: 422 naming days (it was 409, as a wrong state).
    for days in (45, 0):
        long = client.post(f"{url}/request_extension", json={"days": days, "reason": "等待配件"})
        assert long.status_code == 422 and long.json()["details"]["field"] == "days", long.text
        assert "days must be" in long.json()["message"]
    assert client.post(f"{url}/request_extension", json={"days": 5, "reason": "等待配件"}).status_code == 200
    assert client.post(f"{url}/request_extension", json={"days": 5, "reason": "再次"}).status_code == 409  # state
    nested = client.post(f"{url}/reply", json={"params": {"text": "已处理"}})  # not this API's shape
    assert nested.status_code == 422 and nested.json()["details"]["errors"][0]["field"] == "params"


def test_an_urge_says_what_it_urges_or_is_422_naming_reason(client):
    """催办 without a message (none, or only blanks) was taken and told the unit nothing: now it is refused as a
    return without a reason is, nothing recorded; with one, the trail keeps the message."""
    order = _create(client)
    url = f"/api/v1/orders/{order['id']}/actions"
    assert client.post(f"{url}/dispatch", json={"unit_id": client.unit_id}).status_code == 200
    for body in ({}, {"reason": ""}, {"reason": " \u3000\n"}):
        refused = client.post(f"{url}/urge", json=body)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["code"] == "validation_failed" and refused.json()["details"]["field"] == "reason"
        assert "needs 'reason'" in refused.json()["message"]
    assert client.get(f"/api/v1/orders/{order['id']}").json()["urge_count"] == 0
    urged = client.post(f"{url}/urge", json={"reason": "市民再次来电，请今天内联系"})
    assert urged.status_code == 200 and urged.json()["urge_count"] == 1
    events = client.get(f"/api/v1/orders/{order['id']}/events").json()
    assert [(e["action"], e["reason"]) for e in events][-1] == ("urge", "市民再次来电，请今天内联系")


def test_a_bulk_urge_urges_each_order_it_may_and_says_why_not_for_the_others(client):
    """批量催办 through the API (POST /orders/urge): one message, each order its own audited 催办 — one outside the
    caller's scope is "not found", one answered meanwhile is refused with its state, the others urged all the same;
    no order, more than 100, a blank message: 422 naming the field, nothing urged; a role that may not urge: 403."""
    unit_id, sup = _unit_staff(client, "API-URGE-D", UnitTier.DEPARTMENT, Role.SUPERVISOR)
    mine, other, answered = _create(client), _create(client), _create(client)
    for order, unit in ((mine, unit_id), (other, client.unit_id), (answered, unit_id)):
        url = f"/api/v1/orders/{order['id']}/actions"
        assert client.post(f"{url}/dispatch", json={"unit_id": unit}).status_code == 200
    for action, body in (("accept", {}), ("start", {}), ("reply", {"text": "已派人修复路灯，现已恢复照明。"})):
        assert client.post(f"/api/v1/orders/{answered['id']}/actions/{action}", json=body).status_code == 200

    for body, field in (
        ({"order_ids": [], "reason": "请今天内答复"}, "order_ids"),
        ({"order_ids": list(range(1, 102)), "reason": "请今天内答复"}, "order_ids"),
        ({"order_ids": [mine["id"]], "reason": " \u3000"}, "reason"),
    ):
        refused = client.post("/api/v1/orders/urge", json=body, headers=sup)
        assert refused.status_code == 422 and refused.json()["details"]["field"] == field, refused.text
    assert (
        "at most 100 orders"
        in client.post(
            "/api/v1/orders/urge", json={"order_ids": list(range(1, 102)), "reason": "x"}, headers=sup
        ).json()["message"]
    )
    assert client.get(f"/api/v1/orders/{mine['id']}").json()["urge_count"] == 0

    ids = [mine["id"], other["id"], answered["id"], mine["id"]]
    done = client.post(
        "/api/v1/orders/urge", json={"order_ids": ids, "reason": "已临近时限，请今天内答复"}, headers=sup
    )
    assert done.status_code == 200, done.text
    answer = done.json()
    assert (answer["urged"], answer["refused"]) == (1, 2)
    by_id = {r["order_id"]: r for r in answer["results"]}
    assert [r["order_id"] for r in answer["results"]] == [mine["id"], other["id"], answered["id"]]
    assert by_id[mine["id"]] | {"error": None} == {
        "order_id": mine["id"],
        "number": mine["number"],
        "urged": True,
        "unit_id": unit_id,
        "state": None,
        "error": None,
    }
    assert by_id[other["id"]]["urged"] is False and by_id[other["id"]]["number"] is None
    assert by_id[other["id"]]["error"] == f"order {other['id']} not found"
    assert by_id[answered["id"]]["urged"] is False and by_id[answered["id"]]["state"] == "replied"
    assert "replied" in by_id[answered["id"]]["error"]
    events = client.get(f"/api/v1/orders/{mine['id']}/events").json()
    assert [(e["action"], e["reason"]) for e in events][-1] == ("urge", "已临近时限，请今天内答复")
    assert client.get(f"/api/v1/orders/{other['id']}").json()["urge_count"] == 0

    # Ids no order can have (beyond every key, zero, negative) are orders not found, on either backend.
    odd = client.post("/api/v1/orders/urge", json={"order_ids": [2**70, 0, -3], "reason": "x"}, headers=sup)
    assert odd.status_code == 200 and odd.json()["refused"] == 3, odd.text
    assert {r["error"] for r in odd.json()["results"]} == {f"order {i} not found" for i in (2**70, 0, -3)}
    _, handler = _headers_of_handler(client, unit_code="API-URGE-H")
    forbidden = client.post("/api/v1/orders/urge", json={"order_ids": [mine["id"]], "reason": "x"}, headers=handler)
    assert forbidden.status_code == 403 and "may not urge" in forbidden.json()["message"]


def test_an_assignment_naming_no_unit_says_its_instruction_or_is_422_naming_reason(client):
    """交办 naming neither a unit nor an instruction was taken and recorded an empty 交办 (the order flagged 领导交办
    for nothing): now refused as 催办 without its message is; naming a unit, or with an instruction, it goes through,
    and the trail says whose unit assigned it beside the unit it names."""
    order = _create(client)
    url = f"/api/v1/orders/{order['id']}/actions"
    assert client.post(f"{url}/dispatch", json={"unit_id": client.unit_id}).status_code == 200
    for body in ({}, {"reason": " \u3000"}, {"unit_id": None, "reason": ""}):
        refused = client.post(f"{url}/assign", json=body, headers=client.leader)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.json()["details"]["field"] == "reason" and "needs 'reason'" in refused.json()["message"]
    assert client.get(f"/api/v1/orders/{order['id']}").json()["leader_assigned"] is False
    assigned = client.post(f"{url}/assign", json={"reason": "本周内办结并报结果"}, headers=client.leader)
    assert assigned.status_code == 200 and assigned.json()["leader_assigned"] is True
    other = _unit_staff(client, "API-ASSIGN", UnitTier.DEPARTMENT, Role.HANDLER)[0]
    assert client.post(f"{url}/assign", json={"unit_id": other}, headers=client.leader).status_code == 200
    events = client.get(f"/api/v1/orders/{order['id']}/events").json()
    assert [(e["action"], e["reason"]) for e in events if e["action"] == "assign"] == [
        ("assign", "本周内办结并报结果"),
        ("assign", None),
    ]
    # The unit an assignment names is the event's; the leader's own (the district) is said beside it.
    named = [e for e in events if e["action"] == "assign"][-1]
    assert (named["unit_id"], named["payload"]["actor_unit_id"]) == (other, client.district_id)


def test_an_action_is_refused_a_unit_it_does_not_take_and_an_escalation_may_raise_the_urgency(client):
    """The unit an event records is where the order went or whoever acted, never a unit the caller names for an
    accept; an escalation over the API raises the urgency as the order page's does."""
    order = _create(client)
    url = f"/api/v1/orders/{order['id']}/actions"
    assert client.post(f"{url}/dispatch", json={"unit_id": client.unit_id}).status_code == 200
    forged = client.post(f"{url}/accept", json={"unit_id": client.district_id})
    assert forged.status_code == 422 and forged.json()["details"]["field"] == "unit_id"
    assert "takes no 'unit_id'" in forged.json()["message"]
    raised = client.post(f"{url}/escalate", json={"reason": "市民多次来电", "urgency": "critical"})
    assert raised.status_code == 200, raised.text
    assert client.get(f"/api/v1/orders/{order['id']}").json()["urgency"] == "critical"
    again = client.post(f"{url}/escalate", json={"reason": "再次升级", "urgency": "urgent"})
    assert again.status_code == 409 and "already critical" in again.json()["message"]
    events = client.get(f"/api/v1/orders/{order['id']}/events").json()
    events = events if isinstance(events, list) else events["items"]
    assert [e["action"] for e in events] == ["create", "dispatch", "escalate"]


def test_malformed_json_is_said_so_without_a_field(client):
    response = client.post(
        "/api/v1/orders", content=b'{"channel": "web", "content": }', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    [error] = response.json()["details"]["errors"]
    assert error["field"] == "(body)" and error["message"].startswith("malformed JSON at character ")
    # what the parser found wrong, and where in a body of several lines (not FastAPI's bare "JSON decode error")
    body = '{\n  "channel": "web",\n  "content": "路灯坏了",\n}'
    with pytest.raises(json.JSONDecodeError) as parsed:
        json.loads(body)
    problem = parsed.value.msg  # the wording is Python's (it changed in 3.13)
    response = client.post("/api/v1/orders", content=body.encode(), headers={"Content-Type": "application/json"})
    [error] = response.json()["details"]["errors"]
    assert error["message"] == f"malformed JSON at character 43 (line 4, column 1): {problem}"
    assert problem != "JSON decode error"
    assert response.json()["message"] == f"invalid request: (body): {error['message']}"


def test_a_body_sent_with_the_wrong_type_or_encoding_is_said_so(client):
    """The integrator's first mistakes: JSON posted with curl's -d (a form's Content-Type) or with no Content-Type
    was answered "Input should be a valid dictionary or object", no body at all "(body): Field required", JSON
    posted to a file upload "files: Field required", and JSON written in GBK a 400 "http_error", "There was an
    error parsing the body". Each now says what is wrong with the body, a 422 naming (body), after who may call has
    answered."""
    sent = b'{"channel": "web", "content": "\xe8\xb7\xaf\xe7\x81\xaf\xe4\xb8\x8d\xe4\xba\xae"}'
    for headers, shown in (
        ({"Content-Type": "application/x-www-form-urlencoded"}, "Content-Type application/x-www-form-urlencoded"),
        ({"Content-Type": "text/plain; charset=utf-8"}, "Content-Type text/plain"),
        ({}, "no Content-Type"),
    ):
        refused = client.post("/api/v1/orders", content=sent, headers=headers)
        assert refused.status_code == 422, refused.text
        assert refused.json()["details"]["errors"] == [
            {
                "field": "(body)",
                "message": f"the body must be JSON sent with Content-Type: application/json; the request sent {shown}",
            }
        ]
    order = client.post("/api/v1/orders", content=sent, headers={"Content-Type": "application/json"})
    assert order.status_code == 201, order.text
    # curl -X POST without -d, on an action that needs nothing: "(body): Field required" read as a missing field.
    empty = "the body is empty: this route takes a JSON object ({} when there is nothing to give)"
    for headers in ({}, {"Content-Type": "application/json"}):
        bare = client.post(f"/api/v1/orders/{order.json()['id']}/actions/comment", headers=headers)
        assert bare.status_code == 422 and bare.json()["details"]["errors"] == [{"field": "(body)", "message": empty}]
    upload = client.post(f"/api/v1/orders/{order.json()['id']}/attachments", json={"files": []})
    assert upload.status_code == 422
    [error] = upload.json()["details"]["errors"]
    assert error["field"] == "(body)" and "multipart/form-data" in error["message"], error
    gbk = '{"channel": "web", "content": "路灯不亮"}'.encode("gbk")
    with pytest.raises(UnicodeDecodeError) as decoding:
        gbk.decode()
    wrong = f"byte 0x{gbk[decoding.value.start]:02X} at byte {decoding.value.start}"  # 路 is C2 B7, UTF-8's '·'
    for charset in ("", "; charset=gbk"):
        refused = client.post("/api/v1/orders", content=gbk, headers={"Content-Type": f"application/json{charset}"})
        assert (refused.status_code, refused.json()["code"]) == (422, "validation_failed"), refused.text
        [error] = refused.json()["details"]["errors"]
        assert error["field"] == "(body)" and error["message"].startswith(f"the body is not UTF-8 ({wrong})")
    # Who may call answers first, as for a malformed body.
    token = client.headers.pop("Authorization")
    try:
        anonymous = client.post("/api/v1/orders", content=gbk, headers={"Content-Type": "application/json"})
        assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")
    finally:
        client.headers["Authorization"] = token
    # A body sent as its route reads it is answered by its schema, as before.
    missing = client.post("/api/v1/orders", json={"channel": "web"})
    assert missing.json()["details"]["errors"] == [{"field": "content", "message": "Field required"}]


def test_a_multipart_body_without_its_boundary_is_said_so(client):
    """A file upload sent with ``Content-Type: multipart/form-data`` but no ``boundary`` (a client that sets the
    header by hand and lets its library write the body) was a 400 ``http_error`` "Missing boundary in multipart.";
    every other malformed body is a 422 on (body) saying what is wrong: so is this one, after who may call."""
    order = client.post("/api/v1/orders", json={"channel": "web", "content": "路灯不亮"})
    assert order.status_code == 201, order.text
    body = b'--x\r\nContent-Disposition: form-data; name="files"; filename="a.jpg"\r\n\r\nabc\r\n--x--\r\n'
    for path in (f"/api/v1/orders/{order.json()['id']}/attachments", "/api/v1/orders/import"):
        for content_type in ("multipart/form-data", "multipart/form-data; charset=utf-8"):
            refused = client.post(path, content=body, headers={"Content-Type": content_type})
            assert (refused.status_code, refused.json()["code"]) == (422, "validation_failed"), refused.text
            [error] = refused.json()["details"]["errors"]
            assert error["field"] == "(body)", error
            assert error["message"].startswith("the multipart/form-data body has no boundary"), error
            assert refused.json()["message"] == f"invalid request: (body): {error['message']}"
    # Parts that are not multipart at all are said so too; a well-formed upload is answered as before.
    garbled = client.post(
        "/api/v1/orders/import", content=b"abc", headers={"Content-Type": "multipart/form-data; boundary=x"}
    )
    assert garbled.status_code == 422, garbled.text
    [error] = garbled.json()["details"]["errors"]
    assert error["field"] == "(body)" and error["message"].startswith("the multipart/form-data body cannot be read")
    sent = client.post("/api/v1/orders/import", files={"file": ("a.csv", "留言详情\n路灯不亮\n".encode(), "text/csv")})
    assert sent.status_code == 200 and sent.json()["imported"] == 1, sent.text
    # Who may call answers first, as for the other malformed bodies.
    token = client.headers.pop("Authorization")
    try:
        anonymous = client.post("/api/v1/orders/import", content=body, headers={"Content-Type": "multipart/form-data"})
        assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")
    finally:
        client.headers["Authorization"] = token


def test_a_form_over_the_parsers_limits_says_which_limit_and_its_value(client):
    """A file upload over the multipart parser's limits — more than 1000 files or fields in one body, a field (a part
    without a filename) over 1 MiB — was a 400 ``http_error`` in the parser's bare words ("Too many files. Maximum
    number of files is 1000."): now a 422 for too many parts, a 413 ``payload_too_large`` for a part too large, each
    naming the limit and its value in ``details``, after who may call."""
    order = client.post("/api/v1/orders", json={"channel": "web", "content": "路灯不亮"})
    assert order.status_code == 201, order.text
    attachments = f"/api/v1/orders/{order.json()['id']}/attachments"

    def multipart(parts: list[bytes]) -> tuple[bytes, dict[str, str]]:
        body = b"".join(b"--x\r\n" + part + b"\r\n" for part in parts) + b"--x--\r\n"
        return body, {"Content-Type": "multipart/form-data; boundary=x"}

    file_part = b'Content-Disposition: form-data; name="files"; filename="a.jpg"\r\n\r\nabc'
    field_part = b'Content-Disposition: form-data; name="note"\r\n\r\nabc'
    for path, parts, limit in (
        (attachments, [file_part] * 1001, "max_files"),
        ("/api/v1/orders/import", [field_part] * 1001, "max_fields"),
    ):
        body, headers = multipart(parts)
        refused = client.post(path, content=body, headers=headers)
        assert (refused.status_code, refused.json()["code"]) == (422, "validation_failed"), refused.text
        details = refused.json()["details"]
        assert (details["limit"], details["limit_value"]) == (limit, 1000), details
        [error] = details["errors"]
        assert error["field"] == "(body)" and f"1000 ({limit})" in error["message"], error
        assert refused.json()["message"] == f"invalid request: (body): {error['message']}"
    body, headers = multipart([field_part.replace(b"abc", b"a" * (1024 * 1024 + 1))])
    for path in (attachments, "/api/v1/orders/import"):
        large = client.post(path, content=body, headers=headers)
        assert (large.status_code, large.json()["code"]) == (413, "payload_too_large"), large.text
        assert large.json()["details"] == {
            "limit": "max_part_size",
            "limit_value": 1024 * 1024,
            "limit_bytes": 1024 * 1024,
        }
        assert "1024 KiB" in large.json()["message"] and "max_part_size" in large.json()["message"]
    # A form sent url-encoded has the same limit on a field.
    long_note = client.post(
        attachments,
        content=b"note=" + b"a" * (1024 * 1024 + 1),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (long_note.status_code, long_note.json()["details"]["limit"]) == (413, "max_part_size"), long_note.text
    # Who may call answers first.
    token = client.headers.pop("Authorization")
    try:
        anonymous = client.post(attachments, content=multipart([file_part] * 1001)[0], headers=headers)
        assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")
    finally:
        client.headers["Authorization"] = token


def _street_dispatcher(client, code: str) -> tuple[int, dict[str, str]]:
    """A street of the district (``code``) and the bearer headers of a dispatcher of it."""
    return _unit_staff(client, code, UnitTier.STREET, Role.DISPATCHER)


def test_merging_into_an_order_outside_ones_scope_is_refused_as_if_it_did_not_exist(client):
    """A street's dispatcher names a master by id: one it cannot see is "not found" (the same words as a missing
    one), so ids reveal no number or state, and nothing is merged into an order it may not open."""
    _, street_disp = _street_dispatcher(client, "API-ST")
    mine = _create(client, street_code="API-ST", content="本街道路灯不亮")
    other = _create(client, content="别处的井盖缺失")
    missing = client.post(f"/api/v1/orders/{mine['id']}/actions/merge", json={"master_id": 10**9}, headers=street_disp)
    hidden = client.post(
        f"/api/v1/orders/{mine['id']}/actions/merge", json={"master_id": other["id"]}, headers=street_disp
    )
    assert hidden.status_code == missing.status_code == 422
    assert hidden.json()["message"] == f"master order {other['id']} not found" and other["number"] not in hidden.text
    assert client.get(f"/api/v1/orders/{mine['id']}").json()["state"] == "received"  # nothing merged
    sibling = _create(client, street_code="API-ST", content="本街道路灯不亮，又来反映")
    merged = client.post(
        f"/api/v1/orders/{sibling['id']}/actions/merge", json={"master_id": mine["id"]}, headers=street_disp
    )
    assert merged.status_code == 200 and merged.json()["state"] == "merged"  # within its scope: as before


def test_a_citizen_files_through_a_citizens_channel_and_staff_link_only_the_callers_account(client):
    """A citizen's own appeal comes by web, app or mailbox at normal urgency, as the web form files it (a
    "video_ai" "critical" one was accepted); staff may link an appeal to a citizen's account only when the account
    bears the appeal's phone number (else anyone's list could receive a planted "please call to verify" order)."""
    with session_scope() as s:
        me = User(username="api-cit", full_name="市民甲", role=Role.CITIZEN, phone="138-1234-5678")
        s.add(me)
        s.flush()
        _, token = create_token(s, user_id=me.id, name="test")
        me_id = me.id
        staff = s.scalars(select(User.id).where(User.username == "api-leader")).one()
    citizen = {"Authorization": f"Bearer {token}"}
    body = {"content": "小区路灯不亮已经一周"}
    for extra, field in (({"channel": "video_ai"}, "channel"), ({"channel": "web", "urgency": "critical"}, "urgency")):
        refused = client.post("/api/v1/orders", json={**body, **extra}, headers=citizen)
        assert refused.status_code == 422 and refused.json()["details"]["field"] == field, refused.text
    own = client.post("/api/v1/orders", json={**body, "channel": "app"}, headers=citizen)
    assert own.status_code == 201
    # Under their account's name and phone (the unit calls back on it, /track asks for it), as the web form files it,
    # unless they give others.
    assert (own.json()["citizen_name"], own.json()["citizen_phone"]) == ("市民甲", "13812345678")
    contact = {**body, "channel": "web", "citizen_name": "甲先生", "citizen_phone": "020-81234567"}
    given = client.post("/api/v1/orders", json=contact, headers=citizen).json()
    assert (given["citizen_name"], given["citizen_phone"]) == ("甲先生", "02081234567")
    # Their app's ids, in their own namespace: two long ones that differ only at the end are two appeals, and each
    # sent again is the same appeal.
    stem = "x" * 124
    first = client.post(
        "/api/v1/orders", json={**body, "channel": "app", "external_id": stem + "AAAA"}, headers=citizen
    )
    other = {**body, "content": "井盖丢了", "channel": "app", "external_id": stem + "BBBB"}
    second = client.post("/api/v1/orders", json=other, headers=citizen)
    assert first.status_code == second.status_code == 201 and first.json()["id"] != second.json()["id"]
    replayed = client.post("/api/v1/orders", json=other, headers=citizen)
    assert replayed.status_code == 200 and replayed.headers["x-cityhub-replay"] == "true"
    assert replayed.json()["id"] == second.json()["id"]

    planted = {**body, "channel": "hotline", "citizen_user_id": me_id, "citizen_phone": "13000000000"}
    refused = client.post("/api/v1/orders", json=planted)
    assert refused.status_code == 422 and refused.json()["details"]["field"] == "citizen_user_id"
    not_a_citizen = client.post("/api/v1/orders", json={**planted, "citizen_user_id": staff})
    assert not_a_citizen.status_code == 422 and f"unknown citizen_user_id {staff}" in not_a_citizen.text
    linked = client.post("/api/v1/orders", json={**planted, "citizen_phone": "13812345678"})
    assert linked.status_code == 201
    assert len(client.get("/api/v1/orders", headers=citizen).json()["items"]) == 5  # theirs, and the linked call


def test_a_streets_dispatcher_routes_what_its_street_holds_not_what_the_district_sent_a_department(client):
    street_id, street_disp = _street_dispatcher(client, "API-ST2")
    held = _create(client, street_code="API-ST2", content="本街道道路破损")  # on its street, sent to a department
    assert (
        client.post(f"/api/v1/orders/{held['id']}/actions/dispatch", json={"unit_id": client.unit_id}).status_code
        == 200
    )
    listed = client.get(f"/api/v1/orders/{held['id']}/actions", headers=street_disp).json()
    assert "transfer" not in listed and "cancel" not in listed
    refused = client.post(
        f"/api/v1/orders/{held['id']}/actions/transfer",
        json={"unit_id": street_id, "reason": "改派"},
        headers=street_disp,
    )
    assert refused.status_code == 403 and refused.json()["details"]["lead_unit_id"] == client.unit_id
    assert client.get(f"/api/v1/orders/{held['id']}").json()["lead_unit_id"] == client.unit_id  # unchanged

    own = _create(client, street_code="API-ST2", content="本街道路灯不亮")
    sent = client.post(f"/api/v1/orders/{own['id']}/actions/dispatch", json={"unit_id": street_id}, headers=street_disp)
    assert sent.status_code == 200  # an order no unit holds yet: its street's dispatcher may send it
    assert "transfer" in client.get(f"/api/v1/orders/{own['id']}/actions", headers=street_disp).json()
    moved = client.post(
        f"/api/v1/orders/{own['id']}/actions/transfer",
        json={"unit_id": client.unit_id, "reason": "需区住建局处理"},
        headers=street_disp,
    )
    assert moved.status_code == 200  # what its street holds it may send on, to a department too
    assert (
        client.post(  # the district's dispatcher (here an administrator) routes anything
            f"/api/v1/orders/{held['id']}/actions/transfer", json={"unit_id": street_id, "reason": "改派"}
        ).status_code
        == 200
    )


def test_an_appeal_raising_two_problems_is_split_through_the_actions_endpoint(client):
    order = _create(client, content="小区路灯不亮已经一周；楼下餐馆油烟直排")
    assert "split" in client.get(f"/api/v1/orders/{order['id']}/actions").json()
    url = f"/api/v1/orders/{order['id']}/actions/split"
    missing = client.post(url, json={"title": "油烟"})
    assert missing.status_code == 422 and missing.json()["details"]["field"] == "content"
    unknown = client.post(url, json={"content": "楼下餐馆油烟直排", "category_id": 10**9})
    assert unknown.status_code == 422 and unknown.json()["details"]["field"] == "category_id"
    assert client.post(url, json={"content": "楼下餐馆油烟直排", "appeal_type": "rumour"}).status_code == 422
    words = "王五反映楼下餐馆油烟直排"
    done = client.post(
        url, json={"content": words, "title": "餐馆油烟", "appeal_type": "complaint", "version": order["version"]}
    )
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "received" and done.json()["version"] == order["version"] + 1
    trail = client.get(f"/api/v1/orders/{order['id']}/events").json()
    split = trail[-1] if isinstance(trail, list) else trail["items"][-1]
    assert split["action"] == "split" and split["payload"]["title"] == "餐馆油烟"
    part = client.get(f"/api/v1/orders/{split['payload']['part_id']}").json()
    assert part["split_from_id"] == order["id"] and part["number"] == split["payload"]["part_number"]
    assert (part["title"], part["content"], part["citizen_phone"]) == ("餐馆油烟", words, "13812345678")
    assert part["appeal_type"] == "complaint" and order["appeal_type"] == "consultation"  # its own kind
    # A masked reader (the leader) reads the part's words in the trail through the scrubber, as the order's own text.
    masked = client.get(f"/api/v1/orders/{order['id']}/events", headers=client.leader).json()
    masked_split = masked[-1] if isinstance(masked, list) else masked["items"][-1]
    assert "王五" not in masked_split["payload"]["content"] and "油烟直排" in masked_split["payload"]["content"]


def test_import_a_spreadsheet_through_the_api(client, monkeypatch):
    """``POST /orders/import``: counts and every refused row by row and field; column choices as repeated
    ``column`` fields; a bad choice, a file that is not a table and one unreadable midway are 422, the last with
    what was imported before it."""
    sheet = "编号,反映内容,时间\nx1,人民路井盖缺失,2020-01-01 08:00\nx2,,2020-01-01\nx3,路灯不亮,去年\n".encode()
    upload = {"file": ("list.csv", sheet, "text/csv")}
    choices = {"column": ["content=反映内容", "external_id=编号", "created_at=时间"], "channel": "mailbox"}

    done = client.post("/api/v1/orders/import", data=choices, files=upload)

    assert done.status_code == 200, done.text
    body = done.json()
    counted = ("file", "read", "imported", "skipped_existing", "rejected", "queued_for_dispatch")
    assert {k: body[k] for k in counted} == {
        "file": "list.csv",
        "read": 3,
        "imported": 1,
        "skipped_existing": 0,
        "rejected": 2,
        "queued_for_dispatch": 1,  # handed to the background dispatcher (here its duplicate check), as API appeals
    }
    assert [(i["row"], i["level"], i["field"]) for i in body["issues"]] == [
        (3, "error", "content"),
        (4, "error", "created_at"),
    ]
    assert body["issues_truncated"] is False
    [order] = client.get("/api/v1/orders", params={"channel": "mailbox"}).json()["items"]
    assert (order["external_id"], order["content"], order["title"]) == ("x1", "人民路井盖缺失", "人民路井盖缺失")

    held = {"file": ("held.csv", "id,content\nh1,桥下积水\n".encode(), "text/csv")}
    unqueued = client.post("/api/v1/orders/import", data={"dispatch": "false"}, files=held)
    assert unqueued.json()["queued_for_dispatch"] == 0
    bad_choice = client.post("/api/v1/orders/import", data={"column": "body=反映内容"}, files=upload)
    assert bad_choice.status_code == 422 and "unknown field 'body'" in bad_choice.json()["message"]
    not_table = client.post("/api/v1/orders/import", files={"file": ("list.docx", sheet, "application/msword")})
    assert not_table.status_code == 422 and not_table.json()["message"].startswith("list.docx: not a CSV or Excel")
    monkeypatch.setattr("cityhub.textfiles.CSV_FIELD_LIMIT", 100_000)  # a field the CSV reader gives up on
    broken = 'id,title,content\nb1,主题,内容\nb2,主题,"' + "长" * 140_000 + '"\n'
    stopped = client.post("/api/v1/orders/import", files={"file": ("broken.csv", broken.encode(), "text/csv")})
    assert stopped.status_code == 422 and stopped.json()["message"].startswith("broken.csv: malformed CSV")
    assert stopped.json()["details"]["report"]["imported"] == 1 and stopped.json()["details"]["field"] == "file"


def test_every_refusal_of_an_import_names_the_field_it_is_about(client):
    """An import refused whole said what was wrong but named no field — a column choice mistyped, a column chosen
    that the header lacks (``unreadable_file`` with ``details`` {}), a file that is no table, one unreadable midway —
    where every other ``validation_failed`` names the one field a rule refused (docs/api.md, *Errors*): a client
    showing its form's errors by field had none to show. ``column`` for the choices, ``file`` for the file."""
    upload = {"file": ("list.csv", "编号,反映内容\nx1,人民路井盖缺失\n".encode(), "text/csv")}
    for choice in ("body=反映内容", "content"):
        refused = client.post("/api/v1/orders/import", data={"column": choice}, files=upload)
        assert (refused.status_code, refused.json()["details"].get("field")) == (422, "column"), refused.text
    absent = client.post("/api/v1/orders/import", data={"column": "content=来信内容"}, files=upload)
    assert absent.status_code == 422 and absent.json()["code"] == "unreadable_file", absent.text
    assert absent.json()["details"] == {"field": "column"} and "来信内容" in absent.json()["message"]
    for name, data in (("a.csv", b"\x00\x01binary"), ("b.csv", b"foo,bar\n1,2\n")):  # no table, no text
        unreadable = client.post("/api/v1/orders/import", files={"file": (name, data, "text/csv")})
        assert unreadable.status_code == 422 and unreadable.json()["code"] == "unreadable_file", unreadable.text
        assert unreadable.json()["details"] == {"field": "file"}, unreadable.text


def test_the_orders_one_import_created_are_listed_by_its_batch_within_the_readers_scope(client):
    """``import_batch_id`` (as the import answers it) lists the orders that import created — not the channel's older
    ones — and, for a street's handler, only those of them on the street."""
    street_id, street_handler = _unit_staff(client, "API-S01", UnitTier.STREET, Role.HANDLER)
    _unit_staff(client, "API-S02", UnitTier.STREET, Role.HANDLER)
    older = {"file": ("old.csv", "编号,内容\no1,去年的诉求\n".encode(), "text/csv")}
    assert client.post("/api/v1/orders/import", data={"channel": "mailbox"}, files=older).json()["imported"] == 1
    sheet = "编号,内容,街道\nm1,路灯不亮,API-S01\nm2,井盖缺失,API-S02\nm3,噪音扰民,\n".encode()
    done = client.post("/api/v1/orders/import", data={"channel": "mailbox"}, files={"file": ("新.csv", sheet)})
    assert done.status_code == 200, done.text
    batch = done.json()["import_batch_id"]
    assert isinstance(batch, int)

    def listed(headers=None, **params):
        answer = client.get("/api/v1/orders", params={"count": "true", **params}, headers=headers)
        assert answer.status_code == 200, answer.text
        return {o["external_id"] for o in answer.json()["items"]}, answer.json()["total"]

    assert listed(import_batch_id=batch) == ({"m1", "m2", "m3"}, 3)
    assert listed(channel="mailbox")[1] == 4  # what the import page's link listed before
    # Who imported them registered them (我提交的), as their create events say — not the street's handler.
    assert listed(mine="true") == ({"o1", "m1", "m2", "m3"}, 4)
    assert listed(street_handler, mine="true") == (set(), 0)
    assert listed(street_handler, import_batch_id=batch) == ({"m1"}, 1)
    assert listed(import_batch_id=batch, street_id=street_id) == ({"m1"}, 1)  # with the other filters
    assert listed(import_batch_id=batch + 1) == listed(import_batch_id=2**40) == (set(), 0)
    again = client.post("/api/v1/orders/import", data={"channel": "mailbox"}, files={"file": ("新.csv", sheet)})
    assert (again.json()["imported"], again.json()["import_batch_id"]) == (0, None)  # nothing created: no batch
    assert client.get("/api/v1/orders", params={"import_batch_id": "x"}).status_code == 422


def test_an_orders_detail_names_the_import_it_came_from_for_staff(client):
    """``import_batch`` of ``GET /orders/{id}``: the file, when, who and (for a reader who sees every order) how many
    the import created; null for an order received otherwise, for its citizen, and in a list."""
    from cityhub.workorders.models import Order

    _, street_handler = _unit_staff(client, "API-S11", UnitTier.STREET, Role.HANDLER)
    sheet = "编号,内容,街道\nk1,路灯不亮,API-S11\nk2,井盖缺失,\n".encode()
    done = client.post("/api/v1/orders/import", data={"channel": "mailbox"}, files={"file": ("十二月.csv", sheet)})
    assert done.status_code == 200, done.text
    batch = done.json()["import_batch_id"]
    listed = client.get("/api/v1/orders", params={"import_batch_id": batch}).json()["items"]
    assert {o["import_batch"] for o in listed} == {None}  # one order only, as its attachments
    k1 = next(o["id"] for o in listed if o["external_id"] == "k1")
    detail = client.get(f"/api/v1/orders/{k1}").json()["import_batch"]
    assert {k: v for k, v in detail.items() if k != "created_at"} == {
        "id": batch,
        "file_name": "十二月.csv",
        "actor_name": "管理员",
        "imported": 2,
    }
    assert detail["created_at"].endswith("Z")
    # The street's handler reads the import's order on its street, not how many others the import made.
    assert client.get(f"/api/v1/orders/{k1}", headers=street_handler).json()["import_batch"] == {
        **detail,
        "imported": None,
    }
    assert _create(client)["import_batch"] is None
    assert client.get(f"/api/v1/orders/{_create(client)['id']}").json()["import_batch"] is None
    with session_scope() as s:  # the imported appeal linked to its citizen's account: they read it, not who imported
        me = User(username="api-cit-k1", full_name="市民乙", role=Role.CITIZEN)
        s.add(me)
        s.flush()
        s.get(Order, k1).citizen_user_id = me.id
        _, token = create_token(s, user_id=me.id, name="test")
    mine = client.get(f"/api/v1/orders/{k1}", headers={"Authorization": f"Bearer {token}"})
    assert mine.status_code == 200 and mine.json()["import_batch"] is None


def test_an_import_without_ids_keeps_two_citizens_appeals_in_the_same_words(client):
    """Rows without an id are told apart by every cell: the same words from two phones are two orders, the same
    file imported again is skipped row for row."""
    sheet = (
        "channel,content,citizen_phone,address\n"
        "hotline,我家楼下路灯不亮了请处理,13811110001,白云区三元里大道1号\n"
        "hotline,我家楼下路灯不亮了请处理,13922220002,白云区江高镇江村9号\n"
    ).encode()
    first = client.post("/api/v1/orders/import", files={"file": ("b.csv", sheet, "text/csv")}).json()
    assert (first["imported"], first["skipped_existing"], first["rejected"]) == (2, 0, 0)
    again = client.post("/api/v1/orders/import", files={"file": ("b.csv", sheet, "text/csv")}).json()
    assert (again["imported"], again["skipped_existing"]) == (0, 2)
    listed = client.get("/api/v1/orders", params={"q": "路灯不亮了请处理"}).json()["items"]
    assert sorted(o["citizen_phone"] for o in listed) == ["13811110001", "13922220002"]


def _times(value, path=""):
    """Every (place, text) in a JSON answer that is a date-time."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _times(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [t for i, v in enumerate(value) for t in _times(v, f"{path}.{i}")]
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
        return [(path, value)]
    return []


def test_every_answer_gives_times_in_utc_as_the_order_is_read_back(client):
    from cityhub.sharing import service as sharing

    sent = "2026-03-02T09:30:00+08:00"
    created = _create(
        client,
        created_at=sent,
        address="白云区同和街云景路12号",
        lat=23.2,
        lng=113.3,
        attachments=[{"filename": "a.jpg", "url": "https://example.org/a.jpg"}],
    )
    order_id = created["id"]
    assert created["created_at"] == "2026-03-02T01:30:00Z"
    read = client.get(f"/api/v1/orders/{order_id}").json()
    assert read["created_at"] == created["created_at"] and read["updated_at"] == created["updated_at"]
    acted = client.post(
        f"/api/v1/orders/{order_id}/actions/dispatch", json={"unit_id": client.unit_id, "version": read["version"]}
    )
    assert acted.status_code == 200, acted.text
    with session_scope() as s:
        key = sharing.create_key(s, client_name="times", scopes="sharing:read")[1]
    answers = {
        "create": created,
        "action": acted.json(),
        "read": client.get(f"/api/v1/orders/{order_id}").json(),
        "list": client.get("/api/v1/orders").json(),
        "events": client.get(f"/api/v1/orders/{order_id}/events").json(),
        "map": client.get("/api/v1/map/layers/orders", params={"zoom": 18}).json(),
        "indicators": client.get("/api/v1/map/indicators").json(),
        "sharing": client.get("/api/v1/sharing/orders", params={"cursor": "*"}, headers={"X-API-Key": key}).json(),
        "aggregates": client.get("/api/v1/sharing/aggregates/day", headers={"X-API-Key": key}).json(),
    }
    times = [(name, *t) for name, answer in answers.items() for t in _times(answer)]
    assert {name for name, *_ in times} >= {"create", "action", "read", "list", "events", "sharing", "aggregates"}
    assert [t for t in times if not t[2].endswith("Z")] == []
    assert answers["sharing"]["items"][0]["created_at"] == "2026-03-02T01:30:00Z"


def _api_operations(client, *, taking_json=False):
    """Every operation of /api/v1 as (method, path template, a URL for it: ids 1, days 2026-12-01), or those taking
    a JSON body."""
    spec = client.get("/openapi.json").json()
    return [
        (method.upper(), path, re.sub(r"\{(\w+)\}", lambda m: "2026-12-01" if m.group(1) == "day" else "1", path))
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if path.startswith("/api/v1/")
        and (not taking_json or "application/json" in operation.get("requestBody", {}).get("content", {}))
    ]


def test_every_json_body_of_the_api_refuses_a_field_it_does_not_take_naming_it(client):
    """A misspelt field (``priorty``), one the route cannot change (a sensor's ``metrics`` on PATCH) or one of a
    list's items was dropped with what it held by most write routes — 200, nothing changed, nothing said — while
    ``POST /orders`` and the life-cycle actions refused it. Now every route of /api/v1 taking JSON does."""
    taking_json = _api_operations(client, taking_json=True)
    assert len(taking_json) > 30
    with session_scope() as s:
        from cityhub.sharing import service as sharing

        relay = sharing.create_key(s, client_name="relay", scopes=" ".join(KEY_JSON_ROUTES.values()))[1]
    for method, path, url in taking_json:
        key = {"X-API-Key": relay} if (method, path) in KEY_JSON_ROUTES else {}
        answer = client.request(method, url, json={"zz_not_a_field": 1}, headers=key)
        assert answer.status_code == 422, (method, path, answer.text)
        errors = answer.json()["details"]["errors"]
        assert errors == [{"field": "zz_not_a_field", "message": "Extra inputs are not permitted"}], (method, path)
    # In a list's items and in an object inside the body, too, and named by their place.
    order = _create(client)
    bulk = client.post("/api/v1/dispatch/bulk", json={"items": [{"order_id": order["id"], "unit": client.unit_id}]})
    assert bulk.status_code == 422 and bulk.json()["details"]["errors"][0]["field"] == "items.0.unit", bulk.text
    rule = client.post("/api/v1/dispatch/rules", json={"name": "规则", "target_unit_id": client.unit_id}).json()
    typo = client.patch(f"/api/v1/dispatch/rules/{rule['id']}", json={"priorty": 90})
    assert typo.status_code == 422 and "priorty" in typo.json()["message"]
    assert client.get(f"/api/v1/dispatch/rules/{rule['id']}").json()["priority"] == rule["priority"]
    contact = {"contacts": [{"name": "值班室", "phone": "020-1", "fax": "020-2"}]}
    refused = client.patch(f"/api/v1/units/{client.unit_id}", json=contact)
    assert refused.status_code == 422 and refused.json()["details"]["errors"][0]["field"] == "contacts.0.fax"
    # What a body holds as data — a sensor's metrics, a unit's boundary — is not taken for fields.
    sensor = {"code": "S-1", "name": "积水点", "kind": "waterlogging", "metrics": {"depth": "cm", "flow": "m3/s"}}
    assert client.post("/api/v1/sensors", json=sensor).status_code == 201


# The routes of /api/v1 anyone may call: signing in, a citizen following their appeal.
PUBLIC_JSON_ROUTES = {("POST", "/api/v1/auth/login"), ("POST", "/api/v1/track"), ("POST", "/api/v1/track/rate")}
# The routes taking JSON that an API client calls with its key alone (as the data-sharing API): the scope each needs.
# Without a key they answer as the data-sharing API does, 403 naming the key they need.
KEY_JSON_ROUTES = {("POST", "/api/v1/sms/inbound"): "sms:write"}
JSON = {"content-type": "application/json"}


def test_who_may_call_answers_before_what_the_request_holds(client):
    """The router's checks of a request's body ran before authentication: a caller with no credential, or a wrong
    one, sending a field a route does not take (or a malformed body) got a 422 describing the route's schema instead
    of 401, and one whose role may not call the route a 422 instead of 403. Now who may call answers first, on every
    route taking JSON."""
    taking_json = _api_operations(client, taking_json=True)
    token = client.headers.pop("Authorization")
    try:
        for method, path, url in taking_json:
            public = (method, path) in PUBLIC_JSON_ROUTES
            for body in ({"json": {"zz_not_a_field": 1}}, {"content": b'{"title": ', "headers": JSON}):
                answer = client.request(method, url, **body)
                expected = (
                    (422, "validation_failed")
                    if public
                    else (403, "permission_denied")
                    if (method, path) in KEY_JSON_ROUTES
                    else (401, "unauthenticated")
                )
                assert (answer.status_code, answer.json()["code"]) == expected, (method, path, answer.text)
        assert {(m, p) for m, p, _ in taking_json} >= PUBLIC_JSON_ROUTES
        # A wrong token, text no database stores, an id no table holds, a wrong API key: the credential first.
        wrong = {"Authorization": "Bearer not-a-token"}
        assert client.post("/api/v1/orders", json={"zz": 1}, headers=wrong).status_code == 401
        assert client.post("/api/v1/orders", json={"content": "\u0000"}, headers=wrong).status_code == 401
        assert client.get("/api/v1/orders/99999999999999999999", headers=wrong).status_code == 401
        readings = client.post("/api/v1/sensors/readings", json={"zz": 1}, headers={"X-API-Key": "chk_nope"})
        assert readings.status_code == 403 and readings.json()["code"] == "permission_denied", readings.text
    finally:
        client.headers["Authorization"] = token
    # A caller signed in whose role may not call the route: 403, whatever the body holds.
    for method, url in (("POST", "/api/v1/dispatch/rules"), ("PATCH", f"/api/v1/units/{client.unit_id}")):
        for body in ({"json": {"zz_not_a_field": 1}}, {"content": b"{", "headers": JSON}):
            refused = client.request(method, url, **{**body, "headers": {**body.get("headers", {}), **client.leader}})
            assert (refused.status_code, refused.json()["code"]) == (403, "permission_denied"), (url, refused.text)
    # Once let through, the request's problems are answered as before.
    typo = client.post("/api/v1/orders", json={"channel": "web", "content": "井盖丢了", "priorty": "high"})
    assert typo.status_code == 422 and typo.json()["details"]["errors"][0]["field"] == "priorty"
    broken = client.post("/api/v1/orders", content=b'{"title": ', headers=JSON)
    assert broken.status_code == 422 and broken.json()["details"]["errors"][0]["field"] == "(body)"
    assert client.get("/api/v1/orders/99999999999999999999").status_code == 404


def test_with_a_fastapi_whose_dependency_solver_differs_the_problem_is_answered_not_a_server_error(client, monkeypatch):
    """Running a route's dependencies ahead of the request checks uses FastAPI's own ``solve_dependencies``: with a
    release that calls it otherwise (checked at import), a request's problem is answered as before, never a 500."""
    from cityhub.api import deps

    monkeypatch.setattr(deps, "_SOLVER_FITS", False)
    token = client.headers.pop("Authorization")
    try:
        answer = client.post("/api/v1/orders", json={"zz_not_a_field": 1})
        assert (answer.status_code, answer.json()["code"]) == (422, "validation_failed"), answer.text
        assert client.get("/api/v1/orders").status_code == 401
    finally:
        client.headers["Authorization"] = token


def test_a_query_parameter_a_route_does_not_take_is_refused_naming_it(client):
    """``GET /api/v1/orders?stat=open`` (for ``state``) listed every order as if no filter had been asked for. Now a
    query parameter a route does not take is a 422 naming it, on every route of /api/v1, and the ones it takes."""
    order = _create(client)
    answer = client.get("/api/v1/orders", params={"stat": "open"})
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["code"] == "validation_failed" and "stat" in body["message"]
    [error] = body["details"]["errors"]
    assert error["field"] == "query.stat" and "state" in error["message"] and "limit" in error["message"]
    # What a route and its dependencies declare passes: its filters, paging, an API key given as a parameter.
    listed = client.get("/api/v1/orders", params={"state": "received", "limit": 5, "offset": 0, "count": "true"})
    assert listed.status_code == 200 and [o["id"] for o in listed.json()["items"]] == [order["id"]]
    with session_scope() as s:
        from cityhub.sharing import service as sharing

        key = sharing.create_key(s, client_name="params", scopes="sharing:read admin sensors:write sms:write")[1]
    shared = client.get("/api/v1/sharing/orders", params={"api_key": key, "cursor": "*"})
    assert shared.status_code == 200, shared.text
    # The one map's layers hand what they do not know to plug-in layers.
    assert client.get("/api/v1/map/layers/orders", params={"zoom": 18, "plugin_option": "x"}).status_code == 200
    # Who may call answers first.
    token = client.headers.pop("Authorization")
    try:
        assert client.get("/api/v1/orders", params={"stat": "open"}).status_code == 401
    finally:
        client.headers["Authorization"] = token
    # Every route, whatever its method; nothing is done (a POST refused before it runs).
    operations = _api_operations(client)
    assert len(operations) > 80
    for method, path, url in operations:
        if path in ("/api/v1/map/layers/{name}", "/api/v1/auth/oidc/callback"):  # they pass the others on
            continue
        refused = client.request(method, url, params={"zz_not_a_param": "1"}, headers={"X-API-Key": key})
        assert refused.status_code == 422, (method, path, refused.text)
        assert [e["field"] for e in refused.json()["details"]["errors"]] == ["query.zz_not_a_param"], (method, path)
    assert client.get("/api/v1/orders", params={"count": "true"}).json()["total"] == 1


def test_the_openapi_description_gives_the_error_bodies_the_api_answers(client):
    """/openapi.json described every 422 as FastAPI's ``{"detail": [{"loc", "msg", "type"}]}``, which no route
    answers, and no other refusal; a client generated from it could not read one error."""
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "HTTPValidationError" not in str(spec)
    error = schemas["Error"]
    api = [op for path, ops in spec["paths"].items() if path.startswith("/api/v1/") for op in ops.values()]
    assert api and all(
        op["responses"][status]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
        for op in api
        for status in ("422", "4XX")
    )
    # The bodies as the API gives them hold what the schema requires, and nothing it does not name.
    invalid = client.get("/api/v1/orders", params={"limit": 0}).json()
    missing = client.get("/api/v1/orders/99999").json()
    refused = client.get("/api/v1/orders", headers={"Authorization": "Bearer nope"}).json()
    for body in (invalid, missing, refused):
        assert set(body) == set(error["required"]) == set(error["properties"]), body
    assert set(invalid["details"]["errors"][0]) == set(
        error["properties"]["details"]["properties"]["errors"]["items"]["required"]
    )
    # Open311's routes answer GeoReport's own list.
    for path, ops in spec["paths"].items():
        if path.startswith("/open311/"):
            for op in ops.values():
                assert "422" not in op["responses"]
                assert op["responses"]["4XX"]["content"]["application/json"]["schema"]["$ref"].endswith("Open311Errors")
    unknown = client.get("/open311/v2/requests/NOPE.json").json()
    assert set(unknown[0]) == set(schemas["Open311Errors"]["items"]["required"])


def test_the_order_lists_window_without_an_offset_is_the_districts_local_time(client):
    """docs/api.md: requests must give a time's offset — but the order list's created_from/created_to, which take a
    date or a time without one as the district's local time (Asia/Shanghai here), as the pages' links do."""
    order = _create(client, created_at="2026-03-02T09:30:00+08:00")  # 01:30 UTC

    def listed(**window: str) -> bool:
        answer = client.get("/api/v1/orders", params=window)
        assert answer.status_code == 200, answer.text
        return order["id"] in [o["id"] for o in answer.json()["items"]]

    assert listed(created_from="2026-03-02T09:00:00") and not listed(created_from="2026-03-02T10:00:00")
    assert listed(created_from="2026-03-02", created_to="2026-03-03") and not listed(created_to="2026-03-02")
    assert listed(created_from="2026-03-02T01:00:00Z") and not listed(created_from="2026-03-02T02:00:00Z")


def test_a_validators_refusal_is_said_in_its_own_words(client):
    """A field a validator of cityhub refused was answered with pydantic's "Value error, " in front of the reason
    (``created_at: Value error, created_at must carry a time zone``), in the message and in ``details.errors``, as the
    command line had long stopped saying it."""
    late = {"channel": "web", "content": "路灯不亮", "created_at": "2026-03-02T09:30"}
    answer = client.post("/api/v1/orders", json=late)
    assert answer.status_code == 422, answer.text
    body = answer.json()
    assert body["details"]["errors"] == [{"field": "created_at", "message": "created_at must carry a time zone"}]
    assert body["message"] == "invalid request: created_at: created_at must carry a time zone"
    pair = client.post("/api/v1/orders", json={"channel": "web", "content": "路灯不亮", "lat": 23.1}).json()
    # … at the field that is missing (it said "(body)"), both ways round.
    assert pair["details"]["errors"] == [{"field": "lng", "message": "lat and lng must be given together"}]
    alone = client.post("/api/v1/orders", json={"channel": "web", "content": "路灯不亮", "lng": 113.2}).json()
    assert alone["details"]["errors"] == [{"field": "lng", "message": "lat and lng must be given together"}]


def test_a_return_may_suggest_the_unit_to_dispatch_to_instead_kept_in_its_event(client, cli_run):
    """退单 says which unit should have the order (建议改派至, optional): kept in the return event's payload for the
    dispatcher; an unknown or inactive unit, the returning unit itself, or a suggestion on another action is 4xx
    naming the field — through the API and ``cityhub orders act … -p suggest_unit_id=…`` alike."""
    other, _ = _unit_staff(client, "API-SUGGEST", UnitTier.DEPARTMENT, Role.HANDLER)
    with session_scope() as s:
        gone = Unit(code="API-GONE", name="已撤销单位", tier=UnitTier.DEPARTMENT, parent_id=client.district_id)
        gone.active = False
        s.add(gone)
        s.flush()
        gone_id = gone.id
    order = _create(client)
    url = f"/api/v1/orders/{order['id']}/actions"
    assert client.post(f"{url}/dispatch", json={"unit_id": client.unit_id}).status_code == 200
    for suggested, status, words in (
        (999_999, 422, "unknown or inactive unit 999999"),
        (gone_id, 422, f"unknown or inactive unit {gone_id}"),
        (client.unit_id, 422, "the returning unit cannot suggest itself"),
        ("12", 422, None),  # a unit by its id, not a text
    ):
        refused = client.post(f"{url}/return", json={"reason": "非本单位职责", "suggest_unit_id": suggested})
        assert refused.status_code == status, (suggested, refused.text)
        assert refused.json()["details"].get("field") == "suggest_unit_id" or refused.json()["details"]["errors"]
        if words:
            assert words in refused.json()["message"]
    taken = client.post(f"{url}/accept", json={"suggest_unit_id": other})
    assert taken.status_code == 422 and "takes no 'suggest_unit_id'" in taken.json()["message"]
    assert client.get(f"/api/v1/orders/{order['id']}").json()["state"] == "dispatched"
    back = client.post(f"{url}/return", json={"reason": "非本单位职责", "suggest_unit_id": other})
    assert back.status_code == 200 and back.json()["state"] == "returned"
    events = client.get(f"/api/v1/orders/{order['id']}/events").json()
    assert events[-1]["action"] == "return" and events[-1]["payload"]["suggest_unit_id"] == other
    # Without a suggestion a return is as before.
    plain = _create(client, content="窨井盖缺失")
    plain_url = f"/api/v1/orders/{plain['id']}/actions"
    assert client.post(f"{plain_url}/dispatch", json={"unit_id": client.unit_id}).status_code == 200
    assert client.post(f"{plain_url}/return", json={"reason": "非本单位职责"}).status_code == 200
    plain_events = client.get(f"/api/v1/orders/{plain['id']}/events").json()
    assert "suggest_unit_id" not in (plain_events[-1]["payload"] or {})
    # The command line's `orders act … -p suggest_unit_id=…`: the same checks, one line, exit 1.
    assert client.post(f"{plain_url}/dispatch", json={"unit_id": client.unit_id}).status_code == 200
    assert "-p suggest_unit_id=" in " ".join(cli_run("orders", "act", "--help")[1].split())
    code, _, err = cli_run(
        "orders", "act", plain["number"], "return", "--reason", "非本单位", "-p", "suggest_unit_id=true"
    )
    assert code == 1 and "unknown or inactive unit True" in err
    code, out, _ = cli_run(
        "orders", "act", plain["number"], "return", "--reason", "非本单位", "-p", f"suggest_unit_id={other}"
    )
    assert code == 0 and "return → returned" in out
    plain_events = client.get(f"/api/v1/orders/{plain['id']}/events").json()
    assert plain_events[-1]["payload"]["suggest_unit_id"] == other
