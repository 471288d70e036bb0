"""Reading the text files people hand the product: UTF-8 (with or without BOM) or GB18030.

Government spreadsheets and lists are often saved by Excel or Notepad in the local code page (GBK, which GB18030
covers), so every reader of a user's text file — order imports, divisions, categories, knowledge entries, labelled
training data, address lists — decodes it here, and says the same thing when it cannot.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from cityhub.errors import NotFound, ValidationFailed

# Enough of a file to tell its encoding by.
SAMPLE_BYTES = 256 * 1024


class UnreadableFile(ValidationFailed):
    """The file as a whole cannot be read (missing, unknown encoding, not a table)."""

    code = "unreadable_file"


def detect_encoding(sample: bytes, *, name: str = "file") -> str:
    """UTF-8 (with or without BOM) or GB18030 (covers GBK/GB2312, what Excel writes for Chinese)."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise UnreadableFile(f"{name} is UTF-16 text; save it as UTF-8 (or GBK) and try again")
    if b"\x00" in sample:
        raise UnreadableFile(f"{name} is not a text file (binary content)")
    if _decodes(sample, "utf-8"):
        return "utf-8"
    if _reads_as_chinese(sample):
        return "gb18030"
    # A few stray bytes (a damaged line) do not make a file another encoding: its readers report them by line or row.
    if _mostly_decodes(sample, "utf-8"):
        return "utf-8"
    if _reads_as_chinese(sample, stray=True):
        return "gb18030"
    from charset_normalizer import from_bytes

    best = from_bytes(sample).best()
    guess = best.encoding if best is not None else None
    chinese = guess is None or guess.replace("_", "").lower() in {"gb2312", "gbk", "gb18030", "hz", "cp936"}
    if chinese and _decodes(sample, "gb18030"):
        return "gb18030"
    raise UnreadableFile(
        f"{name}: cannot read the text encoding (not UTF-8 or GBK/GB18030"
        + (f"; it looks like {guess}" if guess else "")
        + "); save it as UTF-8 and try again"
    )


def _decodes(sample: bytes, encoding: str) -> bool:
    # The sample may end inside a multi-byte character: decode incrementally without the final flush.
    try:
        codecs.getincrementaldecoder(encoding)(errors="strict").decode(sample, final=False)
    except UnicodeDecodeError:
        return False
    return True


# At most one spot of undecodable bytes per this many well-formed non-ASCII characters, and never in a sample
# without that many: text in another encoding fails almost everywhere, not at a spot or two.
_STRAY_EVERY = 50


def _mostly_decodes(sample: bytes, encoding: str) -> bool:
    """Whether the sample is text in ``encoding`` but for a few spots of stray bytes (see ``_STRAY_EVERY``)."""
    text = codecs.getincrementaldecoder(encoding)(errors="surrogateescape").decode(sample, final=False)
    spots = len(_STRAY.findall(text))
    wide = sum(1 for ch in text if ord(ch) > 0x7F) - sum(1 for ch in text if 0xDC80 <= ord(ch) <= 0xDCFF)
    return wide >= _STRAY_EVERY and spots * _STRAY_EVERY <= wide


_STRAY = re.compile("[\udc80-\udcff]+")


def _reads_as_chinese(sample: bytes, *, stray: bool = False) -> bool:
    """Whether the sample decodes as GB18030 into mostly common hanzi (GB2312's first level, rows 16-55); with
    ``stray``, but for a few spots of stray bytes.

    Statistical detectors mistake a short GBK text (a one-line address list, a small CSV) for Thai or Cyrillic;
    text in those encodings that happens to decode as GB18030 gives rare characters, not common ones.
    """
    if not (_mostly_decodes(sample, "gb18030") if stray else _decodes(sample, "gb18030")):
        return False
    wide = [ch for ch in sample.decode("gb18030", errors="ignore")[:20000] if ord(ch) > 0x7F][:2000]
    if not wide:
        return False
    leads = [ch.encode("gb2312", errors="ignore")[:1] for ch in wide]
    common = sum(1 for lead in leads if lead and 0xB0 <= lead[0] <= 0xD7)
    return common >= 0.6 * len(wide)


