"""工作日历: the working calendar of a year — the official holidays the product knows, the administrators' entries
(holidays and make-up workdays), one day at a time or a whole year pasted as ``date,kind,name`` rows.

The same service calls as ``/api/v1/calendar/days`` and ``cityhub calendar set|import|delete``
(``cityhub.workorders.recompute``): every edit moves the running deadlines it touches, audited per order, and says
how many. Reading needs ``calendar:manage`` too: the page is an administrator's tool.
"""

from __future__ import annotations

from collections import Counter
from datetime import date

import chinese_calendar
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from cityhub.api.deps import DbSession
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.config import get_settings
from cityhub.db import utcnow
from cityhub.errors import NotFound, ValidationFailed
from cityhub.web import forms, support
from cityhub.web.i18n import Translator
from cityhub.web.support import FormBody, PageError, render
from cityhub.workorders import calendar as workcal
from cityhub.workorders import recompute
from cityhub.workorders.admin_views import MAX_YEAR, MIN_YEAR

router = APIRouter(include_in_schema=False)


def _admin(request: Request, db: Session, form: FormBody | None = None) -> Principal:
    return support.require_user(request, db, permissions.CALENDAR_MANAGE, form=form)


_IN_LIEU = "（补假）"  # how the holidays package marks a day off in lieu of a holiday falling on a weekend


def _holiday_name(t: Translator, name: str) -> str:
    """A built-in calendar's Chinese name of a holiday (国庆节, 春节（补假）, 中秋节; 国庆节) in the reader's language
    (``holiday.*``): the product's own words, as an administrator's name of a day entered is not. A name the
    catalogue does not know is shown as it is."""
    parts = []
    for part in name.split("; "):
        base = part.removesuffix(_IN_LIEU)
        named = t.label("holiday", base)
        parts.append(t("holiday.in_lieu", name=named) if base != part else named)
    return "; ".join(parts)


def _official_holidays(t: Translator, year: int) -> list[tuple[date, str]] | None:
    """The built-in official holidays of ``year`` that fall on weekdays, with their names; None when the built-in
    calendar does not know the year."""
    try:
        chinese_calendar.is_workday(date(year, 1, 1))
    except NotImplementedError:
        return None
    days = chinese_calendar.get_holidays(date(year, 1, 1), date(year, 12, 31))
    return [(day, _holiday_name(t, workcal.builtin_day(day)[1] or "")) for day in days if day.weekday() < 5]


def _statutory_holidays(t: Translator, year: int) -> list[tuple[date, str]]:
    """The holidays the law gives in ``year`` (computed: what deadlines skip in a year not built in), in order."""
    return [(day, _holiday_name(t, name)) for day, name in sorted(workcal.statutory_holidays(year).items())]


def _year_of(request: Request) -> int:
    today = utcnow().astimezone(get_settings().tz).date()
    year = forms.whole_number(request.query_params.get("year")) or today.year
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise PageError(404, "err.page_not_found")
    return year


def _page(
    request: Request,
    db: Session,
    principal: Principal,
    year: int,
    *,
    errors: list[workcal.CalendarRowError] | None = None,
    field_errors: dict[str, str] | None = None,
    pasted: str = "",
    typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    """The calendar page of ``year``; ``typed``: what was typed into the form entering one day."""
    entries = workcal.list_days(db, year=year)
    t = support.translator(request)
    official = _official_holidays(t, year)
    statutory = _statutory_holidays(t, year) if official is None else []
    weekday_holidays = sum(1 for d in entries if not d.is_workday and d.day.weekday() < 5)
    return render(
        request,
        "calendar.html",
        principal=principal,
        status_code=status_code,
        year=year,
        entries=entries,
        official=official,
        statutory=statutory,
        statutory_weekdays=sum(1 for day, _ in statutory if day.weekday() < 5),
        weekday_holidays=weekday_holidays,
        enough=workcal.MIN_WEEKDAY_HOLIDAYS,
        row_errors=errors or [],
        errors=field_errors or {},
        pasted=pasted,
        typed=typed or {},
    )


@router.get("/admin/calendar", response_class=HTMLResponse)
def calendar_page(request: Request, db: DbSession) -> Response:
    """A year's official holidays and the administrators' entries."""
    return _page(request, db, _admin(request, db), _year_of(request))


@router.post("/admin/calendar/days", response_class=HTMLResponse)
def set_day(request: Request, db: DbSession, form: FormBody) -> Response:
    """Enter one day (a holiday or a make-up workday); running deadlines follow."""
    principal = _admin(request, db, form)
    t = support.translator(request)
    typed = form.values(("day", "kind", "name"))

    def refused(year: int, field: str, message: str) -> Response:  # what was typed stays in the form
        return _page(request, db, principal, year, field_errors={field: message}, typed=typed, status_code=422)

    try:
        day = date.fromisoformat(form.get("day").strip())
    except ValueError:
        return refused(_year_of(request), "day", t("err.date"))
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        return refused(day.year, "day", t("err.date"))
    try:
        _, done = recompute.set_calendar_day(
            db, day=day, is_workday=form.get("kind") == "workday", name=form.text("name"), actor=principal.actor
        )
    except ValidationFailed as exc:
        db.rollback()
        return refused(day.year, "name", forms.field_message(t, exc.message))
    db.commit()
    flash = ("calendar.saved", {"day": day.isoformat(), "orders": done.orders})
    return support.redirect(f"/admin/calendar?year={day.year}", flash=flash)


@router.post("/admin/calendar/import", response_class=HTMLResponse)
def import_days(request: Request, db: DbSession, form: FormBody) -> Response:
    """Enter many days pasted as ``date,kind,name`` rows or as the State Council's notice itself; the good rows (or
    items) are entered, every bad one is listed."""
    principal = _admin(request, db, form)
    pasted = form.get("rows")
    try:
        done = recompute.import_calendar_text(db, text=pasted, year=_year_of(request), actor=principal.actor)
    except ValidationFailed:  # no day in it: said beside the box, nothing entered
        db.rollback()
        no_days = {"rows": support.translator(request)("calendar.no_days")}
        return _page(request, db, principal, _year_of(request), field_errors=no_days, pasted=pasted, status_code=422)
    db.commit()
    # The page of the year most entries fall in (a notice for 2019 starts with 2018-12-29).
    entries = done.entries
    year = Counter(e.day.year for e in entries).most_common(1)[0][0] if entries else _year_of(request)
    if done.errors:
        # The refused rows stay in the box to be corrected; the entered ones are in the list already.
        return _page(request, db, principal, year, errors=done.errors, pasted=pasted, status_code=422)
    params = {"days": len(entries), "orders": done.recomputed.orders}
    return support.redirect(f"/admin/calendar?year={year}", flash=("calendar.imported", params))


@router.post("/admin/calendar/days/{day}/delete", response_class=HTMLResponse)
def delete_day(request: Request, db: DbSession, day: str, form: FormBody) -> Response:
    """Remove an entry: the built-in calendar (or the plain weekday rule) applies again."""
    principal = _admin(request, db, form)
    try:
        when = date.fromisoformat(day)
        done = recompute.delete_calendar_day(db, day=when, actor=principal.actor)
    except (ValueError, NotFound):
        raise PageError(404, "err.page_not_found") from None
    db.commit()
    flash = ("calendar.deleted", {"day": when.isoformat(), "orders": done.orders})
    return support.redirect(f"/admin/calendar?year={when.year}", flash=flash)
