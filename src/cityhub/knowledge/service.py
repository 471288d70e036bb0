"""Knowledge-base service: entries, imports, the seed from real replies, suggestions, instant answers, reply checks.

Every change of the entries moves the single revision row in the same transaction; each process's search index
(:mod:`cityhub.knowledge.retrieval`) compares that row with the one it was built at and rebuilds when it moved,
so several API workers never answer from a stale knowledge base for longer than one request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from cityhub import auditlog
from cityhub.config import get_settings
from cityhub.db import contains_text, database_key, rowcount, utcnow
from cityhub.errors import Conflict, NotFound, ValidationFailed, refuse_nulls
from cityhub.knowledge.models import KnowledgeEntry, KnowledgeRevision, ReplyCheck
from cityhub.knowledge.retrieval import ASKING_WORDS, CACHE, Doc, KnowledgeIndex
from cityhub.knowledge.schemas import KB_TEXT_MAX_CHARS, EntryCreate, EntryUpdate, ImportResult, split_keywords
from cityhub.nlp import reply_quality
from cityhub.nlp.text import normalize
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import Action, State
from cityhub.workorders.models import AppealType, Category, Order
from cityhub.workorders.schemas import OrderCreate

REPLY_CHECKER = orders.Actor(name="reply-check")
_SCORES = ("relevance", "completeness", "basis", "timeliness", "overall")
SEED_KEYWORDS = 5


@dataclass(frozen=True)
class Suggestion:
    entry: KnowledgeEntry
    score: float
    why: str
    # The words of the question found in the entry (rarest first).
    matched: tuple[str, ...] = ()
    # Of those, the words naming the entry's matter (:func:`matter_words`): why a 秒回 answer is offered, which the
    # intake form says under it. Filled by :func:`matter_answers`.
    matter: tuple[str, ...] = ()


# Words an appeal shares with many entries without saying what its matter is: what it asks for (投诉, 办理 are in
# ASKING_WORDS), the papers it takes, and the places and bodies it names (小区, 公司, 部门).
GENERIC_WORDS = frozenset(
    [
        "投诉",
        "举报",
        "反映",
        "处理",
        "解决",
        "申请",
        "材料",
        "手续",
        "证明",
        "相关",
        "情况",
        "部门",
        "政府",
        "单位",
        "公司",
        "小区",
        "工作",
        "服务",
        "市民",
        "居民",
        "时间",
        "地方",
        "地址",
        "电话",
        "网上",
        "窗口",
        "现场",
    ]
)


# What is done with a matter rather than the matter: a card, a licence, a fund are each 补办, 挂失, 注销, 提取 … — an
# entry keyed 身份证, 补办 was offered in one click for 社保卡丢了怎么补办 on 补办 alone.
ACTION_WORDS = frozenset(
    [
        "补办",
        "补领",
        "补卡",
        "换领",
        "换证",
        "换卡",
        "挂失",
        "注销",
        "变更",
        "续签",
        "续期",
        "延期",
        "缴纳",
        "缴费",
        "补缴",
        "提取",
        "查询",
        "转移",
        "报销",
        "领取",
        "预约",
        "登记",
        "备案",
        "审批",
        "开具",
        "认证",
        "退费",
        "退款",
    ]
)


def _names_a_matter(word: str) -> bool:
    return len(word) >= 2 and word not in ASKING_WORDS and word not in GENERIC_WORDS and word not in ACTION_WORDS


def matter_words(suggestion: Suggestion, text: str) -> tuple[str, ...]:
    """The words by which the appeal (``text``) names the matter the entry is about: the entry's keywords — its
    author's own words for it (社保卡, 居住证, 注册公司) — found in the appeal's text (one inside another found, 公积金
    in 住房公积金, said once, the longer); for an entry without keywords, the words they share. Words that name no
    matter (怎么办, 材料, 小区, 投诉) or what is done with one (补办, 挂失, 提取: :data:`ACTION_WORDS`) count for
    neither: a one-click answer offered on them closes a question about 社保补缴 with the 居住证 answer."""
    keywords = [k.strip() for k in suggestion.entry.keywords or [] if _names_a_matter(normalize(k.strip()))]
    if not keywords:
        return tuple(w for w in suggestion.matched if _names_a_matter(w))
    said = normalize(text)
    found = [k for k in dict.fromkeys(keywords) if normalize(k) in said]
    return tuple(k for k in found if not any(k != other and normalize(k) in normalize(other) for other in found))


def names_the_matter(suggestion: Suggestion, text: str) -> bool:
    """Whether the appeal (``text``) names the matter the entry is about (:func:`matter_words`)."""
    return bool(matter_words(suggestion, text))


def matter_answers(
    session: Session, *, text: str, category_id: int | None = None, limit: int = 5, public_only: bool = False
) -> list[Suggestion]:
    """The entries an operator may answer the appeal ``text`` with in one click (秒回): those of the best
    ``limit`` that name its matter (:func:`names_the_matter`). ``public_only``: of the entries fit for the public
    only (:func:`self_help_answers`)."""
    found = suggest(session, text=text, category_id=category_id, limit=limit, public_only=public_only)
    offered = [replace(s, matter=matter_words(s, text)) for s in found]
    return [s for s in offered if s.matter]


# --- revision -----------------------------------------------------------------------------------------------------


def bump_revision(session: Session) -> None:
    """Record that the knowledge base changed (indexes everywhere rebuild on their next query)."""
    now = utcnow()
    moved = session.execute(
        update(KnowledgeRevision)
        .where(KnowledgeRevision.id == 1)
        .values(revision=KnowledgeRevision.revision + 1, changed_at=now)
    )
    if rowcount(moved) == 0:
        session.add(KnowledgeRevision(id=1, revision=1, changed_at=now))
    session.flush()


def _revision_key(session: Session) -> tuple[int, str] | None:
    row = session.execute(
        select(KnowledgeRevision.revision, KnowledgeRevision.changed_at).where(KnowledgeRevision.id == 1)
    ).one_or_none()
    # changed_at is part of the key: a database emptied and refilled restarts the counter.
    return None if row is None else (int(row[0]), row[1].isoformat())


# --- entries ------------------------------------------------------------------------------------------------------


def _check_category(session: Session, category_id: int | None) -> None:
    if category_id is not None and session.get(Category, category_id) is None:
        raise ValidationFailed(f"unknown category_id {category_id}", details={"field": "category_id"})


# What the configuration log (cityhub.auditlog) keeps of a knowledge entry, before and after a change: what can be
# set, whether it is active, and where it came from.
_ENTRY_FACTS = (
    "question",
    "answer",
    "category_id",
    "keywords",
    "valid_from",
    "valid_until",
    "active",
    "public",
    "source",
)
# The reason of the log's entries an import writes (the pages translate it: ``web.machine_text``, why.imported_from).
IMPORTED_FROM = "imported from {name}"


def _entry_facts(entry: KnowledgeEntry) -> dict[str, Any]:
    return auditlog.snapshot(entry, _ENTRY_FACTS)


def _log_entry(
    session: Session,
    entry: KnowledgeEntry,
    action: str,
    actor: orders.Actor,
    before: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    auditlog.record(
        session,
        actor=actor,
        area="kb_entry",
        target=str(entry.id),
        action=action,
        before=before,
        after=_entry_facts(entry),
        reason=reason,
    )


def create_entry(session: Session, *, data: EntryCreate, actor: orders.Actor = orders.SYSTEM) -> KnowledgeEntry:
    """Add an entry to the knowledge base (written into the configuration log)."""
    _check_category(session, data.category_id)
    if data.source and get_entry_by_source(session, source=data.source) is not None:
        raise Conflict(f"an entry from source '{data.source}' exists already", details={"field": "source"})
    now = utcnow()
    entry = KnowledgeEntry(**data.model_dump(), active=True, created_at=now, updated_at=now)
    session.add(entry)
    session.flush()
    _log_entry(session, entry, "create", actor)
    bump_revision(session)
    return entry


def get_entry(session: Session, *, entry_id: int) -> KnowledgeEntry | None:
    return session.get(KnowledgeEntry, entry_id)


def get_entry_by_source(session: Session, *, source: str) -> KnowledgeEntry | None:
    return session.execute(select(KnowledgeEntry).where(KnowledgeEntry.source == source)).scalar_one_or_none()


def require_entry(session: Session, *, entry_id: int) -> KnowledgeEntry:
    entry = get_entry(session, entry_id=entry_id)
    if entry is None:
        raise NotFound(f"knowledge entry {entry_id} not found")
    return entry


def update_entry(
    session: Session, *, entry_id: int, data: EntryUpdate, actor: orders.Actor = orders.SYSTEM
) -> KnowledgeEntry:
    """Change an entry (what changed written into the configuration log); a stale ``data.version`` raises
    Conflict."""
    entry = require_entry(session, entry_id=entry_id)
    if data.version is not None and data.version != entry.version:
        raise Conflict(
            f"knowledge entry {entry_id} was changed by someone else (version {entry.version}, you had {data.version})",
            details={"version": entry.version},
        )
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    refuse_nulls(changes, ("question", "answer", "keywords", "active", "public"))
    for name in ("question", "answer"):
        if name in changes and not str(changes[name]).strip():
            raise ValidationFailed(f"{name} must not be blank", details={"field": name})
    if "category_id" in changes:
        _check_category(session, changes["category_id"])
    valid_from = changes.get("valid_from", entry.valid_from)
    valid_until = changes.get("valid_until", entry.valid_until)
    if valid_from and valid_until and valid_until <= valid_from:
        raise ValidationFailed("valid_until must be after valid_from", details={"field": "valid_until"})
    before = _entry_facts(entry)
    changed = False
    for name, value in changes.items():
        if isinstance(value, str):
            value = value.strip()
        if getattr(entry, name) != value:
            setattr(entry, name, value)
            changed = True
    if changed:
        entry.updated_at = utcnow()
        session.flush()
        _log_entry(session, entry, "update", actor, before)
        bump_revision(session)
    return entry


def deactivate_entry(session: Session, *, entry_id: int, actor: orders.Actor = orders.SYSTEM) -> KnowledgeEntry:
    """Take an entry out of the suggestions (it stays for the audit trail of the orders it answered), written into
    the configuration log as retired."""
    entry = require_entry(session, entry_id=entry_id)
    if entry.active:
        before = _entry_facts(entry)
        entry.active = False
        entry.updated_at = utcnow()
        session.flush()
        _log_entry(session, entry, "retire", actor, before)
        bump_revision(session)
    return entry


def list_entries(
    session: Session,
    *,
    active: bool | None = True,
    category_id: int | None = None,
    q: str | None = None,
    valid_at: datetime | None = None,
    public: bool | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[Sequence[KnowledgeEntry], bool]:
    """Entries, newest first; returns (page, has_more). ``q``: words separated by spaces, each found in the question
    or the answer (居住证 办理 finds 如何办理居住证). ``public``: only those shown to citizens (True) or not (False)."""
    stmt = select(KnowledgeEntry)
    if active is not None:
        stmt = stmt.where(KnowledgeEntry.active.is_(active))
    if public is not None:
        stmt = stmt.where(KnowledgeEntry.public.is_(public))
    if category_id is not None:
        stmt = stmt.where(KnowledgeEntry.category_id == category_id)
    for word in (q or "").split():
        stmt = stmt.where(or_(contains_text(KnowledgeEntry.question, word), contains_text(KnowledgeEntry.answer, word)))
    if valid_at is not None:
        stmt = stmt.where(
            or_(KnowledgeEntry.valid_from.is_(None), KnowledgeEntry.valid_from <= valid_at),
            or_(KnowledgeEntry.valid_until.is_(None), KnowledgeEntry.valid_until > valid_at),
        )
    rows = list(session.scalars(stmt.order_by(KnowledgeEntry.id.desc()).limit(limit + 1).offset(offset)))
    return rows[:limit], len(rows) > limit


# --- imports ------------------------------------------------------------------------------------------------------


def parse_valid_until(text: str) -> datetime | None:
    """``2025-12-31`` (valid through that local day) or an ISO time (local time if it has no zone)."""
    text = text.strip()
    if not text:
        return None
    tz = get_settings().tz
    try:
        day = date.fromisoformat(text.replace("/", "-"))
    except ValueError:
        pass
    else:
        return datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"'{text}' is not a date (YYYY-MM-DD) or ISO time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def import_entries(session: Session, *, path: Path, actor: orders.Actor = orders.SYSTEM) -> ImportResult:
    """Import entries from a table (CSV or Excel) with columns question, answer[, category, keywords, valid_until,
    public] (``public``: 是/否, 1/0, true/false — shown to citizens, :func:`self_help_answers`; empty: not).

    Rows are matched to active entries by their question text, so that re-importing a corrected file updates
    its entries instead of duplicating them. An optional column the file does not have leaves that field of the
    entries it updates as it is (a file of questions and answers keeps their categories, keywords and validity);
    an empty cell of a column it has clears the field. Each entry created or changed is written into the
    configuration log, by ``actor``, naming the file.
    """
    from cityhub.org.service import read_table

    table = read_table(path)
    missing = [c for c in ("question", "answer") if c not in table.headers]
    if missing:
        raise ValidationFailed(f"{path.name}: missing column(s) {', '.join(missing)}", details={"missing": missing})
    existing = {e.question: e for e in session.scalars(select(KnowledgeEntry).where(KnowledgeEntry.active.is_(True)))}
    report = ImportResult()
    report.rows += table.reject_unread(report.reject)
    items = _import_rows(session, table, report)
    return _upsert_all(session, known=existing, items=items, report=report, actor=actor, source=path.name)


# (key, fields of a new entry only, fields compared and updated): a field the file does not give — its column is not
# in the file — is a new entry's only, so an entry the file updates keeps its own.
_Item = tuple[str, dict[str, Any], dict[str, Any]]
# The optional columns of an import (:func:`import_entries`).
_OPTIONAL_COLUMNS = ("category", "keywords", "valid_until", "public")


def _import_rows(session: Session, table: Any, report: ImportResult) -> Iterator[_Item]:
    """The (question, new-entry fields, updatable fields) of each good row; bad rows are rejected in ``report``."""
    from cityhub.org.service import given_cells, yes_or_no
    from cityhub.workorders.categories import find_category

    first_row: dict[str, int] = {}  # question → the row it was first read on
    for row_no, values in table.rows:
        report.rows += 1
        question = (values.get("question") or "").strip()
        answer = (values.get("answer") or "").strip()
        if not question or not answer:
            report.reject(row_no, "question" if not question else "answer", "empty")
            continue
        if question in first_row:  # the first row's entry stands; the later one would overwrite it unseen
            report.reject(row_no, "question", f"already on row {first_row[question]}")
            continue
        first_row[question] = row_no
        if too_long := next(
            (n for n, t in (("question", question), ("answer", answer)) if len(t) > KB_TEXT_MAX_CHARS), None
        ):
            report.reject(row_no, too_long, f"longer than {KB_TEXT_MAX_CHARS} characters")  # as over the API
            continue
        cells = given_cells(values, _OPTIONAL_COLUMNS)
        given: dict[str, Any] = {}  # the optional fields of the columns the file has
        if "category" in cells:
            given["category_id"] = None
            if name := cells["category"].strip():
                found = find_category(session, name_or_path=name)
                if found is None:
                    report.reject(row_no, "category", f"unknown category '{name}'")
                    continue
                given["category_id"] = found.id
        if "keywords" in cells:
            given["keywords"] = split_keywords(cells["keywords"])
        if "valid_until" in cells:
            try:
                given["valid_until"] = parse_valid_until(cells["valid_until"])
            except ValueError as exc:
                report.reject(row_no, "valid_until", str(exc))
                continue
        if "public" in cells:
            try:
                given["public"] = yes_or_no(cells["public"], blank=False)
            except ValueError as exc:
                report.reject(row_no, "public", str(exc))
                continue
        unset: dict[str, Any] = {"category_id": None, "keywords": [], "valid_until": None, "public": False}
        new_only = {"question": question, "source": None} | {k: v for k, v in unset.items() if k not in given}
        yield question, new_only, {"answer": answer, **given}


def _upsert_all(
    session: Session,
    *,
    known: dict[str, KnowledgeEntry],
    items: Iterable[_Item],
    report: ImportResult,
    actor: orders.Actor,
    source: str,
) -> ImportResult:
    """Create the entries of ``items`` whose key is not ``known``, update those whose fields differ; count each, and
    write each created or changed entry into the configuration log (by ``actor``, the reason naming the file
    ``source``)."""
    now = utcnow()
    logged: list[tuple[KnowledgeEntry, dict[str, Any] | None]] = []  # (entry, its facts before; None: new)
    for key, fixed, fields in items:
        entry = known.get(key)
        if entry is None:
            entry = KnowledgeEntry(active=True, created_at=now, updated_at=now, **fixed, **fields)
            session.add(entry)
            known[key] = entry
            report.created += 1
            logged.append((entry, None))
        elif any(getattr(entry, k) != v for k, v in fields.items()):
            logged.append((entry, _entry_facts(entry)))
            for k, v in fields.items():
                setattr(entry, k, v)
            entry.updated_at = now
            report.updated += 1
        else:
            report.unchanged += 1
    if logged:
        session.flush()  # the new entries' ids, which the log names
        reason = IMPORTED_FROM.format(name=source)
        for entry, before in logged:
            _log_entry(session, entry, "create" if before is None else "update", actor, before, reason)
        bump_revision(session)
    return report


def reply_to_entry(title: str, detail: str, reply: str) -> tuple[str, str, list[str]] | str:
    """(question, answer, keywords) of a message with its official reply, or why it is not worth an entry."""
    question = reply_quality.normalize("\n".join(p for p in (title, detail) if p and p.strip()))
    if not question:
        return "no_question"
    parts = reply_quality.split_reply(reply)
    if not reply_quality.normalize(reply):
        return "empty_reply"
    if parts.forwarding_only:
        return "forwarding_only"
    if len(parts.substance) < reply_quality.MIN_SUBSTANCE_CHARS:
        return "boilerplate_only"
    terms = reply_quality.key_terms(reply_quality.normalize(title) or question)
    keywords = [t for t, _ in sorted(terms.items(), key=lambda kv: -kv[1])[:SEED_KEYWORDS]]
    return question, parts.substance, keywords


def seed_from_replies(
    session: Session,
    *,
    path: Path,
    source_prefix: str = "import:f4",
    limit: int | None = None,
    actor: orders.Actor = orders.SYSTEM,
) -> ImportResult:
    """Build entries from a messages-with-replies CSV (留言编号, 留言主题, 留言详情, 答复意见).

    The reply's greetings, acknowledgements, forwarding notes, sign-offs and dates are stripped; replies that
    are only a forwarding note or boilerplate are skipped. Each entry's source is ``<prefix>:<留言编号>``, so
    running the seed again updates instead of duplicating — but for the question of a known entry when the file has
    no 留言详情 column (the question is subject and detail). Each entry created or changed is written into the
    configuration log as an import's (by ``actor``, naming the file).
    """
    from cityhub.org.service import read_table

    table = read_table(path)
    aliases = {
        "id": ("留言编号", "id"),
        "title": ("留言主题", "title"),
        "detail": ("留言详情", "content"),
        "reply": ("答复意见", "reply"),
    }
    columns = {k: next((c for c in names if c in table.headers), None) for k, names in aliases.items()}
    missing = [aliases[k][0] for k, c in columns.items() if c is None and k != "detail"]
    if missing:
        raise ValidationFailed(f"{path.name}: missing column(s) {', '.join(missing)}", details={"missing": missing})
    known = {
        e.source: e
        for e in session.scalars(select(KnowledgeEntry).where(KnowledgeEntry.source.like(f"{source_prefix}:%")))
        if e.source is not None
    }
    report = ImportResult()

    def items() -> Iterator[_Item]:
        for row_no, values in table.rows[:limit] if limit else table.rows:
            report.rows += 1
            message_id = (values.get(columns["id"] or "") or "").strip()
            if not message_id:
                report.reject(row_no, aliases["id"][0], "empty")
                continue
            made = reply_to_entry(
                values.get(columns["title"] or "", ""),
                values.get(columns["detail"] or "", "") if columns["detail"] else "",
                values.get(columns["reply"] or "", ""),
            )
            if isinstance(made, str):
                report.skip(made)
                continue
            question, answer, keywords = made
            source = f"{source_prefix}:{message_id}"
            new_only, fields = {"source": source}, {"answer": answer, "keywords": keywords}
            # The question is the message's subject and detail: without the detail column, a known entry keeps its.
            (fields if columns["detail"] else new_only)["question"] = question
            yield source, new_only, fields

    return _upsert_all(session, known=known, items=items(), report=report, actor=actor, source=path.name)


# --- retrieval ----------------------------------------------------------------------------------------------------


def get_index(session: Session) -> KnowledgeIndex:
    """The search index of this database at its current revision (built on first use and after changes)."""
    key = _revision_key(session)
    db = database_key(session)
    index = CACHE.get(db, key)
    if index is not None:
        return index
    with CACHE.build_lock:
        index = CACHE.get(db, key)
        if index is None:
            rows = session.execute(
                select(
                    KnowledgeEntry.id,
                    KnowledgeEntry.question,
                    KnowledgeEntry.keywords,
                    KnowledgeEntry.category_id,
                    KnowledgeEntry.valid_from,
                    KnowledgeEntry.valid_until,
                    KnowledgeEntry.public,
                ).where(KnowledgeEntry.active.is_(True))
            ).all()
            docs = [
                Doc(
                    id=r[0],
                    question=r[1],
                    keywords=r[2] or (),
                    category_id=r[3],
                    valid_from=r[4],
                    valid_until=r[5],
                    public=bool(r[6]),
                )
                for r in rows
            ]
            index = KnowledgeIndex(docs)
            CACHE.put(db, key, index)
    return index


def _related_categories(session: Session, category_id: int) -> set[int]:
    """The category, its ancestors (broader entries apply) and its descendants (narrower entries may)."""
    from cityhub.workorders.categories import category_chain

    related = set(category_chain(session, category_id=category_id))
    frontier = [category_id]
    while frontier:
        frontier = list(session.scalars(select(Category.id).where(Category.parent_id.in_(frontier))))
        related.update(frontier)
    return related


def suggest(
    session: Session,
    *,
    text: str,
    category_id: int | None = None,
    limit: int = 5,
    now: datetime | None = None,
    public_only: bool = False,
) -> list[Suggestion]:
    """The best active, currently valid entries for ``text``, best first (category-related or general ones);
    ``public_only``: ranked among the entries fit for the public alone (what a citizen may read)."""
    if not text or not text.strip():
        return []
    categories = _related_categories(session, category_id) if category_id is not None else None
    index = get_index(session)
    hits = index.search(text, limit=limit, now=now or utcnow(), categories=categories, public_only=public_only)
    if not hits:
        return []
    entries = {
        e.id: e for e in session.scalars(select(KnowledgeEntry).where(KnowledgeEntry.id.in_([h.id for h in hits])))
    }
    # An entry deactivated after the index was built is dropped here rather than suggested.
    return [
        Suggestion(entry=entries[h.id], score=round(h.score, 4), why=h.why(), matched=tuple(h.matched))
        for h in hits
        if h.id in entries and entries[h.id].active and (entries[h.id].public or not public_only)
    ]


def instant_answer_candidates(
    session: Session, *, data: OrderCreate | dict[str, Any], limit: int = 5
) -> list[Suggestion]:
    """Knowledge entries an operator can answer a consultation with on the spot; [] for other appeal types.

    Only entries that share with the appeal a word naming the matter (:func:`names_the_matter`) are offered: the
    operator closes the order with one click on one of them, so one that merely shares 了 or 怎么办 is left out.
    """
    if isinstance(data, dict):
        from cityhub.intake.service import parse

        data = parse(data)
    if data.appeal_type != AppealType.CONSULTATION:
        return []
    from cityhub.nlp.text import order_text

    return matter_answers(session, text=order_text(data.title, data.content), category_id=data.category_id, limit=limit)


# The kinds of appeal a citizen may find answered among the public entries: a question (咨询) and a plea for help
# (求助, what a citizen picks for 社保卡丢了怎么办 as often). A complaint, a report, a suggestion or praise asks the
# centre to act or listen — a broken street light is not answered by 路灯坏了找谁.
SELF_HELP_TYPES = frozenset({AppealType.CONSULTATION, AppealType.HELP})


def self_help_answers(session: Session, *, data: OrderCreate, limit: int = 3) -> list[Suggestion]:
    """常见问题解答: the entries fit for the public (``public``) that may answer the appeal a citizen is typing, best
    first — chosen as the operators' 秒回 chooses theirs (:func:`matter_answers`, the entries naming the appeal's
    matter), among the public ones; [] for an appeal not of :data:`SELF_HELP_TYPES`."""
    if data.appeal_type not in SELF_HELP_TYPES:
        return []
    from cityhub.nlp.text import order_text

    text = order_text(data.title, data.content)
    return matter_answers(session, text=text, category_id=data.category_id, limit=limit, public_only=True)


def count_self_served(session: Session, *, entry_id: int) -> KnowledgeEntry:
    """A citizen said the public entry ``entry_id`` solved their problem and filed nothing (市民自助): counted, for its
    keepers to see which answers serve. Only an entry a citizen may be shown (public, active, valid: NotFound or
    ValidationFailed otherwise). Neither an edit of the entry (its version and time stay, the index is not rebuilt)
    nor a configuration change (not logged)."""
    entry = usable_entry(session, entry_id=entry_id)
    if not entry.public:
        raise NotFound(f"knowledge entry {entry_id} not found")
    session.execute(
        update(KnowledgeEntry)
        .where(KnowledgeEntry.id == entry_id)
        .values(self_served=KnowledgeEntry.self_served + 1, updated_at=KnowledgeEntry.updated_at)
        .execution_options(synchronize_session=False)
    )
    session.refresh(entry)
    return entry


def usable_entry(session: Session, *, entry_id: int) -> KnowledgeEntry:
    """The entry an answer is about to be given from, if it may be: active and valid now (NotFound, ValidationFailed
    naming ``entry_id`` — a page shown before an administrator retired the entry offers what is no longer said)."""
    entry = require_entry(session, entry_id=entry_id)
    now = utcnow()
    if not entry.active or (entry.valid_until is not None and entry.valid_until <= now):
        raise ValidationFailed(f"knowledge entry {entry_id} is inactive or expired", details={"field": "entry_id"})
    if entry.valid_from is not None and entry.valid_from > now:
        raise ValidationFailed(f"knowledge entry {entry_id} is not valid yet", details={"field": "entry_id"})
    return entry


def _entry_category(session: Session, entry: KnowledgeEntry) -> Category | None:
    """The category an order answered from ``entry`` is counted under: the entry's, while it is active."""
    category = session.get(Category, entry.category_id) if entry.category_id is not None else None
    return category if category is not None and category.active else None


