"""The hierarchical category taxonomy (城乡建设 / 住房保障 / 保障房): import, seed, look-up.

Codes are stable: a node keeps its code for ever; a new node takes the next free number under its parent
(``C01``, ``C01.03``, ``C01.03.007``), so importing the same file into an empty database always yields the
same codes, and re-importing never renumbers anything.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import EllipsisType
from typing import Annotated, Any

import typer
from pydantic import Field
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from cityhub import auditlog, refdata
from cityhub.clitools import RejectedRow, fail_with, print_rejected, refuse_if_nothing_imported
from cityhub.errors import CityhubError, Conflict, NotFound, ValidationFailed
from cityhub.nlp.text import nfkc
from cityhub.org.schemas import ImportReport
from cityhub.org.service import CODE_PATTERN, CsvTable, read_table
from cityhub.workorders.models import Category

DEFAULT_TAXONOMY = Path(__file__).parent / "data" / "taxonomy.csv"
SEPARATOR = "/"
NAME_MAX = 80
NAME_EN_MAX = 120  # an English name, shown by English pages (cityhub.localnames)
PATH_MAX = 300

# Header spellings of the level columns, in level order.
LEVEL_HEADERS: tuple[tuple[str, ...], ...] = (
    ("一级分类", "level1"),
    ("二级分类", "level2"),
    ("三级分类", "level3"),
    ("四级分类", "level4"),
)
FLAT_HEADERS = ("code", "name", "parent_code")
# Optional columns of the English names: ``name_en`` of a code,name,parent_code file, ``levelN_en`` beside ``levelN``
# (or its Chinese spelling); a column a file lacks leaves the English names as they are.
NAME_EN_HEADER = "name_en"
_PATH_SEPARATORS = re.compile(r"\s*[/／>＞]\s*")


class TaxonomyImportReport(ImportReport):
    """Counts are of category nodes (a node shared by many rows counts once)."""

    by_level: dict[int, int] = Field(default_factory=dict)


def ancestor_at(tree: Mapping[int, Category], category_id: int | None, level: int) -> Category | None:
    """The category of ``category_id`` rolled up to ``level`` (1: its top-level category) in ``tree`` (every
    category by id: the taxonomy is small, so counts are rolled up in memory); None for no category."""
    node = tree.get(category_id) if category_id is not None else None
    while node is not None and node.level > level and node.parent_id is not None:
        node = tree.get(node.parent_id)
    return node


def category_code(parent_code: str | None, index: int, level: int) -> str:
    """Code of the ``index``-th (1-based) child: C01, C01.03, C01.03.007."""
    if parent_code is None:
        return f"C{index:02d}"
    return f"{parent_code}.{index:02d}" if level == 2 else f"{parent_code}.{index:03d}"


def normalise_path(text: str) -> str:
    """``城乡建设 / 住房保障 > 保障房`` → ``城乡建设/住房保障/保障房``."""
    return SEPARATOR.join(p for p in _PATH_SEPARATORS.split(text.strip()) if p)


def category_form(text: str) -> str:
    """The form a category's name or path is looked up and learnt in: :func:`normalise_path` of its NFKC form, so
    that widths do not matter — "交通运输(公交)" (as a file or a classifier's label has it) finds "交通运输（公交）"."""
    return normalise_path(nfkc(text))


@dataclass
class _Tree:
    """All categories in memory: taxonomies are small (hundreds to a few thousand nodes)."""

    by_id: dict[int, Category]
    # (parent code, name): codes are known before a flush, so new nodes need no round trip.
    by_key: dict[tuple[str | None, str], Category]
    by_code: dict[str, Category]

    @classmethod
    def load(cls, session: Session) -> _Tree:
        nodes = list(session.scalars(select(Category)))
        code_of = {c.id: c.code for c in nodes}
        return cls(
            by_id={c.id: c for c in nodes},
            by_key={(code_of[c.parent_id] if c.parent_id is not None else None, c.name): c for c in nodes},
            by_code={c.code: c for c in nodes},
        )

    def next_code(self, parent: Category | None, level: int) -> str:
        parent_code = parent.code if parent is not None else None
        prefix = "C" if parent_code is None else f"{parent_code}."
        used = [
            int(code[len(prefix) :])
            for (key, _), node in self.by_key.items()
            if key == parent_code and (code := node.code).startswith(prefix) and code[len(prefix) :].isdigit()
        ]
        index = max(used, default=0) + 1
        code = category_code(parent_code, index, level)
        while code in self.by_code:
            index += 1
            code = category_code(parent_code, index, level)
        return code

    def add(self, session: Session, *, name: str, parent: Category | None) -> Category:
        level = parent.level + 1 if parent is not None else 1
        node = Category(
            code=self.next_code(parent, level),
            name=name,
            level=level,
            path=f"{parent.path}{SEPARATOR}{name}" if parent is not None else name,
            active=True,
        )
        node.parent = parent
        session.add(node)
        self.by_key[(parent.code if parent is not None else None, name)] = node
        self.by_code[node.code] = node
        return node


def _check_name(name: str) -> str | None:
    if len(name) > NAME_MAX:
        return f"name longer than {NAME_MAX} characters"
    if _PATH_SEPARATORS.search(name):
        return f"name {name!r} contains a path separator"
    return None


def import_taxonomy(session: Session, *, path: Path) -> TaxonomyImportReport:
    """Upsert categories from a CSV or Excel file (its first sheet) with level columns (一级分类… or level1…) or
    code,name,parent_code."""
    table = read_table(path)
    if all(h in table.headers for h in FLAT_HEADERS):
        report = _import_flat(session, table)
        report.rows += table.reject_unread(report.reject)
        return report
    columns: list[str] = []
    for spellings in LEVEL_HEADERS:
        found = next((s for s in spellings if s in table.headers), None)
        if found is None:
            break
        columns.append(found)
    if not columns:
        raise ValidationFailed(
            f"{path}: wrong headers (expected 一级分类,二级分类,三级分类 or level1,level2,level3 "
            f"or code,name,parent_code)",
            details={"found": table.headers},
        )
    en_columns = [f"level{level}_en" for level in range(1, len(columns) + 1)]
    report = _import_levels(session, table, columns, [c if c in table.headers else None for c in en_columns])
    report.rows += table.reject_unread(report.reject)
    return report


def _import_levels(
    session: Session, table: CsvTable, columns: list[str], en_columns: list[str | None]
) -> TaxonomyImportReport:
    report = TaxonomyImportReport()
    tree = _Tree.load(session)
    seen: set[str] = set()
    for number, values in table.rows:
        report.rows += 1
        names = [values.get(column, "") for column in columns]
        while names and not names[-1]:
            names.pop()
        problem: tuple[str, str] | None = None
        for column, name in zip(columns, names, strict=False):
            if not name:
                problem = (column, "empty level above a filled one")
            elif reason := _check_name(name):
                problem = (column, reason)
            if problem:
                break
        if problem is None and len(SEPARATOR.join(names)) > PATH_MAX:
            problem = (columns[-1], f"path longer than {PATH_MAX} characters")
        # An empty English cell leaves the node's English name as it is (another row of the node may give it).
        english = [values.get(c, "").strip() if c else "" for c in en_columns[: len(names)]]
        for en_column, name_en in zip(en_columns, english, strict=False):
            if problem is None and en_column and len(name_en) > NAME_EN_MAX:
                problem = (en_column, f"name_en longer than {NAME_EN_MAX} characters")
        if problem:
            report.reject(number, *problem)
            continue
        parent: Category | None = None
        for name, name_en in zip(names, english, strict=True):
            node = tree.by_key.get((parent.code if parent is not None else None, name))
            if node is None:
                node = tree.add(session, name=name, parent=parent)
                node.name_en = name_en or None
                report.created += 1
                report.by_level[node.level] = report.by_level.get(node.level, 0) + 1
            elif node.code not in seen:
                renamed = bool(name_en) and node.name_en != name_en
                if name_en:
                    node.name_en = name_en
                if node.active and not renamed:
                    report.unchanged += 1
                else:
                    node.active = True
                    report.updated += 1
                report.by_level[node.level] = report.by_level.get(node.level, 0) + 1
            elif name_en and node.name_en != name_en:
                node.name_en = name_en  # a later row of the node naming it otherwise: the last word
            seen.add(node.code)
            parent = node
    session.flush()
    return report


def _import_flat(session: Session, table: CsvTable) -> TaxonomyImportReport:
    report = TaxonomyImportReport()
    tree = _Tree.load(session)
    rows: dict[str, tuple[int, str, str]] = {}
    english: dict[str, str | None] = {}  # code -> the English name the file gives (the column present), empty: none
    for number, values in table.rows:
        report.rows += 1
        code, name, parent_code = values["code"], values["name"], values["parent_code"]
        name_en = values.get(NAME_EN_HEADER, "").strip()
        if NAME_EN_HEADER in table.headers:
            english[code] = name_en or None
        if not code or not CODE_PATTERN.match(code):
            report.reject(number, "code", f"invalid code {code!r}")
        elif not name:
            report.reject(number, "name", "empty name")
        elif reason := _check_name(name):
            report.reject(number, "name", reason)
        elif code in rows:
            report.reject(number, "code", f"duplicate code {code} (first on row {rows[code][0]})")
        elif parent_code == code:
            report.reject(number, "parent_code", "a category cannot be its own parent")
        elif len(name_en) > NAME_EN_MAX:
            report.reject(number, NAME_EN_HEADER, f"name_en longer than {NAME_EN_MAX} characters")
        else:
            rows[code] = (number, name, parent_code)

    # Parents first; a row waits until its parent is placed, and what never gets placed is reported.
    outcome: dict[int, str] = {}  # category id -> created / updated / unchanged
    placed: set[str] = set()
    pending = dict(rows)
    while pending:
        # One generation at a time, in file order, so that a clash is always blamed on the later row.
        ready = sorted((c for c, r in pending.items() if r[2] not in pending), key=lambda c: pending[c][0])
        if not ready:
            break
        for code in ready:
            number, name, parent_code = pending.pop(code)
            parent = tree.by_code.get(parent_code) if parent_code else None
            parent_rejected = parent_code in rows and parent_code not in placed
            if parent_code and (parent is None or parent_rejected):
                reason = (
                    f"parent {parent_code} was rejected (row {rows[parent_code][0]})"
                    if parent_code in rows
                    else f"parent {parent_code} is neither in the file nor in the database"
                )
                report.reject(number, "parent_code", reason)
                continue
            result = _upsert_flat(session, tree, report, number, code, name, parent, english.get(code, ...))
            if result is not None:
                outcome[result[0].id] = result[1]
                placed.add(code)
    for code, (number, _, _) in pending.items():
        report.reject(number, "parent_code", f"parent chain of {code} forms a cycle")
    # Renames and moves rewrite the paths of whole subtrees, including nodes the file does not list.
    for node_id in _refresh_paths(session, tree):
        status = outcome.get(node_id)
        if status is None or status == "unchanged":
            outcome[node_id] = "updated"
    report.created = sum(1 for v in outcome.values() if v == "created")
    report.updated = sum(1 for v in outcome.values() if v == "updated")
    report.unchanged = sum(1 for v in outcome.values() if v == "unchanged")
    report.by_level = {}
    for node_id in outcome:
        level = tree.by_id[node_id].level
        report.by_level[level] = report.by_level.get(level, 0) + 1
    report.rejected.sort(key=lambda e: e.row)
    session.flush()
    return report


def _upsert_flat(
    session: Session,
    tree: _Tree,
    report: TaxonomyImportReport,
    number: int,
    code: str,
    name: str,
    parent: Category | None,
    name_en: str | EllipsisType | None = ...,
) -> tuple[Category, str] | None:
    parent_id = parent.id if parent is not None else None
    parent_code = parent.code if parent is not None else None
    holder = tree.by_key.get((parent_code, name))
    node = tree.by_code.get(code)
    if holder is not None and holder is not node:
        report.reject(number, "name", f"{name!r} already exists under the same parent as {holder.code}")
        return None
    if node is not None and parent is not None and _is_ancestor(tree, node, parent):
        report.reject(number, "parent_code", "a category cannot move under its own sub-category")
        return None
    level = parent.level + 1 if parent is not None else 1
    if node is None:
        node = Category(code=code, name=name, level=level, parent_id=parent_id, path=name, active=True)
        node.name_en = None if isinstance(name_en, EllipsisType) else name_en
        session.add(node)
        session.flush()
        tree.by_id[node.id] = node
        tree.by_code[code] = node
        status = "created"
    elif (
        node.name != name
        or node.parent_id != parent_id
        or not node.active
        or (not isinstance(name_en, EllipsisType) and node.name_en != name_en)
    ):
        old_parent = tree.by_id[node.parent_id].code if node.parent_id is not None else None
        tree.by_key.pop((old_parent, node.name), None)
        node.name, node.parent_id, node.active = name, parent_id, True
        if not isinstance(name_en, EllipsisType):
            node.name_en = name_en
        status = "updated"
    else:
        status = "unchanged"
    tree.by_key[(parent_code, name)] = node
    return node, status


def _is_ancestor(tree: _Tree, node: Category, other: Category) -> bool:
    current: Category | None = other
    while current is not None:
        if current.id == node.id:
            return True
        current = tree.by_id.get(current.parent_id) if current.parent_id is not None else None
    return False


def _refresh_paths(session: Session, tree: _Tree) -> set[int]:
    """Recompute level and path of every node from the parent links; return the ids whose values changed."""
    children: dict[int | None, list[Category]] = defaultdict(list)
    for node in tree.by_id.values():
        children[node.parent_id].append(node)
    changed: set[int] = set()
    stack: list[tuple[Category, str, int]] = [(n, n.name, 1) for n in children[None]]
    while stack:
        node, path, level = stack.pop()
        if node.path != path or node.level != level:
            node.path, node.level = path, level
            changed.add(node.id)
        stack.extend((child, f"{path}{SEPARATOR}{child.name}", level + 1) for child in children[node.id])
    too_long = [n for n in tree.by_id.values() if len(n.path) > PATH_MAX]
    if too_long:
        raise ValidationFailed(f"category path longer than {PATH_MAX} characters: {too_long[0].path[:60]}…")
    session.flush()
    return changed


def seed_default_taxonomy(session: Session) -> TaxonomyImportReport:
    """Load the bundled three-level taxonomy (15 / 118 / 517 nodes); running it again changes nothing."""
    return import_taxonomy(session, path=DEFAULT_TAXONOMY)


@dataclass(frozen=True)
class CategoryRef:
    """A category as look-ups need it, shared by the process (see :func:`taxonomy`)."""

    id: int
    code: str
    name: str
    level: int
    parent_id: int | None
    path: str
    active: bool


class Taxonomy:
    """Every category in memory, for look-ups by path, name or path tail, and walks up to the root."""

    def __init__(self, refs: Sequence[CategoryRef]) -> None:
        self.by_id = {c.id: c for c in refs}
        self._by_path: dict[str, CategoryRef] = {}
        # Active categories by name ("保障房") and by every path tail of two parts or more ("住房保障/保障房"),
        # shallowest level first. Names hold no separator, so the two kinds of key never meet.
        self._by_name_or_tail: dict[str, list[CategoryRef]] = defaultdict(list)
        for c in sorted(refs, key=lambda c: (c.level, c.code)):
            if not c.active:
                continue
            path = category_form(c.path)
            self._by_path[path] = c
            self._by_name_or_tail[category_form(c.name)].append(c)
            parts = path.split(SEPARATOR)
            for start in range(1, len(parts) - 1):
                self._by_name_or_tail[SEPARATOR.join(parts[start:])].append(c)

    def find(self, name_or_path: str) -> CategoryRef | None:
        """The active category with this exact path, else the one with this name (or path tail, such as
        ``住房保障/保障房``) at the shallowest level; None when there is none, or more than one there. Widths do not
        matter (:func:`category_form`)."""
        text = category_form(name_or_path)
        if not text:
            return None
        exact = self._by_path.get(text)
        if exact is not None:
            return exact
        candidates = self._by_name_or_tail.get(text, [])
        if not candidates:
            return None
        shallowest = [c for c in candidates if c.level == candidates[0].level]
        return shallowest[0] if len(shallowest) == 1 else None

    def chain(self, category_id: int) -> list[int]:
        """The ids from this category up to its root (self first)."""
        chain: list[int] = []
        current = self.by_id.get(category_id)
        if current is None:
            # An id a request carried (an appeal's category, a deactivated one in a form left open): its error.
            raise ValidationFailed(f"unknown category_id {category_id}", details={"field": "category_id"})
        while current is not None:
            if current.id in chain:
                raise ValidationFailed(f"category {category_id} has a cyclic parent chain")
            chain.append(current.id)
            current = self.by_id.get(current.parent_id) if current.parent_id is not None else None
        return chain


def taxonomy(session: Session) -> Taxonomy:
    """The categories, from the process's cache while the table is unchanged (:mod:`cityhub.refdata`)."""

    def build(s: Session) -> Taxonomy:
        columns = (Category.id, Category.code, Category.name, Category.level, Category.parent_id, Category.path)
        return Taxonomy([CategoryRef(*row[:6], bool(row[6])) for row in s.execute(select(*columns, Category.active))])

    return refdata.cached(session, "workorders.categories", ("categories",), build)


def find_category(session: Session, *, name_or_path: str) -> Category | None:
    """Return the active category with this exact path, else the one with this name at the shallowest level.

    A name (or a path tail such as ``住房保障/保障房``) that is ambiguous at its shallowest level gives None.
    """
    found = taxonomy(session).find(name_or_path)
    return session.get(Category, found.id) if found is not None else None


def find_categories(session: Session, *, names: Sequence[str]) -> dict[str, CategoryRef | None]:
    """:func:`find_category` for several names or paths at once, without reading the database (the taxonomy is
    cached): a classifier's top three labels for every order."""
    found = taxonomy(session)
    return {name: found.find(name) for name in names}


def category_chain(session: Session, *, category_id: int) -> list[int]:
    """Return the ids from this category up to its root (self first)."""
    return taxonomy(session).chain(category_id)


def required_name(name: str) -> str:
    """A category's name as kept (trimmed); refused when empty, too long or holding a path separator."""
    name = name.strip()
    if not name:
        raise ValidationFailed("a category needs a name", details={"field": "name"})
    if reason := _check_name(name):
        raise ValidationFailed(reason, details={"field": "name"})
    return name


def _check_unique(tree: _Tree, parent: Category | None, name: str) -> None:
    if (parent.code if parent is not None else None, name) in tree.by_key:
        raise Conflict(f"category {name!r} already exists under the same parent", details={"field": "name"})


def _category_facts(node: Category) -> dict[str, Any]:
    """What the configuration log (cityhub.auditlog) keeps of a category node."""
    return auditlog.snapshot(node, ("name", "name_en", "path", "parent_id", "active"))


def english_name(name_en: str | None) -> str | None:
    """A category's English name as kept: trimmed, empty as none; longer than :data:`NAME_EN_MAX` refused."""
    name_en = (name_en or "").strip() or None
    if name_en is not None and len(name_en) > NAME_EN_MAX:
        raise ValidationFailed(f"name_en longer than {NAME_EN_MAX} characters", details={"field": "name_en"})
    return name_en


def new_parent(session: Session, parent_id: int | None) -> Category | None:
    """The category a new node goes under (None: top level); refused when there is none or it is inactive — one of
    :func:`create_category`'s checks, which a form runs apart to say every problem at once."""
    if parent_id is None:
        return None
    parent = session.get(Category, parent_id)
    if parent is None:
        raise ValidationFailed(f"parent category {parent_id} not found", details={"field": "parent_id"})
    if not parent.active:
        raise ValidationFailed("the parent category is inactive", details={"field": "parent_id"})
    return parent


def create_category(
    session: Session, *, name: str, parent_id: int | None = None, name_en: str | None = None, actor: Any = None
) -> Category:
    """Add a node under ``parent_id`` (None = top level); it takes the next free code there (C16, C01.19, …)."""
    name = required_name(name)
    name_en = english_name(name_en)
    parent = new_parent(session, parent_id)
    tree = _Tree.load(session)
    _check_unique(tree, parent, name)
    if len(f"{parent.path}{SEPARATOR}{name}" if parent else name) > PATH_MAX:
        raise ValidationFailed(f"category path longer than {PATH_MAX} characters", details={"field": "name"})
    node = tree.add(session, name=name, parent=parent)
    node.name_en = name_en
    session.flush()
    auditlog.record(
        session, actor=actor, area="category", target=node.code, action="create", after=_category_facts(node)
    )
    return node


def update_category(
    session: Session,
    *,
    category_id: int,
    name: str | None = None,
    active: bool | None = None,
    name_en: str | EllipsisType | None = ...,
    actor: Any = None,
) -> Category:
    """Rename a node (the paths of its subtree follow; codes never change) and/or (de)activate it; ``name_en``
    given sets its English name (None or empty clears it), left out keeps it.

    ``active=False`` retires the node and its whole subtree; ``active=True`` revives this node only, and only
    under an active parent.
    """
    node = session.get(Category, category_id)
    if node is None:
        raise NotFound(f"category {category_id} not found")
    tree = _Tree.load(session)
    parent = tree.by_id.get(node.parent_id) if node.parent_id is not None else None
    before = _category_facts(node)
    if name is not None and name.strip() != node.name:
        name = required_name(name)
        _check_unique(tree, parent, name)
        node.name = name
        # Renaming rewrites the stored path of every node below; _refresh_paths refuses a path that got too long.
        _refresh_paths(session, tree)
    if not isinstance(name_en, EllipsisType):
        node.name_en = english_name(name_en)
    if active is False:
        for child in _subtree(tree, node):
            child.active = False
    elif active is True and not node.active:
        if parent is not None and not parent.active:
            raise ValidationFailed("reactivate the parent category first", details={"field": "active"})
        node.active = True
    session.flush()
    after = _category_facts(node)
    auditlog.record(
        session, actor=actor, area="category", target=node.code, action="update", before=before, after=after
    )
    return node


def _subtree(tree: _Tree, node: Category) -> list[Category]:
    below: dict[int | None, list[Category]] = defaultdict(list)
    for other in tree.by_id.values():
        below[other.parent_id].append(other)
    found, stack = [], [node]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(below[current.id])
    return found


def list_categories(
    session: Session,
    *,
    level: int | None = None,
    parent_id: int | None = None,
    q: str | None = None,
    include_inactive: bool = False,
) -> list[Category]:
    """List categories by code, filtered by level, parent and a text (:func:`categories_query`)."""
    stmt = categories_query(level=level, parent_id=parent_id, q=q, include_inactive=include_inactive)
    return list(session.scalars(stmt))


def categories_query(
    *, level: int | None = None, parent_id: int | None = None, q: str | None = None, include_inactive: bool = False
) -> Select[Category]:
    """The query of :func:`list_categories` (by code, unique), for a caller that pages it. ``q``: the text in the
    path (so in a name) as written, or in the code or the English name whatever its case (c01.03, housing) — what an
    administrator looking for a node types; the path alone matched until December 2026, its matches are still all
    found."""
    stmt = select(Category).order_by(Category.code)
    if level is not None:
        stmt = stmt.where(Category.level == level)
    if parent_id is not None:
        stmt = stmt.where(Category.parent_id == parent_id)
    if q:
        text = q.strip()
        stmt = stmt.where(
            or_(
                Category.path.contains(text, autoescape=True),
                func.lower(Category.code).contains(text.lower(), autoescape=True),
                func.lower(Category.name_en).contains(text.lower(), autoescape=True),
            )
        )
    if not include_inactive:
        stmt = stmt.where(Category.active.is_(True))
    return stmt


# --- ``cityhub categories …`` ------------------------------------------------------------------------------

categories_app = typer.Typer(no_args_is_help=True, help="The hierarchical category taxonomy.")


def _print_report(report: TaxonomyImportReport, source: str) -> None:
    print_rejected(source, [RejectedRow(e.row, e.field, e.reason) for e in report.rejected])
    levels = ", ".join(f"level {level} {count}" for level, count in sorted(report.by_level.items()))
    typer.echo(
        f"rows {report.rows}: created {report.created}, updated {report.updated}, "
        f"unchanged {report.unchanged}, rejected {len(report.rejected)}" + (f" ({levels})" if levels else "")
    )


@categories_app.command("import")
def import_command(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV or Excel: 一级分类,二级分类,三级分类 | level1,… | code,name,parent_code; optional English "
            "names in level1_en,… or name_en."
        ),
    ],
) -> None:
    """Import (upsert) a category taxonomy; rejected rows are listed on stderr."""
    from cityhub.db import session_scope

    try:
        with session_scope() as session:
            report = import_taxonomy(session, path=file)
    except CityhubError as exc:
        raise fail_with(exc) from None
    _print_report(report, file.name)
    refuse_if_nothing_imported(file.name, report.imported, len(report.rejected))


