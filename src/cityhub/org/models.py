"""Units (district, street/town, community, departments, sub-centres) and the people who work in them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Enum, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cityhub.db import Base, utcnow


class UnitTier(enum.StrEnum):
    """Administrative tier of a unit. 市 / 区 / 镇街 / 村社, plus functional departments and sub-centres."""

    CITY = "city"
    DISTRICT = "district"
    STREET = "street"  # 街道 / 镇 (town)
    COMMUNITY = "community"  # 社区居委会 / 村委会
    DEPARTMENT = "department"  # 职能部门
    SUBCENTRE = "subcentre"  # 分中心


class Role(enum.StrEnum):
    OPERATOR = "operator"  # 话务员
    DISPATCHER = "dispatcher"  # 派单员
    HANDLER = "handler"  # 承办人
    # 网格员: patrols the grid of a community (or street), reports what they find on the spot from a phone, with
    # photos (channel grid), and works their unit's orders as its handlers do (小事不出村: 自处置).
    INSPECTOR = "inspector"
    SUPERVISOR = "supervisor"  # 督办员
    LEADER = "leader"  # 领导
    ADMIN = "admin"
    CITIZEN = "citizen"


def _enum(e: type[enum.Enum], name: str) -> Enum:
    return Enum(e, name=name, native_enum=False, length=20, values_callable=lambda x: [m.value for m in x])


class Unit(Base):
    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    name: Mapped[str] = mapped_column(String(120), index=True)
    short_name: Mapped[str | None] = mapped_column(String(60))
    # The English name an English page shows (cityhub.localnames), when set; `name` stays the name of record.
    name_en: Mapped[str | None] = mapped_column(String(200))
    tier: Mapped[UnitTier] = mapped_column(_enum(UnitTier, "unit_tier"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"), index=True)
    # GeoJSON geometry (Polygon / MultiPolygon) of the unit's area, when known.
    boundary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # [{"name": ..., "phone": ..., "email": ..., "role": ...}]
    contacts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    # Duties / keywords of a department, used by routing and shown to dispatchers.
    duties: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped[Unit | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Unit]] = relationship(back_populates="parent")

    def __repr__(self) -> str:
        return f"<Unit {self.code} {self.name} {self.tier.value}>"


class User(Base):
    """A person with one role in one unit (citizens have no unit)."""

    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("username"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    full_name: Mapped[str] = mapped_column(String(80))
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="RESTRICT"), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    # The phone number as its owner proved it with a code sent to it (``cityhub.auth.phone``): the account's phone is
    # verified while ``phone`` still is this number — a change of ``phone`` by any path leaves it unverified.
    phone_verified: Mapped[str | None] = mapped_column(String(32))
    phone_verified_at: Mapped[datetime | None] = mapped_column()
    email: Mapped[str | None] = mapped_column(String(120))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # An administrator's lock (cityhub users lock): no login, session or API token while it lasts. A lockout after
    # failed password logins is another thing, kept per login name in auth.models.LoginLockout.
    locked_until: Mapped[datetime | None] = mapped_column()
    # The single sign-on identity this account is bound to: the provider's issuer and the person's subject
    # ("<iss> <sub>", auth.oidc.identity_of), set at its first sign-on; from then on only that identity signs on as
    # the account, whatever username the provider sends. None: not bound yet (cityhub users unlink-sso clears it).
    sso_identity: Mapped[str | None] = mapped_column(String(400), index=True, unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    unit: Mapped[Unit | None] = relationship()

    @property
    def verified_phone(self) -> str | None:
        """The account's phone if its owner verified it (and it has not changed since), else None."""
        return verified_phone(self.phone, self.phone_verified)

    def __repr__(self) -> str:
        return f"<User {self.username} {self.role.value}>"


def verified_phone(phone: str | None, phone_verified: str | None) -> str | None:
    """``phone`` when it is the number that was verified (``User.phone_verified``), else None: a phone that changed
    after its verification is unverified whatever changed it."""
    return phone if phone and phone == phone_verified else None


class AliasKind(enum.StrEnum):
    """What a place alias (地名别名) names."""

    LANDMARK = "landmark"  # 地标: 大学城, 生物岛, 南方医院
    ROAD = "road"  # 道路: 石井大道 (石井大道88号)
    OLD_NAME = "old_name"  # 旧称: a former name still in use
    OTHER = "other"  # 其他


class UnitAlias(Base):
    """A name the district's address library (地名库) gives a street or community besides its official ones: the
    database's gazetteer reads it as a name of that unit (:mod:`cityhub.org.aliases`). One alias may name several
    units only where an administrator said so: it is then ambiguous between them."""

    __tablename__ = "unit_aliases"
    __table_args__ = (UniqueConstraint("alias", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # As the resolver matches names (cityhub.nlp.address.normalise: NFKC, simplified, no whitespace).
    alias: Mapped[str] = mapped_column(String(60), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    kind: Mapped[AliasKind] = mapped_column(_enum(AliasKind, "alias_kind"))
    created_by: Mapped[str] = mapped_column(String(80))
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    unit: Mapped[Unit] = relationship()

    def __repr__(self) -> str:
        return f"<UnitAlias {self.alias} → {self.unit_id} {self.kind.value}>"
