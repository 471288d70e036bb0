"""Data sharing (数据共享接口): API clients and keys, per-key rate limits, call statistics, aggregates and
anonymised order data.

Keys are random tokens shown once; only their SHA-256 is stored, so a stolen database yields no usable key.
Rate limits and statistics are counter rows upserted in one statement each, so every process serving the API
shares the same counts.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, and_, case, cast, func, select
from sqlalchemy.orm import Session

from cityhub import auditlog
from cityhub.config import get_settings
from cityhub.db import hit_minute_window, upsert_insert, utcnow
from cityhub.errors import CityhubError, NotFound, PermissionDenied, ValidationFailed
from cityhub.masking import coarsen_address, coarsen_coordinate, scrub_text
from cityhub.org.models import Unit
from cityhub.sharing.models import ApiCallStat, ApiClient, ApiKey, ApiRateWindow
from cityhub.sharing.scopes import SCOPES
from cityhub.timerange import answer_time
from cityhub.workorders import feeds
from cityhub.workorders.categories import ancestor_at
from cityhub.workorders.lifecycle import TERMINAL_STATES
from cityhub.workorders.models import Category, Order

KEY_PREFIX = "chk_"
DISPLAY_PREFIX_LEN = 12
DEFAULT_RATE_LIMIT = 60


class RateLimited(CityhubError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, *, limit: int, retry_after: int, of: str = "") -> None:
        """``of``: whose calls, said after the limit (" of this personal API token"); an API key's say nothing."""
        super().__init__(
            f"rate limit of {limit} calls per minute{of} exceeded; retry after {retry_after} s",
            details={"limit": limit, "retry_after": retry_after},
        )
        self.retry_after = retry_after


class KeyExpired(CityhubError):
    """An API key past its expiry (``api_keys.expires_at``): the client must be given a new one."""

    code = "key_expired"
    http_status = 401

    def __init__(self, *, prefix: str, expired_at: datetime) -> None:
        at = answer_time(expired_at)
        super().__init__(
            f"API key {prefix}… expired at {at}; ask the platform's administrator for a new key",
            details={"expired_at": at},
        )


@dataclass(frozen=True)
class Caller:
    """An authenticated API client, as the HTTP layer needs it (no ORM object outlives its session)."""

    client_id: int
    client_name: str
    key_id: int
    scopes: frozenset[str]
    rate_limit: int


# --- clients and keys ----------------------------------------------------------------------------------------


def hash_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


def parse_scopes(text: str | Iterable[str]) -> list[str]:
    """Split ``"open311:write, sharing:read"`` into known scopes; ValidationFailed names unknown ones."""
    items = re.split(r"[\s,]+", text) if isinstance(text, str) else list(text)
    scopes = sorted({s.strip() for s in items if s.strip()})
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValidationFailed(
            f"unknown scope(s) {', '.join(unknown)} (known: {', '.join(sorted(SCOPES))})",
            details={"field": "scopes"},
        )
    if not scopes:
        raise ValidationFailed("at least one scope is needed", details={"field": "scopes"})
    return scopes


def get_client(session: Session, *, name: str) -> ApiClient | None:
    return session.scalars(select(ApiClient).where(ApiClient.name == name)).one_or_none()


def _log(
    session: Session, client: ApiClient, action: str, actor: Any, before: dict[str, Any] | None, **after: Any
) -> None:
    """One entry of the configuration log (cityhub.auditlog) for an API client (never a key, only its prefix)."""
    auditlog.record(
        session, actor=actor, area="api_client", target=client.name, action=action, before=before, after=after
    )


