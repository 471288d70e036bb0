"""Units and people: administrative-division import, the Baiyun demo organisation, unit and user CRUD."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import EllipsisType
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from cityhub import auditlog, refdata
from cityhub.db import contains_text
from cityhub.errors import Conflict, NotFound, ValidationFailed, refuse_nulls
from cityhub.org.models import Role, Unit, UnitTier, User
from cityhub.org.placenames import derive_short_name
from cityhub.org.schemas import (
    NAME_EN_MAX,
    USERNAME_PATTERN,
    DivisionImportReport,
    UnitCreate,
    UnitUpdate,
    UserCreate,
    check_boundary,
)
from cityhub.textfiles import csv_records, read_text

DATA_DIR = Path(__file__).parent / "data"
BAIYUN_DIVISIONS = DATA_DIR / "baiyun_divisions.csv"
BAIYUN_CODE = "440111"

# Level words used by division files (English as in NBS extracts, Chinese as people write them).
LEVEL_TIERS: dict[str, UnitTier] = {
    "city": UnitTier.CITY,
    "prefecture": UnitTier.CITY,
    "市": UnitTier.CITY,
    "district": UnitTier.DISTRICT,
    "county": UnitTier.DISTRICT,
    "area": UnitTier.DISTRICT,
    "区": UnitTier.DISTRICT,
    "县": UnitTier.DISTRICT,
    "区县": UnitTier.DISTRICT,
    "street": UnitTier.STREET,
    "town": UnitTier.STREET,
    "township": UnitTier.STREET,
    "subdistrict": UnitTier.STREET,
    "街道": UnitTier.STREET,
    "镇": UnitTier.STREET,
    "乡": UnitTier.STREET,
    "镇街": UnitTier.STREET,
    "community": UnitTier.COMMUNITY,
    "village": UnitTier.COMMUNITY,
    "社区": UnitTier.COMMUNITY,
    "村": UnitTier.COMMUNITY,
    "村社": UnitTier.COMMUNITY,
    "居委会": UnitTier.COMMUNITY,
    "村委会": UnitTier.COMMUNITY,
    "department": UnitTier.DEPARTMENT,
    "职能部门": UnitTier.DEPARTMENT,
    "subcentre": UnitTier.SUBCENTRE,
    "subcenter": UnitTier.SUBCENTRE,
    "分中心": UnitTier.SUBCENTRE,
}

# Administrative rank: a file's highest-ranked rows may hang under a parent outside the file.
TIER_RANK = {
    UnitTier.CITY: 0,
    UnitTier.DISTRICT: 1,
    UnitTier.DEPARTMENT: 2,
    UnitTier.SUBCENTRE: 2,
    UnitTier.STREET: 2,
    UnitTier.COMMUNITY: 3,
}

DIVISION_HEADERS = ("code", "name", "level", "parent_code")
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,32}$")


def tier_for_level(level: str) -> UnitTier | None:
    """Map a division level word (district, street, 镇, village …) to a tier; None when unknown."""
    return LEVEL_TIERS.get(level.strip().lower())


# --- CSV reading, shared with the category taxonomy import -------------------------------------------------


@dataclass(frozen=True)
class CsvTable:
    headers: list[str]
    # (row number counting the header as row 1, values by normalised header): a key for each of the file's columns,
    # none for a column it does not have (:func:`given_cells`)
    rows: list[tuple[int, dict[str, str]]]
    # (row number, field, reason) of the rows that cannot be read as the header's cells — a value beyond the
    # header's columns (an unquoted comma in a name shifts the row), a quoted field not closed before the end of
    # the file — for each import to reject (:meth:`reject_unread`); they are not in ``rows``.
    unread: list[tuple[int, str, str]] = dataclasses.field(default_factory=list)

    def reject_unread(self, reject: Callable[[int, str, str], None]) -> int:
        """Pass each of ``unread`` to an import report's ``reject(row, field, reason)``; how many there were."""
        for number, column, reason in self.unread:
            reject(number, column, reason)
        return len(self.unread)


