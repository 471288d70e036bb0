"""分类管理: the category taxonomy (城乡建设 / 住房保障 / 保障房) kept by ``categories:manage`` roles — a child added
under a node or a new top-level category, a node renamed, given its English name, stopped or started again.

The same service calls as ``/api/v1/categories`` (``cityhub.workorders.categories``: ``create_category``,
``update_category``, each in the configuration log): a node's code is its stable identity and never changes, a new
node takes the next free code under its parent, stopping a node stops its whole subtree, and a node is started again
only under an active parent. ``/admin/categories`` is the tree with each node's code, names, state and how many
orders are filed under it, a second-level node's subcategories folded under it (some 650 nodes: the bundled taxonomy's
15 / 118 / 517), opened by a plain link, ``?open=<id>`` (repeatable, no script), as 组织机构 folds a street's
communities; ``?q=`` the nodes with that text in their path, code or English name (``categories.categories_query``,
the API's ``q``), each under the nodes above it, unfolded; ``?inactive=1`` the stopped ones too.

A node has no version column: its form carries the state it was made on (:func:`seen_of`), so a save over someone
else's newer change is refused with what was typed kept, not silently lost.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cityhub.api.deps import DbSession
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.errors import CityhubError
from cityhub.web import forms, support
from cityhub.web.forms import field_errors, saved
from cityhub.web.support import FormBody, PageError, render
from cityhub.workorders import categories
from cityhub.workorders.admin_views import CategoryCreate, CategoryUpdate
from cityhub.workorders.models import Category, Order

router = APIRouter(include_in_schema=False)

CATEGORY_FIELDS = ("name", "name_en", "parent_id", "active", "seen")


def _admin(request: Request, db: Session, form: FormBody | None = None) -> Principal:
    """Whoever the API's ``CategoryManager`` lets change the taxonomy; the refusal page for others."""
    return support.require_user(request, db, permissions.CATEGORIES_MANAGE, form=form)


def seen_of(node: Category) -> str:
    """The node's state as its edit form was made on (name, English name, path, state): a save made on another is
    stale."""
    state = "\x1f".join((node.name, node.name_en or "", node.path, "1" if node.active else "0"))
    return hashlib.sha256(state.encode()).hexdigest()[:16]


def _values(node: Category) -> dict[str, str]:
    return {
        "name": node.name,
        "name_en": node.name_en or "",
        "active": "1" if node.active else "",
        "seen": seen_of(node),
    }


def _new_payload(form: Any) -> dict[str, Any]:
    return {"name": form.get("name").strip(), "name_en": form.text("name_en"), "parent_id": form.text("parent_id")}


def _new_checks(db: Session, form: Any) -> list[Any]:
    """A new node's checks apart (``forms.every_problem``): the schema's fields, the name, the English name, the
    parent."""

    def parent() -> None:
        parent_id = forms.whole_number(form.text("parent_id") or "")
        if parent_id is not None:
            categories.new_parent(db, parent_id)

    return [
        lambda: CategoryCreate.model_validate(_new_payload(form)),
        lambda: categories.required_name(form.get("name")),
        lambda: categories.english_name(form.text("name_en")),
        parent,
    ]


# A node of this level or deeper keeps its subcategories folded under it until opened: the tree is the 15 top-level
# categories and their ~120 children, a third-level node a click away.
FOLD_LEVEL = 2


@dataclass(frozen=True)
class TreeRow:
    """A node's line in the tree: how deep it sits; for a node that folds (:data:`FOLD_LEVEL`), how many
    subcategories it has, whether they are shown and the address that opens or folds them; in a search, whether it
    is a match or a node above one, shown for context."""

    node: Category
    depth: int
    children: int = 0
    opened: bool = False
    toggle: str = ""
    match: bool = True


def list_address(opened: Collection[int] = (), *, inactive: bool = False, at: int | None = None) -> str:
    """The tree's address with the subcategories of the nodes ``opened`` shown (the stopped nodes too with
    ``inactive``), at node ``at``'s row."""
    query = urlencode([("open", node_id) for node_id in sorted(opened)] + ([("inactive", 1)] if inactive else []))
    return f"/admin/categories{'?' + query if query else ''}{f'#category-{at}' if at is not None else ''}"


