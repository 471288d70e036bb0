"""``cityhub orders …`` — receive, inspect and act on work orders from the command line."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from cityhub.db import session_scope
from cityhub.errors import CityhubError
from cityhub.workorders.lifecycle import Action

app = typer.Typer(no_args_is_help=True, help="Work orders: create, show, act, history.")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _find(session: Any, ref: str) -> Any:
    from cityhub.workorders import service

    order = service.get_order_by_number(session, number=ref)
    if order is None and ref.isdigit():
        order = service.get_order(session, order_id=int(ref))
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
    from cityhub.workorders.schemas import OrderRead

    read = OrderRead.model_validate(order)
    return (read if unmasked else read.masked()).model_dump(mode="json")


@app.command("create")
def create(
    content: Annotated[str, typer.Option(help="What the citizen says.")],
    channel: Annotated[str, typer.Option(help="hotline, web, app, mailbox, grid, …")] = "hotline",
    title: Annotated[str, typer.Option()] = "",
    appeal_type: Annotated[str, typer.Option("--type", help="consultation, complaint, help, …")] = "consultation",
    address: Annotated[str | None, typer.Option()] = None,
    category: Annotated[str | None, typer.Option(help="Category path or name.")] = None,
    phone: Annotated[str | None, typer.Option()] = None,
    name: Annotated[str | None, typer.Option()] = None,
    external_id: Annotated[str | None, typer.Option()] = None,
    answer: Annotated[str | None, typer.Option(help="Answer on the spot (秒回) and close.")] = None,
) -> None:
    """Receive one appeal and print the order as JSON."""
    from cityhub.intake.service import submit

    payload = {"channel": channel, "title": title, "content": content, "appeal_type": appeal_type,
               "address": address, "category": category, "citizen_phone": phone, "citizen_name": name,
               "external_id": external_id}
    try:
        with session_scope() as session:
            result = submit(session, data=payload, instant_answer=answer)
            out = _dump(result.order, unmasked=True) | {"created": result.created}
    except CityhubError as exc:
        raise _fail(exc.message) from None
    typer.echo(json.dumps(out, ensure_ascii=False))


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="Order number (BY…) or id.")],
    unmasked: Annotated[bool, typer.Option(help="Show the citizen's name and phone in full.")] = False,
) -> None:
    """Print one order as JSON."""
    with session_scope() as session:
        typer.echo(json.dumps(_dump(_find(session, ref), unmasked=unmasked), ensure_ascii=False, indent=2))


@app.command("history")
def history_cmd(ref: Annotated[str, typer.Argument(help="Order number (BY…) or id.")]) -> None:
    """Print an order's audit trail, one JSON event per line."""
    from cityhub.workorders import service
    from cityhub.workorders.schemas import EventRead

    with session_scope() as session:
        order = _find(session, ref)
        for event in service.history(session, order_id=order.id):
            typer.echo(EventRead.model_validate(event).model_dump_json())


@app.command("act")
def act_cmd(
    ref: Annotated[str, typer.Argument(help="Order number (BY…) or id.")],
    action: Annotated[str, typer.Argument(help=f"One of: {', '.join(a.value for a in Action if a != Action.CREATE)}")],
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE, repeatable.")] = None,
    reason: Annotated[str | None, typer.Option()] = None,
    actor: Annotated[str, typer.Option(help="Name recorded in the audit trail.")] = "cli",
) -> None:
    """Apply one life-cycle action (dispatch, accept, return, reply, callback, close, …)."""
    from cityhub.workorders import service

    params = _parse_params(param or [])
    if reason:
        params["reason"] = reason
    try:
        with session_scope() as session:
            order = _find(session, ref)
            order = service.act(session, order_id=order.id, action=action, params=params,
                                actor=service.Actor(name=actor))
            typer.echo(f"{order.number}: {action} → {order.state.value}")
    except CityhubError as exc:
        raise _fail(exc.message) from None
