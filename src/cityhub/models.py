"""Import every ORM model so that metadata (Alembic, tests) sees all tables."""

from cityhub.analytics.models import AssessmentExemption, HotTopic, HotTopicModelState, HotTopicOrder
from cityhub.auditlog import LogEntry
from cityhub.auth.models import ApiToken, AuthSession, LoginAttempt
from cityhub.dispatch.models import DispatchBacklog, DispatchRule, DispatchSuggestion, DispatchThreshold
from cityhub.intake.models import InvalidCall
from cityhub.knowledge.models import KnowledgeEntry, KnowledgeRevision, ReplyCheck
from cityhub.monitoring.models import Alarm, AlarmEvent, AlarmRule, Reading, RuleState, Sensor
from cityhub.notify.models import OutboxMessage, Subscription, UserNotice
from cityhub.org.models import Unit, UnitAlias, User
from cityhub.refdata import reference_versions
from cityhub.sharing.models import ApiCallStat, ApiClient, ApiKey, ApiRateWindow, Open311Token
from cityhub.workorders.models import (
    Attachment,
    CalendarDay,
    Category,
    ImportBatch,
    JobRun,
    Order,
    OrderAssist,
    OrderEvent,
    OrderNumberCounter,
    OrderSearch,
    OrderView,
    SlaRule,
)

__all__ = [
    "Alarm",
    "AlarmEvent",
    "AlarmRule",
    "ApiCallStat",
    "ApiClient",
    "ApiKey",
    "ApiRateWindow",
    "ApiToken",
    "AssessmentExemption",
    "Attachment",
    "AuthSession",
    "CalendarDay",
    "Category",
    "DispatchBacklog",
    "DispatchRule",
    "DispatchSuggestion",
    "DispatchThreshold",
    "HotTopic",
    "HotTopicModelState",
    "HotTopicOrder",
    "ImportBatch",
    "InvalidCall",
    "JobRun",
    "KnowledgeEntry",
    "KnowledgeRevision",
    "LogEntry",
    "LoginAttempt",
    "Open311Token",
    "Order",
    "OrderAssist",
    "OrderEvent",
    "OrderNumberCounter",
    "OrderSearch",
    "OrderView",
    "OutboxMessage",
    "Reading",
    "ReplyCheck",
    "RuleState",
    "Sensor",
    "SlaRule",
    "Subscription",
    "Unit",
    "UnitAlias",
    "User",
    "UserNotice",
    "reference_versions",
]
