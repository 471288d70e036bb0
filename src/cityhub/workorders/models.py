"""Work orders, their audit trail, co-handling units, attachments, categories, SLA rules and the calendar."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    FetchedValue,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy import event as sa_event
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.functions import FunctionElement

from cityhub.db import Base, utcnow
from cityhub.intake import enterprise
from cityhub.org.models import Unit, _enum
from cityhub.workorders.lifecycle import HANDLING_STATES, OPEN_STATES, AssistStatus, State

# Orders whose clock runs, as literal SQL: the partial indexes below and the SLA sweep share this exact text, which
# is what lets SQLite use a partial index (its predicate must appear in the query as written).
RUNNING_CLOCK_SQL = "state IN ({})".format(", ".join(f"'{s.value}'" for s in sorted(HANDLING_STATES)))
DISPATCHED_SQL = f"state = '{State.DISPATCHED.value}'"
# Orders never looked for among the units (bulk import, orders from before placement at intake): the placing job's.
UNPLACED_SQL = "place_source IS NULL AND street_id IS NULL AND community_id IS NULL"
# Orders whose extension request waits for a supervisor (the order list's filter; SQLite stores booleans as 0/1).
EXTENSION_PENDING_SQLITE = "extension_pending = 1"
EXTENSION_PENDING_PG = "extension_pending"
# The orders not accepted within the time allowed (签收超时), as the list's filter reads them (migration 0030).
ACCEPT_OVERDUE_SQLITE = "accept_overdue = 1"
ACCEPT_OVERDUE_PG = "accept_overdue"
# The orders raised to a higher level (已升级) and those a leader assigned (领导交办): the list's filters and quick
# views, as literal SQL so that both backends see the partial indexes' predicates in the query (migration 0047).
ESCALATED_SQL = "escalation_level > 0"
LEADER_ASSIGNED_SQLITE = "leader_assigned = 1"
LEADER_ASSIGNED_PG = "leader_assigned"
# The open orders (``lifecycle.OPEN_STATES``) as literal SQL, the predicate of the partial index
# ix_orders_open_sla (migration 0036).
OPEN_SQL = "state IN ({})".format(", ".join(f"'{s.value}'" for s in sorted(OPEN_STATES)))
# 超期 as a supervisor means it: the open orders past their time limit now (the dashboard's and the one map's
# overdue count, the order list's ``overdue``). A closed order keeps its last status, so ``sla_status`` alone also
# holds every order ever closed late. Written so that SQLite reads ix_orders_open_sla (an index of the open orders
# only) rather than ix_orders_sla_created, whose overdue entries are mostly closed orders.
OVERDUE_NOW_SQL = f"sla_status = 'overdue' AND {OPEN_SQL}"
# 曾超期: every order that ran out of a time limit, whichever unit held it then (``first_overdue_at``, migration 0039).
EVER_OVERDUE_SQL = "first_overdue_at IS NOT NULL"
# The orders an import created (``import_batch_id``, migration 0042): the predicate of the partial index the order
# list's batch filter reads (orders received one by one are not in it).
IMPORTED_SQL = "import_batch_id IS NOT NULL"


class Channel(enum.StrEnum):
    HOTLINE = "hotline"  # 12345 热线
    WEB = "web"
    APP = "app"
    MAILBOX = "mailbox"  # 市长/区长直通车
    GRID = "grid"  # 网格员
    ENTERPRISE = "enterprise"  # 企业呼
    OPINION = "opinion"  # 网络舆情
    SENSOR = "sensor"
    VIDEO_AI = "video_ai"
    IMPORT = "import"


# Channels on which a machine files the order (a sensor's alarm, a camera's detection), not a person. Their
# attachments link into the district's own systems (a video platform's snapshot): the public feed never shows them.
MACHINE_CHANNELS = frozenset({Channel.SENSOR, Channel.VIDEO_AI})


class AppealType(enum.StrEnum):
    CONSULTATION = "consultation"  # 咨询
    COMPLAINT = "complaint"  # 投诉
    HELP = "help"  # 求助
    SUGGESTION = "suggestion"  # 建议
    REPORT = "report"  # 举报
    PRAISE = "praise"  # 表扬


def default_appeal_type(channel: Channel) -> AppealType:
    """What an appeal that does not say its type is: a machine's detection (a sensor's alarm, a camera's) is a
    report of a problem found, as the monitoring package files its alarms — never a question to answer on the
    spot — and a person's appeal a consultation (咨询) until someone judges otherwise."""
    return AppealType.REPORT if channel in MACHINE_CHANNELS else AppealType.CONSULTATION


