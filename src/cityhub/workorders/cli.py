"""``cityhub orders …`` — receive, inspect and act on work orders from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from cityhub.clitools import (
    RejectedRow,
    examples,
    fail_with,
    id_argument,
    named_actor,
    print_rejected,
    refuse_if_nothing_imported,
    validation_problem,
)
from cityhub.clitools import fail as _fail
from cityhub.db import session_scope
from cityhub.errors import CityhubError, NotFound, PermissionDenied, ValidationFailed
from cityhub.workorders.lifecycle import Action

app = typer.Typer(no_args_is_help=True, help="Work orders: create, show, search, act, history.")


def _find(session: Any, ref: str) -> Any:
    from cityhub.workorders import service

    order = service.find_order(session, ref=ref)
    if order is None:
        raise _fail(f"order '{ref}' not found")
    return order


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise _fail(f"--param '{pair}' is not NAME=VALUE")
        name, raw = pair.split("=", 1)
        try:
            params[name] = json.loads(raw)  # numbers, true/false, null
        except json.JSONDecodeError:
            params[name] = raw
    return params


def _dump(order: Any, *, unmasked: bool) -> dict[str, Any]:
    from sqlalchemy.orm import object_session

    from cityhub.workorders.schemas import OrderRead
    from cityhub.workorders.views import order_import_batch

    read = OrderRead.model_validate(order)
    session = object_session(order)
    if session is not None:  # the import it came from, as the API tells staff
        read.import_batch = order_import_batch(session, order, None)
    return (read if unmasked else read.masked()).model_dump(mode="json")


@app.command(
    "create",
    epilog=examples(
        ('cityhub orders create --content "路灯不亮" --address "广园西路12号"', ""),
        ('cityhub orders create --type complaint --content "…" --phone 13800000000', ""),
        ('cityhub orders create --content "…" --answer "…"', "秒回: answered, closed"),
    ),
)
def create(
    content: Annotated[str, typer.Option(help="What the citizen says.")],
    channel: Annotated[str, typer.Option(help="hotline, web, app, mailbox, grid, …")] = "hotline",
    title: Annotated[str, typer.Option(help="A short title (标题); empty: none.")] = "",
    appeal_type: Annotated[str, typer.Option("--type", help="consultation, complaint, help, …")] = "consultation",
    address: Annotated[str | None, typer.Option(help="Where the problem is, as said (地址): places the order.")] = None,
    category: Annotated[str | None, typer.Option(help="Category path or name.")] = None,
    phone: Annotated[str | None, typer.Option(help="The caller's phone number (来电号码).")] = None,
    name: Annotated[str | None, typer.Option(help="The caller's name.")] = None,
    external_id: Annotated[
        str | None,
        typer.Option(help="The sending system's id of the appeal: sent again, the same order answers (not a second)."),
    ] = None,
    answer: Annotated[str | None, typer.Option(help="Answer on the spot (秒回) and close.")] = None,
) -> None:
    """Receive one appeal and print the order as JSON."""
    from cityhub.intake.service import submit

    payload = {
        "channel": channel,
        "title": title,
        "content": content,
        "appeal_type": appeal_type,
        "address": address,
        "category": category,
        "citizen_phone": phone,
        "citizen_name": name,
        "external_id": external_id,
    }
    try:
        with session_scope() as session:
            result = submit(session, data=payload, instant_answer=answer, same_message=True)
            out = _dump(result.order, unmasked=True) | {"created": result.created}
    except CityhubError as exc:
        raise fail_with(exc) from None
    typer.echo(json.dumps(out, ensure_ascii=False))


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="Order number (BY…) or id.")],
    unmasked: Annotated[bool, typer.Option(help="Show the citizen's name and phone in full.")] = False,
) -> None:
    """Print one order as JSON."""
    with session_scope() as session:
        typer.echo(json.dumps(_dump(_find(session, ref), unmasked=unmasked), ensure_ascii=False, indent=2))


@app.command("search")
def search_cmd(
    q: Annotated[str, typer.Argument(help="Words to find (each must appear), or an order number or a part of one.")],
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many, newest first.")] = 20,
    state: Annotated[list[str] | None, typer.Option(help="Only orders in this state (repeatable).")] = None,
    count: Annotated[bool, typer.Option(help="Also count every match.")] = False,
) -> None:
    """Search orders by their text (全文检索), newest first: one line of JSON per order (id, number, state, created,
    title), then the count when asked."""
    from pydantic import ValidationError

    from cityhub.workorders import service
    from cityhub.workorders.schemas import OrderFilter

    try:
        filters = OrderFilter(q=q, state=state or None)
    except ValidationError as exc:
        raise _fail(validation_problem(exc, "filter")) from None
    with session_scope() as session:
        rows, more, total = service.search_order_rows(
            session, filters=filters, columns=["id", "number", "state", "created_at", "title"], limit=limit, count=count
        )
    for row in rows:
        typer.echo(
            json.dumps(
                {k: str(v) if k == "created_at" else v for k, v in row.items() if k != "assists"}, ensure_ascii=False
            )
        )
    if count:
        typer.echo(json.dumps({"total": total}))
    elif more:
        typer.echo(json.dumps({"more": True}))


@app.command("history")
def history_cmd(ref: Annotated[str, typer.Argument(help="Order number (BY…) or id.")]) -> None:
    """Print an order's audit trail, one JSON event per line."""
    from cityhub.workorders import service
    from cityhub.workorders.schemas import EventRead

    with session_scope() as session:
        order = _find(session, ref)
        for event in service.history(session, order_id=order.id):
            typer.echo(EventRead.model_validate(event).model_dump_json())