def given_cells(values: Mapping[str, str], columns: Iterable[str]) -> dict[str, str]:
    """Of ``columns``, the cells a row of a table (:class:`CsvTable`) has, by column: a column the file does not have
    is not among them, where an empty cell of one it has is ``""``. What an import that updates the records it knows
    sets of them: the fields of the columns the file lacks stay as they are — a partial file loses nothing — while an
    empty cell says the field is empty."""
    return {column: values[column] for column in columns if column in values}


# The words a table's yes/no cell may hold (a sensor's ``active``, a knowledge entry's ``public``), either way.
YES_WORDS = ("1", "true", "yes", "y", "是", "启用")
NO_WORDS = ("0", "false", "no", "n", "否", "停用")


def yes_or_no(text: str, *, blank: bool) -> bool:
    """A table's yes/no cell (是/否, 1/0, true/false, in any case); an empty one is ``blank``. ValueError otherwise."""
    value = text.strip().lower()
    if not value:
        return blank
    if value in YES_WORDS:
        return True
    if value in NO_WORDS:
        return False
    raise ValueError(f"not a yes/no value: {text!r} (是/否, 1/0, true/false)")


def _beyond_header(values: Sequence[str], headers: Sequence[str]) -> str | None:
    """Why a row with values beyond the header's columns is refused (the order import's words), else None."""
    filled = max((i + 1 for i, v in enumerate(values) if v.strip()), default=0)
    return f"row has {filled} cells, the header has {len(headers)}" if filled > len(headers) else None


def _refuse_repeated(headers: Sequence[str], path: Path) -> None:
    from cityhub.intake.importer import repeated_header

    if (repeated := repeated_header(headers)) is not None:
        raise ValidationFailed(f"{path}: the header row: {repeated}")


def read_csv_table(path: Path) -> CsvTable:
    """Read a CSV file (UTF-8 with or without BOM, or GB18030: ``cityhub.textfiles``) with normalised headers."""
    text = read_text(path)
    records = csv_records(io.StringIO(text, newline=""))
    try:
        header_row, problem = next(records)
    except StopIteration:
        raise ValidationFailed(f"{path} is empty") from None
    except csv.Error as exc:
        raise ValidationFailed(f"{path} is not valid CSV: {exc}") from None
    if problem is not None:
        raise ValidationFailed(f"{path}: the header row: {problem}")
    headers = [h.strip().lower() for h in header_row]
    _refuse_repeated(headers, path)
    rows: list[tuple[int, dict[str, str]]] = []
    unread: list[tuple[int, str, str]] = []
    try:
        for index, (values, problem) in enumerate(records, start=2):
            if problem is not None:
                unread.append((index, "quote", problem))
            elif (beyond := _beyond_header(values, headers)) is not None:
                unread.append((index, "cells", beyond))
            elif any(v.strip() for v in values):
                rows.append((index, {h: (values[i].strip() if i < len(values) else "") for i, h in enumerate(headers)}))
    except csv.Error as exc:
        raise ValidationFailed(f"{path} is not valid CSV: {exc}") from None
    return CsvTable(headers=headers, rows=rows, unread=unread)


def read_table(path: Path) -> CsvTable:
    """:func:`read_csv_table`, or the first sheet of an Excel/ODS workbook read as the order import reads it
    (``cityhub.intake.importer.open_table``): headers and cells as text, rows numbered as the sheet shows them."""
    from cityhub.intake.importer import cell_text, is_workbook, normalize_header, open_table

    if not is_workbook(path):
        return read_csv_table(path)
    with open_table(path) as table:
        headers = [normalize_header(h) for h in table.header]
        _refuse_repeated(headers, path)
        rows: list[tuple[int, dict[str, str]]] = []
        unread: list[tuple[int, str, str]] = []
        for number, cells in table.rows():
            values = [cell_text(c) for c in cells]
            if (beyond := _beyond_header(values, headers)) is not None:
                unread.append((number, "cells", beyond))
            elif any(values):
                rows.append((number, {h: values[i] if i < len(values) else "" for i, h in enumerate(headers)}))
    return CsvTable(headers=headers, rows=rows, unread=unread)


