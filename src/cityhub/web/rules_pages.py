"""派单规则: the routing rules and automatic-dispatch thresholds, read by dispatchers, edited by administrators.

The same service calls as ``/api/v1/dispatch/rules`` and ``/thresholds`` (``cityhub.dispatch.service``), the same
permissions: reading needs the dispatch permission, writing ``units:manage``. A refused form is shown again with what
was typed and the errors at their fields.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from cityhub.api.deps import DbSession
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.auth.scope import scope_of
from cityhub.config import get_settings
from cityhub.db import utcnow
from cityhub.dispatch import service as dispatch
from cityhub.dispatch.outcomes import outcomes
from cityhub.dispatch.rules import RuleTier, TargetKind
from cityhub.dispatch.schemas import RuleCreate, RuleUpdate, window_problem
from cityhub.errors import CityhubError, NotFound, ValidationFailed
from cityhub.org.service import unit_directory
from cityhub.web import support
from cityhub.web.forms import day_of, every_problem, field_errors, local_day, removed, saved
from cityhub.web.support import FormBody, PageError, render
from cityhub.workorders.lifecycle import Action

router = APIRouter(include_in_schema=False)

RULE_FIELDS = (
    "updated_at",
    "name",
    "priority",
    "active",
    "category_id",
    "place_unit_id",
    "keywords",
    "exclude_keywords",
    "target_kind",
    "target_unit_id",
    "tier",
    "valid_from",
    "valid_until",
)


def _reader(request: Request, db: Session) -> Principal:
    return support.require_user(request, db, permissions.act(Action.DISPATCH))


def _editor(request: Request, db: Session, form: Any) -> Principal:
    return support.require_user(request, db, permissions.UNITS_MANAGE, form=form)


def _payload(form: Any, *, lenient: bool = False) -> dict[str, Any]:
    """The rule's fields as the service's schema takes them. ``lenient``: a date that does not read left out (its own
    check says why), for the schema to check the other fields."""
    kind = form.get("target_kind") or TargetKind.UNIT.value
    return {
        "name": form.get("name").strip(),
        "priority": form.get("priority").strip() or "50",
        "active": form.get("active") == "1",
        "category_id": form.text("category_id"),
        "place_unit_id": form.text("place_unit_id"),
        "keywords": form.get("keywords"),
        "exclude_keywords": form.get("exclude_keywords"),
        "target_kind": kind,
        "target_unit_id": form.text("target_unit_id") if kind == TargetKind.UNIT.value else None,
        "tier": form.text("tier"),
        "valid_from": _day(form, "valid_from", lenient=lenient),
        "valid_until": _day(form, "valid_until", lenient=lenient),
    }


def _day(form: Any, field: str, *, lenient: bool = False) -> datetime | None:
    """A validity day typed (``valid_until`` included up to its end); None when empty, or ``lenient`` and no date."""
    try:
        return local_day(form.get(field).strip(), field, end=field == "valid_until")
    except ValidationFailed:
        if not lenient:
            raise
        return None


def _checks(db: Session, form: Any, *, new: bool) -> list[Any]:
    """Every check of a rule's form, for a refused form to say all its problems at once (``forms.every_problem``):
    each date's reading, the schema's fields, the validity's order (which the schema checks only once every field
    passes) and what the service checks of its category, place and target — of a new rule and of one edited alike,
    the form holding every field of the rule (``new``: the schema of a rule created, else of a rule's changes)."""
    payload = _payload(form, lenient=True)

    def window() -> None:
        if problem := window_problem(payload["valid_from"], payload["valid_until"]):
            raise ValidationFailed(problem, details={"field": "valid_until"})

    return [
        lambda: _day(form, "valid_from"),
        lambda: _day(form, "valid_until"),
        lambda: (RuleCreate if new else RuleUpdate).model_validate(payload),
        window,
        *_references(db, payload),
    ]


def _references(db: Session, payload: dict[str, Any]) -> list[Any]:
    """The service's checks of what a rule's form names — category, place, target — each on its own, of the fields
    the schema takes (the others at their defaults)."""
    try:
        data = RuleCreate.model_validate(payload)
    except ValidationError as exc:
        refused = {str(e["loc"][0]) for e in exc.errors() if e["loc"]} | {"valid_from", "valid_until"}
        kept = {k: v for k, v in payload.items() if k not in refused}
        try:
            data = RuleCreate.model_validate({**kept, "name": "-"})
        except ValidationError:
            return []
    return dispatch.new_rule_checks(db, data=data)


def _place_choices(units: Any) -> list[Any]:
    """The places a rule may name, as the API takes them: districts, then each street followed by its communities
    (a community's own rule — 小事不出村 — was only possible through the API)."""
    ordered = sorted(units, key=lambda u: u.code)
    communities: dict[int, list[Any]] = {}
    for u in ordered:
        if u.tier == "community" and u.parent_id is not None:
            communities.setdefault(u.parent_id, []).append(u)
    places = [u for u in ordered if u.tier == "district"]
    for street in (u for u in ordered if u.tier == "street"):
        places += [street, *communities.get(street.id, [])]
    return places


def _page(
    request: Request,
    db: Session,
    principal: Principal,
    *,
    rule: Any = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    typed_threshold: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    directory = unit_directory(db)
    categories = support.active_categories(db)
    choice = support.period_choice(request) if rule is None else None  # the list page shows how dispatch did
    places = _place_choices(directory.values())
    # The list shows the rules that route (启用), as an administrator reads it first; 含已停用 (inactive=1, as 知识库's
    # filter) lists the stopped ones too — each with its count, so none is lost from sight.
    inactive = request.query_params.get("inactive") == "1"
    return render(
        request,
        "rules.html",
        principal=principal,
        status_code=status_code,
        rules=dispatch.list_rules(db, include_inactive=inactive) if rule is None else [],
        inactive=inactive,
        rule_counts=dispatch.rule_counts(db) if rule is None else (0, 0),
        rule=rule,
        thresholds=dispatch.list_thresholds(db) if rule is None else [],
        guide=dispatch.threshold_guide(db) if rule is None else None,
        guide_levels=dispatch.GUIDE_PRECISIONS,
        can_edit=permissions.allows(principal.role, permissions.UNITS_MANAGE),
        categories=categories,
        category_paths={c.id: c.path for c in categories},
        places=places,
        units=support.unit_groups(db, handlers=True),
        names={i: u.name for i, u in directory.items()},
        tiers=list(RuleTier),
        kinds=list(TargetKind),
        now=utcnow(),
        values=values if values is not None else _values_of(rule),
        errors=errors or {},
        error=error,
        default_threshold=get_settings().dispatch_threshold,
        typed_threshold=typed_threshold or {},
        outcomes_choice=choice,
        outcomes=None if choice is None else outcomes(db, period=choice.period, scope=scope_of(db, principal).clause()),
    )


def _values_of(rule: Any) -> dict[str, str]:
    """A rule as its form shows it (a new rule: active, priority 50, target a unit)."""
    if rule is None:
        return {"priority": "50", "active": "1", "target_kind": TargetKind.UNIT.value}
    return {
        "name": rule.name,
        "priority": str(rule.priority),
        "active": "1" if rule.active else "",
        "category_id": str(rule.category_id or ""),
        "place_unit_id": str(rule.place_unit_id or ""),
        "keywords": "、".join(rule.keywords or []),
        "exclude_keywords": "、".join(rule.exclude_keywords or []),
        "target_kind": rule.target_kind.value,
        "target_unit_id": str(rule.target_unit_id or ""),
        "tier": rule.tier.value,
        "valid_from": day_of(rule.valid_from),
        "valid_until": day_of(rule.valid_until, end=True),
        # The version the form was made on: a save over someone else's newer one is refused, not silently lost.
        "updated_at": rule.updated_at.isoformat(),
    }


@router.get("/rules", response_class=HTMLResponse)
def rules_page(request: Request, db: DbSession) -> Response:
    """The routing rules in ranking order and the per-category thresholds."""
    return _page(request, db, _reader(request, db))


@router.post("/rules", response_class=HTMLResponse)
def create_rule(request: Request, db: DbSession, form: FormBody) -> Response:
    principal = _editor(request, db, form)
    t = support.translator(request)
    rule, errors = saved(
        db,
        t,
        lambda: dispatch.create_rule(db, data=RuleCreate.model_validate(_payload(form)), actor=principal.actor),
        _checks(db, form, new=True),
    )
    if rule is None:
        return _page(request, db, principal, values=form.values(RULE_FIELDS), errors=errors, status_code=422)
    return support.redirect("/rules", flash=("rules.created", {"id": rule.id, "name": rule.name}))


@router.get("/rules/{rule_id:int}", response_class=HTMLResponse)
def rule_page(request: Request, db: DbSession, rule_id: int) -> Response:
    principal = _reader(request, db)
    try:
        rule = dispatch.get_rule(db, rule_id=rule_id)
    except NotFound:
        raise PageError(404, "err.page_not_found") from None
    return _page(request, db, principal, rule=rule)


@router.post("/rules/{rule_id:int}", response_class=HTMLResponse)
def update_rule(request: Request, db: DbSession, rule_id: int, form: FormBody) -> Response:
    principal = _editor(request, db, form)
    t = support.translator(request)
    try:
        rule = dispatch.get_rule(db, rule_id=rule_id)
    except NotFound:
        raise PageError(404, "err.page_not_found") from None
    if form.get("updated_at") and form.get("updated_at") != rule.updated_at.isoformat():
        values = {**form.values(RULE_FIELDS), "updated_at": rule.updated_at.isoformat()}
        return _page(request, db, principal, rule=rule, values=values, error=t("rules.stale"), status_code=409)
    try:
        dispatch.update_rule(db, rule_id=rule_id, data=RuleUpdate.model_validate(_payload(form)), actor=principal.actor)
        db.commit()
    except (ValidationError, CityhubError) as exc:
        db.rollback()
        rule = dispatch.get_rule(db, rule_id=rule_id)
        return _page(
            request,
            db,
            principal,
            rule=rule,
            values=form.values(RULE_FIELDS),
            errors=every_problem(field_errors(t, exc), _checks(db, form, new=False), partial(field_errors, t)),
            status_code=422,
        )
    # a rule just stopped stays in sight: the list with the stopped ones (the default lists the active only)
    back = "/rules" if rule.active else "/rules?inactive=1"
    return support.redirect(back, flash=("rules.updated", {"id": rule_id, "name": rule.name}))


@router.post("/rules/{rule_id:int}/delete", response_class=HTMLResponse)
def delete_rule(request: Request, db: DbSession, rule_id: int, form: FormBody) -> Response:
    principal = _editor(request, db, form)
    removed(db, lambda: dispatch.delete_rule(db, rule_id=rule_id, actor=principal.actor))
    return support.redirect("/rules", flash=("rules.deleted", {"id": rule_id}))


@router.get("/rules/thresholds", response_class=HTMLResponse)
def thresholds_page(request: Request, db: DbSession) -> Response:
    """Where a refused threshold form was posted: the thresholds are on the rules page."""
    _reader(request, db)
    return support.redirect("/rules")


@router.post("/rules/thresholds", response_class=HTMLResponse)
def set_threshold(request: Request, db: DbSession, form: FormBody) -> Response:
    principal = _editor(request, db, form)
    t = support.translator(request)
    typed = form.values(("category_id", "threshold"))  # what was typed stays in the form on an error

    def refused(message: str) -> Response:
        return _page(request, db, principal, errors={"threshold": message}, typed_threshold=typed, status_code=422)

    try:
        category_id = int(form.get("category_id"))
        value = float(form.get("threshold"))
    except ValueError:
        return refused(t("err.number"))
    row, errors = saved(
        db, t, lambda: dispatch.set_threshold(db, category_id=category_id, threshold=value, actor=principal.actor)
    )
    if row is None:
        return refused(errors.popitem()[1])
    return support.redirect("/rules", flash=("rules.threshold_set", {"threshold": value}))


@router.post("/rules/thresholds/{category_id}/delete", response_class=HTMLResponse)
def delete_threshold(request: Request, db: DbSession, category_id: int, form: FormBody) -> Response:
    principal = _editor(request, db, form)
    removed(db, lambda: dispatch.delete_threshold(db, category_id=category_id, actor=principal.actor))
    return support.redirect("/rules", flash=("rules.threshold_deleted", {}))
