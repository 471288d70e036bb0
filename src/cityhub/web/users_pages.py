"""用户管理: accounts for administrators — list, create, change role/unit/activity, reset a password, lock, unlock.

The same service calls as ``/api/v1/users`` and ``cityhub users`` (``cityhub.auth.service``), the same permission
(``users:manage``) and the same rules: staff need a unit, citizens have none, an administrator cannot demote, disable
or lock their own account, a password reset ends the user's sessions and revokes their API tokens. A generated
password is shown once, on the page that answers the form, never in a cookie or a redirect.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from cityhub.api.deps import DbSession
from cityhub.auth import passwords, permissions
from cityhub.auth import service as auth
from cityhub.auth.models import ApiToken
from cityhub.auth.principal import Principal
from cityhub.db import contains_text, utcnow
from cityhub.errors import CityhubError, Conflict
from cityhub.org.models import Role, Unit, User
from cityhub.org.schemas import UserCreate
from cityhub.org.service import check_unit_for_role, username_alike
from cityhub.org.views import UserUpdateBody
from cityhub.web import forms, support
from cityhub.web.forms import field_errors
from cityhub.web.support import FormBody, PageError, render

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
USER_FIELDS = ("username", "full_name", "role", "unit_id", "phone", "email", "active")


def _admin(request: Request, db: Session, form: FormBody | None = None) -> Principal:
    return support.require_user(request, db, permissions.USERS_MANAGE, form=form)


def _user(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise PageError(404, "err.page_not_found")
    return user


def _errors(t: Any, exc: ValidationError | CityhubError) -> dict[str, str]:
    if isinstance(exc, CityhubError) and (key := forms.password_error(exc)) is not None:
        return {"password": t(key)}
    if isinstance(exc, CityhubError) and "already exists" in exc.message:
        return {"username": t("users.taken")}
    if isinstance(exc, CityhubError) and "your own account" in exc.message:
        return {"_form": t("users.not_self")}
    if isinstance(exc, CityhubError) and ("needs a unit" in exc.message or "belongs to no unit" in exc.message):
        return {"unit_id": t("users.unit_for_role")}
    return field_errors(t, exc)


def _payload(form: Any) -> dict[str, Any]:
    return {
        "username": form.get("username").strip(),
        "full_name": form.get("full_name").strip(),
        "role": form.get("role"),
        "unit_id": form.text("unit_id"),
        "phone": form.text("phone"),
        "email": form.text("email"),
        "active": form.get("active") == "1",
    }


def _checks(db: Session, form: Any, password: str) -> list[Callable[[], object]]:
    """Every check of a new account's form, for a refused form to say all its problems at once
    (``forms.every_problem``): the schema's fields, the password typed, the login name (taken in any letter case:
    ``username_alike``), the unit the role needs."""
    data = _payload(form)

    def strength() -> None:
        personal = (data["full_name"], data["email"], data["phone"])
        if password:
            passwords.check_strength(password, username=data["username"], personal=personal)

    def name_free() -> None:
        if data["username"] and username_alike(db, data["username"]) is not None:
            raise Conflict(f"username {data['username']} already exists")

    return [lambda: UserCreate.model_validate(data), strength, name_free, partial(_unit_for_role, db, data)]


def _unit_for_role(db: Session, data: dict[str, Any]) -> None:
    """The service's check that a form's unit goes with its role (staff need one, citizens have none)."""
    try:
        role, unit_id = Role(data["role"]), int(data["unit_id"]) if data["unit_id"] else None
    except ValueError:
        return  # not a role, not a unit's id: the schema says so
    check_unit_for_role(db, role=role, unit_id=unit_id)


def _changes(form: Any) -> dict[str, Any]:
    """An account's form as the changes the API takes (``UserUpdateBody``): every field but the login name."""
    changes = {k: v for k, v in _payload(form).items() if k != "username"}
    changes["unit_id"] = forms.whole_number(changes["unit_id"])
    return changes


