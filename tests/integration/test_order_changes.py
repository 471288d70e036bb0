"""Polling the staff order list for changes (``GET /api/v1/orders?updated_since=…``, ``?cursor=*``, the feed of
changes of :mod:`cityhub.workorders.feeds`, shared with the data-sharing API) on both backends: every order changed
since a client's last poll, with the staff's data and within the caller's scope, none passed while the client pages.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from cityhub.auth.principal import Principal
from cityhub.auth.scope import search_clause
from cityhub.auth.service import create_token
from cityhub.db import session_factory, session_scope
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.workorders import feeds
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import Action
from cityhub.workorders.models import Channel, Order
from cityhub.workorders.schemas import OrderCreate, OrderFilter
from feed_helpers import check_late_commit_is_held_back
from sql_helpers import selects_naming

SHANGHAI = ZoneInfo("Asia/Shanghai")


class Staff:
    """The bearer headers of the callers of one test: the district's administrator (the client's own), a leader
    (who reads personal data masked), a department's handler, a citizen — and the department's id."""

    def __init__(self, client: TestClient) -> None:
        with session_scope() as s:
            district_id = s.scalars(select(User.unit_id).where(User.role == Role.ADMIN)).one()
            unit = Unit(code="CH-D01", name="城管局", tier=UnitTier.DEPARTMENT, parent_id=district_id)
            s.add(unit)
            s.flush()
            self.unit_id = unit.id
            people = {
                "leader": User(username="ch-leader", full_name="区领导", role=Role.LEADER, unit_id=district_id),
                "handler": User(username="ch-handler", full_name="承办人", role=Role.HANDLER, unit_id=unit.id),
                "citizen": User(username="ch-citizen", full_name="市民甲", role=Role.CITIZEN, phone="13900001111"),
            }
            s.add_all(people.values())
            s.flush()
            self.citizen_id = people["citizen"].id
            self.headers = {
                name: {"Authorization": f"Bearer {create_token(s, user_id=user.id, name='test')[1]}"}
                for name, user in people.items()
            }


@pytest.fixture
def client(admin_client: TestClient) -> Iterator[TestClient]:
    yield admin_client


def _received(s: Session, content: str, *, days_ago: int = 2, citizen_id: int | None = None) -> str:
    data = OrderCreate(
        channel=Channel.HOTLINE,
        content=content,
        citizen_name="王五",
        citizen_phone="13812345678",
        citizen_user_id=citizen_id,
        created_at=datetime.now(SHANGHAI) - timedelta(days=days_ago),
    )
    order, _ = orders.create_order(s, data=data)
    return order.number


def _act(s: Session, number: str, action: Action, **params: Any) -> None:
    order = orders.get_order_by_number(s, number=number)
    assert order is not None
    orders.act(s, order_id=order.id, action=action, params=params)


def _poll(
    client: TestClient, cursor: str, headers: dict[str, str] | None = None, **first: str
) -> tuple[list[dict[str, Any]], str]:
    """Page the order list's feed of changes from ``cursor`` to its end, two orders a page (``first``: parameters
    of the first call only): every item in order, and the cursor a client keeps for its next poll."""
    got: list[dict[str, Any]] = []
    params: dict[str, str | int] = {**first}
    while True:
        response = client.get("/api/v1/orders", params={**params, "cursor": cursor, "limit": 2}, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        got += page["items"]
        cursor = page["next_cursor"]
        assert isinstance(cursor, str)
        params = {}
        if not page["has_more"]:
            return got, cursor


def _states(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(item["number"], item["state"]) for item in items]


def test_updated_since_lists_the_orders_changed_since_as_the_list_reads_them(client: TestClient) -> None:
    """``updated_since`` narrows the order list (newest first, its other filters, paging and keys as before) to the
    orders stored or changed since, within the caller's scope; a time without a zone is refused naming it."""
    staff = Staff(client)
    with session_scope() as s:
        numbers = [_received(s, f"井盖缺失{i}", days_ago=3 + i) for i in range(3)]
    since = datetime.now(SHANGHAI).isoformat()
    with session_scope() as s:
        _act(s, numbers[0], Action.DISPATCH, unit_id=staff.unit_id)
        _act(s, numbers[2], Action.CANCEL, reason="重复")

    def listed(headers: dict[str, str] | None = None, **params: str) -> list[tuple[str, str]]:
        answer = client.get("/api/v1/orders", params={"updated_since": since, **params}, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["next_cursor"] is None  # paged by offset, as before
        return _states(answer.json()["items"])

    assert listed() == [(numbers[0], "dispatched"), (numbers[2], "cancelled")]  # newest received first
    assert listed(state="cancelled") == [(numbers[2], "cancelled")]
    assert listed(staff.headers["handler"]) == [(numbers[0], "dispatched")]  # the unit's own
    page = client.get("/api/v1/orders", params={"updated_since": since, "count": "true", "limit": 1}).json()
    assert (len(page["items"]), page["has_more"], page["total"]) == (1, True, 2)
    masked = client.get("/api/v1/orders", params={"updated_since": since}, headers=staff.headers["leader"]).json()
    assert {o["citizen_phone"] for o in masked["items"]} == {"138****5678"}
    assert len(client.get("/api/v1/orders").json()["items"]) == 3  # without it, every order
    naive = client.get("/api/v1/orders", params={"updated_since": "2026-03-01T00:00:00"})
    assert naive.status_code == 422 and naive.json()["details"]["field"] == "updated_since", naive.text


def test_the_feed_of_changes_hands_each_change_to_each_caller_within_their_scope(client: TestClient) -> None:
    """``cursor=*`` walks every order of the caller's scope once, then — from the kept cursor — exactly the orders
    changed since, as they are now and as the caller reads them (staff's full data, a leader's masked, a unit's own
    orders, a citizen's own appeals)."""
    staff = Staff(client)
    with session_scope() as s:
        first, second = (_received(s, f"路灯不亮{i}", days_ago=2 + i) for i in range(2))
        own = _received(s, "楼道堆物", days_ago=5, citizen_id=staff.citizen_id)
    everything, kept = _poll(client, "*")
    assert _states(everything) == [(first, "received"), (second, "received"), (own, "received")]  # as stored
    assert everything[0]["citizen_phone"] == "13812345678"  # the administrator reads the staff's data
    nothing, kept = _poll(client, kept)
    assert nothing == []  # nothing since
    _, leader_kept = _poll(client, "*", staff.headers["leader"], feed="changes")
    handled, handler_kept = _poll(client, "*", staff.headers["handler"])
    assert handled == []  # the department holds nothing yet
    mine, citizen_kept = _poll(client, "*", staff.headers["citizen"])
    assert _states(mine) == [(own, "received")]

    with session_scope() as s:
        _act(s, second, Action.DISPATCH, unit_id=staff.unit_id)
    with session_scope() as s:
        _act(s, own, Action.CANCEL, reason="市民撤诉")
    changed, kept = _poll(client, kept)
    assert _states(changed) == [(second, "dispatched"), (own, "cancelled")]  # in the order of the changes
    leader_changed, _ = _poll(client, leader_kept, staff.headers["leader"])
    assert _states(leader_changed) == _states(changed)
    assert {o["citizen_phone"] for o in leader_changed} == {"138****5678"}
    assert _states(_poll(client, handler_kept, staff.headers["handler"])[0]) == [(second, "dispatched")]
    assert _states(_poll(client, citizen_kept, staff.headers["citizen"])[0]) == [(own, "cancelled")]
    # With a filter: the changes of the orders it holds as they are now.
    cancelled, _ = _poll(client, "*", state="cancelled")
    assert _states(cancelled) == [(own, "cancelled")]
    # Every order once, by its last change; a cursor of the data-sharing API's feed of changes is a position in it.
    latest = [(first, "received"), (second, "dispatched"), (own, "cancelled")]
    assert _states(_poll(client, "*")[0]) == _states(_poll(client, feeds.encode_changes_cursor(0, 0))[0]) == latest


def test_an_order_changed_or_stored_while_a_client_pages_comes_after_the_pages_read(client: TestClient) -> None:
    """Offset pages shift when orders are stored or changed between two requests; the feed of changes does not: an
    order already handed out and changed again comes again at the end, one not yet handed out and changed comes once,
    at the end, a new one after them — nothing skipped, on either backend."""
    with session_scope() as s:
        numbers = [_received(s, f"噪音扰民{i}", days_ago=10 + i) for i in range(4)]
    page = client.get("/api/v1/orders", params={"cursor": "*", "limit": 2}).json()
    assert [o["number"] for o in page["items"]] == numbers[:2] and page["has_more"] is True
    with session_scope() as s:  # another transaction, between two pages
        _act(s, numbers[0], Action.CANCEL, reason="重复")
        _act(s, numbers[2], Action.CANCEL, reason="重复")
    with session_scope() as s:
        newest = _received(s, "新来的诉求", days_ago=30)
    rest, _ = _poll(client, page["next_cursor"])
    assert _states(rest) == [
        (numbers[3], "received"),
        (numbers[0], "cancelled"),
        (numbers[2], "cancelled"),
        (newest, "received"),
    ]


@pytest.mark.parametrize("change", ["store", "update"])
def test_the_feed_of_changes_never_passes_an_order_whose_transaction_commits_late(
    client: TestClient, db_backend: str, change: str
) -> None:
    """PostgreSQL: one transaction stores (or changes) an order and stays open while a second stores (changes)
    another and commits. By the time of the change (``updated_since``, or a list newest first) a client polling
    meanwhile sees the second and, once the first commits, has moved past its time; the order list's feed of changes
    holds both back while the first is open and hands both out once it commits."""
    if db_backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: no transaction commits while an earlier one is open")

    def poll(cursor: str) -> tuple[list[tuple[str, str]], str]:
        items, after = _poll(client, cursor)
        return _states(items), after

    check_late_commit_is_held_back(
        change=change,
        begin=lambda: poll("*"),
        poll=poll,
        received=lambda s, text, days: _received(s, text, days_ago=days),
    )


def test_a_poll_finding_none_of_the_callers_orders_moves_past_the_others_not_past_its_own_to_come(
    client: TestClient, db_backend: str
) -> None:
    """A unit's handler reads a few of the orders. Its last page's cursor moves past the changes of the others it
    passed over, so the next poll does not read them again (until December 2026 it stayed at the handler's own last
    order: every poll read every change of the others since) — but not past an order of its own that a transaction
    still open when it polled is changing: that comes once the transaction commits."""
    staff = Staff(client)
    handler = staff.headers["handler"]
    with session_scope() as s:
        mine = _received(s, "占道经营", days_ago=9)
        _act(s, mine, Action.DISPATCH, unit_id=staff.unit_id)
    with session_scope() as s:
        others = [_received(s, f"噪音扰民{i}", days_ago=3 + i) for i in range(3)]
    got, kept = _poll(client, "*", handler)
    assert _states(got) == [(mine, "dispatched")]
    with session_scope() as s:  # the others' changes: none of the handler's
        for number in others:
            _act(s, number, Action.CANCEL, reason="重复")
    nothing, moved = _poll(client, kept, handler)
    assert nothing == []
    _, changed_xid, after = feeds.decode_position(moved)
    with session_scope() as s:
        passed = s.execute(select(Order.changed_xid, Order.id).where(Order.number.in_(others))).all()
    assert all(tuple(p) < (changed_xid, after) for p in passed), (passed, changed_xid, after)

    early = session_factory()()
    try:
        _act(early, mine, Action.ACCEPT)
        early.flush()  # the handler's order changed by a transaction still open
        if db_backend != "sqlite":  # SQLite has one writer at a time
            with session_scope() as s:
                later = _received(s, "后开先提交", days_ago=1)
                _act(s, later, Action.DISPATCH, unit_id=staff.unit_id)
        held, moved = _poll(client, moved, handler)
        assert held == []  # held back, and the cursor answered does not pass it
        early.commit()
    finally:
        early.close()
    got, _ = _poll(client, moved, handler)
    expected = [(mine, "accepted")] if db_backend == "sqlite" else [(mine, "accepted"), (later, "dispatched")]
    assert sorted(_states(got)) == sorted(expected)


def test_what_the_feed_of_changes_cannot_be_combined_with_is_refused_naming_it(client: TestClient) -> None:
    with session_scope() as s:
        _received(s, "路灯不亮")
    by_id = feeds.encode_cursor(0)  # the data-sharing API's feed of new orders, which can pass an order
    for params, field in (
        ({"cursor": "*", "offset": 2}, "offset"),
        ({"cursor": "*", "sort": "oldest"}, "sort"),
        ({"cursor": "*", "sort": "newest"}, "sort"),
        ({"cursor": "*", "count": "true"}, "count"),
        ({"feed": "changes"}, "cursor"),
        ({"cursor": "bm9wZQ"}, "cursor"),
        ({"cursor": by_id}, "cursor"),
        ({"cursor": by_id, "feed": "changes"}, "feed"),
        ({"cursor": feeds.encode_changes_cursor(2**62, 1)}, "cursor"),  # ahead of every transaction (a restore)
        ({"cursor": "*", "updated_since": "2026-03-01T00:00:00"}, "updated_since"),
    ):
        answer = client.get("/api/v1/orders", params=params)
        assert answer.status_code == 422 and answer.json()["details"]["field"] == field, (params, answer.text)
    other_feed = client.get("/api/v1/orders", params={"cursor": "*", "feed": "new"})
    assert other_feed.status_code == 422
    assert [e["field"] for e in other_feed.json()["details"]["errors"]] == ["query.feed"]
    # Without a cursor the list answers as before: the same keys, next_cursor null.
    page = client.get("/api/v1/orders").json()
    assert set(page) == {"items", "limit", "offset", "has_more", "total", "next_cursor"}
    assert page["next_cursor"] is None and page["total"] is None


def test_a_client_sending_every_default_the_schema_declares_walks_the_feed(client: TestClient) -> None:
    """Swagger UI's "Try it out" (and generated clients) send each query parameter's declared default beside the
    ones filled in: the feed of changes must take them. Until December 2026 ``sort`` declared ``newest``, which a
    cursor refused (422 naming ``sort``), so ``cursor=*`` from ``/docs`` never worked."""
    with session_scope() as s:
        number = _received(s, "路灯不亮")
    parameters = client.get("/openapi.json").json()["paths"]["/api/v1/orders"]["get"]["parameters"]
    defaults = {p["name"]: p["schema"]["default"] for p in parameters if "default" in p["schema"]}
    sent = {name: str(value).lower() if isinstance(value, bool) else value for name, value in defaults.items()}
    answer = client.get("/api/v1/orders", params={**sent, "cursor": "*"})
    assert answer.status_code == 200, (sent, answer.text)
    assert _states(answer.json()["items"]) == [(number, "received")]
    # Without a cursor no sort is newest first, as before.
    with session_scope() as s:
        newer = _received(s, "井盖缺失", days_ago=1)
    assert [o["number"] for o in client.get("/api/v1/orders").json()["items"]] == [newer, number]


# --- how they are read -----------------------------------------------------------------------------------------


def _many_old_orders(session: Session, made: Order, batches: int = 1) -> None:
    """3,000 orders received and changed long ago beside ``made`` (in ``batches`` transactions: positions of the
    feed of changes), weighed by the planner."""
    row = {c.key: getattr(made, c.key) for c in Order.__table__.columns if c.key not in ("id", "changed_xid")}
    old = datetime(2024, 1, 1, tzinfo=SHANGHAI)
    for batch in range(batches):
        session.execute(
            insert(Order),
            [
                {**row, "number": f"T{batch}{n:06d}", "external_id": None, "created_at": old, "updated_at": old}
                for n in range(3000 // batches)
            ],
        )
        if batches > 1:
            session.commit()
    session.connection().execute(text("ANALYZE"))


def _plan(session: Session, backend: str, statement: str, parameters: Any) -> str:
    explain = "EXPLAIN QUERY PLAN" if backend == "sqlite" else "EXPLAIN"
    return " ".join(str(r[-1]) for r in session.connection().exec_driver_sql(f"{explain} {statement}", parameters))


def _handler(session: Session) -> Principal:
    unit = Unit(code="CH-PLAN", name="城管局", tier=UnitTier.DEPARTMENT)
    session.add(unit)
    session.flush()
    user = User(username="ch-plan", full_name="承办人", role=Role.HANDLER, unit_id=unit.id)
    session.add(user)
    session.flush()
    return Principal(
        user_id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=Role.HANDLER,
        unit_id=unit.id,
        unit_tier=UnitTier.DEPARTMENT,
        method="token",
        credential_id=0,
    )


@pytest.mark.parametrize("cursor", [None, "*"])  # the list newest first, and the feed of changes
def test_the_orders_changed_since_are_read_through_their_index(
    db_session: Session, db_backend: str, cursor: str | None
) -> None:
    """``updated_since`` on the order list: the few orders changed since a client's last poll among thousands are
    read through ``ix_orders_updated`` (at 200,000 orders, not a walk of the table), for a unit's handler too, on
    both backends."""
    made, _ = orders.create_order(db_session, data=OrderCreate(channel=Channel.HOTLINE, content="井盖缺失"))
    db_session.flush()
    _many_old_orders(db_session, made)
    principal = _handler(db_session)
    orders.act(db_session, order_id=made.id, action=Action.DISPATCH, params={"unit_id": principal.unit_id})
    db_session.commit()  # settled: the feed of changes hands out what committed
    since = datetime.now(SHANGHAI) - timedelta(hours=1)
    for scope in (None, search_clause(db_session, principal, None)):
        with selects_naming(db_session.get_bind(), "FROM orders") as statements:
            rows, has_more, _ = orders.search_order_rows(
                db_session,
                filters=OrderFilter(updated_since=since),
                columns=["id", "number", "changed_xid"],
                scope=scope,
                limit=20,
                position=None if cursor is None else feeds.decode_position(cursor, begins=feeds.CHANGES),
            )
        assert [r["number"] for r in rows] == [made.number] and has_more is False
        plan = _plan(db_session, db_backend, *statements[0])
        assert "ix_orders_updated" in plan, plan
    db_session.rollback()


@pytest.mark.parametrize("kept", [False, True])  # from the beginning (cursor=*), and from a kept cursor
def test_a_page_of_the_order_lists_feed_of_changes_is_read_through_its_index(
    db_session: Session, db_backend: str, kept: bool
) -> None:
    """A page of the order list's feed of changes is read in ``(changed_xid, id)`` order through
    ``ix_orders_changed`` from the cursor's position, not by sorting every order in the caller's scope."""
    made, _ = orders.create_order(db_session, data=OrderCreate(channel=Channel.HOTLINE, content="井盖缺失"))
    db_session.flush()
    _many_old_orders(db_session, made, batches=3)
    cursor = "*"
    if kept:
        changed_xid, order_id = db_session.execute(
            select(Order.changed_xid, Order.id).order_by(Order.changed_xid.desc(), Order.id.desc()).offset(20)
        ).first() or (0, 0)
        cursor = feeds.encode_changes_cursor(changed_xid, order_id)
    with selects_naming(db_session.get_bind(), "FROM orders") as statements:
        rows, has_more, _ = orders.search_order_rows(
            db_session,
            filters=OrderFilter(),
            columns=["id", "number", "changed_xid"],
            limit=20,
            position=feeds.decode_position(cursor, begins=feeds.CHANGES),
        )
    assert len(rows) == 20 and has_more is (not kept)
    if not kept:
        assert rows[0]["number"] == made.number  # stored first
    plan = _plan(db_session, db_backend, *statements[0])
    assert "ix_orders_changed" in plan and "TEMP B-TREE" not in plan and "Sort" not in plan, plan
    db_session.rollback()


def test_a_time_zone_whose_plus_a_query_string_made_a_space_is_refused_saying_so(client: TestClient) -> None:
    """``updated_since=2026-12-06T05:30:00+08:00`` typed into a URL as it is arrives as ``…05:30:00 08:00`` (a
    query string's ``+`` is a space): refused naming the parameter, and saying to send ``%2B`` — not only "unexpected
    extra characters at the end of the input" as before. Sent as ``%2B08:00`` it is taken."""
    for parameter in ("updated_since", "created_from"):
        answer = client.get(f"/api/v1/orders?{parameter}=2026-12-06T05:30:00+08:00")
        assert answer.status_code == 422, answer.text
        [error] = answer.json()["details"]["errors"]
        assert error["field"] == f"query.{parameter}" and "%2B08:00" in error["message"], error
        assert client.get(f"/api/v1/orders?{parameter}=2026-12-06T05:30:00%2B08:00").status_code == 200
    # A time written with a space for the T, as the parser takes it, is not mistaken for one.
    assert client.get("/api/v1/orders?updated_since=2026-12-06 05:30:00Z").status_code == 200