def create_key(
    session: Session,
    *,
    client_name: str,
    scopes: str | Iterable[str] | None = None,
    rate_limit: int | None = None,
    expires_at: datetime | None = None,
    actor: Any = None,
) -> tuple[ApiClient, str]:
    """Issue a new key for the client and return it. A new client is created with ``scopes`` (required) and the
    limit; an existing one keeps its scopes and limit — ``scopes`` and ``rate_limit`` must be omitted or equal them
    (ValidationFailed otherwise: its other keys hold the same, and :func:`set_scopes` and :func:`set_rate_limit`
    change them deliberately). ``expires_at`` (see :func:`expiry`): when the key stops working; None: never."""
    _check_expiry(expires_at)
    name = client_name.strip()
    if not name or len(name) > 80:
        raise ValidationFailed("client name must have 1 to 80 characters", details={"field": "client"})
    if rate_limit is not None and rate_limit < 1:
        raise ValidationFailed("rate limit must be at least 1 call per minute", details={"field": "rate_limit"})
    scope_list = None if scopes is None else parse_scopes(scopes)
    client = get_client(session, name=name)
    created = client is None
    if client is None:
        if scope_list is None:
            raise ValidationFailed(f"client {name!r} is new: give its scopes", details={"field": "scopes"})
        client = ApiClient(
            name=name,
            scopes=" ".join(scope_list),
            rate_limit_per_minute=rate_limit or DEFAULT_RATE_LIMIT,
            active=True,
        )
        session.add(client)
    else:
        if scope_list is not None and scope_list != sorted(client.scopes.split()):
            raise ValidationFailed(
                f"client {name!r} has scopes {client.scopes!r}, which its keys share; a new key gets the same "
                f"(omit --scopes), or change them for every key: cityhub apikey scopes --client {name} "
                f"--scopes {','.join(scope_list)}",
                details={"field": "scopes", "scopes": client.scopes.split()},
            )
        if rate_limit is not None and rate_limit != client.rate_limit_per_minute:
            raise ValidationFailed(
                f"client {name!r} allows {client.rate_limit_per_minute} calls per minute, as all its keys do; a new "
                f"key gets the same (omit --rate-limit), or change it for every key: cityhub apikey limit --client "
                f"{name} --rate-limit {rate_limit}",
                details={"field": "rate_limit", "rate_limit": client.rate_limit_per_minute},
            )
    client.active = True
    session.flush()
    raw = KEY_PREFIX + secrets.token_urlsafe(30)
    session.add(
        ApiKey(client_id=client.id, prefix=raw[:DISPLAY_PREFIX_LEN], key_hash=hash_key(raw), expires_at=expires_at)
    )
    session.flush()
    if created:
        _log(session, client, "create", actor, None, scopes=client.scopes, rate_limit=client.rate_limit_per_minute)
    issued: dict[str, Any] = {"key": raw[:DISPLAY_PREFIX_LEN]}
    if expires_at is not None:
        issued["expires_at"] = answer_time(expires_at)
    _log(session, client, "issue_key", actor, None, **issued)
    return client, raw


def expiry(*, days: int | None = None, until: date | None = None, now: datetime | None = None) -> datetime | None:
    """When a key given ``days`` (counted from now) or ``until`` a local day (it works through that day, to the
    district's midnight after it) expires; None when neither is given (no expiry). ValidationFailed naming ``expires``
    for both, for fewer than one day or for a day already past."""
    if days is not None and until is not None:
        raise ValidationFailed("give either a number of days or a last day, not both", details={"field": "expires"})
    now = now or utcnow()
    if days is not None:
        if days < 1 or days > 36_500:
            raise ValidationFailed("a key lasts 1 to 36,500 days", details={"field": "expires"})
        return now + timedelta(days=days)
    if until is None:
        return None
    tz = get_settings().tz
    end = datetime.combine(until + timedelta(days=1), datetime.min.time(), tzinfo=tz)
    if end <= now:
        raise ValidationFailed(f"the last day {until.isoformat()} is past", details={"field": "expires"})
    return end


def _check_expiry(expires_at: datetime | None) -> None:
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationFailed("a key's expiry must be in the future", details={"field": "expires"})