def answer_order(
    session: Session,
    *,
    order_id: int,
    entry_id: int,
    answer: str | None = None,
    actor: orders.Actor = orders.SYSTEM,
    expected_version: int | None = None,
) -> Order:
    """秒回 on a consultation received earlier (answered from its page): the entry checked as at intake
    (:func:`usable_entry`), the order closed as answered instantly, and counted under the entry's category when it
    has none yet (audited as a comment, as a dispatcher's category is)."""
    entry = usable_entry(session, entry_id=entry_id)
    params = {"answer": (answer or "").strip() or entry.answer, "kb_entry_id": entry.id}
    order = orders.act(
        session,
        order_id=order_id,
        action=Action.INSTANT_ANSWER,
        actor=actor,
        params=params,
        expected_version=expected_version,
    )
    category = _entry_category(session, entry)
    if order.category_id is None and category is not None:
        order = orders.amend(
            session,
            order=order,
            changes={"category_id": category.id},
            actor=actor,
            text=f"category set to {category.path}",
        )
    return order


def act_on_order(
    session: Session,
    *,
    order_id: int,
    action: Action | str,
    params: Mapping[str, Any] | None = None,
    actor: orders.Actor = orders.SYSTEM,
    expected_version: int | None = None,
) -> Order:
    """One life-cycle action, as ``orders.act``, except that an instant answer naming a knowledge entry
    (``kb_entry_id``) goes through :func:`answer_order` — the entry checked, its answer the default, its category
    taken — whoever asks: the order page, the API's action and the CLI's ``orders act``. ``kb_entry_id`` on any other
    action is refused, not ignored."""
    params = dict(params or {})
    entry_id = params.pop("kb_entry_id", None)
    if entry_id is None:
        return orders.act(
            session, order_id=order_id, action=action, actor=actor, params=params, expected_version=expected_version
        )
    if action != Action.INSTANT_ANSWER:
        raise ValidationFailed(
            f"kb_entry_id is taken only by instant_answer, not {action}", details={"field": "kb_entry_id"}
        )
    if isinstance(entry_id, bool) or not isinstance(entry_id, int):
        raise ValidationFailed("kb_entry_id must be a whole number", details={"field": "kb_entry_id"})
    return answer_order(
        session,
        order_id=order_id,
        entry_id=entry_id,
        answer=params.get("answer"),
        actor=actor,
        expected_version=expected_version,
    )


