"""Files held for a refused web form (已保留的附件): a browser cannot give a file input its files back, so when a form
with files (a handler's 答复 with photos, an inspector's report, the hotline's intake, a citizen's appeal, the order
page's 上传附件) is refused for another field, the files that would be taken are held here and the form comes back
listing them; sent again, they are attached exactly as fresh uploads are (:func:`cityhub.workorders.files.attach`).

The holding area is ``<CITYHUB_FILES_DIR>/held/<user id>/<token>/``: the file as it arrived (``data``) and a small
JSON sidecar (``meta.json``: owner, name, type, size, SHA-256, when). The token is random and unguessable
(``secrets``); it is looked for only in the area of the user who sends it, and its sidecar must name that user, so
another user's token, one unknown or one past ``CITYHUB_FILES_HELD_HOURS`` is never attached (:func:`claim` says
which). The ``files-prune`` job deletes what has expired (:func:`prune`); a form sent successfully releases its
held files at once. No database row: nothing here is part of an order until it is attached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import secrets
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session

from cityhub.workorders.files import PHOTOS, THUMB_PX, Checked, _after_commit, _write_new, get_file_settings

log = logging.getLogger(__name__)

FOLDER = "held"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")  # secrets.token_urlsafe(24)
_META = "meta.json"
_DATA = "data"
_THUMB = "thumb.jpg"
# A user's holding area keeps at most this many times CITYHUB_FILES_MAX_COUNT files (:func:`_trim`).
PER_USER = 3


@dataclass(frozen=True)
class Held:
    """One held file, as the form lists it."""

    token: str
    filename: str
    content_type: str
    size: int
    created: datetime

    @property
    def photo(self) -> bool:
        """Whether the page may show a thumbnail of it (:func:`thumbnail`)."""
        return self.content_type in PHOTOS


@dataclass
class Claimed:
    """The held files a form sent back: those that are its sender's and current (``items``), and how many of the
    tokens it carried were ignored — ``expired``, or ``unknown`` (never held, another user's, already attached)."""

    items: list[tuple[Held, Checked]]
    expired: int = 0
    unknown: int = 0

    @property
    def ignored(self) -> int:
        return self.expired + self.unknown

    @property
    def tokens(self) -> list[str]:
        return [held.token for held, _ in self.items]


def root() -> Path:
    return Path(get_file_settings().dir) / FOLDER


def _area(owner_id: int) -> Path:
    return root() / str(int(owner_id))


def max_age_s() -> float:
    return get_file_settings().held_hours * 3600


def _writer(data: bytes) -> Callable[[IO[bytes]], object]:
    return lambda out: out.write(data)


def hold(items: Sequence[Checked], *, owner_id: int) -> list[Held]:
    """Keep ``items`` (files already through :func:`cityhub.workorders.files.check`) in ``owner_id``'s holding area,
    each under a new random token; the sidecar is written last, so a half-held file is never found."""
    now = datetime.now(UTC)
    held = []
    for item in items:
        token = secrets.token_urlsafe(24)
        folder = _area(owner_id) / token
        meta = {
            "owner": int(owner_id),
            "filename": item.filename,
            "content_type": item.content_type,
            "size": len(item.data),
            "sha256": item.sha256,
            "created": now.isoformat(),
        }
        _write_new(folder / _DATA, _writer(item.data), durable=False)
        _write_new(folder / _META, _writer(json.dumps(meta, ensure_ascii=False).encode()), durable=False)
        held.append(Held(token, item.filename, item.content_type, len(item.data), now))
    if held:
        _trim(owner_id, keep={h.token for h in held})
    return held


def _trim(owner_id: int, *, keep: set[str]) -> None:
    """Hold at most :data:`PER_USER` times ``CITYHUB_FILES_MAX_COUNT`` files for one user (several tabs, forms
    refused again and again): the oldest beyond go (sent back, one is said as unknown, never attached), never
    those just held (``keep``)."""
    most = PER_USER * get_file_settings().max_count
    folders = [f for f in _area(owner_id).iterdir() if f.is_dir()]
    if len(folders) <= most:
        return

    def created(folder: Path) -> str:
        found = _read(owner_id, folder.name)
        return found[0].created.isoformat() if found else ""

    for folder in sorted((f for f in folders if f.name not in keep), key=created)[: len(folders) - most]:
        shutil.rmtree(folder, ignore_errors=True)


def _read(owner_id: int, token: str) -> tuple[Held, dict[str, Any]] | None:
    """The held file ``token`` of ``owner_id`` and its sidecar; None when it is no such file."""
    if not _TOKEN.fullmatch(token or ""):
        return None
    try:
        meta = json.loads((_area(owner_id) / token / _META).read_text(encoding="utf-8"))
        held = Held(
            token,
            str(meta["filename"]),
            str(meta["content_type"]),
            int(meta["size"]),
            datetime.fromisoformat(meta["created"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if meta.get("owner") != owner_id:
        return None
    return held, meta


def claim(tokens: Iterable[str], *, owner_id: int) -> Claimed:
    """The held files ``tokens`` name (each once, in their order) that ``owner_id`` holds and that have not expired,
    with their bytes, ready for :func:`cityhub.workorders.files.attach`; the others counted, never read."""
    claimed = Claimed(items=[])
    limit = max_age_s()
    now = datetime.now(UTC)
    for token in dict.fromkeys(tokens):
        found = _read(owner_id, token)
        if found is None:
            claimed.unknown += 1
            continue
        held, meta = found
        if (now - held.created).total_seconds() > limit:
            claimed.expired += 1
            continue
        try:
            data = (_area(owner_id) / token / _DATA).read_bytes()
        except OSError:
            claimed.unknown += 1
            continue
        sha = hashlib.sha256(data).hexdigest()
        if sha != meta.get("sha256"):
            claimed.unknown += 1
            continue
        claimed.items.append((held, Checked(held.filename, held.content_type, data, sha)))
    return claimed


def release(tokens: Iterable[str], *, owner_id: int) -> None:
    """Delete ``owner_id``'s held files ``tokens`` (attached, or removed from the form); others' are not touched."""
    for token in tokens:
        if _TOKEN.fullmatch(token or ""):
            shutil.rmtree(_area(owner_id) / token, ignore_errors=True)


def release_after_commit(session: Session, tokens: Sequence[str], *, owner_id: int) -> None:
    """:func:`release` once the session's transaction commits (the files are in the store then); never on a
    rollback — the form comes back holding them."""
    if tokens:
        kept = list(tokens)
        _after_commit(session, lambda: release(kept, owner_id=owner_id))


def thumbnail(owner_id: int, token: str) -> Path | None:
    """A small upright JPEG without EXIF of ``owner_id``'s held photo ``token`` (made once, beside it); None for
    another user's, an unknown or expired token, what is no photo or does not decode."""
    from PIL import Image, ImageOps

    from cityhub.workorders.files import MAX_PIXELS, _open_heif

    found = _read(owner_id, token)
    if found is None or not found[0].photo or (datetime.now(UTC) - found[0].created).total_seconds() > max_age_s():
        return None
    folder = _area(owner_id) / token
    target = folder / _THUMB
    if target.is_file():
        return target
    if found[0].content_type == "image/heic":
        _open_heif()
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with Image.open(folder / _DATA) as image:
            image.draft("RGB", (THUMB_PX * 2, THUMB_PX * 2))
            small = ImageOps.exif_transpose(image).convert("RGB")
        small.thumbnail((THUMB_PX, THUMB_PX))
        small.info = {}
        _write_new(target, lambda out: small.save(out, "JPEG", quality=80), durable=False)
    except (OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        return None
    return target


def prune(*, older_than_s: float | None = None) -> int:
    """Delete the held files older than ``older_than_s`` (``CITYHUB_FILES_HELD_HOURS``) — by their sidecar's time,
    or, a hold interrupted before its sidecar was written, by the folder's — and the users' areas left empty; how
    many held files were deleted."""
    limit = max_age_s() if older_than_s is None else older_than_s
    now = datetime.now(UTC)
    deleted = 0
    base = root()
    if not base.is_dir():
        return 0
    for area in base.iterdir():
        if not area.is_dir():
            continue
        for folder in area.iterdir():
            try:
                created = datetime.fromisoformat(json.loads((folder / _META).read_text(encoding="utf-8"))["created"])
                age = (now - created).total_seconds()
            except (OSError, ValueError, KeyError, TypeError):
                try:
                    age = time.time() - folder.stat().st_mtime
                except OSError:
                    continue
            if age > limit:
                if folder.is_dir():
                    shutil.rmtree(folder, ignore_errors=True)
                else:
                    folder.unlink(missing_ok=True)
                deleted += 1
        with contextlib.suppress(OSError):
            area.rmdir()  # only when empty
    return deleted
