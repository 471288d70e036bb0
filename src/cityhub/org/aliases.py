"""Place aliases (地名别名): the district's own address library.

The database's gazetteer (:mod:`cityhub.org.places`) knows its streets' and communities' official names and short
forms; appeals name landmarks, roads and old names instead ("石井大道88号", "大学城", "生物岛"). An administrator
(``units:manage``) gives each such name the street or community it lies in, and from then on the gazetteer reads it
as a name of that unit (an alias of a community names its street too): new orders naming it are placed at intake,
from their address or text, as by any other name. Orders received before are not placed again; those still
unplaced are looked at again by the ``place-orders`` job, which follows the address library's changes as it follows
the units'.

An alias is stored as the resolver matches names (``cityhub.nlp.address.normalise``: NFKC, simplified characters,
no whitespace). It may name one unit only — another unit's alias or official name refused — unless the
administrator adds it ``also_ambiguous``: it is then ambiguous between them, as the resolver reports any name two
units share. Every addition and removal is written to the configuration log (area ``unit``, the unit's code,
actions ``add_alias`` / ``remove_alias``).

The same calls serve ``cityhub org aliases``, ``/api/v1/units/{id}/aliases`` and the unit's page (组织机构).

A dispatcher teaches the library too, in the step that corrects an order's place (``dispatch.service.correct_place``):
the place mentions of the order's address and text that the gazetteer does not resolve (:func:`unknown_places`) are
offered, and those ticked are added to the unit chosen (:func:`add_from_order`), each with the order's number in its
log entry (``source_order``). Who may, and for which units, is the dispatch service's to decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub import auditlog
from cityhub.errors import CityhubError, Conflict, NotFound, ValidationFailed, check_text
from cityhub.org.models import AliasKind, Unit, UnitAlias, UnitTier
from cityhub.org.service import get_unit_by_code

if TYPE_CHECKING:
    from cityhub.nlp.address import Gazetteer

ALIAS_TIERS = (UnitTier.STREET, UnitTier.COMMUNITY)
MIN_CHARS = 2
MAX_CHARS = 60
IMPORT_HEADERS = ("alias", "unit_code")  # and optionally kind (default: other)
# A mention ending in one of these is taken for a road (石井大道, 新市路, 上步街); any other for a landmark.
ROAD_SUFFIXES = ("路", "大道", "街", "巷")
FROM_ORDER_MAX = 20  # the most aliases one place correction adds (and offers)


def normalise_alias(text: str) -> str:
    """An alias as stored and matched; ValidationFailed (field ``alias``) for one too short or too long."""
    from cityhub.nlp.address import normalise

    check_text(text, "alias")
    alias = normalise(text or "")
    if len(alias) < MIN_CHARS:
        raise ValidationFailed(
            f"alias {text!r} is too short: at least {MIN_CHARS} characters",
            details={"field": "alias", "reason": "short"},
        )
    if len(alias) > MAX_CHARS:
        raise ValidationFailed(
            f"alias is longer than {MAX_CHARS} characters", details={"field": "alias", "reason": "long"}
        )
    if alias.isdigit():
        raise ValidationFailed(
            f"alias {alias!r} is a number, not a place name", details={"field": "alias", "reason": "number"}
        )
    return alias


def alias_kind(value: str | AliasKind | None) -> AliasKind:
    """A kind as given (empty: other); ValidationFailed (field ``kind``) for an unknown one."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return AliasKind.OTHER
    try:
        return AliasKind(str(value).strip().lower())
    except ValueError:
        known = ", ".join(k.value for k in AliasKind)
        raise ValidationFailed(
            f"unknown kind {value!r} (one of {known})", details={"field": "kind", "reason": "kind"}
        ) from None


def _unit_for_alias(session: Session, *, unit_id: int | None = None, code: str | None = None) -> Unit:
    if unit_id is not None:
        unit = session.get(Unit, unit_id)
        if unit is None:
            raise NotFound(f"unit {unit_id} not found")
    else:
        code = (code or "").strip()
        if not code:
            raise ValidationFailed("unit_code is empty", details={"field": "unit_code", "reason": "no_unit"})
        unit = get_unit_by_code(session, code=code)
        if unit is None:
            raise NotFound(f"no unit with code {code}", details={"field": "unit_code", "reason": "no_unit"})
    if unit.tier not in ALIAS_TIERS:
        raise ValidationFailed(
            f"unit {unit.code} is a {UnitTier(unit.tier).value}: aliases name streets and communities only",
            details={"field": "unit_code", "reason": "tier"},
        )
    return unit


