"""HTTP routes of the organisation: the unit tree (/units) and the staff directory (/users).

Reads need ``org:read`` (every staff role; citizens get 403), unit writes ``units:manage``, user writes
``users:manage``. The staff directory holds staff only: citizens' accounts (their names, phones, e-mails) are
listed and read with ``users:manage`` alone — to others a citizen's account answers 404, as a missing one. Password
hashes never leave the server: responses are built from :class:`UserOut`, which has no such field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from cityhub.api.deps import MAX_ID, CurrentActor, DbSession, ListPaging, Paging, get_principal, require
from cityhub.auth import permissions
from cityhub.auth import service as auth
from cityhub.auth.principal import Principal
from cityhub.db import contains_text
from cityhub.errors import NotFound
from cityhub.org import aliases, service
from cityhub.org.models import AliasKind, Role, Unit, UnitAlias, UnitTier, User
from cityhub.org.schemas import ContactChecks, UnitCreate, UnitUpdate, UserBase, UserCreate

# Primary keys are 32-bit INTEGER columns: a larger id can match nothing, and PostgreSQL would refuse to compare
# with it. In a query or a body that is a validation error; in a path, a thing not found (api.deps.known_path_ids).
IdPath = Annotated[int, Path(ge=1)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
# PostgreSQL text cannot hold NUL; refusing it here keeps a search string from turning into a 500.
NO_NUL = r"^[^\x00]*$"
SearchText = Annotated[str | None, Query(max_length=100, pattern=NO_NUL, description="Text to look for.")]


# --- units -------------------------------------------------------------------------------------------------


class UnitOut(BaseModel):
    """A unit as the API shows it; contacts are returned as stored (imports may hold partial ones)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    short_name: str | None
    tier: UnitTier
    parent_id: int | None
    boundary: dict[str, Any] | None
    contacts: list[dict[str, Any]] | None
    duties: str | None
    active: bool
    created_at: datetime
    name_en: str | None = Field(default=None, description="the English name English pages show; none: the name")


class UnitPage(BaseModel):
    items: list[UnitOut]
    limit: int
    offset: int
    has_more: bool


class UnitCreateBody(UnitCreate):
    parent_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class UnitUpdateBody(UnitUpdate):
    parent_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class AliasOut(BaseModel):
    """A place alias (地名别名): a further name of a street or community, as the gazetteer matches it."""

    id: int
    alias: str = Field(description="as the address resolver matches names (NFKC, simplified, no whitespace)")
    unit_id: int
    unit_code: str
    kind: AliasKind
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, row: UnitAlias) -> AliasOut:
        return cls(
            id=row.id,
            alias=row.alias,
            unit_id=row.unit_id,
            unit_code=row.unit.code,
            kind=row.kind,
            created_by=row.created_by,
            created_at=row.created_at,
        )


class AliasCreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alias: str = Field(min_length=1, max_length=200, description="a landmark, road or old name (石井大道, 大学城)")
    kind: AliasKind = AliasKind.OTHER
    also_ambiguous: bool = Field(
        default=False, description="add it although it names another unit: it is then ambiguous between them"
    )


# --- users -------------------------------------------------------------------------------------------------


class UserOut(BaseModel):
    """A user without any credential: no password hash, no session or token."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    full_name: str
    role: Role
    unit_id: int | None
    phone: str | None
    email: str | None
    active: bool
    has_password: bool = Field(description="whether the account can log in with a password")
    locked: bool = Field(description="locked by an administrator: no login, session or API token")
    locked_until: datetime | None
    login_locked_until: datetime | None = Field(
        None,
        description="password logins locked after failed attempts, until then (sessions and tokens still work)",
    )
    created_at: datetime

    @classmethod
    def of(cls, user: User, login_locked_until: datetime | None = None) -> UserOut:
        locked = auth.is_locked(user)
        return cls(
            id=user.id,
            username=user.username,
            full_name=user.full_name,
            role=user.role,
            unit_id=user.unit_id,
            phone=user.phone,
            email=user.email,
            active=user.active,
            has_password=user.password_hash is not None,
            locked=locked,
            locked_until=user.locked_until if locked else None,
            login_locked_until=login_locked_until,
            created_at=user.created_at,
        )


def _out(db: Session, users: list[User]) -> list[UserOut]:
    """Users as the API shows them, with their password lockouts read in one query."""
    lockouts = auth.password_lockouts(db, usernames=[u.username for u in users])
    return [UserOut.of(u, lockouts.get(u.username)) for u in users]


def _one(db: Session, user: User) -> UserOut:
    return _out(db, [user])[0]


class UserPage(BaseModel):
    items: list[UserOut]
    limit: int
    offset: int
    has_more: bool


class UserCreateBody(UserBase):
    unit_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    password: str | None = Field(
        default=None, min_length=1, max_length=1024, description="initial password; none = cannot log in yet"
    )


class UserUpdateBody(ContactChecks):
    """Fields to change; the username is the account's stable identity and cannot be changed."""

    model_config = ConfigDict(extra="forbid")

    full_name: str | None = Field(default=None, min_length=1, max_length=80)
    role: Role | None = None
    unit_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    phone: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=120)
    active: bool | None = None


