"""Open311 GeoReport v2 conformance over real HTTP: uvicorn on a free 127.0.0.1 port, both backends.

Every endpoint in JSON and XML, required fields with their types, a POST that becomes a normal order, the
Open311 error format, rate limits and per-client call statistics.
"""

from __future__ import annotations

import io
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn
from PIL import Image
from sqlalchemy import select

from cityhub.db import session_scope
from cityhub.main import create_app
from cityhub.org.models import Unit, UnitTier
from cityhub.sharing import georeport
from cityhub.sharing import service as sharing
from cityhub.sharing.models import ApiCallStat
from cityhub.workorders import recompute
from cityhub.workorders import service as orders
from cityhub.workorders.categories import seed_default_taxonomy
from cityhub.workorders.lifecycle import Action, State
from cityhub.workorders.models import MERGED_IN, Attachment, Category, Channel, Order
from cityhub.workorders.scheduled import sla_sweep
from cityhub.workorders.schemas import OrderCreate

BASE = "/open311/v2"
SERVICE_FIELDS = {
    "service_code": str,
    "service_name": str,
    "description": str,
    "metadata": bool,
    "type": str,
    "keywords": str,
    "group": str,
}
REQUEST_FIELDS = (
    "service_request_id",
    "status",
    "status_notes",
    "service_name",
    "service_code",
    "description",
    "agency_responsible",
    "service_notice",
    "requested_datetime",
    "updated_datetime",
    "expected_datetime",
    "address",
    "address_id",
    "zipcode",
    "lat",
    "long",
    "media_url",
)


