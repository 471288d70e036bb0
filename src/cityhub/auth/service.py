"""Accounts, password login with rate limiting and lockout, server-side sessions and personal API tokens.

Two kinds of lock: an administrator's (``users.locked_until``: no login, session or token while it lasts) and the
lockout after failed password logins (``login_lockouts``, per login name, existing or not: password logins only).

Sessions are rows (``auth_sessions``) rather than signed cookies: logout, lock and password changes end them
at once in every process, and the cookie carries only a random id whose SHA-256 is stored. API tokens verified a
moment ago are trusted from memory for ``token_cache_seconds`` (:class:`RecentTokens`).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, bindparam, delete, event, func, or_, select, update
from sqlalchemy.orm import InstrumentedAttribute, ORMExecuteState, Session

from cityhub import auditlog
from cityhub.auth import passwords
from cityhub.auth.errors import AccountLocked, InvalidCredentials, TooManyAttempts, Unauthenticated
from cityhub.auth.models import ApiToken, AuthSession, LoginAttempt, LoginLockout, TokenRateWindow
from cityhub.auth.principal import Principal
from cityhub.auth.settings import get_auth_settings
from cityhub.db import hit_minute_window, upsert_insert, utcnow
from cityhub.errors import Conflict, NotFound, ValidationFailed, refuse_nulls
from cityhub.org import service as org
from cityhub.org.models import Role, Unit, User, verified_phone
from cityhub.org.schemas import UserCreate
from cityhub.timerange import answer_time

TOKEN_PREFIX = "chub_"
# Writing last_used_at on every call would make each API request a write; once in a while is enough.
_TOUCH_EVERY = timedelta(minutes=10)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


# ------------------------------------------------------------------------------------------------ accounts


# What the configuration log (cityhub.auditlog) keeps of an account, before and after a change (never a password).
_ACCOUNT_FACTS = ("full_name", "role", "unit_id", "active", "email", "phone")


def _account_facts(user: User) -> dict[str, Any]:
    return auditlog.snapshot(user, _ACCOUNT_FACTS)


def _log(
    session: Session, user: User, action: str, actor: Any, before: dict[str, Any] | None = None, **after: Any
) -> None:
    auditlog.record(
        session,
        actor=actor,
        area="user",
        target=user.username,
        action=action,
        before=before,
        after=after or _account_facts(user),
    )


def create_account(session: Session, *, data: UserCreate, password: str | None = None, actor: Any = None) -> User:
    """Create a user, with a password hash when ``password`` is given. ``actor``: who did it, for the configuration
    log (None: the system)."""
    if password is not None:
        passwords.check_strength(password, username=data.username, personal=(data.full_name, data.email, data.phone))
    user = org.create_user(session, data=data)
    if password is not None:
        user.password_hash = passwords.hash_password(password)
    session.flush()
    _log(session, user, "create", actor)
    return user


def require_user(session: Session, *, username: str) -> User:
    user = org.get_user_by_username(session, username=username)
    if user is None:
        raise NotFound(f"user {username} not found")
    return user


@dataclass(frozen=True)
class PasswordSet:
    user: User
    sessions_ended: int
    tokens_revoked: int


def set_password(session: Session, *, username: str, password: str, actor: Any = None) -> PasswordSet:
    """An administrator's reset: set a new password, lift any lock, end the user's sessions and revoke their API
    tokens — whoever may have learnt the old password may have made a token with it."""
    user = require_user(session, username=username)
    passwords.check_strength(password, username=user.username, personal=(user.full_name, user.email, user.phone))
    user.password_hash = passwords.hash_password(password)
    user.locked_until = None
    clear_password_lockout(session, username=user.username)
    ended = end_sessions(session, user_id=user.id)
    revoked = revoke_tokens(session, user_id=user.id)
    session.flush()
    _log(session, user, "reset_password", actor, sessions_ended=ended, tokens_revoked=revoked)
    return PasswordSet(user=user, sessions_ended=ended, tokens_revoked=revoked)


def change_password(
    session: Session,
    *,
    principal: Principal,
    current: str,
    new: str,
    revoke_api_tokens: bool = False,
    now: datetime | None = None,
) -> PasswordSet:
    """The user's own change: the current password must be given (a wrong one counts as a failed login of the
    account, towards its lockout), the new one must be strong and differ from it. The user's other browser
    sessions end — whoever knew the old password may have signed in with it — the one making the change stays; the
    API tokens are revoked when asked (scripts that use them would stop). An account that signs in through single
    sign-on only has no password to change."""
    now = now or utcnow()
    user = confirm_password(session, user_id=principal.user_id, password=current, field="current_password", now=now)
    if new == current:
        raise ValidationFailed("the new password is the current one", details={"field": "password"})
    passwords.check_strength(new, username=user.username, personal=(user.full_name, user.email, user.phone))
    user.password_hash = passwords.hash_password(new)
    clear_password_lockout(session, username=user.username)
    others = delete(AuthSession).where(AuthSession.user_id == user.id)
    if principal.method == "session":
        others = others.where(AuthSession.id != principal.credential_id)
    ended = int(getattr(session.execute(others), "rowcount", 0) or 0)
    revoked = revoke_tokens(session, user_id=user.id) if revoke_api_tokens else 0
    session.flush()
    return PasswordSet(user=user, sessions_ended=ended, tokens_revoked=revoked)


def confirm_password(session: Session, *, user_id: int, password: str, field: str, now: datetime | None = None) -> User:
    """The signed-in user's account once they have given its password again (a password change, a token made with
    another token): a wrong one counts as a failed login of the account, towards its lockout (committed although
    the request fails), and is refused naming ``field``. An account that signs in through single sign-on only has no
    password to give."""
    now = now or utcnow()
    user = session.get(User, user_id)
    if user is None or not user.active:
        raise InvalidCredentials("this account is not active")
    if user.password_hash is None:
        raise ValidationFailed(
            "this account signs in through single sign-on and has no password here", details={"field": field}
        )
    locked_until = password_lockouts(session, usernames=[user.username], now=now).get(user.username)
    if locked_until is not None:
        raise AccountLocked(
            "too many failed logins: password checks locked; try again later",
            details={"locked_until": locked_until.isoformat()},
        )
    if not passwords.verify_password(user.password_hash, password):
        locked_until = _count_failure(session, name=user.username, now=now)
        session.commit()  # the failure counts although the request fails
        if locked_until is not None:
            raise AccountLocked(
                "too many failed logins: password login locked", details={"locked_until": locked_until.isoformat()}
            )
        wrong = "the current password is wrong" if field == "current_password" else "the account's password is wrong"
        raise ValidationFailed(wrong, details={"field": field})
    return user


def refuse_own(by_user_id: int | None, user: User, what: str) -> None:
    """An administrator who demotes, disables or locks their own account may leave nobody able to undo it."""
    if by_user_id == user.id:
        raise Conflict(f"you cannot {what} your own account; ask another administrator")


def update_account(
    session: Session, *, user: User, changes: dict[str, Any], by_user_id: int | None = None, actor: Any = None
) -> User:
    """Change role, unit, activity or contact fields of ``user`` (those in ``changes``); staff roles need a unit,
    citizens have none. A role change or deactivation ends the account's browser sessions — they would otherwise
    keep the old standing until they expire — and is refused on one's own account (``by_user_id``)."""
    refuse_nulls(changes, ("full_name", "role", "active"))
    if ("role" in changes and changes["role"] != user.role) or changes.get("active") is False:
        refuse_own(by_user_id, user, "change the role of or disable")
    role = changes.get("role", user.role)
    unit_id = changes.get("unit_id", user.unit_id)
    if role == Role.CITIZEN and unit_id is not None:
        raise ValidationFailed("a citizen belongs to no unit", details={"field": "unit_id"})
    if role in org.UNIT_ROLES and unit_id is None:
        raise ValidationFailed(f"a {role.value} needs a unit", details={"field": "unit_id"})
    if unit_id is not None and unit_id != user.unit_id and session.get(Unit, unit_id) is None:
        raise ValidationFailed(f"unit {unit_id} not found", details={"field": "unit_id"})
    role_changed = role != user.role
    before = _account_facts(user)
    if "phone" in changes:
        from cityhub.auth.phone import clear_on_change

        clear_on_change(session, user, changes["phone"])  # a new number is unverified
    for field, value in changes.items():
        setattr(user, field, value)
    if changes.get("active") is False or role_changed:
        end_sessions(session, user_id=user.id)
    session.flush()
    _log(session, user, "update", actor, before)
    return user


