"""HTTP routes of the order hub's reference tables: categories, time-limit rules (SLA) and the working calendar.

Reads are open to every authenticated caller (a citizen's app shows the taxonomy, the time limits and the
holidays too); writes need ``categories:manage``, ``sla:manage`` or ``calendar:manage`` (administrators).
Editing a rule or a calendar day affects orders dispatched afterwards; running clocks keep their deadlines.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

import chinese_calendar
from chinese_calendar.constants import Holiday
from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.api.deps import DbSession, get_principal, require
from cityhub.auth import permissions
from cityhub.errors import Conflict, NotFound, ValidationFailed
from cityhub.org.views import MAX_ID, IdPath, IdQuery, SearchText, StorableText
from cityhub.workorders import calendar, categories, sla
from cityhub.workorders.models import CalendarDay, Category, SlaRule, Urgency

# The working-time tables are built for these years only (see calendar.WorkCalendar).
MIN_YEAR, MAX_YEAR = 1901, 9998

# --- schemas -----------------------------------------------------------------------------------------------


class CategoryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    level: int
    parent_id: int | None
    path: str
    active: bool


class CategoryNode(CategoryOut):
    children: list[CategoryNode] = Field(default_factory=list)


class CategoryCreate(StorableText):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=categories.NAME_MAX, description="no '/' or '>' in a name")
    parent_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="none = a new top-level category")


class CategoryUpdate(StorableText):
    """Rename (the paths of the whole subtree follow) or (de)activate; codes never change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=categories.NAME_MAX)
    active: bool | None = Field(
        default=None, description="false retires the node and its subtree; true revives this node only"
    )


class SlaRuleOut(BaseModel):
    id: int
    category_id: int | None
    category_path: str | None
    urgency: Urgency | None
    accept_hours: float
    finish_days: float
    warning_share: float | None


class SlaRulePut(BaseModel):
    """One rule per category (none = the default level) × urgency (none = any urgency); PUT replaces it."""

    model_config = ConfigDict(extra="forbid")

    category_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    urgency: Urgency | None = None
    # Upper bounds keep deadlines inside the calendar's years, whatever the dispatch date.
    accept_hours: float = Field(gt=0, le=720, allow_inf_nan=False, description="accept within N working hours")
    finish_days: float = Field(gt=0, le=365, allow_inf_nan=False, description="finish within N working days")
    warning_share: float | None = Field(
        default=None, gt=0, lt=1, allow_inf_nan=False, description="warn after this share; none = global setting"
    )


class CalendarDayOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    day: date
    is_workday: bool
    name: str | None


class CalendarDayPut(StorableText):
    model_config = ConfigDict(extra="forbid")

    is_workday: bool = Field(description="true = make-up workday (调休上班), false = holiday")
    name: str | None = Field(default=None, max_length=60, description="e.g. 国庆节")


class CalendarCheck(BaseModel):
    day: date
    is_workday: bool
    source: str = Field(
        description="override (an administrator's entry), official (the State Council's "
        "calendar) or weekday (a year the built-in calendar does not know: Monday-Friday)"
    )
    name: str | None = Field(description="the holiday or make-up day, when known")


# --- routes ------------------------------------------------------------------------------------------------

_authenticated = [Depends(get_principal)]
categories_router = APIRouter(prefix="/categories", tags=["categories"], dependencies=_authenticated)
sla_router = APIRouter(prefix="/sla", tags=["time limits"], dependencies=_authenticated)
calendar_router = APIRouter(prefix="/calendar", tags=["calendar"], dependencies=_authenticated)

CategoryManager = [Depends(require(permissions.CATEGORIES_MANAGE))]
SlaManager = [Depends(require(permissions.SLA_MANAGE))]
CalendarManager = [Depends(require(permissions.CALENDAR_MANAGE))]
DayPath = Annotated[date, Path(description="YYYY-MM-DD")]


def _category(db: Session, category_id: int) -> Category:
    node = db.get(Category, category_id)
    if node is None:
        raise NotFound(f"category {category_id} not found")
    return node


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise ValidationFailed("a category needs a name", details={"field": "name"})
    if categories._PATH_SEPARATORS.search(name):
        raise ValidationFailed(f"name {name!r} contains a path separator", details={"field": "name"})
    return name


def _check_path(path: str) -> None:
    if len(path) > categories.PATH_MAX:
        raise ValidationFailed(f"category path longer than {categories.PATH_MAX} characters", details={"field": "name"})


