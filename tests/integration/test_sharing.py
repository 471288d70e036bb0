"""Data-sharing API: the apikey CLI, scopes, aggregates on both backends, anonymised orders, call statistics."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from app_helpers import shared_app
from cityhub.db import session_scope
from cityhub.org.models import Unit, UnitTier
from cityhub.sharing import service as sharing
from cityhub.sharing.cli import app as apikey_cli
from cityhub.sharing.http import SharingReader
from cityhub.sharing.models import ApiKey
from cityhub.workorders import feeds
from cityhub.workorders import service as orders
from cityhub.workorders.categories import seed_default_taxonomy
from cityhub.workorders.lifecycle import TERMINAL_STATES, Action
from cityhub.workorders.models import Category, Channel
from cityhub.workorders.schemas import OrderCreate
from feed_helpers import check_late_commit_is_held_back

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def client(app_db: str) -> Iterator[TestClient]:
    with TestClient(shared_app(), raise_server_exceptions=False) as c:
        yield c


def _key(scopes: str, name: str = "integrator", rate_limit: int | None = None) -> str:
    with session_scope() as s:
        return sharing.create_key(s, client_name=name, scopes=scopes, rate_limit=rate_limit)[1]


# --- the CLI ------------------------------------------------------------------------------------------------


def test_apikey_create_prints_only_the_key(app_db: str) -> None:
    env = {**os.environ, "CITYHUB_DATABASE_URL": app_db}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from cityhub.cli import main; main()",
            "apikey",
            "create",
            "--client",
            "城管通",
            "--scopes",
            "open311:write,sharing:read",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and re.fullmatch(r"chk_[A-Za-z0-9_-]{20,}", lines[0])
    with session_scope() as s:
        caller = sharing.authenticate(s, raw_key=lines[0])
        assert caller.client_name == "城管通" and caller.scopes == {"open311:write", "sharing:read"}
        stored = s.scalars(select(ApiKey.key_hash)).all()
    assert lines[0] not in stored  # only the hash is kept


def test_apikey_list_and_revoke(app_db: str) -> None:
    runner = CliRunner()
    key = _key("sharing:read", name="dashboard")
    listed = runner.invoke(apikey_cli, ["list"])
    assert listed.exit_code == 0 and "dashboard" in listed.output and key[:12] in listed.output
    assert key not in listed.output
    assert runner.invoke(apikey_cli, ["revoke", key[:10]]).exit_code == 0
    with session_scope() as s, pytest.raises(sharing.PermissionDenied):
        sharing.authenticate(s, raw_key=key)
    unknown_scope = runner.invoke(apikey_cli, ["create", "--client", "x", "--scopes", "root"])
    assert unknown_scope.exit_code == 1


def test_a_key_with_an_expiry_is_refused_once_past_it_saying_when(client: TestClient) -> None:
    """`apikey create --expires-in/--expires` gives a key an end, shown by `apikey list`; past it every call answers
    401 key_expired saying when; `apikey expiry` moves it on (or --never takes it away); a key without one (those
    issued before) keeps working."""
    from sqlalchemy import update

    runner = CliRunner()
    plain = _key("sharing:read", name="old-bureau")
    made = runner.invoke(apikey_cli, ["create", "--client", "grid", "--scopes", "sharing:read", "--expires-in", "30"])
    assert made.exit_code == 0, made.output
    key = made.stdout.strip().splitlines()[-1]
    last_day = (datetime.now(SHANGHAI) + timedelta(days=3)).date()
    until = runner.invoke(apikey_cli, ["create", "--client", "grid", "--expires", last_day.isoformat()])
    assert until.exit_code == 0, until.output
    listed = runner.invoke(apikey_cli, ["list"]).output
    assert f"active, expires {last_day + timedelta(days=1)}T00:00:00+08:00" in listed
    assert re.search(rf"{re.escape(key[:12])}….*active, expires ", listed)

    for args, problem in (
        (["--expires-in", "0"], "lasts 1 to 36,500 days"),
        (["--expires", "2020-01-01"], "the last day 2020-01-01 is past"),
        (["--expires", "tomorrow"], "is not a date"),
        (["--expires-in", "3", "--expires", last_day.isoformat()], "not both"),
    ):
        refused = runner.invoke(apikey_cli, ["create", "--client", "grid", *args])
        assert refused.exit_code == 1 and problem in refused.output, (args, refused.output)

    headers = {"X-API-Key": key}
    assert client.get("/api/v1/sharing/orders", headers=headers).status_code == 200
    past = datetime(2026, 3, 1, 4, 0, tzinfo=SHANGHAI)
    with session_scope() as s:
        s.execute(update(ApiKey).where(ApiKey.prefix == key[:12]).values(expires_at=past))
    refused = client.get("/api/v1/sharing/orders", headers=headers)
    assert refused.status_code == 401 and refused.json()["code"] == "key_expired", refused.text
    assert f"API key {key[:12]}… expired at 2026-02-28T20:00:00Z" in refused.json()["message"]
    assert refused.json()["details"] == {"expired_at": "2026-02-28T20:00:00Z"}
    assert "expired 2026-03-01T04:00:00+08:00" in runner.invoke(apikey_cli, ["list"]).output
    assert client.get("/api/v1/sharing/orders", headers={"X-API-Key": plain}).status_code == 200

    moved = runner.invoke(apikey_cli, ["expiry", key[:12], "--expires-in", "10"])
    assert moved.exit_code == 0 and "expires" in moved.output, moved.output
    assert client.get("/api/v1/sharing/orders", headers=headers).status_code == 200
    assert runner.invoke(apikey_cli, ["expiry", key[:12], "--never"]).output.strip().endswith("no expiry")
    assert runner.invoke(apikey_cli, ["expiry", key[:12]]).exit_code == 1
    with session_scope() as s:
        assert s.scalars(select(ApiKey.expires_at).where(ApiKey.prefix == key[:12])).one() is None


def test_apikey_expiry_now_ends_a_key_at_once_logged_and_refused_saying_when(client: TestClient) -> None:
    """`apikey expiry PREFIX` refused a past day, so a leaked key (or a client's handling of key_expired) could not
    be ended at once: `--now` ends it now, logged as key_expiry as every key change; its next call is refused 401
    key_expired saying when; moved on, it works again. --now with another choice is refused in one line."""
    from cityhub import auditlog

    runner = CliRunner()
    key = _key("sharing:read", name="leaky")
    headers = {"X-API-Key": key}
    assert client.get("/api/v1/sharing/orders", headers=headers).status_code == 200
    both = runner.invoke(apikey_cli, ["expiry", key[:12], "--now", "--never"])
    assert both.exit_code == 1 and len(both.output.strip().splitlines()) == 1 and "--now" in both.output, both.output
    ended = runner.invoke(apikey_cli, ["expiry", key[:12], "--now"])
    assert ended.exit_code == 0, ended.output
    assert re.fullmatch(rf"key {re.escape(key[:12])}… \(leaky\): expired \S+ \(now\)", ended.output.strip())
    with session_scope() as s:
        expired_at = s.scalars(select(ApiKey.expires_at).where(ApiKey.prefix == key[:12])).one()
        [entry] = s.scalars(
            select(auditlog.LogEntry).where(
                auditlog.LogEntry.area == "api_client", auditlog.LogEntry.action == "key_expiry"
            )
        )
        assert entry.target == "leaky" and entry.actor == "cli", (entry.target, entry.actor)
        before, after = entry.changes["expires_at"]
        assert before is None and after, entry.changes
    assert expired_at is not None
    refused = client.get("/api/v1/sharing/orders", headers=headers)
    assert (refused.status_code, refused.json()["code"]) == (401, "key_expired"), refused.text
    said = refused.json()["details"]["expired_at"]
    assert refused.json()["message"] == (
        f"API key {key[:12]}… expired at {said}; ask the platform's administrator for a new key"
    )
    assert said == after
    assert "expired " in runner.invoke(apikey_cli, ["list"]).output
    assert runner.invoke(apikey_cli, ["expiry", key[:12], "--expires-in", "1"]).exit_code == 0
    assert client.get("/api/v1/sharing/orders", headers=headers).status_code == 200


def test_a_key_prefix_beginning_several_keys_revokes_none(app_db: str) -> None:
    from sqlalchemy import update

    from cityhub.sharing.models import ApiKey

    runner = CliRunner()
    mine, theirs = _key("sharing:read", name="dashboard"), _key("sharing:read", name="other-bureau")
    with session_scope() as s:  # two keys whose first eight characters agree (4 random ones: it happens)
        s.execute(update(ApiKey).where(ApiKey.prefix == theirs[:12]).values(prefix=mine[:8] + "zzzz"))
    refused = runner.invoke(apikey_cli, ["revoke", mine[:8]])
    assert refused.exit_code == 1 and "2 active keys begin with" in refused.output and "other-bureau" in refused.output
    with session_scope() as s:
        for key in (mine, theirs):
            sharing.authenticate(s, raw_key=key)  # both still work
    assert runner.invoke(apikey_cli, ["revoke", mine[:12]]).exit_code == 0
    with session_scope() as s:
        assert sharing.authenticate(s, raw_key=theirs).client_name == "other-bureau"
        with pytest.raises(sharing.PermissionDenied):
            sharing.authenticate(s, raw_key=mine)


def test_another_key_for_a_client_never_changes_its_scopes(app_db: str) -> None:
    runner = CliRunner()
    first = runner.invoke(apikey_cli, ["create", "--client", "hotline-app", "--scopes", "open311:write,sharing:read"])
    assert first.exit_code == 0, first.output
    first_key = first.stdout.splitlines()[-1]

    # Other scopes for an existing client: refused in one line naming its scopes and the deliberate way.
    refused = runner.invoke(apikey_cli, ["create", "--client", "hotline-app", "--scopes", "sharing:read,admin"])
    assert refused.exit_code == 1
    (line,) = refused.output.splitlines()
    assert "'open311:write sharing:read'" in line
    assert "cityhub apikey scopes --client hotline-app --scopes admin,sharing:read" in line
    # Omitted, or the same scopes in another order: a new key with the client's scopes.
    for scopes in ([], ["--scopes", "sharing:read open311:write"]):
        again = runner.invoke(apikey_cli, ["create", "--client", "hotline-app", *scopes])
        assert again.exit_code == 0, again.output
        with session_scope() as s:
            caller = sharing.authenticate(s, raw_key=again.stdout.splitlines()[-1])
            assert caller.scopes == {"open311:write", "sharing:read"}
    with session_scope() as s:
        assert sharing.authenticate(s, raw_key=first_key).scopes == {"open311:write", "sharing:read"}
        assert len(sharing.get_client(s, name="hotline-app").keys) == 3  # type: ignore[union-attr]

    new_client = runner.invoke(apikey_cli, ["create", "--client", "no-scopes-yet"])
    assert new_client.exit_code == 1 and "give its scopes" in new_client.output

    # The deliberate change: every key of the client, said so.
    changed = runner.invoke(apikey_cli, ["scopes", "--client", "hotline-app", "--scopes", "sharing:read,admin"])
    assert changed.exit_code == 0, changed.output
    assert "scopes open311:write sharing:read -> admin sharing:read; affects 3 active key(s)" in changed.output
    assert first_key[:12] in changed.output
    with session_scope() as s:
        assert sharing.authenticate(s, raw_key=first_key).scopes == {"admin", "sharing:read"}
    unknown = runner.invoke(apikey_cli, ["scopes", "--client", "nobody", "--scopes", "admin"])
    assert unknown.exit_code == 1 and "no API client named 'nobody'" in unknown.output


def test_another_key_for_a_client_never_changes_its_rate_limit(app_db: str) -> None:
    runner = CliRunner()
    first = runner.invoke(apikey_cli, ["create", "--client", "app", "--scopes", "sharing:read", "--rate-limit", "120"])
    assert first.exit_code == 0, first.output
    refused = runner.invoke(apikey_cli, ["create", "--client", "app", "--rate-limit", "5"])
    assert refused.exit_code == 1
    (line,) = refused.output.splitlines()
    assert "allows 120 calls per minute" in line and "cityhub apikey limit --client app --rate-limit 5" in line
    for same in ([], ["--rate-limit", "120"]):
        assert runner.invoke(apikey_cli, ["create", "--client", "app", *same]).exit_code == 0
    with session_scope() as s:
        assert sharing.get_client(s, name="app").rate_limit_per_minute == 120  # type: ignore[union-attr]

    changed = runner.invoke(apikey_cli, ["limit", "--client", "app", "--rate-limit", "5"])
    assert changed.exit_code == 0, changed.output
    assert "client app: 120/min -> 5/min; affects 3 active key(s)" in changed.output
    with session_scope() as s:
        assert sharing.get_client(s, name="app").rate_limit_per_minute == 5  # type: ignore[union-attr]
    for args, message in (
        (["--client", "app", "--rate-limit", "0"], "at least 1 call per minute"),
        (["--client", "nobody", "--rate-limit", "9"], "no API client named 'nobody'"),
    ):
        bad = runner.invoke(apikey_cli, ["limit", *args])
        assert bad.exit_code == 1 and message in bad.output


# --- access -------------------------------------------------------------------------------------------------


def test_sharing_needs_a_key_with_the_scope(client: TestClient) -> None:
    writer = _key("open311:write", name="writer")
    reader = _key("sharing:read", name="reader")
    assert client.get("/api/v1/sharing/orders").status_code == 403
    denied = client.get("/api/v1/sharing/orders", headers={"X-API-Key": writer})
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    assert client.get("/api/v1/sharing/orders", headers={"X-API-Key": reader}).status_code == 200
    assert client.get("/api/v1/sharing/stats", headers={"X-API-Key": reader}).status_code == 403
    assert client.get("/api/v1/sharing/stats", headers={"X-API-Key": _key("admin", name="ops")}).status_code == 200


def test_a_key_sent_where_a_token_is_needed_and_a_token_where_a_key_is_are_told_so(client: TestClient) -> None:
    """An integrator holding an API key who calls the orders API with it was told "log in or send an API token", as
    if it had sent nothing (a key in ``Authorization: Bearer``: "invalid, expired or revoked API token"), and a
    person's token sent to the data-sharing API "an API key is required": each answer now says which credential the
    route takes and what the one sent is for."""
    from cityhub.auth.service import create_token
    from cityhub.org.models import Role, User

    key = _key("sharing:read,sensors:write")
    with session_scope() as s:
        district = Unit(code="SH-K", name="测试区", tier=UnitTier.DISTRICT)
        s.add(district)
        s.flush()
        user = User(username="p-operator", full_name="某人", role=Role.OPERATOR, unit_id=district.id)
        s.add(user)
        s.flush()
        token = create_token(s, user_id=user.id, name="t")[1]
    for response in (
        client.get("/api/v1/orders", headers={"X-API-Key": key}),
        client.get("/api/v1/orders", params={"api_key": key}),
    ):
        assert response.status_code == 401 and response.json()["code"] == "unauthenticated", response.text
        message = response.json()["message"]
        assert "does not take an API key" in message and "Authorization: Bearer chub_" in message, message
    in_bearer = client.get("/api/v1/orders", headers={"Authorization": f"Bearer {key}"})
    assert in_bearer.status_code == 401 and "is an API key" in in_bearer.json()["message"], in_bearer.text
    nothing = client.get("/api/v1/orders").json()["message"]
    assert "personal API token" in nothing and "does not take" not in nothing
    readings = client.post("/api/v1/sensors/readings", json={"readings": []})
    assert readings.status_code == 401 and "X-API-Key" in readings.json()["message"], readings.text

    person = client.get("/api/v1/sharing/orders", headers={"Authorization": f"Bearer {token}"})
    assert person.status_code == 403 and person.json()["code"] == "permission_denied"
    assert "does not take a personal API token" in person.json()["message"], person.text
    assert client.get("/api/v1/sharing/orders", headers={"X-API-Key": key}).status_code == 200
    assert client.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_an_administrator_reads_the_call_statistics_with_their_own_login(client: TestClient) -> None:
    """A person whose role manages the API clients reads /sharing/stats with their token, no client key; a person
    without that permission does not."""
    from cityhub.auth.service import create_token
    from cityhub.org.models import Role, User

    with session_scope() as s:
        district = Unit(code="SH-D", name="测试区", tier=UnitTier.DISTRICT)
        s.add(district)
        s.flush()
        people = {
            role: User(username=f"p-{role.value}", full_name="某人", role=role, unit_id=district.id)
            for role in (Role.ADMIN, Role.LEADER)
        }
        s.add_all(people.values())
        s.flush()
        tokens = {role: create_token(s, user_id=user.id, name="t")[1] for role, user in people.items()}
    admin = client.get("/api/v1/sharing/stats", headers={"Authorization": f"Bearer {tokens[Role.ADMIN]}"})
    assert admin.status_code == 200 and isinstance(admin.json(), list)
    leader = client.get("/api/v1/sharing/stats", headers={"Authorization": f"Bearer {tokens[Role.LEADER]}"})
    assert leader.status_code in (401, 403)
    forged = client.get("/api/v1/sharing/stats", headers={"Authorization": "Bearer chub_not-a-token"})
    assert forged.status_code in (401, 403)


def test_rate_limit_holds_across_requests(client: TestClient) -> None:
    key = _key("sharing:read", rate_limit=3)
    statuses = [
        client.get("/api/v1/sharing/aggregates/state", headers={"X-API-Key": key}).status_code for _ in range(8)
    ]
    # 3 per fixed minute: a window boundary between two calls (anywhere in the run) lets up to 3 more through.
    assert statuses[:3] == [200, 200, 200] and 3 <= statuses.count(200) <= 6 and 429 in statuses
    # Of four more calls at most three fit in one window, even if a new minute begins among them.
    calls = (client.get("/api/v1/sharing/aggregates/state", headers={"X-API-Key": key}) for _ in range(4))
    refused = next(r for r in calls if r.status_code == 429)
    assert refused.json()["code"] == "rate_limited"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60


class _ProbeBody(BaseModel):
    dimension: str


def _probe(body: _ProbeBody, _caller: SharingReader) -> dict[str, str]:
    return {"dimension": body.dimension}


def test_a_rate_limited_key_s_malformed_body_gets_429_with_retry_after(app_db: str) -> None:
    """A key over its rate limit sending a body FastAPI cannot parse: the application's answer to the malformed JSON
    lets the key's check answer first (429) — without the Retry-After every other 429 of the key carries, as only
    the metered route's own answer set it. A route taking a body behind a key, as the API's router serves it."""
    from fastapi import APIRouter, Depends, FastAPI

    from cityhub.api.deps import checked_request
    from cityhub.main import _install_error_handlers
    from cityhub.sharing.http import MeteredRoute

    router = APIRouter(prefix="/api/v1", dependencies=[Depends(checked_request)], route_class=MeteredRoute)
    router.add_api_route("/sharing/probe", _probe, methods=["POST"])

    app = FastAPI()
    _install_error_handlers(app)
    app.include_router(router)
    key = _key("sharing:read", rate_limit=1)
    with TestClient(app, raise_server_exceptions=False) as c:
        headers = {"X-API-Key": key, "Content-Type": "application/json"}
        calls = [c.post("/api/v1/sharing/probe", headers=headers, content=b'{"dimension": "state"}') for _ in range(3)]
        assert calls[0].status_code == 200 and 429 in [r.status_code for r in calls], calls[0].text
        malformed = c.post("/api/v1/sharing/probe", headers=headers, content=b'{"dimension": ')
        unknown_field = c.post("/api/v1/sharing/probe", headers=headers, content=b'{"dimension": "state", "x": 1}')
    for refused in (malformed, unknown_field):
        assert refused.status_code == 429 and refused.json()["code"] == "rate_limited", refused.text
        assert 1 <= int(refused.headers["Retry-After"]) <= 60


def test_stats_count_calls_and_errors_per_endpoint(client: TestClient) -> None:
    key = _key("sharing:read", name="stats-probe")
    for _ in range(3):
        client.get("/api/v1/sharing/aggregates/state", headers={"X-API-Key": key})
    client.get("/api/v1/sharing/aggregates/colour", headers={"X-API-Key": key})
    client.get("/api/v1/sharing/orders", params={"start": "2026-01-02T00:00:00"}, headers={"X-API-Key": key})
    stats = client.get(
        "/api/v1/sharing/stats", params={"client": "stats-probe"}, headers={"X-API-Key": _key("admin", name="ops")}
    ).json()
    today = datetime.now(SHANGHAI).date().isoformat()
    assert {(r["endpoint"], r["calls"], r["errors"]) for r in stats} == {
        ("GET /api/v1/sharing/aggregates/{dimension}", 4, 1),
        ("GET /api/v1/sharing/orders", 1, 1),
    }
    assert {r["day"] for r in stats} == {today} and {r["client"] for r in stats} == {"stats-probe"}


# --- aggregates ---------------------------------------------------------------------------------------------


def _seed_orders() -> list[dict[str, object]]:
    """Orders around a local midnight (same UTC day, two local days), in several categories, units and states."""
    with session_scope() as s:
        seed_default_taxonomy(s)
        leaves = list(s.scalars(select(Category).where(Category.level == 3).order_by(Category.code)))
        picks = [leaves[0], leaves[1], leaves[-1]]
        units = [Unit(code=f"SH-{i}", name=f"单位{i}", tier=UnitTier.DEPARTMENT) for i in range(2)]
        s.add_all(units)
        s.flush()
        midnight = datetime(2026, 3, 2, tzinfo=SHANGHAI)
        made = []
        for i in range(9):
            created = midnight + timedelta(minutes=-95 + 23 * i)
            category = picks[i % 3]
            order, _ = orders.create_order(
                s,
                data=OrderCreate(channel=Channel.WEB, content=f"诉求{i}", category_id=category.id, created_at=created),
            )
            unit = None
            if i % 2 == 0:
                unit = units[i % 4 // 2]
                orders.act(s, order_id=order.id, action=Action.DISPATCH, params={"unit_id": unit.id})
            if i % 3 == 0:
                orders.act(s, order_id=order.id, action=Action.CANCEL, params={"reason": "重复"})
            made.append(
                {
                    "day": created.astimezone(SHANGHAI).date().isoformat(),
                    "state": order.state.value,
                    "root": category.path.split("/")[0],
                    "unit": unit.name if unit else None,
                    "closed": order.state in TERMINAL_STATES,
                }
            )
        return made


def test_aggregates_by_day_state_unit_category(client: TestClient) -> None:
    made = _seed_orders()
    key = _key("sharing:read")
    period = {"start": "2026-03-01T00:00:00+08:00", "end": "2026-03-03T00:00:00+08:00"}

    def get(dimension: str) -> dict[str, object]:
        response = client.get(f"/api/v1/sharing/aggregates/{dimension}", params=period, headers={"X-API-Key": key})
        assert response.status_code == 200, response.text
        return response.json()

    by_day = get("day")
    assert {r["key"]: r["orders"] for r in by_day["rows"]} == Counter(m["day"] for m in made)
    assert len(by_day["rows"]) == 2 and by_day["total"] == len(made)
    assert {r["key"]: r["closed"] for r in by_day["rows"]} == Counter(m["day"] for m in made if m["closed"])
    assert {r["key"]: r["orders"] for r in get("state")["rows"]} == Counter(m["state"] for m in made)
    assert {r["name"]: r["orders"] for r in get("unit")["rows"]} == Counter(m["unit"] for m in made)
    assert {r["name"]: r["orders"] for r in get("category")["rows"]} == Counter(m["root"] for m in made)
    outside = client.get(
        "/api/v1/sharing/aggregates/day",
        headers={"X-API-Key": key},
        params={"start": "2026-03-05T00:00:00+08:00", "end": "2026-03-06T00:00:00+08:00"},
    )
    assert outside.json()["rows"] == [] and outside.json()["total"] == 0


def test_aggregate_period_must_be_aware(client: TestClient) -> None:
    response = client.get(
        "/api/v1/sharing/aggregates/day",
        params={"start": "2026-03-01T00:00:00"},
        headers={"X-API-Key": _key("sharing:read")},
    )
    assert response.status_code == 422 and response.json()["code"] == "validation_failed"


def test_a_period_without_a_zone_names_the_parameter_given(client: TestClient) -> None:
    response = client.get(
        "/api/v1/sharing/orders", params={"end": "2026-12-31"}, headers={"X-API-Key": _key("sharing:read")}
    )
    assert response.status_code == 422 and response.json()["details"]["field"] == "end", response.text
    assert "end must carry a time zone" in response.json()["message"]


def test_a_period_at_the_ends_of_the_calendar_is_refused_naming_it(client: TestClient) -> None:
    key = {"X-API-Key": _key("sharing:read")}
    for name, value in [("start", "0001-01-01T00:00:00+08:00"), ("end", "9999-12-31T23:59:59-08:00")]:
        response = client.get("/api/v1/sharing/orders", params={name: value}, headers=key)
        assert response.status_code == 422, response.text
        assert response.json()["details"]["errors"][0]["field"] == f"query.{name}"


# --- anonymised orders ---------------------------------------------------------------------------------------


def test_anonymised_orders_carry_no_personal_data(client: TestClient) -> None:
    name, phone, id_number = "欧阳娜娜", "13987654321", "44010619850101123X"
    with session_scope() as s:
        for i in range(3):
            orders.create_order(
                s,
                data=OrderCreate(
                    channel=Channel.HOTLINE,
                    citizen_name=name,
                    citizen_phone=phone,
                    content=f"我是{name}，身份证{id_number}，电话 139-8765-4321，座机020-83456789，"
                    f"备用１３９．８７６５．４３２１或一三九八七六五四三二一，住云景路{i + 12}号3栋501，楼下噪音{i}",
                    address=f"白云区同和街云景路{i + 12}号3栋501",
                    lat=23.21234,
                    lng=113.27891,
                ),
            )
    key = _key("sharing:read")
    response = client.get(
        "/api/v1/sharing/orders", params={"include_text": "true", "limit": 2}, headers={"X-API-Key": key}
    )
    assert response.status_code == 200
    page = response.json()
    assert len(page["items"]) == 2 and page["has_more"] is True
    text = response.text
    for secret in (name, phone, id_number, "139-8765-4321", "83456789", "3栋501", "12号", "１３９", "一三九"):
        assert secret not in text
    item = page["items"][0]
    assert item["area"] == "白云区同和街云景路" and item["lat"] == 23.21 and "楼下噪音" in item["content"]
    assert "住云景路[门牌号]" in item["content"]  # the one scrubber of cityhub.masking: the road stays
    assert not {"citizen_name", "citizen_phone", "address"} & set(item)
    rest = client.get("/api/v1/sharing/orders", params={"offset": 2}, headers={"X-API-Key": key}).json()
    assert len(rest["items"]) == 1 and rest["has_more"] is False and "content" not in rest["items"][0]


def _received(s: Session, text: str, at: datetime) -> str:
    order, _ = orders.create_order(s, data=OrderCreate(channel=Channel.HOTLINE, content=text, created_at=at))
    return order.number


def test_the_cursor_feed_gives_every_order_once_though_older_ones_arrive_meanwhile(client: TestClient) -> None:
    key = {"X-API-Key": _key("sharing:read")}
    now = datetime.now(SHANGHAI)
    with session_scope() as s:
        first = [_received(s, f"路灯不亮{i}", now - timedelta(days=2, hours=i)) for i in range(3)]
    page = client.get("/api/v1/sharing/orders", params={"cursor": "*", "limit": 2}, headers=key).json()
    seen = [item["number"] for item in page["items"]]
    assert seen == first[:2] and page["has_more"] is True
    with session_scope() as s:  # an import of past orders: received before everything harvested so far
        late = _received(s, "补录的旧工单", now - timedelta(days=20))
    while True:
        page = client.get(
            "/api/v1/sharing/orders", params={"cursor": page["next_cursor"], "limit": 2}, headers=key
        ).json()
        seen += [item["number"] for item in page["items"]]
        if not page["has_more"]:
            break
    assert seen == [*first, late]  # each once, in the order stored
    # The offset pages of the same moment shift: the late order sorts first and the second page repeats one.
    by_offset = [
        item["number"]
        for offset in (0, 2)
        for item in client.get("/api/v1/sharing/orders", params={"offset": offset, "limit": 2}, headers=key).json()[
            "items"
        ]
    ]
    assert by_offset[0] == late and by_offset.count(first[1]) == 1
    # The last cursor, kept, is where the next run begins: only what was stored since.
    kept = page["next_cursor"]
    assert client.get("/api/v1/sharing/orders", params={"cursor": kept}, headers=key).json()["items"] == []
    assert client.get("/api/v1/sharing/orders", params={"cursor": kept}, headers=key).json()["next_cursor"] == kept
    with session_scope() as s:
        newest = _received(s, "新来的工单", now - timedelta(days=90))  # outside the offset pages' default window
    again = client.get("/api/v1/sharing/orders", params={"cursor": kept}, headers=key).json()
    assert [item["number"] for item in again["items"]] == [newest] and again["next_cursor"] != kept


def test_the_changes_feed_gives_orders_changed_since(client: TestClient) -> None:
    key = {"X-API-Key": _key("sharing:read")}
    now = datetime.now(SHANGHAI)
    with session_scope() as s:
        numbers = [_received(s, f"井盖缺失{i}", now - timedelta(days=3)) for i in range(3)]
    since = datetime.now(SHANGHAI).isoformat()
    with session_scope() as s:
        changed = orders.get_order_by_number(s, number=numbers[1])
        assert changed is not None
        orders.act(s, order_id=changed.id, action=Action.CANCEL, params={"reason": "重复"})
    for params in ({"cursor": "*", "updated_since": since}, {"updated_since": since}):
        page = client.get("/api/v1/sharing/orders", params=params, headers=key).json()
        assert [(i["number"], i["state"]) for i in page["items"]] == [(numbers[1], "cancelled")], params
        assert datetime.fromisoformat(page["items"][0]["updated_at"]) >= datetime.fromisoformat(since).replace(
            microsecond=0
        )


@pytest.mark.parametrize("kept", [False, True])  # from the beginning (cursor=*), and from a kept cursor
def test_the_changes_feed_reads_the_orders_changed_since_through_their_index(
    db_session: Session, db_backend: str, kept: bool
) -> None:
    """`updated_since` had no index: at 200,000 orders every harvest of the changes scanned the table. A few orders
    changed since among thousands are now read through ``ix_orders_updated``, on both backends."""
    from sqlalchemy import insert, text

    from cityhub.workorders.models import Order
    from sql_helpers import selects_naming

    made, _ = orders.create_order(db_session, data=OrderCreate(channel=Channel.HOTLINE, content="井盖缺失"))
    db_session.flush()
    row = {c.key: getattr(made, c.key) for c in Order.__table__.columns if c.key != "id"}
    old = datetime(2024, 1, 1, tzinfo=SHANGHAI)
    db_session.execute(
        insert(Order),
        [
            {**row, "number": f"T{n:07d}", "external_id": None, "created_at": old, "updated_at": old}
            for n in range(3000)
        ],
    )
    conn = db_session.connection()
    conn.execute(text("ANALYZE"))
    cursor = feeds.encode_cursor(made.id - 1) if kept else "*"
    since = datetime.now(SHANGHAI) - timedelta(hours=1)
    with selects_naming(db_session.get_bind(), "FROM orders") as statements:
        page = sharing.anonymised_orders(db_session, cursor=cursor, updated_since=since, limit=20)
    assert [item["number"] for item in page["items"]] == [made.number]
    statement, parameters = statements[0]
    explain = "EXPLAIN QUERY PLAN" if db_backend == "sqlite" else "EXPLAIN"
    plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"{explain} {statement}", parameters))
    assert "ix_orders_updated" in plan, plan
    db_session.rollback()


def test_a_cursor_no_answer_gave_is_refused_naming_it(client: TestClient) -> None:
    key = {"X-API-Key": _key("sharing:read")}
    too_far = feeds.encode_changes_cursor(2**63, 1)  # beyond any transaction's number
    for bad in ("12", "bm9wZQ", "%%%", too_far):
        response = client.get("/api/v1/sharing/orders", params={"cursor": bad}, headers=key)
        assert response.status_code == 422 and response.json()["details"]["field"] == "cursor", response.text
        assert "is not a cursor this API gave" in response.json()["message"]
    both = client.get("/api/v1/sharing/orders", params={"cursor": "*", "offset": 5}, headers=key)
    assert both.status_code == 422 and both.json()["details"]["field"] == "offset"
    assert "offset cannot be combined with cursor" in both.json()["message"]
    naive = client.get("/api/v1/sharing/orders", params={"updated_since": "2026-03-01T00:00:00"}, headers=key)
    assert naive.status_code == 422 and naive.json()["details"]["field"] == "updated_since"


# --- the feed of changes -------------------------------------------------------------------------------------


def _harvest(client: TestClient, key: dict[str, str], cursor: str, **first: str) -> tuple[list[tuple[str, str]], str]:
    """Page a cursor feed from ``cursor`` to its end, two orders a page (``first``: parameters of the first call
    only): the (number, state) of every item in order, and the cursor a harvester keeps for its next run."""
    got: list[tuple[str, str]] = []
    params: dict[str, str | int] = {**first}
    while True:
        response = client.get("/api/v1/sharing/orders", params={**params, "cursor": cursor, "limit": 2}, headers=key)
        assert response.status_code == 200, response.text
        page = response.json()
        got += [(item["number"], item["state"]) for item in page["items"]]
        cursor = page["next_cursor"]
        params = {}
        if not page["has_more"]:
            return got, cursor


def test_the_feed_of_changes_hands_out_every_import_act_amendment_and_mark_once(
    client: TestClient, tmp_path: Path
) -> None:
    """Each way an order is stored or changed — intake, the bulk import, a life-cycle step, an amendment, the SLA
    sweep's marks (a set-based UPDATE) — moves it to the end of the feed of changes: a harvester's next run from its
    kept cursor gets exactly the orders touched since, as they are now."""
    from cityhub.cli import _mount, app
    from cityhub.workorders.scheduled import sla_sweep

    key = {"X-API-Key": _key("sharing:read")}
    now = datetime.now(SHANGHAI)
    with session_scope() as s:
        first, second = (_received(s, f"路灯不亮{i}", now - timedelta(days=2, hours=i)) for i in range(2))
    everything, kept = _harvest(client, key, "*", feed="changes")
    assert everything == [(first, "received"), (second, "received")]
    nothing, kept = _harvest(client, key, kept)
    assert nothing == []  # nothing since

    csv_path = tmp_path / "past.csv"  # past orders imported: received long before everything harvested so far
    csv_path.write_text("留言编号,留言用户,留言主题,留言时间,留言详情\n9001,U1,旧工单,2019/1/8 10:20:30,补录的旧工单\n")
    _mount()
    imported = CliRunner().invoke(app, ["import", "orders", str(csv_path), "--json"])
    assert imported.exit_code == 0, imported.output
    got, kept = _harvest(client, key, kept)
    assert len(got) == 1 and got[0][0] not in (first, second), got
    past = got[0][0]

    with session_scope() as s:  # a life-cycle step (the ORM's UPDATE)
        order = orders.get_order_by_number(s, number=first)
        assert order is not None
        unit = Unit(code="FEED-1", name="城管科", tier=UnitTier.DEPARTMENT)
        s.add(unit)
        s.flush()
        orders.act(s, order_id=order.id, action=Action.DISPATCH, params={"unit_id": unit.id})
    got, kept = _harvest(client, key, kept)
    assert got == [(first, "dispatched")]

    with session_scope() as s:  # an amendment
        order = orders.get_order_by_number(s, number=past)
        assert order is not None
        orders.amend(s, order=order, changes={"address": "白云区同和街云景路"}, actor=orders.SYSTEM, text="补地址")
    got, kept = _harvest(client, key, kept)
    assert got == [(past, "received")]

    with session_scope() as s:  # the sweep's marks: one UPDATE … WHERE for every order they fall on
        marked = sla_sweep(s, now=datetime.now(SHANGHAI) + timedelta(days=400))
    assert marked["overdue"] + marked["accept_overdue"] >= 1, marked
    got, kept = _harvest(client, key, kept)
    assert got == [(first, "dispatched")]
    item = client.get("/api/v1/sharing/orders", params={"cursor": "*", "feed": "changes"}, headers=key).json()
    assert [i["number"] for i in item["items"]] == [second, past, first]  # each once, by its last change
    assert _harvest(client, key, kept)[0] == []


@pytest.mark.parametrize("change", ["store", "update"])
def test_the_feed_of_changes_never_passes_an_order_whose_transaction_commits_late(
    client: TestClient, db_backend: str, change: str
) -> None:
    """PostgreSQL: one transaction stores (or changes) an order and stays open while a second stores (changes)
    another and commits. A reader paging meanwhile must not pass the first: by the order id (the feed of new orders)
    it handed out the second, kept a cursor beyond the first, and never gave the first once it committed; by the
    time of the change (``updated_since``) a change committed more than the harvester's overlap after it was stamped
    was missed. The feed of changes hands out what settled before the open transaction, holds the rest back, and
    gives both once the first commits."""
    if db_backend == "sqlite":
        pytest.skip("SQLite has one writer at a time: no transaction commits while an earlier one is open")
    key = {"X-API-Key": _key("sharing:read")}
    now = datetime.now(SHANGHAI)
    check_late_commit_is_held_back(
        change=change,
        begin=lambda: _harvest(client, key, "*", feed="changes"),
        poll=lambda cursor: _harvest(client, key, cursor),
        received=lambda s, text, days: _received(s, text, now - timedelta(days=days)),
    )


@pytest.mark.parametrize("kept", [False, True])  # from the beginning (cursor=*), and from a kept cursor
def test_the_feed_of_changes_reads_the_orders_through_its_index(
    db_session: Session, db_backend: str, kept: bool
) -> None:
    """A page of the feed of changes is read in ``(changed_xid, id)`` order through ``ix_orders_changed`` from the
    cursor's position, on both backends, not by sorting every order changed since."""
    from sqlalchemy import insert, text

    from cityhub.workorders.models import Order
    from sql_helpers import selects_naming

    made, _ = orders.create_order(db_session, data=OrderCreate(channel=Channel.HOTLINE, content="井盖缺失"))
    db_session.flush()
    row = {c.key: getattr(made, c.key) for c in Order.__table__.columns if c.key not in ("id", "changed_xid")}
    old = datetime(2024, 1, 1, tzinfo=SHANGHAI)
    for batch in range(3):  # three transactions: the orders at three positions of the feed
        db_session.execute(
            insert(Order),
            [
                {**row, "number": f"T{batch}{n:06d}", "external_id": None, "created_at": old, "updated_at": old}
                for n in range(1000)
            ],
        )
        db_session.commit()
    conn = db_session.connection()
    conn.execute(text("ANALYZE"))
    cursor = "*"
    if kept:
        changed_xid, order_id = db_session.execute(
            select(Order.changed_xid, Order.id).order_by(Order.changed_xid.desc(), Order.id.desc()).offset(20)
        ).first() or (0, 0)
        cursor = feeds.encode_changes_cursor(changed_xid, order_id)
    with selects_naming(db_session.get_bind(), "FROM orders") as statements:
        page = sharing.anonymised_orders(db_session, cursor=cursor, feed="changes", limit=20)
    assert len(page["items"]) == 20 and page["has_more"] is (not kept)
    if not kept:
        assert page["items"][0]["number"] == made.number  # stored first
    statement, parameters = statements[0]
    explain = "EXPLAIN QUERY PLAN" if db_backend == "sqlite" else "EXPLAIN"
    plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"{explain} {statement}", parameters))
    assert "ix_orders_changed" in plan and "TEMP B-TREE" not in plan and "Sort" not in plan, plan
    db_session.rollback()


