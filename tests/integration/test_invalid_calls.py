"""无效来电 (``intake.invalid_calls``): recorded one by one, counted per kind and per operator for a period — all of
them, or a scope's units' — and read by ``cityhub analytics invalid-calls``, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from cityhub.analytics.kpi import parse_period
from cityhub.config import get_settings
from cityhub.db import session_scope, utcnow
from cityhub.errors import ValidationFailed
from cityhub.intake import invalid_calls
from cityhub.intake.models import InvalidCall
from cityhub.org.models import Role, Unit, UnitTier, User


def _local_today() -> date:
    return utcnow().astimezone(get_settings().tz).date()


def _desk(s):
    """A district with a street; an operator at the district's desk and one at the street's: their ids and units."""
    district = Unit(code="IC-D", name="测试区", tier=UnitTier.DISTRICT)
    s.add(district)
    s.flush()
    street = Unit(code="IC-S", name="测试街道", tier=UnitTier.STREET, parent_id=district.id)
    s.add(street)
    s.flush()
    a = User(username="ic-a", full_name="甲话务", role=Role.OPERATOR, unit_id=district.id)
    b = User(username="ic-b", full_name="乙话务", role=Role.OPERATOR, unit_id=street.id)
    s.add_all([a, b])
    s.flush()
    return a, b, district, street


def test_invalid_calls_are_counted_per_kind_and_per_operator_for_a_period(db_session) -> None:
    s = db_session
    a, b, _, street = _desk(s)
    for kind, who in (("hang_up", a), ("hang_up", a), ("wrong_number", a), ("silent", b), ("hang_up", b)):
        invalid_calls.record(s, kind=kind, user_id=who.id, unit_id=who.unit_id, phone="13800001111")
    # one of last year: outside the period
    old = invalid_calls.record(s, kind="harassment", user_id=a.id, unit_id=a.unit_id, phone="12-ab")
    old.created_at = utcnow() - timedelta(days=400)
    s.flush()
    assert old.citizen_phone is None  # not a phone number: counted without one
    today = _local_today()
    period = parse_period(f"{today - timedelta(days=2)}..{today}")
    counted = invalid_calls.tally(s, period=period)
    assert counted.total == 5
    assert counted.by_kind == {
        "hang_up": 3,
        "silent": 1,
        "harassment": 0,
        "wrong_number": 1,
        "transferred": 0,
        "other": 0,
    }
    assert [(o.name, o.total, o.by_kind) for o in counted.operators] == [
        ("甲话务", 3, {"hang_up": 2, "wrong_number": 1}),
        ("乙话务", 2, {"silent": 1, "hang_up": 1}),
    ]
    street_only = invalid_calls.tally(s, period=period, units=[street.id])
    assert street_only.total == 2 and [o.name for o in street_only.operators] == ["乙话务"]
    with pytest.raises(ValidationFailed) as refused:
        invalid_calls.record(s, kind="moon", user_id=a.id, unit_id=a.unit_id)
    assert refused.value.details == {"field": "kind"}


def test_the_cli_counts_a_periods_invalid_calls(app_db, cli_run) -> None:
    with session_scope() as s:
        a, b, _, _ = _desk(s)
        invalid_calls.record(s, kind="transferred", user_id=a.id, unit_id=a.unit_id)
        invalid_calls.record(s, kind="transferred", user_id=b.id, unit_id=b.unit_id)
        invalid_calls.record(s, kind="other", user_id=b.id, unit_id=b.unit_id)
        assert s.query(InvalidCall).count() == 3
    month = _local_today().isoformat()[:7]
    code, out, _ = cli_run("analytics", "invalid-calls", "--period", month, "--format", "json")
    assert code == 0, out
    result = json.loads(out)
    assert result["total"] == 3 and result["by_kind"]["transferred"] == 2
    assert {o["name"]: o["total"] for o in result["by_operator"]} == {"甲话务": 1, "乙话务": 2}
    code, out, _ = cli_run("analytics", "invalid-calls", "--period", month)
    assert code == 0 and "3 invalid calls" in out and "乙话务: 2" in out
    code, _, err = cli_run("analytics", "invalid-calls", "--period", "moon")
    assert code != 0 and "period" in err
