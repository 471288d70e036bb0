"""Files attached to an order and kept by cityhub itself (附件上传): the citizen's photos an operator received, an
inspector's photo from the street, a handler's photos of the work done, a call recording, a scanned letter.

An attachment is either a link (given with the appeal, a camera's snapshot: :func:`cityhub.workorders.schemas.
web_address`) or a file in this store. The store is a directory (``CITYHUB_FILES_DIR``) of files named by the
SHA-256 of their content, ``<dir>/ab/cd/<sha256>``: the same photo attached twice is kept once, a file is written
under a temporary name and renamed when complete (a crash leaves no half file under its final name), and nothing
in it is ever rewritten. Back it up with the database (``cityhub db backup`` copies only the database).

What a file is, is read from its first bytes (``filetype``), never from its name or the type the client claims:
only the kinds of :data:`KINDS` are taken — images, PDF, office documents, audio and video — and a file is served
with the type read. Each upload is one audited ``comment`` event on the order naming the files it added; every file
of an upload is checked before any is stored, and one bad file refuses the upload, naming it.

No stored file is public, but a photo staff published (:func:`publish`, 公开): Open311's ``media_url`` links its
upright copy without EXIF at an address of an opaque token, until it is withdrawn (:func:`withdraw`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import secrets
import tempfile
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import IO, Any, cast

import filetype
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import event, func, or_, select
from sqlalchemy.orm import Session

from cityhub.db import session_scope, upsert_insert, utcnow
from cityhub.errors import NotFound, PermissionDenied, StorageUnavailable, ValidationFailed, check_length, check_text
from cityhub.org.models import Role
from cityhub.workorders.lifecycle import Action
from cityhub.workorders.models import Attachment, Order, OrderEvent, OrderView
from cityhub.workorders.schemas import REASON_MAX_CHARS

log = logging.getLogger(__name__)

# The kinds taken, by the MIME type ``filetype`` reads from the content.
IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "image/bmp"})
# Photos cityhub makes upright JPEG copies of without their EXIF (thumbnails, previews, what masked readers open):
# the images above and iPhones' HEIC, which browsers do not show (its original is downloaded, its preview viewed).
PHOTOS: frozenset[str] = IMAGES | {"image/heic"}
KINDS: frozenset[str] = PHOTOS | {
    "image/tiff",  # scanners
    "application/pdf",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "audio/mpeg",
    "audio/mp4",
    "audio/x-wav",
    "audio/amr",  # phones' voice notes and many call recorders
    "audio/aac",
    "audio/ogg",
    "video/mp4",
    "video/quicktime",
    "video/3gpp",
    "video/webm",
}
# Shown in the browser; every other kind is downloaded (a PDF too: it could carry scripts, and a sandboxed answer
# cannot show it).
INLINE: frozenset[str] = IMAGES | {"audio/mpeg", "audio/mp4", "audio/x-wav", "audio/ogg", "video/mp4", "video/webm"}
# The answer serving a stored file is a document of its own: no script runs in it, whatever it holds.
CONTENT_POLICY = "sandbox; default-src 'none'; img-src 'self'; media-src 'self'; style-src 'unsafe-inline'"
NAME_MAX = 255
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")
_SHA256 = re.compile(r"[0-9a-f]{64}")


class FileSettings(BaseSettings):
    """Files attached to orders (附件): where they are kept and how large they may be."""

    model_config = SettingsConfigDict(env_prefix="CITYHUB_FILES_", env_file=".env", extra="ignore")

    dir: str = Field(
        "data/files",
        description="Directory of the files attached to orders (relative to the working directory, as the default "
        "SQLite database); files are named by their content's SHA-256. Back it up with the database.",
    )
    max_mb: float = Field(20.0, gt=0, le=1024, description="Largest file accepted, in megabytes (MiB).")
    max_count: int = Field(10, ge=1, le=100, description="Most files one upload may carry.")
    held_hours: float = Field(
        24.0,
        gt=0,
        le=24 * 30,
        description="Hours the files of a refused web form are held for it (已保留的附件: sent again, they are "
        "attached without being chosen again); the files-prune job deletes them after.",
    )

    @property
    def max_bytes(self) -> int:
        return int(self.max_mb * 1024 * 1024)


def get_file_settings() -> FileSettings:
    # Not cached: tests and a changed environment take effect at once.
    return FileSettings()


def read_limit() -> int:
    """How much of an arriving file to read: one byte past the largest size taken, so that :func:`check` refuses a
    larger one by name without the rest being read."""
    return get_file_settings().max_bytes + 1


def too_many_files(settings: FileSettings | None = None) -> ValidationFailed:
    """The refusal of an upload of more files than one may carry."""
    limit = (settings or get_file_settings()).max_count
    return ValidationFailed(
        f"more than {limit} files given; at most {limit} per upload",
        details={"field": "files", "problem": "too_many", "max_count": limit},
    )


@dataclass(frozen=True)
class Upload:
    """One file as it arrived: the name the client gave and its bytes."""

    filename: str | None
    data: bytes

    @property
    def given(self) -> bool:
        """Whether a file was given: a file input left empty arrives with no name and no bytes."""
        return bool(self.filename or self.data)


async def read_multipart(
    request: Any, *, limit: int, max_files: int, max_fields: int, max_part_size: int, read_files: int | None = None
) -> tuple[list[tuple[str, str]], list[tuple[str, Upload]]]:
    """A multipart POST's text fields and its file parts by field name, each read up to ``limit`` bytes (one past
    the largest taken: :func:`check` refuses a larger one by name), a file input left empty among them
    (:attr:`Upload.given` tells); with ``read_files``, the files past that many are listed by name, unread (they are
    refused for their number). Raises starlette's ``MultiPartException`` for a body it cannot read (too many files
    or fields, a part too large) — which starlette itself answers as an HTTP 400 within an application."""
    from starlette.datastructures import UploadFile
    from starlette.exceptions import HTTPException
    from starlette.formparsers import MultiPartException

    pairs: list[tuple[str, str]] = []
    uploads: list[tuple[str, Upload]] = []
    try:
        form = request.form(max_files=max_files, max_fields=max_fields, max_part_size=max_part_size)
        async with form as parsed:
            for key, value in parsed.multi_items():
                if not isinstance(value, UploadFile):
                    pairs.append((key, value))
                elif read_files is not None and sum(u.given for _, u in uploads) >= read_files:
                    unread = value.filename or ("?" if value.size else None)
                    uploads.append((key, Upload(filename=unread, data=b"")))
                else:
                    uploads.append((key, Upload(filename=value.filename, data=await value.read(limit))))
    except HTTPException as exc:
        raise MultiPartException(str(exc.detail)) from None
    return pairs, uploads


@dataclass(frozen=True)
class Checked:
    filename: str
    content_type: str
    data: bytes
    sha256: str


def clean_name(name: str | None, *, content_type: str, index: int) -> str:
    """The name a file is shown by: the client's name without its folders, control characters and invisible format
    characters (a right-to-left override shows ``\u202egnp.exe`` as ``exe.png``), at most 255 characters keeping its
    extension; ``附件N.ext`` when it gave none."""
    base = unicodedata.normalize("NFC", name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(c for c in _UNSAFE_NAME.sub("", base) if unicodedata.category(c) != "Cf").strip().lstrip(".")
    if not base:
        kind = filetype.get_type(mime=content_type)
        base = f"附件{index + 1}.{kind.extension if kind else 'bin'}"
    if len(base) > NAME_MAX:
        _stem, dot, ext = base.rpartition(".")
        keep = ext if dot and len(ext) <= 10 else ""
        base = base[: NAME_MAX - len(keep) - 1] + "." + keep if keep else base[:NAME_MAX]
    return base


def check(uploads: Sequence[Upload], settings: FileSettings | None = None) -> list[Checked]:
    """Every file of an upload, checked; the first that is not acceptable raises ``ValidationFailed`` naming it
    (field ``files``, its position and name). Nothing is stored here."""
    settings = settings or get_file_settings()
    if not uploads:
        raise ValidationFailed("no file given", details={"field": "files", "problem": "none"})
    if len(uploads) > settings.max_count:
        raise too_many_files(settings)
    checked = []
    for index, upload in enumerate(uploads):
        shown = upload.filename or f"#{index + 1}"

        def refuse(code: str, text: str, _index: int = index, _shown: str = shown) -> ValidationFailed:
            return ValidationFailed(
                f"file {_index + 1} ({_shown}): {text}",
                details={"field": "files", "problem": code, "index": _index, "filename": _shown},
            )

        if not upload.data:
            raise refuse("empty", "the file is empty")
        if len(upload.data) > settings.max_bytes:
            raise refuse("too_large", f"larger than {settings.max_mb:g} MB")
        kind = filetype.guess_mime(upload.data)
        if kind not in KINDS:
            raise refuse(
                "kind",
                f"not a kind of file taken ({kind or 'unrecognised content'}); photos, PDF, office documents, "
                "audio and video are",
            )
        checked.append(
            Checked(
                filename=clean_name(upload.filename, content_type=kind, index=index),
                content_type=kind,
                data=upload.data,
                sha256=hashlib.sha256(upload.data).hexdigest(),
            )
        )
    return checked


def path_of(sha256: str, settings: FileSettings | None = None) -> Path:
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a SHA-256: {sha256!r}")
    root = Path((settings or get_file_settings()).dir)
    return root / sha256[:2] / sha256[2:4] / sha256


def store(item: Checked, settings: FileSettings | None = None) -> Path:
    """Write ``item`` to the store, once: a file already there under its hash is the same content.
    ``StorageUnavailable`` when the store cannot be written (a missing mount, no space, no permission)."""
    target = path_of(item.sha256, settings)
    if target.exists():
        return target
    try:
        _write_new(target, lambda out: out.write(item.data), durable=True)
    except OSError as exc:  # a missing mount, no space left, no permission
        raise StorageUnavailable(
            f"the file store cannot be written ({exc.strerror or exc}); nothing was attached — tell the administrators"
        ) from None
    return target


@contextlib.contextmanager
def _store_lock() -> Iterator[None]:
    """The file store's lock (``<store>/.lock``, a POSIX lock: the processes of one host): held while a removal
    deletes a file no attachment holds any more, and while an upload, once its attachments are committed, makes sure
    their files are still there. Between the two, the same bytes attached while another attachment of them is removed
    keep their file (see :func:`remove`)."""
    root = Path(get_file_settings().dir)
    root.mkdir(parents=True, exist_ok=True)
    with (root / ".lock").open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _write_new(target: Path, write: Callable[[IO[bytes]], object], *, durable: bool) -> None:
    """Write ``target`` under a temporary name beside it (``.write-…``, what :func:`prune` clears when a write was
    interrupted) and rename it into place: no half file ever carries the final name. Mode 0640 — citizens' photos
    are not for every account of the machine; ``durable``: on disk before the rename (what a commit will refer
    to)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".write-")
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.chmod(tmp, 0o640)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def store_problem(settings: FileSettings | None = None) -> str | None:
    """Why the store cannot take files now, for ``/healthz`` (no path: the probe is public); None when it can. A
    directory not made yet is fine where it can be made."""
    root = Path((settings or get_file_settings()).dir)
    probe = root
    while not probe.exists():
        if probe.parent == probe:
            return "its directory cannot be made"
        probe = probe.parent
    if not probe.is_dir():
        return "its directory cannot be made (a file is in the way)"
    if not os.access(probe, os.W_OK | os.X_OK):
        return "its directory is not writable"
    return None


