"""Bulk import of orders from CSV and Excel files (``cityhub import orders FILE``).

The file is streamed: rows are read, validated and written in batches (default 5,000) through
:func:`cityhub.intake.bulk.write_orders`, and every batch is committed. Each row gets an external id (its id
column, or a stable hash of title, content, time and citizen), so re-running an import — after success or
after a crash midway — adds nothing twice: a row whose (channel, external id) is already stored with the same title
and content (whitespace aside) is "already present"; one whose id holds a different message — stored, or on an
earlier row of the file — is rejected, naming the id.

Columns are matched by header, in Chinese or English (case and surrounding whitespace ignored), e.g.
留言编号/id → external_id, 留言用户 → citizen_name, 留言主题 → title, 留言详情 → content,
留言时间 (来话时间, 来电时间, 登记时间 …) → created_at, 联系电话 → citizen_phone, 点赞数 → likes,
反对数 → opposes, 答复意见 → reply_text, 答复时间 → replied_at,
一级/二级/三级分类 (or 标签) → category (the deepest level that resolves), 街道/所属街道 and 社区/所属社区 →
street and community (a unit code, or a name in any form the units' gazetteer reads: 嘉禾街, 望岗社区, 大源村; an
unknown one is a warning, its text kept in ``attributes`` and the order left to the ``place-orders`` job; so is a
phone that is no phone number — the API's rule, digits with spaces and dashes — the row imported without one),
企业名称 / 统一社会信用代码 / 诉求领域 (enterprise_name, credit_code, enterprise_need; the need as its code or its name
on the pages, 用电 or power) → an enterprise appeal's ``attributes``, checked by ``intake.enterprise.checked`` as an
appeal over the API is (a code that does not check, an unknown need, a code or need without the name reject the row,
naming that field). Unknown columns are kept in ``attributes``, and so is a column without a header between named
ones, as 第N列.

Defaults: channel ``import``; appeal type ``consultation`` (咨询) when the file has no appeal-type column
or the cell is empty — it is NOT guessed from the text; urgency ``normal``; created_at the import time when
missing (a warning). Rows with a reply (答复意见) are imported as ``replied`` with a ``reply`` event after
``create``.

History (``as_history``, ``cityhub import orders FILE --as-history``): orders already dealt with elsewhere, stored
closed so that they never enter live work — not the dispatcher's queue (received), not the SLA sweep (only orders a
unit holds), not the reply-check job (only replied orders). A row with a reply becomes ``closed_resolved`` (the
reply ended its case), one without ``closed_unresolved`` (no callback was unsatisfied: it cannot be reopened); its
audit trail is create, reply when there is one, and a ``close`` event by ``import`` with the reason
``imported as history`` and ``payload.history``, dated at the reply (else at created_at) so that today's
assessment does not count it; created_at is required (a row without it is rejected, not dated now). The rest of
the import is the same (ids, re-runs, placing, categories).

Live orders (``dispatch``; the web page and the API by default, ``--dispatch`` on the command line): the received
orders of each batch are queued for the background dispatcher in the batch's transaction
(:func:`cityhub.dispatch.background.enqueue_many`), so an imported appeal is checked for duplicates and dispatched
automatically as one created over the API; without it they wait for a dispatcher or ``cityhub dispatch run``.

The import's batch (``import_batches``: the file's name, when, who, how many orders it created) is made by its first
write that creates an order, and every order it creates names it (``orders.import_batch_id``): the order list's
``import_batch_id`` lists exactly those orders (the page's 查看导入的工单), not the channel's older ones. Rows already
present stay in the batch that created them; an import that created no order leaves no batch.

Nothing is stored other than the file says: a row is rejected (its row number and field reported, the other rows
imported) rather than cut or corrected — a title longer than the column (300 characters), a created_at or replied_at
in the future (beyond the API's tolerance, ``FUTURE_SLACK``), a created_at before 1990 (as the API refuses it), a
replied_at before created_at, a replied_at without a reply, a reply without created_at, a value beyond the header's
last column (empty trailing cells are no values).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import math
import re
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from cityhub.config import get_settings
from cityhub.db import utcnow
from cityhub.dispatch import background
from cityhub.errors import ValidationFailed
from cityhub.intake import enterprise
from cityhub.intake.bulk import IMPORT_ACTOR, set_pragmas, tune_for_bulk, write_orders
from cityhub.org.places import PlaceSource, unit_gazetteer
from cityhub.org.schemas import phone_number
from cityhub.org.service import unit_ids_by_code
from cityhub.outfiles import SpreadsheetCsv
from cityhub.textfiles import SAMPLE_BYTES, UnreadableFile, csv_records, detect_encoding
from cityhub.web.i18n import DEFAULT_LANGUAGE, LANGUAGES, translate
from cityhub.workorders.lifecycle import Action, State
from cityhub.workorders.models import (
    AppealType,
    Category,
    Channel,
    ImportBatch,
    Order,
    Urgency,
    default_appeal_type,
)
from cityhub.workorders.schemas import FUTURE_SLACK, TEXT_MAX_CHARS, created_problem, title_from_content

if TYPE_CHECKING:
    from cityhub.workorders.service import Actor

DEFAULT_BATCH = 5000
# The audit reason of the close event of an order imported as history (``as_history``).
HISTORY_REASON = "imported as history"
TITLE_MAX: int = Order.__table__.c.title.type.length  # type: ignore[attr-defined]
_FILE_NAME_MAX: int = ImportBatch.__table__.c.file_name.type.length  # type: ignore[attr-defined]
# Rejected/warned rows kept in memory for the summary; all of them go to the --errors file. Of these at most
# MAX_KEPT_WARNINGS warnings, so that a warning on every row (a file without times) never hides a rejected row:
# warnings are also counted by kind (``warning_counts``, with one example each).
MAX_KEPT_ISSUES = 1000
MAX_KEPT_WARNINGS = 100
EXCEL_SUFFIXES = {".xlsx", ".xlsm", ".xlsb", ".xls", ".ods"}


# ------------------------------------------------------------------------------------------ header mapping

# Besides the exports' headers, each field's own name on the web pages (zh-CN and en: 诉求内容, 来源渠道, 市民姓名 …),
# which the import page lists the aliases under — a file headed as the product names its fields is read as such.
_FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "external_id": ("留言编号", "编号", "工单编号", "原编号", "id", "original id", "external_id"),
    "citizen_name": ("留言用户", "用户", "姓名", "市民姓名", "name", "citizen", "citizen name", "citizen_name"),
    "citizen_phone": ("电话", "联系电话", "来电号码", "手机", "手机号", "phone", "citizen_phone"),
    "title": ("留言主题", "主题", "标题", "title"),
    "content": ("留言详情", "详情", "内容", "诉求内容", "content"),
    # When the appeal came in, as the channels' exports call it: a message board's, a hotline's call (来话/来电),
    # a mailbox's letter, an operator's entry (登记).
    "created_at": (
        "留言时间",
        "时间",
        "受理时间",
        "来话时间",
        "来电时间",
        "来信时间",
        "登记时间",
        "反映时间",
        "received at",
        "created_at",
    ),
    "likes": ("点赞数", "likes"),
    "opposes": ("反对数", "opposes"),
    "reply_text": ("答复意见", "回复意见", "答复", "reply", "reply_text"),
    "replied_at": ("答复时间", "回复时间", "reply time", "replied_at"),
    "category1": ("一级标签", "一级分类", "category1", "category_1", "category, level 1"),
    "category2": ("二级标签", "二级分类", "category2", "category_2", "category, level 2"),
    "category3": ("三级标签", "三级分类", "category3", "category_3", "category, level 3"),
    "category": ("分类", "类别", "标签", "category", "category_path"),
    "address": ("地址", "address"),
    "street": ("街道", "所属街道", "镇街", "街镇", "street", "street_code"),
    "community": ("社区", "所属社区", "村居", "村社", "村社区", "community", "community_code"),
    "lat": ("纬度", "lat", "latitude"),
    "lng": ("经度", "lng", "lon", "longitude"),
    "channel": ("渠道", "来源", "来源渠道", "channel"),
    "appeal_type": ("诉求类型", "类型", "appeal type", "appeal_type"),
    "urgency": ("紧急程度", "urgency"),
    # 企业呼 (``intake.enterprise``): the enterprise that asks, its unified social credit code and its need, as the
    # intake form and the order page name them; checked as an appeal over the API is (``enterprise.checked``).
    enterprise.NAME_KEY: ("企业名称", "enterprise", "enterprise name", enterprise.NAME_KEY),
    enterprise.CODE_KEY: (
        "统一社会信用代码",
        "社会信用代码",
        "信用代码",
        "unified social credit code",
        "credit code",
        enterprise.CODE_KEY,
    ),
    enterprise.NEED_KEY: ("诉求领域", "企业诉求领域", "need", "enterprise need", enterprise.NEED_KEY),
}
_ALIAS_TO_FIELD = {alias: name for name, aliases in _FIELD_ALIASES.items() for alias in aliases}

# The words of a file refused for its columns, which choosing the columns (``columns``) mends.
NO_TEXT_COLUMN = "no title or content column found"
CHOSEN_NOT_IN_HEADER = "is not in the header"
COLUMN_PROBLEMS = (NO_TEXT_COLUMN, CHOSEN_NOT_IN_HEADER)


def known_headers() -> list[tuple[str, tuple[str, ...]]]:
    """Each field the import reads, with the headers that name it (case and surrounding spaces aside)."""
    return list(_FIELD_ALIASES.items())


def normalize_header(raw: Any) -> str:
    """Header text without BOM and surrounding whitespace; ASCII lower-cased."""
    return str(raw if raw is not None else "").replace("\ufeff", "").strip().lower()


class RepeatedColumn(UnreadableFile):
    """A header naming one column twice (:func:`repeated_header`)."""


def repeated_header(names: Sequence[str]) -> str | None:
    """Why a header naming one column twice (after :func:`normalize_header`) cannot be read, else None: which of the
    two holds the field is a guess, and a column kept by its name would overwrite the other's values."""
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        if not name:
            continue
        if name in seen:
            return (
                f"columns {seen[name] + 1} and {index + 1} are both named '{name}': rename one so that each column "
                "has its own name"
            )
        seen[name] = index
    return None