@categories_router.get("", response_model=list[CategoryOut])
def list_categories(
    db: DbSession,
    level: Annotated[int | None, Query(ge=1, le=20)] = None,
    parent_id: IdQuery = None,
    q: SearchText = None,
    include_inactive: bool = False,
) -> list[CategoryOut]:
    """Categories by code (flat), filtered by level, parent and a text in the path."""
    nodes = categories.list_categories(
        db, level=level, parent_id=parent_id, q=q or None, include_inactive=include_inactive
    )
    return [CategoryOut.model_validate(n) for n in nodes]


@categories_router.get("/tree", response_model=list[CategoryNode])
def category_tree(db: DbSession, include_inactive: bool = False) -> list[CategoryNode]:
    """The whole taxonomy as nested nodes (top level first, children by code)."""
    nodes = categories.list_categories(db, include_inactive=include_inactive)
    made = {n.id: CategoryNode.model_validate(n) for n in nodes}
    roots: list[CategoryNode] = []
    for node in nodes:
        parent = made.get(node.parent_id) if node.parent_id is not None else None
        if parent is not None:
            parent.children.append(made[node.id])
        elif node.parent_id is None or include_inactive:
            roots.append(made[node.id])
    return roots


@categories_router.get("/{category_id}", response_model=CategoryOut)
def get_category(category_id: IdPath, db: DbSession) -> CategoryOut:
    return CategoryOut.model_validate(_category(db, category_id))


@categories_router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=CategoryOut, dependencies=CategoryManager
)
def create_category(body: CategoryCreate, db: DbSession) -> CategoryOut:
    """Add a node; it takes the next free code under its parent (C16, C01.19, C01.03.008)."""
    name = _check_name(body.name)
    parent = None
    if body.parent_id is not None:
        parent = db.get(Category, body.parent_id)
        if parent is None:
            raise ValidationFailed(f"parent category {body.parent_id} not found", details={"field": "parent_id"})
        if not parent.active:
            raise ValidationFailed("the parent category is inactive", details={"field": "parent_id"})
    tree = categories._Tree.load(db)
    if (parent.code if parent else None, name) in tree.by_key:
        raise Conflict(f"category {name!r} already exists under the same parent")
    _check_path(f"{parent.path}{categories.SEPARATOR}{name}" if parent else name)
    node = tree.add(db, name=name, parent=parent)
    db.flush()
    return CategoryOut.model_validate(node)


@categories_router.patch("/{category_id}", response_model=CategoryOut, dependencies=CategoryManager)
def update_category(category_id: IdPath, body: CategoryUpdate, db: DbSession) -> CategoryOut:
    """Rename and/or (de)activate a node."""
    node = _category(db, category_id)
    changes = body.model_dump(exclude_unset=True)
    if (changes.get("name") is None and "name" in changes) or (changes.get("active") is None and "active" in changes):
        raise ValidationFailed("name and active cannot be empty")
    tree = categories._Tree.load(db)
    if "name" in changes and changes["name"].strip() != node.name:
        name = _check_name(changes["name"])
        parent_code = tree.by_id[node.parent_id].code if node.parent_id is not None else None
        if (parent_code, name) in tree.by_key:
            raise Conflict(f"category {name!r} already exists under the same parent")
        node.name = name
        # Renaming rewrites the stored path of every node below; _refresh_paths refuses a path that got too long.
        categories._refresh_paths(db, tree)
    if changes.get("active") is False:
        for child in _subtree(tree, node):
            child.active = False
    elif changes.get("active") is True and not node.active:
        parent = tree.by_id.get(node.parent_id) if node.parent_id is not None else None
        if parent is not None and not parent.active:
            raise ValidationFailed("reactivate the parent category first", details={"field": "active"})
        node.active = True
    db.flush()
    return CategoryOut.model_validate(node)


def _subtree(tree: Any, node: Category) -> list[Category]:
    below: dict[int | None, list[Category]] = {}
    for other in tree.by_id.values():
        below.setdefault(other.parent_id, []).append(other)
    found, stack = [], [node]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(below.get(current.id, []))
    return found


def _rule_out(rule: SlaRule, paths: dict[int, str]) -> SlaRuleOut:
    return SlaRuleOut(
        id=rule.id,
        category_id=rule.category_id,
        category_path=paths.get(rule.category_id) if rule.category_id is not None else None,
        urgency=rule.urgency,
        accept_hours=rule.accept_hours,
        finish_days=rule.finish_days,
        warning_share=rule.warning_share,
    )


