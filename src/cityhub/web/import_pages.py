"""批量导入: a spreadsheet of appeals brought in at once from the web UI — a mailbox's export, another hotline's list —
by those who record or route appeals (``orders:import``).

The same service call as ``POST /api/v1/orders/import`` and ``cityhub import orders``
(:func:`cityhub.intake.importer.import_upload`): every good row is imported and every rejected one listed by its
row and field, in the user's language; importing the same file again adds nothing; the orders' audit trails name
the person who uploaded the file.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from cityhub.api.deps import DbSession
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.dispatch import background
from cityhub.errors import ValidationFailed
from cityhub.intake import importer
from cityhub.web import machine_text, support
from cityhub.web.support import UploadForm, render
from cityhub.workorders.models import Channel

router = APIRouter(include_in_schema=False)

# The fields a column may be chosen for, in the order the page lists them (the rest are rarely renamed).
CHOOSABLE = ("title", "content", "created_at", "external_id", "citizen_name", "citizen_phone", "address", "category")


async def _body(request: Request) -> UploadForm:
    return await support.read_uploads(request, limit=importer.UPLOAD_MAX_BYTES + 1, max_files=1)


ImportBody = Annotated[UploadForm, Depends(_body)]


def _page(
    request: Request,
    principal: Principal,
    *,
    values: dict[str, Any] | None = None,
    error: str | None = None,
    report: importer.ImportReport | None = None,
    stopped: str | None = None,
    open_columns: bool = False,
    status_code: int = 200,
) -> Response:
    t = support.translator(request)

    def shown(issue: importer.RowIssue) -> dict[str, Any]:
        return {
            "row": issue.row,
            "level": issue.level,
            "field": t(f"field.{issue.field}", issue.field),
            "message": machine_text.import_issue(t, issue.message, issue.field),
        }

    issues = [shown(i) for i in report.issues] if report is not None else []
    # Every kind of warning, counted, by its first row (the table lists only some of the warned rows).
    warning_kinds = (
        [{**shown(report.warning_examples[kind]), "count": n} for kind, n in report.warning_counts.most_common()]
        if report is not None
        else []
    )
    return render(
        request,
        "import.html",
        principal=principal,
        status_code=status_code,
        channels=[c for c in Channel if c not in (Channel.SENSOR, Channel.VIDEO_AI)],
        choosable=CHOOSABLE,
        columns_open=open_columns or any((values or {}).get(f"column_{name}") for name in CHOOSABLE),
        headers=importer.known_headers(),
        values=values or {},
        error=error,
        report=report,
        issues=issues,
        warning_kinds=warning_kinds,
        # Rejected rows beyond the listed ones (the warnings are all counted in the summary by kind).
        more_issues=(report.rejected - sum(i.level == "error" for i in report.issues)) if report else 0,
        stopped=machine_text.import_issue(t, stopped) if stopped else None,
        max_mb=importer.UPLOAD_MAX_BYTES // (1024 * 1024),
        dispatch_runs=background.enabled(),
        dispatch_decides=background.decides(),
        dispatch_suggests=background.suggests(),
    )


@router.get("/orders/import", response_class=HTMLResponse)
def import_page(request: Request, db: DbSession) -> Response:
    """The form: a file, its channel, whether it is history, whether its new orders go to automatic dispatch (on by
    default), and the columns of fields under other headers."""
    principal = support.require_user(request, db, permissions.ORDERS_IMPORT)
    return _page(request, principal, values={"dispatch": True})


@router.post("/orders/import", response_class=HTMLResponse)
def import_submit(request: Request, db: DbSession, body: ImportBody) -> Response:
    """Import the file; the page then shows the counts, the warnings by kind, and the rejected and warned rows (the
    first thousand, at most a hundred of them warned: a warning on every row hides no rejected row)."""
    form = body.form
    principal = support.require_user(request, db, permissions.ORDERS_IMPORT, form=form)
    t = support.translator(request)
    values = {
        "channel": form.get("channel"),
        "as_history": form.get("as_history") == "1",
        "dispatch": form.get("dispatch") == "1",
        "sheet": form.text("sheet") or "",
        **{f"column_{name}": form.text(f"column_{name}") or "" for name in CHOOSABLE},
    }
    if not body.files:
        return _page(request, principal, values=values, error=t("import.no_file"), status_code=422)
    upload = body.files[0]
    try:
        report = importer.import_upload(
            db,
            filename=upload.filename or "",
            data=upload.data,
            channel=values["channel"] or None,
            sheet=values["sheet"] or None,
            as_history=values["as_history"],
            columns={name: header for name in CHOOSABLE if (header := values[f"column_{name}"])},
            actor=principal.actor,
            dispatch=values["dispatch"],
        )
    except importer.ImportStopped as exc:
        db.commit()
        return _page(request, principal, values=values, report=exc.report, stopped=exc.message, status_code=422)
    except ValidationFailed as exc:
        db.rollback()
        message = machine_text.import_issue(t, exc.message)
        # A file whose columns are not known (no title or content column, a chosen column not in its header): the
        # column choices the message points to are open, beside it.
        columns = any(words in exc.message for words in importer.COLUMN_PROBLEMS)
        return _page(request, principal, values=values, error=message, open_columns=columns, status_code=422)
    db.commit()
    return _page(request, principal, values=values, report=report)