class _ThreadServer:
    """uvicorn serving the app from a thread on a socket bound to a free loopback port."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(create_app(), log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.sock.close()


@dataclass
class Env:
    http: httpx.Client
    key: str
    unit_id: int
    unit_name: str


@pytest.fixture
def env(app_db: str) -> Iterator[Env]:
    with session_scope() as s:
        seed_default_taxonomy(s)
        unit = Unit(code="O311-D01", name="区城市管理和综合执法局", tier=UnitTier.DEPARTMENT)
        s.add(unit)
        _, key = sharing.create_key(s, client_name="civic-app", scopes="open311:write", rate_limit=1000)
        s.flush()
        unit_id, unit_name = unit.id, unit.name
    with _ThreadServer() as base_url, httpx.Client(base_url=base_url + BASE, timeout=30) as http:
        yield Env(http=http, key=key, unit_id=unit_id, unit_name=unit_name)


def _service_with_children() -> tuple[str, str]:
    with session_scope() as s:
        parent = s.scalars(select(Category).where(Category.level == 2).order_by(Category.code)).first()
        assert parent is not None
        child = s.scalars(select(Category).where(Category.parent_id == parent.id).order_by(Category.code)).first()
        assert child is not None
        return parent.code, child.code


def _post(env: Env, fmt: str = "json", **fields: Any) -> httpx.Response:
    code, _ = _service_with_children()
    data = {
        "api_key": env.key,
        "service_code": code,
        "lat": "23.21",
        "long": "113.27",
        "description": "路灯不亮已经一周了",
        **fields,
    }
    return env.http.post(f"/requests.{fmt}", data={k: v for k, v in data.items() if v is not None})


def _xml(response: httpx.Response, root: str) -> ET.Element:
    assert response.headers["content-type"].startswith("text/xml")
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    element = ET.fromstring(response.content)
    assert element.tag == root
    return element


def _json_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body, list) and len(body) == 1
    assert body[0]["code"] == status and isinstance(body[0]["description"], str) and body[0]["description"]
    return body[0]["description"]


def _xml_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    root = _xml(response, "errors")
    [error] = root.findall("error")
    assert error.findtext("code") == str(status)
    description = error.findtext("description")
    assert description
    return description


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    assert value.tzinfo is not None, text
    return value


# --- services -----------------------------------------------------------------------------------------------


def test_service_list_in_json_and_xml(env: Env) -> None:
    response = env.http.get("/services.json")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    services = response.json()
    with session_scope() as s:
        level2 = set(s.scalars(select(Category.code).where(Category.level == 2)))
    assert {svc["service_code"] for svc in services} == level2
    for svc in services:
        for field, kind in SERVICE_FIELDS.items():
            assert isinstance(svc[field], kind), (field, svc)
        assert svc["type"] in ("realtime", "batch", "blackbox")
    root = _xml(env.http.get("/services.xml"), "services")
    items = root.findall("service")
    assert [i.findtext("service_code") for i in items] == [svc["service_code"] for svc in services]
    assert all(i.findtext("metadata") in ("true", "false") for i in items)
    assert all(i.find(field) is not None for i in items for field in SERVICE_FIELDS)


def test_service_definition_offers_subcategories(env: Env) -> None:
    code, child = _service_with_children()
    definition = env.http.get(f"/services/{code}.json").json()
    assert definition["service_code"] == code
    attributes = {a["code"]: a for a in definition["attributes"]}
    sub = attributes["subcategory"]
    assert sub["datatype"] == "singlevaluelist" and sub["variable"] is True and sub["required"] is False
    assert isinstance(sub["order"], int) and child in {v["key"] for v in sub["values"]}
    root = _xml(env.http.get(f"/services/{code}.xml"), "service_definition")
    assert root.findtext("service_code") == code
    xml_attrs = root.find("attributes")
    assert xml_attrs is not None
    codes = [a.findtext("code") for a in xml_attrs.findall("attribute")]
    assert codes == [a["code"] for a in definition["attributes"]]
    keys = [v.findtext("key") for v in xml_attrs.findall("attribute/values/value")]
    assert child in keys


def test_unknown_service_is_404_in_both_formats(env: Env) -> None:
    assert "C99.99" in _json_error(env.http.get("/services/C99.99.json"), 404)
    assert "C99.99" in _xml_error(env.http.get("/services/C99.99.xml"), 404)


# --- POST and GET requests ----------------------------------------------------------------------------------


def test_post_creates_a_normal_order_visible_everywhere(env: Env) -> None:
    code, child = _service_with_children()
    response = _post(
        env,
        **{
            "attribute[subcategory]": child,
            "first_name": "三",
            "last_name": "张",
            "phone": "13812345678",
            "email": "z@example.org",
            "address_string": "同和街云景路12号",
            "media_url": "https://img.example.org/p/1.jpg",
        },
    )
    assert response.status_code == 201, response.text
    [receipt] = response.json()
    request_id, token = receipt["service_request_id"], receipt["token"]
    assert isinstance(request_id, str) and isinstance(token, str) and isinstance(receipt["service_notice"], str)

    with session_scope() as s:
        order = s.scalars(select(Order).where(Order.number == request_id)).one()
        assert order.channel == Channel.APP and order.state == State.RECEIVED
        assert order.category is not None and order.category.code == child
        assert order.citizen_name == "张三" and order.citizen_phone == "13812345678"
        assert [e.action for e in order.events] == ["create"]

    [single] = env.http.get(f"/requests/{request_id}.json").json()
    assert set(single) == set(REQUEST_FIELDS)
    assert single["service_request_id"] == request_id and single["status"] == "open"
    assert single["service_code"] == code and isinstance(single["service_name"], str)
    assert single["lat"] == pytest.approx(23.21) and single["long"] == pytest.approx(113.27)
    assert single["media_url"] == "https://img.example.org/p/1.jpg"
    assert _aware(single["requested_datetime"]) and _aware(single["updated_datetime"])
    assert "13812345678" not in response.text + str(single) and "张三" not in str(single)

    root = _xml(env.http.get(f"/requests/{request_id}.xml"), "service_requests")
    [item] = root.findall("request")
    assert [child.tag for child in item] == list(REQUEST_FIELDS)
    assert item.findtext("service_request_id") == request_id and item.findtext("status") == "open"
    assert float(item.findtext("lat") or "nan") == pytest.approx(23.21)

    listed = env.http.get("/requests.json").json()
    assert request_id in [r["service_request_id"] for r in listed]
    xml_listed = _xml(env.http.get("/requests.xml"), "service_requests")
    assert request_id in [r.findtext("service_request_id") for r in xml_listed.findall("request")]

    assert env.http.get(f"/tokens/{token}.json").json() == [{"service_request_id": request_id, "token": token}]
    token_xml = _xml(env.http.get(f"/tokens/{token}.xml"), "service_requests")
    assert token_xml.findtext("request/service_request_id") == request_id
    assert token_xml.findtext("request/token") == token


def test_post_in_xml_answers_in_xml(env: Env) -> None:
    response = _post(env, fmt="xml")
    assert response.status_code == 201
    root = _xml(response, "service_requests")
    request_id = root.findtext("request/service_request_id")
    assert request_id and root.find("request/token") is not None and root.find("request/service_notice") is not None
    with session_scope() as s:
        assert s.scalars(select(Order.state).where(Order.number == request_id)).one() == State.RECEIVED


def test_life_cycle_shows_as_status_notes_agency_and_updates(env: Env) -> None:
    [receipt] = _post(env).json()
    request_id = receipt["service_request_id"]
    with session_scope() as s:
        order_id = s.scalars(select(Order.id).where(Order.number == request_id)).one()
        for action, params in (
            (Action.DISPATCH, {"unit_id": env.unit_id}),
            (Action.ACCEPT, {}),
            (Action.REPLY, {"text": "已修复。联系人电话 13912345678"}),
        ):
            orders.act(s, order_id=order_id, action=action, params=params)
    [open_request] = env.http.get(f"/requests/{request_id}.json").json()
    assert open_request["status"] == "open" and open_request["agency_responsible"] == env.unit_name
    assert open_request["status_notes"].startswith("已修复") and "13912345678" not in open_request["status_notes"]
    assert _aware(open_request["expected_datetime"]) > _aware(open_request["requested_datetime"])

    updates = env.http.get("/servicerequestupdates.json", params={"service_request_id": request_id}).json()
    assert [u["status"] for u in updates] == ["open"] * 4
    assert all(u["service_request_id"] == request_id and isinstance(u["update_id"], str) for u in updates)
    assert len({u["update_id"] for u in updates}) == 4 and all(_aware(u["updated_datetime"]) for u in updates)
    root = _xml(
        env.http.get("/servicerequestupdates.xml", params={"service_request_id": request_id}), "service_request_updates"
    )
    assert [u.findtext("update_id") for u in root.findall("request_update")] == [u["update_id"] for u in updates]

    with session_scope() as s:
        orders.act(s, order_id=order_id, action=Action.CALLBACK, params={"satisfied": True})
        orders.act(s, order_id=order_id, action=Action.CLOSE, params={"resolved": True})
    [closed] = env.http.get(f"/requests/{request_id}.json").json()
    assert closed["status"] == "closed"
    closed_ids = [r["service_request_id"] for r in env.http.get("/requests.json", params={"status": "closed"}).json()]
    open_ids = [r["service_request_id"] for r in env.http.get("/requests.json", params={"status": "open"}).json()]
    assert request_id in closed_ids and request_id not in open_ids
    last = env.http.get("/servicerequestupdates.json", params={"service_request_id": request_id}).json()[-1]
    assert last["status"] == "closed"


def test_get_requests_filters_by_id_list_service_and_window(env: Env) -> None:
    code, _ = _service_with_children()
    first = _post(env).json()[0]["service_request_id"]
    second = _post(env).json()[0]["service_request_id"]
    with session_scope() as s:
        old = orders.create_order(
            s,
            data=OrderCreate(channel=Channel.WEB, content="旧工单", created_at=datetime.now(UTC) - timedelta(days=120)),
        )[0].number
    by_ids = env.http.get("/requests.json", params={"service_request_id": f"{first},{old}"}).json()
    assert {r["service_request_id"] for r in by_ids} == {first, old}
    default_window = {r["service_request_id"] for r in env.http.get("/requests.json").json()}
    assert {first, second} <= default_window and old not in default_window
    # A window of its own (at most 90 days since GeoReport's span limit is kept; this one spanned 150 until then).
    earlier = env.http.get(
        "/requests.json",
        params={
            "start_date": (datetime.now(UTC) - timedelta(days=140)).isoformat(),
            "end_date": (datetime.now(UTC) - timedelta(days=60)).isoformat(),
        },
    ).json()
    assert old in {r["service_request_id"] for r in earlier}
    by_service = {r["service_request_id"] for r in env.http.get("/requests.json", params={"service_code": code}).json()}
    assert {first, second} == by_service


def test_get_requests_pages_with_page_and_page_size_an_extension(env: Env) -> None:
    """``page`` (from 1) and ``page_size`` page the list, newest first; without them every request of the window (up
    to 1,000) comes as before; a bad one is GeoReport's 400 naming it."""
    numbers = [_post(env).json()[0]["service_request_id"] for _ in range(5)]
    whole = [r["service_request_id"] for r in env.http.get("/requests.json").json()]
    assert whole == list(reversed(numbers))
    pages = [
        [r["service_request_id"] for r in env.http.get("/requests.json", params={"page": p, "page_size": 2}).json()]
        for p in (1, 2, 3, 4)
    ]
    assert pages == [whole[0:2], whole[2:4], whole[4:], []]
    assert [r["service_request_id"] for r in env.http.get("/requests.json", params={"page_size": 3}).json()] == whole[
        :3
    ]
    by_ids = env.http.get("/requests.json", params={"service_request_id": ",".join(numbers), "page_size": 2, "page": 2})
    assert [r["service_request_id"] for r in by_ids.json()] == whole[2:4]
    xml = _xml(env.http.get("/requests.xml", params={"page": 3, "page_size": 2}), "service_requests")
    assert [r.findtext("service_request_id") for r in xml] == whole[4:]
    for bad in ({"page": "0"}, {"page_size": "1001"}, {"page_size": "x"}):
        assert next(iter(bad)) in _json_error(env.http.get("/requests.json", params=bad), 400), bad