def answer_instantly(
    session: Session,
    *,
    data: OrderCreate,
    entry_id: int,
    answer: str | None = None,
    actor: orders.Actor = orders.SYSTEM,
) -> Order:
    """Receive a consultation and close it as answered instantly from a knowledge entry (recorded in the audit)."""
    from cityhub.intake.service import submit

    entry = usable_entry(session, entry_id=entry_id)
    category = _entry_category(session, entry)
    if data.category_id is None and category is not None:
        # Counted where its answer belongs (the category statistics, assessment), unless the operator chose one.
        data = data.model_copy(update={"category_id": category.id})
    result = submit(
        session,
        data=data,
        actor=actor,
        instant_answer=(answer or "").strip() or entry.answer,
        instant_answer_entry_id=entry.id,
    )
    if not result.created:  # the appeal was received before (same channel and external_id): not answered here
        raise Conflict(
            f"order {result.order.number} with this channel and external_id exists already and was not answered "
            "instantly; act on it instead",
            details={"order_id": result.order.id, "field": "external_id"},
        )
    return result.order


# --- reply quality ------------------------------------------------------------------------------------------------


def _digest(text: str | None) -> str:
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()


def score_order_reply(
    session: Session, *, order: Order, text: str | None, replied_at: datetime | None
) -> reply_quality.ReplyQuality:
    """``text`` as a reply to ``order`` made at ``replied_at``, scored against the appeal on the district's working
    calendar: what :func:`check_reply` keeps, and what the order page's 检查答复质量 shows before a reply is sent."""
    from cityhub.workorders.calendar import load_calendar

    return reply_quality.score_reply(
        order.title,
        order.content,
        text,
        asked_at=order.created_at,
        replied_at=replied_at,
        calendar=load_calendar(session),
    )


