"""The grid inspector (网格员) on both backends: reports from patrol through the intake form and the API — channel
grid, placed in their own grid unless the report says where, with photos — and works their unit's orders."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from cityhub.auth import service as auth
from cityhub.auth.service import create_token
from cityhub.db import session_scope
from cityhub.org.models import Role, Unit, UnitTier
from cityhub.org.schemas import UserCreate
from cityhub.workorders import service as orders
from cityhub.workorders.models import Channel, Order
from cityhub.workorders.schemas import OrderCreate
from web_helpers import PASSWORD, build_world, hidden, login


@pytest.fixture
def world(app_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("CITYHUB_FILES_DIR", str(tmp_path / "files"))
    monkeypatch.setenv("CITYHUB_SESSION_COOKIE_SECURE", "false")
    with session_scope() as s:
        w = build_world(s)
        grid = Unit(code="W-JT-01", name="云景社区", tier=UnitTier.COMMUNITY, parent_id=w.street_a)
        s.add(grid)
        s.flush()
        user = auth.create_account(
            s,
            data=UserCreate(username="grid", full_name="邓网格", role=Role.INSPECTOR, unit_id=grid.id),
            password=PASSWORD,
        )
        token = create_token(s, user_id=user.id, name="t")[1]
        return {"grid": grid.id, "street": w.street_a, "other_street": w.street_b, "token": token, "user": user.id}


def _photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 12), "brown").save(out, "JPEG")
    return out.getvalue()


def test_an_inspector_reports_from_patrol_with_a_photo_placed_in_their_grid(world) -> None:
    client = login("grid")
    home = client.get("/")
    assert home.url.path == "/intake" and "巡查上报" in home.text and 'id="f-channel"' not in home.text
    # The button sends a report (上报), not the hotline operator's 受理登记 (registering an appeal received).
    assert re.search(r'data-testid="intake-submit"[^>]*>上报</button>', home.text) and "受理登记" not in home.text
    # A patrol finds problems to deal with, not questions: the form opens on 求助.
    assert '<option value="help" selected>' in home.text and '<option value="consultation">' in home.text
    done = client.post(
        "/intake",
        data={"csrf_token": hidden(home.text), "appeal_type": "complaint", "content": "路边垃圾堆放多日无人清运"},
        files=[("files", ("现场.jpg", _photo(), "image/jpeg"))],
    )
    assert done.status_code == 200 and "现场.jpg" in done.text
    with session_scope() as s:
        order = s.scalars(select(Order).where(Order.content == "路边垃圾堆放多日无人清运")).one()
        assert order.channel == Channel.GRID
        assert (order.community_id, order.street_id) == (world["grid"], world["street"])
        assert [(a.filename, a.uploaded_by) for a in order.attachments] == [("现场.jpg", None)]


def test_the_patrol_form_keeps_the_phones_position(world) -> None:
    client = login("grid")
    home = client.get("/intake")
    assert 'data-testid="locate-me"' in home.text and 'name="lat"' in home.text  # 使用当前位置
    done = client.post(
        "/intake",
        data={"csrf_token": hidden(home.text), "content": "井盖缺失有人踩空", "lat": "23.181234", "lng": "113.281234"},
    )
    assert done.status_code == 200, done.text
    assert 'data-testid="position">23.181234, 113.281234</span>' in done.text  # the order page says where it is
    with session_scope() as s:
        order = s.scalars(select(Order).where(Order.content == "井盖缺失有人踩空")).one()
        assert (order.lat, order.lng) == (23.181234, 113.281234)
        assert order.community_id == world["grid"]  # no boundary drawn there: still in their grid
    wrong = client.post(
        "/intake", data={"csrf_token": hidden(home.text), "content": "路灯不亮", "lat": "123", "lng": "113.28"}
    )
    assert wrong.status_code == 422 and 'data-testid="field-error-lat"' in wrong.text
    assert 'name="lat" value="123"' in wrong.text  # what was sent stays in the form
    # and the position said as the language writes it: 已定位：lat, lng (no space after the full-width colon)
    assert 'data-testid="locate-status">已定位：123, 113.28</span>' in wrong.text
    assert 'data-located="已定位：{position}"' in wrong.text


def test_the_api_files_an_inspectors_report_as_grid_and_keeps_a_place_it_names(world) -> None:
    from fastapi.testclient import TestClient

    from app_helpers import shared_app

    client = TestClient(shared_app(), raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {world['token']}"}
    mine = client.post("/api/v1/orders", json={"channel": "hotline", "content": "井盖缺失"}, headers=headers)
    assert mine.status_code == 201, mine.text
    assert mine.json()["channel"] == "grid" and mine.json()["community_id"] == world["grid"]
    assert mine.json()["appeal_type"] == "help"  # saying no kind: a problem to deal with
    asked = client.post(
        "/api/v1/orders",
        json={"channel": "grid", "content": "垃圾分类时间？", "appeal_type": "consultation"},
        headers=headers,
    )
    assert asked.status_code == 201 and asked.json()["appeal_type"] == "consultation"
    elsewhere = client.post(
        "/api/v1/orders", json={"channel": "grid", "content": "路灯不亮", "street_code": "W-JX"}, headers=headers
    )
    assert elsewhere.status_code == 201, elsewhere.text
    assert elsewhere.json()["street_id"] == world["other_street"] and elsewhere.json()["community_id"] is None


def test_an_inspector_settles_what_comes_back_to_their_unit_and_nothing_else(world) -> None:
    from cityhub.workorders.service import Actor

    inspector = Actor(name="邓网格", user_id=world["user"], unit_id=world["grid"], role=Role.INSPECTOR.value)
    with session_scope() as s:
        found = OrderCreate(channel="grid", content="楼道堆放杂物", community_code="W-JT-01")
        own = orders.create_order(s, data=found)[0]
        street = orders.create_order(s, data=OrderCreate(channel="grid", content="路面坑洼", street_code="W-JT"))[0]
        orders.act(s, order_id=own.id, action="dispatch", params={"unit_id": world["grid"]})
        orders.act(s, order_id=street.id, action="dispatch", params={"unit_id": world["street"]})
        orders.act(s, order_id=own.id, action="accept", actor=inspector)
        orders.act(s, order_id=own.id, action="reply", actor=inspector, params={"text": "已现场清理完毕。"})
        assert own.state.value == "replied"
        with pytest.raises(Exception, match="only the lead unit"):
            orders.act(s, order_id=street.id, action="accept", actor=inspector)


def test_an_inspector_reads_the_reports_of_their_own_grid_in_full(world) -> None:
    from fastapi.testclient import TestClient

    from app_helpers import shared_app

    client = TestClient(shared_app(), raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {world['token']}"}
    text = "住户王大明（13912345678）反映12栋3单元门口堆放建筑垃圾，多日无人清理"
    point = {"lat": 23.2012345, "lng": 113.3012345}
    made = client.post("/api/v1/orders", json={"channel": "grid", "content": text, **point}, headers=headers).json()
    # A phone's position where no boundaries are drawn places nothing: the report stays in their grid, at that point.
    assert made["community_id"] == world["grid"] and made["place_source"] == "order"
    # Their own words, unscrubbed, in the order and in the list — no unit leads the report yet.
    assert client.get(f"/api/v1/orders/{made['id']}", headers=headers).json()["content"] == text
    listed = client.get("/api/v1/orders", headers=headers).json()["items"]
    assert [o["content"] for o in listed if o["id"] == made["id"]] == [text]
    # And on the map: the title as they wrote it, at the exact point (others see a scrubbed title, coarsened).
    view = {"zoom": 17, "bbox": "113.29,23.19,113.31,23.21"}
    mapped = client.get("/api/v1/map/layers/orders", params=view, headers=headers).json()["features"]
    mine = [f for f in mapped if f["properties"]["id"] == made["id"]]
    assert [f["properties"]["title"] for f in mine] == [made["title"]] and "王大明" in made["title"]
    assert mine[0]["geometry"]["coordinates"] == [point["lng"], point["lat"]]
    # Another channel's order in the same grid stays masked to them until their unit leads it.
    with session_scope() as s:
        call = orders.create_order(
            s, data=OrderCreate(channel="hotline", content=text, community_code="W-JT-01", citizen_phone="13912345678")
        )[0]
        call_id = call.id
    seen = client.get(f"/api/v1/orders/{call_id}", headers=headers).json()
    assert seen["content"] != text and "13912345678" not in seen["content"]


def test_an_inspector_follows_a_report_placed_outside_their_grid_and_sent_elsewhere(world) -> None:
    """A report placed in another street (where the problem was) and dispatched to a unit the inspector's scope does
    not hold was lost to them: the page said it was out of their scope. Its registrant reads it — the page, the API,
    the list's 我提交的 (``mine``) — while their grid's figures and the other inspectors' lists stay as they were."""
    from fastapi.testclient import TestClient

    from app_helpers import shared_app

    client = TestClient(shared_app(), raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {world['token']}"}
    said = "住户王大明（13912345678）反映京溪路口路灯倒伏压住人行道"
    report = {"channel": "grid", "content": said, "street_code": "W-JX"}
    made = client.post("/api/v1/orders", json=report, headers=headers).json()
    assert made["street_id"] == world["other_street"]
    with session_scope() as s:
        assert s.get(Order, made["id"]).reported_by_id == world["user"]  # type: ignore[union-attr]
        orders.act(s, order_id=made["id"], action="dispatch", params={"unit_id": world["other_street"]})
        colleague = auth.create_account(
            s,
            data=UserCreate(username="grid2", full_name="林网格", role=Role.INSPECTOR, unit_id=world["grid"]),
            password=PASSWORD,
        )
        other_token = create_token(s, user_id=colleague.id, name="t")[1]

    single = client.get(f"/api/v1/orders/{made['id']}", headers=headers)
    assert single.status_code == 200 and single.json()["content"] == said  # as they wrote it, not scrubbed
    mine = client.get("/api/v1/orders", params={"mine": "true"}, headers=headers).json()["items"]
    assert [(o["id"], o["content"]) for o in mine] == [(made["id"], said)]
    # Their colleague of the same grid did not file it: out of their scope, as before.
    other = {"Authorization": f"Bearer {other_token}"}
    assert client.get(f"/api/v1/orders/{made['id']}", headers=other).status_code == 404
    assert client.get("/api/v1/orders", params={"mine": "true"}, headers=other).json()["items"] == []

    page = login("grid")
    assert page.get(f"/orders/{made['id']}").status_code == 200
    listed = page.get("/orders", params={"mine": "1"})
    assert f'href="/orders/{made["id"]}"' in listed.text and 'data-testid="filter-mine"' in listed.text
    assert 'href="/orders?mine=1"' in listed.text and "我提交的" in listed.text  # the quick view
    assert f'href="/orders/{made["id"]}"' not in login("grid2").get("/orders").text


def test_an_inspector_opens_the_links_between_their_own_reports_outside_their_grid(world) -> None:
    """Two reports of one problem in another street, the second merged into the first by that street's dispatcher:
    the page of the second links the first (its registrant may open it; it was shown unlinked, by the data scope),
    in the facts and the trail, and the API's similar cases name it as the master."""
    from fastapi.testclient import TestClient

    from app_helpers import shared_app

    client = TestClient(shared_app(), raise_server_exceptions=False)
    headers = {"Authorization": f"Bearer {world['token']}"}
    report = {"channel": "grid", "content": "京溪路口路灯倒伏压住人行道", "street_code": "W-JX"}
    first, second = (client.post("/api/v1/orders", json=report, headers=headers).json() for _ in range(2))
    with session_scope() as s:
        orders.act(s, order_id=second["id"], action="merge", params={"master_id": first["id"]})
        number = s.get(Order, first["id"]).number  # type: ignore[union-attr]

    page = login("grid").get(f"/orders/{second['id']}").text
    assert re.search(rf'data-testid="merge">已并入 <a href="/orders/{first["id"]}">{number}</a>', page), page
    step = re.search(r'<tr data-action="merge">.*?</tr>', page, flags=re.S)
    assert step and f'合并 → <a href="/orders/{first["id"]}">{number}</a>' in step.group(0)
    similar = client.get(f"/api/v1/orders/{second['id']}/similar", headers=headers).json()
    assert similar["master_id"] == first["id"], similar


def test_the_migration_fills_who_registered_the_orders_of_before(empty_db_url: str) -> None:
    """Migration 0051: an order a person's account made gets its registrant from the trail's create event; one the
    system made (an import, a sensor) gets none."""
    from alembic import command
    from sqlalchemy import update
    from sqlalchemy.orm import Session

    from cityhub import migrate
    from cityhub.db import make_engine
    from cityhub.workorders.service import Actor

    migrate.upgrade(empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        with Session(engine) as s:
            grid = Unit(code="M-GRID", name="云景社区", tier=UnitTier.COMMUNITY)
            s.add(grid)
            s.flush()
            user = auth.create_account(
                s, data=UserCreate(username="m-grid", full_name="邓网格", role=Role.INSPECTOR, unit_id=grid.id)
            )
            inspector = Actor(name="邓网格", user_id=user.id, unit_id=grid.id, role=Role.INSPECTOR.value)
            filed = orders.create_order(s, data=OrderCreate(channel="grid", content="井盖缺失"), actor=inspector)[0]
            system = orders.create_order(s, data=OrderCreate(channel="sensor", content="积水 31cm"))[0]
            ids, user_id = (filed.id, system.id), user.id
            s.execute(update(Order).values(reported_by_id=None))  # as the release before left them
            s.commit()
        engine.dispose()
        command.downgrade(migrate.alembic_config(empty_db_url), "0050_sensor_in_service_since")
        migrate.upgrade(empty_db_url)
        with Session(engine) as s:
            assert [s.get(Order, i).reported_by_id for i in ids] == [user_id, None]  # type: ignore[union-attr]
    finally:
        engine.dispose()