@dataclass(frozen=True)
class ColumnMap:
    """Which cell index feeds which field; unknown headers go to ``attributes`` under their own name."""

    fields: dict[str, int]
    extras: list[tuple[str, int]]

    @classmethod
    def from_header(cls, header: list[Any], chosen: Mapping[str, str] | None = None) -> ColumnMap:
        """Fields by header; ``chosen`` (field → header, :func:`parse_column_choices`) names the column of a field
        whose header is none of its aliases (an export with its own headers), before the aliases are read."""
        fields: dict[str, int] = {}
        ranks: dict[str, int] = {}
        extras: list[tuple[str, int]] = []
        unnamed: list[int] = []
        names = [normalize_header(raw) for raw in header]
        if (repeated := repeated_header(names)) is not None:
            raise RepeatedColumn(f"the header row: {repeated}")
        for field_name, wanted in (chosen or {}).items():
            if normalize_header(wanted) not in names:
                raise UnreadableFile(
                    f"column '{wanted}' chosen for {field_name} {CHOSEN_NOT_IN_HEADER} "
                    f"(header was: {', '.join(str(h) for h in header)})",
                    details={"field": "column"},
                )
            fields[field_name] = names.index(normalize_header(wanted))
            ranks[field_name] = -1
        taken = set(fields.values())
        for index, raw in enumerate(header):
            name = names[index]
            if index in taken:
                continue
            if not name:
                unnamed.append(index)
                continue
            target = _ALIAS_TO_FIELD.get(name)
            if target is None:
                extras.append((str(raw).replace("\ufeff", "").strip(), index))
                continue
            # The field's own English name wins over an alias when a file has both (external_id over id).
            rank = 0 if name == target else 1
            if target in fields and ranks[target] <= rank:
                extras.append((str(raw).strip(), index))
                continue
            if target in fields:
                extras.append((str(header[fields[target]]).strip(), fields[target]))
            fields[target] = index
            ranks[target] = rank
        # A column without a header between named ones (a spreadsheet's unnamed column) keeps its values in the
        # attributes as 第N列; past the last named column a value belongs to no column (a shifted row).
        last = max([*fields.values(), *(i for _, i in extras)], default=-1)
        extras += [(f"第{index + 1}列", index) for index in unnamed if index < last]
        if not fields.keys() & {"title", "content"}:
            raise UnreadableFile(
                f"{NO_TEXT_COLUMN} (expected e.g. 留言主题/留言详情 or title/content, "
                "or a column chosen as content=HEADER); "
                f"header was: {', '.join(str(h) for h in header)}"
            )
        return cls(fields=fields, extras=extras)


def parse_column_choices(values: Iterable[str]) -> dict[str, str]:
    """``FIELD=HEADER`` texts (``cityhub import orders --column``, the import page's and API's ``column``) as
    field → header; :class:`ValidationFailed` naming a text that is not of that form or a field the import does not
    know."""
    chosen: dict[str, str] = {}
    for value in values:
        field_name, sep, header = (part.strip() for part in value.partition("="))
        if not sep or not field_name or not header:
            raise ValidationFailed(
                f"column choice '{value}' is not FIELD=HEADER (e.g. content=来信内容)", details={"field": "column"}
            )
        if field_name not in _FIELD_ALIASES:
            known = ", ".join(_FIELD_ALIASES)
            raise ValidationFailed(
                f"unknown field '{field_name}' in column choice '{value}' (known: {known})", details={"field": "column"}
            )
        chosen[field_name] = header
    return chosen