def lock_user(session: Session, *, username: str, minutes: float | None = None, actor: Any = None) -> User:
    """An administrator's lock (for ``minutes``, or until unlocked): ends the account's sessions, its tokens stop
    working and it cannot log in. Not the lockout after failed password logins (:class:`LoginLockout`)."""
    user = require_user(session, username=username)
    before = user.locked_until  # the log says what the lock replaced (a lock renewed is no lock from nothing)
    until = utcnow() + timedelta(minutes=minutes) if minutes else datetime(9999, 12, 31, tzinfo=utcnow().tzinfo)
    user.locked_until = until
    end_sessions(session, user_id=user.id)
    session.flush()
    _log(session, user, "lock", actor, {"locked_until": before}, locked_until=until)
    return user


def unlock_user(session: Session, *, username: str, actor: Any = None) -> User:
    """Lift an administrator's lock and a password lockout, and forget the failed logins."""
    user = require_user(session, username=username)
    before = user.locked_until
    user.locked_until = None
    clear_password_lockout(session, username=user.username)
    session.flush()
    _log(session, user, "unlock", actor, {"locked_until": before}, locked_until=None)
    return user


def bind_sso(session: Session, *, user: User, identity: str) -> None:
    """Bind ``user`` to the single sign-on ``identity`` that first signed on as it (``auth.oidc.identity_of``), in the
    configuration log; :func:`unbind_sso` releases it."""
    user.sso_identity = identity
    session.flush()
    _log(session, user, "sso_bind", None, None, sso=identity)