def require_headers(table: CsvTable, required: Sequence[str], *, path: Path) -> None:
    missing = [h for h in required if h not in table.headers]
    if missing:
        raise ValidationFailed(
            f"{path}: wrong headers (missing {', '.join(missing)}; expected {','.join(required)})",
            details={"missing": missing, "found": table.headers},
        )


# --- Division import ---------------------------------------------------------------------------------------


@dataclass
class _DivisionRow:
    row: int
    code: str
    name: str
    tier: UnitTier
    parent_code: str
    # The English name the file gives (its optional name_en column; empty: none), ``...`` when it has no such column.
    name_en: str | EllipsisType | None = ...


def import_divisions(session: Session, *, path: Path, root_code: str | None = None) -> DivisionImportReport:
    """Upsert the units of a table ``code,name,level,parent_code`` (CSV or Excel, :func:`read_table`); bad rows are
    reported and skipped."""
    table = read_table(path)
    require_headers(table, DIVISION_HEADERS, path=path)
    report = import_division_rows(session, rows=table.rows, root_code=root_code)
    report.rows += table.reject_unread(report.reject)
    return report


def import_division_rows(
    session: Session, *, rows: Iterable[tuple[int, dict[str, str]]], root_code: str | None = None
) -> DivisionImportReport:
    """Upsert division rows (row number, {code, name, level, parent_code}); see :func:`import_divisions`."""
    report = DivisionImportReport()
    parsed: dict[str, _DivisionRow] = {}
    for number, values in rows:
        report.rows += 1
        item = _parse_division_row(number, values, report)
        if item is None:
            continue
        if item.code in parsed:
            report.reject(number, "code", f"duplicate code {item.code} (first on row {parsed[item.code].row})")
            continue
        parsed[item.code] = item

    existing = {unit.code: unit for unit in session.scalars(select(Unit))}
    code_of = {unit.id: unit.code for unit in existing.values()}
    existing_parent = {
        unit.code: (code_of.get(unit.parent_id, "") if unit.parent_id is not None else "") for unit in existing.values()
    }

    if root_code:
        if root_code not in parsed and root_code not in existing:
            raise ValidationFailed(f"root code {root_code} is neither in the file nor in the database")
        in_scope = {code for code in parsed if _under_root(code, root_code, parsed, existing_parent)}
        report.outside_root = len(parsed) - len(in_scope)
        parsed = {code: item for code, item in parsed.items() if code in in_scope}

    top_rank = min((TIER_RANK[item.tier] for item in parsed.values()), default=0)
    depth: dict[str, int] = {}
    failed: set[str] = set()
    for code in parsed:
        _resolve(code, parsed, existing, top_rank, root_code, depth, failed, report)

    accepted = sorted((c for c in parsed if c in depth), key=lambda c: (depth[c], parsed[c].row))
    current_depth = -1
    for code in accepted:
        if depth[code] != current_depth:
            # Parents of this depth got their ids in the previous flush.
            session.flush()
            current_depth = depth[code]
        _upsert_division(session, parsed[code], existing, report)
        report.by_tier[parsed[code].tier.value] = report.by_tier.get(parsed[code].tier.value, 0) + 1
    session.flush()
    report.rejected.sort(key=lambda e: e.row)
    return report


