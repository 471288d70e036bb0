"""``cityhub orders …`` — work orders from the command line."""

import typer

app = typer.Typer(no_args_is_help=True, help="Work orders: show, act, history.")