def unbind_sso(session: Session, *, username: str, actor: Any = None) -> User:
    """Release an account from the single sign-on identity it is bound to (the person's provider account was
    replaced): its next sign-on binds it again, found by the username claim."""
    user = require_user(session, username=username)
    if user.sso_identity is None:
        raise ValidationFailed(
            f"account '{username}' is not bound to a sign-on identity", details={"field": "username"}
        )
    before = user.sso_identity
    user.sso_identity = None
    session.flush()
    _log(session, user, "sso_unbind", actor, {"sso": before}, sso=None)
    return user


def is_locked(user: User, now: datetime | None = None) -> bool:
    """Whether an administrator's lock holds (``user``: a User or a row with ``locked_until``)."""
    return user.locked_until is not None and user.locked_until > (now or utcnow())


def clear_password_lockout(session: Session, *, username: str) -> None:
    session.execute(delete(LoginLockout).where(LoginLockout.username == username[:64]))


def password_lockouts(
    session: Session, *, usernames: Iterable[str], now: datetime | None = None
) -> dict[str, datetime]:
    """The login names among ``usernames`` whose password logins are locked now, with until when."""
    names = sorted({u[:64] for u in usernames})
    if not names:
        return {}
    query = select(LoginLockout.username, LoginLockout.locked_until).where(
        LoginLockout.username.in_(names), LoginLockout.locked_until > (now or utcnow())
    )
    return {name: until for name, until in session.execute(query) if until is not None}


# ------------------------------------------------------------------------------------------------- login


@dataclass(frozen=True)
class LoginResult:
    user: User
    session_token: str  # the cookie value; only its hash is stored
    csrf_token: str
    expires_at: datetime


def _recent_failures(session: Session, column: InstrumentedAttribute[str], value: str, since: datetime) -> int:
    query = select(func.count()).where(column == value, LoginAttempt.at >= since, LoginAttempt.success.is_(False))
    return int(session.scalar(query) or 0)