class LockRequest(BaseModel):
    minutes: float | None = Field(
        default=None, gt=0, le=525_600, description="lock for this long; none = until unlocked"
    )


# --- routes ------------------------------------------------------------------------------------------------

units_router = APIRouter(prefix="/units", tags=["units"], dependencies=[Depends(get_principal)])
users_router = APIRouter(prefix="/users", tags=["users"], dependencies=[Depends(get_principal)])

OrgReader = Depends(require(permissions.ORG_READ))
UnitManager = Depends(require(permissions.UNITS_MANAGE))
UserManager = Annotated[Principal, Depends(require(permissions.USERS_MANAGE))]
DirectoryReader = Annotated[Principal, OrgReader]


def _page(db: Session, stmt: Select[Any], limit: int, offset: int) -> tuple[list[Any], bool]:
    rows = list(db.scalars(stmt.limit(limit + 1).offset(offset)))
    return rows[:limit], len(rows) > limit


def _unit(db: Session, unit_id: int) -> Unit:
    unit = service.get_unit(db, unit_id=unit_id)
    if unit is None:
        raise NotFound(f"unit {unit_id} not found")
    return unit


@units_router.get("", response_model=UnitPage, dependencies=[OrgReader])
def list_units(
    db: DbSession,
    page: Paging,
    tier: UnitTier | None = None,
    parent_id: IdQuery = None,
    active: bool | None = None,
    q: SearchText = None,
) -> UnitPage:
    """Units by code, filtered by tier, parent, activity and a text in code, name or short name."""
    stmt = select(Unit).order_by(Unit.code, Unit.id)
    if tier is not None:
        stmt = stmt.where(Unit.tier == tier)
    if parent_id is not None:
        stmt = stmt.where(Unit.parent_id == parent_id)
    if active is not None:
        stmt = stmt.where(Unit.active.is_(active))
    if q and q.strip():
        text = q.strip()
        stmt = stmt.where(or_(*(contains_text(c, text) for c in (Unit.name, Unit.short_name, Unit.code))))
    rows, has_more = _page(db, stmt, page.limit, page.offset)
    return UnitPage(
        items=[UnitOut.model_validate(u) for u in rows], limit=page.limit, offset=page.offset, has_more=has_more
    )


@units_router.get("/{unit_id}", response_model=UnitOut, dependencies=[OrgReader])
def get_unit(unit_id: IdPath, db: DbSession) -> UnitOut:
    return UnitOut.model_validate(_unit(db, unit_id))


@units_router.get("/{unit_id}/children", response_model=list[UnitOut], dependencies=[OrgReader])
def unit_children(unit_id: IdPath, db: DbSession, page: ListPaging) -> list[UnitOut]:
    """The units directly below this one, by code; optionally paged."""
    _unit(db, unit_id)
    return [UnitOut.model_validate(u) for u in page.scalars(db, service.units_query(parent_id=unit_id))]


@units_router.post("", status_code=status.HTTP_201_CREATED, response_model=UnitOut, dependencies=[UnitManager])
def create_unit(body: UnitCreateBody, db: DbSession, actor: CurrentActor) -> UnitOut:
    data = UnitCreate.model_validate(body.model_dump())
    return UnitOut.model_validate(service.create_unit(db, data=data, actor=actor))


@units_router.patch("/{unit_id}", response_model=UnitOut, dependencies=[UnitManager])
def update_unit(unit_id: IdPath, body: UnitUpdateBody, db: DbSession, actor: CurrentActor) -> UnitOut:
    """Change the fields sent; the code cannot change, and a unit cannot move under its own sub-units."""
    data = UnitUpdate.model_validate(body.model_dump(exclude_unset=True))
    return UnitOut.model_validate(service.update_unit(db, unit_id=unit_id, data=data, actor=actor))


AliasIdPath = Annotated[int, Path(ge=1)]


@units_router.get("/{unit_id}/aliases", response_model=list[AliasOut], dependencies=[OrgReader])
def list_unit_aliases(unit_id: IdPath, db: DbSession) -> list[AliasOut]:
    """The unit's place aliases (地名别名), by alias."""
    _unit(db, unit_id)
    return [AliasOut.of(row) for row in aliases.list_aliases(db, unit_id=unit_id)]


