"""The cursor feeds of orders: one mechanism for every API that hands orders to another system page by page — the
data-sharing API's anonymised orders (``GET /api/v1/sharing/orders``,
:func:`cityhub.sharing.service.anonymised_orders`) and the staff order list (``GET /api/v1/orders``, within the
caller's scope, :func:`cityhub.workorders.service.search_order_rows`).

A cursor is opaque to clients (URL-safe base64 of a versioned text) and says which feed it walks:

* the feed of changes (``c1.<changed_xid>.<id>``): every order after each transaction that stored or changed it, in
  the order of those transactions, once the transaction has settled (:mod:`cityhub.workorders.changes`): an order
  stored or changed by a transaction still open — or that committed while one below it is still open — waits for a
  later page, and is never passed. Read through ``ix_orders_changed``.
* the feed of new orders (``o1.<id>``): every order once by its id, which only grows (the data-sharing API's oldest
  feed; on PostgreSQL an order whose transaction commits after a later order's may be passed).

``*`` begins a feed. ``updated_since`` (:func:`changed_since`) keeps the orders whose ``updated_at`` is at or after a
time, read through ``ix_orders_updated``.
"""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import TypeVarTuple

from sqlalchemy import BigInteger, ColumnElement, Select, literal, tuple_
from sqlalchemy.orm import Session

from cityhub.errors import ValidationFailed
from cityhub.workorders import changes
from cityhub.workorders.models import Order

CURSOR_START = "*"
NEW, CHANGES = "new", "changes"
# The two feeds a cursor walks: ``new`` every order once by its id, ``changes`` every order after each insert or
# update whose transaction has settled (cityhub.workorders.changes).
FEEDS = (NEW, CHANGES)
_CURSOR_FORM = re.compile(r"o1\.([0-9]{1,18})")
_CHANGES_CURSOR_FORM = re.compile(r"c1\.([0-9]{1,19})\.([0-9]{1,18})")
_BIGINT_MAX = 2**63 - 1
_PAST_EVERY_ID = 10**18 - 1  # an order id no order reaches, the most a cursor holds: after every order of a change
Ts = TypeVarTuple("Ts")

# A position in a feed: (feed, changed_xid, order_id); the feed of new orders' changed_xid is 0.
Position = tuple[str, int, int]


def encode_cursor(order_id: int) -> str:
    """The opaque cursor of the feed of new orders' position just after the order ``order_id``."""
    return base64.urlsafe_b64encode(f"o1.{order_id}".encode()).decode().rstrip("=")


def encode_changes_cursor(changed_xid: int, order_id: int) -> str:
    """The opaque cursor of the feed of changes' position just after the order ``order_id`` as the transaction
    ``changed_xid`` left it."""
    return base64.urlsafe_b64encode(f"c1.{changed_xid}.{order_id}".encode()).decode().rstrip("=")


