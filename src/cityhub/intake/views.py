"""``POST /api/v1/orders/import``: a spreadsheet of appeals brought in at once (批量导入), as ``cityhub import orders``
does it (:func:`cityhub.intake.importer.import_upload`), with the caller named in every order's audit trail."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, UploadFile
from pydantic import BaseModel, Field

from cityhub.api.deps import DbSession, require
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.errors import ValidationFailed
from cityhub.intake import importer

router = APIRouter(prefix="/orders", tags=["orders"])

Importer = Annotated[Principal, Depends(require(permissions.ORDERS_IMPORT))]


class ImportIssueRead(BaseModel):
    row: int = Field(description="the row's line in the file (the header is line 1)")
    level: str = Field(description="error: the row was not imported; warning: imported, with what the warning says")
    field: str
    message: str


class ImportRead(BaseModel):
    file: str
    read: int = Field(description="rows read (empty rows are not counted)")
    imported: int
    skipped_existing: int = Field(description="rows already imported before (the same id and message)")
    rejected: int
    queued_for_dispatch: int = Field(
        description="new orders handed to the background dispatcher (dispatch=true): decided automatically, or first "
        "checked for an earlier duplicate, as appeals created over the API are; 0 when it does not run"
    )
    import_batch_id: int | None = Field(
        description="the import's batch, which every order it created names: `GET /api/v1/orders?import_batch_id=` "
        "lists them (null when it created none)"
    )
    warnings: int = Field(description="warnings of the rows imported now (a row may have several)")
    warned_rows: int = Field(description="rows imported now with at least one warning")
    warning_kinds: dict[str, int]
    issues: list[ImportIssueRead] = Field(
        description=f"rejected and warned rows in row order: the first {importer.MAX_KEPT_ISSUES}, of which at most "
        f"{importer.MAX_KEPT_WARNINGS} warnings (warning_kinds counts them all)"
    )
    issues_truncated: bool


def import_read(report: importer.ImportReport) -> ImportRead:
    return ImportRead(
        **report.summary(),
        issues=[ImportIssueRead(row=i.row, level=i.level, field=i.field, message=i.message) for i in report.issues],
        issues_truncated=report.rejected + report.warnings > len(report.issues),
    )


@router.post("/import", response_model=ImportRead)
def import_orders(
    db: DbSession,
    principal: Importer,
    upload: Annotated[UploadFile, File(alias="file", description="a CSV (UTF-8 or GBK) or Excel file")],
    channel: Annotated[str | None, Form(description="channel of every row (default: the file's, or import)")] = None,
    sheet: Annotated[str | None, Form(description="Excel sheet (default: the first)")] = None,
    as_history: Annotated[
        bool, Form(description="orders dealt with elsewhere, stored closed (every row needs created_at)")
    ] = False,
    column: Annotated[
        list[str] | None,
        Form(description="FIELD=HEADER, repeatable: the column of a field its header does not name"),
    ] = None,
    dispatch: Annotated[
        bool,
        Form(
            description="hand the new received orders to automatic dispatch, as appeals created over the API "
            "(false: they wait for a dispatcher)"
        ),
    ] = True,
) -> Any:
    """Import the orders of a CSV or Excel file (at most 20 MB; larger files with ``cityhub import orders``): every
    good row is imported, every rejected one listed by its row and field; importing the same file again adds nothing.
    Headers as the command line reads them (留言主题/title, 留言详情/content, 留言时间/created_at, 地址/address …).
    New received orders go to automatic dispatch as appeals created over the API do (``dispatch``, with the background
    dispatcher running), else wait in the dispatcher's queue; the audit trail names the caller. A file that cannot be
    read at all is refused (422); one that becomes unreadable midway keeps the rows before that point and is
    refused with ``details.report`` saying what was imported."""
    options: dict[str, Any] = {
        "channel": channel or None,
        "sheet": sheet or None,
        "as_history": as_history,
        "columns": importer.parse_column_choices(column or []),
        "actor": principal.actor,
        "dispatch": dispatch,
    }
    data = upload.file.read(importer.UPLOAD_MAX_BYTES + 1)
    try:
        report = importer.import_upload(db, filename=upload.filename or "", data=data, **options)
    except importer.ImportStopped as exc:
        raise ValidationFailed(
            exc.message, details={"field": "file", "report": import_read(exc.report).model_dump()}
        ) from None
    return import_read(report)
