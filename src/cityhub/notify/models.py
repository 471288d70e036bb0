"""Outbox messages and notification subscriptions.

Fan-out happens at enqueue time: one outbox row per (event, matching subscription), so every receiver has its
own status, attempts and backoff, and a slow or broken receiver never delays or re-sends to the others.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cityhub.db import Base, utcnow
from cityhub.org.models import Unit, _enum


class Topic(enum.StrEnum):
    DISPATCH = "dispatch"  # 派单 (also transfer, reopen, a leader's assignment that dispatches)
    WARNING = "warning"  # 预警
    OVERDUE = "overdue"  # 超期
    REPLY = "reply"  # 答复
    CALLBACK = "callback"  # 回访
    # 时限调整: a running deadline moved after a calendar or time-limit edit (sla_recompute) or an urgency raise
    DEADLINE = "deadline"
    ALARM = "alarm"  # 监测报警: a sensor's alarm was raised (monitoring), with its order when the rule opens one
    # 报警解除: a sensor's alarm was cleared — its readings recovered, or a person, a retirement or a rule's
    # deactivation cleared it — with its order as it is then (since December 2026; subscribed apart from ``alarm``)
    ALARM_CLEARED = "alarm_cleared"
    MATERIAL = "material"  # 补充材料: the citizen added files to their open appeal
    MERGED = "merged"  # 并入诉求: another appeal, a duplicate, was merged into the order (its ``merged_in`` event)
    # 市民通知: the citizen who appealed is told their appeal was answered or closed, in a text message's words, with
    # their phone — for the district's SMS relay (``notify.service.on_citizen_step``)
    CITIZEN = "citizen"
    # 办结: the order's handling ended — closed (办结, resolved or not; a consultation answered at once, 秒回, too),
    # cancelled (作废) or merged into another (合并) — for a system following results (since 7 December 2026)
    CLOSE = "close"
    # 交办逾期: the 限期办结 a leader gave with 交办 passed with the order open (the SLA sweep's ``assign_overdue``
    # mark, since December 2026; its own topic, so ``overdue``'s subscribers hear no more than before)
    ASSIGN_OVERDUE = "assign_overdue"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"  # never tried
    SENDING = "sending"  # claimed by a worker until ``claimed_until``
    SENT = "sent"
    FAILED = "failed"  # the last attempt failed; tried again at ``next_attempt_at``
    DEAD = "dead"  # out of attempts or undeliverable; ``cityhub notify outbox retry`` revives it


class Subscription(Base):
    """A receiver of notifications: which topics, optionally only for orders concerning one unit."""

    __tablename__ = "notify_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Name of the sender in the registry (``webhook``; ``sms``, ``wecom``, ``dingtalk`` are plug-in points).
    kind: Mapped[str] = mapped_column(String(20), default="webhook")
    target: Mapped[str] = mapped_column(String(500))  # URL for webhooks, phone / robot key for the others
    # Kept in clear because signing needs it; shown once when the subscription is created.
    secret: Mapped[str | None] = mapped_column(String(128))
    # Comma-framed topic list (",dispatch,warning,") so that a portable LIKE matches one topic in SQL.
    events: Mapped[str] = mapped_column(String(200))
    # Only orders whose lead unit, street or community is this unit; NULL = every order.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id", ondelete="CASCADE"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    unit: Mapped[Unit | None] = relationship()

    @property
    def topics(self) -> list[str]:
        return [t for t in self.events.split(",") if t]


class OutboxMessage(Base):
    """One notification for one subscription, written in the transaction of the change it reports."""

    __tablename__ = "notify_outbox"
    __table_args__ = (Index("ix_notify_outbox_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    topic: Mapped[Topic] = mapped_column(_enum(Topic, "notify_topic"))
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("notify_subscriptions.id", ondelete="CASCADE"), index=True)
    # What happened, as of the change (action, states, actor, mark …); the order itself is rendered at send time.
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus, "notify_status"), default=OutboxStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(80))
    claimed_until: Mapped[datetime | None] = mapped_column()
    # When its last attempt ended — for a failed or dead message, when its delivery failed (the 推送订阅 page's
    # 最近失败); None before its first attempt, and for the messages attempted before migration 0049.
    attempted_at: Mapped[datetime | None] = mapped_column()
    sent_at: Mapped[datetime | None] = mapped_column()

    subscription: Mapped[Subscription] = relationship()


# A notice no one has read yet: the bell's count and the 未读 list read this partial index (migration 0056).
UNREAD_NOTICE_SQL = "read_at IS NULL"


class NoticeKind(enum.StrEnum):
    """What a staff notice (消息提醒) tells its reader (``cityhub.notify.notices``); its text is the locale key
    ``notice.kind.<kind>`` filled with the notice's ``params`` and the order's number and title."""

    DISPATCHED = "dispatched"  # 派单: an order sent to the reader's unit
    TRANSFERRED = "transferred"  # 转派 / 下派: an order passed on to the reader's unit
    REOPENED = "reopened"  # 重办: an order sent back to the reader's unit for another round
    ASSIGNED = "assigned"  # 领导交办: a leader assigned the order to the reader's unit (or instructed it)
    ASSIST_REQUESTED = "assist_requested"  # 协办: the reader's unit is asked to assist on an order
    URGED = "urged"  # 催办: the order the reader's unit leads was urged
    # 批量催办: several orders the reader's unit leads urged at once, one notice for them all (no ``order_id``; the
    # orders' ids and how many in ``params``: ``order_ids``, ``count``)
    URGED_BULK = "urged_bulk"
    # 批量派单: several orders dispatched to the reader's unit at once, one notice for them all (as ``urged_bulk``:
    # no ``order_id``, ``order_ids`` and ``count`` in ``params``), leading to the unit's orders to sign for
    DISPATCHED_BULK = "dispatched_bulk"
    EXTENSION_REQUESTED = "extension_requested"  # 申请延期: for the supervisors to decide
    EXTENSION_APPROVED = "extension_approved"  # 延期批准
    EXTENSION_REJECTED = "extension_rejected"  # 延期驳回
    RETURNED = "returned"  # 退单: an order came back to the dispatchers to route again
    REPLY_REJECTED = "reply_rejected"  # 退回答复: the unit's reply sent back for rework
    ALARM_RAISED = "alarm_raised"  # 监测报警 in the reader's unit's area
    ALARM_ESCALATED = "alarm_escalated"  # an alarm not acknowledged in time, escalated
    EXEMPTION_APPROVED = "exemption_approved"  # 考核核减 request approved
    EXEMPTION_REJECTED = "exemption_rejected"  # 考核核减 request rejected
    ASSIGNED_REPLIED = "assigned_replied"  # 领导交办: the order the reader (a leader) assigned was answered (答复)
    ASSIGNED_CLOSED = "assigned_closed"  # 领导交办: the order the reader (a leader) assigned was closed (办结)
    ASSIGNED_CANCELLED = "assigned_cancelled"  # 领导交办: … cancelled (作废), with why
    ASSIGNED_MERGED = "assigned_merged"  # 领导交办: … merged (合并) into another order, named
    EXEMPTION_REVOKED = "exemption_revoked"  # 撤销核减: the approval of the request taken back
    # 领导交办's 限期办结 passed with the order open (the SLA sweep's ``assign_overdue`` mark): to the unit leading it …
    ASSIGN_OVERDUE = "assign_overdue"
    ASSIGNED_OVERDUE = "assigned_overdue"  # … and to the leader who assigned it


class UserNotice(Base):
    """One staff member's notice (消息提醒) of an event that needs them, written in the event's transaction."""

    __tablename__ = "user_notices"
    __table_args__ = (
        Index("ix_user_notices_user", "user_id", "id"),
        Index(
            "ix_user_notices_unread",
            "user_id",
            "id",
            sqlite_where=text(UNREAD_NOTICE_SQL),
            postgresql_where=text(UNREAD_NOTICE_SQL),
        ),
        Index("ix_user_notices_read_at", "read_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))  # a NoticeKind
    order_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    alarm_id: Mapped[int | None] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), ForeignKey("alarms.id", ondelete="CASCADE"), index=True
    )
    # What the text says beyond the order's number and title: who acted, the sensor, the days granted …
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column()