class Urgency(enum.StrEnum):
    NORMAL = "normal"
    URGENT = "urgent"  # 紧急
    CRITICAL = "critical"  # 特急


class SlaStatus(enum.StrEnum):
    NONE = "none"  # no clock running
    OK = "ok"
    WARNING = "warning"  # 预警
    OVERDUE = "overdue"  # 超期

    def as_citizen_reads(self) -> SlaStatus:
        """The status as the citizen who appealed is told it: 预警 (the warning time) is a step inside the limit for
        the handling unit and its supervisors, so to the citizen the order is within its limit until it is overdue."""
        return SlaStatus.OK if self is SlaStatus.WARNING else self


class Category(Base):
    """One node of the hierarchical category taxonomy (e.g. 城乡建设 / 住房保障 / 保障房)."""

    __tablename__ = "categories"
    __table_args__ = (UniqueConstraint("parent_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(80), index=True)
    # The English name an English page shows (cityhub.localnames), when set; `name` stays the name of record.
    name_en: Mapped[str | None] = mapped_column(String(120))
    level: Mapped[int] = mapped_column(Integer)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id", ondelete="RESTRICT"), index=True)
    path: Mapped[str] = mapped_column(String(300), index=True)  # "城乡建设/住房保障/保障房"
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    parent: Mapped[Category | None] = relationship(remote_side=[id])


class ImportBatch(Base):
    """One import of a file of appeals (批量导入: the web page, ``POST /api/v1/orders/import``, ``cityhub import
    orders``): the file, when, by whom, and how many orders it created — each of them names it in
    ``orders.import_batch_id``, so the orders of one import are listed apart from older ones of the same channel
    (the order list's ``import_batch_id``). Made by the import's first write of an order; an import that created
    none leaves no batch. Orders imported before migration 0042 name none."""

    __tablename__ = "import_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    file_name: Mapped[str] = mapped_column(String(255))
    # When the import began writing (its first order's batch).
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Who imported it: the person who uploaded the file, or "import" (the command line) without an account.
    actor_name: Mapped[str] = mapped_column(String(80))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # The orders it created (not the rows it found already imported): added to by each committed batch of rows.
    imported: Mapped[int] = mapped_column(Integer, default=0)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("channel", "external_id"),
        Index("ix_orders_state_created", "state", "created_at"),
        # The SLA sweep reads only orders whose clock runs: partial indexes keep it proportional to open orders.
        Index(
            "ix_orders_running_sla",
            "sla_status",
            "due_at",
            sqlite_where=text(RUNNING_CLOCK_SQL),
            postgresql_where=text(RUNNING_CLOCK_SQL),
        ),
        Index(
            "ix_orders_running_warn",
            "sla_status",
            "warn_at",
            sqlite_where=text(RUNNING_CLOCK_SQL),
            postgresql_where=text(RUNNING_CLOCK_SQL),
        ),
        Index(
            "ix_orders_dispatched_accept",
            "accept_overdue",
            "accept_due_at",
            sqlite_where=text(DISPATCHED_SQL),
            postgresql_where=text(DISPATCHED_SQL),
        ),
        Index("ix_orders_lead_state", "lead_unit_id", "state"),
        Index("ix_orders_created", "created_at"),
        # The data-sharing feed's changes (``updated_since``): the orders changed since a harvester's last run are a
        # few among all, read through this instead of a scan of the table (migration 0033).
        Index("ix_orders_updated", "updated_at"),
        # The data-sharing feed of changes (``feed=changes``): the orders by the transaction that last stored or
        # changed them, from a harvester's position on (migration 0040; cityhub.workorders.changes).
        Index("ix_orders_changed", "changed_xid", "id"),
        Index("ix_orders_street_created", "street_id", "created_at"),
        Index("ix_orders_category_created", "category_id", "created_at"),
        # The order list's filters, newest first (migration 0010).
        Index("ix_orders_channel_created", "channel", "created_at"),
        Index("ix_orders_sla_created", "sla_status", "created_at"),
        Index("ix_orders_lead_created", "lead_unit_id", "created_at"),
        Index("ix_orders_community_created", "community_id", "created_at"),
        # Orders by where their place came from, newest first: the list's filter (migration 0015).
        Index("ix_orders_place_source_created", "place_source", "created_at"),
        # The extension requests waiting for a decision, newest first: the list's filter (migration 0027).
        Index(
            "ix_orders_extension_pending",
            "created_at",
            sqlite_where=text(EXTENSION_PENDING_SQLITE),
            postgresql_where=text(EXTENSION_PENDING_PG),
        ),
        # The orders not accepted in time, newest first: the list's filter 签收超时 (migration 0030).
        Index(
            "ix_orders_accept_overdue",
            "created_at",
            sqlite_where=text(ACCEPT_OVERDUE_SQLITE),
            postgresql_where=text(ACCEPT_OVERDUE_PG),
        ),
        # What one person registered (我提交的), newest first (migration 0051).
        Index("ix_orders_reported_by_created", "reported_by_id", "created_at"),
        # The order list's 已升级 and 领导交办, newest first (migration 0047): few orders among all.
        Index(
            "ix_orders_escalated",
            "created_at",
            sqlite_where=text(ESCALATED_SQL),
            postgresql_where=text(ESCALATED_SQL),
        ),
        Index(
            "ix_orders_leader_assigned",
            "created_at",
            sqlite_where=text(LEADER_ASSIGNED_SQLITE),
            postgresql_where=text(LEADER_ASSIGNED_PG),
        ),
        # The order list's 超期 (open orders past their limit now) and 曾超期 (migration 0036), newest first.
        Index(
            "ix_orders_open_sla",
            "sla_status",
            "created_at",
            sqlite_where=text(OPEN_SQL),
            postgresql_where=text(OPEN_SQL),
        ),
        Index(
            "ix_orders_ever_overdue",
            "created_at",
            sqlite_where=text(EVER_OVERDUE_SQL),
            postgresql_where=text(EVER_OVERDUE_SQL),
        ),
        # The orders of one import, newest first: the list's batch filter (migration 0042; only imported orders).
        Index(
            "ix_orders_import_batch_created",
            "import_batch_id",
            "created_at",
            sqlite_where=text(IMPORTED_SQL),
            postgresql_where=text(IMPORTED_SQL),
        ),
        # The placing job's backlog (migration 0015); orders leave it as they are placed or found not placeable.
        Index("ix_orders_unplaced", "id", sqlite_where=text(UNPLACED_SQL), postgresql_where=text(UNPLACED_SQL)),
        # A returning caller's earlier appeals, found by the search's exact name or phone (migration 0018).
        Index("ix_orders_citizen_name", "citizen_name"),
        Index("ix_orders_citizen_phone", "citizen_phone"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    external_id: Mapped[str | None] = mapped_column(String(128))
    channel: Mapped[Channel] = mapped_column(_enum(Channel, "order_channel"))
    appeal_type: Mapped[AppealType] = mapped_column(_enum(AppealType, "appeal_type"))
    title: Mapped[str] = mapped_column(String(300))
    content: Mapped[str] = mapped_column(Text)
    citizen_name: Mapped[str | None] = mapped_column(String(80))
    citizen_phone: Mapped[str | None] = mapped_column(String(32))
    citizen_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # Who registered it (登记人): the signed-in person whose intake made it — a grid inspector's report, an operator's
    # call, a citizen's own appeal —; None for the system's, an import's and an API key's (migration 0051). Its
    # registrant always reads it (``auth.scope.Scope.reporter_user_id``): an inspector's report placed outside their
    # grid, or sent on to another unit, stays theirs to follow (我提交的).
    reported_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # accounts are locked, not deleted
    address: Mapped[str | None] = mapped_column(String(300))
    lat: Mapped[float | None] = mapped_column(Float)
    lng: Mapped[float | None] = mapped_column(Float)
    street_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))  # ix_orders_community_created
    # Where street and community came from: a cityhub.org.places.PlaceSource value; NULL: never looked for.
    place_source: Mapped[str | None] = mapped_column(String(16))
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"))
    urgency: Mapped[Urgency] = mapped_column(_enum(Urgency, "order_urgency"), default=Urgency.NORMAL)
    state: Mapped[State] = mapped_column(_enum(State, "order_state"), default=State.RECEIVED)
    lead_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    master_order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    # 拆单: the order this one was split from (one of the problems its appeal raised).
    split_from_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    # The import that created it (ix_orders_import_batch_created); None: received otherwise, or imported before 0042.
    import_batch_id: Mapped[int | None] = mapped_column(ForeignKey("import_batches.id"))

    created_at: Mapped[datetime] = mapped_column(default=utcnow)  # reception time
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column()
    accepted_at: Mapped[datetime | None] = mapped_column()
    replied_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()

    # Time limit (办理时限). Deadlines are stored so that the sweep is a plain indexed query.
    accept_due_at: Mapped[datetime | None] = mapped_column()
    due_at: Mapped[datetime | None] = mapped_column()
    warn_at: Mapped[datetime | None] = mapped_column()
    sla_status: Mapped[SlaStatus] = mapped_column(_enum(SlaStatus, "sla_status"), default=SlaStatus.NONE)
    accept_overdue: Mapped[bool] = mapped_column(Boolean, default=False)
    overdue_at: Mapped[datetime | None] = mapped_column()  # the current limit's: a new limit clears it
    # When the order first ran out of a limit: kept when a re-dispatch, transfer or reopening starts a new one; only a
    # recompute showing that the limit it marked had not run out lifts it.
    first_overdue_at: Mapped[datetime | None] = mapped_column()
    sla_paused_at: Mapped[datetime | None] = mapped_column()
    # Working seconds left until due_at / warn_at / accept_due_at while paused.
    sla_remaining: Mapped[dict[str, int] | None] = mapped_column(JSON)

    suspended_from: Mapped[State | None] = mapped_column(_enum(State, "order_state"))
    extension_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    extension_days_requested: Mapped[float | None] = mapped_column(Float)
    extension_count: Mapped[int] = mapped_column(Integer, default=0)
    urge_count: Mapped[int] = mapped_column(Integer, default=0)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    leader_assigned: Mapped[bool] = mapped_column(Boolean, default=False)
    # 限期办结 (migration 0059): the local day by which the leader who assigned the order (领导交办) asked it done — a
    # leader's word beside the statutory time limit (``due_at``), which it does not move; a later 交办 with a day
    # replaces it. ``assign_overdue_at``: when the SLA sweep found the day passed with the order still open and told
    # the leader and the unit (the event ``assign_overdue``); a new day clears it.
    assign_deadline: Mapped[date | None] = mapped_column(Date)
    assign_overdue_at: Mapped[datetime | None] = mapped_column()
    return_count: Mapped[int] = mapped_column(Integer, default=0)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    instant_answered: Mapped[bool] = mapped_column(Boolean, default=False)

    reply_text: Mapped[str | None] = mapped_column(Text)
    satisfied: Mapped[bool | None] = mapped_column(Boolean)
    resolved: Mapped[bool | None] = mapped_column(Boolean)
    likes: Mapped[int] = mapped_column(Integer, default=0)
    opposes: Mapped[int] = mapped_column(Integer, default=0)
    attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The transaction that last stored or changed the order (cityhub.workorders.changes): written by the database's
    # triggers on every insert and update, never by cityhub's code. Not fetched back after a flush (SQLite's
    # RETURNING would give the value before its AFTER trigger): expired, read again when asked for.
    changed_xid: Mapped[int] = mapped_column(BigInteger, server_default=text("0"), server_onupdate=FetchedValue())
    __mapper_args__ = {"version_id_col": version, "eager_defaults": False}  # noqa: RUF012

    lead_unit: Mapped[Unit | None] = relationship(foreign_keys=[lead_unit_id])
    street: Mapped[Unit | None] = relationship(foreign_keys=[street_id])
    community: Mapped[Unit | None] = relationship(foreign_keys=[community_id])
    category: Mapped[Category | None] = relationship()
    events: Mapped[list[OrderEvent]] = relationship(
        back_populates="order", order_by="OrderEvent.id", cascade="all, delete-orphan"
    )
    assists: Mapped[list[OrderAssist]] = relationship(back_populates="order", cascade="all, delete-orphan")
    # In the order they were added (PostgreSQL returns rows in no set order: a row rewritten moves behind the others).
    attachments: Mapped[list[Attachment]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="Attachment.id"
    )


class _EnterpriseNeed(FunctionElement[str]):
    """企业呼's need (``intake.enterprise.NEED_KEY``) of an order's ``attributes``, written as the expression of the
    index ``ix_orders_enterprise_need_created`` (migration 0052) on each backend: ``json_extract(attributes,
    '$.enterprise_need')`` on SQLite, ``(attributes ->> 'enterprise_need')`` on PostgreSQL, the key a literal. A
    planner reads an expression index only for the same expression: SQLAlchemy's ``attributes[key].as_string()``
    binds the path as a parameter and casts the result, and neither backend's planner read the index through it."""

    type = String()
    inherit_cache = True
    name = "enterprise_need"


@compiles(_EnterpriseNeed)  # SQLite's, and a statement printed without a backend (str())
@compiles(_EnterpriseNeed, "sqlite")
def _enterprise_need_sqlite(element: _EnterpriseNeed, compiler: Any, **kw: Any) -> str:
    return f"json_extract({compiler.process(element.clauses, **kw)}, '$.{enterprise.NEED_KEY}')"


@compiles(_EnterpriseNeed, "postgresql")
def _enterprise_need_pg(element: _EnterpriseNeed, compiler: Any, **kw: Any) -> str:
    return f"({compiler.process(element.clauses, **kw)} ->> '{enterprise.NEED_KEY}')"


# 企业呼 (``intake.enterprise``) as SQL reads an order's attributes — JSON ``->>`` on PostgreSQL, ``json_extract`` on
# SQLite —: the enterprise that asks (an enterprise appeal names one) and its need. The order list's 诉求领域 and the
# figures by need (``analytics.reports.enterprise_needs``) read these same expressions; the need as the index of the
# order list's filter is written (``ix_orders_enterprise_need_created``, partial on the orders that name a need).
ENTERPRISE_NAME = Order.attributes[enterprise.NAME_KEY].as_string()
ENTERPRISE_NEED = _EnterpriseNeed(Order.attributes)
# Of the orders' table through its columns, as an expression index is declared.
Index(
    "ix_orders_enterprise_need_created",
    ENTERPRISE_NEED,
    Order.created_at,
    sqlite_where=ENTERPRISE_NEED.is_not(None),
    postgresql_where=ENTERPRISE_NEED.is_not(None),
)


class OrderSearch(Base):
    """The full-text search's index terms of one order (:mod:`cityhub.workorders.search`): its number, title, content
    and address as CJK bigrams and Latin/digit words, one row per order, kept by the mapper events below and the bulk
    writer; indexed by ``order_fts`` (SQLite) or ``ix_order_search`` (PostgreSQL), which are not in the metadata (see
    :func:`_create_search_index`).

    A table of its own, not a column of ``orders`` (migration 0020): the terms are as long as the texts, and as a
    column they made every scan of ``orders`` read about 40 % more pages on SQLite (the map, the statistics, the
    findings) for the search's sake alone.
    """

    __tablename__ = "order_search"

    order_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"),
        ForeignKey("orders.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    )
    terms: Mapped[str] = mapped_column(Text)


def _terms_of(order: Order) -> str:
    from cityhub.workorders.search import order_search_terms

    return order_search_terms(order.title, order.content, order.address, number=order.number)


@sa_event.listens_for(Order, "after_insert")
def _search_terms_of_new_order(_mapper: Any, conn: Any, order: Order) -> None:
    from sqlalchemy import insert

    conn.execute(insert(OrderSearch).values(order_id=order.id, terms=_terms_of(order)))


@sa_event.listens_for(Order, "after_update")
def _search_terms_of_changed_order(_mapper: Any, conn: Any, order: Order) -> None:
    from sqlalchemy import inspect, update

    from cityhub.workorders.search import SEARCHED

    state = inspect(order)
    if any(state.attrs[name].history.has_changes() for name in SEARCHED):
        conn.execute(update(OrderSearch).where(OrderSearch.order_id == order.id).values(terms=_terms_of(order)))


@sa_event.listens_for(Order.__table__, "after_create")
def _create_change_triggers(_table: Any, conn: Any, **_kw: Any) -> None:
    """A schema made from the metadata (``create_all``) gets the triggers that write ``changed_xid``, as the
    migrations make them."""
    from cityhub.workorders.changes import install

    install(conn)


@sa_event.listens_for(Order.__table__, "before_drop")
def _drop_change_triggers(_table: Any, conn: Any, **_kw: Any) -> None:
    from cityhub.workorders.changes import drop

    drop(conn)


@sa_event.listens_for(OrderSearch.__table__, "after_create")
def _create_search_index(_table: Any, conn: Any, **_kw: Any) -> None:
    """A schema made from the metadata (``create_all``) gets the search index the migrations make."""
    from cityhub.workorders.search import install_index

    install_index(conn)


@sa_event.listens_for(OrderSearch.__table__, "before_drop")
def _drop_search_index(_table: Any, conn: Any, **_kw: Any) -> None:
    from cityhub.workorders.search import drop_index

    drop_index(conn)


# 合并, seen from the master: the event on the order another was merged into, naming that order (``merged_id``,
# ``merged_number``) and whether intake's duplicate check merged it (``auto``). No life-cycle action — the master's
# state, fields and version stay as they are (``workorders.service.act`` writes it with the merge).
MERGED_IN = "merged_in"


class OrderEvent(Base):
    """One entry of an order's audit trail: who did what, when, from which state to which, and why."""

    __tablename__ = "order_events"
    # The assessment's facts (``analytics.kpi``) are the events of one action in a period: without ``at`` beside
    # ``action`` a month's figures walked every such event of all the years (migration 0031). One unit's figures
    # read only the orders whose events name it (``kpi._can_hold``: the order ids beside the unit and action, read
    # from the index alone), not the trails of the whole period (migration 0038).
    __table_args__ = (
        Index("ix_order_events_action_at", "action", "at"),
        Index("ix_order_events_unit_action", "unit_id", "action", "order_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(String(80))  # a person's name, or "system" / "import"
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))  # unit the action concerns
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    order: Mapped[Order] = relationship(back_populates="events")


class OrderView(Base):
    """When a user last opened an order's page, kept for the orders with something to mark as new to each reader
    (the files a citizen added: :func:`cityhub.workorders.files.with_supplements`)."""

    __tablename__ = "order_views"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    viewed_at: Mapped[datetime]


class OrderAssist(Base):
    """An assisting unit (协办单位) of a co-handled order, with its own status."""

    __tablename__ = "order_assists"
    __table_args__ = (UniqueConstraint("order_id", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    status: Mapped[AssistStatus] = mapped_column(_enum(AssistStatus, "assist_status"))
    reply_text: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    order: Mapped[Order] = relationship(back_populates="assists")
    unit: Mapped[Unit] = relationship()


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int | None] = mapped_column(BigInteger)
    # An http(s) link (given with the appeal, a camera's snapshot) or, for a file kept in cityhub's own store, the
    # API path that serves it (cityhub.workorders.files.content_path).
    url: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # The content's SHA-256 for a file kept in the store (cityhub.workorders.files); None for a link.
    sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    uploaded_by: Mapped[str | None] = mapped_column(String(80))  # who attached it later; None: given with the appeal
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # A stored photo staff published (公开) for Open311's media_url: the opaque token of its public address
    # (/open311/v2/media/{token}), new at each publication, and when it was published; both None when it is not
    # published (never, or withdrawn). See cityhub.workorders.files.publish.
    public_token: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    published_at: Mapped[datetime | None]

    order: Mapped[Order] = relationship(back_populates="attachments")


class SlaRule(Base):
    """Time limit for a category (and its sub-categories) × urgency. NULL category = the default rule."""

    __tablename__ = "sla_rules"
    __table_args__ = (UniqueConstraint("category_id", "urgency"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id", ondelete="CASCADE"))
    urgency: Mapped[Urgency | None] = mapped_column(_enum(Urgency, "order_urgency"))
    accept_hours: Mapped[float] = mapped_column(Float)  # accept within N working hours
    finish_days: Mapped[float] = mapped_column(Float)  # finish within N working days
    warning_share: Mapped[float | None] = mapped_column(Float)  # overrides the global setting
    # Counted in natural hours and days (全天候: an emergency), not working time.
    round_the_clock: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class CalendarDay(Base):
    """Admin-edited calendar entry: a holiday or a make-up workday (调休上班), overriding the built-in calendar."""

    __tablename__ = "calendar_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str | None] = mapped_column(String(60))


class OrderNumberCounter(Base):
    """Per-day sequence behind readable order numbers (BY20261122-000123)."""

    __tablename__ = "order_number_counters"

    prefix: Mapped[str] = mapped_column(String(8), primary_key=True)
    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class JobRun(Base):
    """Last run of each scheduled job, so that several processes see the same schedule."""

    __tablename__ = "job_runs"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    last_started_at: Mapped[datetime | None] = mapped_column()
    last_finished_at: Mapped[datetime | None] = mapped_column()
    last_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # A run that raised: when, what (exception type and message), and how many runs in a row have failed since the
    # last success (0 = the last run succeeded).
    last_failed_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(String(500))
    failures: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
