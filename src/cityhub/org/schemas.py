"""Pydantic schemas of units and people, plus the row-level reports of CSV imports."""

from __future__ import annotations

import math
import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cityhub.org.models import Role, UnitTier

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.@-]{2,64}$")

# Digits of a phone number: 12345 and 95598 are the shortest worth calling back; +86, area code, number and
# extension the longest.
PHONE_DIGITS = (5, 16)
# An e-mail address as far as a form can tell: a name, one @, a domain with a dot, no spaces.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def phone_number(value: str | None) -> str | None:
    """A phone number without its spaces and dashes (None when nothing is left); ValueError unless it is digits
    (after an optional +), as many as :data:`PHONE_DIGITS` allows. A citizen's phone on an appeal and a person's on
    their account alike."""
    if value is None:
        return None
    cleaned = value.replace(" ", "").replace("-", "")
    digits = cleaned.lstrip("+")
    if cleaned and not digits.isdigit():
        raise ValueError("phone must contain digits only (spaces and dashes allowed)")
    if cleaned and not PHONE_DIGITS[0] <= len(digits) <= PHONE_DIGITS[1]:
        raise ValueError(f"phone must have {PHONE_DIGITS[0]} to {PHONE_DIGITS[1]} digits")
    return cleaned or None


def email_address(value: str | None) -> str | None:
    """``value`` stripped (None when empty); ValueError unless it looks like an e-mail address."""
    value = (value or "").strip()
    if value and not _EMAIL.match(value):
        raise ValueError("email must be an e-mail address (name@example.org)")
    return value or None


def check_boundary(geometry: dict[str, Any]) -> dict[str, Any]:
    """Return ``geometry`` if it is a well-formed GeoJSON Polygon or MultiPolygon, else raise ValueError."""
    if not isinstance(geometry, dict):
        raise ValueError("boundary must be a GeoJSON object")
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    if kind == "Polygon":
        _check_polygon(coordinates, "coordinates")
    elif kind == "MultiPolygon":
        if not isinstance(coordinates, list) or not coordinates:
            raise ValueError("MultiPolygon coordinates must be a non-empty list of polygons")
        for index, polygon in enumerate(coordinates):
            _check_polygon(polygon, f"coordinates[{index}]")
    else:
        raise ValueError(f"boundary must be a Polygon or MultiPolygon, not {kind!r}")
    return geometry


def _check_polygon(rings: Any, where: str) -> None:
    if not isinstance(rings, list) or not rings:
        raise ValueError(f"{where}: a polygon is a non-empty list of linear rings")
    for ring_index, ring in enumerate(rings):
        here = f"{where}[{ring_index}]"
        if not isinstance(ring, list) or len(ring) < 4:
            raise ValueError(f"{here}: a linear ring needs at least 4 positions")
        for position in ring:
            if (
                not isinstance(position, list | tuple)
                or len(position) < 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in position[:2])
            ):
                raise ValueError(f"{here}: positions are [longitude, latitude] numbers")
            try:
                lng, lat = float(position[0]), float(position[1])
            except OverflowError:  # an integer beyond any float, e.g. 10**400
                raise ValueError(f"{here}: position is outside longitude/latitude range") from None
            if not (math.isfinite(lng) and math.isfinite(lat) and -180 <= lng <= 180 and -90 <= lat <= 90):
                raise ValueError(f"{here}: position {list(position)!r} is outside longitude/latitude range")
        if list(ring[0][:2]) != list(ring[-1][:2]):
            raise ValueError(f"{here}: a linear ring must be closed (first position = last)")


class Contact(BaseModel):
    """One way to reach a unit: a duty office, a liaison person, a mailbox."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=120)
    role: str | None = Field(default=None, max_length=40)


# The longest English name of a unit (units.name_en): English names run longer than the Chinese ones.
NAME_EN_MAX = 200


class UnitBase(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    short_name: str | None = Field(default=None, max_length=60)
    name_en: str | None = Field(
        default=None, max_length=NAME_EN_MAX, description="English name, shown by English pages"
    )
    tier: UnitTier
    parent_id: int | None = None
    boundary: dict[str, Any] | None = None
    contacts: list[Contact] | None = None
    duties: str | None = None
    active: bool = True

    @field_validator("boundary")
    @classmethod
    def _valid_boundary(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else check_boundary(value)


class UnitCreate(UnitBase):
    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")


class UnitUpdate(BaseModel):
    """Fields to change; the code is the unit's stable identity and cannot be changed."""

    name: str | None = Field(default=None, min_length=1, max_length=120)
    short_name: str | None = Field(default=None, max_length=60)
    name_en: str | None = Field(
        default=None, max_length=NAME_EN_MAX, description="English name; null or empty clears it"
    )
    tier: UnitTier | None = None
    parent_id: int | None = None
    boundary: dict[str, Any] | None = None
    contacts: list[Contact] | None = None
    duties: str | None = None
    active: bool | None = None

    @field_validator("boundary")
    @classmethod
    def _valid_boundary(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else check_boundary(value)


class ContactChecks(BaseModel):
    """A person's phone and e-mail (the fields of the account models it is mixed into), checked as such."""

    @field_validator("phone", check_fields=False)
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return phone_number(value)

    @field_validator("email", check_fields=False)
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return email_address(value)


class UserBase(ContactChecks):
    username: str = Field(min_length=2, max_length=64, pattern=USERNAME_PATTERN.pattern)
    full_name: str = Field(min_length=1, max_length=80)
    role: Role
    unit_id: int | None = None
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=120)
    active: bool = True


class UserCreate(UserBase):
    pass


class RowError(BaseModel):
    """Why one row of an imported file was skipped. ``row`` is the 1-based line, the header being row 1."""

    row: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: {self.reason}"


class ImportReport(BaseModel):
    """Outcome of a CSV import: rows read, records created / updated / unchanged, and the rejected rows."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[RowError] = Field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.created + self.updated + self.unchanged

    def reject(self, row: int, field: str, reason: str) -> None:
        self.rejected.append(RowError(row=row, field=field, reason=reason))


class DivisionImportReport(ImportReport):
    # Rows left out because they are not under the requested root.
    outside_root: int = 0
    # Codes of rows imported as top-level units: their parent is neither in the file nor in the database.
    roots: list[str] = Field(default_factory=list)
    by_tier: dict[str, int] = Field(default_factory=dict)