# ------------------------------------------------------------------------------------------ value parsing

_APPEAL_LABELS = {
    "咨询": AppealType.CONSULTATION,
    "投诉": AppealType.COMPLAINT,
    "求助": AppealType.HELP,
    "建议": AppealType.SUGGESTION,
    "举报": AppealType.REPORT,
    "表扬": AppealType.PRAISE,
}
_URGENCY_LABELS = {
    "一般": Urgency.NORMAL,
    "普通": Urgency.NORMAL,
    "正常": Urgency.NORMAL,
    "紧急": Urgency.URGENT,
    "特急": Urgency.CRITICAL,
    "特别紧急": Urgency.CRITICAL,
}
_CHANNEL_LABELS = {
    "12345": Channel.HOTLINE,
    "热线": Channel.HOTLINE,
    "12345热线": Channel.HOTLINE,
    "网站": Channel.WEB,
    "网页": Channel.WEB,
    "信箱": Channel.MAILBOX,
    "市长信箱": Channel.MAILBOX,
    "区长信箱": Channel.MAILBOX,
    "网格": Channel.GRID,
    "网格员": Channel.GRID,
    "网格上报": Channel.GRID,
    "企业": Channel.ENTERPRISE,
    "企业呼": Channel.ENTERPRISE,
    "舆情": Channel.OPINION,
    "网络舆情": Channel.OPINION,
    "传感器": Channel.SENSOR,
    "物联感知": Channel.SENSOR,
    "物联网": Channel.SENSOR,
    "视频": Channel.VIDEO_AI,
    "视频ai": Channel.VIDEO_AI,
    "导入": Channel.IMPORT,
    "批量导入": Channel.IMPORT,
    "移动端": Channel.APP,
}


def _page_names(kind: str, values: dict[str, Any]) -> dict[str, Any]:
    """Each value by its name on the pages in either language (``t.label(kind, code)``: 求助, Request for help; 用电,
    Power), lower-cased as :func:`_choice` looks a cell up: a file written from what a page shows is read back."""
    return {
        translate(lang, f"{kind}.{code}", code).lower(): value for lang in LANGUAGES for code, value in values.items()
    }


def _enum_lookup(enum_class: Any, kind: str, labels: dict[str, Any]) -> dict[str, Any]:
    """A choice's lookup: its codes, the enum's names, the pages' names in both languages, and the other names clerks
    write (``labels``)."""
    members = {m.value: m for m in enum_class}
    return members | {m.name.lower(): m for m in enum_class} | _page_names(kind, members) | labels


# An enterprise's need by its code or by its name on the pages, in either language (用电, Power).
_NEED = _page_names("enterprise_need", {need: need for need in enterprise.NEEDS}) | {
    need: need for need in enterprise.NEEDS
}
_APPEAL = _enum_lookup(AppealType, "appeal", _APPEAL_LABELS)
_URGENCY = _enum_lookup(Urgency, "urgency", _URGENCY_LABELS)
_CHANNEL = _enum_lookup(Channel, "channel", _CHANNEL_LABELS)

_DATETIME_RE = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[\sT]+(\d{1,2})\s*[:时]\s*(\d{1,2})(?:\s*[:分]\s*(\d{1,2})(?:[.,](\d{1,6}))?)?\s*秒?)?"
)
# The forms of nearly every real file (2019/1/8 10:20:30, 2019-01-08 10:20:30), parsed without the general
# pattern's optional groups; everything else falls through to fromisoformat and _DATETIME_RE.
_COMMON_DATETIME_RE = re.compile(r"(\d{4})[-/](\d{1,2})[-/](\d{1,2})[ T](\d{1,2}):(\d{2}):(\d{2})")
_EXCEL_EPOCH = datetime(1899, 12, 30)


class RowError(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


# The row's fields whose value is one of a few (a name on the pages, in either language, or its code), and the kind of
# their labels (``t.label``).
CHOICE_KINDS = {
    "urgency": "urgency",
    "appeal_type": "appeal",
    "channel": "channel",
    enterprise.NEED_KEY: "enterprise_need",
}
_ALLOWED_CODE = re.compile(r"\(([a-z_]+)\)")


def refused_choice(field: str, text: str, codes: Iterable[str]) -> RowError:
    """A value none of the field's: the one refusal of every choice, which names what the import takes — each value
    by its name on the pages and its code (``invalid value '电力' (allowed: 用水 (water), 用电 (power), …)``), as the
    command line and the API say it; the import page reads the codes back (:func:`allowed_codes`) to name them in the
    reader's language."""
    kind = CHOICE_KINDS[field]
    allowed = ", ".join(f"{translate(DEFAULT_LANGUAGE, f'{kind}.{code}', code)} ({code})" for code in codes)
    return RowError(field, f"invalid value '{text}' (allowed: {allowed})")


def allowed_codes(allowed: str) -> list[str]:
    """The codes a :func:`refused_choice` names (its ``allowed: …`` part), in its order (the pages')."""
    return _ALLOWED_CODE.findall(allowed)


def parse_datetime(value: Any, *, field: str = "created_at") -> datetime | None:
    """A timezone-aware datetime from text or an Excel cell; naive times are in the district's time zone."""
    if value is None or value == "":
        return None
    if type(value) is str:  # the CSV case first: it runs twice per row
        text = value.strip()
        if not text:
            return None
        parsed = _parse_text_datetime(text, field)
    elif isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        parsed = _from_excel_serial(float(value), field)
    else:
        text = str(value).strip()
        if not text:
            return None
        parsed = _parse_text_datetime(text, field)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=get_settings().tz)
    if not 1970 <= parsed.year <= 2100:
        raise RowError(field, f"implausible date '{value}'")
    return parsed


def _parse_text_datetime(text: str, field: str) -> datetime:
    match = _COMMON_DATETIME_RE.fullmatch(text)
    if match is not None:
        try:
            return datetime(*map(int, match.groups()))  # type: ignore[arg-type]
        except ValueError as exc:
            raise RowError(field, f"invalid date/time '{text}': {exc}") from None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        pass
    match = _DATETIME_RE.fullmatch(text)
    if match is None:
        try:
            return _from_excel_serial(float(text), field)
        except ValueError:
            raise RowError(field, f"unrecognised date/time '{text}'") from None
    year, month, day, hour, minute, second, frac = match.groups()
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((frac or "0").ljust(6, "0")),
        )
    except ValueError as exc:
        raise RowError(field, f"invalid date/time '{text}': {exc}") from None


def _from_excel_serial(serial: float, field: str) -> datetime:
    if not math.isfinite(serial) or not 1 <= serial < 2958466:
        raise RowError(field, f"unrecognised date/time '{serial:g}'")
    return _EXCEL_EPOCH + timedelta(days=serial)


def cell_text(value: Any) -> str:
    """A cell as trimmed text; Excel's integral floats lose their ``.0``."""
    if type(value) is str:  # the CSV case, kept first because it runs for every cell
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value).strip()


