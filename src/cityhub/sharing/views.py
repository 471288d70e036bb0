"""HTTP routes of the data-sharing API (``/api/v1/sharing``): aggregates, anonymised orders, call statistics."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from cityhub.api.deps import Paging
from cityhub.sharing import service
from cityhub.sharing.http import MeteredDb, MeteredRoute, SharingReader, StatsReader
from cityhub.timerange import RequestTime

router = APIRouter(prefix="/sharing", tags=["sharing"], route_class=MeteredRoute)

Start = Annotated[RequestTime | None, Query(description="from (inclusive), with time zone; default end - 30 days")]
End = Annotated[RequestTime | None, Query(description="to (exclusive), with time zone; default now")]
Dimension = Literal["category", "unit", "street", "day", "state"]
Feed = Literal["new", "changes"]


@router.get("/aggregates/{dimension}")
def aggregates(
    dimension: Dimension,
    db: MeteredDb,
    _caller: SharingReader,
    start: Start = None,
    end: End = None,
    category_level: Annotated[int, Query(ge=1, le=4, description="category level to count at")] = 1,
) -> dict[str, Any]:
    """Orders received in the period, counted by category, lead unit, street, local day or state."""
    return service.aggregate_orders(db, dimension=dimension, start=start, end=end, category_level=category_level)


ORDERS_FEED = """Orders without personal data (no names or phones; addresses cut to road or compound).

Three ways to page:

* **offset** (no `cursor`): the orders received in [`start`, `end`) (default: the last 30 days), oldest reception
  first, `offset` rows skipped. An order stored later with an older reception time (an import of past orders)
  shifts the pages after it: a harvester paging this way can miss orders or get some twice. `next_cursor` is null.
* **changes** (`cursor=*&feed=changes` to begin): every order after each time it was stored or changed (intake,
  imports, each life-cycle step, amendment and time-limit mark), in the order of the database transactions that did
  it, once that transaction has settled: an order stored or changed by a transaction still open waits for a later
  page and is never passed. Send `next_cursor` back as `cursor` (the cursor says its feed; `feed` may be left out)
  for the next page; once `has_more` is false keep it, and the next run's first call gets everything stored or
  changed since. A harvester keeping a copy needs this feed alone, taking each order by `number` as its latest
  state. `next_cursor` is never null in this mode.
* **new orders** (`cursor=*` to begin, or `feed=new`): every order once, in the order cityhub stored them (by a key
  that only grows), its state when read. On PostgreSQL an order stored by a transaction that commits after a later
  one may be passed: the feed of changes does not. Send `next_cursor` back as `cursor` as above.

`start`/`end` filter the reception time in the cursor modes only when given; `offset` cannot be combined with a
cursor. `updated_since` (any mode) keeps only the orders changed since that time (`updated_at`: each life-cycle
step, amendment and time-limit mark; an imported order's is its reception time). Before the feed of changes a
harvester ran two feeds — new orders by its stored cursor, and the changes by `cursor=*&updated_since=` a minute or
so before its previous run began — which misses a change committed more than that minute after its time.
"""


@router.get("/orders", description=ORDERS_FEED)
def anonymised_orders(
    db: MeteredDb,
    _caller: SharingReader,
    page: Paging,
    start: Start = None,
    end: End = None,
    include_text: Annotated[bool, Query(description="add title, content and reply, scrubbed of phone/ID numbers")] = (
        False
    ),
    cursor: Annotated[
        str | None,
        Query(max_length=200, description="`*` to begin, else a `next_cursor` of an earlier answer: keyset paging"),
    ] = None,
    updated_since: Annotated[
        RequestTime | None, Query(description="only orders changed at or after this time, with time zone")
    ] = None,
    feed: Annotated[
        Feed | None,
        Query(description="the feed a cursor walks: `changes` (every store and change, settled) or `new` (default)"),
    ] = None,
) -> dict[str, Any]:
    """Orders without personal data, paged by offset or by cursor (new orders, or every change)."""
    return service.anonymised_orders(
        db,
        start=start,
        end=end,
        limit=page.limit,
        offset=page.offset,
        include_text=include_text,
        cursor=cursor,
        updated_since=updated_since,
        feed=feed,
    )


@router.get("/stats")
def call_stats(
    db: MeteredDb,
    _admin: StatsReader,
    start: Annotated[date | None, Query(description="first local day")] = None,
    end: Annotated[date | None, Query(description="last local day")] = None,
    client: Annotated[str | None, Query(description="one client's name")] = None,
) -> list[dict[str, Any]]:
    """Calls and errors per client, day and endpoint (admins only)."""
    return service.call_stats(db, start=start, end=end, client_name=client)