def _one_key(session: Session, prefix: str) -> ApiKey:
    """The one active key beginning with ``prefix`` (at least 8 characters); NotFound or ValidationFailed else."""
    if len(prefix) < 8:
        raise ValidationFailed("give at least 8 characters of the key prefix", details={"field": "prefix"})
    # A prefix shorter than the stored one narrows by LIKE; a whole key matches by its stored head.
    keys = list(
        session.scalars(
            select(ApiKey).where(
                ApiKey.revoked_at.is_(None),
                ApiKey.prefix.startswith(prefix[:DISPLAY_PREFIX_LEN], autoescape=True),
            )
        )
    )
    if not keys:
        raise NotFound("no active key matches")
    if len(keys) > 1:
        # A short prefix may begin several keys, of other clients too: act on one key only when it is the one meant.
        shown = ", ".join(f"{k.prefix}… ({k.client.name})" for k in keys[:5])
        raise ValidationFailed(
            f"{len(keys)} active keys begin with {prefix[:DISPLAY_PREFIX_LEN]!r}: {shown}; give more of the key",
            details={"field": "prefix"},
        )
    return keys[0]


def set_expiry(
    session: Session, *, prefix: str, expires_at: datetime | None, actor: Any = None, at_once: bool = False
) -> ApiKey:
    """Give the active key beginning with ``prefix`` a new expiry (later, earlier, or None: never) — an expired key
    too, which works again once its expiry is moved past now. ``at_once``: it expires now (``expires_at`` ignored) —
    a leaked key, or a client's handling of ``key_expired`` to be tried —, refused from its next call on."""
    if at_once:
        expires_at = utcnow()
    else:
        _check_expiry(expires_at)
    key = _one_key(session, prefix)
    before = answer_time(key.expires_at) if key.expires_at else None
    key.expires_at = expires_at
    session.flush()
    after = answer_time(expires_at) if expires_at else None
    auditlog.record(
        session,
        actor=actor,
        area="api_client",
        target=key.client.name,
        action="key_expiry",
        before={"key": key.prefix, "expires_at": before},
        after={"key": key.prefix, "expires_at": after},
    )
    return key


def set_scopes(
    session: Session, *, client_name: str, scopes: str | Iterable[str], actor: Any = None
) -> tuple[ApiClient, list[str]]:
    """Give an existing client ``scopes``, for every key it holds; returns the client and its scopes before."""
    scope_list = parse_scopes(scopes)
    client = get_client(session, name=client_name.strip())
    if client is None:
        raise NotFound(f"no API client named {client_name!r}")
    before = client.scopes.split()
    client.scopes = " ".join(scope_list)
    session.flush()
    _log(session, client, "update", actor, {"scopes": " ".join(before)}, scopes=client.scopes)
    return client, before


def set_rate_limit(session: Session, *, client_name: str, rate_limit: int, actor: Any = None) -> tuple[ApiClient, int]:
    """Give an existing client a new limit of calls per minute, for every key it holds; returns the client and its
    limit before."""
    if rate_limit < 1:
        raise ValidationFailed("rate limit must be at least 1 call per minute", details={"field": "rate_limit"})
    client = get_client(session, name=client_name.strip())
    if client is None:
        raise NotFound(f"no API client named {client_name!r}")
    before = client.rate_limit_per_minute
    client.rate_limit_per_minute = rate_limit
    session.flush()
    _log(session, client, "update", actor, {"rate_limit": before}, rate_limit=rate_limit)
    return client, before


def list_clients(session: Session) -> Sequence[ApiClient]:
    """Every client with its keys, by name."""
    from sqlalchemy.orm import selectinload

    return session.scalars(select(ApiClient).options(selectinload(ApiClient.keys)).order_by(ApiClient.name)).all()


def revoke(session: Session, *, prefix: str | None = None, client_name: str | None = None, actor: Any = None) -> int:
    """Revoke the key(s) starting with ``prefix``, or every key of a client; return how many were revoked."""
    if bool(prefix) == bool(client_name):
        raise ValidationFailed("name either a key prefix or a client")
    query = select(ApiKey).where(ApiKey.revoked_at.is_(None))
    if client_name:
        client = get_client(session, name=client_name)
        if client is None:
            raise NotFound(f"no API client named {client_name!r}")
        query = query.where(ApiKey.client_id == client.id)
    keys = list(session.scalars(query)) if client_name else [_one_key(session, prefix or "")]
    if not keys:
        raise NotFound("no active key matches")
    now = utcnow()
    for key in keys:
        key.revoked_at = now
    session.flush()
    for key in keys:
        _log(session, key.client, "revoke_key", actor, None, key=key.prefix)
    return len(keys)