def _cursor_text(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return ""


def _not_a_cursor(cursor: str) -> ValidationFailed:
    return ValidationFailed(
        f"cursor {cursor[:40]!r} is not a cursor this API gave (start a feed with cursor={CURSOR_START})",
        details={"field": "cursor"},
    )


def decode_cursor(cursor: str) -> int:
    """The order id a cursor of the feed of new orders stands after (0 for ``*``, the feed's beginning);
    ValidationFailed naming ``cursor`` for a value no answer gave."""
    if cursor == CURSOR_START:
        return 0
    match = _CURSOR_FORM.fullmatch(_cursor_text(cursor))
    if match is None:
        raise _not_a_cursor(cursor)
    return int(match.group(1))


def decode_position(cursor: str, feed: str | None = None, *, begins: str = NEW) -> Position:
    """The feed a cursor walks and its position in it, ``(feed, changed_xid, order_id)`` (the feed of new orders'
    ``changed_xid`` is 0). ``*`` begins ``feed`` (default ``begins``); another cursor says its own feed, and ``feed``,
    when given, must be it (ValidationFailed naming ``feed``); a value no answer gave is refused naming ``cursor``."""
    if feed is not None and feed not in FEEDS:
        raise ValidationFailed(f"unknown feed {feed!r} (known: {', '.join(FEEDS)})", details={"field": "feed"})
    if cursor == CURSOR_START:
        return feed or begins, 0, 0
    text = _cursor_text(cursor)
    match = _CHANGES_CURSOR_FORM.fullmatch(text)
    if match is not None:
        if feed == NEW:
            raise ValidationFailed(
                f"cursor {cursor[:40]!r} is a position in the feed of changes, not of new orders: send it with "
                "feed=changes or without feed",
                details={"field": "feed"},
            )
        changed_xid, order_id = int(match.group(1)), int(match.group(2))
        if changed_xid > _BIGINT_MAX:
            raise _not_a_cursor(cursor)
        return CHANGES, changed_xid, order_id
    after = decode_cursor(cursor)
    if feed == CHANGES:
        raise ValidationFailed(
            f"cursor {cursor[:40]!r} is a position in the feed of new orders, not of changes: the feed of changes "
            f"begins with cursor={CURSOR_START}&feed=changes",
            details={"field": "feed"},
        )
    return NEW, 0, after


def position_of(cursor: str | None, feed: str | None, *, offset: int = 0, begins: str = NEW) -> Position | None:
    """The position a request's ``cursor`` (and ``feed``) asks for, None for a request paged by offset (no cursor).
    ValidationFailed naming ``cursor`` for ``feed`` without a cursor, ``offset`` for an offset with one."""
    if cursor is None:
        if feed is not None:
            raise ValidationFailed(
                f"feed={feed} pages by cursor: begin it with cursor={CURSOR_START}", details={"field": "cursor"}
            )
        return None
    if offset:
        raise ValidationFailed("offset cannot be combined with cursor", details={"field": "offset"})
    return decode_position(cursor, feed, begins=begins)


def check_updated_since(updated_since: datetime | None) -> None:
    """``updated_since`` must say its time zone (ValidationFailed naming it)."""
    if updated_since is not None and updated_since.tzinfo is None:
        raise ValidationFailed(
            "updated_since must carry a time zone (e.g. +08:00 or Z)", details={"field": "updated_since"}
        )


def changed_since(updated_since: datetime) -> ColumnElement[bool]:
    """The orders stored or changed at or after ``updated_since`` (``updated_at``: every life-cycle step, amendment
    and time-limit mark moves it; an imported order's is its reception time) — a condition ``ix_orders_updated``
    answers."""
    return Order.updated_at >= updated_since


def walk(query: Select[*Ts], session: Session, position: Position, *, by_updated: bool = False) -> Select[*Ts]:
    """``query`` (of orders) narrowed to the orders after ``position`` in its feed and sorted in the feed's order.

    ``by_updated``: the query keeps only the orders changed since a time (:func:`changed_since`) — a few among all,
    read through ``ix_orders_updated`` and then sorted. By the feed's key SQLite, which cannot tell how few (no
    histogram), walked every order from the cursor on in its key's order; ``column + 0`` is the same number in the
    same order, but no key's."""
    feed, changed_xid, after = position
    by_id = Order.id + 0 if by_updated else Order.id
    if feed == NEW:
        return query.where(by_id > after).order_by(by_id)
    # The feed of changes reads ix_orders_changed: (changed_xid, id) after the cursor's, settled ones only.
    by_change = Order.changed_xid + 0 if by_updated else Order.changed_xid
    query = query.where(tuple_(by_change, by_id) > tuple_(literal(changed_xid, BigInteger), literal(after, BigInteger)))
    settled = changes.settled(session.get_bind().dialect.name, Order.changed_xid)
    if settled is not None:
        query = query.where(settled)
    return query.order_by(by_change, by_id)


def refuse_if_ahead(session: Session, position: Position, cursor: str) -> None:
    """For a page that found nothing: a cursor of the feed of changes ahead of every change this database holds is
    refused (ValidationFailed naming ``cursor``) — one kept across a restore into another server, whose feed would
    stay empty, or skip what is written until the numbers caught up."""
    if position[1] and changes.beyond_every_transaction(session, position[1]):
        raise ValidationFailed(
            f"cursor {cursor!r} is ahead of every change this database holds (restored from a backup into another "
            f"server?): begin the feed of changes again with cursor={CURSOR_START}&feed=changes",
            details={"field": "cursor"},
        )


def settled_before(session: Session, position: Position) -> int | None:
    """For a page of the feed of changes, asked before its query: :func:`changes.horizon`, below which every change
    has settled and is seen by the page's query (None for the feed of new orders). See :func:`next_cursor`."""
    return changes.horizon(session) if position[0] == CHANGES else None


def next_cursor(
    position: Position, last: tuple[int, int] | None, *, settled_below: int | None = None, has_more: bool = True
) -> str:
    """The cursor of the position after a page: past ``last``, the page's last order as ``(changed_xid, id)`` — the
    row's own ``changed_xid``, as read with it (an object of the session may hold one older than its last flush) —
    or, for an empty page, the same position (but see below).

    The feed of changes' last page (``has_more`` false) moves on to past every change below ``settled_below`` (the
    :func:`settled_before` asked before the page's query), when that is further: the query saw every such change and
    handed out all that the caller reads, so the orders it passed over — other units', other filters' — are not read
    again by the next poll. A caller reading a few of the orders polled from its own last order, and so read every
    change of the others since, poll after poll."""
    feed, changed_xid, after = position
    if last is not None:
        changed_xid, after = last
    if feed == NEW:
        return encode_cursor(after)
    if not has_more and settled_below is not None and (settled_below - 1, _PAST_EVERY_ID) > (changed_xid, after):
        changed_xid, after = settled_below - 1, _PAST_EVERY_ID
    return encode_changes_cursor(changed_xid, after)