def _parse_division_row(number: int, values: dict[str, str], report: DivisionImportReport) -> _DivisionRow | None:
    code, name = values.get("code", ""), values.get("name", "")
    level, parent_code = values.get("level", ""), values.get("parent_code", "")
    if not code:
        report.reject(number, "code", "empty code")
        return None
    if not CODE_PATTERN.match(code):
        report.reject(number, "code", f"invalid code {code!r} (letters, digits, '.', '_', '-'; at most 32)")
        return None
    if not name:
        report.reject(number, "name", "empty name")
        return None
    if len(name) > 120:
        report.reject(number, "name", "name longer than 120 characters")
        return None
    tier = tier_for_level(level)
    if tier is None:
        reason = "empty level" if not level else f"unknown level {level!r}"
        report.reject(number, "level", f"{reason} (known: {', '.join(sorted(k for k in LEVEL_TIERS if k.isascii()))})")
        return None
    if parent_code == code:
        report.reject(number, "parent_code", "a unit cannot be its own parent")
        return None
    name_en: str | EllipsisType | None = ...
    if "name_en" in values:
        name_en = values["name_en"].strip() or None
        if name_en is not None and len(name_en) > NAME_EN_MAX:
            report.reject(number, "name_en", f"name_en longer than {NAME_EN_MAX} characters")
            return None
    return _DivisionRow(row=number, code=code, name=name, tier=tier, parent_code=parent_code, name_en=name_en)


def _under_root(code: str, root: str, parsed: dict[str, _DivisionRow], existing_parent: dict[str, str]) -> bool:
    seen: set[str] = set()
    current = code
    while current and current not in seen:
        if current == root:
            return True
        seen.add(current)
        item = parsed.get(current)
        current = item.parent_code if item is not None else existing_parent.get(current, "")
    # A broken chain inside the root's code space is still the root's business: report it, do not hide it.
    return code.startswith(root)


def _resolve(
    code: str,
    parsed: dict[str, _DivisionRow],
    existing: dict[str, Unit],
    top_rank: int,
    root_code: str | None,
    depth: dict[str, int],
    failed: set[str],
    report: DivisionImportReport,
) -> None:
    """Give ``code`` a depth (parents first) or reject it; iterative so that deep chains cannot recurse."""
    chain: list[str] = []
    current = code
    while current in parsed and current not in depth and current not in failed:
        if current in chain:
            for member in chain[chain.index(current) :]:
                failed.add(member)
                report.reject(parsed[member].row, "parent_code", "parent chain forms a cycle")
            chain = chain[: chain.index(current)]
            break
        chain.append(current)
        parent = parsed[current].parent_code
        if not parent or parent not in parsed:
            break
        current = parent
    for member in reversed(chain):
        if member in failed:
            continue
        item = parsed[member]
        parent = item.parent_code
        if not parent:
            depth[member] = 0
        elif parent in parsed:
            if parent in failed:
                failed.add(member)
                report.reject(item.row, "parent_code", f"parent {parent} was rejected (row {parsed[parent].row})")
            else:
                depth[member] = depth[parent] + 1
        elif parent in existing:
            depth[member] = 0
        elif TIER_RANK[item.tier] == top_rank or member == root_code:
            # The file's top rows (e.g. districts under a city the file does not list) become top-level units.
            depth[member] = 0
            report.roots.append(member)
        else:
            failed.add(member)
            report.reject(item.row, "parent_code", f"parent {parent} is neither in the file nor in the database")


def _upsert_division(
    session: Session, item: _DivisionRow, existing: dict[str, Unit], report: DivisionImportReport
) -> None:
    parent_id: int | None = None
    parent_known = False
    if item.parent_code:
        parent = existing.get(item.parent_code)
        if parent is not None:
            parent_id = parent.id
            parent_known = True
    else:
        parent_known = True
    unit = existing.get(item.code)
    if unit is None:
        unit = Unit(
            code=item.code,
            name=item.name,
            short_name=derive_short_name(item.name),
            name_en=None if isinstance(item.name_en, EllipsisType) else item.name_en,
            tier=item.tier,
            parent_id=parent_id,
        )
        session.add(unit)
        existing[item.code] = unit
        report.created += 1
        return
    changed = False
    if unit.name != item.name:
        # Keep a short name an administrator chose; refresh one that was derived from the old name.
        if unit.short_name in (None, derive_short_name(unit.name)):
            unit.short_name = derive_short_name(item.name)
        unit.name = item.name
        changed = True
    if unit.short_name is None:
        unit.short_name = derive_short_name(item.name)
        changed = True
    if unit.tier != item.tier:
        unit.tier = item.tier
        changed = True
    if not isinstance(item.name_en, EllipsisType) and unit.name_en != item.name_en:
        unit.name_en = item.name_en
        changed = True
    # A parent outside the file must not detach a unit that already hangs somewhere.
    if parent_known and unit.parent_id != parent_id:
        unit.parent_id = parent_id
        changed = True
    if changed:
        report.updated += 1
    else:
        report.unchanged += 1


