"""无效来电: a call to the hotline that became no appeal — the caller hung up or said nothing, a prank or abusive call,
a wrong number, a call put through to another hotline — recorded from the intake desk so that the day's statistics
count it (:mod:`cityhub.intake.invalid_calls`)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from cityhub.db import Base, utcnow


class InvalidCallKind(enum.StrEnum):
    """What kind of call it was (the hotline centres' own categories of 无效来电)."""

    HANG_UP = "hang_up"  # 挂断
    SILENT = "silent"  # 无声
    HARASSMENT = "harassment"  # 骚扰
    WRONG_NUMBER = "wrong_number"  # 打错
    TRANSFERRED = "transferred"  # 转接其他热线 (110, 119, 95598 …)
    OTHER = "other"  # 其他


class InvalidCall(Base):
    """One invalid call: its kind, the caller's phone if the operator had typed one, who took it (and their unit,
    as it was then: the count of a street's desk stays its own) and when."""

    __tablename__ = "invalid_calls"
    __table_args__ = (
        Index("ix_invalid_calls_created_at", "created_at"),
        Index("ix_invalid_calls_user", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # an InvalidCallKind
    citizen_phone: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