ACTIONS = tuple(a.value for a in Action if a != Action.CREATE)  # what `orders act` takes (creating is `orders create`)


def _known_action(value: str) -> str:
    """A usage error (exit 2, one line) for an action the life cycle does not have, before the order is looked up: it
    was refused as "not allowed in state …", as if another state of the order would allow it."""
    if value not in ACTIONS:
        raise typer.BadParameter(f"unknown action {value!r} (one of: {', '.join(ACTIONS)})")
    return value


@app.command("act")
def act_cmd(
    ref: Annotated[str, typer.Argument(help="Order number (BY…) or id.")],
    action: Annotated[str, typer.Argument(help=f"One of: {', '.join(ACTIONS)}", callback=_known_action)],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE, repeatable.")] = None,
    reason: Annotated[
        str | None, typer.Option(help="Why: the step's reason in the audit trail (return, urge, cancel … need one).")
    ] = None,
    actor: Annotated[
        str | None, typer.Option(help="Name recorded in the audit trail (default cli; no user: see --as).")
    ] = None,
    start: Annotated[
        bool, typer.Option("--start", help="accept only: start work right after (签收并开始办理), two audited steps.")
    ] = False,
    as_user: Annotated[str | None, typer.Option("--as", metavar="USERNAME", help=AS_HELP)] = None,
) -> None:
    """Apply one life-cycle action (dispatch, accept, return, reply, callback, close, …); split (拆单) takes the
    problem's words as -p content=… (and -p title=…, -p category_id=…) and names the new order; instant_answer
    takes -p answer=… or a knowledge entry, -p kb_entry_id=… (秒回 checked and counted as from the knowledge base);
    return (退单) may name the unit that should have the order, -p suggest_unit_id=… (建议改派至, for the
    dispatcher); assign (领导交办) may give the day it is to be done by, -p deadline=2026-12-20 (限期办结, today or
    later; the time limit is not moved); accept --start signs for and starts work (签收并开始办理). --as USERNAME
    acts as that user (a leader's 交办 recorded as theirs), refused in one line for an unknown, deactivated or locked
    user (saying until when), one whose role may not take the action, or an order outside their scope."""
    from cityhub.knowledge import service as kb
    from cityhub.workorders import service

    params = _parse_params(param or [])
    if reason:
        params["reason"] = reason
    if start and action != Action.ACCEPT.value:
        raise _fail(f"--start is taken only by accept, not {action}")
    _only_one_actor(as_user, actor)
    try:
        with session_scope() as session:
            order = _find(session, ref)
            who = (
                named_actor(actor or "cli")
                if as_user is None
                else _acting_user(session, as_user, action, order, params)
            )
            if start:
                order = service.accept(session, order_id=order.id, actor=who, start=True, params=params)
            else:
                order = kb.act_on_order(session, order_id=order.id, action=action, params=params, actor=who)
            typer.echo(f"{order.number}: {action} → {order.state.value}")
            if action == Action.SPLIT.value:  # 拆单: the new order the problem became
                typer.echo(f"{order.number}: split off as {service.newest_part(session, order.id)}")
    except CityhubError as exc:
        raise fail_with(exc) from None


