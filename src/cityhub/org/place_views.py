"""HTTP routes of places under ``/api/v1/places``: where a point lies among the district's own units, and the units'
outlines to draw a point over.

For every signed-in role (``order:read``: staff and citizens alike — a citizen or a grid inspector picks the place of
an appeal on a phone; a handler reads an order's point on its page). Neither answer says anything of orders: the
units' names and boundaries are the same for every reader, not limited to a data scope.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from cityhub.api.deps import DbSession, require
from cityhub.auth import permissions
from cityhub.localnames import english_names
from cityhub.onemap import service as onemap
from cityhub.org.places import locate_point
from cityhub.org.service import unit_directory
from cityhub.web.i18n import ENGLISH
from cityhub.web.support import language

router = APIRouter(prefix="/places", tags=["units"], dependencies=[Depends(require(permissions.ORDER_READ))])
GEOJSON = "application/geo+json"

Lat = Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False, description="Latitude in degrees (GCJ-02).")]
Lng = Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False, description="Longitude in degrees (GCJ-02).")]


class PlaceUnit(BaseModel):
    id: int
    code: str
    name: str
    name_shown: str = Field(
        description="the name in the reader's UI language (the cityhub_lang cookie): in English its English name "
        "where set, else romanised; else the name"
    )


class PointPlace(BaseModel):
    """The street and community whose boundaries hold a point; ``placed`` false (both null) when none does — or the
    database has no divisions yet."""

    lat: float
    lng: float
    placed: bool
    street: PlaceUnit | None
    community: PlaceUnit | None


@router.get("/at", response_model=PointPlace)
def place_at(request: Request, db: DbSession, lat: Lat, lng: Lng) -> PointPlace:
    """Where a point lies: the street and community whose boundaries hold it, as intake places an appeal by its
    coordinates (``org.places.locate_point``; overlapping outlines as far as they agree: the street). A latitude or
    longitude that is missing, not a finite number or out of range is a 422 naming it."""
    place = locate_point(db, lat, lng)
    names = unit_directory(db)
    english = english_names(db) if language(request) == ENGLISH else None  # the intake map's line on an English page

    def unit(uid: int | None) -> PlaceUnit | None:
        ref = names.get(uid) if uid is not None else None
        if ref is None:
            return None
        shown = english.unit(ref.name) if english is not None else ref.name
        return PlaceUnit(id=ref.id, code=ref.code, name=ref.name, name_shown=shown)

    street, community = (unit(place.street_id), unit(place.community_id)) if place else (None, None)
    return PointPlace(lat=lat, lng=lng, placed=bool(street or community), street=street, community=community)


@router.get("/boundaries", response_class=JSONResponse)
def boundaries(db: DbSession) -> JSONResponse:
    """The district outline and the active streets' and communities' boundaries as a GeoJSON FeatureCollection
    (GCJ-02; each feature's ``unit_id``, ``code``, ``name``, ``tier``) — what the one map draws as its base, without
    its counts: the ground a small map of a place draws its point on. Units without a boundary are left out."""
    return JSONResponse(onemap.boundary_features(db), media_type=GEOJSON)