def _category_paths(db: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = db.execute(select(Category.id, Category.path).where(Category.id.in_(sorted(ids))))
    return {category_id: path for category_id, path in rows}


@sla_router.get("/rules", response_model=list[SlaRuleOut])
def list_rules(db: DbSession) -> list[SlaRuleOut]:
    """The time-limit table: default rules first, then per category; within each, any-urgency first."""
    rules = list(db.scalars(select(SlaRule)))
    paths = _category_paths(db, {r.category_id for r in rules if r.category_id is not None})
    order: dict[Urgency | None, int] = {None: 0, **{u: i + 1 for i, u in enumerate(Urgency)}}
    rules.sort(key=lambda r: (r.category_id is not None, paths.get(r.category_id or 0, ""), order[r.urgency], r.id))
    return [_rule_out(r, paths) for r in rules]


@sla_router.put("/rules", response_model=SlaRuleOut, dependencies=SlaManager)
def put_rule(body: SlaRulePut, db: DbSession) -> SlaRuleOut:
    """Create or replace the rule of one category × urgency."""
    if body.category_id is not None and db.get(Category, body.category_id) is None:
        raise ValidationFailed(f"category {body.category_id} not found", details={"field": "category_id"})
    rule = sla.set_rule(
        db,
        category_id=body.category_id,
        urgency=body.urgency.value if body.urgency else None,
        accept_hours=body.accept_hours,
        finish_days=body.finish_days,
        warning_share=body.warning_share,
    )
    paths = _category_paths(db, {rule.category_id} if rule.category_id is not None else set())
    return _rule_out(rule, paths)


@sla_router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=SlaManager)
def delete_rule(rule_id: IdPath, db: DbSession) -> Response:
    """Remove a rule; orders then fall back to the parent category's, the default level's or built-in terms."""
    rule = db.get(SlaRule, rule_id)
    if rule is None:
        raise NotFound(f"time-limit rule {rule_id} not found")
    db.delete(rule)
    db.flush()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _check_year(day: date) -> None:
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise ValidationFailed(f"the calendar covers years {MIN_YEAR}-{MAX_YEAR}", details={"field": "day"})


@calendar_router.get("/days", response_model=list[CalendarDayOut])
def list_days(
    db: DbSession, year: Annotated[int | None, Query(ge=MIN_YEAR, le=MAX_YEAR)] = None
) -> list[CalendarDayOut]:
    """The administrators' overrides (holidays and make-up workdays) in date order, optionally of one year."""
    return [CalendarDayOut.model_validate(d) for d in calendar.list_days(db, year=year)]


@calendar_router.put("/days/{day}", response_model=CalendarDayOut, dependencies=CalendarManager)
def put_day(day: DayPath, body: CalendarDayPut, db: DbSession) -> CalendarDayOut:
    """Create or replace the override of one day."""
    _check_year(day)
    name = body.name.strip() if body.name and body.name.strip() else None
    return CalendarDayOut.model_validate(calendar.set_day(db, day=day, is_workday=body.is_workday, name=name))


@calendar_router.delete("/days/{day}", status_code=status.HTTP_204_NO_CONTENT, dependencies=CalendarManager)
def delete_day(day: DayPath, db: DbSession) -> Response:
    """Remove the override: the day goes back to the official calendar."""
    if not calendar.delete_day(db, day=day):
        raise NotFound(f"no calendar override on {day.isoformat()}")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@calendar_router.get("/check/{day}", response_model=CalendarCheck)
def check_day(day: DayPath, db: DbSession) -> CalendarCheck:
    """Whether ``day`` is a working day, and why (override, official calendar, or plain weekday)."""
    override = db.get(CalendarDay, day)
    if override is not None:
        return CalendarCheck(day=day, is_workday=override.is_workday, source="override", name=override.name)
    try:
        is_workday = bool(chinese_calendar.is_workday(day))
        _, holiday = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return CalendarCheck(day=day, is_workday=day.weekday() < 5, source="weekday", name=None)
    return CalendarCheck(day=day, is_workday=is_workday, source="official", name=_holiday_name(holiday))


def _holiday_name(english: str | None) -> str | None:
    """The Chinese name of a holiday the package names in English (National Day → 国庆节)."""
    if english is None:
        return None
    try:
        return str(Holiday(english).chinese)
    except ValueError:
        return english
