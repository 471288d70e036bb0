"""Intake: the one entry point for every channel. Validates, de-duplicates by (channel, external id), creates
the order and, for a consultation answered on the spot (秒回), closes it as answered instantly."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from cityhub.errors import ValidationFailed
from cityhub.intake import dedupe
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import Action
from cityhub.workorders.models import Order
from cityhub.workorders.schemas import OrderCreate


@dataclass(frozen=True)
class IntakeResult:
    order: Order
    created: bool  # False: the same (channel, external_id) had been received before
    # Duplicates of the same problem at the same place and similar past cases (see intake.dedupe).
    duplicates: list[dedupe.Duplicate] = field(default_factory=list)
    similar: list[dedupe.SimilarCase] = field(default_factory=list)
    dedupe_action: dedupe.DedupeAction = dedupe.DedupeAction.NONE


def parse(payload: dict[str, Any]) -> OrderCreate:
    """Validate a raw appeal; ValidationFailed names every bad field."""
    try:
        return OrderCreate.model_validate(payload)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"]) or "(order)", "message": err["msg"]} for err in exc.errors()
        ]
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise ValidationFailed(f"invalid order: {summary}", details={"errors": problems}) from None


def submit(
    session: Session,
    *,
    data: OrderCreate | dict[str, Any],
    actor: orders.Actor = orders.SYSTEM,
    instant_answer: str | None = None,
) -> IntakeResult:
    """Receive one appeal from any channel and return the (new or already known) order."""
    if isinstance(data, dict):
        data = parse(data)
    order, created = orders.create_order(session, data=data, actor=actor)
    if created and instant_answer:
        orders.act(
            session,
            order_id=order.id,
            action=Action.INSTANT_ANSWER,
            actor=actor,
            params={"answer": instant_answer},
        )
    if not created:
        return IntakeResult(order=order, created=created)
    found = dedupe.process(session, order=order, actor=actor)  # may merge the new order into its master
    return IntakeResult(
        order=order, created=created, duplicates=found.duplicates, similar=found.similar, dedupe_action=found.action
    )
