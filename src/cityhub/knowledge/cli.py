"""``cityhub kb …`` — manage the knowledge base, try suggestions, check replies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cityhub.clitools import RejectedRow, cli_actor, fail, id_argument, print_rejected, refuse_if_nothing_imported
from cityhub.db import session_scope

app = typer.Typer(no_args_is_help=True, help="Knowledge base (知识库) and instant answers (秒回).")


def _category_id(session: object, name: str | None) -> int | None:
    if not name:
        return None
    from cityhub.workorders.categories import find_category

    found = find_category(session, name_or_path=name)  # type: ignore[arg-type]
    if found is None:
        raise fail(f"unknown or ambiguous category '{name}'")
    return found.id


@app.command("import")
def import_command(
    path: Annotated[Path, typer.Argument(help="CSV or Excel: question,answer[,category,keywords,valid_until,public]")],
) -> None:
    """Import entries from a CSV or Excel file (re-importing updates entries with the same question; an optional
    column the file does not have leaves that field of the entries as it is, an empty cell clears it; ``public``:
    是/否, 1/0 or true/false — shown to citizens typing an appeal): the outcome
    as JSON on stdout, each rejected row and a summary line on stderr; exit 1 when no row was taken (every row
    rejected, or none in the file)."""
    from cityhub.knowledge import service

    with session_scope() as session:
        report = service.import_entries(session, path=path, actor=cli_actor())
    typer.echo(report.model_dump_json())
    print_rejected(path.name, [RejectedRow(r["row"], r["field"], r["reason"]) for r in report.rejected])
    typer.echo(
        f"{path.name}: rows {report.rows}: created {report.created}, updated {report.updated}, "
        f"unchanged {report.unchanged}, rejected {len(report.rejected)}",
        err=True,
    )
    refuse_if_nothing_imported(path.name, report.created + report.updated + report.unchanged, len(report.rejected))


@app.command("seed-replies")
def seed_replies_command(
    path: Annotated[Path, typer.Argument(help="messages-with-replies CSV (留言编号, 留言主题, 留言详情, 答复意见)")],
    source_prefix: Annotated[str, typer.Option(help="entries' source is PREFIX:<留言编号>")] = "import:f4",
    limit: Annotated[int | None, typer.Option(min=1, help="read only the first N rows")] = None,
) -> None:
    """Build entries from real messages and their official replies (boilerplate and forwarding notes stripped); they
    answer one citizen's case and are not shown to citizens (public: no) until a keeper makes one public."""
    from cityhub.knowledge import service

    with session_scope() as session:
        report = service.seed_from_replies(
            session, path=path, source_prefix=source_prefix, limit=limit, actor=cli_actor()
        )
    typer.echo(report.model_dump_json())


@app.command("suggest")
def suggest_command(
    text: Annotated[str, typer.Argument(help="the citizen's question")],
    category: Annotated[str | None, typer.Option(help="category name or path")] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, max=50, help="how many entries (default 5; with --public 3)")
    ] = None,
    public: Annotated[
        bool,
        typer.Option(
            "--public",
            help="what a citizen asking this on the appeal form reads (常见问题解答): the public entries that name "
            "its matter, at most 3 unless --limit says otherwise",
        ),
    ] = False,
) -> None:
    """Show the best entries for a question (with --public: the answers a citizen would read before filing it)."""
    from cityhub.knowledge import service

    with session_scope() as session:
        category_id = _category_id(session, category)
        if public:
            # the appeal form's choice (knowledge.service.self_help_answers), for a consultation of this text
            found = service.matter_answers(
                session, text=text, category_id=category_id, limit=limit or 3, public_only=True
            )
        else:
            found = service.suggest(session, text=text, category_id=category_id, limit=limit or 5)
        if not found:
            typer.echo("(no public entry answers it)" if public else "(no entry matches)")
        for rank, s in enumerate(found, 1):
            typer.echo(f"{rank}. #{s.entry.id} score {s.score:.3f}  {s.entry.question[:60]!r}")
            typer.echo(f"   why: {s.why}")
            typer.echo(f"   answer: {s.entry.answer[:120]}")


@app.command("list")
def list_command(
    all_: Annotated[bool, typer.Option("--all", help="include inactive entries")] = False,
    public: Annotated[bool, typer.Option("--public", help="only the entries shown to citizens")] = False,
    q: Annotated[str | None, typer.Option(help="text in question or answer")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
) -> None:
    """List entries, newest first (tab-separated: id, active, valid_until, source, question)."""
    from cityhub.knowledge import service

    with session_scope() as session:
        rows, has_more = service.list_entries(
            session, active=None if all_ else True, q=q, public=True if public else None, limit=limit
        )
        for e in rows:
            until = e.valid_until.isoformat() if e.valid_until else "-"
            question = e.question.replace("\n", " ")[:60]
            typer.echo(f"{e.id}\t{'active' if e.active else 'inactive'}\t{until}\t{e.source or '-'}\t{question}")
    if has_more:
        typer.echo(f"(more than {limit}; use --limit)", err=True)


@app.command("add")
def add_command(
    question: Annotated[str, typer.Option(help="the question as citizens ask it")],
    answer: Annotated[str, typer.Option(help="the approved answer")],
    category: Annotated[str | None, typer.Option(help="category name or path")] = None,
    keywords: Annotated[str | None, typer.Option(help="comma- or 、-separated")] = None,
    valid_until: Annotated[str | None, typer.Option(help="YYYY-MM-DD (valid through that day) or ISO time")] = None,
    public: Annotated[
        bool, typer.Option("--public", help="shown to citizens typing an appeal (向市民公开); default: staff only")
    ] = False,
) -> None:
    """Add one entry and print it."""
    from pydantic import ValidationError

    from cityhub.clitools import validation_problem
    from cityhub.errors import ValidationFailed
    from cityhub.knowledge import service
    from cityhub.knowledge.schemas import EntryCreate

    with session_scope() as session:
        try:
            until = service.parse_valid_until(valid_until or "")
        except ValueError as exc:
            raise ValidationFailed(str(exc)) from None
        try:
            data = EntryCreate.model_validate(
                {
                    "question": question,
                    "answer": answer,
                    "category_id": _category_id(session, category),
                    "keywords": keywords,  # the schema splits the string
                    "valid_until": until,
                    "public": public,
                }
            )
        except ValidationError as exc:
            raise fail(validation_problem(exc, "entry")) from None
        entry = service.create_entry(session, data=data, actor=cli_actor())
        typer.echo(json.dumps({"id": entry.id, "version": entry.version}, ensure_ascii=False))


@app.command("deactivate")
def deactivate_command(entry_id: Annotated[int, id_argument("knowledge entry", "entry id")]) -> None:
    """Take an entry out of the suggestions."""
    from cityhub.knowledge import service

    with session_scope() as session:
        entry = service.deactivate_entry(session, entry_id=entry_id, actor=cli_actor())
        typer.echo(f"entry {entry.id} deactivated")


@app.command("check-replies")
def check_replies_command(limit: Annotated[int, typer.Option(min=1)] = 500) -> None:
    """Score replied orders not checked yet (or checked by an earlier version of the scorer); weak replies get an audit
    comment and join the review list."""
    from cityhub.knowledge import service

    with session_scope() as session:
        result = service.check_pending_replies(session, limit=limit)
    typer.echo(json.dumps(result))
