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


@router.get("/orders")
def anonymised_orders(
    db: MeteredDb,
    _caller: SharingReader,
    page: Paging,
    start: Start = None,
    end: End = None,
    include_text: Annotated[bool, Query(description="add title, content and reply, scrubbed of phone/ID numbers")] = (
        False
    ),
) -> dict[str, Any]:
    """Orders of the period without personal data (no names or phones; addresses cut to road or compound)."""
    return service.anonymised_orders(
        db, start=start, end=end, limit=page.limit, offset=page.offset, include_text=include_text
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