def _held(session: Session, alias: str, unit: Unit) -> UnitAlias | None:
    """``unit``'s alias ``alias`` (as stored), if it has it."""
    return session.scalars(select(UnitAlias).where(UnitAlias.alias == alias, UnitAlias.unit_id == unit.id)).first()


def _facts(alias: UnitAlias) -> dict[str, Any]:
    return {"alias": alias.alias, "kind": AliasKind(alias.kind).value}


def list_aliases(session: Session, *, unit_id: int | None = None) -> list[UnitAlias]:
    """The address library (of one unit), by alias then unit code."""
    stmt = select(UnitAlias).join(Unit).order_by(UnitAlias.alias, Unit.code)
    if unit_id is not None:
        stmt = stmt.where(UnitAlias.unit_id == unit_id)
    return list(session.scalars(stmt))


def _other_holders(session: Session, alias: str, unit: Unit, official: Gazetteer | None) -> list[tuple[str, str]]:
    """The units other than ``unit`` the alias already names, as (name, code): by an alias, or by a name of their own
    (in ``official``'s own names of the units, not its address library's)."""
    held = session.scalars(
        select(Unit).join(UnitAlias).where(UnitAlias.alias == alias, UnitAlias.unit_id != unit.id).order_by(Unit.code)
    )
    holders = {u.code: u.name for u in held}
    if official is not None:
        for code in official.units_named(alias, own=True):
            if code != unit.code:
                holders.setdefault(code, official.units[code].name)
    return [(name, code) for code, name in sorted(holders.items())]


def holder_text(holders: Sequence[tuple[str, str]]) -> list[str]:
    """Units as the command line and the API's ``units`` name them: ``景泰街道 (W-JT)``."""
    return [f"{name} ({code})" for name, code in holders]


def add_alias(
    session: Session,
    *,
    alias: str,
    unit_id: int | None = None,
    unit_code: str | None = None,
    kind: str | AliasKind | None = None,
    also_ambiguous: bool = False,
    actor: Any = None,
    source_order: str | None = None,
) -> UnitAlias:
    """Give a street or community (by id or code) a further name. Refused: a district, department or any other
    tier; an alias the unit has already (Conflict), or one naming another unit — its alias or its own name — unless
    ``also_ambiguous`` (Conflict, saying so). ``source_order``: the number of the order whose place correction taught
    it, kept in the log entry."""
    text = normalise_alias(alias)
    chosen = alias_kind(kind)
    unit = _unit_for_alias(session, unit_id=unit_id, code=unit_code)
    if _held(session, text, unit) is not None:
        raise Conflict(
            f"alias {text} already names {unit.name} ({unit.code})", details={"field": "alias", "reason": "taken"}
        )
    from cityhub.org.places import unit_gazetteer

    gaz = unit_gazetteer(session, own_names=True)
    if gaz is not None and unit.code in gaz.units_named(text, own=True):
        raise Conflict(
            f"{text} is already a name of {unit.name} ({unit.code})", details={"field": "alias", "reason": "own_name"}
        )
    holders = _other_holders(session, text, unit, gaz)
    others = holder_text(holders)
    if others and not also_ambiguous:
        raise Conflict(
            f"alias {text} already names {', '.join(others)}: add it also_ambiguous (--also-ambiguous) to make it "
            "ambiguous between them",
            # ``holders``: each unit's name and code apart, for a page to write them in its language's brackets
            details={"field": "alias", "reason": "ambiguous", "units": others, "holders": [list(h) for h in holders]},
        )
    row = UnitAlias(
        alias=text,
        unit_id=unit.id,
        kind=chosen,
        created_by=actor.name if actor is not None else "system",
        created_by_user_id=actor.user_id if actor is not None else None,
    )
    session.add(row)
    session.flush()
    auditlog.record(
        session,
        actor=actor,
        area="unit",
        target=unit.code,
        action="add_alias",
        after=_facts(row) | ({"source_order": source_order} if source_order else {}),
        reason=f"also names {', '.join(others)}" if others else None,
    )
    return row