def tree_rows(
    nodes: list[Category],
    opened: Collection[int] | None = None,
    *,
    inactive: bool = False,
    matched: Collection[int] = (),
) -> list[TreeRow]:
    """Every node under its parent, children by code, depth first; a node whose parent is not listed (a stopped
    parent left out) at the top. A node of :data:`FOLD_LEVEL` or deeper shows its children only when ``opened``
    holds it (None: every node open, a search's); ``matched``, if given, the nodes a search found, the others shown
    as the nodes above them."""
    listed = {n.id for n in nodes}
    children: dict[int | None, list[Category]] = defaultdict(list)
    for node in sorted(nodes, key=lambda n: n.code):
        children[node.parent_id if node.parent_id in listed else None].append(node)
    folding = frozenset(
        n.id for n in nodes if n.level >= FOLD_LEVEL and children.get(n.id) and (opened is None or n.id in opened)
    )
    rows: list[TreeRow] = []
    stack = [(node, 0) for node in reversed(children[None])]
    while stack:
        node, depth = stack.pop()
        kids = children.get(node.id, [])
        match = not matched or node.id in matched
        if node.level >= FOLD_LEVEL and kids:
            shown = node.id in folding
            toggle = "" if opened is None else list_address(folding ^ {node.id}, inactive=inactive, at=node.id)
            rows.append(TreeRow(node, depth, len(kids), shown, toggle, match))
            if not shown:
                continue
        else:
            rows.append(TreeRow(node, depth, match=match))
        stack.extend((kid, depth + 1) for kid in reversed(kids))
    return rows


def with_ancestors(db: Session, found: list[Category]) -> list[Category]:
    """A search's matches and the nodes above them (the cached taxonomy's chains), for the tree to show them in."""
    tree = categories.taxonomy(db)
    have = {n.id for n in found}
    above = {i for n in found if n.id in tree.by_id for i in tree.chain(n.id)} - have
    extra = list(db.scalars(select(Category).where(Category.id.in_(above)))) if above else []
    return found + extra


def order_counts(db: Session) -> dict[int, int]:
    """How many orders are filed under each category and its subcategories: one count per category (the index of
    ``category_id``), added up its chain in the cached taxonomy (``categories.taxonomy``)."""
    stmt = select(Order.category_id, func.count()).where(Order.category_id.is_not(None)).group_by(Order.category_id)
    tree = categories.taxonomy(db)
    totals: dict[int, int] = defaultdict(int)
    for category_id, n in db.execute(stmt).all():
        if category_id is not None and category_id in tree.by_id:
            for above in tree.chain(category_id):
                totals[above] += n
    return dict(totals)


