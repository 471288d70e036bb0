"""``cityhub org …`` — units and people."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cityhub.clitools import RejectedRow, fail_with, print_rejected, refuse_if_nothing_imported
from cityhub.clitools import fail as _fail
from cityhub.errors import CityhubError
from cityhub.org.models import Role, UnitTier

app = typer.Typer(no_args_is_help=True, help="Units (district, streets, communities, departments) and people.")


@app.command("import")
def import_command(
    file: Annotated[
        Path, typer.Argument(help="Divisions table: code,name,level,parent_code (CSV in UTF-8 or GB18030, or Excel).")
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


@app.command("list")
def list_command(
    tier: Annotated[UnitTier | None, typer.Option("--tier", help="Only units of this tier.")] = None,
    parent: Annotated[str | None, typer.Option("--parent", help="Only direct sub-units of this code.")] = None,
    q: Annotated[str | None, typer.Option("--q", help="Text in code, name or short name.")] = None,
) -> None:
    """List units: code, tier, name, short name, parent code."""
    from cityhub.db import session_scope
    from cityhub.org.service import get_unit_by_code, list_units

    with session_scope() as session:
        parent_id = None
        if parent is not None:
            parent_unit = get_unit_by_code(session, code=parent)
            if parent_unit is None:
                raise _fail(f"no unit with code {parent}")
            parent_id = parent_unit.id
        units = list_units(session, tier=tier, parent_id=parent_id, q=q)
        codes = {u.id: u.code for u in list_units(session)} if units else {}
        for unit in units:
            parent_code = codes.get(unit.parent_id, "") if unit.parent_id is not None else ""
            typer.echo(f"{unit.code}\t{unit.tier.value}\t{unit.name}\t{unit.short_name or ''}\t{parent_code}")
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
