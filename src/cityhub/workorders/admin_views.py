"""HTTP routes of the order hub's reference tables: categories, time-limit rules (SLA) and the working calendar.

Reads are open to every authenticated caller (a citizen's app shows the taxonomy, the time limits and the
holidays too); writes need ``categories:manage``, ``sla:manage`` or ``calendar:manage`` (administrators).
Editing a rule or a calendar day also moves the deadlines of running clocks it concerns (audited per order, see
:mod:`cityhub.workorders.recompute`; a PUT answers how many in ``X-Cityhub-Recomputed``); ``?recompute=false``
limits an edit to clocks started afterwards.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from cityhub.api.deps import CurrentActor, DbSession, ListPaging, get_principal, require
from cityhub.auth import permissions
from cityhub.errors import NotFound, ValidationFailed, refuse_nulls
from cityhub.org.views import MAX_ID, IdPath, IdQuery, SearchText
from cityhub.workorders import calendar, categories, recompute, sla
from cityhub.workorders.models import Category, SlaRule, Urgency
from cityhub.workorders.service import Actor

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
    name_en: str | None = Field(default=None, description="the English name English pages show; none: the name")


class CategoryNode(CategoryOut):
    children: list[CategoryNode] = Field(default_factory=list)


class CategoryCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=categories.NAME_MAX, description="no '/' or '>' in a name")
    parent_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="none = a new top-level category")
    name_en: str | None = Field(
        default=None, max_length=categories.NAME_EN_MAX, description="English name, shown by English pages"
    )


class CategoryUpdate(BaseModel):
    """Rename (the paths of the whole subtree follow) or (de)activate; codes never change."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=categories.NAME_MAX)
    active: bool | None = Field(
        default=None, description="false retires the node and its subtree; true revives this node only"
    )
    name_en: str | None = Field(
        default=None, max_length=categories.NAME_EN_MAX, description="English name; null or empty clears it"
    )


class SlaRuleOut(BaseModel):
    id: int
    category_id: int | None
    category_path: str | None
    urgency: Urgency | None
    accept_hours: float
    finish_days: float
    warning_share: float | None
    round_the_clock: bool


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
    round_the_clock: bool = Field(
        default=False,
        strict=True,
        description="count the hours and days around the clock, every day (全天候: emergencies), not in working time",
    )


class CalendarDayOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    day: date
    is_workday: bool
    name: str | None


class CalendarDayPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    is_workday: bool = Field(description="true = make-up workday (调休上班), false = holiday")
    name: str | None = Field(default=None, max_length=60, description="e.g. 国庆节")


class CalendarImport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        min_length=1,
        max_length=20_000,
        description="the State Council's notice as published (国务院办公厅关于20XX年部分节假日安排的通知), or "
        "date,kind,name rows (kind holiday | workday)",
    )
    year: int | None = Field(
        default=None, ge=MIN_YEAR, le=MAX_YEAR, description="the notice's year when its text does not name it"
    )


class CalendarRefused(BaseModel):
    row: int = Field(description="the line of the text")
    problem: str = Field(
        description="fields, date, kind, repeated, notice_year, notice_total, notice_date or notice_dates"
    )
    value: str
    message: str


class CalendarImported(BaseModel):
    entered: int
    holidays: int
    workdays: int
    recomputed_orders: int = Field(description="running orders whose deadlines moved")
    refused: list[CalendarRefused]