AS_HELP = (
    "Act as this user, recorded in the trail as the API and the pages record them (name, user, unit, role), checked "
    "as they are: an active account not locked, the role's permission, the order in the user's scope."
)
ACTOR_HELP = "Name recorded in the audit trail (default cli; no user: see --as)."


def _only_one_actor(as_user: str | None, actor: str | None) -> None:
    if as_user is not None and actor is not None:
        raise _fail("give --as USERNAME or --actor NAME, not both: --as records the user's own name")


def _lock_until_text(until: Any) -> str:
    """Until when a lock holds, in the district's local time (an administrator's lock without an end: until
    unlocked)."""
    from cityhub.config import get_settings

    if until.year >= 9999:
        return "until an administrator unlocks it (cityhub users unlock)"
    return "until " + until.astimezone(get_settings().tz).isoformat(timespec="minutes")


def _as_principal(session: Any, username: str) -> Any:
    """The person ``--as USERNAME`` names, as the API would see them signed in: an existing, active account that is
    neither locked by an administrator (``users.locked_until``) nor locked out after failed password logins
    (``login_lockouts``: it could not sign in to do this either) — else the CLI's one-line error (exit 1), a lock
    saying until when."""
    from sqlalchemy import select

    from cityhub.auth import service as auth
    from cityhub.auth.principal import Principal
    from cityhub.org.models import Role, Unit, User

    user = session.scalars(select(User).where(User.username == username.strip())).one_or_none()
    if user is None:
        raise _fail(f"--as: no user {username.strip()!r}")
    if not user.active:
        raise _fail(f"--as: user {user.username!r} is deactivated")
    if auth.is_locked(user):
        raise _fail(f"--as: user {user.username!r} is locked by an administrator {_lock_until_text(user.locked_until)}")
    locked_out = auth.password_lockouts(session, usernames=[user.username]).get(user.username)
    if locked_out is not None:
        raise _fail(f"--as: user {user.username!r} is locked out after failed logins {_lock_until_text(locked_out)}")
    tier = session.scalar(select(Unit.tier).where(Unit.id == user.unit_id)) if user.unit_id is not None else None
    return Principal(
        user_id=user.id,
        username=user.username,
        full_name=user.full_name,
        role=user.role,
        unit_id=user.unit_id,
        unit_tier=tier,
        method="cli",
        credential_id=0,
        verified_phone=user.verified_phone if user.role == Role.CITIZEN else None,
    )


def _acting_user(session: Any, username: str, action: str, order: Any, params: dict[str, Any]) -> Any:
    """The actor ``--as USERNAME`` names (:func:`_as_principal`), checked as the API's action route checks its caller
    (``workorders.views.order_action``): its role may take ``action``, reading the order (and a merge's master); an
    assisting unit's step is its own unit's part. The CLI's one-line error (exit 1) otherwise."""
    from cityhub.auth.scope import check_may_act

    principal = _as_principal(session, username)
    try:
        check_may_act(session, principal, order_id=order.id, action=Action(action), params=params)
    except NotFound:
        raise _fail(f"--as: order {order.number} is outside the scope of user {principal.username!r}") from None
    except CityhubError as exc:
        raise _fail(f"--as: user {principal.username!r}: {exc.message}") from None
    return principal.actor


def _reading_user(session: Any, username: str, order: Any) -> Any:
    """``--as USERNAME`` (:func:`_as_principal`) for a command on one order: the order must be in the user's scope,
    as the API's routes on an order answer 404 otherwise (``workorders.views._order``)."""
    from cityhub.auth.scope import may_read

    principal = _as_principal(session, username)
    if not may_read(session, principal, order.id):
        raise _fail(f"--as: order {order.number} is outside the scope of user {principal.username!r}")
    return principal


