"""Places (``/api/v1/places``) over the real app on both backends: where a point lies among the database's units
(street and community by their boundaries, none outside them), the outlines a small map draws it on, for every
signed-in role and no one else, and a latitude or longitude refused by name.

The world: 白云区 (code 440111, no boundary of its own: the packaged DataV outline), 景泰街道 with a boundary and its
community 飞鹅社区 with one inside it, 京溪街道 without one; a citizen, a grid inspector of 飞鹅 and a handler.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app_helpers import shared_app
from cityhub.auth.service import create_token
from cityhub.db import reset_engine, session_scope
from cityhub.onemap import service
from cityhub.org.models import Role, Unit, UnitTier, User
from web_helpers import square

JINGTAI = square(113.26, 23.16, 113.30, 23.20)
FEIE = square(113.27, 23.17, 113.29, 23.19)
IN_FEIE = (23.18, 113.28)
IN_JINGTAI_ONLY = (23.195, 113.265)
NOWHERE = (23.40, 113.50)


@pytest.fixture
def world(app_db: str) -> dict[str, Any]:
    reset_engine()
    service.clear_caches()
    with session_scope() as s:
        district = Unit(code="440111", name="白云区", tier=UnitTier.DISTRICT)
        s.add(district)
        s.flush()
        jt = Unit(code="440111004", name="景泰街道", tier=UnitTier.STREET, parent_id=district.id, boundary=JINGTAI)
        jx = Unit(code="440111010", name="京溪街道", tier=UnitTier.STREET, parent_id=district.id)
        s.add_all([jt, jx])
        s.flush()
        feie = Unit(code="440111004001", name="飞鹅社区", tier=UnitTier.COMMUNITY, parent_id=jt.id, boundary=FEIE)
        s.add(feie)
        s.flush()
        heads = {}
        for username, role, unit in (
            ("p-cit", Role.CITIZEN, None),
            ("p-grid", Role.INSPECTOR, feie.id),
            ("p-hand", Role.HANDLER, jt.id),
        ):
            user = User(username=username, full_name=username, role=role, unit_id=unit)
            s.add(user)
            s.flush()
            heads[username] = {"Authorization": f"Bearer {create_token(s, user_id=user.id, name='t')[1]}"}
        return {"heads": heads, "jt": jt.id, "feie": feie.id, "jx": jx.id}


@pytest.fixture
def client() -> TestClient:
    return TestClient(shared_app(), raise_server_exceptions=False)


def _at(client: TestClient, head: dict[str, str], point: tuple[float, float]) -> dict[str, Any]:
    response = client.get("/api/v1/places/at", params={"lat": point[0], "lng": point[1]}, headers=head)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_point_is_placed_in_the_street_and_community_whose_boundaries_hold_it(world, client) -> None:
    for who in ("p-cit", "p-grid", "p-hand"):  # whoever files or reads an appeal
        inside = _at(client, world["heads"][who], IN_FEIE)
        assert inside["placed"] is True
        street = {"id": world["jt"], "code": "440111004", "name": "景泰街道", "name_shown": "景泰街道"}
        assert inside["street"] == street
        community = {"id": world["feie"], "code": "440111004001", "name": "飞鹅社区", "name_shown": "飞鹅社区"}
        assert inside["community"] == community
    street_only = _at(client, world["heads"]["p-cit"], IN_JINGTAI_ONLY)
    assert street_only["placed"] is True and street_only["street"]["name"] == "景泰街道"
    assert street_only["community"] is None
    # On an English page (the intake map's line says where the point is) the names an English reader reads: the
    # Chinese ones it said were no help — romanised where no English name is set; ``name`` stays the record's.
    english = client.get(
        "/api/v1/places/at",
        params={"lat": IN_FEIE[0], "lng": IN_FEIE[1]},
        headers=world["heads"]["p-cit"],
        cookies={"cityhub_lang": "en"},
    ).json()
    assert english["street"]["name"] == "景泰街道" and english["street"]["name_shown"] == "Jingtai Subdistrict"
    assert english["community"]["name_shown"] == "Fei'e Community"
    # A point no unit's boundary holds is in no unit: said plainly, not guessed from the nearest one.
    outside = _at(client, world["heads"]["p-grid"], NOWHERE)
    assert outside == {"lat": NOWHERE[0], "lng": NOWHERE[1], "placed": False, "street": None, "community": None}


def test_only_a_signed_in_caller_asks_where_a_point_is(world, client) -> None:
    assert client.get("/api/v1/places/at", params={"lat": 23.18, "lng": 113.28}).status_code == 401
    assert client.get("/api/v1/places/boundaries").status_code == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"lat": "91", "lng": "113.28"}, "lat"),
        ({"lat": "-90.5", "lng": "113.28"}, "lat"),
        ({"lat": "23.18", "lng": "181"}, "lng"),
        ({"lat": "北纬23度", "lng": "113.28"}, "lat"),
        ({"lat": "nan", "lng": "113.28"}, "lat"),
        ({"lat": "23.18", "lng": "inf"}, "lng"),
        ({"lat": "23.18"}, "lng"),
        ({"lng": "113.28"}, "lat"),
        ({"lat": "", "lng": "113.28"}, "lat"),
    ],
)
def test_a_bad_latitude_or_longitude_is_refused_by_name(world, client, params, field) -> None:
    response = client.get("/api/v1/places/at", params=params, headers=world["heads"]["p-cit"])
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["code"] == "validation_failed"
    assert body["message"].startswith(f"invalid request: query.{field}: "), body["message"]
    assert [e["field"] for e in body["details"]["errors"]] == [f"query.{field}"], body


def test_the_outlines_are_the_units_boundaries_without_any_count(world, client) -> None:
    response = client.get("/api/v1/places/boundaries", headers=world["heads"]["p-cit"])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/geo+json")
    features = {f["properties"]["name"]: f for f in response.json()["features"]}
    # The district's packaged outline, the two units with a boundary; 京溪 has none and stands nowhere on it.
    assert set(features) == {"白云区", "景泰街道", "飞鹅社区"}
    assert features["白云区"]["properties"]["tier"] == "district"
    assert features["白云区"]["geometry"]["type"] == "MultiPolygon"
    assert features["景泰街道"]["geometry"] == JINGTAI and features["景泰街道"]["properties"]["tier"] == "street"
    assert features["飞鹅社区"]["geometry"] == FEIE and features["飞鹅社区"]["properties"]["tier"] == "community"
    assert not {"open", "overdue", "today", "link"} & set(features["景泰街道"]["properties"])
    # A boundary drawn later is on the next answer (the process's copy follows the units table).
    with session_scope() as s:
        s.execute(update(Unit).where(Unit.id == world["jx"]).values(boundary=square(113.31, 23.16, 113.35, 23.20)))
    again = client.get("/api/v1/places/boundaries", headers=world["heads"]["p-hand"]).json()
    assert "京溪街道" in {f["properties"]["name"] for f in again["features"]}
