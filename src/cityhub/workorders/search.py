"""Full-text search of orders (全文检索): the index terms of an order's text and the search condition over them.

An order's number, title, content and address become one line of index terms (``order_search.terms``, a table of
its own beside ``orders``; :func:`order_search_terms`): the text NFKC-normalised and lower-cased
(:func:`cityhub.nlp.text.nfkc`), each run of CJK characters cut into overlapping character bigrams (a run of one
character is that character), each run of other letters and digits kept whole. No segmenter is needed, at writing or
at query time. The terms are indexed by the backend — SQLite: the FTS5 table ``order_fts`` (external content
``order_search``, tokenizer ``unicode61``) kept in step by triggers on ``order_search``; PostgreSQL: a GIN index on
``to_tsvector('simple', terms)`` — and written wherever an order's text is: the ORM (mapper events,
:mod:`cityhub.workorders.models`) and the bulk writer (:mod:`cityhub.intake.bulk`).

A search text ``q`` is cut into words at whitespace; every word must be found — as ``LIKE '%word%'`` finds it —
in the number, title, content or address (not necessarily the same one). The index narrows the orders to those holding
every *complete* term of every word (:func:`query_terms`), and the ``LIKE`` then runs on those candidates only, so
the result is exactly what ``LIKE`` would find, at the cost of the index. A word with no complete term (one CJK
character, or a single Latin/digit word, which may be the end of a longer word in the text) adds no index term;
when no word has one, the search is the ``LIKE`` alone, over the whole table, as before.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, any_, false, func, literal_column, or_, select, table, text

from cityhub.nlp.text import nfkc

# Han ideographs (the unified blocks, extension A, compatibility ideographs, extensions B and beyond). Other scripts'
# letters and digits are words.
_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_PIECES = re.compile(rf"(?P<cjk>[{_CJK}]+)|(?P<word>[^\W_{_CJK}]+)")
_RUNS = re.compile(rf"[{_CJK}]+|[^\W_{_CJK}]+")  # the same runs, as strings (an order's text: the fast path)
_STARTS_CJK = re.compile(rf"[{_CJK}]").match
_SPACES = re.compile(r"\s+")

# A word at the end of the query matches a text word that starts with it, through a prefix term; shorter prefixes
# would read the postings of too many terms (every number starting with "1"), so they are left to the LIKE.
MIN_PREFIX = 3

# PostgreSQL: from MANY_CANDIDATES orders holding the terms (counted up to there in the GIN index), LIKE alone walks
# the newest orders. SQLite's plan by how many orders hold a query's terms (counted up to COMMON_CANDIDATES): below
# MANY_CANDIDATES each is read by id and the few sorted; from there the newest orders are walked and looked up among
# the candidates (a page of 50 after ~50 × orders / candidates rows); from COMMON_CANDIDATES on, a word found every
# few orders, the walk checks LIKE alone — materialising 100,000s of candidates cost up to a second at 1,000,000
# orders (bench/results/order_search.md).
MANY_CANDIDATES = 2_000
COMMON_CANDIDATES = 20_000
COMMON_SHARE = 0.05

TERMS_TABLE = "order_search"  # the terms, one row per order (cityhub.workorders.models.OrderSearch)
FTS_TABLE = "order_fts"
PAUSE_TABLE = "order_search_pause"
PG_INDEX = "ix_order_search"
# The indexed expression, literally: PostgreSQL uses the expression index only for this exact expression, with the
# configuration a constant (a bound parameter would not match it).
PG_TSVECTOR = "to_tsvector('simple'::regconfig, terms)"
SEARCHED = ("number", "title", "content", "address")  # the columns of orders the terms and the LIKE are about

# The index's DDL, as the migration 0020 writes it (a schema made from the models' metadata gets the same through
# :func:`install_index`).
SQLITE_DDL = (
    f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(terms, content='{TERMS_TABLE}', content_rowid='order_id', "
    "tokenize='unicode61')",
    # Holds a row only inside the bulk writer's transaction (SQLite has one writer: no other sees it), which indexes
    # its orders in one statement after inserting them (indexed_afterwards): one index insert per row from the
    # trigger cost 2–3 times as much.
    f"CREATE TABLE {PAUSE_TABLE} (paused INTEGER NOT NULL)",
    f"CREATE TRIGGER order_search_insert AFTER INSERT ON {TERMS_TABLE} "
    f"WHEN NOT EXISTS (SELECT 1 FROM {PAUSE_TABLE}) BEGIN "
    f"INSERT INTO {FTS_TABLE}(rowid, terms) VALUES (new.order_id, new.terms); END",
    # Also when an order's deletion cascades here (foreign keys on, as cityhub's connections have them).
    f"CREATE TRIGGER order_search_delete AFTER DELETE ON {TERMS_TABLE} BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, terms) VALUES ('delete', old.order_id, old.terms); END",
    f"CREATE TRIGGER order_search_update AFTER UPDATE ON {TERMS_TABLE} BEGIN "
    f"INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, terms) VALUES ('delete', old.order_id, old.terms); "
    f"INSERT INTO {FTS_TABLE}(rowid, terms) VALUES (new.order_id, new.terms); END",
)
SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS order_search_update",
    "DROP TRIGGER IF EXISTS order_search_delete",
    "DROP TRIGGER IF EXISTS order_search_insert",
    f"DROP TABLE IF EXISTS {FTS_TABLE}",
    f"DROP TABLE IF EXISTS {PAUSE_TABLE}",
)
PG_DDL = (f"CREATE INDEX {PG_INDEX} ON {TERMS_TABLE} USING gin ({PG_TSVECTOR})",)
PG_DROP = (f"DROP INDEX IF EXISTS {PG_INDEX}",)


def is_index_table(name: str) -> bool:
    """Whether ``name`` is one of the SQLite search index's tables (FTS5's, the bulk writer's pause; not in the
    models)."""
    return name in (FTS_TABLE, PAUSE_TABLE) or name.startswith(FTS_TABLE + "_")


def install_index(conn: Any) -> None:
    """Create the search index of the connection's backend on a schema made from the models (the migration 0020
    makes it on a migrated one)."""
    for statement in SQLITE_DDL if conn.dialect.name == "sqlite" else PG_DDL:
        conn.exec_driver_sql(statement)


def drop_index(conn: Any) -> None:
    """Drop the search index of the connection's backend (before the ``order_search`` table)."""
    for statement in SQLITE_DROP if conn.dialect.name == "sqlite" else PG_DROP:
        conn.exec_driver_sql(statement)