def test_updates_page_with_page_and_page_size_like_the_requests(env: Env) -> None:
    """servicerequestupdates answered at most the window's 1,000 oldest updates, and nothing led to the others (a bulk
    import's thousand receptions in one second held a poller advancing ``start_date`` there for ever): ``page`` and
    ``page_size`` page them too, oldest first, every update once."""
    numbers = [_post(env).json()[0]["service_request_id"] for _ in range(3)]
    with session_scope() as s:
        for number in numbers:
            order_id = s.scalars(select(Order.id).where(Order.number == number)).one()
            orders.act(s, order_id=order_id, action=Action.DISPATCH, params={"unit_id": env.unit_id})
    start = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    whole = [u["update_id"] for u in env.http.get("/servicerequestupdates.json", params={"start_date": start}).json()]
    assert len(whole) == 6 and len(set(whole)) == 6
    pages = [
        [
            u["update_id"]
            for u in env.http.get(
                "/servicerequestupdates.json", params={"start_date": start, "page": p, "page_size": 4}
            ).json()
        ]
        for p in (1, 2, 3)
    ]
    assert pages == [whole[:4], whole[4:], []]
    xml = _xml(
        env.http.get("/servicerequestupdates.xml", params={"start_date": start, "page": 2, "page_size": 4}),
        "service_request_updates",
    )
    assert [u.findtext("update_id") for u in xml] == whole[4:]
    for bad in ({"page": "0"}, {"page_size": "1001"}, {"page_size": "x"}):
        response = env.http.get("/servicerequestupdates.json", params=bad)
        assert next(iter(bad)) in _json_error(response, 400), bad


# --- what the public reads ------------------------------------------------------------------------------------

HOTLINE_CALL = (
    "本人李雪梅，身份证44010619850101123X，住三元里大道88号5栋1907室，手机１３９１２３４５６７８，"
    "备用139.1234.5678，邻居王大力（电话一三九八七六五四三二一）夜间装修噪音。"
)
HOTLINE_SECRETS = (
    "李雪梅",
    "44010619850101123X",
    "88号",
    "5栋",
    "1907",
    "１３９",
    "139.1234",
    "一三九八",
    "13912345678",
    "13877776666",
    "23.16321",
    "113.26487",
)


def test_a_cameras_snapshot_is_never_published_a_citizens_photo_is(env: Env) -> None:
    """A video-AI order's attachment links the district's own video platform (the street and who is in it): the
    public feed leaves it out; a citizen's own photo is published as Open311's media_url."""
    numbers = {}
    with session_scope() as s:
        for channel, url in ((Channel.VIDEO_AI, "http://10.20.1.5/snap/1.jpg"), (Channel.APP, "https://img.org/a.jpg")):
            data = OrderCreate.model_validate(
                {"channel": channel, "content": "路口有占道经营", "attachments": [{"filename": "1.jpg", "url": url}]}
            )
            order, _ = orders.create_order(s, data=data)
            numbers[channel] = order.number
    published = {r["service_request_id"]: r["media_url"] for r in env.http.get("/requests.json").json()}
    assert published == {numbers[Channel.VIDEO_AI]: None, numbers[Channel.APP]: "https://img.org/a.jpg"}
    [single] = env.http.get(f"/requests/{numbers[Channel.VIDEO_AI]}.json").json()
    assert single["media_url"] is None and "10.20.1.5" not in str(single)