def check_reply(session: Session, *, order: Order, force: bool = False) -> ReplyCheck:
    """Score the order's reply, keep the latest score, and flag a weak reply in the audit trail (督办 review).

    A stored score of the same reply by this scorer (``reply_quality.SCORER_VERSION``) is returned as it is unless
    ``force``. Scored again, a reply already flagged weak is not flagged a second time."""
    if not order.reply_text:
        raise ValidationFailed(f"order {order.number} has no reply to check", details={"state": order.state.value})
    digest = _digest(order.reply_text)
    check = session.get(ReplyCheck, order.id)
    current = check is not None and check.reply_digest == digest and check.scorer == reply_quality.SCORER_VERSION
    if current and not force:
        assert check is not None
        return check
    flagged_before = check is not None and check.reply_digest == digest and check.weak
    quality = score_order_reply(
        session, order=order, text=order.reply_text, replied_at=order.replied_at or order.closed_at
    )
    details = quality.as_dict()
    values = {
        "checked_at": utcnow(),
        "reply_digest": digest,
        "scorer": reply_quality.SCORER_VERSION,
        "relevance": quality.relevance,
        "completeness": quality.completeness,
        "basis": quality.basis,
        "timeliness": quality.timeliness,
        "overall": quality.overall,
        "weak": quality.weak,
        "reasons": quality.reasons,
        "details": {k: details[k] for k in ("points", "points_addressed", "working_days", "substance_chars")},
    }
    if check is None:
        check = ReplyCheck(order_id=order.id, **values)
        session.add(check)
    else:
        for k, v in values.items():
            setattr(check, k, v)
    session.flush()
    if quality.weak and not flagged_before:
        orders.act(
            session,
            order_id=order.id,
            action=Action.COMMENT,
            actor=REPLY_CHECKER,
            params={
                "text": reply_quality.WEAK_REPLY_NOTE + "; ".join(quality.reasons),
                "reply_quality": {
                    k: details[k] for k in ("relevance", "completeness", "basis", "timeliness", "overall")
                },
                "weak_reply": True,
            },
        )
    return check