def authenticate(session: Session, *, raw_key: str | None) -> Caller:
    """Return the client owning this active key; PermissionDenied when it is missing, unknown or revoked,
    KeyExpired (401, saying when) past its expiry."""
    if not raw_key:
        raise PermissionDenied("an API key is required (api_key parameter or X-API-Key header)")
    row = session.execute(
        select(
            ApiKey.id,
            ApiClient.id,
            ApiClient.name,
            ApiClient.scopes,
            ApiClient.rate_limit_per_minute,
            ApiKey.prefix,
            ApiKey.expires_at,
        )
        .join(ApiClient, ApiClient.id == ApiKey.client_id)
        .where(ApiKey.key_hash == hash_key(raw_key.strip()), ApiKey.revoked_at.is_(None), ApiClient.active)
    ).one_or_none()
    if row is None:
        raise PermissionDenied("invalid or revoked API key")
    key_id, client_id, name, scopes, limit, prefix, expires_at = row
    if expires_at is not None and expires_at <= utcnow():
        raise KeyExpired(prefix=prefix, expired_at=expires_at)
    return Caller(
        client_id=client_id, client_name=name, key_id=key_id, scopes=frozenset(scopes.split()), rate_limit=limit
    )


def require_scope(caller: Caller, scope: str) -> None:
    if scope not in caller.scopes:
        raise PermissionDenied(f"this API key lacks the scope {scope!r}", details={"scope": scope})


def _insert(session: Session) -> Any:
    return upsert_insert(session.get_bind().dialect.name)


def hit_rate_limit(session: Session, *, caller: Caller, now: datetime | None = None) -> int | None:
    """Count one call of the key in the current minute; past the limit return the seconds to wait, else None."""
    return hit_minute_window(session, ApiRateWindow, "key_id", caller.key_id, caller.rate_limit, now or utcnow())


def record_call(session: Session, *, client_id: int, endpoint: str, error: bool, at: datetime | None = None) -> None:
    """Add one call (and one error, if it failed) to the client's counter of the local day and endpoint."""
    day = (at or utcnow()).astimezone(get_settings().tz).date()
    insert = _insert(session)
    stmt = insert(ApiCallStat).values(
        client_id=client_id, day=day, endpoint=endpoint[:160], calls=1, errors=1 if error else 0
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["client_id", "day", "endpoint"],
        set_={"calls": ApiCallStat.calls + 1, "errors": ApiCallStat.errors + (1 if error else 0)},
    )
    session.execute(stmt)


def call_stats(
    session: Session, *, start: date | None = None, end: date | None = None, client_name: str | None = None
) -> list[dict[str, Any]]:
    """Counters per client, day and endpoint in [start, end] (local days), newest day first."""
    query = (
        select(ApiClient.name, ApiCallStat.day, ApiCallStat.endpoint, ApiCallStat.calls, ApiCallStat.errors)
        .join(ApiClient, ApiClient.id == ApiCallStat.client_id)
        .order_by(ApiCallStat.day.desc(), ApiClient.name, ApiCallStat.endpoint)
    )
    if start is not None:
        query = query.where(ApiCallStat.day >= start)
    if end is not None:
        query = query.where(ApiCallStat.day <= end)
    if client_name:
        query = query.where(ApiClient.name == client_name)
    return [
        {"client": name, "day": day.isoformat(), "endpoint": endpoint, "calls": calls, "errors": errors}
        for name, day, endpoint, calls, errors in session.execute(query)
    ]


# --- aggregates --------------------------------------------------------------------------------------------

DIMENSIONS = ("category", "unit", "street", "day", "state")


def _local_day(session: Session, column: Any, at: datetime) -> Any:
    """SQL for the local calendar day of a UTC timestamp column, on either backend."""
    tz = get_settings().tz
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone(tz.key, column), Date)
    # SQLite keeps naive UTC text; the zone's offset at ``at`` is exact for zones without DST (Asia/Shanghai).
    offset = at.astimezone(tz).utcoffset() or timedelta(0)
    return func.date(column, f"{int(offset.total_seconds() // 60):+d} minutes")