def remove_alias(
    session: Session,
    *,
    alias: str | None = None,
    unit_code: str | None = None,
    alias_id: int | None = None,
    unit_id: int | None = None,
    actor: Any = None,
) -> UnitAlias:
    """Remove an alias: by id (of ``unit_id``, when given), or by its text (of ``unit_code``; without it, the text
    must name one unit only). Returns the row removed."""
    if alias_id is not None:
        row = session.get(UnitAlias, alias_id)
        if row is None or (unit_id is not None and row.unit_id != unit_id):
            raise NotFound(f"place alias {alias_id} not found")
    else:
        text = normalise_alias(alias or "")
        stmt = select(UnitAlias).join(Unit).where(UnitAlias.alias == text).order_by(Unit.code)
        if unit_code is not None:
            unit = _unit_for_alias(session, code=unit_code)
            stmt = stmt.where(UnitAlias.unit_id == unit.id)
        rows = list(session.scalars(stmt))
        if not rows:
            where = f" of {unit_code}" if unit_code is not None else ""
            raise NotFound(f"no alias {text}{where}", details={"field": "alias"})
        if len(rows) > 1:
            codes = ", ".join(r.unit.code for r in rows)
            raise ValidationFailed(
                f"alias {text} names {len(rows)} units ({codes}): say which unit", details={"field": "unit_code"}
            )
        row = rows[0]
    unit = row.unit
    facts = _facts(row)
    session.delete(row)
    session.flush()
    auditlog.record(session, actor=actor, area="unit", target=unit.code, action="remove_alias", before=facts)
    return row


# --- taught while correcting an order's place ---------------------------------------------------------------


def guess_kind(mention: str) -> AliasKind:
    """The kind of a place mention, by its suffix: a road (路, 大道, 街, 巷), else a landmark."""
    return AliasKind.ROAD if mention.endswith(ROAD_SUFFIXES) else AliasKind.LANDMARK


@dataclass(frozen=True)
class AliasCandidate:
    """A place an order names that the gazetteer does not know: offered as an alias of the unit a dispatcher
    places the order in."""

    alias: str
    kind: AliasKind


def unknown_places(session: Session, texts: Iterable[str | None]) -> list[AliasCandidate]:
    """The place mentions of ``texts`` (an order's address, title and content: ``analytics.lexicon.extract_places``,
    without administrative codes) that the database's gazetteer, aliases included, does not resolve to a street or
    community, in the order named, each once; none without a gazetteer (no divisions). A bus route (205路) or a
    mention no alias could be is left out."""
    from cityhub.analytics.lexicon import extract_places
    from cityhub.org.places import unit_gazetteer

    gaz = unit_gazetteer(session)
    if gaz is None:
        return []
    found: dict[str, AliasCandidate] = {}
    for text in texts:
        for mention in extract_places(text or "", admin=False):
            try:
                alias = normalise_alias(mention)
            except CityhubError:
                continue
            if alias in found or alias[:-1].isascii():
                continue
            loc = gaz.resolve(alias)
            if loc.street_code or loc.community_code:
                continue
            found[alias] = AliasCandidate(alias, guess_kind(alias))
    return list(found.values())


@dataclass(frozen=True)
class AliasWish:
    """An alias asked for in a place correction, as given."""

    alias: str
    kind: str | None = None


@dataclass(frozen=True)
class AliasOutcome:
    """What became of one :class:`AliasWish`: added (``alias`` as stored), or refused — ``reason`` the refusal's code
    (``taken``, ``own_name``, ``ambiguous``, ``short`` …, as :func:`add_alias` gives it), ``message`` its text,
    ``units`` the units the name already names."""

    alias: str
    kind: str
    added: bool
    reason: str | None = None
    message: str | None = None
    units: tuple[str, ...] = ()
    holders: tuple[tuple[str, str], ...] = ()  # those units' (name, code), for a page's own brackets

    def as_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "kind": self.kind,
            "added": self.added,
            "reason": self.reason,
            "message": self.message,
            "units": list(self.units),
        }