@app.command("urge")
def urge_cmd(
    refs: Annotated[list[str], typer.Argument(help="Order numbers (BY…) or ids, at most 100.")],
    reason: Annotated[str, typer.Option(help="The message to the unit holding each order (催办内容).")] = "",
    actor: Annotated[str | None, typer.Option(help=ACTOR_HELP)] = None,
    as_user: Annotated[str | None, typer.Option("--as", metavar="USERNAME", help=AS_HELP)] = None,
) -> None:
    """批量催办: urge several orders with one message, each its own audited urge (as the list's 批量催办 and
    POST /api/v1/orders/urge). One line per order, urged (and the unit it went to) or not (and why); the others are
    urged all the same. Exits 1 when any was not urged, each named above. --as USERNAME urges as that user, checked
    as the API checks a signed-in caller: refused in one line for an unknown, deactivated or locked user or a role
    that may not urge; an order outside their scope is not urged, named as such."""
    from cityhub.auth import permissions
    from cityhub.auth.scope import scope_of
    from cityhub.org.models import Unit
    from cityhub.workorders import service

    _only_one_actor(as_user, actor)
    if not reason.strip():
        raise _fail("--reason is empty: say what the units are urged to do (催办内容)")
    if len(set(refs)) > service.ACT_EACH_MAX:
        raise _fail(f"at most {service.ACT_EACH_MAX} orders at once (got {len(set(refs))})")
    with session_scope() as session:
        who, scope = named_actor(actor or "cli"), None
        if as_user is not None:
            principal = _as_principal(session, as_user)
            if not permissions.allows(principal.role, permissions.act(Action.URGE)):
                raise _fail(f"--as: user {principal.username!r}: role {principal.role.value} may not urge")
            who, scope = principal.actor, scope_of(session, principal).clause()
        found = {ref: service.find_order(session, ref=ref) for ref in dict.fromkeys(refs)}
        outcomes = service.act_each(
            session,
            [(o.id, None) for o in found.values() if o is not None],
            action=Action.URGE,
            params={"reason": reason.strip()},
            actor=who,
            scope=scope,
        )
        names = {u.id: u.name for u in session.query(Unit).filter(Unit.id.in_({o.unit_id for o in outcomes}))}
        numbers = {o.id: o.number for o in found.values() if o is not None}
        for o in outcomes:
            if o.done:
                typer.echo(f"{o.number}: urged → {names.get(o.unit_id or 0, '-')}")
            elif o.number is None and o.order_id in numbers:  # it exists: outside the --as user's scope
                said = f"outside the scope of user {as_user.strip() if as_user else ''!r}"
                typer.echo(f"{numbers[o.order_id]}: not urged: {said}", err=True)
            else:
                typer.echo(f"{o.number or o.order_id}: not urged: {o.message}", err=True)
    missing = [ref for ref, order in found.items() if order is None]
    for ref in missing:
        typer.echo(f"{ref}: not urged: order '{ref}' not found", err=True)
    refused = len(missing) + sum(not o.done for o in outcomes)
    if refused:
        raise _fail(f"{refused} of {len(found)} orders not urged (each named above)")