def read_text(path: str | Path) -> str:
    """The whole text of a user's file, decoded as :func:`detect_encoding` tells.

    Raises ``NotFound`` for a missing file and ``UnreadableFile`` (naming the file, and the line of the first
    undecodable byte) for anything that is not UTF-8 or GB18030 text. Pipes and ``/dev/stdin`` are read too.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"{p}: file not found") from None
    except IsADirectoryError:
        raise UnreadableFile(f"{p} is a directory, not a file") from None
    except OSError as exc:
        raise UnreadableFile(f"cannot read {p}: {exc.strerror or exc}") from None
    return decode_text(raw, name=str(p))


def decode_text(raw: bytes, *, name: str) -> str:
    """The text of a user's file read as bytes (a file, standard input), decoded as :func:`read_text` decodes it:
    UTF-8 without its BOM, or GB18030; ``UnreadableFile`` naming ``name`` otherwise."""
    encoding = detect_encoding(raw[:SAMPLE_BYTES], name=name)
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise UnreadableFile(f"{name}: line {line}: bytes that are not {encoding} ({exc.reason})") from None


def text_lines(text: str) -> list[str]:
    """The lines of a user's text as an editor numbers them: ended by LF, CR LF or CR only. ``str.splitlines`` also
    ends a line at U+2028, U+0085, a form feed …, which a pasted text may hold inside a line: its answers would no
    longer match the input's lines, nor its line numbers the file's."""
    lines = _LINE_END.split(text)
    if lines and lines[-1] == "":
        lines.pop()  # the end of the last line, not a line
    return lines


# The longest CSV field read. The csv module's own limit (131,072 characters) ended the reading of a whole file at
# one long text; a field this long is a row for its reader's own length checks. Beyond it the file is unreadable.
CSV_FIELD_LIMIT = 16 * 1024 * 1024

# Fed to the csv reader after the last line: a record of its own, unless a quoted field is still open.
_END = "\ue000cityhub:end-of-file\ue000"
_LINE_END = re.compile("\r\n|\r|\n")


def csv_records(lines: Iterable[str], *, delimiter: str = ",") -> Iterator[tuple[list[str], str | None]]:
    """Each record of CSV text ``lines`` (a file read with ``newline=""``) with None, or with what is wrong with it.

    Every CSV reader of a user's file reads through here. A quoted field still open at the end of the text (a stray
    or unbalanced quote) would take every later line into one field: its record comes with the problem (naming the
    line the quote opened on, its cells cut there), and the lines after that one are read as records again, so the
    rows the quote swallowed are kept. ``csv.Error`` (a field over :data:`CSV_FIELD_LIMIT`) is the caller's.
    """
    csv.field_size_limit(CSV_FIELD_LIMIT)
    source: Iterator[str] = iter(lines)
    first = 1  # the line number of the next record's first line
    while True:
        record: list[str] = []  # the lines of the record being read

        def feed(src: Iterator[str] = source, record: list[str] = record) -> Iterator[str]:
            for line in src:
                record.append(line)
                yield line
            yield _END

        for cells in csv.reader(feed(), delimiter=delimiter):
            if cells and cells[-1].endswith(_END):
                break
            yield cells, None
            first += len(record)
            record.clear()
        else:
            return
        if cells == [_END]:
            return
        tail = cells[-1][: -len(_END)]
        spanned = len(_LINE_END.findall(tail)) + (0 if _LINE_END.search(tail[-1:] or "x") else 1)
        opened = max(len(record) - spanned, 0)  # the index in ``record`` of the line the quote opened on
        cut = [*cells[:-1], _LINE_END.split(tail, maxsplit=1)[0]]
        yield cut, f"a quoted field opened on line {first + opened} is not closed before the end of the file"
        rest = record[opened + 1 :]
        if not rest:
            return
        first += opened + 1
        source = iter(rest)
