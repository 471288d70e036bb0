"""Place aliases (地名别名), the district's address library, on both backends: orders naming an alias are placed at
intake, and no longer once it is removed; an alias of two units is ambiguous; the command line, the API and the
unit's page keep the library, each change in the configuration log; the place-orders job looks again at the orders
it could not place."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app_helpers import shared_app
from cityhub import auditlog, jobs
from cityhub.auth import passwords
from cityhub.auth.service import create_token
from cityhub.db import database_key, reset_engine, session_scope
from cityhub.errors import Conflict, NotFound, ValidationFailed
from cityhub.intake.bulk import write_orders
from cityhub.intake.service import submit
from cityhub.org import aliases
from cityhub.org.models import AliasKind, Role, Unit, UnitAlias, UnitTier, User
from cityhub.org.places import unit_gazetteer
from cityhub.workorders.models import AppealType, Order, OrderEvent, Urgency
from web_helpers import PASSWORD, login

API = "/api/v1"
# A made-up district: only the database's own gazetteer (with its library) places these names.
SQUARE = {
    "type": "Polygon",
    "coordinates": [[[113.0, 23.0], [113.1, 23.0], [113.1, 23.1], [113.0, 23.1], [113.0, 23.0]]],
}


def _units(session: Session) -> dict[str, int]:
    district = Unit(code="A-QU", name="青禾区", tier=UnitTier.DISTRICT)
    department = Unit(code="A-BM", name="青禾区城管局", tier=UnitTier.DEPARTMENT)
    session.add_all([district, department])
    session.flush()
    department.parent_id = district.id
    street = Unit(code="A-JD", name="稻香街道", tier=UnitTier.STREET, parent_id=district.id)
    other = Unit(code="A-JD2", name="麦田街道", tier=UnitTier.STREET, parent_id=district.id)
    session.add_all([street, other])
    session.flush()
    community = Unit(code="A-SQ", name="桂花社区居委会", tier=UnitTier.COMMUNITY, parent_id=street.id)
    far = Unit(code="A-SQ2", name="荷塘社区居委会", tier=UnitTier.COMMUNITY, parent_id=other.id, boundary=SQUARE)
    session.add_all([community, far])
    session.commit()
    return {u.code: u.id for u in (district, department, street, other, community, far)}


@pytest.fixture
def units(app_db: str) -> dict[str, int]:
    with session_scope() as s:
        return _units(s)


def _appeal(content: str, **extra: Any) -> Order:
    with session_scope() as s:
        order = submit(s, data={"channel": "hotline", "content": content, **extra}).order
        s.expunge(order)
        return order


def _log(target: str) -> list[tuple[str, str, dict[str, Any], str | None]]:
    with session_scope() as s:
        rows, _ = auditlog.entries(s, area="unit", target=target)
        return [(e.action, e.actor, e.changes, e.reason) for e in reversed(rows)]


def test_an_order_naming_only_an_alias_is_placed_at_intake_until_the_alias_is_removed(
    units: dict[str, int],
) -> None:
    before = _appeal("稻花大道88号门口的井盖松动了")
    assert (before.street_id, before.community_id, before.place_source) == (None, None, "none")
    with session_scope() as s:
        row = aliases.add_alias(s, alias="稻花大道", unit_code="A-JD", kind="road")
        assert (row.alias, row.kind, row.created_by) == ("稻花大道", "road", "system")
        landmark = aliases.add_alias(s, alias="桂 花 公 园", unit_code="A-SQ", kind="landmark")
        assert landmark.alias == "桂花公园"  # stored as the resolver matches names

    # A road with a house number places on its street; a community's landmark places on the community and street.
    by_text = _appeal("稻花大道88号门口的井盖松动了")
    assert (by_text.street_id, by_text.community_id, by_text.place_source) == (units["A-JD"], None, "text")
    by_address = _appeal("路灯坏了", address="桂花公園南门")  # traditional characters: normalised as names are
    assert (by_address.street_id, by_address.community_id, by_address.place_source) == (
        units["A-JD"],
        units["A-SQ"],
        "address",
    )
    # Coordinates still come before the address's alias.
    by_point = _appeal("路灯坏了", address="桂花公园", lat=23.05, lng=113.05)
    assert (by_point.community_id, by_point.place_source) == (units["A-SQ2"], "coordinates")
    # So does a unit given with the appeal.
    given = _appeal("稻花大道的路灯坏了", street_code="A-JD2")
    assert (given.street_id, given.place_source) == (units["A-JD2"], "order")

    with session_scope() as s:
        aliases.remove_alias(s, alias="稻花大道")
    after = _appeal("稻花大道88号门口的井盖松动了")
    assert (after.street_id, after.place_source) == (None, "none")
    with session_scope() as s:  # the order placed by the alias stays where it was
        kept = s.get(Order, by_text.id)
        assert kept is not None and kept.street_id == units["A-JD"]


def test_an_alias_of_two_units_only_when_the_administrator_says_so_and_then_ambiguous(units: dict[str, int]) -> None:
    with session_scope() as s:
        aliases.add_alias(s, alias="荷花市场", unit_code="A-SQ", kind="landmark")
    with session_scope() as s, pytest.raises(Conflict) as refused:
        aliases.add_alias(s, alias="荷花市场", unit_code="A-JD2")
    assert refused.value.message.startswith("alias 荷花市场 already names 桂花社区居委会 (A-SQ)")
    assert refused.value.details["field"] == "alias"
    with session_scope() as s, pytest.raises(Conflict, match=r"already names 麦田街道 \(A-JD2\)"):
        aliases.add_alias(s, alias="麦田街", unit_code="A-JD")  # another unit's own name
    with session_scope() as s:
        aliases.add_alias(s, alias="荷花市场", unit_code="A-JD2", also_ambiguous=True)
        loc = unit_gazetteer(s).resolve("荷花市场门口占道经营")  # type: ignore[union-attr]
        assert loc.ambiguous and {c.street_code for c in loc.candidates} == {"A-JD", "A-JD2"}
    order = _appeal("荷花市场门口占道经营")
    assert (order.street_id, order.community_id) == (None, None)  # the two readings share no street
    assert _log("A-JD2")[-1] == (
        "add_alias",
        "system",
        {"alias": [None, "荷花市场"], "kind": [None, "other"]},
        "also names 桂花社区居委会 (A-SQ)",
    )
    with session_scope() as s, pytest.raises(ValidationFailed, match="names 2 units"):
        aliases.remove_alias(s, alias="荷花市场")
    with session_scope() as s:
        aliases.remove_alias(s, alias="荷花市场", unit_code="A-JD2")
    assert _appeal("荷花市场门口占道经营").community_id == units["A-SQ"]


def test_what_an_alias_may_not_be(units: dict[str, int]) -> None:
    cases: list[tuple[dict[str, Any], type[Exception], str, str]] = [
        ({"alias": "青禾广场", "unit_code": "A-QU"}, ValidationFailed, "unit_code", "is a district"),
        ({"alias": "青禾广场", "unit_code": "A-BM"}, ValidationFailed, "unit_code", "is a department"),
        ({"alias": "青禾广场", "unit_code": "NOPE"}, NotFound, "unit_code", "no unit with code NOPE"),
        ({"alias": " 场 ", "unit_code": "A-JD"}, ValidationFailed, "alias", "too short"),
        ({"alias": "８８", "unit_code": "A-JD"}, ValidationFailed, "alias", "is a number"),
        ({"alias": "青禾广场", "unit_code": "A-JD", "kind": "hill"}, ValidationFailed, "kind", "unknown kind 'hill'"),
        ({"alias": "稻香街", "unit_code": "A-JD"}, Conflict, "alias", "already a name of 稻香街道"),
    ]
    for given, error, field, words in cases:
        with session_scope() as s, pytest.raises(error) as refused:
            aliases.add_alias(s, **given)
        assert refused.value.details.get("field") == field and words in refused.value.message, given  # type: ignore[attr-defined]
    with session_scope() as s:
        assert s.scalars(select(UnitAlias)).all() == []


def test_the_placing_job_looks_again_at_unplaceable_orders_once_an_alias_is_added(units: dict[str, int]) -> None:
    with session_scope() as s:
        base = {"title": "", "appeal_type": AppealType.COMPLAINT, "urgency": Urgency.NORMAL}
        [order_id] = write_orders(s, [{**base, "external_id": "al-1", "content": "荷叶桥下积水"}]).ids
    first = jobs.run_job("place-orders")
    assert (first["looked"], first["unplaced"]) == (1, 1)
    assert "looked_again" not in jobs.run_job("place-orders")
    with session_scope() as s:
        aliases.add_alias(s, alias="荷叶桥", unit_code="A-SQ2", kind="landmark")
    again = jobs.run_job("place-orders")
    assert (again["looked_again"], again["placed"]) == (1, 1)
    with session_scope() as s:
        order = s.get(Order, order_id)
        assert order is not None and (order.community_id, order.place_source) == (units["A-SQ2"], "text")


def test_the_process_keeps_one_gazetteer_the_aliases_taught_one_after_another_not_building_another(
    units: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    from cityhub import refdata
    from cityhub.org import places

    builds: list[bool] = []
    build = places._build_gazetteer

    def counted(*args: Any, **kwargs: Any) -> Any:
        builds.append(True)
        return build(*args, **kwargs)

    with session_scope() as s:  # a library there already
        aliases.add_alias(s, alias="桂花公园", unit_code="A-SQ")
    refdata.clear()  # a process starting
    monkeypatch.setattr(places, "_build_gazetteer", counted)
    with session_scope() as s:
        assert unit_gazetteer(s) is not None
    assert len(builds) == 1
    wishes = [aliases.AliasWish("稻花大道", "road"), aliases.AliasWish("麦田街"), aliases.AliasWish("稻穗广场")]
    with session_scope() as s:
        outcomes = aliases.add_from_order(s, order_number="T-1", unit_id=units["A-JD"], wishes=wishes)
    # The units' own names still refuse one (another street's), read from the one gazetteer, built no second time
    # for them nor again after each alias added.
    assert [(o.alias, o.added, o.reason) for o in outcomes] == [
        ("稻花大道", True, None),
        ("麦田街", False, "ambiguous"),
        ("稻穗广场", True, None),
    ]
    assert len(builds) == 1
    with session_scope() as s, pytest.raises(Conflict, match="already names 桂花社区居委会"):
        aliases.add_alias(s, alias="桂花公园", unit_code="A-JD")  # another unit's alias: the table, not the gazetteer
    assert len(builds) == 1
    with session_scope() as s:  # the library changed: the gazetteer is built again, once, and places by the aliases
        assert unit_gazetteer(s).resolve("稻穗广场旁边").street_code == "A-JD"  # type: ignore[union-attr]
        assert unit_gazetteer(s, own_names=True).units_named("稻穗广场", own=True) == {}  # type: ignore[union-attr]
        here = database_key(s)
        gazetteers = [name for db, name in refdata._values if db == here and "gazetteer" in name]
    assert len(builds) == 2 and gazetteers == ["org.gazetteer"]


def test_the_command_line_keeps_the_library_and_imports_the_good_rows(
    units: dict[str, int], tmp_path: Path, cli_run: Callable[..., tuple[int, str, str]]
) -> None:
    code, out, _ = cli_run("org", "aliases", "add", "稻花大道", "--unit", "A-JD", "--kind", "road")
    assert code == 0 and out.strip() == "added 稻花大道 → A-JD 稻香街道 (road)"
    code, _, err = cli_run("org", "aliases", "add", "稻花大道", "--unit", "A-JD2")
    assert code == 1
    assert err.strip().splitlines() == [
        "error: alias 稻花大道 already names 稻香街道 (A-JD): add it also_ambiguous (--also-ambiguous) to make it "
        "ambiguous between them"
    ]
    code, _, err = cli_run("org", "aliases", "add", "青禾广场", "--unit", "A-QU")
    assert code == 1 and err.startswith("error: unit A-QU is a district")

    table = tmp_path / "aliases.csv"
    table.write_text(
        "alias,unit_code,kind\n"
        "荷叶桥,A-SQ2,landmark\n"  # row 2: kept
        "荷叶桥,A-JD,landmark\n"  # row 3: names another unit
        "青禾广场,A-QU,landmark\n"  # row 4: a district
        "北门,NOPE,\n"  # row 5: no such unit
        "稻花大道,A-JD,road\n"  # row 6: there already: unchanged
        "桂花公园,A-SQ,park\n"  # row 7: unknown kind
        "桂花公园,A-SQ,\n",  # row 8: kept, kind other
        encoding="utf-8",
    )
    # A rejected row is the row's problem, as for every import (docs/operations.md): listed, the others kept, exit 0.
    code, out, err = cli_run("org", "aliases", "import", str(table))
    assert code == 0
    assert out.strip() == "rows 7: added 2, unchanged 1, rejected 4"
    lines = err.strip().splitlines()
    assert [line.split(":")[2].strip() for line in lines] == ["row 3", "row 4", "row 5", "row 7"]
    assert lines[0].startswith("rejected: aliases.csv: row 3: alias: alias 荷叶桥 already names 荷塘社区居委会")
    assert lines[1] == "rejected: aliases.csv: row 4: unit_code: unit A-QU is a district: aliases name streets and " + (
        "communities only"
    )
    assert lines[2] == "rejected: aliases.csv: row 5: unit_code: no unit with code NOPE"
    assert lines[3].startswith("rejected: aliases.csv: row 7: kind: unknown kind 'park'")
    all_bad = tmp_path / "bad.csv"
    all_bad.write_text("alias,unit_code\n北门,NOPE\n", encoding="utf-8")
    code, _, err = cli_run("org", "aliases", "import", str(all_bad))
    assert code == 1
    assert err.strip().splitlines()[-1] == "error: bad.csv: nothing imported: all 1 rows read were rejected"

    code, out, _ = cli_run("org", "aliases", "list")
    assert code == 0
    assert [line.split("\t")[:5] for line in out.splitlines()] == [
        ["桂花公园", "A-SQ", "桂花社区居委会", "other", "cli"],
        ["稻花大道", "A-JD", "稻香街道", "road", "cli"],
        ["荷叶桥", "A-SQ2", "荷塘社区居委会", "landmark", "cli"],
    ]
    code, out, _ = cli_run("org", "aliases", "list", "--unit", "A-SQ2")
    assert [line.split("\t")[0] for line in out.splitlines()] == ["荷叶桥"]

    code, out, _ = cli_run("org", "aliases", "remove", "荷叶桥")
    assert code == 0 and out.strip() == "removed 荷叶桥 → A-SQ2 荷塘社区居委会"
    code, _, err = cli_run("org", "aliases", "remove", "荷叶桥")
    assert (code, err.strip()) == (1, "error: no alias 荷叶桥")
    assert _log("A-SQ2") == [
        ("add_alias", "cli", {"alias": [None, "荷叶桥"], "kind": [None, "landmark"]}, None),
        ("remove_alias", "cli", {"alias": ["荷叶桥", None], "kind": ["landmark", None]}, None),
    ]


@dataclass
class Api:
    client: TestClient
    headers: dict[str, dict[str, str]]

    def call(self, method: str, path: str, who: str = "adm", **kw: Any) -> Any:
        return self.client.request(method, API + path, headers=self.headers[who], **kw)


@pytest.fixture
def api(units: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("CITYHUB_SESSION_COOKIE_SECURE", "false")  # the web test's client speaks plain http
    reset_engine()
    headers: dict[str, dict[str, str]] = {}
    with session_scope() as s:
        for name, role in (("adm", Role.ADMIN), ("dsp", Role.DISPATCHER)):
            user = User(
                username=f"al-{name}",
                full_name=f"{name}姓名",
                role=role,
                unit_id=units["A-QU"],
                password_hash=passwords.hash_password(PASSWORD),
            )
            s.add(user)
            s.flush()
            headers[name] = {"Authorization": f"Bearer {create_token(s, user_id=user.id, name='t')[1]}"}
    with TestClient(shared_app(), raise_server_exceptions=False) as client:
        yield Api(client, headers)


def test_the_api_lists_creates_and_deletes_a_units_aliases(api: Api, units: dict[str, int]) -> None:
    street, community = units["A-JD"], units["A-SQ"]
    made = api.call("POST", f"/units/{street}/aliases", json={"alias": "稻花大道", "kind": "road"})
    assert made.status_code == 201, made.text
    body = made.json()
    assert {k: body[k] for k in ("alias", "unit_id", "unit_code", "kind", "created_by")} == {
        "alias": "稻花大道",
        "unit_id": street,
        "unit_code": "A-JD",
        "kind": "road",
        "created_by": "adm姓名",
    }
    assert api.call("GET", f"/units/{street}/aliases", who="dsp").json()[0]["alias"] == "稻花大道"
    assert _appeal("稻花大道有个坑").street_id == street

    def refused(status: int, path: str, payload: dict[str, Any], field: str, words: str) -> None:
        answer = api.call("POST", path, json=payload)
        assert answer.status_code == status, answer.text
        error = answer.json()
        assert words in error["message"], error
        fields = {e["field"] for e in error["details"].get("errors", [])} or {error["details"].get("field")}
        assert field in fields, error

    refused(409, f"/units/{units['A-JD2']}/aliases", {"alias": "稻花大道"}, "alias", "already names 稻香街道")
    refused(422, f"/units/{units['A-QU']}/aliases", {"alias": "青禾广场"}, "unit_code", "is a district")
    refused(422, f"/units/{street}/aliases", {"alias": "场"}, "alias", "too short")
    refused(422, f"/units/{street}/aliases", {"alias": "稻花桥", "kind": "hill"}, "kind", "Input should be")
    refused(422, f"/units/{street}/aliases", {"kind": "road"}, "alias", "")
    assert api.call("POST", f"/units/{street}/aliases", who="dsp", json={"alias": "稻花桥"}).status_code == 403
    assert api.call("POST", "/units/999999/aliases", json={"alias": "稻花桥"}).status_code == 404

    alias_id = body["id"]
    assert api.call("DELETE", f"/units/{community}/aliases/{alias_id}").status_code == 404  # another unit's
    assert api.call("DELETE", f"/units/{street}/aliases/{alias_id}", who="dsp").status_code == 403
    assert api.call("DELETE", f"/units/{street}/aliases/{alias_id}").status_code == 204
    gone = api.call("DELETE", f"/units/{street}/aliases/{alias_id}")
    assert gone.status_code == 404 and gone.json()["message"] == f"place alias {alias_id} not found"
    assert api.call("GET", f"/units/{street}/aliases").json() == []
    assert [(a, actor) for a, actor, _, _ in _log("A-JD")] == [("add_alias", "adm姓名"), ("remove_alias", "adm姓名")]


def test_the_units_page_of_a_street_keeps_its_aliases(api: Api, units: dict[str, int]) -> None:
    street = units["A-JD"]
    admin = login("al-adm")
    assert "地名别名" not in admin.get(f"/admin/units/{units['A-QU']}").text  # a district keeps none
    page = admin.get(f"/admin/units/{street}")
    assert page.status_code == 200 and 'data-testid="unit-aliases"' in page.text and "暂无别名" in page.text

    def post(path: str, **data: str) -> Any:
        return admin.post(path, data={"csrf_token": admin.cookies["cityhub_csrf"], **data}, follow_redirects=False)

    made = post(f"/admin/units/{street}/aliases", alias="稻花大道", kind="road")
    assert made.status_code == 303, made.headers
    shown = admin.get(f"/admin/units/{street}").text
    assert 'data-alias="稻花大道"' in shown, shown
    assert "道路" in shown and "已添加别名 稻花大道" in shown, made.headers
    taken = post(f"/admin/units/{units['A-JD2']}/aliases", alias="稻花大道", kind="road")
    # The unit it names already, with its code in the page's own brackets (it read 稻香街道 (A-JD) inside Chinese).
    assert taken.status_code == 422 and "这个名称已指向稻香街道（A-JD）；" in taken.text
    assert "稻香街道 (A-JD)" not in taken.text
    assert 'value="稻花大道"' in taken.text  # the form keeps what was typed
    short = post(f"/admin/units/{street}/aliases", alias="桥", kind="landmark")
    assert short.status_code == 422 and "别名至少 2 个字" in short.text
    with session_scope() as s:
        alias_id = s.scalars(select(UnitAlias.id)).one()
    assert post(f"/admin/units/{units['A-JD2']}/aliases/{alias_id}/delete").status_code == 404
    assert post(f"/admin/units/{street}/aliases/{alias_id}/delete").status_code == 303
    assert "暂无别名" in admin.get(f"/admin/units/{street}").text
    assert [a for a, *_ in _log("A-JD")] == ["add_alias", "remove_alias"]
    # One the product added itself (an import, the demo) says who in the reader's words: 系统, not system.
    with session_scope() as s:
        aliases.add_alias(s, alias="稻香公园", unit_id=street, kind="landmark")
    row = admin.get(f"/admin/units/{street}").text.split('data-alias="稻香公园"')[1].split("</tr>")[0]
    assert "<td>系统 · " in row and "system" not in row
    dispatcher = login("al-dsp")
    refused = dispatcher.post(
        f"/admin/units/{street}/aliases",
        data={"csrf_token": dispatcher.cookies["cityhub_csrf"], "alias": "稻花桥", "kind": "road"},
        follow_redirects=False,
    )
    assert refused.status_code == 403


def test_the_demo_district_gets_a_few_aliases_once(app_db: str) -> None:
    from cityhub.demo.service import seed_reference_data

    with session_scope() as s:
        seed_reference_data(s)
    with session_scope() as s:
        seed_reference_data(s)  # again: nothing added twice
        rows = [(a.alias, a.unit.code, a.kind) for a in aliases.list_aliases(s)]
        assert rows == [("三元古庙", "440111002", "landmark"), ("金沙洲", "440111015", "landmark")]
        ids = dict(s.execute(select(Unit.code, Unit.id).where(Unit.code.in_(["440111002", "440111015"]))).all())
    assert _appeal("三元古庙门口垃圾没人清").street_id == ids["440111002"]
    assert _appeal("金沙洲那边的公交站台坏了").street_id == ids["440111015"]


# --- taught by a dispatcher correcting an order's place ----------------------------------------------------------


def _street_dispatcher(unit_id: int) -> dict[str, str]:
    with session_scope() as s:
        user = User(
            username="al-sdsp",
            full_name="街道派单",
            role=Role.DISPATCHER,
            unit_id=unit_id,
            password_hash=passwords.hash_password(PASSWORD),
        )
        s.add(user)
        s.flush()
        return {"Authorization": f"Bearer {create_token(s, user_id=user.id, name='t')[1]}"}


def _place_of(order_id: int) -> tuple[int | None, int | None, str | None]:
    with session_scope() as s:
        order = s.get(Order, order_id)
        assert order is not None
        return order.street_id, order.community_id, order.place_source


def test_a_dispatcher_keeps_the_road_an_unplaced_order_names_as_an_alias_of_the_street_chosen(
    api: Api, units: dict[str, int]
) -> None:
    from cityhub.dispatch import service as dispatch

    order = _appeal("稻花大道88号门口的井盖松动了，A市桂花社区那边也有")
    assert _place_of(order.id) == (None, None, "none")  # a community of another city's
    with session_scope() as s:  # offered: the road the gazetteer does not know; not 桂花社区, a community's own name
        offered = dispatch.alias_candidates(s, s.get(Order, order.id))  # type: ignore[arg-type]
        assert offered == [aliases.AliasCandidate("稻花大道", AliasKind.ROAD)]

    asked = [{"alias": "稻花大道", "kind": "road"}, {"alias": "麦田街", "kind": "road"}, {"alias": "桥"}]
    done = api.call("POST", f"/dispatch/{order.id}/place", who="dsp", json={"unit_id": units["A-JD"], "aliases": asked})

    assert done.status_code == 200, done.text
    body = done.json()
    assert body["place"] == {"street_id": units["A-JD"], "community_id": None, "source": "dispatcher"}
    assert [(a["alias"], a["kind"], a["added"], a["reason"], a["units"]) for a in body["aliases"]] == [
        ("稻花大道", "road", True, None, []),
        ("麦田街", "road", False, "ambiguous", ["麦田街道 (A-JD2)"]),  # another street's name: refused, with why
        ("桥", "", False, "short", []),
    ]
    assert "already names 麦田街道 (A-JD2)" in body["aliases"][1]["message"]
    assert _place_of(order.id) == (units["A-JD"], None, "dispatcher")  # the correction kept, refusals aside
    # The configuration log names the dispatcher and the order the alias came from.
    assert _log("A-JD") == [
        (
            "add_alias",
            "dsp姓名",
            {"alias": [None, "稻花大道"], "kind": [None, "road"], "source_order": [None, order.number]},
            None,
        )
    ]
    assert _log("A-JD2") == []
    log_page = login("al-adm").get("/admin/log").text  # 系统日志 says where it came from in words
    assert f'<span title="source_order">来源工单</span>：{order.number}</div>' in log_page
    assert '<span title="kind">类型</span>：道路</div>' in log_page
    # The next appeal naming the road is placed at intake on that street.
    later = _appeal("稻花大道12号的路灯不亮")
    assert _place_of(later.id) == (units["A-JD"], None, "text")
    with session_scope() as s:  # and the road is offered no more
        assert dispatch.alias_candidates(s, s.get(Order, later.id)) == []  # type: ignore[arg-type]

    # A correction asking for no alias answers an empty list; a handler corrects nothing.
    plain = api.call("POST", f"/dispatch/{order.id}/place", who="dsp", json={"unit_id": units["A-SQ"]})
    assert plain.status_code == 200 and plain.json()["aliases"] == []
    assert (
        api.call(
            "POST", f"/dispatch/{order.id}/place", who="dsp", json={"unit_id": 1, "aliases": asked * 7}
        ).status_code
        == 422
    )


def test_a_street_dispatcher_adds_aliases_only_to_the_units_its_street_routes(api: Api, units: dict[str, int]) -> None:
    headers = _street_dispatcher(units["A-JD2"])  # 麦田街道's dispatcher
    order = _appeal("荷塘社区荷叶桥下面堆了很多垃圾")
    assert _place_of(order.id) == (units["A-JD2"], units["A-SQ2"], "text")

    def correct(unit: str, *wished: str) -> Any:
        body = {"unit_id": units[unit], "aliases": [{"alias": a, "kind": "landmark"} for a in wished]}
        return api.client.post(f"{API}/dispatch/{order.id}/place", json=body, headers=headers)

    # Another street's unit: refused whole, naming it, nothing changed.
    for other in ("A-JD", "A-SQ"):
        refused = correct(other, "荷叶桥")
        assert refused.status_code == 403, refused.text
        error = refused.json()
        name = {"A-JD": "稻香街道 (A-JD)", "A-SQ": "桂花社区居委会 (A-SQ)"}[other]
        assert error["message"].startswith(f"{name} is not among the units you route"), error
        assert (error["details"]["reason"], error["details"]["unit"]) == ("scope", name)
    # So on the order page: the page again, saying why and what to do.
    page = login("al-sdsp")
    form = {"csrf_token": page.cookies["cityhub_csrf"], "unit_id": str(units["A-JD"]), "alias_0": "荷叶桥"}
    shown = page.post(f"/orders/{order.id}/place", data=form, follow_redirects=False)
    assert shown.status_code == 403
    assert "稻香街道 (A-JD)不在本单位的派单范围内，不能为它添加地名别名；地点未更正。" in shown.text
    assert _place_of(order.id) == (units["A-JD2"], units["A-SQ2"], "text")
    with session_scope() as s:
        assert aliases.list_aliases(s) == []

    # Its own community — the place the order has already: confirmed, not changed — teaches the alias all the same,
    # the community's (and so naming its street too).
    mine = correct("A-SQ2", "荷叶桥")
    assert mine.status_code == 200, mine.text
    assert [(a["alias"], a["added"]) for a in mine.json()["aliases"]] == [("荷叶桥", True)]
    assert _place_of(order.id) == (units["A-JD2"], units["A-SQ2"], "text")
    assert [(a, who, c["source_order"]) for a, who, c, _ in _log("A-SQ2")] == [
        ("add_alias", "街道派单", [None, order.number])
    ]
    assert _place_of(_appeal("荷叶桥边上的路灯坏了").id) == (units["A-JD2"], units["A-SQ2"], "text")
    # Moving the order to another street without teaching anything is still its to do.
    assert correct("A-JD").status_code == 200
    assert _place_of(order.id) == (units["A-JD"], None, "dispatcher")


def _trail(order_id: int) -> list[tuple[str, str | None, dict[str, Any] | None, str | None]]:
    with session_scope() as s:
        return [
            (e.action, e.actor_name, e.payload, e.reason)
            for e in s.scalars(select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id))
        ]


def _version(order_id: int) -> tuple[int, str]:
    with session_scope() as s:
        order = s.get(Order, order_id)
        assert order is not None
        return order.version, order.state.value


def test_an_alias_taught_from_an_order_is_in_its_trail_the_place_it_had_confirmed_not_changed(
    api: Api, units: dict[str, int]
) -> None:
    order = _appeal("荷塘社区荷叶桥下面堆了很多垃圾，荷花码头也是")
    assert _place_of(order.id) == (units["A-JD2"], units["A-SQ2"], "text")
    before = _version(order.id)
    events = len(_trail(order.id))

    # The place the order has already, over the API, an alias taught: the trail says so; nothing else changed.
    asked = [{"alias": "荷叶桥", "kind": "landmark"}, {"alias": "麦田街"}]
    done = api.call(
        "POST",
        f"/dispatch/{order.id}/place",
        who="dsp",
        json={"unit_id": units["A-SQ2"], "aliases": asked, "reason": "核实属实"},
    )
    assert done.status_code == 200, done.text
    assert [(a["alias"], a["added"]) for a in done.json()["aliases"]] == [("荷叶桥", True), ("麦田街", False)]
    assert _place_of(order.id) == (units["A-JD2"], units["A-SQ2"], "text")  # not made the dispatcher's
    assert _version(order.id) == before
    trail = _trail(order.id)
    assert trail[events:] == [
        (
            "comment",
            "dsp姓名",
            {
                "text": "place confirmed as 荷塘社区居委会; place aliases of 荷塘社区居委会 taught: 荷叶桥",
                "aliases": ["荷叶桥"],
            },
            "核实属实",
        )
    ]
    # Asking again for what is there already teaches nothing, and the trail says nothing more: nothing happened.
    again = api.call(
        "POST", f"/dispatch/{order.id}/place", who="dsp", json={"unit_id": units["A-SQ2"], "aliases": asked[:1]}
    )
    assert again.status_code == 200 and again.json()["aliases"][0]["added"] is False
    assert len(_trail(order.id)) == len(trail)

    # On the order page: the same, from the web form, read in the user's language.
    page = login("al-dsp")
    form = {
        "csrf_token": page.cookies["cityhub_csrf"],
        "unit_id": str(units["A-SQ2"]),
        "alias_0": "荷花码头",
        "alias_kind_0": "landmark",
    }
    confirmed = page.post(f"/orders/{order.id}/place", data=form, follow_redirects=True)
    assert confirmed.status_code == 200 and _version(order.id) == before
    # …and the page's message says the place was confirmed, not set (it was the order's already).
    assert "地点确认为 荷塘社区居委会：工单原已在此，未作更改。已记为地名别名：荷花码头。" in confirmed.text
    assert _trail(order.id)[-1][2] == {
        "text": "place confirmed as 荷塘社区居委会; place aliases of 荷塘社区居委会 taught: 荷花码头",
        "aliases": ["荷花码头"],
    }
    shown = page.get(f"/orders/{order.id}").text
    assert "属地确认为 荷塘社区居委会；记为荷塘社区居委会的地名别名：荷花码头" in shown
    assert "记为荷塘社区居委会的地名别名：荷叶桥" in shown

    # A correction that moves the order has its own event; the aliases it taught follow it in the trail.
    events = len(_trail(order.id))
    moved = api.call(
        "POST",
        f"/dispatch/{order.id}/place",
        who="dsp",
        json={"unit_id": units["A-JD"], "aliases": [{"alias": "稻花大道", "kind": "road"}]},
    )
    assert moved.status_code == 200, moved.text
    assert [(action, (payload or {}).get("text")) for action, _, payload, _ in _trail(order.id)[events:]] == [
        ("comment", "place set to 稻香街道 (street only)"),
        ("comment", "place aliases of 稻香街道 taught: 稻花大道"),
    ]
    assert "属地更正为 稻香街道（仅街道）" in page.get(f"/orders/{order.id}").text
    # A correction that moves the order from the page says the place was set.
    form = {"csrf_token": page.cookies["cityhub_csrf"], "unit_id": str(units["A-JD2"])}
    moved_here = page.post(f"/orders/{order.id}/place", data=form, follow_redirects=True)
    assert "地点已设为 麦田街道，推荐已更新。" in moved_here.text and "地点确认为" not in moved_here.text


def test_a_bridge_a_station_or_a_pier_the_order_names_is_offered_as_an_alias(units: dict[str, int]) -> None:
    from cityhub.dispatch import service as dispatch

    text = "金沙洲大桥底堆满了垃圾，地铁客村站出口和白鹅潭码头也有，物业扬言要退出小区"
    order = _appeal(text, address="区庄立交下面")
    with session_scope() as s:
        offered = dispatch.alias_candidates(s, s.get(Order, order.id))  # type: ignore[arg-type]
    assert offered == [
        aliases.AliasCandidate("区庄立交", AliasKind.LANDMARK),
        aliases.AliasCandidate("金沙洲大桥", AliasKind.LANDMARK),
        aliases.AliasCandidate("客村站", AliasKind.LANDMARK),
        aliases.AliasCandidate("白鹅潭码头", AliasKind.LANDMARK),
    ]
