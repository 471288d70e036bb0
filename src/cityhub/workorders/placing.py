"""Placing the orders intake did not place: those written in bulk (imports) and those received before orders were
placed at intake, or before the district's divisions were imported.

Intake places each appeal as it is received (:func:`cityhub.workorders.service.create_order`). The ``place-orders``
job (and ``cityhub orders place``) works through the rest, oldest first, through a partial index of the orders never
looked for (``ix_orders_unplaced``): each one placed gets its street, community and source in one audited comment
(the state is untouched, whatever it is); one that names no unit is marked ``none`` so that it leaves the backlog.
Once the units or the address library (place aliases, ``cityhub.org.aliases``) change, the job looks at those again
(``retry``; ``cityhub orders place --retry`` at once); orders already placed are never placed again. Without any
divisions in the database nothing is marked: the orders wait for them. An order given to a street or community office
while unplaced takes that office's place in the same action (``workorders.service.act``).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import or_, select, text, update
from sqlalchemy.orm import Session, selectinload

from cityhub import refdata
from cityhub.org.places import Place, PlaceSource, locate_appeal, unit_gazetteer
from cityhub.org.service import unit_directory
from cityhub.workorders import service as orders
from cityhub.workorders.models import UNPLACED_SQL, JobRun, Order

PLACER = orders.Actor(name="place-orders")
# Orders per committed batch: a batch's writes come after all its reading, so on SQLite the database's one write lock
# is held only for them (~0.1 s), not while the orders are located.
BATCH = 250
# Work per run of the scheduled job: a 200,000-order import is placed in a few minutes, a run never hogs a process.
JOB_BUDGET_S = 20.0


def place_pending(session: Session, *, limit: int = BATCH, retry: bool = False, after_id: int = 0) -> dict[str, Any]:
    """Place up to ``limit`` orders never looked for (with ``retry``: also those found not placeable before), in
    id order after ``after_id``. Returns ``{"looked": n, "placed": n, "unplaced": n, "last_id": id or None}``;
    ``last_id`` is where the next batch starts (None: nothing was left)."""
    if unit_gazetteer(session) is None:
        return {"looked": 0, "placed": 0, "unplaced": 0, "last_id": None, "skipped": "no divisions"}
    wanted: Any = text(UNPLACED_SQL)
    if retry:
        wanted = or_(
            wanted,
            (Order.place_source == PlaceSource.NONE.value) & Order.street_id.is_(None) & Order.community_id.is_(None),
        )
    rows = list(
        session.scalars(
            select(Order)
            .where(wanted, Order.id > after_id)
            .order_by(Order.id)
            .limit(limit)
            .options(selectinload(Order.assists))
            .with_for_update(skip_locked=True)  # PostgreSQL: orders someone is acting on wait for the next run
        )
    )
    names = unit_directory(session)
    # All reading first (the units' gazetteer), then the writes.
    located = [(order, locate_appeal(session, order) or Place()) for order in rows]
    placed: list[int] = []
    unplaced: list[int] = []
    for order, found in located:
        if not found.placed:
            unplaced.append(order.id)
            continue
        where = " / ".join(names[i].name for i in (found.street_id, found.community_id) if i is not None and i in names)
        orders.amend(
            session,
            order=order,
            changes={
                "street_id": found.street_id,
                "community_id": found.community_id,
                "place_source": found.source,
            },
            actor=PLACER,
            text=f"place found from the {found.source}: {where}",
            new_order=order,  # read and locked above, with its assists
        )
        placed.append(order.id)
    if unplaced:
        # Not a change of the order's street or community (none before, none now): a mark, without an event.
        session.execute(
            update(Order)
            .where(Order.id.in_(unplaced))
            .values(place_source=PlaceSource.NONE.value)
            .execution_options(synchronize_session=False)
        )
    return {
        "looked": len(rows),
        "placed": len(placed),
        "unplaced": len(unplaced),
        "last_id": rows[-1].id if rows else None,
    }


def place_backlog(
    session: Session,
    *,
    batch: int = BATCH,
    limit: int | None = None,
    retry: bool = False,
    budget_s: float | None = None,
    after_id: int = 0,
) -> dict[str, Any]:
    """:func:`place_pending` batch after batch (from ``after_id``), each committed, until nothing is left, ``limit``
    orders have been looked at or ``budget_s`` seconds have passed. Returns the totals, ``done`` (nothing was left)
    and ``last_id`` (the last order looked at); ``skipped`` without divisions."""
    started = time.monotonic()
    totals: dict[str, Any] = {"looked": 0, "placed": 0, "unplaced": 0, "done": False, "last_id": None}
    after = after_id
    while limit is None or totals["looked"] < limit:
        size = batch if limit is None else min(batch, limit - totals["looked"])
        result = place_pending(session, limit=size, retry=retry, after_id=after)
        session.commit()
        if "skipped" in result:
            return {**totals, "skipped": result["skipped"]}
        for key in ("looked", "placed", "unplaced"):
            totals[key] += result[key]
        if result["last_id"] is None or result["looked"] < size:
            totals["done"] = True
            break
        after = totals["last_id"] = result["last_id"]
        if budget_s is not None and time.monotonic() - started >= budget_s:
            break
    return totals


def place_scheduled(session: Session, *, name: str = "place-orders", budget_s: float | None = None) -> dict[str, Any]:
    """One run of the ``place-orders`` job: the orders never looked for; and, once the units or the address
    library have changed since the last run (their version tokens in ``reference_versions``), those found not
    placeable again — resumed run after run from where the last one stopped. What to resume is kept in the job's own
    ``last_result``. Orders already placed are never placed again."""
    budget_s = JOB_BUDGET_S if budget_s is None else budget_s
    started = time.monotonic()
    current = refdata.tokens(session)
    units, aliases = current.get("units"), current.get("unit_aliases")
    row = session.get(JobRun, name)
    last = (row.last_result if row is not None else None) or {}
    retry_from = last.get("retry_from")
    # A token the last run recorded as missing counts as changed when it is there now (an alias was added to an
    # empty library); a last run from before the library recorded none for it.
    if (last.get("units_token") is not None and last.get("units_token") != units) or (
        "aliases_token" in last and last["aliases_token"] != aliases
    ):
        retry_from = 0  # the gazetteer changed: every order found not placeable may be placeable now
    result = place_backlog(session, budget_s=budget_s)
    if "skipped" in result:
        return result
    left = budget_s - (time.monotonic() - started)
    if retry_from is not None and left > 0:
        again = place_backlog(session, retry=True, after_id=retry_from, budget_s=left)
        for key in ("placed", "unplaced"):
            result[key] += again[key]
        result["looked_again"] = again["looked"]
        retry_from = None if again["done"] else again["last_id"]
    result.update(units_token=units, aliases_token=aliases, retry_from=retry_from)
    return result
