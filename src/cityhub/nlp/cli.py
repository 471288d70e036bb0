"""``cityhub nlp …`` — classifier, address resolution."""

import typer

app = typer.Typer(no_args_is_help=True, help="Language tools: category classifier, address → jurisdiction.")