def forget_reply_check(session: Session, order_id: int) -> None:
    """Drop the stored score of ``order_id``'s reply once the order no longer holds that reply (退回答复, 重办): the
    unit's next reply is scored afresh by the ``reply-check`` job — and flagged again if weak, the same words too —
    and the review list does not keep a reply sent back. The trail keeps the reply and the weak-reply note."""
    session.execute(delete(ReplyCheck).where(ReplyCheck.order_id == order_id))


def _unchecked_replies(stmt: Any) -> Any:
    """``stmt`` over the replied orders whose reply awaits its check (see :func:`check_pending_replies`): never
    scored, or scored by an earlier version of the scorer while still under review."""
    return stmt.outerjoin(ReplyCheck, ReplyCheck.order_id == Order.id).where(
        Order.state == State.REPLIED,
        Order.reply_text.is_not(None),
        Order.lead_unit_id.is_not(None),
        or_(ReplyCheck.order_id.is_(None), ReplyCheck.scorer.is_distinct_from(reply_quality.SCORER_VERSION)),
    )


def unchecked_replies(session: Session, *, scope: Any = None) -> int:
    """How many replies within ``scope`` the reply check has not scored yet (the ``reply-check`` job's backlog): the
    review list says them, so that an empty list is not read as no weak reply while replies wait."""
    stmt = _unchecked_replies(select(func.count()).select_from(Order))
    return int(session.scalar(stmt.where(scope) if scope is not None else stmt) or 0)