def _list_page(
    request: Request,
    db: Session,
    principal: Principal,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    params = request.query_params
    q = params.get("q", "").strip()[:100]
    inactive = params.get("inactive") == "1"
    nodes = categories.list_categories(db, q=q or None, include_inactive=inactive)
    if q:
        rows = tree_rows(with_ancestors(db, nodes), None, matched={n.id for n in nodes})
    else:
        opened = {n for n in map(forms.whole_number, params.getlist("open")) if n is not None}
        rows = tree_rows(nodes, opened, inactive=inactive)
    return render(
        request,
        "categories.html",
        principal=principal,
        status_code=status_code,
        q=q,
        inactive=inactive,
        rows=rows,
        matched=len(nodes),
        orders=order_counts(db),
        values=values or {},
        errors=errors or {},
    )


def _category(db: Session, category_id: int) -> Category:
    """The category a page's address names; the 404 page when there is none."""
    node = db.get(Category, category_id)
    if node is None:
        raise PageError(404, "err.page_not_found")
    return node


def _category_page(
    request: Request,
    db: Session,
    principal: Principal,
    node: Category,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    child_values: dict[str, str] | None = None,
    child_errors: dict[str, str] | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    above: list[Category] = []
    parent = db.get(Category, node.parent_id) if node.parent_id is not None else None
    while parent is not None and len(above) <= node.level:
        above.append(parent)
        parent = db.get(Category, parent.parent_id) if parent.parent_id is not None else None
    return render(
        request,
        "category.html",
        principal=principal,
        status_code=status_code,
        node=node,
        above=above[::-1],
        back=list_address([a.id for a in above if a.level >= FOLD_LEVEL], inactive=not node.active, at=node.id),
        children=list(db.scalars(select(Category).where(Category.parent_id == node.id).order_by(Category.code))),
        orders=order_counts(db),
        values=values or _values(node),
        errors=errors or {},
        child_values=child_values or {},
        child_errors=child_errors or {},
        error=error,
    )


@router.get("/admin/categories", response_class=HTMLResponse)
def categories_page(request: Request, db: DbSession) -> Response:
    """The taxonomy as a tree with each node's code, names, state and orders, a second-level node's subcategories
    folded (``?open=<id>`` opens them); ``?q=`` the nodes with that text in their path, code or English name under
    the nodes above them, ``?inactive=1`` the stopped ones too; a form to add a top-level category."""
    return _list_page(request, db, _admin(request, db))


@router.post("/admin/categories", response_class=HTMLResponse)
def create_category(request: Request, db: DbSession, form: FormBody) -> Response:
    """A new node under ``parent_id`` (a category's page) or at the top (the list); refused, the page it came from
    again with every problem and what was typed."""
    principal = _admin(request, db, form)
    t = support.translator(request)
    node, errors = saved(
        db,
        t,
        lambda: categories.create_category(
            db, **CategoryCreate.model_validate(_new_payload(form)).model_dump(), actor=principal.actor
        ),
        _new_checks(db, form),
    )
    if node is None:
        values = form.values(CATEGORY_FIELDS)
        parent_id = forms.whole_number(form.text("parent_id") or "")
        parent = db.get(Category, parent_id) if parent_id is not None else None
        if parent is not None:
            return _category_page(
                request, db, principal, parent, child_values=values, child_errors=errors, status_code=422
            )
        return _list_page(request, db, principal, values=values, errors=errors, status_code=422)
    return support.redirect(f"/admin/categories/{node.id}", flash=("categories.created", {"name": node.path}))


@router.get("/admin/categories/{category_id:int}", response_class=HTMLResponse)
def category_page(request: Request, db: DbSession, category_id: int) -> Response:
    principal = _admin(request, db)
    return _category_page(request, db, principal, _category(db, category_id))


@router.post("/admin/categories/{category_id:int}", response_class=HTMLResponse)
def update_category(request: Request, db: DbSession, category_id: int, form: FormBody) -> Response:
    """Rename a node, set its English name, stop or start it; a form made on an older state of the node is refused
    (409) with what was typed kept, now on the current state: saving again overwrites knowingly."""
    principal = _admin(request, db, form)
    t = support.translator(request)
    node = _category(db, category_id)
    if form.get("seen") and form.get("seen") != seen_of(node):
        values = {**form.values(CATEGORY_FIELDS), "seen": seen_of(node)}
        return _category_page(request, db, principal, node, values=values, error=t("categories.stale"), status_code=409)
    name, name_en = form.get("name").strip(), form.text("name_en")
    payload = {"name": name, "name_en": name_en, "active": form.get("active") == "1"}
    try:
        body = CategoryUpdate.model_validate(payload)
        categories.update_category(
            db, category_id=category_id, name=body.name, active=body.active, name_en=body.name_en, actor=principal.actor
        )
        db.commit()
    except (ValidationError, CityhubError) as exc:
        db.rollback()
        node = _category(db, category_id)
        checks = [
            lambda: CategoryUpdate.model_validate(payload),
            lambda: categories.required_name(name),
            lambda: categories.english_name(name_en),
        ]
        errors = forms.every_problem(field_errors(t, exc), checks, partial(field_errors, t))
        return _category_page(
            request, db, principal, node, values=form.values(CATEGORY_FIELDS), errors=errors, status_code=422
        )
    return support.redirect(f"/admin/categories/{category_id}", flash=("categories.updated", {"name": node.path}))
