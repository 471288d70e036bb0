"""Files the command line writes for people to take away: database backups, order exports, model directories.

Their targets are checked before the work starts, so a bad path is one line naming it (not a traceback after the
work, nor a half-written file). Backups and exports hold citizens' personal data: they are created private (mode
0600, whatever the umask allows of it) under a temporary name beside the target (``<name>.partial``) and moved into
place once complete; a failure removes the temporary files. A CSV written for people to open in a spreadsheet is
written by :class:`SpreadsheetCsv`, so that no cell of it runs as a formula.
"""

from __future__ import annotations

import csv
import errno
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from cityhub.errors import ValidationFailed

PRIVATE_MODE = 0o600
PARTIAL_SUFFIX = ".partial"


class TargetRefused(ValidationFailed):
    """A file to write refused before any work was done: a directory, the live database, a path through a file — a
    mistyped argument. ``cityhub db backup`` does not count it as a failed backup (a folder it may not write, a
    read-only or full disk, is the machine's state: a failed backup)."""


# The errors of a path that cannot name a file to write: through a file (ENOTDIR), onto a directory (EISDIR).
_MISTYPED = frozenset({errno.ENOTDIR, errno.EISDIR})


def partial_path(target: Path) -> Path:
    """Where ``target`` is written until it is complete."""
    return target.with_name(target.name + PARTIAL_SUFFIX)


def _why(exc: OSError) -> str:
    if isinstance(exc, FileExistsError):  # mkdir of a directory whose name a file has: a path through a file
        return os.strerror(errno.ENOTDIR)
    return exc.strerror or str(exc)


@contextmanager
def private_files(targets: Sequence[Path], what: str) -> Iterator[list[Path]]:
    """Yield a private, empty temporary file beside each of ``targets`` (missing directories created) for the block
    to write (by path: opening one for writing keeps its mode); move them over the targets when the block succeeds,
    remove them when it fails. ``what`` names the files in errors ("backup", "export"): TargetRefused, one line, for a
    target that is a directory or a path through a file (before the block runs), ValidationFailed for one that may
    not be written (denied, a read-only or full disk) and for an OSError while the block writes."""
    paths = [Path(t) for t in targets]
    for target in paths:
        if target.is_dir():
            raise TargetRefused(f"{what} target {target} is a directory; give a file name")
    made: list[Path] = []
    try:
        for target in paths:
            part = partial_path(target)
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                part.unlink(missing_ok=True)  # left by a killed run: created afresh, so with this mode
                os.close(os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_MODE))
            except OSError as exc:
                if isinstance(exc, FileExistsError) or exc.errno in _MISTYPED:
                    raise TargetRefused(f"cannot write {what} {target}: {_why(exc)}") from None
                # Denied, a read-only or full disk: the machine's state, not a typo — a nightly backup failing so is
                # a failed backup (/healthz says it).
                raise ValidationFailed(f"cannot write {what} {target}: {_why(exc)}") from None
            made.append(part)
        try:
            yield made
        except OSError as exc:
            name = exc.filename or paths[0]
            raise ValidationFailed(f"writing {what} {name} failed: {_why(exc)}") from None
        for target, part in zip(paths, made, strict=True):
            os.replace(part, target)
    except BaseException:
        for part in made:
            part.unlink(missing_ok=True)
        raise


def check_directory(path: Path, what: str, holding: str) -> None:
    """ValidationFailed, one line, unless a program can write files into directory ``path`` (created if missing):
    asked before a long computation whose result (``holding``, e.g. "the model") goes there. ``what`` starts the
    message (e.g. "--out:"). Directories created only to ask are removed again."""
    directory = Path(path)
    if directory.exists() and not directory.is_dir():
        raise ValidationFailed(f"{what} {directory} is a file; give a directory for {holding}")
    missing = []
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise ValidationFailed(f"{what} cannot write {holding} into {directory}: {_why(exc)}") from None
    finally:
        for created in missing:  # deepest first
            try:
                created.rmdir()
            except OSError:
                break


def same_file(a: Path, b: Path) -> bool:
    """Whether paths ``a`` and ``b`` name the same file (links and relative spellings resolved)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return Path(a).resolve() == Path(b).resolve()


def check_output(target: Path, what: str, *, inputs: Sequence[Path] = ()) -> None:
    """ValidationFailed, one line naming ``target``, unless a file can be written there: not a directory, not one of
    ``inputs`` (the files the command reads: writing one would destroy it before it is read), an existing file
    writable, else its directory writable (missing directories can be created). Asked before the work; nothing is
    changed (an existing file is not truncated, directories created only to ask are removed). ``what`` names the
    file in messages (e.g. "--errors")."""
    path = Path(target)
    if path.is_dir():
        raise ValidationFailed(f"{what} {path} is a directory; give a file name")
    for source in inputs:
        if same_file(path, Path(source)):
            raise ValidationFailed(f"{what} {path} is the input file; give another name (it would be overwritten)")
    if path.exists():
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC))
        except OSError as exc:
            raise ValidationFailed(f"cannot write {what} {path}: {_why(exc)}") from None
        return
    check_directory(path.parent, f"{what} {path}:", "the file")


def open_output(
    target: Path,
    what: str,
    *,
    inputs: Sequence[Path] = (),
    encoding: str | None = "utf-8",
    newline: str | None = None,
) -> IO[str]:
    """``target`` opened for writing text (missing directories created), private as backups and exports are (an
    import's rejected rows hold citizens' phone numbers as typed), after :func:`check_output`; an OSError is
    ValidationFailed, one line naming the file. Open it once the inputs have been opened: the caller closes it."""
    path = Path(target)
    check_output(path, what, inputs=inputs)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_MODE)
        try:
            os.fchmod(fd, PRIVATE_MODE)  # a file there before keeps its own mode otherwise
            return os.fdopen(fd, "w", encoding=encoding, newline=newline)
        except BaseException:
            os.close(fd)
            raise
    except OSError as exc:
        raise ValidationFailed(f"cannot write {what} {path}: {_why(exc)}") from None


# How a cell starts that a spreadsheet (Excel, WPS, LibreOffice) opening a CSV runs as a formula: OWASP's list for
# "CSV injection". A citizen's message beginning =HYPERLINK(…) or =cmd|… would run on the operator's machine. The
# full-width forms a Chinese input method types (＝ ＋ － ＠) too: some spreadsheet versions read ＝ as =.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def spreadsheet_cell(value: Any) -> Any:
    """``value`` as a CSV cell people open in a spreadsheet: a text starting as a formula does (:data:`FORMULA_STARTS`)
    gets a ``'`` in front, as OWASP advises, so the spreadsheet takes it for text; a number (``-3.5``, also written
    as text), the lone ``-`` that stands for no value, and every other value are left as they are."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and value != "-" and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


class SpreadsheetCsv:
    """The CSV writer of a file written for people (order exports, import error lists, KPI tables): a ``csv.writer``
    whose every cell goes through :func:`spreadsheet_cell`, so that none runs as a formula when the file is opened in
    a spreadsheet. Files written for cityhub to read back (``dispatch export-training``, ``demo csv``) use the plain
    ``csv.writer``: the ``'`` would become part of the text read."""

    def __init__(self, fh: IO[str]) -> None:
        self._writer = csv.writer(fh)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([spreadsheet_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