# --- Units -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitRef:
    """A unit as the request path consults it (no boundary, contacts or duties), shared by the process."""

    id: int
    code: str
    name: str
    tier: UnitTier
    parent_id: int | None
    active: bool


def unit_directory(session: Session) -> dict[int, UnitRef]:
    """Every unit by id, from the process's cache while the units table is unchanged (:mod:`cityhub.refdata`)."""

    def build(s: Session) -> dict[int, UnitRef]:
        rows = s.execute(select(Unit.id, Unit.code, Unit.name, Unit.tier, Unit.parent_id, Unit.active))
        return {row.id: UnitRef(*row) for row in rows}

    return refdata.cached(session, "org.units", ("units",), build)


def unit_ids_by_code(session: Session) -> dict[str, int]:
    """Every unit's id by its code, from the process's cache while the units table is unchanged."""

    def build(s: Session) -> dict[str, int]:
        return {code: unit_id for code, unit_id in s.execute(select(Unit.code, Unit.id))}

    return refdata.cached(session, "org.unit_codes", ("units",), build)


def get_unit(session: Session, *, unit_id: int) -> Unit | None:
    """Return the unit with this id."""
    return session.get(Unit, unit_id)


def get_unit_by_code(session: Session, *, code: str) -> Unit | None:
    """Return the unit with this code."""
    return session.scalars(select(Unit).where(Unit.code == code)).one_or_none()


def list_units(
    session: Session,
    *,
    tier: UnitTier | str | None = None,
    parent_id: int | None = None,
    q: str | None = None,
    active: bool | None = None,
    limit: int | None = None,
) -> list[Unit]:
    """List units by code, filtered by tier, parent, activity and a text in code, name or short name."""
    stmt = units_query(tier=tier, parent_id=parent_id, q=q, active=active)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(session.scalars(stmt))


def units_query(
    *,
    tier: UnitTier | str | None = None,
    parent_id: int | None = None,
    q: str | None = None,
    active: bool | None = None,
) -> Select[Unit]:
    """The query of :func:`list_units`: by code (unique), filtered, for a caller that pages it."""
    stmt = select(Unit).order_by(Unit.code)
    if tier is not None:
        stmt = stmt.where(Unit.tier == UnitTier(tier))
    if parent_id is not None:
        stmt = stmt.where(Unit.parent_id == parent_id)
    if active is not None:
        stmt = stmt.where(Unit.active.is_(active))
    if q:
        text = q.strip()
        stmt = stmt.where(or_(*(contains_text(c, text) for c in (Unit.name, Unit.short_name, Unit.code))))
    return stmt


def unit_subtree_ids(session: Session, *, unit_id: int) -> set[int]:
    """Return the ids of the unit and of every unit below it."""
    if session.get(Unit, unit_id) is None:
        raise NotFound(f"unit {unit_id} not found")
    tree = select(Unit.id).where(Unit.id == unit_id).cte("subtree", recursive=True)
    tree = tree.union_all(select(Unit.id).where(Unit.parent_id == tree.c.id))
    return set(session.scalars(select(tree.c.id)))