# The largest count a row may carry: the columns are 32-bit integers on PostgreSQL.
MAX_COUNT = 2**31 - 1


def _count(value: Any, field: str) -> int:
    text = cell_text(value)
    if not text:
        return 0
    try:
        number = float(text)
    except ValueError:
        raise RowError(field, f"not a number: '{text}'") from None
    if not math.isfinite(number) or number < 0 or not number.is_integer():
        raise RowError(field, f"not a non-negative whole number: '{text}'")
    if number > MAX_COUNT:
        raise RowError(field, f"too large: '{text}' (at most {MAX_COUNT})")
    return int(number)


def _coordinate(value: Any, field: str, limit: float) -> float | None:
    text = cell_text(value)
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise RowError(field, f"not a number: '{text}'") from None
    if not math.isfinite(number) or not -limit <= number <= limit:
        raise RowError(field, f"out of range (±{limit:g}): '{text}'")
    return number


def _choice(value: Any, field: str, lookup: dict[str, Any], default: Any) -> Any:
    text = cell_text(value)
    if not text:
        return default
    found = lookup.get(text.lower())
    if found is None:
        raise refused_choice(field, text, dict.fromkeys(m.value for m in lookup.values()))
    return found


def _limited(value: Any, field: str, limit: int) -> str | None:
    text = cell_text(value)
    if len(text) > limit:
        raise RowError(field, f"longer than {limit} characters")
    return text or None


def _phone(value: Any, warnings: list[tuple[str, str]]) -> str | None:
    """The row's phone number as the API stores one (:func:`cityhub.org.schemas.phone_number`: digits, without spaces
    and dashes); text that is no phone number is a warning — the row is imported without a phone, the text kept in
    its attributes (as an unknown place is), since the appeal itself is good."""
    text = cell_text(value)
    try:
        return phone_number(text)
    except ValueError:
        warnings.append(("citizen_phone", f"not a phone number '{text}': kept in attributes, no phone set"))
        return None


def _shown(at: datetime) -> str:
    """A time of a row as the district reads it, in a message."""
    return at.astimezone(get_settings().tz).strftime("%Y-%m-%d %H:%M:%S")


def stable_external_id(cells: Sequence[Any]) -> str:
    """The external id of a row without an id column, from every cell of it: a row read again (the same file
    imported twice) gets the same id, and is skipped as already there; two citizens' appeals in the same words —
    another phone, address, time or any other cell — are two orders."""
    texts = [cell_text(cell) for cell in cells]
    while texts and not texts[-1]:
        texts.pop()
    digest = hashlib.sha1("\x1f".join(texts).encode("utf-8")).hexdigest()
    return f"h:{digest}"


# ------------------------------------------------------------------------------------------ categories


class CategoryIndex:
    """Category lookup by path (城乡建设/住房保障) or unambiguous name, loaded once per import."""

    def __init__(self, session: Session) -> None:
        self.by_path: dict[str, int] = {}
        by_name: dict[str, list[int]] = {}
        for cat_id, name, path in session.execute(select(Category.id, Category.name, Category.path)):
            self.by_path[path] = cat_id
            by_name.setdefault(name, []).append(cat_id)
        self.by_name = {name: ids[0] for name, ids in by_name.items() if len(ids) == 1}

    def resolve(self, levels: list[str]) -> int | None:
        """The deepest level that resolves: first as a path of the levels above it, then as a name."""
        levels = [level for level in levels if level]
        for depth in range(len(levels), 0, -1):
            found = self.by_path.get("/".join(levels[:depth]))
            if found is None:
                found = self.by_name.get(levels[depth - 1])
            if found is not None:
                return found
        return None

    def resolve_text(self, text: str) -> int | None:
        parts = [p.strip() for p in re.split(r"\s*[/>＞、|]\s*", text) if p.strip()]
        return self.resolve(parts)


class PlaceIndex:
    """The street and community a file names, among the database's units, loaded once per import: a unit code, else
    a name read by the units' gazetteer (both cells together, so a community is looked for in its street). Each
    distinct pair is resolved once."""

    def __init__(self, session: Session) -> None:
        self.ids = dict(unit_ids_by_code(session))
        self.gazetteer = unit_gazetteer(session)
        self._seen: dict[tuple[str, str], tuple[int | None, int | None] | str] = {}

    def resolve(self, street: str, community: str) -> tuple[int | None, int | None] | str:
        """(street id, community id), or the reason neither could be read."""
        key = (street, community)
        found = self._seen.get(key)
        if found is None:
            found = self._seen[key] = self._resolve(street, community)
        return found

    def _resolve(self, street: str, community: str) -> tuple[int | None, int | None] | str:
        by_code = (self.ids.get(street), self.ids.get(community))
        if by_code[0] is not None or by_code[1] is not None:
            return by_code
        if self.gazetteer is None:
            return "the database has no divisions"
        loc = self.gazetteer.resolve(f"{street}{community}")
        if loc.ambiguous:
            return "names more than one unit"
        street_id = self.ids.get(loc.street_code) if loc.street_code else None
        community_id = self.ids.get(loc.community_code) if loc.community_code else None
        if (community and community_id is None) or (street_id is None and community_id is None):
            return "not a street or community of the district"
        return street_id, community_id


# ------------------------------------------------------------------------------------------ readers


# What a CSV row holds where its bytes were not text in the file's encoding (decoded with surrogateescape).
_UNDECODED = re.compile("[\udc80-\udcff]+")
# (row, field, message) of a row that cannot be read as cells: "encoding" (bytes that are not text in the file's
# encoding) or "quote" (a quoted field not closed before the end of the file).
BadRow = Callable[[int, str, str], None]


class TableReader(Protocol):
    header: list[Any]

    def rows(self, on_bad_row: BadRow | None = None) -> Iterator[tuple[int, list[Any]]]:
        """(spreadsheet row number, cells) of each data row; rows count from the file's first, blank ones too.

        A row that cannot be read as cells (:data:`BadRow`) is passed to ``on_bad_row(row, field, message)`` and
        not yielded; without it, such a row ends the reading with :class:`UnreadableFile` naming the row.
        """
        ...

    def progress(self) -> tuple[int, int | None]:
        """(done, total) in the reader's own unit, for a progress bar."""
        ...