@categories_app.command("list")
def list_command(
    level: Annotated[int | None, typer.Option("--level", help="Only this level (1 = top).")] = None,
    q: Annotated[str | None, typer.Option("--q", help="Text in the name or path, a code or an English name.")] = None,
    english: Annotated[
        bool,
        typer.Option(
            "--english",
            help="Two more columns: the category's English name (empty: none) and its path as English pages show "
            "it (part by part, a part without an English name in Chinese).",
        ),
    ] = False,
) -> None:
    """List categories: code, level, path (with --english: English name, path in English)."""
    from cityhub.db import session_scope
    from cityhub.localnames import build

    with session_scope() as session:
        nodes = list_categories(session, level=level, q=q)
        names = build(session) if english and nodes else None
        for node in nodes:
            line = f"{node.code}\t{node.level}\t{node.path}"
            if names is not None:
                line += f"\t{node.name_en or ''}\t{names.category(node.path)}"
            typer.echo(line)
    typer.echo(f"{len(nodes)} categories", err=True)


@categories_app.command("seed")
def seed_command() -> None:
    """Load the bundled default taxonomy (idempotent)."""
    from cityhub.db import session_scope

    try:
        with session_scope() as session:
            report = seed_default_taxonomy(session)
    except CityhubError as exc:
        raise fail_with(exc) from None
    _print_report(report, "the bundled taxonomy")