# The tiers a unit of each tier may sit under (None: at the top). A street office (镇街) is a district's, or a
# city's where there are no districts (东莞, 中山); a community (村社) is always a street's: what a unit's staff see
# and where orders are placed follow from it (auth.scope).
PARENT_TIERS: dict[UnitTier, frozenset[UnitTier | None]] = {
    UnitTier.CITY: frozenset({None}),
    UnitTier.DISTRICT: frozenset({None, UnitTier.CITY}),
    UnitTier.STREET: frozenset({None, UnitTier.CITY, UnitTier.DISTRICT}),
    UnitTier.COMMUNITY: frozenset({UnitTier.STREET}),
    UnitTier.DEPARTMENT: frozenset({None, UnitTier.CITY, UnitTier.DISTRICT, UnitTier.DEPARTMENT}),
    UnitTier.SUBCENTRE: frozenset({None, UnitTier.CITY, UnitTier.DISTRICT, UnitTier.STREET, UnitTier.DEPARTMENT}),
}


def check_code_free(session: Session, *, code: str) -> None:
    """Refuse a new unit's code another unit has (Conflict at the field ``code``)."""
    if get_unit_by_code(session, code=code) is not None:
        raise Conflict(f"unit code {code} already exists", details={"field": "code"})


def check_placement(session: Session, *, tier: UnitTier, parent_id: int | None, unit_id: int | None = None) -> None:
    """Refuse a parent that is not there (or, for ``unit_id``, under the unit itself) and a tier that does not fit
    under it: what :func:`create_unit` checks of a unit's place in the tree, for a form to say with its other
    problems."""
    _check_parent(session, parent_id=parent_id, unit_id=unit_id)
    _check_tier(session, tier=tier, parent_id=parent_id, unit_id=unit_id)


def _check_parent(session: Session, *, parent_id: int | None, unit_id: int | None = None) -> None:
    if parent_id is None:
        return
    if session.get(Unit, parent_id) is None:
        raise ValidationFailed(f"parent unit {parent_id} not found", details={"field": "parent_id"})
    if unit_id is not None and parent_id in unit_subtree_ids(session, unit_id=unit_id):
        raise ValidationFailed(
            "a unit cannot be moved under itself or its own sub-units", details={"field": "parent_id"}
        )


def _check_tier(session: Session, *, tier: UnitTier, parent_id: int | None, unit_id: int | None = None) -> None:
    """Refuse a tier that does not fit the unit's place in the tree: under its parent (a district under a street,
    a community with no street) or above its sub-units (a street made a department while communities sit under it)."""
    parent = session.get(Unit, parent_id) if parent_id is not None else None
    parent_tier = UnitTier(parent.tier) if parent is not None else None
    if parent_tier not in PARENT_TIERS[UnitTier(tier)]:
        where = f"under a {parent_tier.value}" if parent_tier is not None else "without a parent unit"
        raise ValidationFailed(f"a {UnitTier(tier).value} cannot sit {where}", details={"field": "tier"})
    if unit_id is None:
        return
    for child_tier in session.scalars(select(Unit.tier).where(Unit.parent_id == unit_id).distinct()):
        if UnitTier(tier) not in PARENT_TIERS[UnitTier(child_tier)]:
            raise ValidationFailed(
                f"a {UnitTier(tier).value} cannot hold the {UnitTier(child_tier).value} units under it",
                details={"field": "tier"},
            )


def _valid_boundary(boundary: dict[str, Any] | None) -> dict[str, Any] | None:
    if boundary is None:
        return None
    try:
        return check_boundary(boundary)
    except ValueError as exc:
        raise ValidationFailed(str(exc), details={"field": "boundary"}) from None


def _unit_facts(unit: Unit) -> dict[str, Any]:
    """What the configuration log (cityhub.auditlog) keeps of a unit: its settings, and whether it has a boundary."""
    facts = auditlog.snapshot(
        unit, ("name", "short_name", "name_en", "tier", "parent_id", "duties", "active", "contacts")
    )
    return {**facts, "has_boundary": unit.boundary is not None}