@contextmanager
def indexed_afterwards(conn: Any, first_id: int, last_id: int) -> Iterator[None]:
    """SQLite: the terms of orders ``first_id``…``last_id`` inserted inside the block go into the index in one
    statement after it, not one by one from the insert trigger (the bulk writer's batches). Within the caller's
    transaction: the pause row is never committed, and SQLite's single writer means no other connection inserts
    meanwhile."""
    index = (
        f"INSERT INTO {FTS_TABLE}(rowid, terms) SELECT order_id, terms FROM {TERMS_TABLE} "
        "WHERE order_id BETWEEN ? AND ?"
    )
    conn.exec_driver_sql(f"INSERT INTO {PAUSE_TABLE} (paused) VALUES (1)")
    try:
        yield
    except BaseException:
        # What was inserted before the error is indexed too, should the caller commit it anyway.
        with suppress(Exception):
            conn.exec_driver_sql(index, (first_id, last_id))
            conn.exec_driver_sql(f"DELETE FROM {PAUSE_TABLE}")
        raise
    conn.exec_driver_sql(index, (first_id, last_id))
    conn.exec_driver_sql(f"DELETE FROM {PAUSE_TABLE}")


def _pieces(normal: str) -> list[tuple[str, str, int, int]]:
    """(kind, text, start, end) of each CJK run (``cjk``) and each run of other letters and digits (``word``) of a
    normalised text."""
    return [(m.lastgroup or "", m.group(), m.start(), m.end()) for m in _PIECES.finditer(normal)]


def _cjk_terms(run: str) -> list[str]:
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


def terms(text_: str | None) -> list[str]:
    """The index terms of one text, in order, repeats kept: CJK bigrams (a lone CJK character itself) and whole
    Latin/digit words, after NFKC and lower case."""
    if not text_:
        return []
    found: list[str] = []
    for run in _RUNS.findall(nfkc(text_).lower()):
        if len(run) > 1 and _STARTS_CJK(run):
            found += map(str.__add__, run, run[1:])  # its bigrams (a run is all CJK or none)
        else:
            found.append(run)
    return found