def check_attempts(
    session: Session, *, key: str, client_ip: str, now: datetime, what: str = "logins", of: str = "this account"
) -> None:
    """Refuse (429, :class:`TooManyAttempts`) a caller with too many recent failures: from its address
    (``login_max_per_ip``) or at ``key`` (``login_max_per_username``) within ``login_window_seconds``. Password
    logins use it with the login name; the public progress lookup with ``track:<order number>``."""
    settings = get_auth_settings()
    since = now - timedelta(seconds=settings.login_window_seconds)
    window = settings.login_window_seconds  # the oldest failure counted leaves the window by then at the latest
    if _recent_failures(session, LoginAttempt.client_ip, client_ip, since) >= settings.login_max_per_ip:
        raise TooManyAttempts(f"too many failed {what} from this address; try again later", retry_after=window)
    if _recent_failures(session, LoginAttempt.username, key[:64], since) >= settings.login_max_per_username:
        raise TooManyAttempts(f"too many failed {what} for {of}; try again later", retry_after=window)


def record_failed_attempt(session: Session, *, key: str, client_ip: str, now: datetime) -> None:
    """Count one failure towards :func:`check_attempts` (the caller commits it, even when it then raises); attempts
    older than a day are pruned here, which keeps the table small without a job."""
    session.add(LoginAttempt(username=key[:64], client_ip=client_ip[:64], at=now, success=False))
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - timedelta(days=1)))


def login(
    session: Session,
    *,
    username: str,
    password: str,
    client_ip: str,
    user_agent: str | None = None,
    now: datetime | None = None,
    replacing: str | None = None,
) -> LoginResult:
    """Check a password login and open a session (``replacing``: see :func:`open_session`).

    A login name that exists and one that does not answer alike: the same password-hash work, the same failure
    counting, the same lockout after ``login_max_failures`` failures in a row (423 for ``lockout_minutes``). That
    lockout stops password logins only; an administrator's lock (told only to whoever gives the right password)
    stops everything. Failures are committed even though an error is raised, so that counters survive the
    request's rollback.
    """
    now = now or utcnow()
    check_attempts(session, key=username, client_ip=client_ip, now=now)
    name = username[:64]
    locked_until = password_lockouts(session, usernames=[name], now=now).get(name)
    if locked_until is not None:
        raise AccountLocked(
            "too many failed logins: password login locked; try again later",
            details={"locked_until": locked_until.isoformat()},
        )

    user = org.get_user_by_username(session, username=username)
    ok = passwords.verify_password(user.password_hash if user else None, password)
    if not ok or user is None or not user.active:
        record_failed_attempt(session, key=name, client_ip=client_ip, now=now)
        locked_until = _count_failure(session, name=name, now=now)
        # Old counts only matter for a while; pruning them here keeps the table small without a job.
        day_ago = now - timedelta(days=1)
        session.execute(
            delete(LoginLockout).where(
                LoginLockout.last_failure_at < day_ago,
                or_(LoginLockout.locked_until.is_(None), LoginLockout.locked_until < now),
            )
        )
        session.commit()
        if locked_until is not None:
            raise AccountLocked(
                "too many failed logins: password login locked", details={"locked_until": locked_until.isoformat()}
            )
        raise InvalidCredentials("wrong username or password")

    if is_locked(user, now):
        assert user.locked_until is not None
        raise AccountLocked(
            "account locked by an administrator", details={"locked_until": user.locked_until.isoformat()}
        )
    assert user.password_hash is not None
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(password)
    clear_password_lockout(session, username=name)
    session.add(LoginAttempt(username=name, client_ip=client_ip[:64], at=now, success=True))
    return open_session(
        session, user=user, method="password", client_ip=client_ip, user_agent=user_agent, now=now, replacing=replacing
    )