def test_a_cursor_of_one_feed_is_refused_with_the_other_naming_feed(client: TestClient) -> None:
    key = {"X-API-Key": _key("sharing:read")}
    with session_scope() as s:
        _received(s, "路灯不亮", datetime.now(SHANGHAI))
    by_id = client.get("/api/v1/sharing/orders", params={"cursor": "*"}, headers=key).json()["next_cursor"]
    by_change = client.get("/api/v1/sharing/orders", params={"cursor": "*", "feed": "changes"}, headers=key).json()
    for cursor, feed in ((by_id, "changes"), (by_change["next_cursor"], "new")):
        response = client.get("/api/v1/sharing/orders", params={"cursor": cursor, "feed": feed}, headers=key)
        assert response.status_code == 422 and response.json()["details"]["field"] == "feed", response.text
        assert "is a position in the feed of" in response.json()["message"]
    # A cursor says its feed: the feed of changes' goes on without feed=changes, the old ones as they always did.
    for cursor, walked in ((by_id, feeds.NEW), (by_change["next_cursor"], feeds.CHANGES)):
        again = client.get("/api/v1/sharing/orders", params={"cursor": cursor}, headers=key).json()
        assert again["items"] == [] and feeds.decode_position(again["next_cursor"])[0] == walked
    # A position no transaction of this database has reached: a cursor kept across a restore into another server.
    ahead = feeds.encode_changes_cursor(2**62, 1)
    response = client.get("/api/v1/sharing/orders", params={"cursor": ahead}, headers=key)
    assert response.status_code == 422 and response.json()["details"]["field"] == "cursor", response.text
    assert "is ahead of every change this database holds" in response.json()["message"]
    alone = client.get("/api/v1/sharing/orders", params={"feed": "changes"}, headers=key)
    assert alone.status_code == 422 and alone.json()["details"]["field"] == "cursor"
    assert "begin it with cursor=*" in alone.json()["message"]
    unknown = client.get("/api/v1/sharing/orders", params={"cursor": "*", "feed": "all"}, headers=key)
    assert unknown.status_code == 422 and "feed" in unknown.text