def _check_aware(start: datetime | None, end: datetime | None) -> None:
    for value, name in ((start, "start"), (end, "end")):
        if value is not None and value.tzinfo is None:
            raise ValidationFailed(f"{name} must carry a time zone (e.g. +08:00 or Z)", details={"field": name})


def _period(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    # The times given are checked before the one left out is derived from them: it would inherit their fault.
    _check_aware(start, end)
    end = end or utcnow()
    start = start or end - timedelta(days=30)
    if start >= end:
        raise ValidationFailed("start must be before end", details={"field": "start"})
    return start, end


def aggregate_orders(
    session: Session,
    *,
    dimension: str,
    start: datetime | None = None,
    end: datetime | None = None,
    category_level: int = 1,
) -> dict[str, Any]:
    """Count orders received in [start, end) by category (at a level), lead unit, street, local day or state."""
    if dimension not in DIMENSIONS:
        raise ValidationFailed(f"unknown dimension {dimension!r} (known: {', '.join(DIMENSIONS)})")
    start, end = _period(start, end)
    period = and_(Order.created_at >= start, Order.created_at < end)
    closed = func.sum(case((Order.state.in_(TERMINAL_STATES), 1), else_=0))
    rows: list[dict[str, Any]]
    if dimension == "day":
        day = _local_day(session, Order.created_at, end)
        result = session.execute(select(day, func.count(), closed).where(period).group_by(day).order_by(day)).all()
        rows = [{"key": str(k), "name": str(k), "orders": n, "closed": int(c or 0)} for k, n, c in result]
    elif dimension == "state":
        result = session.execute(
            select(Order.state, func.count()).where(period).group_by(Order.state).order_by(Order.state)
        ).all()
        rows = [
            {"key": s.value, "name": s.value, "orders": n, "closed": n if s in TERMINAL_STATES else 0}
            for s, n in result
        ]
    elif dimension in ("unit", "street"):
        column = Order.lead_unit_id if dimension == "unit" else Order.street_id
        result = session.execute(
            select(column, Unit.code, Unit.name, func.count(), closed)
            .outerjoin(Unit, Unit.id == column)
            .where(period)
            .group_by(column, Unit.code, Unit.name)
        ).all()
        rows = [{"key": code, "name": name, "orders": n, "closed": int(c or 0)} for _, code, name, n, c in result]
    else:
        if category_level < 1:
            raise ValidationFailed("category_level starts at 1", details={"field": "category_level"})
        result = session.execute(
            select(Order.category_id, func.count(), closed).where(period).group_by(Order.category_id)
        ).all()
        # The taxonomy is small: roll the per-category counts up to the requested level in memory.
        tree = {c.id: c for c in session.scalars(select(Category))}
        merged: dict[int | None, list[int]] = {}
        for category_id, n, c in result:
            node = ancestor_at(tree, category_id, category_level)
            key = node.id if node is not None else None
            acc = merged.setdefault(key, [0, 0])
            acc[0] += n
            acc[1] += int(c or 0)
        rows = [
            {
                "key": tree[k].code if k is not None else None,
                "name": tree[k].path if k is not None else None,
                "orders": n,
                "closed": c,
            }
            for k, (n, c) in merged.items()
        ]
    if dimension not in ("day", "state"):
        rows.sort(key=lambda r: (-r["orders"], r["key"] or ""))
    return {
        "dimension": dimension,
        "start": answer_time(start),
        "end": answer_time(end),
        "total": sum(r["orders"] for r in rows),
        "rows": rows,
    }


# --- anonymised orders -------------------------------------------------------------------------------------


def anonymised_orders(
    session: Session,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
    include_text: bool = False,
    cursor: str | None = None,
    updated_since: datetime | None = None,
    feed: str | None = None,
) -> dict[str, Any]:
    """A page of orders with no personal data.

    Without ``cursor``: the orders received in [start, end) (default: the last 30 days), oldest first, paged by
    ``offset`` — an order imported later with an older reception time shifts the pages after it. With ``cursor``
    (``*`` to begin) and ``feed`` ``new`` (the default): every order once, in the order cityhub stored them (the
    order id, which only grows), after the cursor's position. With ``feed`` ``changes`` (or a cursor it gave): every
    order once after each transaction that stored or changed it, in the order of those transactions, once the
    transaction has settled (:mod:`cityhub.workorders.changes`): an order stored or changed by a transaction still
    open — or that committed while one below it is still open — waits for a later page, and is never passed.
    ``start``/``end`` filter the reception time only when given; ``next_cursor`` is the position after the page, to
    be sent back for the next page or, at the end, on the harvester's next run for the orders stored (and, in the
    feed of changes, changed) since. ``updated_since`` keeps the orders changed (or received) at or after that time.
    """
    feeds.check_updated_since(updated_since)
    query = select(Order, Order.changed_xid)
    if updated_since is not None:
        query = query.where(feeds.changed_since(updated_since))
    position = feeds.position_of(cursor, feed, offset=offset)
    if position is None:
        start, end = _period(start, end)
        query = query.where(Order.created_at >= start, Order.created_at < end)
        query = query.order_by(Order.created_at, Order.id).offset(offset)
    else:
        _check_aware(start, end)
        if start is not None and end is not None and start >= end:
            raise ValidationFailed("start must be before end", details={"field": "start"})
        if start is not None:
            query = query.where(Order.created_at >= start)
        if end is not None:
            query = query.where(Order.created_at < end)
        query = feeds.walk(query, session, position, by_updated=updated_since is not None)
    settled_below = feeds.settled_before(session, position) if position is not None else None
    rows = session.execute(query.limit(limit + 1)).all()
    if not rows and position is not None and cursor is not None:
        feeds.refuse_if_ahead(session, position, cursor)
    has_more = len(rows) > limit
    rows = rows[:limit]
    orders = [row[0] for row in rows]
    unit_ids = {i for o in orders for i in (o.street_id, o.community_id, o.lead_unit_id) if i is not None}
    units = {u.id: u for u in session.scalars(select(Unit).where(Unit.id.in_(unit_ids)))} if unit_ids else {}
    categories = {c.id: c for c in session.scalars(select(Category))} if orders else {}
    items = []
    for o in orders:
        category = categories.get(o.category_id) if o.category_id is not None else None
        item: dict[str, Any] = {
            "number": o.number,
            "channel": o.channel.value,
            "appeal_type": o.appeal_type.value,
            "category_code": category.code if category else None,
            "category": category.path if category else None,
            "state": o.state.value,
            "closed": o.state in TERMINAL_STATES,
            "urgency": o.urgency.value,
            "street": units[o.street_id].name if o.street_id in units else None,
            "community": units[o.community_id].name if o.community_id in units else None,
            "area": coarsen_address(o.address),
            "lat": coarsen_coordinate(o.lat),
            "long": coarsen_coordinate(o.lng),
            "lead_unit": units[o.lead_unit_id].name if o.lead_unit_id in units else None,
            "created_at": answer_time(o.created_at),
            "updated_at": answer_time(o.updated_at),
            "closed_at": answer_time(o.closed_at) if o.closed_at else None,
            "due_at": answer_time(o.due_at) if o.due_at else None,
            "sla_status": o.sla_status.value,
            "satisfied": o.satisfied,
            "resolved": o.resolved,
        }
        if include_text:
            known = (o.citizen_name, o.citizen_phone)
            item["title"] = scrub_text(o.title, known=known)
            item["content"] = scrub_text(o.content, known=known)
            item["reply"] = scrub_text(o.reply_text, known=known)
        items.append(item)
    next_cursor = None
    if position is not None:  # the cursor's position moves past the page (the last page: past what it passed over)
        last = (rows[-1][1], rows[-1][0].id) if rows else None
        next_cursor = feeds.next_cursor(position, last, settled_below=settled_below, has_more=has_more)
    return {"items": items, "limit": limit, "offset": offset, "has_more": has_more, "next_cursor": next_cursor}
