"""What every ``cityhub`` sub-command shares: one way to fail, one name for who acted."""

from __future__ import annotations

from typing import Any

import typer


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print one line naming the problem to stderr and return the exit to raise (``raise fail(...)``)."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def cli_actor() -> Any:
    """Who a change made from the command line was made by, in audit trails and the configuration log: ``cli``."""
    from cityhub.workorders.service import Actor

    return Actor(name="cli")