def test_db_upgrade_brings_orders_restored_from_another_server_back_into_the_feed_of_changes(
    client: TestClient, cli_run
) -> None:
    """Orders restored (``pg_restore``) into another server keep their old change numbers, which that server's
    transactions have not reached: on PostgreSQL they wait out of the feed until the ids catch up, on SQLite (a
    counter made again lower) the next changes are numbered below them and a harvester past them misses those.
    ``cityhub db upgrade``, a step of every restore, numbers them again; a second run finds nothing to do."""
    from sqlalchemy import text

    from cityhub.workorders import changes
    from cityhub.workorders.models import Order

    key = {"X-API-Key": _key("sharing:read")}
    now = datetime.now(SHANGHAI)
    with session_scope() as s:
        restored = _received(s, "小区路灯不亮", now - timedelta(days=1))
        _received(s, "井盖缺失", now - timedelta(hours=2))
    with session_scope() as s:  # as a dump from a server with higher transaction ids leaves it
        if s.get_bind().dialect.name == "sqlite":
            s.execute(text(f"UPDATE orders SET changed_xid = changed_xid + 1000000 WHERE number = '{restored}'"))
        else:
            s.execute(text(f"ALTER TABLE orders DISABLE TRIGGER {changes.PG_TRIGGER}"))
            s.execute(text(f"UPDATE orders SET changed_xid = changed_xid + 1000000 WHERE number = '{restored}'"))
            s.execute(text(f"ALTER TABLE orders ENABLE TRIGGER {changes.PG_TRIGGER}"))
    with session_scope() as s:
        assert changes.beyond_every_transaction(s, s.scalar(select(Order.changed_xid).where(Order.number == restored)))
    code, out, err = cli_run("db", "upgrade")
    assert code == 0 and "1 orders restored from another server numbered again" in out, err
    with session_scope() as s:
        assert not changes.beyond_every_transaction(
            s, s.scalar(select(Order.changed_xid).where(Order.number == restored))
        )
        later = _received(s, "路面塌陷", now)
    got, _ = _harvest(client, key, "*", feed="changes")
    numbers = [number for number, _ in got]
    assert sorted(numbers) == sorted(set(numbers)) and restored in numbers and later in numbers
    assert numbers.index(restored) < numbers.index(later)  # the next change comes after it, none below it
    code, out, _ = cli_run("db", "upgrade")
    assert code == 0 and "numbered again" not in out


def test_the_scopes_option_names_every_scope_a_key_may_have() -> None:
    """`apikey create --help` listed open311:write, sharing:read and admin; sensors:write, which the monitoring
    readings need (README), was missing, so an operator could not learn it from the command line."""
    import typer

    commands = typer.main.get_command(apikey_cli).commands  # type: ignore[attr-defined]
    for name in ("create", "scopes"):
        (option,) = [p for p in commands[name].params if p.name == "scopes"]
        assert all(scope in (option.help or "") for scope in sharing.SCOPES), (name, option.help)