def create_unit(session: Session, *, data: UnitCreate, actor: Any = None) -> Unit:
    """Create a unit; the short name is derived from the name when not given."""
    check_code_free(session, code=data.code)
    check_placement(session, tier=data.tier, parent_id=data.parent_id)
    unit = Unit(
        code=data.code,
        name=data.name,
        short_name=data.short_name or derive_short_name(data.name),
        name_en=(data.name_en or "").strip() or None,
        tier=data.tier,
        parent_id=data.parent_id,
        boundary=_valid_boundary(data.boundary),
        contacts=[c.model_dump(exclude_none=True) for c in data.contacts] if data.contacts is not None else None,
        duties=data.duties,
        active=data.active,
    )
    session.add(unit)
    session.flush()
    auditlog.record(session, actor=actor, area="unit", target=unit.code, action="create", after=_unit_facts(unit))
    return unit


def update_unit(session: Session, *, unit_id: int, data: UnitUpdate, actor: Any = None) -> Unit:
    """Change the fields set in ``data``; moving a unit under its own subtree is refused."""
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise NotFound(f"unit {unit_id} not found")
    before = _unit_facts(unit)
    changes = data.model_dump(exclude_unset=True)
    if "parent_id" in changes:
        _check_parent(session, parent_id=changes["parent_id"], unit_id=unit_id)
        unit.parent_id = changes["parent_id"]
    if "boundary" in changes:
        unit.boundary = _valid_boundary(changes["boundary"])
    if "contacts" in changes:
        unit.contacts = [c.model_dump(exclude_none=True) for c in data.contacts] if data.contacts is not None else None
    refuse_nulls(changes, ("name", "tier", "active"))
    if "name_en" in changes:
        unit.name_en = (changes["name_en"] or "").strip() or None
    for field in ("name", "short_name", "tier", "duties", "active"):
        if field in changes:
            setattr(unit, field, changes[field])
    if "tier" in changes or "parent_id" in changes:
        _check_tier(session, tier=UnitTier(unit.tier), parent_id=unit.parent_id, unit_id=unit.id)
    session.flush()
    auditlog.record(
        session, actor=actor, area="unit", target=unit.code, action="update", before=before, after=_unit_facts(unit)
    )
    return unit


# --- Users -------------------------------------------------------------------------------------------------

# Roles whose work happens inside a unit; citizens belong to none.
UNIT_ROLES = frozenset({Role.OPERATOR, Role.DISPATCHER, Role.HANDLER, Role.INSPECTOR, Role.SUPERVISOR, Role.LEADER})


def username_alike(session: Session, username: str) -> str | None:
    """The login name an account holds that is ``username`` but for letter case, if any. Logins match a name exactly:
    "Admin" beside "admin" would be a second account people take for the first, so :func:`create_user` refuses it."""
    return session.scalars(select(User.username).where(func.lower(User.username) == username.lower())).first()


def check_unit_for_role(session: Session, *, role: Role, unit_id: int | None) -> None:
    """Refuse an account's unit that does not go with its role: staff need one (that is there), citizens have none."""
    if role == Role.CITIZEN and unit_id is not None:
        raise ValidationFailed("a citizen belongs to no unit", details={"field": "unit_id"})
    if role in UNIT_ROLES and unit_id is None:
        raise ValidationFailed(f"a {role.value} needs a unit", details={"field": "unit_id"})
    if unit_id is not None and session.get(Unit, unit_id) is None:
        raise ValidationFailed(f"unit {unit_id} not found", details={"field": "unit_id"})


def create_user(session: Session, *, data: UserCreate) -> User:
    """Create a user (no password yet); staff need a unit, citizens have none."""
    if not USERNAME_PATTERN.match(data.username):
        raise ValidationFailed(f"invalid username {data.username!r}", details={"field": "username"})
    if get_user_by_username(session, username=data.username) is not None:
        raise Conflict(f"username {data.username} already exists")
    if (alike := username_alike(session, data.username)) is not None:
        raise Conflict(f"username {data.username} already exists as {alike} (names differing only in case are one)")
    check_unit_for_role(session, role=data.role, unit_id=data.unit_id)
    user = User(
        username=data.username,
        full_name=data.full_name,
        role=data.role,
        unit_id=data.unit_id,
        phone=data.phone,
        email=data.email,
        active=data.active,
    )
    session.add(user)
    session.flush()
    return user