class CsvReader:
    def __init__(self, path: Path, raw: IO[bytes]) -> None:
        self.path = path
        self.raw = raw
        self.size = path.stat().st_size
        sample = raw.read(SAMPLE_BYTES)
        raw.seek(0)
        self.encoding = detect_encoding(sample, name=path.name)
        # Undecodable bytes become lone surrogates, so that one bad row is reported by its number and the rest read
        # (a strict decoder fails a whole chunk ahead of the CSV reader, at no row in particular).
        self.text = io.TextIOWrapper(raw, encoding=self.encoding, errors="surrogateescape", newline="")
        first_line = sample.split(b"\n", 1)[0]
        delimiter = max((b",", b"\t", b";"), key=first_line.count).decode()
        self.reader = csv_records(self.text, delimiter=delimiter)
        self.header_row = 0  # the header's row number: blank rows before it count, as in a spreadsheet
        self.header = self._read_header()

    def _read_header(self) -> list[Any]:
        try:
            for cells, problem in self.reader:
                self.header_row += 1
                if any(c.strip() for c in cells):
                    if (bad := self._bad_bytes(cells)) is not None:
                        raise UnreadableFile(f"{self.path.name}: the header row has {bad}")
                    if problem is not None:
                        raise UnreadableFile(f"{self.path.name}: the header row: {problem}")
                    return list(cells)
        except csv.Error as exc:
            raise UnreadableFile(f"{self.path.name}: {exc}") from None
        raise UnreadableFile(f"{self.path.name} is empty (no header row)")

    def _bad_bytes(self, cells: list[str]) -> str | None:
        """What is wrong with a row holding undecodable bytes (the first few shown), or None."""
        found = _UNDECODED.search("\x1f".join(cells))
        if found is None:
            return None
        shown = "".join(f"\\x{ord(ch) - 0xDC00:02x}" for ch in found.group()[:4])
        return f"bytes that are not {self.encoding} ({shown})"

    def rows(self, on_bad_row: BadRow | None = None) -> Iterator[tuple[int, list[Any]]]:
        number = self.header_row
        try:
            for cells, problem in self.reader:
                number += 1
                kind, bad = ("quote", problem) if problem is not None else ("encoding", self._bad_bytes(cells))
                if bad is None:
                    yield number, cells
                elif on_bad_row is not None:
                    on_bad_row(number, kind, bad)
                else:
                    raise UnreadableFile(f"{self.path.name}: row {number}: {bad}")
        except csv.Error as exc:
            raise UnreadableFile(f"{self.path.name}: malformed CSV near data row {number + 1}: {exc}") from None

    def progress(self) -> tuple[int, int | None]:
        return self.raw.tell(), self.size


class ExcelReader:
    """First sheet (or the named one) of an Excel/ODS workbook, read with python-calamine."""

    def __init__(self, path: Path, sheet: str | None) -> None:
        from python_calamine import CalamineWorkbook

        self.path = path
        try:
            workbook = CalamineWorkbook.from_path(str(path))
        except Exception as exc:  # calamine raises its own error types for every kind of bad file
            raise UnreadableFile(f"{path.name}: cannot open as a workbook ({exc})") from None
        if sheet and sheet not in workbook.sheet_names:
            names = ", ".join(workbook.sheet_names)
            raise UnreadableFile(f"{path.name}: no sheet named '{sheet}' (sheets: {names})")
        try:
            self.sheet = workbook.get_sheet_by_name(sheet) if sheet else workbook.get_sheet_by_index(0)
        except Exception as exc:
            raise UnreadableFile(f"{path.name}: cannot open as a workbook ({exc})") from None
        self.total = int(self.sheet.height)
        self.done = 0
        self._rows = iter(self.sheet.iter_rows())
        self.header = self._read_header()

    def _read_header(self) -> list[Any]:
        for cells in self._rows:
            self.done += 1
            if any(cell_text(c) for c in cells):
                return list(cells)
        raise UnreadableFile(f"{self.path.name}: the sheet is empty (no header row)")

    def rows(self, on_bad_row: BadRow | None = None) -> Iterator[tuple[int, list[Any]]]:
        # A workbook's cells are text already: there are no undecodable bytes to report.
        for cells in self._rows:
            self.done += 1
            yield self.done, cells

    def progress(self) -> tuple[int, int | None]:
        return self.done, self.total


@contextmanager
def open_table(path: Path, *, sheet: str | None = None) -> Iterator[TableReader]:
    """A streaming reader of a CSV or Excel file; :class:`UnreadableFile` when it cannot be read at all."""
    if not path.exists():
        raise UnreadableFile(f"{path}: file not found")
    if path.is_dir():
        raise UnreadableFile(f"{path} is a directory")
    with path.open("rb") as raw:
        magic = raw.read(4)
        raw.seek(0)
        if _is_workbook(path, magic):
            yield ExcelReader(path, sheet)
        else:
            yield CsvReader(path, raw)


def is_workbook(path: Path) -> bool:
    """Whether :func:`open_table` reads ``path`` as an Excel/ODS workbook (by its suffix or its zip signature)."""
    try:
        with path.open("rb") as raw:
            magic = raw.read(4)
    except OSError:
        magic = b""
    return _is_workbook(path, magic)


def _is_workbook(path: Path, magic: bytes) -> bool:
    return path.suffix.lower() in EXCEL_SUFFIXES or magic.startswith(b"PK\x03\x04")


# ------------------------------------------------------------------------------------------ the import


@dataclass
class RowIssue:
    row: int
    field: str
    message: str
    level: str = "error"  # "error": the row was rejected; "warning": imported with the field left empty


@dataclass
class ImportReport:
    file: str
    read: int = 0
    imported: int = 0
    skipped: int = 0
    rejected: int = 0
    # Warnings (one row may have several) and the rows imported with at least one (the page's tile): both of rows
    # imported now, not of rows already present.
    warnings: int = 0
    warned_rows: int = 0
    batches: int = 0
    # New received orders handed to the background dispatcher (``dispatch``): decided automatically as appeals from
    # the API are, instead of waiting for a dispatcher.
    queued: int = 0
    # The import's batch (``import_batches``), which every order it created names: None until one is created.
    batch_id: int | None = None
    issues: list[RowIssue] = field(default_factory=list)
    warning_counts: Counter[str] = field(default_factory=Counter)
    # The first warning of each kind of ``warning_counts`` (the page shows the kinds by an example).
    warning_examples: dict[str, RowIssue] = field(default_factory=dict)
    kept_warnings: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "read": self.read,
            "imported": self.imported,
            "skipped_existing": self.skipped,
            "rejected": self.rejected,
            "queued_for_dispatch": self.queued,
            "import_batch_id": self.batch_id,
            "warnings": self.warnings,
            "warned_rows": self.warned_rows,
            "warning_kinds": dict(self.warning_counts.most_common()),
        }


ISSUE_COLUMNS = ("row", "level", "field", "message")


class ImportStopped(UnreadableFile):
    """The file became unreadable midway: ``report`` counts what was read and committed before that point."""

    def __init__(self, message: str, report: ImportReport) -> None:
        super().__init__(message)
        self.report = report


