"""Who is calling: the authenticated user, how they authenticated, and the Actor the services record."""

from __future__ import annotations

from dataclasses import dataclass

from cityhub.org.models import Role, UnitTier
from cityhub.workorders.service import Actor


@dataclass(frozen=True)
class Principal:
    user_id: int
    username: str
    full_name: str
    role: Role
    unit_id: int | None
    unit_tier: UnitTier | None
    method: str  # "session" | "token"
    credential_id: int  # the AuthSession or ApiToken row
    csrf_token: str | None = None
    # A citizen's phone as they verified it on their account (``auth.phone``): the appeals registered with that number
    # are theirs too (``auth.scope``). None: none verified, or not a citizen.
    verified_phone: str | None = None

    @property
    def actor(self) -> Actor:
        """The audit trail records the real person, their unit and role."""
        return Actor(name=self.full_name[:80], user_id=self.user_id, unit_id=self.unit_id, role=self.role.value)
