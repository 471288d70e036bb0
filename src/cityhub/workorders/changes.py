"""Which transaction last stored or changed each order, and which of those transactions are settled: the ground of
the feed of changes (:mod:`cityhub.workorders.feeds`: ``GET /api/v1/sharing/orders?feed=changes``,
``GET /api/v1/orders?cursor=*``).

``orders.changed_xid`` holds a number of the transaction that last inserted or updated the row, written whatever
wrote the row (the ORM, a Core ``UPDATE`` such as the SLA sweep's or the placing job's, the bulk writer's ``COPY`` or
``executemany``):

* PostgreSQL: the transaction's id, ``pg_current_xact_id()`` (64 bits with its epoch: it never wraps, unlike the
  32-bit system column ``xmin``), set by the row trigger ``orders_changed_xid`` BEFORE INSERT OR UPDATE, over any
  value a statement gives. Every transaction with an id below the ``xmin`` of the reading statement's snapshot
  (:func:`settled`) has ended, and every transaction still to commit has an id at or above it: an order whose
  ``changed_xid`` is below that bound can no longer appear or change at a position before it. Orders of transactions
  still open (and of those that committed after a lower one still open) wait, so a reader that walks the settled
  rows in ``(changed_xid, id)`` order never passes a row that a transaction commits later.
* SQLite: one writer at a time, holding the lock from its first write to its end, so a number drawn from a counter
  (``order_change_counter``, its one row bumped in the writer's transaction) is above every number already committed,
  and every row a reader sees is settled. The AFTER triggers ``orders_changed_insert`` and ``orders_changed_update``
  (SQLite's BEFORE triggers cannot set a column) draw one for each row a statement leaves unstamped — a second write
  of the row; a writer of many orders draws one block itself instead (:func:`draw`: the bulk writer; :func:`stamped`:
  the SLA sweep's UPDATE), and the triggers leave a row it stamped alone. The counter's row, if deleted, starts again
  above the highest number an order holds.

Rows stored before this column existed (migration 0040) hold 0: settled, ordered by their id.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Text, cast, func, text
from sqlalchemy.orm import Session

from cityhub.db import rowcount

COUNTER_TABLE = "order_change_counter"
PG_FUNCTION = "orders_stamp_changed_xid"
PG_TRIGGER = "orders_changed_xid"

# The DDL as the migration 0040 writes it (a schema made from the models gets the same through :func:`install`).
PG_DDL = (
    f"CREATE FUNCTION {PG_FUNCTION}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "NEW.changed_xid := pg_current_xact_id()::text::bigint; RETURN NEW; END $$",
    f"CREATE TRIGGER {PG_TRIGGER} BEFORE INSERT OR UPDATE ON orders FOR EACH ROW EXECUTE FUNCTION {PG_FUNCTION}()",
)
PG_DROP = (f"DROP TRIGGER IF EXISTS {PG_TRIGGER} ON orders", f"DROP FUNCTION IF EXISTS {PG_FUNCTION}()")
# Draw the next number (the counter's row made again above the orders' highest if it is missing), then stamp the row.
_SQLITE_STAMP = (
    f"INSERT INTO {COUNTER_TABLE} (id, last) VALUES (1, (SELECT coalesce(max(changed_xid), 0) + 1 FROM orders)) "
    "ON CONFLICT (id) DO UPDATE SET last = last + 1; "
    f"UPDATE orders SET changed_xid = (SELECT last FROM {COUNTER_TABLE} WHERE id = 1) WHERE id = new.id; "
)
SQLITE_DDL = (
    f"CREATE TABLE {COUNTER_TABLE} (id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1), last BIGINT NOT NULL)",
    f"CREATE TRIGGER orders_changed_insert AFTER INSERT ON orders WHEN new.changed_xid = 0 BEGIN {_SQLITE_STAMP}END",
    # Only for the rows a statement did not stamp (nor for the trigger's own stamp, were recursive triggers on).
    "CREATE TRIGGER orders_changed_update AFTER UPDATE ON orders WHEN new.changed_xid IS old.changed_xid "
    f"BEGIN {_SQLITE_STAMP}END",
)
SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS orders_changed_update",
    "DROP TRIGGER IF EXISTS orders_changed_insert",
    f"DROP TABLE IF EXISTS {COUNTER_TABLE}",
)

# The next transaction id PostgreSQL will give (the current snapshot's xmax): no transaction has reached it yet.
_PG_NEXT_XID = "pg_snapshot_xmax(pg_current_snapshot())::text::bigint"

_SQLITE_DRAW = text(
    f"INSERT INTO {COUNTER_TABLE} (id, last) VALUES (1, (SELECT coalesce(max(changed_xid), 0) FROM orders) + :n) "
    "ON CONFLICT (id) DO UPDATE SET last = last + :n RETURNING last"
)


def draw(conn: Any, count: int) -> int | None:
    """SQLite: take ``count`` consecutive numbers of the counter in the caller's transaction (which then holds the
    write lock to its end) and return the first, for the orders it writes, in the order of their ids. None on
    PostgreSQL, whose trigger stamps every row."""
    if conn.dialect.name != "sqlite":
        return None
    last = int(conn.execute(_SQLITE_DRAW, {"n": count}).scalar_one())
    return last - count + 1


def stamped(session: Session) -> dict[str, Any]:
    """The values that make one set-based UPDATE of orders stamp its rows itself (SQLite: one number drawn for all of
    them, so the trigger does not write each row again); none on PostgreSQL."""
    number = draw(session.connection(), 1)
    return {} if number is None else {"changed_xid": number}


def beyond_every_transaction(session: Session, changed_xid: int) -> bool:
    """Whether no transaction of this database can have the number ``changed_xid`` yet — PostgreSQL: at or past the
    snapshot's ``xmax``, the next id to be given; SQLite: past the counter's last number. A cursor holding such a
    number was not given by this database as it is: one restored from a dump into another server (whose transaction
    ids start again lower) or a counter made again lower. Its feed would stay empty, or skip what is written until
    the numbers catch up."""
    if session.get_bind().dialect.name == "sqlite":
        last = session.execute(
            text(f"SELECT coalesce((SELECT last FROM {COUNTER_TABLE} WHERE id = 1), max(changed_xid), 0) FROM orders")
        ).scalar_one()
        return changed_xid > int(last)
    xmax = session.execute(text(f"SELECT {_PG_NEXT_XID}")).scalar_one()
    return changed_xid >= int(xmax)


def horizon(session: Session) -> int:
    """A number that every order written after this call, or by a transaction still open at it, will hold or exceed
    in ``changed_xid`` — PostgreSQL: the ``xmin`` of the current snapshot (every transaction below it has ended, so a
    statement run after this one sees its writes); SQLite: the number the next writer will draw (the counter's last,
    committed, plus one; a writer holding the lock has drawn it and not committed). So what a statement run after this
    call reads is the state of every order whose ``changed_xid`` is below it, and an order changed since holds one at
    or above it: ``changed_xid >= horizon`` finds, through ``ix_orders_changed``, every order that may have changed
    since (:func:`cityhub.analytics.kpi.compute`'s cache asks it)."""
    if session.get_bind().dialect.name == "sqlite":
        last = session.execute(
            text(f"SELECT coalesce((SELECT last FROM {COUNTER_TABLE} WHERE id = 1), max(changed_xid), 0) FROM orders")
        ).scalar_one()
        return int(last) + 1
    return int(session.execute(text("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint")).scalar_one())


def renumber_restored(session: Session) -> int:
    """Bring orders whose ``changed_xid`` no transaction of this database has reached back within reach, as after a
    ``pg_restore`` into another server (whose transaction ids start again lower): such orders would wait out of the
    feed of changes until the ids caught up. PostgreSQL: each is stamped again by its trigger with this transaction
    (the feed gives them again, after every order settled before); SQLite: the counter is raised to the orders'
    highest number (a counter made again lower). The number of orders beyond (0: nothing to do)."""
    if session.get_bind().dialect.name == "sqlite":
        beyond = session.execute(
            text(f"SELECT count(*) FROM orders WHERE changed_xid > (SELECT last FROM {COUNTER_TABLE} WHERE id = 1)")
        ).scalar_one()
        if beyond:
            session.execute(
                text(f"UPDATE {COUNTER_TABLE} SET last = (SELECT max(changed_xid) FROM orders) WHERE id = 1")
            )
        return int(beyond)
    return rowcount(session.execute(text(f"UPDATE orders SET changed_xid = 0 WHERE changed_xid >= {_PG_NEXT_XID}")))


def install(conn: Any) -> None:
    """Create the triggers (and SQLite's counter) on a schema made from the models (the migration 0040 makes them on a
    migrated one)."""
    for statement in SQLITE_DDL if conn.dialect.name == "sqlite" else PG_DDL:
        conn.exec_driver_sql(statement)


def drop(conn: Any) -> None:
    for statement in SQLITE_DROP if conn.dialect.name == "sqlite" else PG_DROP:
        conn.exec_driver_sql(statement)


def is_counter_table(name: str) -> bool:
    """Whether ``name`` is SQLite's counter of changes (not in the models)."""
    return name == COUNTER_TABLE


def settled(dialect_name: str, changed_xid: Any) -> ColumnElement[bool] | None:
    """The condition that the row's transaction (``changed_xid``, a column) has ended and no transaction still to
    commit can write below it — PostgreSQL: below the ``xmin`` of the statement's snapshot; None on SQLite, where every
    row a reader sees is settled."""
    if dialect_name == "sqlite":
        return None
    horizon = cast(cast(func.pg_snapshot_xmin(func.pg_current_snapshot()), Text), BigInteger)
    result: ColumnElement[bool] = changed_xid < horizon
    return result