def order_search_terms(
    title: str | None, content: str | None, address: str | None, *, number: str | None = None
) -> str:
    """What ``order_search.terms`` holds: the distinct terms of number, title, content and address,
    space-separated.

    The fields are cut apart, so no term spans two of them (a query across the end of the title and the start of
    the content finds nothing, as ``LIKE`` on each column finds nothing).
    """
    return " ".join(dict.fromkeys([*terms(number), *terms(title), *terms(content), *terms(address)]))


@dataclass(frozen=True)
class QueryTerms:
    """What the index can require of one word of a query: terms every matching order holds whole, and terms that
    start a term of every matching order (the word's last Latin/digit piece, which the text may continue)."""

    whole: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.whole or self.prefixes)


def query_terms(word: str) -> QueryTerms:
    """The index terms an order must hold for ``word`` (no whitespace) to be a substring of its title, content or
    address.

    A piece inside the word is bounded by the word itself, so the text's piece is the same: its bigrams, a lone
    character, a whole Latin/digit word. A piece at the word's edge may be part of a longer piece in the text:
    CJK bigrams are still bigrams of the text's run, but a lone CJK character at an edge may be inside a longer run
    (whose terms are bigrams), and a Latin/digit word at the start may be the end of a longer word — these add
    nothing; a Latin/digit word at the end only (not also at the start) starts the text's word: a prefix term of
    at least :data:`MIN_PREFIX` characters.
    """
    normal = nfkc(word).lower()
    pieces = _pieces(normal)
    if not pieces:
        return QueryTerms()
    length = len(normal)
    whole: dict[str, None] = {}
    prefixes: dict[str, None] = {}
    for kind, piece, start, end in pieces:
        at_start, at_end = start == 0, end == length
        if kind == "cjk":
            if len(piece) > 1 or not (at_start or at_end):
                whole.update(dict.fromkeys(_cjk_terms(piece)))
        elif not at_start and not at_end:
            whole[piece] = None
        elif at_end and not at_start and len(piece) >= MIN_PREFIX:
            prefixes[piece] = None
    return QueryTerms(tuple(whole), tuple(p for p in prefixes if p not in whole))


def words(q: str) -> list[str]:
    """The words of a search text: its whitespace-separated parts, each to be found."""
    return [w for w in _SPACES.split(q.strip()) if w]


