"""``cityhub org …`` — units and people."""

import typer

app = typer.Typer(no_args_is_help=True, help="Units (district, streets, communities, departments) and people.")