class CalendarCheck(BaseModel):
    day: date
    is_workday: bool
    source: str = Field(
        description="override (an administrator's entry), official (the State Council's "
        "calendar), statutory (a holiday the law gives, in a year whose arrangement is not built in) or weekday "
        "(otherwise, in such a year: Monday-Friday)"
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
# How many running orders' deadlines an edit moved (0 with ?recompute=false); the body stays the plain resource.
RECOMPUTED_HEADER = "X-Cityhub-Recomputed"
Recompute = Annotated[
    bool,
    Query(
        alias="recompute",
        description="move the deadlines of running clocks too; false = only clocks started afterwards",
    ),
]


def _category(db: Session, category_id: int) -> Category:
    node = db.get(Category, category_id)
    if node is None:
        raise NotFound(f"category {category_id} not found")
    return node


@categories_router.get("", response_model=list[CategoryOut])
def list_categories(
    db: DbSession,
    page: ListPaging,
    level: Annotated[int | None, Query(ge=1, le=20)] = None,
    parent_id: IdQuery = None,
    q: SearchText = None,
    include_inactive: bool = False,
) -> list[CategoryOut]:
    """Categories by code (flat), filtered by level, parent and a text in the path; optionally paged."""
    stmt = categories.categories_query(level=level, parent_id=parent_id, q=q or None, include_inactive=include_inactive)
    return [CategoryOut.model_validate(n) for n in page.scalars(db, stmt)]


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
def create_category(body: CategoryCreate, db: DbSession, actor: CurrentActor) -> CategoryOut:
    """Add a node; it takes the next free code under its parent (C16, C01.19, C01.03.008)."""
    node = categories.create_category(db, name=body.name, parent_id=body.parent_id, name_en=body.name_en, actor=actor)
    return CategoryOut.model_validate(node)


@categories_router.patch("/{category_id}", response_model=CategoryOut, dependencies=CategoryManager)
def update_category(category_id: IdPath, body: CategoryUpdate, db: DbSession, actor: CurrentActor) -> CategoryOut:
    """Rename and/or (de)activate a node."""
    given = body.model_dump(exclude_unset=True)
    refuse_nulls(given, ("name", "active"))
    node = categories.update_category(
        db,
        category_id=category_id,
        name=body.name,
        active=body.active,
        name_en=given.get("name_en", ...),
        actor=actor,
    )
    return CategoryOut.model_validate(node)


def _rule_out(rule: SlaRule, paths: dict[int, str]) -> SlaRuleOut:
    return SlaRuleOut(
        id=rule.id,
        category_id=rule.category_id,
        category_path=paths.get(rule.category_id) if rule.category_id is not None else None,
        urgency=rule.urgency,
        accept_hours=rule.accept_hours,
        finish_days=rule.finish_days,
        warning_share=rule.warning_share,
        round_the_clock=rule.round_the_clock,
    )


def _category_paths(db: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = db.execute(select(Category.id, Category.path).where(Category.id.in_(sorted(ids))))
    return {category_id: path for category_id, path in rows}


def rule_table(db: Session) -> list[SlaRuleOut]:
    """The time-limit table: default rules first, then per category; within each, any-urgency first."""
    rules = list(db.scalars(select(SlaRule)))
    paths = _category_paths(db, {r.category_id for r in rules if r.category_id is not None})
    order: dict[Urgency | None, int] = {None: 0, **{u: i + 1 for i, u in enumerate(Urgency)}}
    rules.sort(key=lambda r: (r.category_id is not None, paths.get(r.category_id or 0, ""), order[r.urgency], r.id))
    return [_rule_out(r, paths) for r in rules]


def save_rule(
    db: Session, body: SlaRulePut, *, actor: Actor, recompute_running: bool = True
) -> tuple[SlaRuleOut, recompute.Recomputed]:
    """Create or replace the rule of one category × urgency; running clocks under it follow (unless told not to)."""
    if body.category_id is not None and db.get(Category, body.category_id) is None:
        raise ValidationFailed(f"category {body.category_id} not found", details={"field": "category_id"})
    spec = sla.RuleSpec(**body.model_dump(exclude={"urgency"}), urgency=body.urgency.value if body.urgency else None)
    rule, done = recompute.set_sla_rule(db, spec=spec, actor=actor, recompute=recompute_running)
    paths = _category_paths(db, {rule.category_id} if rule.category_id is not None else set())
    return _rule_out(rule, paths), done


@sla_router.get("/rules", response_model=list[SlaRuleOut])
def list_rules(db: DbSession, page: ListPaging) -> list[SlaRuleOut]:
    """The time-limit table: default rules first, then per category; within each, any-urgency first; optionally
    paged."""
    # Ordered in Python, by the categories' paths as code points: the same on every database, whatever its collation.
    return page.of(rule_table(db))


@sla_router.put("/rules", response_model=SlaRuleOut, dependencies=SlaManager)
def put_rule(
    body: SlaRulePut, db: DbSession, actor: CurrentActor, response: Response, recompute_running: Recompute = True
) -> SlaRuleOut:
    """Create or replace the rule of one category × urgency; running clocks under it follow."""
    rule, done = save_rule(db, body, actor=actor, recompute_running=recompute_running)
    response.headers[RECOMPUTED_HEADER] = str(done.orders)
    return rule


@sla_router.delete("/rules/{rule_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=SlaManager)
def delete_rule(rule_id: IdPath, db: DbSession, actor: CurrentActor, recompute_running: Recompute = True) -> Response:
    """Remove a rule; orders then fall back to the parent category's, the default level's or built-in terms."""
    recompute.delete_sla_rule(db, rule_id=rule_id, actor=actor, recompute=recompute_running)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _check_year(day: date) -> None:
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise ValidationFailed(f"the calendar covers years {MIN_YEAR}-{MAX_YEAR}", details={"field": "day"})


@calendar_router.get("/days", response_model=list[CalendarDayOut])
def list_days(
    db: DbSession, page: ListPaging, year: Annotated[int | None, Query(ge=MIN_YEAR, le=MAX_YEAR)] = None
) -> list[CalendarDayOut]:
    """The administrators' overrides (holidays and make-up workdays) in date order, optionally of one year; optionally
    paged."""
    return [CalendarDayOut.model_validate(d) for d in page.scalars(db, calendar.days_query(year=year))]


@calendar_router.put("/days/{day}", response_model=CalendarDayOut, dependencies=CalendarManager)
def put_day(
    day: DayPath,
    body: CalendarDayPut,
    db: DbSession,
    actor: CurrentActor,
    response: Response,
    recompute_running: Recompute = True,
) -> CalendarDayOut:
    """Create or replace the override of one day; running clocks whose window reaches it follow."""
    _check_year(day)
    name = body.name.strip() if body.name and body.name.strip() else None
    row, done = recompute.set_calendar_day(
        db, day=day, is_workday=body.is_workday, name=name, actor=actor, recompute=recompute_running
    )
    response.headers[RECOMPUTED_HEADER] = str(done.orders)
    return CalendarDayOut.model_validate(row)


@calendar_router.delete("/days/{day}", status_code=status.HTTP_204_NO_CONTENT, dependencies=CalendarManager)
def delete_day(day: DayPath, db: DbSession, actor: CurrentActor, recompute_running: Recompute = True) -> Response:
    """Remove the override: the day goes back to the official calendar (running clocks follow)."""
    recompute.delete_calendar_day(db, day=day, actor=actor, recompute=recompute_running)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@calendar_router.post("/import", response_model=CalendarImported, dependencies=CalendarManager)
def import_days(
    body: CalendarImport, db: DbSession, actor: CurrentActor, recompute_running: Recompute = True
) -> CalendarImported:
    """Enter a year's arrangement at once: the State Council's notice as published, or ``date,kind,name`` rows (as
    ``cityhub calendar import``). Every good line is entered and every refused one listed; running clocks follow once
    for the whole text."""
    try:
        done = recompute.import_calendar_text(
            db, text=body.text, year=body.year, actor=actor, recompute=recompute_running
        )
    except ValidationFailed as exc:  # no day in it
        raise ValidationFailed(f"text: {exc.message}", details=exc.details) from None
    return CalendarImported(
        entered=len(done.entries),
        holidays=done.holidays,
        workdays=len(done.entries) - done.holidays,
        recomputed_orders=done.recomputed.orders,
        refused=[CalendarRefused(row=e.row, problem=e.problem, value=e.value, message=str(e)) for e in done.errors],
    )


@calendar_router.get("/check/{day}", response_model=CalendarCheck)
def check_day(day: DayPath, db: DbSession) -> CalendarCheck:
    """Whether ``day`` is a working day, and why (override, official calendar, the law's holidays, or plain
    weekday)."""
    is_workday, name, source = calendar.day_status(db, day)
    return CalendarCheck(day=day, is_workday=is_workday, source=source, name=name)