def _key_of(client: str) -> str:
    """A key of another API client than the one of ``env``."""
    with session_scope() as s:
        return sharing.create_key(s, client_name=client, scopes="open311:write", rate_limit=1000)[1]


def _hotline_call(env: Env) -> str:
    """A 12345 call taken by an operator, dispatched and replied to; its number."""
    with session_scope() as s:
        order, _ = orders.create_order(
            s,
            data=OrderCreate(
                channel=Channel.HOTLINE,
                citizen_name="李雪梅",
                citizen_phone="13912345678",
                content=HOTLINE_CALL,
                address="白云区三元里街道三元里大道88号5栋1907室",
                lat=23.16321,
                lng=113.26487,
            ),
        )
        for action, params in (
            (Action.DISPATCH, {"unit_id": env.unit_id}),
            (Action.ACCEPT, {}),
            (Action.REPLY, {"text": "已到三元里大道88号5栋1907室核查，李雪梅已确认，可致电 138 7777 6666 反馈"}),
        ):
            orders.act(s, order_id=order.id, action=action, params=params)
        return order.number


def test_public_reads_give_away_no_more_than_the_sharing_api(env: Env) -> None:
    """Anonymous reads (and a key of a client that did not post it) show the coarse place and scrubbed texts."""
    number = _hotline_call(env)
    other_client = _key_of("another-app")
    for params in ({}, {"api_key": other_client}):
        single = env.http.get(f"/requests/{number}.json", params=params)
        listed = env.http.get("/requests.json", params=params)
        by_id = env.http.get("/requests.json", params={"service_request_id": number, **params})
        updates = env.http.get("/servicerequestupdates.json", params={"service_request_id": number, **params})
        xml = env.http.get(f"/requests/{number}.xml", params=params)
        for response in (single, listed, by_id, updates, xml):
            assert response.status_code == 200, response.text
            for secret in HOTLINE_SECRETS:
                assert secret not in response.text, (response.url, secret)
        [request] = single.json()
        assert set(request) == set(REQUEST_FIELDS)
        assert request["address"] == "白云区三元里街道三元里大道"
        assert request["lat"] == 23.16 and request["long"] == 113.26
        assert request["description"].startswith("本人[已隐去]，身份证[身份证号]，住三元里大道[门牌号]，")
        assert "夜间装修噪音" in request["description"] and "[已隐去]已确认" in request["status_notes"]
        assert [r for r in listed.json() if r["service_request_id"] == number] == [request] == by_id.json()
        assert float(_xml(xml, "service_requests").findtext("request/lat") or "nan") == 23.16
        [reply] = [u for u in updates.json() if "已答复" in u["description"]]
        assert "三元里大道[门牌号]" in reply["description"] and "[电话]" in reply["description"]


