"""组织机构: the units (district, streets and towns, communities and villages, departments, sub-centres) — who
they are, their contacts and duties, their people — created and changed by ``units:manage`` roles.

The same service calls as ``/api/v1/units`` and ``cityhub org`` (``cityhub.org.service``): a unit's code is its
stable identity and never changes; a unit cannot move under its own sub-units; a boundary is GeoJSON (a Polygon or
MultiPolygon), which places orders by their coordinates. A street's or community's page keeps its place aliases too
(地名别名, ``cityhub.org.aliases``): the landmarks, roads and old names that place orders there.

A real district has some 450 units (白云区: 24 streets and towns, ~400 communities and villages, the departments), and
an administrator comes to the list to find one or to add one: ``/admin/units`` is the tree with each street's
communities folded under it (``?open=<street id>``, repeatable: plain links, no script), and ``?q=`` finds units by
name, short name or code (``org.units_query``), each shown with the units above it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityhub.api.deps import DbSession
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.errors import CityhubError, ValidationFailed
from cityhub.org import aliases as place_aliases
from cityhub.org import service as org
from cityhub.org.models import AliasKind, Unit, UnitTier, User
from cityhub.org.schemas import UnitCreate, UnitUpdate
from cityhub.org.service import UnitRef
from cityhub.textfiles import text_lines
from cityhub.web import forms, support
from cityhub.web.forms import field_errors, removed, saved
from cityhub.web.support import FormBody, PageError, render

router = APIRouter(include_in_schema=False)

UNIT_FIELDS = ("code", "name", "short_name", "name_en", "tier", "parent_id", "duties", "contacts", "boundary", "active")
PAGE_SIZE = 50  # units found by a search, a page


def _admin(request: Request, db: Session, form: FormBody | None = None) -> Principal:
    return support.require_user(request, db, permissions.UNITS_MANAGE, form=form)


def parse_contacts(text: str) -> list[dict[str, str]]:
    """Contacts typed one per line as ``名称,电话,邮箱,职务`` (the last three optional)."""
    contacts = []
    for number, line in enumerate(text_lines(text), start=1):
        cells = [c.strip() for c in line.replace("，", ",").split(",")]
        if not any(cells):
            continue
        if len(cells) > 4 or not cells[0]:
            raise ValidationFailed(f"contact line {number}: name,phone,email,role", details={"field": "contacts"})
        keys = ("name", "phone", "email", "role")
        contacts.append({k: v for k, v in zip(keys, cells, strict=False) if v})
    return contacts


def contacts_text(contacts: list[dict[str, Any]] | None) -> str:
    keys = ("name", "phone", "email", "role")
    return "\n".join(",".join(str(c.get(k) or "") for k in keys).rstrip(",") for c in contacts or [])


def _boundary(form: Any) -> dict[str, Any] | None:
    """The boundary pasted (GeoJSON), read as JSON; None when empty."""
    text = form.get("boundary").strip()
    try:
        return json.loads(text) if text else None
    except ValueError:
        raise ValidationFailed("the boundary is not JSON (GeoJSON)", details={"field": "boundary"}) from None


def _payload(form: Any, *, new: bool, lenient: bool = False) -> dict[str, Any]:
    """The unit's fields as the service's schema takes them. ``lenient``: a boundary or contacts that do not read
    left out (their own checks say why), for the schema to check the other fields."""
    data: dict[str, Any] = {
        "name": form.get("name").strip(),
        "short_name": form.text("short_name"),
        "name_en": form.text("name_en"),
        "tier": form.get("tier"),
        "parent_id": form.text("parent_id"),
        "duties": form.text("duties"),
        "contacts": _unless_refused(lambda: parse_contacts(form.get("contacts")), lenient),
        "boundary": _unless_refused(lambda: _boundary(form), lenient),
        "active": form.get("active") == "1",
    }
    if new:
        data["code"] = form.get("code").strip()
    return data


def _unless_refused(read: Any, lenient: bool) -> Any:
    try:
        return read()
    except ValidationFailed:
        if not lenient:
            raise
        return None


def _checks(db: Session, form: Any, *, unit_id: int | None = None) -> list[Any]:
    """Every check of a unit's form, for a refused form to say all its problems at once (``forms.every_problem``):
    the boundary's and contacts' reading, the schema's fields, a new unit's code, its place in the tree."""
    new = unit_id is None
    model = UnitCreate if new else UnitUpdate

    def placement() -> None:
        try:
            tier, parent_id = UnitTier(form.get("tier")), forms.whole_number(form.text("parent_id") or "")
        except ValueError:
            return  # not a tier: the schema says so
        if parent_id is not None or not form.text("parent_id"):
            org.check_placement(db, tier=tier, parent_id=parent_id, unit_id=unit_id)

    checks: list[Any] = [
        lambda: _boundary(form),
        lambda: parse_contacts(form.get("contacts")),
        lambda: model.model_validate(_payload(form, new=new, lenient=True)),
        placement,
    ]
    if new and (code := form.get("code").strip()):
        checks.append(lambda: org.check_code_free(db, code=code))
    return checks


def _values(unit: Unit) -> dict[str, str]:
    return {
        "code": unit.code,
        "name": unit.name,
        "short_name": unit.short_name or "",
        "name_en": unit.name_en or "",
        "tier": unit.tier.value,
        "parent_id": str(unit.parent_id or ""),
        "duties": unit.duties or "",
        "contacts": contacts_text(unit.contacts),
        "boundary": json.dumps(unit.boundary, ensure_ascii=False) if unit.boundary else "",
        "active": "1" if unit.active else "",
    }


@dataclass(frozen=True)
class TreeRow:
    """A unit's line in the tree: how deep it sits and, for a street, its communities — folded unless opened — with
    the address that opens or folds them."""

    unit: UnitRef
    depth: int
    communities: int = 0
    opened: bool = False
    toggle: str = ""


def _toggle(street_id: int, opened: frozenset[int]) -> str:
    """The tree's address with ``street_id``'s communities opened or folded (the others as they are), at its row."""
    wanted = opened ^ {street_id}
    query = urlencode([("open", unit_id) for unit_id in sorted(wanted)])
    return f"/admin/units{'?' + query if query else ''}#unit-{street_id}"


# The order of a unit among its siblings: the places first, as a district lists itself — its streets and towns (镇街),
# a street's communities —, then the functional departments and the sub-centres; by code within a tier. By code
# alone, a district's 23 departments (440111-D01…) came before its 24 streets (440111002…).
SIBLING_TIERS = (
    UnitTier.CITY,
    UnitTier.DISTRICT,
    UnitTier.STREET,
    UnitTier.COMMUNITY,
    UnitTier.DEPARTMENT,
    UnitTier.SUBCENTRE,
)


def sibling_order(unit: UnitRef | Unit) -> tuple[int, str]:
    """The sort key of a unit among its siblings (:data:`SIBLING_TIERS`, then code); also the order of the units a
    new unit may be put under."""
    rank = SIBLING_TIERS.index(unit.tier) if unit.tier in SIBLING_TIERS else len(SIBLING_TIERS)
    return rank, unit.code


def tree_rows(directory: Mapping[int, UnitRef], opened: Collection[int]) -> list[TreeRow]:
    """Every unit under its parent (:func:`sibling_order`: a district's streets before its departments), depth first,
    but a street's communities only where it is opened."""
    children: dict[int | None, list[UnitRef]] = defaultdict(list)
    for ref in sorted(directory.values(), key=sibling_order):
        children[ref.parent_id].append(ref)
    shown = frozenset(i for i in opened if i in directory and directory[i].tier == UnitTier.STREET)
    rows: list[TreeRow] = []

    def walk(ref: UnitRef, depth: int) -> None:
        kids = children.get(ref.id, [])
        if ref.tier == UnitTier.STREET:
            communities = [k for k in kids if k.tier == UnitTier.COMMUNITY]
            opened_here = ref.id in shown
            toggle = _toggle(ref.id, shown) if communities else ""
            rows.append(TreeRow(ref, depth, len(communities), opened_here, toggle))
            if not opened_here:
                kids = [k for k in kids if k.tier != UnitTier.COMMUNITY]
        else:
            rows.append(TreeRow(ref, depth))
        for kid in kids:
            walk(kid, depth + 1)

    for root in children.get(None, []):
        walk(root, 0)
    return rows


def unit_path(directory: Mapping[int, UnitRef], ref: UnitRef) -> list[UnitRef]:
    """The units above ``ref``, the top one first (白云区, 嘉禾街道): a search's match names them, each a link to its
    page."""
    above: list[UnitRef] = []
    parent_id = ref.parent_id
    while parent_id is not None and parent_id in directory and len(above) < len(directory):
        parent = directory[parent_id]
        above.append(parent)
        parent_id = parent.parent_id
    return above[::-1]


def _list_page(
    request: Request,
    db: Session,
    principal: Principal,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    params = request.query_params
    q = params.get("q", "").strip()
    directory = org.unit_directory(db)
    sub_units: dict[int, int] = defaultdict(int)
    for ref in directory.values():
        if ref.parent_id is not None:
            sub_units[ref.parent_id] += 1
    people = dict(
        db.execute(select(User.unit_id, func.count()).where(User.active.is_(True)).group_by(User.unit_id)).all()
    )
    found: list[UnitRef] = []
    paths: dict[int, list[UnitRef]] = {}
    total = page = 0
    rows: list[TreeRow] = []
    if q:
        ids = org.units_query(q=q).with_only_columns(Unit.id)
        total = db.scalar(select(func.count()).select_from(ids.order_by(None).subquery())) or 0
        # A page past the last (an old link, a typed number) is the last.
        page = min(max(1, forms.whole_number(params.get("page")) or 1), max(1, -(-total // PAGE_SIZE)))
        found = [directory[i] for i in db.scalars(ids.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))]
        paths = {ref.id: unit_path(directory, ref) for ref in found}
    else:
        opened = {n for n in map(forms.whole_number, params.getlist("open")) if n is not None}
        rows = tree_rows(directory, opened)
    return render(
        request,
        "units.html",
        principal=principal,
        status_code=status_code,
        q=q,
        rows=rows,
        found=found,
        paths=paths,
        total=total,
        page=page,
        has_more=page * PAGE_SIZE < total,
        sub_units=sub_units,
        people=people,
        tiers=list(UnitTier),
        parents=sorted((u for u in directory.values() if u.tier != UnitTier.COMMUNITY), key=sibling_order),
        values=values or {"active": "1", "tier": UnitTier.COMMUNITY.value},
        errors=errors or {},
    )


def _unit_page(
    request: Request,
    db: Session,
    principal: Principal,
    unit: Unit,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    alias_values: dict[str, str] | None = None,
    alias_errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    keeps_aliases = unit.tier in place_aliases.ALIAS_TIERS
    return render(
        request,
        "unit.html",
        keeps_aliases=keeps_aliases,
        aliases=place_aliases.list_aliases(db, unit_id=unit.id) if keeps_aliases else [],
        alias_kinds=list(AliasKind),
        alias_values=alias_values or {"kind": AliasKind.LANDMARK.value},
        alias_errors=alias_errors or {},
        principal=principal,
        status_code=status_code,
        unit=unit,
        parent=db.get(Unit, unit.parent_id) if unit.parent_id else None,
        sub_units=sorted(db.scalars(select(Unit).where(Unit.parent_id == unit.id)), key=sibling_order),
        staff=list(db.scalars(select(User).where(User.unit_id == unit.id).order_by(User.username))),
        tiers=list(UnitTier),
        parents=sorted(db.scalars(select(Unit).where(Unit.tier != UnitTier.COMMUNITY)), key=sibling_order),
        values=values or _values(unit),
        errors=errors or {},
    )


@router.get("/admin/units", response_class=HTMLResponse)
def units_page(request: Request, db: DbSession) -> Response:
    """The unit tree, each unit with its people, a street's communities folded under it (``?open=<street id>``);
    ``?q=`` the units with that text in their name, short name or code instead; a form to add a unit."""
    return _list_page(request, db, _admin(request, db))


@router.post("/admin/units", response_class=HTMLResponse)
def create_unit(request: Request, db: DbSession, form: FormBody) -> Response:
    principal = _admin(request, db, form)
    t = support.translator(request)
    unit, errors = saved(
        db,
        t,
        lambda: org.create_unit(db, data=UnitCreate.model_validate(_payload(form, new=True)), actor=principal.actor),
        _checks(db, form),
    )
    if unit is None:
        return _list_page(request, db, principal, values=form.values(UNIT_FIELDS), errors=errors, status_code=422)
    return support.redirect(f"/admin/units/{unit.id}", flash=("units.created", {"name": unit.name}))


def _unit(db: Session, unit_id: int) -> Unit:
    """The unit a page's address names; the 404 page when there is none."""
    unit = db.get(Unit, unit_id)
    if unit is None:
        raise PageError(404, "err.page_not_found")
    return unit


@router.get("/admin/units/{unit_id:int}", response_class=HTMLResponse)
def unit_page(request: Request, db: DbSession, unit_id: int) -> Response:
    principal = _admin(request, db)
    unit = _unit(db, unit_id)
    return _unit_page(request, db, principal, unit)


@router.post("/admin/units/{unit_id:int}", response_class=HTMLResponse)
def update_unit(request: Request, db: DbSession, unit_id: int, form: FormBody) -> Response:
    principal = _admin(request, db, form)
    t = support.translator(request)
    unit = _unit(db, unit_id)
    try:
        org.update_unit(
            db, unit_id=unit_id, data=UnitUpdate.model_validate(_payload(form, new=False)), actor=principal.actor
        )
        db.commit()
    except (ValidationError, CityhubError) as exc:
        db.rollback()
        unit = _unit(db, unit_id)
        values = {**form.values(UNIT_FIELDS), "code": unit.code}
        errors = forms.every_problem(field_errors(t, exc), _checks(db, form, unit_id=unit_id), partial(field_errors, t))
        return _unit_page(request, db, principal, unit, values=values, errors=errors, status_code=422)
    return support.redirect(f"/admin/units/{unit_id}", flash=("units.updated", {"name": unit.name}))


# --- place aliases (地名别名) ------------------------------------------------------------------------------------

ALIAS_FIELDS = ("alias", "kind", "also_ambiguous")
# Why the service refuses an alias (``details.reason``) → what the page says.
ALIAS_REASONS = {
    "short": "aliases.err_short",
    "long": "aliases.err_long",
    "number": "aliases.err_number",
    "taken": "aliases.err_taken",
    "own_name": "aliases.err_own_name",
    "ambiguous": "aliases.err_ambiguous",
    "kind": "aliases.err_kind",
    "tier": "aliases.err_tier",
}


def holder_names(t: Any, holders: Sequence[Sequence[str]], units: Sequence[str] = ()) -> str:
    """The units a place alias names already, each with its code in the reader's language's brackets (景泰街道（W-JT）,
    not the command line's ``景泰街道 (W-JT)`` inside Chinese); ``units``, as the service words them, without
    ``holders``."""
    if holders:
        return t.sep.join(f"{name}{t.lp}{code}{t.rp}" for name, code in holders)
    return t.sep.join(units)


def _alias_errors(t: Any, exc: CityhubError) -> dict[str, str]:
    key = ALIAS_REASONS.get(str(exc.details.get("reason")))
    if key is None:
        return field_errors(t, exc)
    units = holder_names(t, exc.details.get("holders") or (), exc.details.get("units") or ())
    return {str(exc.details.get("field", "_form")): t(key, units=units)}


@router.post("/admin/units/{unit_id:int}/aliases", response_class=HTMLResponse)
def add_alias(request: Request, db: DbSession, unit_id: int, form: FormBody) -> Response:
    """Add a place alias to a street or community; refused, the page again with the reason at the field."""
    principal = _admin(request, db, form)
    t = support.translator(request)
    unit = _unit(db, unit_id)
    try:
        row = place_aliases.add_alias(
            db,
            alias=form.get("alias"),
            unit_id=unit_id,
            kind=form.get("kind"),
            also_ambiguous=form.get("also_ambiguous") == "1",
            actor=principal.actor,
        )
        alias = row.alias
        db.commit()
    except CityhubError as exc:
        db.rollback()
        unit = _unit(db, unit_id)
        return _unit_page(
            request,
            db,
            principal,
            unit,
            alias_values=form.values(ALIAS_FIELDS),
            alias_errors=_alias_errors(t, exc),
            status_code=422,
        )
    return support.redirect(f"/admin/units/{unit_id}#aliases", flash=("units.alias_added", {"alias": alias}))


@router.post("/admin/units/{unit_id:int}/aliases/{alias_id:int}/delete", response_class=HTMLResponse)
def remove_alias(request: Request, db: DbSession, unit_id: int, alias_id: int, form: FormBody) -> Response:
    principal = _admin(request, db, form)
    row = None

    def remove() -> None:
        nonlocal row
        row = place_aliases.remove_alias(db, alias_id=alias_id, unit_id=unit_id, actor=principal.actor)

    removed(db, remove)
    assert row is not None
    return support.redirect(f"/admin/units/{unit_id}#aliases", flash=("units.alias_removed", {"alias": row.alias}))