def check_pending_replies(session: Session, *, limit: int = 500) -> dict[str, int]:
    """Check replied orders whose reply has not been scored yet, or was scored by an earlier version of the scorer
    (a job, and ``cityhub kb check-replies``).

    Only replies a unit wrote here: an order replied without a unit ever holding it is a bulk import's, whose reply
    was written before the import and was never pending review (``GET /api/v1/orders/{id}/reply-quality`` still
    scores one on request). The life cycle replies only from a unit's hands, so the order's lead unit tells them
    apart in the row itself.

    Each order is committed on its own: one changed meanwhile by another process (its version moved: a placing
    job, a supervisor) is left for the next run instead of undoing the whole batch."""
    ids = session.scalars(_unchecked_replies(select(Order.id)).order_by(Order.replied_at).limit(limit)).all()
    session.commit()
    checked = weak = skipped = 0
    for order_id in ids:
        try:
            order = session.get(Order, order_id)
            if order is None or order.state != State.REPLIED or not order.reply_text:
                continue  # changed since it was listed
            weak += int(check_reply(session, order=order).weak)
            session.commit()
            checked += 1
        except (StaleDataError, Conflict):
            session.rollback()
            skipped += 1
    result = {"checked": checked, "weak": weak}
    return {**result, "skipped": skipped} if skipped else result