def add_from_order(
    session: Session, *, order_number: str, unit_id: int, wishes: Sequence[AliasWish], actor: Any = None
) -> list[AliasOutcome]:
    """Add each wished alias to the unit (never ``also_ambiguous``), each in a savepoint of its own: one refused
    leaves the others, and the caller's place correction, as they are. Each added one names ``order_number`` in its
    log entry. ValidationFailed (field ``aliases``) for more than ``FROM_ORDER_MAX`` of them."""
    if len(wishes) > FROM_ORDER_MAX:
        raise ValidationFailed(
            f"at most {FROM_ORDER_MAX} aliases at once, not {len(wishes)}", details={"field": "aliases"}
        )
    out: list[AliasOutcome] = []
    for wish in wishes:
        try:
            with session.begin_nested():
                row = add_alias(
                    session,
                    alias=wish.alias,
                    unit_id=unit_id,
                    kind=wish.kind,
                    actor=actor,
                    source_order=order_number,
                )
        except CityhubError as exc:
            out.append(
                AliasOutcome(
                    alias=wish.alias,
                    kind=str(wish.kind or ""),
                    added=False,
                    reason=str(exc.details.get("reason") or exc.code),
                    message=exc.message,
                    units=tuple(exc.details.get("units") or ()),
                    holders=tuple((str(name), str(code)) for name, code in exc.details.get("holders") or ()),
                )
            )
            continue
        out.append(AliasOutcome(alias=row.alias, kind=AliasKind(row.kind).value, added=True))
    return out


# --- import ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RejectedAlias:
    row: int
    field: str
    reason: str


@dataclass
class AliasImportReport:
    rows: int = 0
    added: int = 0
    unchanged: int = 0  # already in the library, as the file gives it
    rejected: list[RejectedAlias] = field(default_factory=list)

    def reject(self, row: int, column: str, reason: str) -> None:
        self.rejected.append(RejectedAlias(row, column, reason))


def import_aliases(
    session: Session, *, path: Path, also_ambiguous: bool = False, actor: Any = None
) -> AliasImportReport:
    """Add the aliases of a table ``alias,unit_code[,kind]`` (CSV or Excel, ``org.service.read_table``): every good
    row kept, every other rejected with its row number and reason (an alias already there with that kind: unchanged)."""
    from cityhub.org.service import read_table, require_headers

    table = read_table(path)
    require_headers(table, IMPORT_HEADERS, path=path)
    report = AliasImportReport()
    for number, values in table.rows:
        report.rows += 1
        try:
            text = normalise_alias(values.get("alias", ""))
            chosen = alias_kind(values.get("kind"))
            unit = _unit_for_alias(session, code=values.get("unit_code", ""))
        except CityhubError as exc:
            report.reject(number, str(exc.details.get("field", "alias")), exc.message)
            continue
        there = _held(session, text, unit)
        if there is not None:
            if there.kind == chosen:
                report.unchanged += 1
            else:
                report.reject(
                    number,
                    "kind",
                    f"alias {text} of {unit.code} is there as {AliasKind(there.kind).value}: remove it "
                    "first to change its kind",
                )
            continue
        try:
            add_alias(session, alias=text, unit_id=unit.id, kind=chosen, also_ambiguous=also_ambiguous, actor=actor)
        except CityhubError as exc:
            report.reject(number, str(exc.details.get("field", "alias")), exc.message)
            continue
        report.added += 1
    report.rows += table.reject_unread(report.reject)
    report.rejected.sort(key=lambda r: r.row)
    return report


BAIYUN_ALIASES = Path(__file__).parent / "data" / "baiyun_aliases.csv"


def seed_baiyun_aliases(session: Session) -> int:
    """The demo district's place aliases (``data/baiyun_aliases.csv``), those not there yet; how many were added.
    Idempotent; an alias an administrator removed since comes back with the next seed."""
    from cityhub.org.service import read_csv_table

    added = 0
    for _, values in read_csv_table(BAIYUN_ALIASES).rows:
        unit = get_unit_by_code(session, code=values["unit_code"])
        if unit is None:
            continue
        if _held(session, normalise_alias(values["alias"]), unit) is None:
            add_alias(session, alias=values["alias"], unit_id=unit.id, kind=values["kind"])
            added += 1
    return added
