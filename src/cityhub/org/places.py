"""Where an order is, in the district's own units: its street and community found from coordinates, an address or
its text.

One gazetteer per process, built from the database's district / street / community units (names, short forms and
boundaries) and the district's address library (地名别名, :mod:`cityhub.org.aliases`: landmarks, roads, old names of its
streets and communities), and rebuilt when either changes (:mod:`cityhub.refdata`). Dispatch uses it to choose the
community or street office responsible, intake's duplicate search to compare an appeal's place with earlier ones. The
packaged Guangzhou gazetteer (``cityhub.nlp.address.default_gazetteer``) answers ``cityhub nlp locate`` and offline
analyses of files; an order is placed only among the units of the database it lives in.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub import refdata
from cityhub.errors import ValidationFailed
from cityhub.org.models import Unit, UnitAlias, UnitTier
from cityhub.org.service import UnitRef, unit_ids_by_code

if TYPE_CHECKING:
    from cityhub.nlp.address import Gazetteer, Location

PLACE_TIERS = (UnitTier.DISTRICT, UnitTier.STREET, UnitTier.COMMUNITY)
# The reference tables the gazetteer is built from: a change of either builds it again, and makes the place-orders
# job look again at the orders it found not placeable (cityhub.workorders.placing).
GAZETTEER_TABLES = ("units", "unit_aliases")


class PlaceSource(enum.StrEnum):
    """Where an order's street and community came from (``orders.place_source``)."""

    ORDER = "order"  # given with the appeal (unit codes), or recorded before sources were kept
    COORDINATES = "coordinates"  # inside a unit's boundary
    ADDRESS = "address"
    TEXT = "text"  # the title and content
    DISPATCHER = "dispatcher"  # set or corrected by a person (dispatch.set_place)
    LEAD_UNIT = "lead_unit"  # not placed, then given to a street or community office: where that office is
    NONE = "none"  # looked for among the units and not found (nothing named one unambiguously)


@dataclass(frozen=True)
class Place:
    """An order's street and community (unit ids) and where they were read from (a :class:`PlaceSource` value;
    None: nothing placed it)."""

    street_id: int | None = None
    community_id: int | None = None
    source: str | None = None

    @property
    def placed(self) -> bool:
        return self.street_id is not None or self.community_id is not None


class Appeal(Protocol):
    """What places an appeal: a new one (``OrderCreate``) or an order."""

    @property
    def lat(self) -> float | None: ...
    @property
    def lng(self) -> float | None: ...
    @property
    def address(self) -> str | None: ...
    @property
    def title(self) -> str: ...
    @property
    def content(self) -> str: ...


def unit_gazetteer(session: Session, *, own_names: bool = False) -> Gazetteer | None:
    """The gazetteer of the database's own divisions and their address library, from the process's cache while
    neither changed; None without any divisions (or when their names cannot make one). The process keeps this one
    gazetteer: the units' own names are in it beside the library's (``Gazetteer.units_named(own=True)``).

    ``own_names``: the caller reads the units and their own names only (what an alias may not repeat unless the
    administrator means it, :mod:`cityhub.org.aliases`) — the cached gazetteer will do while the units are unchanged,
    however the library changed since, so that aliases added one after another do not build it again each time."""
    return refdata.cached(
        session, "org.gazetteer", GAZETTEER_TABLES, _build_gazetteer, enough=("units",) if own_names else None
    )


def _build_gazetteer(session: Session) -> Gazetteer | None:
    from cityhub.nlp.address import Gazetteer

    units = list(session.scalars(select(Unit).where(Unit.tier.in_(PLACE_TIERS))))
    if not units:
        return None
    names = [(a, c) for a, c in session.execute(select(UnitAlias.alias, Unit.code).join(Unit))]
    try:
        return Gazetteer.from_units(units, names)
    except ValidationFailed:
        return None


def locate_appeal(session: Session, appeal: Appeal) -> Place | None:
    """Where an appeal is: the street and community of the first of these that names one unambiguously — its
    coordinates (inside a unit's boundary), its address, its title and content — else as far as the first ambiguous
    answer's readings agree (its street). ``Place()`` when none says anything; None when
    the database has no divisions to place anything in — so that an order can be placed once they are imported,
    instead of being recorded as not placeable."""
    gaz = unit_gazetteer(session)
    if gaz is None:
        return None
    text = f"{appeal.title or ''}\n{appeal.content or ''}"
    # An ambiguous answer still places the order as far as its readings agree (a typo'd community that fits two
    # of the named street's: that street), if no later source names the place outright.
    partly: tuple[str, Location] | None = None
    for source, loc in _locations(gaz, appeal.lat, appeal.lng, appeal.address, text):
        if not (loc.street_code or loc.community_code):
            continue
        if source == "text" and _names_a_county_elsewhere(gaz, text):
            continue  # "J3县南岭村": a village of that name elsewhere, not ours
        if loc.ambiguous:
            partly = partly or (source, loc)
            continue
        return _place(session, source, loc)
    return _place(session, *partly) if partly else Place()


def locate_point(session: Session, lat: float, lng: float) -> Place | None:
    """Where a point is: the street and community whose boundaries hold it (as :func:`locate_appeal` reads an
    appeal's coordinates — overlapping outlines as far as they agree), ``Place()`` when no unit's boundary holds it;
    None when the database has no divisions. What a phone's position says before the appeal is sent
    (``GET /api/v1/places/at``) and whether an inspector's report says where it is by its point alone."""
    from types import SimpleNamespace

    return locate_appeal(session, SimpleNamespace(title=None, content="", address=None, lat=lat, lng=lng))


# A county named in a text (长沙县, J3县), not followed by what makes 县 a word of its own (县城, 县委, 县级 …).
_COUNTY = re.compile(r"([A-Za-z]\d{0,2}|[\u4e00-\u9fff]{2,3})县(?![城委级长里域内外])")


def _names_a_county_elsewhere(gaz: Gazetteer, text: str) -> bool:
    """Whether the text names a county that is none of the gazetteer's divisions: its village and community names
    then more likely mean that county's places (many villages across China share a name) than ours."""
    return any(not any(m.group(1)[-2:] in name for name in gaz.district_names) for m in _COUNTY.finditer(text))


def _place(session: Session, source: str, loc: Location) -> Place:
    ids = unit_ids_by_code(session)
    return Place(
        street_id=ids.get(loc.street_code) if loc.street_code else None,
        community_id=ids.get(loc.community_code) if loc.community_code else None,
        source=source,
    )


def place_of_unit(unit: UnitRef) -> Place | None:
    """The place a street or community office stands for: its street, or its community and that community's street;
    None for any other tier."""
    if unit.tier == UnitTier.COMMUNITY:
        return Place(street_id=unit.parent_id, community_id=unit.id)
    if unit.tier == UnitTier.STREET:
        return Place(street_id=unit.id)
    return None


def _locations(
    gaz: Gazetteer, lat: float | None, lng: float | None, address: str | None, text: str | None
) -> Iterator[tuple[str, Location]]:
    """Each source's resolution in turn, each computed only when the ones before it did not place the order."""
    if lat is not None and lng is not None:
        try:
            point = gaz.resolve_point(lat, lng)
        except ValidationFailed:  # not a coordinate: the address and text may still say
            point = None
        if point is not None:
            yield "coordinates", point
    for source, value in (("address", address), ("text", text)):
        if value and value.strip():
            yield source, gaz.resolve(value)