def _count_failure(session: Session, *, name: str, now: datetime) -> datetime | None:
    """Count one failed password login of ``name``; at ``login_max_failures`` in a row, lock its password logins
    and start counting again. Returns until when it is locked, if this failure locked it."""
    settings = get_auth_settings()
    insert = upsert_insert(session.get_bind().dialect.name)
    stmt = (
        insert(LoginLockout)
        .values(username=name, failures=1, last_failure_at=now)
        .on_conflict_do_update(
            index_elements=["username"], set_={"failures": LoginLockout.failures + 1, "last_failure_at": now}
        )
        .returning(LoginLockout.failures)
    )
    if int(session.execute(stmt).scalar_one()) < settings.login_max_failures:
        return None
    locked_until = now + timedelta(minutes=settings.lockout_minutes)
    session.execute(
        update(LoginLockout).where(LoginLockout.username == name).values(failures=0, locked_until=locked_until)
    )
    return locked_until


def open_session(
    session: Session,
    *,
    user: User,
    method: str,
    client_ip: str | None = None,
    user_agent: str | None = None,
    now: datetime | None = None,
    replacing: str | None = None,
) -> LoginResult:
    """Start a browser session for ``user`` (after a password or OIDC login). ``replacing``: the session token the
    browser held, whose session ends — its cookie is replaced, and a session nobody holds should not stay valid on
    the server until it expires (another account logging in on the same browser)."""
    if replacing:
        session.execute(delete(AuthSession).where(AuthSession.token_hash == digest(replacing)))
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    expires = now + timedelta(hours=get_auth_settings().session_hours)
    session.add(
        AuthSession(
            token_hash=digest(token),
            user_id=user.id,
            csrf_token=csrf,
            method=method,
            created_at=now,
            expires_at=expires,
            client_ip=(client_ip or "")[:64] or None,
            user_agent=(user_agent or "")[:200] or None,
        )
    )
    session.flush()
    return LoginResult(user=user, session_token=token, csrf_token=csrf, expires_at=expires)


def end_session(session: Session, *, session_id: int) -> None:
    session.execute(delete(AuthSession).where(AuthSession.id == session_id))