def get_user_by_username(session: Session, *, username: str) -> User | None:
    """Return the user with this username."""
    return session.scalars(select(User).where(User.username == username)).one_or_none()


def list_users(
    session: Session,
    *,
    role: Role | str | None = None,
    unit_id: int | None = None,
    q: str | None = None,
) -> list[User]:
    """List users by username, filtered by role, unit and a text in username or full name."""
    stmt = select(User).order_by(User.username)
    if role is not None:
        stmt = stmt.where(User.role == Role(role))
    if unit_id is not None:
        stmt = stmt.where(User.unit_id == unit_id)
    if q:
        text = q.strip()
        stmt = stmt.where(or_(contains_text(User.username, text), contains_text(User.full_name, text)))
    return list(session.scalars(stmt))


# --- The Baiyun demo organisation --------------------------------------------------------------------------


BAIYUN_UNITS = DATA_DIR / "baiyun_units.csv"
BAIYUN_USERS = DATA_DIR / "baiyun_users.csv"


def seed_baiyun(session: Session, *, users: bool = True) -> None:
    """Create 白云区: streets, communities, departments, the 12345 sub-centre and, with ``users``, the demo's user
    accounts (one per role, one handler per department and street; no passwords) (idempotent)."""
    report = import_divisions(session, path=BAIYUN_DIVISIONS)
    if report.rejected:
        raise ValidationFailed(f"bundled Baiyun divisions are invalid: {report.rejected[0]}")
    district = get_unit_by_code(session, code=BAIYUN_CODE)
    if district is None:
        raise ValidationFailed(f"bundled Baiyun divisions lack the district {BAIYUN_CODE}")

    units = read_csv_table(BAIYUN_UNITS)
    # Existing units are left as they are: an administrator may have edited duties or contacts since — but one
    # without an English name (seeded before there were any) gets the file's.
    for _, values in units.rows:
        found = get_unit_by_code(session, code=values["code"])
        if found is not None and found.name_en is None:
            found.name_en = values.get("name_en") or None
        if found is None:
            contact = {
                "name": values["contact_name"],
                "phone": values["contact_phone"],
                "email": values["contact_email"],
            }
            session.add(
                Unit(
                    code=values["code"],
                    name=values["name"],
                    short_name=values["short_name"] or derive_short_name(values["name"]),
                    name_en=values.get("name_en") or None,
                    tier=UnitTier(values["tier"]),
                    parent_id=district.id,
                    duties=values["duties"] or None,
                    contacts=[{k: v for k, v in contact.items() if v}],
                )
            )
    session.flush()
    if not users:
        return

    wanted: list[UserCreate] = []
    for _, values in read_csv_table(BAIYUN_USERS).rows:
        unit = get_unit_by_code(session, code=values["unit_code"]) if values["unit_code"] else None
        wanted.append(
            UserCreate(
                username=values["username"],
                full_name=values["full_name"],
                role=Role(values["role"]),
                unit_id=unit.id if unit is not None else None,
            )
        )
    # One handler account per department and per street, so every unit that receives orders can act on them.
    for unit in list_units(session, tier=UnitTier.DEPARTMENT) + list_units(
        session, tier=UnitTier.STREET, parent_id=district.id
    ):
        wanted.append(
            UserCreate(
                username=f"h{unit.code.lower()}",
                full_name=f"{unit.short_name or unit.name}承办人",
                role=Role.HANDLER,
                unit_id=unit.id,
            )
        )
    known = {u.username for u in session.scalars(select(User))}
    for user in wanted:
        if user.username not in known:
            create_user(session, data=user)
            known.add(user.username)