@units_router.post(
    "/{unit_id}/aliases", status_code=status.HTTP_201_CREATED, response_model=AliasOut, dependencies=[UnitManager]
)
def create_unit_alias(unit_id: IdPath, body: AliasCreateBody, db: DbSession, actor: CurrentActor) -> AliasOut:
    """Give a street or community a further name (a landmark, road or old name): new orders naming it are placed
    there. 422 for a unit of another tier or an alias too short; 409 for one the unit has, or one naming another unit
    without ``also_ambiguous``."""
    row = aliases.add_alias(
        db, alias=body.alias, unit_id=unit_id, kind=body.kind, also_ambiguous=body.also_ambiguous, actor=actor
    )
    return AliasOut.of(row)


@units_router.delete(
    "/{unit_id}/aliases/{alias_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[UnitManager]
)
def delete_unit_alias(unit_id: IdPath, alias_id: AliasIdPath, db: DbSession, actor: CurrentActor) -> Response:
    """Remove one of the unit's aliases; orders placed by it before stay where they are."""
    _unit(db, unit_id)
    aliases.remove_alias(db, alias_id=alias_id, unit_id=unit_id, actor=actor)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _user(db: Session, user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def _sees_citizens(principal: Principal) -> bool:
    return permissions.allows(principal.role, permissions.USERS_MANAGE)


@users_router.get("", response_model=UserPage)
def list_users(
    db: DbSession,
    page: Paging,
    principal: DirectoryReader,
    role: Role | None = None,
    unit_id: IdQuery = None,
    active: bool | None = None,
    q: SearchText = None,
) -> UserPage:
    """Users by username, filtered by role, unit, activity and a text in username or full name; citizens only
    for users:manage."""
    stmt = select(User).order_by(User.username, User.id)
    if not _sees_citizens(principal):
        stmt = stmt.where(User.role != Role.CITIZEN)
    if role is not None:
        stmt = stmt.where(User.role == role)
    if unit_id is not None:
        stmt = stmt.where(User.unit_id == unit_id)
    if active is not None:
        stmt = stmt.where(User.active.is_(active))
    if q and q.strip():
        text = q.strip()
        stmt = stmt.where(or_(contains_text(User.username, text), contains_text(User.full_name, text)))
    rows, has_more = _page(db, stmt, page.limit, page.offset)
    return UserPage(items=_out(db, rows), limit=page.limit, offset=page.offset, has_more=has_more)


@users_router.get("/{user_id}", response_model=UserOut)
def get_user(user_id: IdPath, db: DbSession, principal: DirectoryReader) -> UserOut:
    user = _user(db, user_id)
    if user.role == Role.CITIZEN and not _sees_citizens(principal):
        raise NotFound(f"user {user_id} not found")
    return _one(db, user)


@users_router.post("", status_code=status.HTTP_201_CREATED, response_model=UserOut)
def create_user(body: UserCreateBody, db: DbSession, principal: UserManager) -> UserOut:
    """Create an account; the password, when given, is checked for strength and stored as an Argon2id hash."""
    data = UserCreate.model_validate(body.model_dump(exclude={"password"}))
    return _one(db, auth.create_account(db, data=data, password=body.password, actor=principal.actor))


@users_router.patch("/{user_id}", response_model=UserOut)
def update_user(user_id: IdPath, body: UserUpdateBody, db: DbSession, principal: UserManager) -> UserOut:
    """Change role, unit, activity or contact fields; staff roles need a unit, citizens have none."""
    user = auth.update_account(
        db,
        user=_user(db, user_id),
        changes=body.model_dump(exclude_unset=True),
        by_user_id=principal.user_id,
        actor=principal.actor,
    )
    return _one(db, user)


@users_router.post("/{user_id}/lock", response_model=UserOut)
def lock_user(user_id: IdPath, db: DbSession, principal: UserManager, body: LockRequest | None = None) -> UserOut:
    """Lock the account (for ``minutes``, or until unlocked): its sessions end and its API tokens stop working."""
    user = _user(db, user_id)
    auth.refuse_own(principal.user_id, user, "lock")
    minutes = body.minutes if body else None
    return _one(db, auth.lock_user(db, username=user.username, minutes=minutes, actor=principal.actor))


@users_router.post("/{user_id}/unlock", response_model=UserOut)
def unlock_user(user_id: IdPath, db: DbSession, principal: UserManager) -> UserOut:
    """Lift an administrator's lock and a password lockout, and forget the failed logins."""
    user = _user(db, user_id)
    return _one(db, auth.unlock_user(db, username=user.username, actor=principal.actor))


__all__ = ["MAX_ID", "NO_NUL", "IdPath", "IdQuery", "SearchText", "units_router", "users_router"]