class _RowConverter:
    def __init__(
        self,
        columns: ColumnMap,
        categories: CategoryIndex,
        channel: Channel | None,
        places: PlaceIndex | None = None,
        *,
        as_history: bool = False,
        actor: Actor | None = None,
    ) -> None:
        self.as_history = as_history
        # Who the audit trail names: the person who uploaded the file, or "import" (the command line).
        self.by: dict[str, Any] = (
            {"actor_name": actor.name, "actor_id": actor.user_id} if actor else {"actor_name": IMPORT_ACTOR}
        )
        self.columns = columns
        self.categories = categories
        self.places = places
        self.channel = channel
        self.now = utcnow()
        self.category_levels = [
            columns.fields[k] for k in ("category1", "category2", "category3") if k in columns.fields
        ]
        # The header's width (to its last named column); absent fields point at one padding cell past it, so lookups
        # need no branches.
        self.width = max([*columns.fields.values(), *(i for _, i in columns.extras)], default=0) + 1
        self.ix = {name: columns.fields.get(name, self.width) for name in _FIELD_ALIASES}

    def convert(self, cells: list[Any], warnings: list[tuple[str, str]]) -> dict[str, Any]:
        """The write_orders record of one row; (field, message) warnings are appended to ``warnings``."""
        if len(cells) <= self.width:
            cells = [*cells, *[""] * (self.width + 1 - len(cells))]
        else:
            # A value beyond the header belongs to no column (a shifted row, a missing header cell).
            filled = next(i for i in range(len(cells), 0, -1) if cell_text(cells[i - 1]))
            if filled > self.width:
                raise RowError("cells", f"row has {filled} cells, the header has {self.width}")
        ix = self.ix
        content = cell_text(cells[ix["content"]])
        title = " ".join(cell_text(cells[ix["title"]]).split())
        if not content and not title:
            raise RowError("content", "empty: a title or content is required")
        if not title:
            title = title_from_content(content)
        content = content or title
        if len(title) > TITLE_MAX:
            raise RowError("title", f"longer than {TITLE_MAX} characters ({len(title)})")
        if len(content) > TEXT_MAX_CHARS:  # as an appeal over the API
            raise RowError("content", f"longer than {TEXT_MAX_CHARS} characters ({len(content)})")
        citizen = _limited(cells[ix["citizen_name"]], "citizen_name", 80)

        created_at = self._past(cells[ix["created_at"]], "created_at")
        if created_at is not None and (problem := created_problem(created_at)):
            raise RowError("created_at", f"{problem} ({_shown(created_at)})")
        reply = cell_text(cells[ix["reply_text"]])
        replied_at = self._past(cells[ix["replied_at"]], "replied_at")
        if replied_at is not None and not reply:
            raise RowError("replied_at", "given without a reply (the reply column is empty)")
        if created_at is None and reply:
            raise RowError("created_at", "missing in a row with a reply: when the message came in is needed")
        if replied_at is not None and created_at is not None and replied_at < created_at:
            raise RowError("replied_at", f"before created_at ({_shown(replied_at)} < {_shown(created_at)})")
        if created_at is None and self.as_history:
            raise RowError("created_at", "missing: an order imported as history needs the time it came in")
        if created_at is None:
            warnings.append(("created_at", "missing: set to the import time"))

        external_id = _limited(cells[ix["external_id"]], "external_id", 128)
        if external_id is None:
            external_id = stable_external_id(cells)

        lat = _coordinate(cells[ix["lat"]], "lat", 90)
        lng = _coordinate(cells[ix["lng"]], "lng", 180)
        if (lat is None) != (lng is None):
            raise RowError("lat" if lat is None else "lng", "lat and lng must be given together")

        channel = self.channel or _choice(cells[ix["channel"]], "channel", _CHANNEL, Channel.IMPORT)
        record: dict[str, Any] = {
            "external_id": external_id,
            "channel": channel,
            "appeal_type": _choice(cells[ix["appeal_type"]], "appeal_type", _APPEAL, default_appeal_type(channel)),
            "urgency": _choice(cells[ix["urgency"]], "urgency", _URGENCY, Urgency.NORMAL),
            "title": title,
            "content": content,
            "citizen_name": citizen,
            "citizen_phone": _phone(cells[ix["citizen_phone"]], warnings),
            "address": _limited(cells[ix["address"]], "address", 300),
            "lat": lat,
            "lng": lng,
            "likes": _count(cells[ix["likes"]], "likes"),
            "opposes": _count(cells[ix["opposes"]], "opposes"),
            "created_at": created_at or self.now,
            "category_id": self._category(cells, warnings),
        }
        attributes = {name: text for name, i in self.columns.extras if (text := cell_text(cells[i]))}
        if record["citizen_phone"] is None and (phone := cell_text(cells[ix["citizen_phone"]])):
            attributes["citizen_phone"] = phone  # not a number to call back on (_phone): the text is kept
        attributes.update(self._enterprise(cells))
        self._place(cells, record, attributes, warnings)
        if attributes:
            record["attributes"] = attributes

        events: list[dict[str, Any]] = [
            {
                "action": Action.CREATE.value,
                "from_state": None,
                "to_state": State.RECEIVED.value,
                **self.by,
                "at": record["created_at"],
                "payload": {"channel": record["channel"].value},
            }
        ]
        state = State.RECEIVED
        if reply:
            if replied_at is None:
                warnings.append(("replied_at", "missing for a reply: set to created_at"))
                replied_at = record["created_at"]
            record.update(reply_text=reply, replied_at=replied_at)
            events.append(
                {
                    "action": Action.REPLY.value,
                    "from_state": state.value,
                    "to_state": State.REPLIED.value,
                    **self.by,
                    "at": replied_at,
                }
            )
            state = State.REPLIED
        if self.as_history:
            # A reply ends its case (办结); a message never answered is closed unresolved. Dated when the file
            # last saw the order, so the district's figures of today do not count history.
            closed = State.CLOSED_RESOLVED if reply else State.CLOSED_UNRESOLVED
            closed_at = replied_at if reply else record["created_at"]
            events.append(
                {
                    "action": Action.CLOSE.value,
                    "from_state": state.value,
                    "to_state": closed.value,
                    **self.by,
                    "at": closed_at,
                    "reason": HISTORY_REASON,
                    "payload": {"history": True, "resolved": bool(reply)},
                }
            )
            record.update(closed_at=closed_at, resolved=bool(reply))
            state = closed
        if len(events) > 1:
            record.update(state=state, events=events)
        return record

    def _enterprise(self, cells: list[Any]) -> dict[str, str]:
        """The row's enterprise appeal (企业名称, 统一社会信用代码, 诉求领域) as an order's attributes hold it,
        checked by ``enterprise.checked`` as the API's and the intake form's are: a code that does not check, a need
        of none of the kinds (by code or by name), a code or need without the enterprise's name rejects the row,
        naming the field."""
        given = {key: text for key in enterprise.KEYS if (text := cell_text(cells[self.ix[key]]))}
        if not given:
            return {}
        if (need := given.get(enterprise.NEED_KEY)) is not None:
            if need.lower() not in _NEED:
                raise refused_choice(enterprise.NEED_KEY, need, enterprise.NEEDS)
            given[enterprise.NEED_KEY] = _NEED[need.lower()]
        try:
            return enterprise.checked(given)
        except enterprise.Refused as exc:
            raise RowError(exc.key, str(exc)) from None

    def _past(self, value: Any, field_name: str) -> datetime | None:
        """A time of the row, refused beyond the clock's tolerance the API allows (``FUTURE_SLACK``)."""
        at = parse_datetime(value, field=field_name)
        if at is not None and at > self.now + FUTURE_SLACK:
            raise RowError(field_name, f"in the future ({_shown(at)})")
        return at

    def _place(
        self, cells: list[Any], record: dict[str, Any], attributes: dict[str, str], warnings: list[tuple[str, str]]
    ) -> None:
        street, community = cell_text(cells[self.ix["street"]]), cell_text(cells[self.ix["community"]])
        if not street and not community:
            return
        found = self.places.resolve(street, community) if self.places is not None else "no divisions were read"
        if isinstance(found, str):
            named = " / ".join(v for v in (street, community) if v)
            field_name = "community" if community else "street"
            warnings.append((field_name, f"unknown place '{named}' ({found}): kept in attributes, placed later"))
            attributes.update({k: v for k, v in (("street", street), ("community", community)) if v})
            return
        street_id, community_id = found
        record.update(street_id=street_id, community_id=community_id, place_source=PlaceSource.ORDER.value)

    def _category(self, cells: list[Any], warnings: list[tuple[str, str]]) -> int | None:
        levels = [cell_text(cells[i]) if i < len(cells) else "" for i in self.category_levels]
        flat = cell_text(cells[self.ix["category"]])
        if not any(levels) and not flat:
            return None
        found = self.categories.resolve(levels) if any(levels) else None
        if found is None and flat:
            found = self.categories.resolve_text(flat)
        if found is None:
            shown = "/".join(level for level in levels if level) or flat
            warnings.append(("category", f"unknown category '{shown}': imported without a category"))
        return found