def end_sessions(session: Session, *, user_id: int) -> int:
    """End every browser session of the user; returns how many there were."""
    result = session.execute(delete(AuthSession).where(AuthSession.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


# ------------------------------------------------------------------------------------------ authentication


@lru_cache(maxsize=2)
def _caller_query(credential: type[ApiToken] | type[AuthSession]) -> Any:
    """A credential with its user and the user's unit tier, by the credential's hash: one statement, built once and
    read as plain rows (this runs before every authenticated request; loading ORM objects cost more than the query)."""
    extra = (
        [ApiToken.revoked, ApiToken.last_used_at, ApiToken.prefix]
        if credential is ApiToken
        else [AuthSession.csrf_token]
    )
    return (
        select(
            credential.id.label("credential_id"),
            credential.expires_at,
            *extra,
            User.id.label("user_id"),
            User.username,
            User.full_name,
            User.role,
            User.unit_id,
            User.active,
            User.locked_until,
            User.phone,
            User.phone_verified,
            Unit.tier.label("unit_tier"),
        )
        .join(User, credential.user_id == User.id)
        .outerjoin(Unit, User.unit_id == Unit.id)
        .where(credential.token_hash == bindparam("token_hash"))
    )


def _caller(row: Any, now: datetime, *, method: str, csrf_token: str | None = None) -> Principal:
    if not row.active or is_locked(row, now):
        raise Unauthenticated("account disabled or locked")
    return Principal(
        user_id=row.user_id,
        username=row.username,
        full_name=row.full_name,
        role=row.role,
        unit_id=row.unit_id,
        unit_tier=row.unit_tier,
        method=method,
        credential_id=row.credential_id,
        csrf_token=csrf_token,
        verified_phone=verified_phone(row.phone, row.phone_verified) if row.role == Role.CITIZEN else None,
    )


def authenticate_session(session: Session, *, token: str, now: datetime | None = None) -> Principal:
    now = now or utcnow()
    row = session.connection().execute(_caller_query(AuthSession), {"token_hash": digest(token)}).one_or_none()
    if row is None or row.expires_at <= now:
        raise Unauthenticated("session expired or signed out; log in again")
    return _caller(row, now, method="session", csrf_token=row.csrf_token)


MAKE_TOKEN = "sign in and make a new one (POST /api/v1/auth/tokens)"


def token_refusal(row: Any) -> Unauthenticated:
    """Why a bearer token is refused — no row holds it (``row`` None), revoked, or expired — said to its holder, whose
    integration stopped, as an API key's expiry is (``details.reason``: ``unknown``, ``revoked``, ``expired`` with
    ``expired_at``); the code stays ``unauthenticated`` (until December 2026: "invalid, expired or revoked API
    token" for all three)."""
    if row is None:
        return Unauthenticated(
            "invalid API token: no token has this value (mistyped, cut short, or made by another cityhub)",
            details={"reason": "unknown"},
        )
    if row.revoked:
        return Unauthenticated(f"API token {row.prefix}… was revoked; {MAKE_TOKEN}", details={"reason": "revoked"})
    expired = answer_time(row.expires_at)
    return Unauthenticated(
        f"API token {row.prefix}… expired at {expired}; {MAKE_TOKEN}",
        details={"reason": "expired", "expired_at": expired},
    )


def authenticate_token(session: Session, *, token: str, now: datetime | None = None) -> Principal:
    """The token's owner. Token, user and unit tier come in one query: this runs before every bearer request whose
    token was not verified a moment ago (:func:`recent_token_owner`)."""
    now = now or utcnow()
    token_hash = digest(token)
    row = session.connection().execute(_caller_query(ApiToken), {"token_hash": token_hash}).one_or_none()
    if row is None or row.revoked or (row.expires_at is not None and row.expires_at <= now):
        raise token_refusal(row)
    principal = _caller(row, now, method="token")
    if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
        _touch_token(session, token_id=row.credential_id, now=now)
    RECENT_TOKENS.put(token_hash, principal, row.expires_at, get_auth_settings().token_cache_seconds)
    return principal


def hit_token_rate_limit(session: Session, *, token_id: int, limit: int, now: datetime | None = None) -> int | None:
    """Count one call of the personal API token ``token_id`` in the current clock minute (``token_rate_windows``, as
    ``sharing.service.hit_rate_limit`` counts an API key's: ``db.hit_minute_window``); past ``limit`` return the
    seconds to the next minute, else None."""
    return hit_minute_window(session, TokenRateWindow, "token_id", token_id, limit, now or utcnow())


class RecentTokens:
    """API tokens verified in the last few seconds, by their SHA-256, with the owner they were verified as.

    A bearer request whose token is here is let through without reading the database (and so without a worker
    thread: the check runs on the event loop). What a change of the token (revoked, expired), its user (locked,
    disabled, role or unit changed) or a unit means for it takes effect at once in the process that commits the
    change — its commit empties this cache (see the listeners below) — and within ``token_cache_seconds``
    (``CITYHUB_TOKEN_CACHE_SECONDS``, default 2; 0 = off) in the other server processes. A token's own expiry is
    always honoured. Browser sessions are not cached: signing out ends a session everywhere at once.
    """

    MAX_ENTRIES = 10_000

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._items: dict[str, tuple[Principal, float, datetime | None]] = {}

    def get(self, token_hash: str, now: datetime) -> Principal | None:
        hit = self._items.get(token_hash)
        if hit is None:
            return None
        principal, until, expires_at = hit
        if until <= self.clock() or (expires_at is not None and expires_at <= now):
            self._items.pop(token_hash, None)
            return None
        return principal

    def put(self, token_hash: str, principal: Principal, expires_at: datetime | None, seconds: float) -> None:
        if seconds <= 0:
            return
        now = self.clock()
        if len(self._items) >= self.MAX_ENTRIES:
            self._items = {k: v for k, v in self._items.items() if v[1] > now}
            if len(self._items) >= self.MAX_ENTRIES:
                self._items.clear()
        self._items[token_hash] = (principal, now + seconds, expires_at)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


RECENT_TOKENS = RecentTokens()


def recent_token_owner(token: str) -> Principal | None:
    """The owner of ``token`` if it was verified within the last ``token_cache_seconds``, else None (then
    :func:`authenticate_token` reads the database)."""
    return RECENT_TOKENS.get(digest(token), utcnow())


# A commit that changed what a verified token stands for empties the cache (in this process; the others' entries
# lapse within seconds): ORM changes to users, tokens and units, and ORM-enabled UPDATE / DELETE statements on them.
_CALLERS_CHANGED = "cityhub.auth.callers_changed"
_CALLER_CLASSES = (User, ApiToken, Unit)


@event.listens_for(Session, "after_flush")
def _note_changed_callers(session: Session, _flush_context: object) -> None:
    if any(isinstance(o, _CALLER_CLASSES) for group in (session.dirty, session.deleted) for o in group):
        session.info[_CALLERS_CHANGED] = True


@event.listens_for(Session, "do_orm_execute")
def _note_changed_callers_in_bulk(state: ORMExecuteState) -> None:
    mapper = state.bind_mapper
    if (state.is_update or state.is_delete) and mapper is not None and issubclass(mapper.class_, _CALLER_CLASSES):
        state.session.info[_CALLERS_CHANGED] = True


@event.listens_for(Session, "after_commit")
def _forget_changed_callers(session: Session) -> None:
    if session.info.pop(_CALLERS_CHANGED, False):
        RECENT_TOKENS.clear()


@event.listens_for(Session, "after_soft_rollback")
def _keep_callers(session: Session, _previous: object) -> None:
    session.info.pop(_CALLERS_CHANGED, None)


def _touch_token(session: Session, *, token_id: int, now: datetime) -> None:
    """Record when a token was last used, in a transaction of its own, committed at once.

    Not in the request's transaction: there the token row would stay locked until the request ends, and
    simultaneous requests with the same token, each also waiting for another row (the day's order-number counter),
    deadlock on PostgreSQL. Of simultaneous requests that find the mark stale, one writes it.
    """
    stale = or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - _TOUCH_EVERY)
    with session.get_bind().engine.begin() as conn:
        conn.execute(update(ApiToken).where(ApiToken.id == token_id, stale).values(last_used_at=now))


# --------------------------------------------------------------------------------------------- API tokens


def create_token(
    session: Session, *, user_id: int, name: str, days: int | None = None, now: datetime | None = None
) -> tuple[ApiToken, str]:
    """Create a personal API token; returns the row and the secret, which is never stored or shown again."""
    if not name.strip():
        raise ValidationFailed("a token needs a name", details={"field": "name"})
    now = now or utcnow()
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user_id,
        name=name.strip()[:80],
        token_hash=digest(secret),
        prefix=secret[: len(TOKEN_PREFIX) + 6],
        created_at=now,
        expires_at=now + timedelta(days=days or get_auth_settings().api_token_days),
    )
    session.add(row)
    session.flush()
    return row, secret


def list_tokens(session: Session, *, user_id: int) -> list[ApiToken]:
    return list(session.scalars(tokens_query(user_id=user_id)))


def tokens_query(*, user_id: int) -> Select[ApiToken]:
    """The user's API tokens, oldest first (by id), for :func:`list_tokens` and a caller that pages them."""
    return select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id)


def revoke_token(session: Session, *, user_id: int, token_id: int) -> None:
    """Revoke one of the user's own tokens; someone else's answers NotFound like a missing one."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user_id:
        raise NotFound(f"token {token_id} not found")
    row.revoked = True
    session.flush()


def revoke_tokens(session: Session, *, user_id: int) -> int:
    """Revoke every API token of the user still in force; returns how many."""
    result = session.execute(
        update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked.is_(False)).values(revoked=True)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def list_accounts(session: Session, *, role: Role | None = None) -> list[User]:
    query = select(User).order_by(User.username)
    if role is not None:
        query = query.where(User.role == role)
    return list(session.scalars(query))
