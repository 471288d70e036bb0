"""``cityhub import …`` and ``cityhub export …`` — bulk intake and export of orders."""

import typer

import_app = typer.Typer(no_args_is_help=True, help="Bulk import (CSV, Excel).")
export_app = typer.Typer(no_args_is_help=True, help="Export orders with their histories (CSV, Excel, Parquet).")
