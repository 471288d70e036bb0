"""``cityhub demo …`` — the demo district."""

import typer

app = typer.Typer(no_args_is_help=True, help="Demo district: Baiyun (白云区) with generated orders.")