def _update_checks(db: Session, form: Any, user: User, by_user_id: int | None) -> list[Callable[[], object]]:
    """Every check of an account's edit form, for a refused form to say all its problems at once
    (``forms.every_problem``): the schema's fields, one's own role or activity (``auth.refuse_own``), the unit the
    role needs."""
    changes = _changes(form)

    def own() -> None:
        if changes["role"] != user.role.value or not changes["active"]:
            auth.refuse_own(by_user_id, user, "change the role of or disable")

    return [
        lambda: UserUpdateBody.model_validate(changes),
        own,
        partial(_unit_for_role, db, {**changes, "unit_id": str(changes["unit_id"] or "")}),
    ]


def _list_page(
    request: Request,
    db: Session,
    principal: Principal,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    shown_password: tuple[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    params = request.query_params
    q, role = params.get("q", "").strip(), params.get("role", "")
    page = max(1, forms.whole_number(params.get("page")) or 1)
    stmt = select(User).order_by(User.username, User.id)
    if q:
        stmt = stmt.where(or_(contains_text(User.username, q), contains_text(User.full_name, q)))
    if role in {r.value for r in Role}:
        stmt = stmt.where(User.role == role)
    rows = list(db.scalars(stmt.limit(PAGE_SIZE + 1).offset((page - 1) * PAGE_SIZE)))
    ids = [u.id for u in rows[:PAGE_SIZE]]
    lockouts = auth.password_lockouts(db, usernames=[u.username for u in rows[:PAGE_SIZE]], now=utcnow())
    tokens = dict(
        db.execute(
            select(ApiToken.user_id, func.count())
            .where(ApiToken.user_id.in_(ids), ApiToken.revoked.is_(False))
            .group_by(ApiToken.user_id)
        ).all()
    )
    return render(
        request,
        "users.html",
        principal=principal,
        status_code=status_code,
        users=rows[:PAGE_SIZE],
        has_more=len(rows) > PAGE_SIZE,
        page=page,
        query=[("q", q), ("role", role)],
        q=q,
        role_filter=role,
        roles=list(Role),
        units=support.unit_groups(db),
        unit_names={u.id: u.name for u in db.scalars(select(Unit).where(Unit.id.in_({u.unit_id for u in rows})))},
        lockouts=lockouts,
        tokens=tokens,
        now=utcnow(),
        values=values or {"active": "1", "role": Role.HANDLER.value},
        errors=errors or {},
        shown_password=shown_password,
    )


def _user_page(
    request: Request,
    db: Session,
    principal: Principal,
    user: User,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    shown_password: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "user.html",
        principal=principal,
        status_code=status_code,
        account=user,
        roles=list(Role),
        units=support.unit_groups(db),
        locked=auth.is_locked(user),
        lockout=auth.password_lockouts(db, usernames=[user.username], now=utcnow()).get(user.username),
        values=values
        or {
            "full_name": user.full_name,
            "role": user.role.value,
            "unit_id": str(user.unit_id or ""),
            "phone": user.phone or "",
            "email": user.email or "",
            "active": "1" if user.active else "",
        },
        errors=errors or {},
        shown_password=shown_password,
        is_self=user.id == principal.user_id,
    )


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, db: DbSession) -> Response:
    """Accounts by login name, filtered by a text in login name or name and by role; a form to create one."""
    return _list_page(request, db, _admin(request, db))


@router.post("/admin/users", response_class=HTMLResponse)
def create_user(request: Request, db: DbSession, form: FormBody) -> Response:
    """Create an account; without a password typed one is generated and shown on the answering page, once."""
    principal = _admin(request, db, form)
    t = support.translator(request)
    typed = form.get("password")
    password = typed or passwords.generate_password()
    try:
        user = auth.create_account(
            db, data=UserCreate.model_validate(_payload(form)), password=password, actor=principal.actor
        )
        db.commit()
    except (ValidationError, CityhubError) as exc:
        db.rollback()
        values = form.values(USER_FIELDS)
        # Every problem at once, each at its field: a weak password with a bad phone, a login name already taken.
        errors = forms.every_problem(_errors(t, exc), _checks(db, form, typed), partial(_errors, t))
        return _list_page(request, db, principal, values=values, errors=errors, status_code=422)
    if typed:
        return support.redirect(f"/admin/users/{user.id}", flash=("users.created", {"username": user.username}))
    return _list_page(request, db, principal, shown_password=(user.username, password), status_code=201)


@router.get("/admin/users/{user_id:int}", response_class=HTMLResponse)
def user_page(request: Request, db: DbSession, user_id: int) -> Response:
    principal = _admin(request, db)
    return _user_page(request, db, principal, _user(db, user_id))


@router.post("/admin/users/{user_id:int}", response_class=HTMLResponse)
def update_user(request: Request, db: DbSession, user_id: int, form: FormBody) -> Response:
    """Change name, role, unit, contact fields and activity (auth.update_account)."""
    principal = _admin(request, db, form)
    t = support.translator(request)
    user = _user(db, user_id)
    try:
        # The API's checks of what may change (a name 1–80 characters, a phone and an e-mail that are such).
        checked = UserUpdateBody.model_validate(_changes(form)).model_dump(exclude_unset=True)
        auth.update_account(db, user=user, changes=checked, by_user_id=principal.user_id, actor=principal.actor)
        db.commit()
    except (ValidationError, CityhubError) as exc:
        db.rollback()
        user = _user(db, user_id)
        # Every problem at once, each at its field: a bad phone with a handler left without a unit.
        checks = _update_checks(db, form, user, principal.user_id)
        errors = forms.every_problem(_errors(t, exc), checks, partial(_errors, t))
        values = form.values(USER_FIELDS)
        return _user_page(request, db, principal, user, values=values, errors=errors, status_code=422)
    return support.redirect(f"/admin/users/{user_id}", flash=("users.updated", {"username": user.username}))


@router.post("/admin/users/{user_id:int}/password", response_class=HTMLResponse)
def reset_password(request: Request, db: DbSession, user_id: int, form: FormBody) -> Response:
    """An administrator's reset (auth.set_password): a generated password shown once; sessions end, tokens go."""
    principal = _admin(request, db, form)
    user = _user(db, user_id)
    password = passwords.generate_password()
    auth.set_password(db, username=user.username, password=password, actor=principal.actor)
    db.commit()
    return _user_page(request, db, principal, user, shown_password=password)


@router.post("/admin/users/{user_id:int}/lock", response_class=HTMLResponse)
def lock_user(request: Request, db: DbSession, user_id: int, form: FormBody) -> Response:
    """Lock the account until unlocked: its sessions end and its API tokens stop working."""
    principal = _admin(request, db, form)
    t = support.translator(request)
    user = _user(db, user_id)
    try:
        auth.refuse_own(principal.user_id, user, "lock")
    except CityhubError as exc:
        return _user_page(request, db, principal, user, errors=_errors(t, exc), status_code=exc.http_status)
    auth.lock_user(db, username=user.username, actor=principal.actor)
    db.commit()
    return support.redirect(f"/admin/users/{user_id}", flash=("users.locked", {"username": user.username}))


@router.post("/admin/users/{user_id:int}/unlock", response_class=HTMLResponse)
def unlock_user(request: Request, db: DbSession, user_id: int, form: FormBody) -> Response:
    """Lift an administrator's lock and a password lockout."""
    principal = _admin(request, db, form)
    user = _user(db, user_id)
    auth.unlock_user(db, username=user.username, actor=principal.actor)
    db.commit()
    return support.redirect(f"/admin/users/{user_id}", flash=("users.unlocked", {"username": user.username}))
