"""``cityhub org …`` — units and people."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cityhub.clitools import RejectedRow, fail_with, print_rejected, refuse_if_nothing_imported
from cityhub.clitools import fail as _fail
from cityhub.errors import CityhubError
from cityhub.org.models import Role, UnitTier

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

app = typer.Typer(no_args_is_help=True, help="Units (district, streets, communities, departments) and people.")


@app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="Divisions table: code,name,level,parent_code[,name_en] (CSV in UTF-8 or GB18030, or Excel)."
        ),
    ],
    root: Annotated[str | None, typer.Option("--root", help="Import only this code's subtree.")] = None,
) -> None:
    """Import (upsert) administrative divisions; rejected rows are listed on stderr."""
    from cityhub.db import session_scope
    from cityhub.org.service import import_divisions

    try:
        with session_scope() as session:
            report = import_divisions(session, path=file, root_code=root)
    except CityhubError as exc:
        raise fail_with(exc) from None
    print_rejected(file.name, [RejectedRow(e.row, e.field, e.reason) for e in report.rejected])
    tiers = ", ".join(f"{tier} {count}" for tier, count in sorted(report.by_tier.items()))
    typer.echo(
        f"rows {report.rows}: created {report.created}, updated {report.updated}, "
        f"unchanged {report.unchanged}, rejected {len(report.rejected)}"
        + (f", outside root {report.outside_root}" if root else "")
        + (f" ({tiers})" if tiers else "")
    )
    if report.imported == 0 and report.outside_root:
        rejected = f"{len(report.rejected)} rows rejected, " if report.rejected else ""
        raise _fail(f"{file.name}: nothing imported: {rejected}{report.outside_root} rows outside --root {root}")
    refuse_if_nothing_imported(file.name, report.imported, len(report.rejected))


def _unit_id(session: Session, code: str | None) -> int | None:
    """The id of the unit with ``code`` (None for None); exits 1 naming the code when there is none."""
    from cityhub.org.service import get_unit_by_code

    if code is None:
        return None
    found = get_unit_by_code(session, code=code)
    if found is None:
        raise _fail(f"no unit with code {code}")
    return found.id


@app.command("list")
def list_command(
    tier: Annotated[UnitTier | None, typer.Option("--tier", help="Only units of this tier.")] = None,
    parent: Annotated[str | None, typer.Option("--parent", help="Only direct sub-units of this code.")] = None,
    q: Annotated[str | None, typer.Option("--q", help="Text in code, name or short name.")] = None,
    english: Annotated[
        bool,
        typer.Option(
            "--english",
            help="Two more columns: the English name an administrator gave (empty: none), and the name English "
            "pages show (that, else a street's or community's name in pinyin, else the Chinese name).",
        ),
    ] = False,
) -> None:
    """List units: code, tier, name, short name, parent code (with --english: English name, name shown in English)."""
    from cityhub.db import session_scope
    from cityhub.localnames import build
    from cityhub.org.service import list_units

    with session_scope() as session:
        parent_id = _unit_id(session, parent)
        units = list_units(session, tier=tier, parent_id=parent_id, q=q)
        codes = {u.id: u.code for u in list_units(session)} if units else {}
        names = build(session) if english and units else None
        for unit in units:
            parent_code = codes.get(unit.parent_id, "") if unit.parent_id is not None else ""
            line = f"{unit.code}\t{unit.tier.value}\t{unit.name}\t{unit.short_name or ''}\t{parent_code}"
            if names is not None:
                line += f"\t{unit.name_en or ''}\t{names.unit(unit.name)}"
            typer.echo(line)
    typer.echo(f"{len(units)} units", err=True)


@app.command("users")
def users_command(
    role: Annotated[Role | None, typer.Option("--role", help="Only users with this role.")] = None,
) -> None:
    """List users: username, role, full name, unit code."""
    from cityhub.db import session_scope
    from cityhub.org.service import list_users

    with session_scope() as session:
        for user in list_users(session, role=role):
            unit_code = user.unit.code if user.unit is not None else ""
            typer.echo(f"{user.username}\t{user.role.value}\t{user.full_name}\t{unit_code}")


@app.command("seed-baiyun")
def seed_baiyun_command(
    demo_users: Annotated[
        bool | None,
        typer.Option(
            "--demo-users/--no-demo-users",
            help="Also create the demo's user accounts (operator, dispatcher, … and a handler per department and "
            "street; no passwords). Default: only when CITYHUB_ENVIRONMENT is demo.",
        ),
    ] = None,
) -> None:
    """Create the organisation of 白云区: streets, communities, departments, the 12345 sub-centre (idempotent)."""
    from sqlalchemy import func, select

    from cityhub.config import get_settings
    from cityhub.db import session_scope
    from cityhub.org.models import Unit, User
    from cityhub.org.service import seed_baiyun

    if demo_users is None:
        demo_users = get_settings().environment == "demo"
    try:
        with session_scope() as session:
            seed_baiyun(session, users=demo_users)
            rows = session.execute(select(Unit.tier, func.count()).group_by(Unit.tier))
            counts: dict[UnitTier, int] = {tier: count for tier, count in rows}
            users = session.scalar(select(func.count()).select_from(User))
    except CityhubError as exc:
        raise fail_with(exc) from None
    summary = ", ".join(f"{tier.value} {counts[tier]}" for tier in UnitTier if tier in counts)
    typer.echo(f"Baiyun organisation ready: {summary}; users {users}")


aliases_app = typer.Typer(
    no_args_is_help=True,
    help="Place aliases (地名别名): landmarks, roads and old names the gazetteer reads as names of a street or "
    "community.",
)
app.add_typer(aliases_app, name="aliases")

KIND_HELP = "landmark (地标), road (道路), old_name (旧称) or other (其他)."


@aliases_app.command("list")
def aliases_list_command(
    unit: Annotated[str | None, typer.Option("--unit", help="Only this unit's aliases (its code).")] = None,
) -> None:
    """List the address library: alias, unit code, unit name, kind, added by, added at."""
    from cityhub.db import session_scope
    from cityhub.org.aliases import list_aliases

    with session_scope() as session:
        unit_id = _unit_id(session, unit)
        rows = list_aliases(session, unit_id=unit_id)
        for row in rows:
            typer.echo(
                f"{row.alias}\t{row.unit.code}\t{row.unit.name}\t{row.kind.value}\t{row.created_by}\t"
                f"{row.created_at.isoformat(timespec='seconds')}"
            )
    typer.echo(f"{len(rows)} aliases", err=True)


@aliases_app.command("add")
def aliases_add_command(
    alias: Annotated[str, typer.Argument(help="The name as addresses give it (石井大道, 大学城).")],
    unit: Annotated[str, typer.Option("--unit", help="Code of the street or community it names.")],
    kind: Annotated[str, typer.Option("--kind", help=KIND_HELP)] = "other",
    also_ambiguous: Annotated[
        bool,
        typer.Option(
            "--also-ambiguous", help="Add it although it names another unit: it is then ambiguous between them."
        ),
    ] = False,
) -> None:
    """Give a street or community a further name; new orders naming it are placed there."""
    from cityhub.clitools import cli_actor
    from cityhub.db import session_scope
    from cityhub.org.aliases import add_alias

    try:
        with session_scope() as session:
            row = add_alias(
                session, alias=alias, unit_code=unit, kind=kind, also_ambiguous=also_ambiguous, actor=cli_actor()
            )
            typer.echo(f"added {row.alias} → {row.unit.code} {row.unit.name} ({row.kind.value})")
    except CityhubError as exc:
        raise fail_with(exc) from None


@aliases_app.command("remove")
def aliases_remove_command(
    alias: Annotated[str, typer.Argument(help="The alias to remove.")],
    unit: Annotated[
        str | None, typer.Option("--unit", help="Of this unit (its code); needed when the alias names several.")
    ] = None,
) -> None:
    """Remove an alias: orders naming it are no longer placed by it (those placed before stay as they are)."""
    from cityhub.clitools import cli_actor
    from cityhub.db import session_scope
    from cityhub.org.aliases import remove_alias

    try:
        with session_scope() as session:
            row = remove_alias(session, alias=alias, unit_code=unit, actor=cli_actor())
            typer.echo(f"removed {row.alias} → {row.unit.code} {row.unit.name}")
    except CityhubError as exc:
        raise fail_with(exc) from None


@aliases_app.command("import")
def aliases_import_command(
    file: Annotated[Path, typer.Argument(help="Table alias,unit_code[,kind] (CSV in UTF-8 or GB18030, or Excel).")],
    also_ambiguous: Annotated[
        bool, typer.Option("--also-ambiguous", help="Keep rows whose alias names another unit too (ambiguous).")
    ] = False,
) -> None:
    """Add the aliases of a file: the good rows are kept, each rejected one listed on stderr with its row and reason
    (exit 0 as for every import, 1 when no row was taken)."""
    from cityhub.clitools import cli_actor
    from cityhub.db import session_scope
    from cityhub.org.aliases import import_aliases

    try:
        with session_scope() as session:
            report = import_aliases(session, path=file, also_ambiguous=also_ambiguous, actor=cli_actor())
    except CityhubError as exc:
        raise fail_with(exc) from None
    print_rejected(file.name, [RejectedRow(e.row, e.field, e.reason) for e in report.rejected])
    typer.echo(
        f"rows {report.rows}: added {report.added}, unchanged {report.unchanged}, rejected {len(report.rejected)}"
    )
    refuse_if_nothing_imported(file.name, report.added + report.unchanged, len(report.rejected))