def _like_pattern(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _fts_string(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def _pg_string(term: str) -> str:
    return "'" + term.replace("'", "''") + "'"


def fts_expression(found: Iterable[QueryTerms]) -> str:
    """The FTS5 MATCH expression requiring every term (``"term"``, a prefix ``"term"*``)."""
    parts: list[str] = []
    for t in found:
        parts += [_fts_string(w) for w in t.whole]
        parts += [_fts_string(p) + "*" for p in t.prefixes]
    return " AND ".join(dict.fromkeys(parts))


def pg_tsquery(found: Iterable[QueryTerms]) -> str:
    """The ``to_tsquery('simple', …)`` text requiring every term (a prefix ``'term':*``)."""
    parts: list[str] = []
    for t in found:
        parts += [_pg_string(w) for w in t.whole]
        parts += [_pg_string(p) + ":*" for p in t.prefixes]
    return " & ".join(dict.fromkeys(parts))


def newest_holders(conn: Any, found: Iterable[str], *, limit: int, since_id: int = 0) -> dict[str, list[int]]:
    """For each term of ``found``, the ids (at least ``since_id``) of the ``limit`` newest orders whose index terms
    hold it (a whole term), newest first: the index alone, no ``LIKE`` (a lookup of candidates, e.g. the similar
    cases' telling words, not a search's answer)."""
    wanted = list(dict.fromkeys(found))
    if not wanted or limit < 1:
        return {}
    if conn.dialect.name == "sqlite":
        query = (
            f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH :q AND rowid >= :since ORDER BY rowid DESC LIMIT :n"
        )
        quoted = _fts_string
    else:
        # The matches first (the GIN index, within the ids wanted), then the newest of them: OFFSET 0 keeps the
        # planner from walking the whole table newest first in search of them.
        query = (
            f"SELECT order_id FROM (SELECT order_id FROM {TERMS_TABLE} WHERE {PG_TSVECTOR} @@ "
            "to_tsquery('simple', :q) AND order_id >= :since OFFSET 0) AS held ORDER BY order_id DESC LIMIT :n"
        )
        quoted = _pg_string
    statement = text(query)

    def holders() -> dict[str, list[int]]:
        return {
            t: [int(i) for i in conn.execute(statement, {"q": quoted(t), "n": limit, "since": since_id}).scalars()]
            for t in wanted
        }

    if conn.dialect.name == "sqlite":
        return holders()
    # A term thousands of orders hold (a street's name: every order of the street holds it through its address) made
    # the planner walk the primary key over the whole id range, computing each row's tsvector as a filter (358 ms,
    # against 12 ms for the GIN index's bitmap ANDed with the id range's; bench/results/similar_cases.md): no plain
    # index scan for these lookups. Local to the transaction (a failed lookup's rollback puts it back), and put back
    # as it was after them.
    was = conn.execute(text(_PG_NO_INDEX_SCAN)).scalar_one()
    held = holders()
    conn.execute(text("SELECT set_config('enable_indexscan', :was, true)"), {"was": was})
    return held


_PG_NO_INDEX_SCAN = (
    "SELECT was, set_config('enable_indexscan', 'off', true) "
    "FROM (SELECT current_setting('enable_indexscan') AS was OFFSET 0) AS setting"
)


def text_condition(conn: Any, q: str, columns: Any, *, counting: bool = False) -> ColumnElement[bool]:
    """The orders whose number, title, content or address hold every word of ``q`` as ``LIKE`` finds it, through
    the index when a word has terms. ``conn``: the session's connection; ``columns``: ``Order.__table__.c``;
    ``counting``: the condition counts every match rather than finding a page, newest first."""
    parts = words(q)
    if not parts:
        return false()
    if conn.dialect.name == "postgresql":  # SQLite's LIKE already ignores the case of Latin letters; the index does
        likes = [or_(*(columns[name].ilike(_like_pattern(w), escape="\\") for name in SEARCHED)) for w in parts]
    else:
        likes = [or_(*(columns[name].like(_like_pattern(w), escape="\\") for name in SEARCHED)) for w in parts]
    found = [t for t in (query_terms(w) for w in parts) if t]
    if not found:
        return and_(*likes)  # nothing the index can require: the scan, as before
    if conn.dialect.name == "postgresql":
        tsquery = pg_tsquery(found)
        surely_common = not counting and _pg_surely_common(conn, [w for t in found for w in t.whole])
        candidates = MANY_CANDIDATES if surely_common else _pg_candidates(conn, tsquery)
        if candidates == 0:
            return false()
        if candidates >= MANY_CANDIDATES and not counting:
            # Read through the index, 2,000 candidates cost ~150 ms (a bitmap of them, each row, a sort); LIKE alone
            # on the newest orders fills a page within ~50 × orders / candidates rows.
            return and_(*likes)
        indexed: Select[Any] = (
            select(literal_column("order_id"))
            .select_from(table(TERMS_TABLE))
            .where(
                literal_column(PG_TSVECTOR).op("@@")(func.to_tsquery(literal_column("'simple'::regconfig"), tsquery))
            )
        )
        if candidates >= MANY_CANDIDATES:  # counting many: a hashed subplan, one probe per order
            return and_(columns["id"].in_(indexed), *likes)
        # Few: id = ANY(ARRAY(…)), not id IN (…): the few ids computed first, so that the OR with the number's and
        # the citizen's indexes stays a BitmapOr of index scans; an IN (subquery) under an OR is a hashed subplan
        # tested on every row of orders (65–85 ms at 200,000 orders against 1). Never for many: ANY of an array is
        # a linear search per row (a count of a word in every order took minutes).
        return and_(columns["id"] == any_(func.array(indexed.scalar_subquery())), *likes)
    expression = fts_expression(found)
    matching: Select[Any] = (
        select(literal_column("rowid"))
        .select_from(table(FTS_TABLE))
        .where(text(f"{FTS_TABLE} MATCH :search_match").bindparams(search_match=expression))
    )
    candidates = _sqlite_candidates(conn, expression)
    if candidates == 0:
        return false()
    if candidates >= COMMON_CANDIDATES:
        # A common word: the newest orders (or those of another filter's index) hold it every few rows, so LIKE
        # alone fills a page at once; reading the index's candidates would cost more than the page.
        return and_(*likes)
    if candidates < MANY_CANDIDATES or counting:
        # Few: each candidate read by its id, checked, and the few sorted.
        return and_(columns["id"].in_(matching), *likes)
    # Many: the newest orders walked in order (or the index of another filter), each looked up among the
    # candidates, until a page is full — reading and sorting all of them would cost more. The unary + tells SQLite
    # not to drive the query from the candidates.
    return and_(literal_column(f"+{columns['id'].table.name}.id").in_(matching), *likes)


# PostgreSQL's statistics of the index's terms (the share of orders holding each common one), per database and
# process, read again after TERM_STATS_SECONDS.
TERM_STATS_SECONDS = 600.0
_term_stats: dict[str, tuple[float, dict[str, float]]] = {}


def _pg_surely_common(conn: Any, required: list[str]) -> bool:
    """Whether the statistics say at least :data:`COMMON_SHARE` of the orders hold every term (at least
    1 − Σ(1 − share) of them do, whatever their overlap), so that counting the candidates — a bitmap of most of
    the table, 40 ms at 200,000 orders — can be skipped."""
    if not required:
        return False
    key = conn.engine.url.render_as_string(hide_password=True)
    now = time.monotonic()
    cached = _term_stats.get(key)
    if cached is None or cached[0] < now:
        row = conn.exec_driver_sql(
            "SELECT most_common_elems::text::text[], most_common_elem_freqs FROM pg_stats "
            "WHERE tablename = %s AND most_common_elems IS NOT NULL",
            (PG_INDEX,),
        ).first()
        shares = dict(zip(row[0], row[1], strict=False)) if row else {}
        cached = _term_stats[key] = (now + TERM_STATS_SECONDS, shares)
    shares = cached[1]
    return 1 - sum(1 - shares.get(term, 0.0) for term in required) >= COMMON_SHARE


def _pg_candidates(conn: Any, tsquery: str) -> int:
    """How many orders hold the terms, counted up to :data:`MANY_CANDIDATES` through the GIN index.

    The planner would walk the table for a word it takes for common (its estimate of an AND of bigrams, which go
    together, is far too low or too high), computing each row's tsvector: the count is asked for the bitmap of the
    index alone (scans other than bitmap scans off, for this statement, restored after it).
    """
    saved = conn.exec_driver_sql(
        "SELECT current_setting('enable_seqscan'), current_setting('enable_indexscan'), "
        "set_config('enable_seqscan', 'off', true), set_config('enable_indexscan', 'off', true)"
    ).one()
    try:
        return int(
            conn.exec_driver_sql(
                f"SELECT count(*) FROM (SELECT 1 FROM {TERMS_TABLE} WHERE {PG_TSVECTOR} @@ "
                "to_tsquery('simple'::regconfig, %s) LIMIT %s) AS candidates",
                (tsquery, MANY_CANDIDATES),
            ).scalar()
        )
    finally:
        conn.exec_driver_sql(
            "SELECT set_config('enable_seqscan', %s, true), set_config('enable_indexscan', %s, true)",
            (saved[0], saved[1]),
        )


def _sqlite_candidates(conn: Any, expression: str) -> int:
    """How many orders hold the terms, counted up to :data:`COMMON_CANDIDATES` (FTS5 stops there)."""
    return int(
        conn.exec_driver_sql(
            f"SELECT count(*) FROM (SELECT 1 FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH ? LIMIT ?)",
            (expression, COMMON_CANDIDATES),
        ).scalar()
    )


def like_condition(q: str, columns: Any) -> ColumnElement[bool]:
    """The search before the index (kept for the benchmark's comparison): ``q`` as one ``LIKE`` pattern over number,
    title, content and address."""
    pattern = _like_pattern(q)
    return or_(*(columns[name].like(pattern, escape="\\") for name in SEARCHED))
