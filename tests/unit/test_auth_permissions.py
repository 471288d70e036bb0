"""Pure parts of identity: password hashing, the permission table, masking decisions, scope clauses."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql

from cityhub.auth import passwords, permissions
from cityhub.auth.principal import Principal
from cityhub.auth.scope import Scope, sees_personal_data
from cityhub.errors import ValidationFailed
from cityhub.org.models import Role, UnitTier
from cityhub.workorders.lifecycle import Action
from cityhub.workorders.models import Order


def test_argon2_hash_verifies_only_the_right_password():
    digest = passwords.hash_password("long-enough-secret")
    assert digest.startswith("$argon2id$") and "long-enough-secret" not in digest
    assert passwords.verify_password(digest, "long-enough-secret")
    assert not passwords.verify_password(digest, "long-enough-secreT")
    assert not passwords.verify_password(None, "anything")
    assert not passwords.verify_password("not-a-hash", "anything")


@pytest.mark.parametrize("weak", ["short", "aaaaaaaaaaaaaa", "abababababab"])
def test_weak_passwords_are_refused(weak):
    with pytest.raises(ValidationFailed):
        passwords.check_strength(weak)


def test_generated_passwords_are_strong_and_distinct():
    made = {passwords.generate_password() for _ in range(20)}
    assert len(made) == 20
    for password in made:
        passwords.check_strength(password)


def test_every_action_has_a_role_besides_admin_and_admin_has_all():
    for action in Action:
        if action == Action.CREATE:
            continue
        holders = set(permissions.roles_with(permissions.act(action)))
        assert Role.ADMIN in holders and holders - {Role.ADMIN}, action
    assert permissions.ROLE_PERMISSIONS[Role.ADMIN] == permissions.ALL_PERMISSIONS
    assert not permissions.allows(Role.CITIZEN, permissions.act(Action.DISPATCH))
    assert permissions.allows(Role.CITIZEN, permissions.act(Action.CALLBACK))
    assert not permissions.allows(Role.OPERATOR, permissions.USERS_MANAGE)


def _principal(role: Role, unit_id: int | None = 7, user_id: int = 1) -> Principal:
    tier = UnitTier.DEPARTMENT if unit_id else None
    return Principal(user_id, "u", "U", role, unit_id, tier, "token", 1)


@pytest.mark.parametrize(
    ("role", "lead", "citizen", "unmasked"),
    [
        (Role.OPERATOR, 3, 9, True),
        (Role.DISPATCHER, 3, 9, True),
        (Role.SUPERVISOR, 3, 9, True),
        (Role.ADMIN, 3, 9, True),
        (Role.LEADER, 7, 9, False),
        (Role.HANDLER, 7, 9, True),  # its own unit leads the order
        (Role.HANDLER, 3, 9, False),  # assisting or merely in scope
        (Role.CITIZEN, 3, 1, True),  # their own appeal
        (Role.CITIZEN, 3, 9, False),
    ],
)
def test_who_sees_personal_data(role, lead, citizen, unmasked):
    order = Order(lead_unit_id=lead, citizen_user_id=citizen)
    assert sees_personal_data(_principal(role, None if role == Role.CITIZEN else 7), order) is unmasked


def test_scope_clauses():
    assert Scope(everything=True).clause() is None
    # Staff without a unit: a clause that matches nothing.
    assert str(Scope().clause().compile(dialect=postgresql.dialect())) == "false"
    citizen = str(Scope(citizen_user_id=5).clause().compile(compile_kwargs={"literal_binds": True}))
    assert "citizen_user_id = 5" in citizen
    street = str(
        Scope(units=frozenset({1, 2}), streets=frozenset({1}), communities=frozenset({2}))
        .clause()
        .compile(compile_kwargs={"literal_binds": True})
    )
    for part in (
        "lead_unit_id IN (1, 2)",
        "order_assists.unit_id IN (1, 2)",
        "street_id IN (1)",
        "community_id IN (2)",
    ):
        assert part in street
