"""Import every ORM model so that metadata (Alembic, tests) sees all tables."""

from cityhub.org.models import Unit, User
from cityhub.workorders.models import (
    Attachment,
    CalendarDay,
    Category,
    JobRun,
    Order,
    OrderAssist,
    OrderEvent,
    OrderNumberCounter,
    SlaRule,
)

__all__ = [
    "Attachment",
    "CalendarDay",
    "Category",
    "JobRun",
    "Order",
    "OrderAssist",
    "OrderEvent",
    "OrderNumberCounter",
    "SlaRule",
    "Unit",
    "User",
]