def import_orders(
    session: Session,
    *,
    path: Path,
    batch_size: int = DEFAULT_BATCH,
    channel: Channel | str | None = None,
    sheet: str | None = None,
    prefix: str | None = None,
    issues_to: IO[str] | Callable[[], IO[str]] | None = None,
    on_progress: Callable[[int, int | None], None] | None = None,
    on_batch: Callable[[ImportReport], None] | None = None,
    as_history: bool = False,
    columns: Mapping[str, str] | None = None,
    actor: Actor | None = None,
    dispatch: bool = False,
) -> ImportReport:
    """Import every row of ``path``, committing each batch; returns counts and the per-row issues.

    ``as_history`` stores every row as a closed order (see the module's documentation). ``columns``: field → header
    for columns whose headers are not among the aliases (:func:`parse_column_choices`). ``actor``: the person the
    orders' audit trails name (default ``import``). ``dispatch``: hand the new received orders to the background
    dispatcher, in the transaction of their batch, as intake does with an appeal created over the API — decided
    automatically (with ``CITYHUB_DISPATCH_AUTO``) and first checked for an earlier duplicate to merge into (with the
    duplicate check in the background); nothing is queued when neither runs in the background
    (:func:`cityhub.dispatch.background.enabled`): the orders wait for a dispatcher or ``cityhub dispatch run``.

    ``channel`` forces the channel of every row (otherwise the file's channel column, default ``import``).
    ``issues_to`` receives every rejected/warned row as CSV (row, level, field, message; a list for people, its
    cells safe to open in a spreadsheet: :class:`cityhub.outfiles.SpreadsheetCsv`); given as a function, it
    is called for the file once ``path`` has opened as a table (a file that cannot be read leaves it untouched).
    """
    report = ImportReport(file=str(path))
    queue = _dispatch_queue() if dispatch and not as_history else None
    try:
        forced = _choice(channel, "channel", _CHANNEL, None) if channel else None
    except RowError as exc:
        raise ValidationFailed(f"channel: {exc.message}", details={"field": "channel"}) from None
    writer: Any = None

    def record_issue(issue: RowIssue) -> None:
        keep = len(report.issues) < MAX_KEPT_ISSUES
        if issue.level == "error":
            report.rejected += 1
        else:
            report.warnings += 1
            kind = f"{issue.field}: {_warning_kind(issue.message)}"
            report.warning_counts[kind] += 1
            report.warning_examples.setdefault(kind, issue)
            keep = keep and report.kept_warnings < MAX_KEPT_WARNINGS
            report.kept_warnings += keep
        if keep:
            report.issues.append(issue)
        if writer is not None:
            writer.writerow((issue.row, issue.level, issue.field, issue.message))

    with open_table(path, sheet=sheet) as table:
        mapping = ColumnMap.from_header(table.header, columns)
        if issues_to is not None:
            writer = SpreadsheetCsv(issues_to() if callable(issues_to) else issues_to)
            writer.writerow(ISSUE_COLUMNS)
        places = PlaceIndex(session) if {"street", "community"} & mapping.fields.keys() else None
        converter = _RowConverter(mapping, CategoryIndex(session), forced, places, as_history=as_history, actor=actor)
        session.commit()  # end the read transaction: SQLite writers must not hold a stale snapshot
        restore = tune_for_bulk(session)
        session.commit()
        try:
            _import_rows(
                session,
                table=table,
                converter=converter,
                report=report,
                record_issue=record_issue,
                batch_size=batch_size,
                target=_Target(prefix=prefix, by=converter.by, queue=queue, file_name=path.name),
                on_progress=on_progress,
                on_batch=on_batch,
            )
        finally:
            if restore:
                # The settings outlive the import on a pooled connection; put back the engine's own.
                with contextlib.suppress(SQLAlchemyError):
                    set_pragmas(session, restore)
                    session.commit()
    return report


def _dispatch_queue() -> bool | None:
    """How imported received orders go to the background dispatcher: None = they do not (it does not run), else
    whether it first checks them for duplicates (the ``check_duplicates`` of their backlog rows)."""
    if not background.enabled():
        return None
    return background.checks_duplicates()


# The largest file the import page and ``POST /api/v1/orders/import`` take (about 60,000 rows of CSV, imported in
# seconds while the request waits); larger files go through ``cityhub import orders``, which streams any size.
UPLOAD_MAX_BYTES = 20 * 1024 * 1024
UPLOAD_SUFFIXES = {".csv", ".txt", ".tsv"} | EXCEL_SUFFIXES