def _weak_replies(stmt: Any, states: Sequence[State] | None, scope: Any) -> Any:
    """``stmt`` narrowed to the orders whose latest reply check is weak, in ``states``, within ``scope``."""
    stmt = stmt.join(ReplyCheck, ReplyCheck.order_id == Order.id).where(ReplyCheck.weak.is_(True))
    if states:
        stmt = stmt.where(Order.state.in_(list(states)))
    return stmt.where(scope) if scope is not None else stmt


def count_weak_replies(
    session: Session,
    *,
    states: Sequence[State] | None = (State.REPLIED,),
    scope: Any = None,
    cap: int | None = None,
) -> int:
    """How many orders :func:`weak_replies` lists in all: the review list says how many wait for review; with
    ``cap``, counted up to it (at most that many rows read: the menu's 答复审核 count, on every page)."""
    if cap is None:
        return int(session.scalar(_weak_replies(select(func.count()).select_from(Order), states, scope)) or 0)
    found = _weak_replies(select(Order.id), states, scope).limit(cap)
    return int(session.scalar(select(func.count()).select_from(found.subquery())) or 0)


def weak_replies(
    session: Session,
    *,
    states: Sequence[State] | None = (State.REPLIED,),
    scope: Any = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[tuple[Order, ReplyCheck]], bool]:
    """Orders whose latest reply check is weak, worst first: the supervisor's review list (default: replied ones),
    within ``scope`` (a caller's data scope, ``auth.scope.Scope.clause()``; None: all)."""
    stmt = _weak_replies(select(Order, ReplyCheck), states, scope)
    rows = session.execute(stmt.order_by(ReplyCheck.overall, Order.id).limit(limit + 1).offset(offset)).all()
    pairs = [(r[0], r[1]) for r in rows]
    return pairs[:limit], len(pairs) > limit