THUMB_PX = 320  # the longer side of a photo's thumbnail on the order page
PREVIEW_PX = 2048  # the longer side of the copy shown to whoever reads the order masked
MAX_PIXELS = 60_000_000  # a larger image is not decoded (decompression bombs)
# Renditions of a stored photo, by their longer side: the directory beside the store that keeps them.
_RENDITIONS = {THUMB_PX: "thumbs-v2", PREVIEW_PX: "previews-v2"}
# Where versions before 2026-12-06 kept their copies, which carried the upload's JPEG or GIF comment (a name, a phone
# number): never served again (the copies are made anew under _RENDITIONS as they are asked for); :func:`prune`
# deletes them.
_SUPERSEDED_RENDITIONS = ("thumbs", "previews")


def rendition(row: Attachment, px: int, settings: FileSettings | None = None) -> Path | None:
    """A JPEG of a stored photo at most ``px`` on its longer side (:data:`THUMB_PX` or :data:`PREVIEW_PX`), turned
    upright by its EXIF orientation and carrying no EXIF (no GPS position, no device) nor the comment a JPEG or GIF
    may hold (a name, a phone number), made once and kept beside the store; None for what is not a photo or cannot
    be decoded."""
    from PIL import Image, ImageOps

    if row.sha256 is None or row.content_type not in PHOTOS:
        return None
    if row.content_type == "image/heic":
        _open_heif()
    settings = settings or get_file_settings()
    target = _rendition_path(row.sha256, px, settings)
    if target.is_file():
        return target
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(path_of(row.sha256, settings)) as image:
            image.draft("RGB", (px * 2, px * 2))  # a JPEG decoded at a fraction of its size
            small = ImageOps.exif_transpose(image).convert("RGB")
        small.thumbnail((px, px))
        small.info = {}  # Pillow writes a JPEG's comment from the image's info: none of the upload's
        _write_new(target, lambda out: small.save(out, "JPEG", quality=80 if px <= THUMB_PX else 85), durable=False)
    except (OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None
    return target


@cache
def _open_heif() -> None:
    """Teach Pillow to read HEIC (pillow-heif), once per process."""
    from pillow_heif import register_heif_opener

    register_heif_opener()


def _rendition_path(sha256: str, px: int, settings: FileSettings | None = None) -> Path:
    root = Path((settings or get_file_settings()).dir)
    return root / _RENDITIONS[px] / sha256[:2] / f"{sha256}.jpg"


def thumbnail(row: Attachment, settings: FileSettings | None = None) -> Path | None:
    """The order page's small picture of a stored photo (:func:`rendition` at :data:`THUMB_PX`)."""
    return rendition(row, THUMB_PX, settings)


def preview(row: Attachment, settings: FileSettings | None = None) -> Path | None:
    """A stored photo to look at in any browser (:func:`rendition` at :data:`PREVIEW_PX`): how a HEIC is viewed."""
    return rendition(row, PREVIEW_PX, settings)


def masked_copy(row: Attachment) -> Path:
    """What whoever reads the order masked (:func:`cityhub.auth.scope.sees_personal_data` false) may open of a
    stored file: a photo as an upright copy without its EXIF (where and with what it was taken) at most
    :data:`PREVIEW_PX`; nothing else — a scanned letter, a call recording, a video may name or show who appealed —
    ``PermissionDenied`` naming why."""
    copy = preview(row)
    if copy is None:
        raise PermissionDenied(
            "this file may show who appealed: it opens for those who read the appeal's personal data",
            details={"masked": True},
        )
    return copy


def content_path(attachment: Attachment) -> str:
    """The API path that serves a stored file (to whoever may read its order)."""
    return f"/api/v1/orders/{attachment.order_id}/attachments/{attachment.id}/content"


def attach(
    session: Session,
    *,
    order_id: int,
    uploads: Sequence[Upload] | Sequence[Checked],
    actor: Any,
    note: str | None = None,
    expected_version: int | None = None,
    with_appeal: bool = False,
    beside: bool = False,
) -> list[Attachment]:
    """Check ``uploads``, keep them in the store and attach them to the order, in one audited ``comment`` event
    (its text the note, else "attached N file(s)"; its payload the attachments' ids, names, types and sizes). Raises
    ``ValidationFailed`` naming the first bad file (nothing is attached) and what ``act`` raises (a closed order
    takes comments too; a stale ``expected_version`` is a ``Conflict``). ``with_appeal``: the files came with the
    appeal, received in the same transaction (the intake form): they are the citizen's, as a link given with the
    appeal is (``uploaded_by`` left empty; the event names who received them); so are those a citizen adds to
    their own appeal. Files already through
    :func:`check` (the same upload attached to two orders) are not checked again. ``beside``: the event is written
    beside the order (:func:`service.note_beside`), which keeps its version — a merged appeal's files reaching its
    master, where a handler acting meanwhile must not be refused as if someone had changed the order."""
    from cityhub.workorders import service

    if uploads and isinstance(uploads[0], Checked):
        items = list(cast(Sequence[Checked], uploads))
    else:
        items = check(cast(Sequence[Upload], uploads))
    note = (note or "").strip() or None
    check_length(note, "note", REASON_MAX_CHARS)
    check_text(note, "note")
    order = service.get_order(session, order_id=order_id)
    if order is None:
        raise NotFound(f"order {order_id} not found")
    # The citizen's files (``uploaded_by`` empty, shown to them): the appeal's, or what they add to it themselves
    # (补充材料, a ``supplement``: ``uploaded_by_id`` is theirs, so they may remove it).
    supplement = not with_appeal and actor.role == Role.CITIZEN
    citizens = with_appeal or supplement
    for item in items:
        store(item)
    # A removal of another attachment of the same bytes may commit between this write (or this finding the file
    # already there) and this commit, and delete the file as held by nothing: once committed, put it back if so.
    _after_commit(session, lambda: _restore(items))
    rows = [
        Attachment(
            order_id=order_id,
            filename=item.filename,
            content_type=item.content_type,
            size=len(item.data),
            url="",
            sha256=item.sha256,
            uploaded_by=None if citizens else actor.name,
            uploaded_by_id=None if with_appeal else actor.user_id,
        )
        for item in items
    ]
    session.add_all(rows)
    session.flush()
    for row in rows:
        row.url = content_path(row)
    listed = [{"id": r.id, "filename": r.filename, "content_type": r.content_type, "size": r.size} for r in rows]
    # The names in the payload; ``supplement``: the citizen added them to their appeal (补充材料).
    params = {
        "text": note or f"attached {len(rows)} file(s)",
        "attachments": listed,
        **({"supplement": True} if supplement else {}),
    }
    if beside:
        state = order.state.value
        service.note_beside(
            session,
            order=order,
            action=Action.COMMENT.value,
            actor=actor,
            at=utcnow(),
            payload=params,
            from_state=state,
        )
    else:
        service.act(
            session,
            order_id=order_id,
            action=Action.COMMENT,
            actor=actor,
            params=params,
            expected_version=expected_version,
        )
    if supplement:  # the units working the appeal hear of it (no personal data)
        from cityhub.masking import scrub_text
        from cityhub.notify.models import Topic
        from cityhub.notify.service import actor_shown, enqueue

        payload: dict[str, Any] = {
            "action": "comment",
            "actor": actor_shown(order, actor.user_id, actor.name),
            "at": utcnow().isoformat(),
            "attachments": listed,
        }
        if note:
            payload["text"] = scrub_text(note, known=(order.citizen_name, order.citizen_phone))
        enqueue(session, topic=Topic.MATERIAL, order=order, payload=payload)
    return rows


def with_supplements(session: Session, order_ids: Sequence[int], *, reader_id: int | None = None) -> set[int]:
    """Of ``order_ids``, the orders their citizen added files to after filing (补充材料: the ``supplement`` comments):
    what the order lists mark, so a unit working one looks at what came in. With ``reader_id``, only additions
    that user has not seen: made after they last opened the order's page (:func:`mark_seen`)."""
    if not order_ids:
        return set()
    query = (
        select(OrderEvent.order_id, OrderEvent.payload)
        .join(Order, Order.id == OrderEvent.order_id)
        .where(
            OrderEvent.order_id.in_(list(order_ids)),
            OrderEvent.action == Action.COMMENT.value,
            OrderEvent.actor_id == Order.citizen_user_id,
        )
    )
    if reader_id is not None:
        query = query.outerjoin(
            OrderView, (OrderView.order_id == OrderEvent.order_id) & (OrderView.user_id == reader_id)
        ).where(or_(OrderView.viewed_at.is_(None), OrderEvent.at > OrderView.viewed_at))
    return {order_id for order_id, payload in session.execute(query) if (payload or {}).get("supplement")}


def mark_seen(session: Session, *, order_id: int, user_id: int) -> None:
    """Record that ``user_id`` opened the order's page now, when the citizen added files they had not seen yet: the
    lists stop marking those for them (only such orders are recorded, so most page views write nothing)."""
    if not with_supplements(session, [order_id], reader_id=user_id):
        return
    now = utcnow()
    insert = upsert_insert(session.get_bind().dialect.name)
    session.execute(
        insert(OrderView)
        .values(order_id=order_id, user_id=user_id, viewed_at=now)
        .on_conflict_do_update(index_elements=["order_id", "user_id"], set_={"viewed_at": now})
    )


REMOVE_REASON_MAX_CHARS = 500  # the API takes it in the query string


def remove(
    session: Session, *, order_id: int, attachment_id: int, actor: Any, reason: str | None, may_remove_any: bool
) -> Attachment:
    """Remove one attachment of the order (a wrong photo, a document showing someone's ID card): the row goes, with
    one audited ``comment`` event naming what was removed (its name, type, size, hash, who attached it) and why; a
    stored file no other attachment holds is deleted from the store once the transaction commits. Whoever attached
    a file may remove it; anyone else needs ``may_remove_any`` (supervisors, administrators). A reason is required."""
    from cityhub.workorders import service

    row = session.get(Attachment, attachment_id)
    if row is None or row.order_id != order_id:
        raise NotFound(f"attachment {attachment_id} of order {order_id} not found")
    own = row.uploaded_by_id is not None and row.uploaded_by_id == actor.user_id
    if not (own or may_remove_any):
        raise PermissionDenied("only whoever attached a file, a supervisor or an administrator may remove it")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("reason is required: say why the attachment is removed", details={"field": "reason"})
    check_length(reason, "reason", REMOVE_REASON_MAX_CHARS)
    removed = {
        "id": row.id,
        "filename": row.filename,
        "content_type": row.content_type,
        "size": row.size,
        "sha256": row.sha256,
        "uploaded_by": row.uploaded_by,
    }
    session.delete(row)
    session.flush()
    service.act(
        session,
        order_id=order_id,
        action=Action.COMMENT,
        actor=actor,
        params={"text": f"removed attachment {removed['id']}", "reason": reason, "removed_attachments": [removed]},
    )
    sha = row.sha256
    if sha is not None and not session.scalar(select(func.count()).where(Attachment.sha256 == sha)):
        # After the commit: a rolled-back removal keeps its file. Asked again then, under the store's lock: the same
        # bytes attached by another request meanwhile keep the file (one still uncommitted puts it back itself).
        _after_commit(session, lambda: _delete_unheld(sha))
    return row


def _moderated(session: Session, *, order_id: int, attachment_id: int) -> Attachment:
    """The order's attachment to publish or withdraw, its row locked on PostgreSQL (two moderators at once: one
    event each way, not two)."""
    query = select(Attachment).where(Attachment.id == attachment_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.scalars(query).one_or_none()
    if row is None or row.order_id != order_id:
        raise NotFound(f"attachment {attachment_id} of order {order_id} not found")
    return row


def _note_publication(session: Session, *, row: Attachment, actor: Any, text: str, key: str) -> None:
    """The trail's entry of a publication or withdrawal: a ``comment`` beside the order (its state and version stay:
    a handler acting meanwhile is not refused), naming the photo; who and when are the event's own."""
    from cityhub.workorders import service

    order = row.order  # not locked: the entry is beside the order, as a merged appeal's files are
    service.note_beside(
        session,
        order=order,
        action=Action.COMMENT.value,
        actor=actor,
        at=utcnow(),
        payload={
            "text": f"{text} {row.id}",
            key: [{"id": row.id, "filename": row.filename, "content_type": row.content_type, "sha256": row.sha256}],
        },
        from_state=order.state.value,
    )


def publish(session: Session, *, order_id: int, attachment_id: int, actor: Any) -> Attachment:
    """Publish a stored photo of the order (公开) for Open311's ``media_url``: it gets a new opaque token, its public
    address ``/open311/v2/media/{token}``, which serves its upright copy without EXIF (:func:`public_copy`) to anyone.
    The permission (``attachments:remove``: supervisors, administrators) is the caller's to check. Only photos
    (:data:`PHOTOS`, the citizen's or staff's): a link, a document, a recording or a video is refused
    (``ValidationFailed``, field ``attachment``), as a photo that does not decode. Audited as a ``comment`` naming it
    (``published_attachments``); one already published is left as it is, nothing written."""
    row = _moderated(session, order_id=order_id, attachment_id=attachment_id)
    if row.public_token is not None:
        return row
    if row.sha256 is None or row.content_type not in PHOTOS:
        kind = "a link" if row.sha256 is None else (row.content_type or "a file of unknown type")
        raise ValidationFailed(
            f"only photos can be published; attachment {row.id} ({row.filename}) is {kind}",
            details={"field": "attachment", "problem": "not_photo", "content_type": row.content_type},
        )
    if rendition(row, PREVIEW_PX) is None:
        raise ValidationFailed(
            f"attachment {row.id} ({row.filename}) cannot be read as a photo, so it cannot be published",
            details={"field": "attachment", "problem": "undecodable", "content_type": row.content_type},
        )
    row.public_token = secrets.token_urlsafe(24)
    row.published_at = utcnow()
    session.flush()
    _note_publication(session, row=row, actor=actor, text="published attachment", key="published_attachments")
    return row


def withdraw(session: Session, *, order_id: int, attachment_id: int, actor: Any) -> Attachment:
    """Withdraw a published photo (撤回公开): its token is dropped, so its public address answers 404 from the commit
    on, and Open311 no longer names it. Audited as a ``comment`` naming it (``withdrawn_attachments``); one not
    published is left as it is, nothing written."""
    row = _moderated(session, order_id=order_id, attachment_id=attachment_id)
    if row.public_token is None:
        return row
    row.public_token = None
    row.published_at = None
    session.flush()
    _note_publication(
        session, row=row, actor=actor, text="withdrew publication of attachment", key="withdrawn_attachments"
    )
    return row


def public_copy(session: Session, token: str) -> Path:
    """What the public address of a published photo serves: its upright JPEG copy without EXIF (no GPS position, no
    device; at most :data:`PREVIEW_PX`), never the file as uploaded. ``NotFound`` for a token no published photo has
    (never, or withdrawn), or whose photo's order Open311 does not publish (``CITYHUB_OPEN311_CHANNELS``)."""
    from cityhub.config import get_settings

    query = select(Attachment).join(Order, Order.id == Attachment.order_id).where(Attachment.public_token == token)
    channels = get_settings().open311_channel_list
    if channels is not None:
        query = query.where(Order.channel.in_(channels))
    row = session.scalars(query).one_or_none() if token else None
    copy = preview(row) if row is not None else None
    if copy is None:
        raise NotFound("media not found", details={"field": "token"})
    return copy


def _delete_unheld(sha: str) -> None:
    """Delete the stored file ``sha`` and its renditions, unless a committed attachment holds it."""
    try:
        with _store_lock(), session_scope() as session:
            if session.scalar(select(func.count()).where(Attachment.sha256 == sha)):
                return
            for path in (path_of(sha), *(_rendition_path(sha, px) for px in _RENDITIONS)):
                path.unlink(missing_ok=True)
    except Exception:  # the removal is committed; the files-prune job deletes what no attachment holds
        log.exception("file %s of a removed attachment not deleted; the files-prune job will", sha)


def _restore(items: Sequence[Checked]) -> None:
    """After an upload's commit: write back any of ``items`` a concurrent removal deleted (see :func:`attach`)."""
    try:
        with _store_lock():
            for item in items:
                if not path_of(item.sha256).exists():
                    log.info("file %s removed by a concurrent removal; written again", item.sha256)
                    store(item)
    except Exception:  # committed already: the attachment answers 404 naming its missing file
        log.exception("files of a committed upload could not be checked in the store")


def _after_commit(session: Session, do: Any) -> None:
    """Call ``do()`` once the session's transaction commits; never, if it rolls back first."""
    armed = [True]

    def committed(_session: Session) -> None:
        if armed[0]:
            armed[0] = False
            do()

    def rolled_back(_session: Session) -> None:
        armed[0] = False

    event.listen(session, "after_commit", committed, once=True)
    event.listen(session, "after_rollback", rolled_back, once=True)


@dataclass
class Pruned:
    files: int = 0
    renditions: int = 0
    partial: int = 0
    bytes: int = 0


def prune(session: Session, *, older_than_s: float = 3600.0, dry_run: bool = False) -> Pruned:
    """Delete from the store what no attachment holds: files whose upload's transaction failed after they were
    written, renditions of removed photos, temporary files of interrupted writes — only those not touched for
    ``older_than_s`` (an upload in flight writes its file before its row commits) — and every copy earlier versions
    kept (:data:`_SUPERSEDED_RENDITIONS`). ``dry_run``: count only."""
    import time

    root = Path(get_file_settings().dir)
    cutoff = time.time() - older_than_s
    result = Pruned()

    def drop(path: Path, field: str) -> None:
        stat = path.stat()
        if stat.st_mtime >= cutoff:
            return
        setattr(result, field, getattr(result, field) + 1)
        result.bytes += stat.st_size
        if not dry_run:
            path.unlink(missing_ok=True)

    candidates: list[tuple[str, Path, str]] = []
    for path in root.glob("??/??/*"):
        if path.name.startswith("."):
            drop(path, "partial")
        elif _SHA256.fullmatch(path.name):
            candidates.append((path.name, path, "files"))
    for folder in _SUPERSEDED_RENDITIONS:
        for path in (root / folder).glob("??/*"):
            drop(path, "renditions")
    for folder in _RENDITIONS.values():
        for path in (root / folder).glob("??/*"):
            if path.name.startswith("."):
                drop(path, "partial")
            elif path.suffix == ".jpg" and _SHA256.fullmatch(path.stem):
                candidates.append((path.stem, path, "renditions"))
    for start in range(0, len(candidates), 500):
        batch = candidates[start : start + 500]
        held = set(
            session.scalars(select(Attachment.sha256).where(Attachment.sha256.in_({sha for sha, _, _ in batch})))
        )
        for sha, path, field in batch:
            if sha not in held:
                drop(path, field)
    return result


def stored_file(session: Session, *, order_id: int, attachment_id: int) -> tuple[Attachment, Path]:
    """The stored attachment of the order and where its file is; ``NotFound`` for a link, another order's
    attachment, or a file missing from the store (restored database without its files)."""
    row = session.get(Attachment, attachment_id)
    if row is None or row.order_id != order_id or row.sha256 is None:
        raise NotFound(f"attachment {attachment_id} of order {order_id} not found")
    path = path_of(row.sha256)
    if not path.is_file():
        raise NotFound(f"the file of attachment {attachment_id} is missing from the file store ({path.parent})")
    return row, path


def disposition(row: Attachment, *, copy: bool = False) -> str:
    """``Content-Disposition`` for serving ``row`` (or, ``copy``, a JPEG copy of it): shown when a browser shows it
    safely, else downloaded; the name as RFC 6266 / 5987 give it (an ASCII fallback, the UTF-8 name; a copy's with
    the .jpg it is)."""
    from urllib.parse import quote

    how = "inline" if copy or row.content_type in INLINE else "attachment"
    name = f"{Path(row.filename).stem or 'photo'}.jpg" if copy else row.filename
    ascii_name = name.encode("ascii", "ignore").decode().replace('"', "") or "file"
    return f"{how}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"