def import_upload(session: Session, *, filename: str, data: bytes, **options: Any) -> ImportReport:
    """:func:`import_orders` of a file received over HTTP (``options`` as there): refused with
    :class:`ValidationFailed` when it is empty, too large or not a CSV or Excel file by its name; read from a
    temporary copy, which is removed afterwards. Messages name the upload, not the copy."""
    name = Path((filename or "").replace("\x00", "")).name or "upload"
    suffix = Path(name).suffix.lower()
    if len(name.encode()) > 200:  # beyond what a file system takes as a name
        name = f"upload{suffix}"
    if suffix not in UPLOAD_SUFFIXES:
        allowed = ", ".join(sorted(UPLOAD_SUFFIXES))
        raise ValidationFailed(f"{name}: not a CSV or Excel file (allowed: {allowed})", details={"field": "file"})
    if not data:
        raise ValidationFailed(f"{name}: the file is empty", details={"field": "file"})
    if len(data) > UPLOAD_MAX_BYTES:
        raise ValidationFailed(
            f"{name}: larger than {UPLOAD_MAX_BYTES // (1024 * 1024)} MB (import it with `cityhub import orders`)",
            details={"field": "file"},
        )
    with tempfile.TemporaryDirectory(prefix="cityhub-import-") as tmp:
        path = Path(tmp) / name  # messages that name the file by its name name the upload
        path.write_bytes(data)
        try:
            report = import_orders(session, path=path, **options)
        except ImportStopped as exc:
            exc.report.file = name
            raise ImportStopped(exc.message.replace(str(path), name), exc.report) from None
        except UnreadableFile as exc:
            # The file is what could not be read, unless the refusal named a field of its own (a column chosen).
            where = {"field": "file", **exc.details}
            raise UnreadableFile(exc.message.replace(str(path), name), details=where) from None
    report.file = name
    return report


def _import_rows(
    session: Session,
    *,
    table: TableReader,
    converter: _RowConverter,
    report: ImportReport,
    record_issue: Callable[[RowIssue], None],
    batch_size: int,
    target: _Target,
    on_progress: Callable[[int, int | None], None] | None,
    on_batch: Callable[[ImportReport], None] | None,
) -> None:
    batch = _Batch()

    def bad_row(number: int, field_name: str, message: str) -> None:
        report.read += 1
        batch.issues.append(RowIssue(number, field_name, message))

    try:
        for number, cells in table.rows(on_bad_row=bad_row):
            if not any(cell_text(c) for c in cells):
                continue
            report.read += 1
            row_warnings: list[tuple[str, str]] = []
            try:
                record = converter.convert(cells, row_warnings)
            except RowError as exc:
                batch.issues.append(RowIssue(number, exc.field, exc.message))
                continue
            for field_name, message in row_warnings:
                batch.issues.append(RowIssue(number, field_name, message, "warning"))
            batch.records.append(record)
            batch.numbers.append(number)
            if len(batch.records) >= batch_size:
                _flush(session, batch, report, record_issue, target)
                batch = _Batch()
                if on_progress is not None:
                    on_progress(*table.progress())
                if on_batch is not None:
                    on_batch(report)
    except UnreadableFile as exc:
        # The rest of the file cannot be read: keep every row read before it, and say what was kept.
        _flush(session, batch, report, record_issue, target)
        raise ImportStopped(f"{exc.message} (import stopped there)", report) from None
    if batch.records or batch.issues:
        _flush(session, batch, report, record_issue, target)
        if on_batch is not None:
            on_batch(report)
    if on_progress is not None:
        done, total = table.progress()
        on_progress(total or done, total)


@dataclass(frozen=True)
class _Target:
    """How an import's rows are written: their numbers' ``prefix``, the actor their trails name (``by``), whether
    their received orders go to the background dispatcher (``queue``, :func:`_dispatch_queue`), and the name of the
    file their import batch (``import_batches``) names."""

    prefix: str | None
    by: dict[str, Any]
    queue: bool | None
    file_name: str


@dataclass
class _Batch:
    """Rows read since the last commit: their records with their row numbers, and the issues of the rows read."""

    records: list[dict[str, Any]] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    issues: list[RowIssue] = field(default_factory=list)


def _flush(
    session: Session, batch: _Batch, report: ImportReport, record_issue: Callable[[RowIssue], None], target: _Target
) -> None:
    """Write and commit the batch (its received orders queued for the background dispatcher unless ``target.queue``
    is None, see :func:`_dispatch_queue`; each naming the import's batch, made by the first write that creates an
    order, and counted in it), then record its rows' issues in row order (a row whose id already holds a different
    message is rejected here, and its warnings dropped; a row already present keeps no warning either: the warnings
    count rows imported now, and the import that stored it warned of them)."""
    issues = batch.issues
    if batch.records:
        opened = report.batch_id is None
        try:
            tune_for_bulk(session)
            if opened:
                report.batch_id = _open_batch(session, target)
            result = write_orders(
                session, batch.records, prefix=target.prefix, by=target.by, import_batch_id=report.batch_id
            )
            if target.queue is not None:
                report.queued += background.enqueue_many(session, result.received_ids, check_duplicates=target.queue)
            _count_in_batch(session, report.batch_id, result.inserted, opened=opened)
            session.commit()
        except BaseException:
            session.rollback()
            if opened:
                report.batch_id = None
            raise
        if opened and not result.inserted:
            report.batch_id = None  # nothing created: the batch was not kept
        report.imported += result.inserted
        report.skipped += len(result.skipped_external_ids)
        report.batches += 1
        if result.skipped_indexes:
            present = {batch.numbers[index] for index in result.skipped_indexes}
            issues = [i for i in issues if i.row not in present]
        if result.conflicts:
            refused = {batch.numbers[c.index] for c in result.conflicts}
            issues = [i for i in issues if i.row not in refused]
            for conflict in result.conflicts:
                if conflict.earlier_index is not None:
                    holder = f"row {batch.numbers[conflict.earlier_index]}"
                else:
                    holder = f"order {conflict.number}"
                message = f"id {conflict.external_id} already holds a different message ({holder})"
                issues.append(RowIssue(batch.numbers[conflict.index], "external_id", message))
            issues.sort(key=lambda issue: issue.row)
    report.warned_rows += len({issue.row for issue in issues if issue.level == "warning"})
    for issue in issues:
        record_issue(issue)


def _open_batch(session: Session, target: _Target) -> int:
    """A new import batch (``import_batches``) in the session's transaction: its id."""
    batch = ImportBatch(
        file_name=target.file_name[:_FILE_NAME_MAX],
        actor_name=target.by["actor_name"],
        actor_id=target.by.get("actor_id"),
        imported=0,
    )
    session.add(batch)
    session.flush()
    return batch.id


def _count_in_batch(session: Session, batch_id: int | None, inserted: int, *, opened: bool) -> None:
    """Add the orders a write created to its batch's count; a batch opened for a write that created none (every row
    already imported) is not kept."""
    if batch_id is None:
        return
    if inserted:
        session.execute(
            update(ImportBatch).where(ImportBatch.id == batch_id).values(imported=ImportBatch.imported + inserted)
        )
    elif opened:
        session.execute(delete(ImportBatch).where(ImportBatch.id == batch_id))


def _warning_kind(message: str) -> str:
    # Group warnings such as "unknown category 'X': …" by kind, not by the value quoted in them.
    return re.sub(r"'[^']*'", "'…'", message)