def test_a_district_publishes_only_the_channels_it_chooses(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """CITYHUB_OPEN311_CHANNELS=web,app: a 12345 call is not in the public feed at all (not found, as a missing
    one), an app's own request still reads whole with its key and is public like any web appeal."""
    from cityhub.config import get_settings

    call = _hotline_call(env)
    [receipt] = _post(env, description="同和街云景路路灯不亮").json()
    posted = receipt["service_request_id"]
    assert any(r["service_request_id"] == call for r in env.http.get("/requests.json").json())  # all, by default
    monkeypatch.setenv("CITYHUB_OPEN311_CHANNELS", "web,app")
    get_settings.cache_clear()
    try:
        for params in ({}, {"api_key": env.key}):
            listed = [r["service_request_id"] for r in env.http.get("/requests.json", params=params).json()]
            assert call not in listed and posted in listed
            by_id = env.http.get("/requests.json", params={"service_request_id": f"{call},{posted}", **params})
            assert [r["service_request_id"] for r in by_id.json()] == [posted]
            single = env.http.get(f"/requests/{call}.json", params=params)
            assert (
                single.status_code == 404
                and single.json()[0]["description"] == f"service_request_id {call!r} not found"
            )
            updates = env.http.get("/servicerequestupdates.json", params=params).json()
            assert {u["service_request_id"] for u in updates} == {posted}
        [own] = env.http.get(f"/requests/{posted}.json", params={"api_key": env.key}).json()
        assert own["description"] == "同和街云景路路灯不亮"
    finally:
        get_settings.cache_clear()


def test_a_client_reads_the_requests_it_posted_as_it_sent_them(env: Env) -> None:
    """With its own key a civic app gets back the address, point and description it sent, and the reply to it."""
    description = "路灯不亮，住云景路12号3栋501，电话13812345678"
    [receipt] = _post(
        env, description=description, lat="23.21234", long="113.27891", address_string="同和街云景路12号3栋501"
    ).json()
    number = receipt["service_request_id"]
    with session_scope() as s:
        order_id = s.scalars(select(Order.id).where(Order.number == number)).one()
        for action, params in (
            (Action.DISPATCH, {"unit_id": env.unit_id}),
            (Action.ACCEPT, {}),
            (Action.REPLY, {"text": "已修复，师傅电话 13966665555"}),
        ):
            orders.act(s, order_id=order_id, action=action, params=params)

    [own] = env.http.get(f"/requests/{number}.json", params={"api_key": env.key}).json()
    assert own["address"] == "同和街云景路12号3栋501" and own["description"] == description
    assert own["lat"] == pytest.approx(23.21234) and own["long"] == pytest.approx(113.27891)
    assert own["status_notes"] == "已修复，师傅电话 13966665555"
    listed = env.http.get("/requests.json", params={"api_key": env.key, "service_request_id": number}).json()
    assert listed == [own]
    updates = env.http.get(
        "/servicerequestupdates.json", params={"api_key": env.key, "service_request_id": number}
    ).json()
    assert any("13966665555" in u["description"] for u in updates)

    [public] = env.http.get(f"/requests/{number}.json").json()
    assert public["address"] == "同和街云景路" and public["lat"] == 23.21 and public["long"] == 113.28
    assert "13812345678" not in public["description"] and "3栋501" not in public["description"]
    assert "13966665555" not in public["status_notes"]
    [public_elsewhere] = env.http.get(f"/requests/{number}.json", params={"api_key": _key_of("another-app")}).json()
    assert public_elsewhere == public


def test_the_key_may_come_in_the_x_api_key_header_as_the_refusal_says(env: Env) -> None:
    """A POST with its key in ``X-API-Key`` (as the data-sharing API and the sensor readings take it) was refused
    "an API key is required (api_key parameter or X-API-Key header)": the header the message named was never read.
    The GETs read it too, showing the client its own request as sent."""
    code, _ = _service_with_children()
    form = {"service_code": code, "lat": "23.21234", "long": "113.27891", "description": "井盖缺失，住云景路12号"}
    posted = env.http.post("/requests.json", data=form, headers={"X-API-Key": env.key})
    assert posted.status_code == 201, posted.text
    number = posted.json()[0]["service_request_id"]
    [own] = env.http.get(f"/requests/{number}.json", headers={"X-API-Key": env.key}).json()
    assert own["description"] == form["description"] and own["lat"] == pytest.approx(23.21234)
    [public] = env.http.get(f"/requests/{number}.json").json()
    assert public["lat"] == 23.21
    assert "invalid" in _json_error(env.http.post("/requests.json", data=form, headers={"X-API-Key": "chk_x"}), 403)


def test_internal_audit_events_are_not_public_updates(db_session) -> None:
    """Sweep marks, a deadline moved by a calendar edit (sla_recompute), a comment and an assisting unit's steps
    stay internal: servicerequestupdates lists only the labelled life-cycle steps, each with its label."""
    monday = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a plain working week
    s = db_session
    lead = Unit(code="O311-I01", name="区城管局", tier=UnitTier.DEPARTMENT)
    helper = Unit(code="O311-I02", name="区住建局", tier=UnitTier.DEPARTMENT)
    s.add_all([lead, helper])
    s.flush()
    order, _ = orders.create_order(s, data=OrderCreate(channel=Channel.WEB, content="路灯不亮", created_at=monday))
    orders.act(s, order_id=order.id, action=Action.DISPATCH, params={"unit_id": lead.id}, now=monday)
    sla_sweep(s, now=monday + timedelta(hours=4))  # past the 2-hour accept limit: sla_accept_overdue
    # A typhoon day on Wednesday moves the running deadline: one sla_recompute event.
    _, moved = recompute.set_calendar_day(
        s, day=date(2026, 3, 4), is_workday=False, name="台风停工", now=monday + timedelta(hours=5)
    )
    assert moved.orders == 1
    s.expire_all()  # both moved the order's version in SQL
    at = monday + timedelta(hours=6)
    for action, params in (
        (Action.ACCEPT, {}),
        (Action.COMMENT, {"text": "需要住建局配合"}),
        (Action.ADD_ASSIST, {"unit_id": helper.id}),
        (Action.ASSIST_ACCEPT, {"unit_id": helper.id}),
        (Action.ASSIST_REPLY, {"unit_id": helper.id, "text": "已配合"}),
    ):
        at += timedelta(minutes=10)
        orders.act(s, order_id=order.id, action=action, params=params, now=at)
    # Another citizen's appeal merged into it: an entry on its trail for the units, not for the public.
    dup, _ = orders.create_order(s, data=OrderCreate(channel=Channel.WEB, content="路灯还是不亮", created_at=at))
    orders.act(s, order_id=dup.id, action=Action.MERGE, params={"master_id": order.id}, now=at + timedelta(minutes=5))
    s.flush()

    trail = {e.action: e for e in orders.history(s, order_id=order.id)}
    internal = {"sla_accept_overdue", "sla_recompute", "comment", "assist_accept", "assist_reply", MERGED_IN}
    assert internal <= set(trail)
    assert set(trail) <= {a.value for a in georeport.ACTION_LABELS} | georeport.INTERNAL_ACTIONS
    updates = georeport.list_updates(s, service_request_id=order.number, now=monday + timedelta(days=1))
    public = ["create", "dispatch", "accept", "add_assist"]
    assert [u["update_id"] for u in updates] == [str(trail[a].id) for a in public]
    assert [u["description"] for u in updates] == [georeport.ACTION_LABELS[Action(a)] for a in public]


def test_every_life_cycle_action_is_either_labelled_or_internal() -> None:
    labelled = {a.value for a in georeport.ACTION_LABELS}
    assert not labelled & georeport.INTERNAL_ACTIONS
    assert {a.value for a in Action} <= labelled | georeport.INTERNAL_ACTIONS
    assert recompute.ACTION in georeport.INTERNAL_ACTIONS and MERGED_IN in georeport.INTERNAL_ACTIONS


# --- errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_post_errors_in_open311_format(env: Env, fmt: str) -> None:
    error = _json_error if fmt == "json" else _xml_error
    assert "api" in error(_post(env, fmt=fmt, api_key=None), 403).lower()
    assert "invalid" in error(_post(env, fmt=fmt, api_key="chk_not-a-key"), 403)
    assert "service_code" in error(_post(env, fmt=fmt, service_code="C99.99"), 400)
    assert "location" in error(_post(env, fmt=fmt, lat=None, long=None), 400)
    assert "long" in error(_post(env, fmt=fmt, long="east"), 400)
    assert "lat must be a number in WGS84 degrees" in error(_post(env, fmt=fmt, lat="nan"), 400)
    assert "long must be a number in WGS84 degrees" in error(_post(env, fmt=fmt, long="-inf"), 400)
    assert "address_string is longer than 300" in error(_post(env, fmt=fmt, address_string="路" * 301), 400)
    with session_scope() as s:
        _, reader_key = sharing.create_key(s, client_name="reader", scopes="sharing:read")
        assert s.scalars(select(Order)).first() is None
    assert "open311:write" in error(_post(env, fmt=fmt, api_key=reader_key), 403)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_body_that_cannot_be_read_is_refused_after_the_key_it_can_find(env: Env, fmt: str) -> None:
    """A POST whose body cannot be read was refused with the body's problem before any key was looked at: a wrong
    key in X-API-Key or the query string got "the body is not valid JSON", and a form whose text was not UTF-8 had it
    replaced by U+FFFD unseen. Now the key found outside the body (or in such a form) is checked first, the body's
    problem is a 400 naming it, and without a key to read the 400 says that too."""
    error = _json_error if fmt == "json" else _xml_error
    code, _ = _service_with_children()
    url = f"/requests.{fmt}"
    broken = b'{"service_code": "' + code.encode() + b'", "lat": 23.21,}'
    as_json = {"Content-Type": "application/json"}

    assert "invalid" in error(env.http.post(url, content=broken, headers={**as_json, "X-API-Key": "chk_x"}), 403)
    assert "invalid" in error(env.http.post(url, content=broken, headers=as_json, params={"api_key": "chk_x"}), 403)
    said = error(env.http.post(url, content=broken, headers={**as_json, "X-API-Key": env.key}), 400)
    assert said.startswith("the body is not valid JSON: ") and "line 1, column" in said, said
    unknown = error(env.http.post(url, content=broken, headers=as_json), 400)
    assert "not valid JSON" in unknown and "api_key" in unknown
    listed = env.http.post(url, content=b"[1, 2]", headers={**as_json, "X-API-Key": env.key})
    assert "must be an object of parameters, not an array" in error(listed, 400)
    # A parameter's value is text or a number: an object or array was stored as Python's text for it ("{'a': 1}").
    for value, kind in (({"a": 1}, "an object"), (["路灯", "不亮"], "an array")):
        nested = {"service_code": code, "lat": 23.21, "long": 113.27, "description": value, "api_key": env.key}
        said = error(env.http.post(url, json=nested), 400)
        assert said == f"the JSON parameter 'description' must be a string or a number, not {kind}", said

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    gbk = "路灯不亮".encode("gb18030")
    raw = b"service_code=" + code.encode() + b"&lat=23.21&long=113.27&description=" + gbk
    assert "invalid" in error(env.http.post(url, content=raw + b"&api_key=chk_x", headers=form), 403)
    escaped = raw.replace(gbk, "".join(f"%{b:02X}" for b in gbk).encode())
    assert escaped != raw
    for body in (raw, escaped):
        said = error(env.http.post(url, content=body + b"&api_key=" + env.key.encode(), headers=form), 400)
        assert said == "the form is not UTF-8 (field description): send its text in UTF-8", said

    # A body past what a request's text needs is refused unread beyond the limit, after its key.
    huge = b"service_code=" + code.encode() + b"&description=" + b"a" * (300 * 1024)
    assert "invalid" in error(env.http.post(url, content=huge, headers={**form, "X-API-Key": "chk_x"}), 403)
    said = error(env.http.post(url, content=huge, headers={**form, "X-API-Key": env.key}), 400)
    assert said == "the body is larger than 256 KiB (a service request's text)", said

    plain = {"Content-Type": "text/plain", "X-API-Key": "chk_x"}
    assert "invalid" in error(env.http.post(url, content=b"service_code=x", headers=plain), 403)
    plain["X-API-Key"] = env.key
    assert "content type 'text/plain' is not supported" in error(
        env.http.post(url, content=b"service_code=x", headers=plain), 400
    )
    with session_scope() as s:
        assert s.scalars(select(Order)).first() is None  # nothing received from any of them


def test_a_json_post_takes_its_attributes_as_an_object_and_true_as_the_word(env: Env) -> None:
    """A JSON body's ``attribute`` object is the form's ``attribute[code]`` fields; true and false are the words a form
    would send, not Python's True."""
    code, child = _service_with_children()
    body = {
        "api_key": env.key,
        "service_code": code,
        "lat": 23.21,
        "long": 113.27,
        "description": "云景路路灯不亮",
        "attribute": {"subcategory": child},
    }
    response = env.http.post("/requests.json", json=body)
    assert response.status_code == 201, response.text
    with session_scope() as s:
        order = s.scalars(select(Order).where(Order.number == response.json()[0]["service_request_id"])).one()
        assert order.category is not None and order.category.code == child
    bad = env.http.post("/requests.json", json={**body, "attribute": {"subcategory": ["x"]}})
    assert "'attribute[subcategory]' must be a string or a number, not an array" in _json_error(bad, 400)


def test_a_multipart_post_brings_its_photo_as_the_citizens_file_of_the_order(
    env: Env, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Civic apps send the photo itself (multipart/form-data, the ``media`` file) where GeoReport v2 has only
    media_url: it is checked as the intake form's files are — a refused one names itself and nothing is received —
    kept in cityhub's own store as the citizen's file of the order, and never published by the public GETs."""
    monkeypatch.setenv("CITYHUB_FILES_DIR", str(tmp_path / "files"))
    code, _ = _service_with_children()
    photo = io.BytesIO()
    Image.new("RGB", (8, 6), "red").save(photo, "PNG")
    fields = {"api_key": env.key, "service_code": code, "lat": "23.21", "long": "113.27", "description": "井盖缺失"}

    refused = env.http.post("/requests.json", data=fields, files={"media": ("x.html", b"<html></html>", "text/html")})
    said = _json_error(refused, 400)
    assert said.startswith("media: file 1 (x.html): not a kind of file taken"), said
    other = env.http.post("/requests.json", data=fields, files={"photo": ("p.png", photo.getvalue(), "image/png")})
    assert _json_error(other, 400) == "the file field 'photo' is not taken; send the photo as 'media'"
    with session_scope() as s:
        assert s.scalars(select(Order)).first() is None

    made = env.http.post("/requests.json", data=fields, files={"media": ("井盖.png", photo.getvalue(), "image/png")})
    assert made.status_code == 201, made.text
    number = made.json()[0]["service_request_id"]
    with session_scope() as s:
        order = s.scalars(select(Order).where(Order.number == number)).one()
        [kept] = s.scalars(select(Attachment).where(Attachment.order_id == order.id)).all()
        assert (kept.filename, kept.content_type, kept.size) == ("井盖.png", "image/png", len(photo.getvalue()))
        assert kept.sha256 is not None and kept.uploaded_by is None  # the citizen's, in the store
        assert order.content == "井盖缺失"
    assert env.http.get(f"/requests/{number}.json").json()[0]["media_url"] is None  # never published
    # Without a file, a multipart body is a form like any other.
    plain = env.http.post("/requests.json", data=fields, files={"media": ("", b"", "application/octet-stream")})
    assert plain.status_code == 201, plain.text


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_get_errors_in_open311_format(env: Env, fmt: str) -> None:
    error = _json_error if fmt == "json" else _xml_error
    assert "start_date" in error(env.http.get(f"/requests.{fmt}", params={"start_date": "yesterday"}), 400)
    assert "end_date" in error(env.http.get(f"/requests.{fmt}", params={"end_date": "2026-13-45"}), 400)
    later, earlier = datetime.now(UTC).isoformat(), (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert "after" in error(env.http.get(f"/requests.{fmt}", params={"start_date": later, "end_date": earlier}), 400)
    assert "status" in error(env.http.get(f"/requests.{fmt}", params={"status": "pending"}), 400)
    assert "not found" in error(env.http.get(f"/requests/BY00000000-000000.{fmt}"), 404)
    assert "not found" in error(env.http.get(f"/tokens/nope.{fmt}"), 404)
    assert "start_date" in error(env.http.get(f"/servicerequestupdates.{fmt}", params={"start_date": "x"}), 400)
    _json_error(env.http.get("/services.csv"), 400)


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_a_window_longer_than_90_days_is_refused_naming_both_dates(env: Env, fmt: str) -> None:
    """GeoReport v2: start_date with end_date "may not span more than 90 days". Any span was taken (a harvester's
    ten years answered its 1,000 newest); a longer one is now GeoReport's 400 naming both fields, for the requests
    and the updates. 90 days exactly is taken, and one date alone is still the 90 days after (before) it."""
    error = _json_error if fmt == "json" else _xml_error
    with session_scope() as s:
        old = orders.create_order(
            s,
            data=OrderCreate(channel=Channel.WEB, content="旧工单", created_at=datetime.now(UTC) - timedelta(days=120)),
        )[0].number
    end = datetime.now(UTC).replace(microsecond=0)
    for path in ("requests", "servicerequestupdates"):
        for days, shown in ((91, 91), (timedelta(days=90, seconds=1), 91), (3650, 3650)):
            span = days if isinstance(days, timedelta) else timedelta(days=days)
            dates = {"start_date": (end - span).isoformat(), "end_date": end.isoformat()}
            said = error(env.http.get(f"/{path}.{fmt}", params=dates), 400)
            assert said.startswith(f"start_date and end_date span {shown} days; GeoReport v2 allows at most 90"), said
        exactly = env.http.get(
            f"/{path}.{fmt}", params={"start_date": (end - timedelta(days=90)).isoformat(), "end_date": end.isoformat()}
        )
        assert exactly.status_code == 200, exactly.text

    # One date alone is the 90 days after (before) it, as documented: the old order is in the 90 days after a start
    # 125 days ago, and not in the 90 days before an end 10 days ago (that window begins 100 days ago).
    def listed(**params: str) -> set[str]:
        return {r["service_request_id"] for r in env.http.get("/requests.json", params=params).json()}

    assert old in listed(start_date=(end - timedelta(days=125)).isoformat())
    assert old not in listed(start_date=(end - timedelta(days=119)).isoformat())
    assert old in listed(end_date=(end - timedelta(days=40)).isoformat())
    assert old not in listed(end_date=(end - timedelta(days=10)).isoformat())


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_dates_at_the_ends_of_the_calendar_are_bad_arguments(env: Env, fmt: str) -> None:
    """A date whose window or UTC time falls off the calendar (9999-12-31 plus 90 days, year 1 at +08:00) is the
    caller's mistake, named, not a server error."""
    error = _json_error if fmt == "json" else _xml_error
    for path, field, value in [
        ("requests", "start_date", "9999-12-31"),
        ("requests", "start_date", "0001-01-01"),
        ("requests", "end_date", "0001-01-01T00:00:00+08:00"),
        ("servicerequestupdates", "start_date", "9999-12-31"),
    ]:
        assert field in error(env.http.get(f"/{path}.{fmt}", params={field: value}), 400), (path, value)


# --- clients: rate limit and statistics -------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(env: Env) -> None:
    with session_scope() as s:
        _, key = sharing.create_key(s, client_name="tight", scopes="open311:write", rate_limit=2)
    statuses = [_post(env, api_key=key).status_code for _ in range(2)]
    refused = _post(env, api_key=key)
    if refused.status_code != 429:
        # The two calls straddled a minute boundary; the next window allows two more.
        statuses += [refused.status_code, _post(env, api_key=key).status_code]
        refused = _post(env, api_key=key)
    assert set(statuses) == {201}
    _json_error(refused, 429)
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    with session_scope() as s:
        assert s.scalars(select(Order)).all().__len__() == len(statuses)


def test_calls_are_counted_per_client_endpoint_and_errors(env: Env) -> None:
    assert _post(env).status_code == 201
    assert _post(env, service_code="C99.99").status_code == 400
    assert env.http.get("/services.json", params={"api_key": env.key}).status_code == 200
    assert env.http.get("/services.json").status_code == 200  # anonymous: no client to count
    with session_scope() as s:
        rows = {(r.endpoint, r.calls, r.errors) for r in s.scalars(select(ApiCallStat))}
    assert rows == {(f"POST {BASE}/requests.{{fmt}}", 2, 1), (f"GET {BASE}/services.{{fmt}}", 1, 0)}


def _posted_with_a_photo(env: Env, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """An app's request posted with its key and a photo (kept in a store of the test's own): its number."""
    monkeypatch.setenv("CITYHUB_FILES_DIR", str(tmp_path / "files"))
    code, _ = _service_with_children()
    photo = io.BytesIO()
    Image.new("RGB", (8, 6), "red").save(photo, "PNG")
    fields = {"api_key": env.key, "service_code": code, "lat": "23.21", "long": "113.27", "description": "井盖缺失"}
    made = env.http.post("/requests.json", data=fields, files={"media": ("井盖.png", photo.getvalue(), "image/png")})
    assert made.status_code == 201, made.text
    return str(made.json()[0]["service_request_id"])


def test_a_published_photo_is_named_only_where_its_public_address_serves_it(
    env: Env, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A photo staff published is served to anyone only for an order of the channels the district publishes
    (CITYHUB_OPEN311_CHANNELS): an app's own request outside them, read with its key, names no media_url rather
    than an address that answers 404; inside them, the address serves the photo."""
    from cityhub.config import get_settings
    from cityhub.workorders import files
    from cityhub.workorders.service import Actor

    number = _posted_with_a_photo(env, tmp_path, monkeypatch)
    with session_scope() as s:
        order = s.scalars(select(Order).where(Order.number == number)).one()
        [kept] = s.scalars(select(Attachment).where(Attachment.order_id == order.id)).all()
        files.publish(s, order_id=order.id, attachment_id=kept.id, actor=Actor(name="督办"))
    monkeypatch.setenv("CITYHUB_OPEN311_CHANNELS", "web")
    get_settings.cache_clear()
    try:
        [own] = env.http.get(f"/requests/{number}.json", params={"api_key": env.key}).json()
        assert own["media_url"] is None
    finally:
        get_settings.cache_clear()
    monkeypatch.delenv("CITYHUB_OPEN311_CHANNELS")
    [public] = env.http.get(f"/requests/{number}.json").json()
    assert env.http.get(public["media_url"]).status_code == 200


def test_a_photos_publication_is_an_update_with_its_media_url_until_withdrawn(
    env: Env, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """servicerequestupdates: publishing a photo (an internal comment of the trail) is a public update carrying the
    photo's address, so an app following the updates learns of it; withdrawn, the update is gone with the address;
    the upload itself and the withdrawal are no updates; and a client's own request of a channel Open311 does not
    publish gets no such update (its address would answer 404)."""
    from cityhub.config import get_settings
    from cityhub.workorders import files
    from cityhub.workorders.service import Actor

    number = _posted_with_a_photo(env, tmp_path, monkeypatch)

    def updates(**params: str) -> list[dict[str, Any]]:
        answer = env.http.get("/servicerequestupdates.json", params={"service_request_id": number, **params})
        assert answer.status_code == 200, answer.text
        return list(answer.json())

    before = updates()
    assert [u["media_url"] for u in before] == [None]  # received; the photo came with it, unpublished
    with session_scope() as s:
        order = s.scalars(select(Order).where(Order.number == number)).one()
        [kept] = s.scalars(select(Attachment).where(Attachment.order_id == order.id)).all()
        files.publish(s, order_id=order.id, attachment_id=kept.id, actor=Actor(name="督办"))
    after = updates()
    assert len(after) == 2
    published = after[1]
    assert published["description"] == georeport.PHOTO_PUBLISHED
    assert published["status"] == "open"
    assert published["media_url"].startswith("http") and "/open311/v2/media/" in published["media_url"]
    assert env.http.get(published["media_url"]).status_code == 200
    [request] = env.http.get(f"/requests/{number}.json").json()
    assert request["media_url"] == published["media_url"]  # the same address the request names
    xml = env.http.get("/servicerequestupdates.xml", params={"service_request_id": number}).text
    assert published["media_url"] in xml

    monkeypatch.setenv("CITYHUB_OPEN311_CHANNELS", "web")
    get_settings.cache_clear()
    try:
        assert [u["media_url"] for u in updates(api_key=env.key)] == [None]  # its own request, not published
    finally:
        get_settings.cache_clear()
    monkeypatch.delenv("CITYHUB_OPEN311_CHANNELS")

    with session_scope() as s:
        files.withdraw(s, order_id=order.id, attachment_id=kept.id, actor=Actor(name="督办"))
    assert updates() == before