@app.command("attach")
def attach_cmd(
    ref: Annotated[str, typer.Argument(help="Order number (BY…) or id.")],
    paths: Annotated[list[Path], typer.Argument(help="Files to attach: photos, PDF, office documents, audio, video.")],
    note: Annotated[str | None, typer.Option(help="What the files show (the comment in the audit trail).")] = None,
    actor: Annotated[str | None, typer.Option(help=ACTOR_HELP)] = None,
    as_user: Annotated[str | None, typer.Option("--as", metavar="USERNAME", help=AS_HELP)] = None,
) -> None:
    """Attach files to an order (kept in CITYHUB_FILES_DIR), one audited comment naming them; prints one JSON line
    per file. One bad file refuses them all, naming it. --as USERNAME attaches as that user (the files theirs, as
    uploaded on the API), checked as the API checks a signed-in caller: refused in one line for an unknown,
    deactivated or locked user, a role that may not attach, an order outside their scope (a citizen's: their own open
    appeal)."""
    from cityhub.auth import permissions
    from cityhub.auth.scope import check_attach
    from cityhub.workorders import files
    from cityhub.workorders.schemas import AttachmentRead

    _only_one_actor(as_user, actor)
    limit = files.read_limit()
    uploads = []
    for path in paths:
        try:
            with path.open("rb") as handle:
                uploads.append(files.Upload(filename=path.name, data=handle.read(limit)))
        except OSError as exc:
            raise _fail(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        with session_scope() as session:
            order = _find(session, ref)
            who = named_actor(actor or "cli")
            if as_user is not None:
                principal = _reading_user(session, as_user, order)
                if not permissions.may_attach(principal.role):
                    raise _fail(f"--as: user {principal.username!r}: role {principal.role.value} may not attach files")
                try:
                    check_attach(principal, order)
                except CityhubError as exc:
                    raise _fail(f"--as: user {principal.username!r}: {exc.message}") from None
                who = principal.actor
            rows = files.attach(session, order_id=order.id, uploads=uploads, actor=who, note=note)
            out = [AttachmentRead.model_validate(r).model_dump_json() for r in rows]
    except CityhubError as exc:
        raise fail_with(exc) from None
    for line in out:
        typer.echo(line)


@app.command("detach")
def detach_cmd(
    ref: Annotated[str, typer.Argument(help="Order number (BY…) or id.")],
    attachment_id: Annotated[int, id_argument("attachment", "The attachment's id (`orders show`).")],
    reason: Annotated[str, typer.Option(help="Why it is removed (in the audit trail).")],
    actor: Annotated[str | None, typer.Option(help=ACTOR_HELP)] = None,
    as_user: Annotated[str | None, typer.Option("--as", metavar="USERNAME", help=AS_HELP)] = None,
) -> None:
    """Remove an attachment from an order (its stored file too, when no other attachment holds it), audited. --as
    USERNAME removes it as that user, checked as the API checks a signed-in caller: refused in one line for an
    unknown, deactivated or locked user, an order outside their scope, or a file not theirs where their role may not
    remove any (attachments:remove: supervisors, administrators)."""
    from cityhub.auth import permissions
    from cityhub.workorders import files

    _only_one_actor(as_user, actor)
    try:
        with session_scope() as session:
            order = _find(session, ref)
            who, may_remove_any = named_actor(actor or "cli"), True
            if as_user is not None:
                principal = _reading_user(session, as_user, order)
                if not permissions.allows(principal.role, permissions.ORDER_READ):
                    raise _fail(f"--as: user {principal.username!r}: role {principal.role.value} may not read orders")
                who = principal.actor
                may_remove_any = permissions.allows(principal.role, permissions.ATTACHMENTS_REMOVE)
            try:
                row = files.remove(
                    session,
                    order_id=order.id,
                    attachment_id=attachment_id,
                    actor=who,
                    reason=reason,
                    may_remove_any=may_remove_any,
                )
            except PermissionDenied as exc:
                raise _fail(f"--as: user {as_user!r}: {exc.message}") from None
            name = row.filename
    except CityhubError as exc:
        raise fail_with(exc) from None
    typer.echo(f"{ref}: attachment {attachment_id} ({name}) removed")


files_app = typer.Typer(no_args_is_help=True, help="The store of files attached to orders (CITYHUB_FILES_DIR).")


@files_app.command("prune")
def files_prune(
    older_than_hours: Annotated[
        float, typer.Option(min=0, help="Only what was not touched for this long (an upload in flight is younger).")
    ] = 1.0,
    dry_run: Annotated[bool, typer.Option(help="Count what would be deleted; delete nothing.")] = False,
) -> None:
    """Delete files, photo copies and interrupted writes that no attachment holds any more."""
    from cityhub.workorders import files

    with session_scope() as session:
        pruned = files.prune(session, older_than_s=older_than_hours * 3600, dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    typer.echo(
        f"{verb} {pruned.files} file(s), {pruned.renditions} photo cop(ies), {pruned.partial} interrupted write(s): "
        f"{pruned.bytes / 1e6:,.1f} MB"
    )


calendar_app = typer.Typer(no_args_is_help=True, help="Working calendar: holidays and make-up workdays (admin).")
sla_app = typer.Typer(no_args_is_help=True, help="Time-limit table: category × urgency (admin).")


def _date(value: str) -> Any:
    from datetime import date

    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(f"'{value}' is not a date (YYYY-MM-DD)") from None


@calendar_app.command("list")
def calendar_list(year: Annotated[int | None, typer.Option(help="Only this year.")] = None) -> None:
    """List the administrators' calendar entries."""
    from cityhub.workorders.calendar import list_days

    with session_scope() as session:
        for row in list_days(session, year=year):
            kind = "workday" if row.is_workday else "holiday"
            typer.echo(f"{row.day.isoformat()}\t{kind}\t{row.name or ''}")


RecomputeOption = Annotated[
    bool,
    typer.Option(
        "--recompute/--no-recompute",
        help="Also move the deadlines of running clocks (default); --no-recompute: only clocks started later.",
    ),
]
CLI_ACTOR = "cli"


def _recomputed(count: int, recompute: bool) -> str:
    return f" ({count} running orders' deadlines moved)" if recompute else " (running deadlines kept)"


@calendar_app.command("set")
def calendar_set(
    day: Annotated[str, typer.Argument(help="YYYY-MM-DD")],
    kind: Annotated[str, typer.Argument(help="放假 (休, holiday) | 上班 (班, 调休上班, workday)")],
    name: Annotated[
        str | None, typer.Option(help='e.g. 国庆节; without it a day entered before keeps its name; "" clears it')
    ] = None,
    recompute: RecomputeOption = True,
) -> None:
    """Mark a day as a holiday or a make-up workday (overrides the built-in calendar)."""
    from cityhub.workorders.calendar import KIND_CHOICES, calendar_kind
    from cityhub.workorders.recompute import set_calendar_day
    from cityhub.workorders.service import Actor

    is_workday = calendar_kind(kind)
    if is_workday is None:
        raise _fail(f"kind must be {KIND_CHOICES}, not '{kind}'")
    kind = "workday" if is_workday else "holiday"
    with session_scope() as session:
        _, done = set_calendar_day(
            session,
            day=_date(day),
            is_workday=is_workday,
            name=(name or "").strip() or None,
            named=name is not None,
            actor=Actor(CLI_ACTOR),
            recompute=recompute,
        )
    typer.echo(f"{day}: {kind}{_recomputed(done.orders, recompute)}")


@calendar_app.command("import")
def calendar_import(
    file: Annotated[
        str,
        typer.Argument(
            help="CSV of date,kind,name rows (kind: 放假 or 休 | 上班 or 班 — or holiday | workday; name optional; a "
            "header row date,kind,name "
            "may come first), e.g. a year's official holidays and make-up workdays; or the State Council's notice "
            "itself (国务院办公厅关于20XX年部分节假日安排的通知) as text."
        ),
    ],
    recompute: RecomputeOption = True,
) -> None:
    """Enter many calendar days at once (as `calendar set` does for one). Every bad row is reported with its number;
    the good rows are entered (exit 1 when no row was)."""
    from cityhub.textfiles import read_text
    from cityhub.workorders.recompute import import_calendar_text
    from cityhub.workorders.service import Actor

    try:
        text = read_text(file)
    except CityhubError as exc:
        raise fail_with(exc) from None
    try:
        with session_scope() as session:
            done = import_calendar_text(session, text=text, actor=Actor(CLI_ACTOR), recompute=recompute)
    except ValidationFailed as exc:  # no day in it
        raise _fail(f"{file}: {exc.message}") from None
    source = Path(file).name
    print_rejected(source, [RejectedRow(e.row, e.field, e.reason, e.unit) for e in done.errors])
    entries, holidays = len(done.entries), done.holidays
    moved = _recomputed(done.recomputed.orders, recompute) if entries else ""
    typer.echo(
        f"{entries} days entered ({holidays} holidays, {entries - holidays} workdays), "
        f"{len(done.errors)} rows rejected{moved}"
    )
    refuse_if_nothing_imported(source, entries, len(done.errors))


@calendar_app.command("delete")
def calendar_delete(day: Annotated[str, typer.Argument(help="YYYY-MM-DD")], recompute: RecomputeOption = True) -> None:
    """Remove an administrator's entry (the built-in calendar applies again)."""
    from cityhub.workorders.recompute import delete_calendar_day
    from cityhub.workorders.service import Actor

    try:
        with session_scope() as session:
            done = delete_calendar_day(session, day=_date(day), actor=Actor(CLI_ACTOR), recompute=recompute)
    except NotFound:
        raise _fail(f"no calendar entry on {day}") from None
    except CityhubError as exc:
        raise fail_with(exc) from None
    typer.echo(f"{day}: removed{_recomputed(done.orders, recompute)}")


@calendar_app.command("check")
def calendar_check(day: Annotated[str, typer.Argument(help="YYYY-MM-DD")]) -> None:
    """Tell whether a day is a working day, and why: an administrator's entry (override), the State Council's
    arrangement (official), the law's holidays in a year whose arrangement is not built in (statutory), or the
    weekday."""
    from cityhub.workorders.calendar import day_status

    with session_scope() as session:
        is_workday, name, source = day_status(session, _date(day))
    why = f"{source}, {name}" if name else source
    typer.echo(f"{day}: {'workday' if is_workday else 'non-working day'} ({why})")


@sla_app.command("list")
def sla_list() -> None:
    """Print the time-limit table."""
    from cityhub.workorders.sla import load_rules

    with session_scope() as session:
        paths = {c.id: c.path for c in session.scalars(_category_query())}
        typer.echo("category\turgency\taccept_hours\tfinish_days\twarning_share\tclock")
        for r in load_rules(session):
            category = paths.get(r.category_id, "(default)") if r.category_id else "(default)"
            typer.echo(
                f"{category}\t{r.urgency or '(any)'}\t{r.accept_hours:g}\t{r.finish_days:g}\t"
                f"{'' if r.warning_share is None else r.warning_share}\t"
                f"{'round the clock' if r.round_the_clock else 'working time'}"
            )


def _category_query() -> Any:
    from sqlalchemy import select

    from cityhub.workorders.models import Category

    return select(Category)


@sla_app.command("set")
def sla_set(
    accept_hours: Annotated[float, typer.Option(help="Accept within N working hours.")],
    finish_days: Annotated[float, typer.Option(help="Finish within N working days.")],
    category: Annotated[str | None, typer.Option(help="Category path or name; omit for the default.")] = None,
    urgency: Annotated[str | None, typer.Option(help="normal | urgent | critical; omit for any.")] = None,
    warning_share: Annotated[float | None, typer.Option(help="Warn after this share of the limit.")] = None,
    round_the_clock: Annotated[
        bool,
        typer.Option(
            "--round-the-clock/--working-time",
            help="Count the hours and days around the clock, every day (全天候: emergencies), or in working time.",
        ),
    ] = False,
    recompute: RecomputeOption = True,
) -> None:
    """Create or replace one rule of the time-limit table."""
    from cityhub.workorders.categories import find_category
    from cityhub.workorders.recompute import set_sla_rule
    from cityhub.workorders.service import Actor
    from cityhub.workorders.sla import RuleSpec

    try:
        with session_scope() as session:
            category_id = None
            if category:
                found = find_category(session, name_or_path=category)
                if found is None:
                    raise _fail(f"unknown category '{category}'")
                category_id = found.id
            spec = RuleSpec(category_id, urgency, accept_hours, finish_days, warning_share, round_the_clock)
            _, done = set_sla_rule(session, spec=spec, actor=Actor(CLI_ACTOR), recompute=recompute)
    except CityhubError as exc:
        raise fail_with(exc) from None
    typer.echo(f"rule saved{_recomputed(done.orders, recompute)}")


@sla_app.command("seed")
def sla_seed() -> None:
    """Insert the built-in default rules where missing."""
    from cityhub.workorders.sla import seed_default_rules

    with session_scope() as session:
        added = seed_default_rules(session)
    typer.echo(f"{added} default rules added")


@app.command("similar")
def similar(ref: Annotated[str, typer.Argument(help="Order number or id.")]) -> None:
    """Print possible duplicates and the most similar past cases (with how they were handled) as JSON."""
    from cityhub.intake import dedupe

    try:
        with session_scope() as session:
            found = dedupe.check(session, order=_find(session, ref))
            typer.echo(dedupe.DedupeRead.of(found).model_dump_json(indent=2))
    except CityhubError as exc:
        raise fail_with(exc) from None


@app.command("place")
def place(
    batch: Annotated[int, typer.Option(min=1, help="Orders per committed batch.")] = 250,
    limit: Annotated[int | None, typer.Option(min=1, help="Stop after looking at this many orders.")] = None,
    retry: Annotated[
        bool, typer.Option(help="Also look again at orders found not placeable before (after importing units).")
    ] = False,
) -> None:
    """Place the orders without a street that were never looked for (imports, orders from before placement at
    intake) among the units — coordinates, else address, else text — each one placed with an audited comment;
    the rest are marked not placeable. Prints the totals as JSON. The ``place-orders`` job does the same in the
    background, for up to 20 s a minute."""
    from cityhub.workorders.placing import place_backlog

    with session_scope() as session:
        totals = place_backlog(session, batch=batch, limit=limit, retry=retry)
    if "skipped" in totals:
        raise _fail(f"nothing placed: {totals['skipped']} in the database (cityhub org import FILE)")
    typer.echo(json.dumps({key: totals[key] for key in ("looked", "placed", "unplaced")}))
