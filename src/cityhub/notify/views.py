"""HTTP routes of the webhook subscriptions and their outbox (``/api/v1/notify``), for ``webhooks:manage``
(administrators): the same service calls as ``cityhub notify`` and the 推送订阅 page (:mod:`cityhub.notify.service`),
each change in the configuration log as the caller's."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi import status as http
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from cityhub.api.deps import DbSession, ListPaging, Paging, require
from cityhub.auth import permissions
from cityhub.auth.principal import Principal
from cityhub.notify import service
from cityhub.notify.models import OutboxMessage, OutboxStatus, Subscription, Topic
from cityhub.org.views import IdQuery

router = APIRouter(prefix="/notify", tags=["webhooks"])
Admin = Annotated[Principal, Depends(require(permissions.WEBHOOKS_MANAGE))]
TOPICS = ", ".join(t.value for t in Topic)


class UnitRef(BaseModel):
    id: int
    code: str
    name: str


class FailureRead(BaseModel):
    """The subscription's newest message that did not go through."""

    id: int
    topic: str
    status: OutboxStatus
    attempts: int
    error: str | None
    created_at: datetime = Field(description="when the change it reports happened")


class DeliveryRead(BaseModel):
    last_sent_at: datetime | None = Field(description="its last delivery (delivered messages are pruned after a while)")
    last_failure: FailureRead | None = Field(
        description="the message whose delivery failed last, of those not delivered since (the newest of them when "
        "no failure time is known)"
    )
    last_failed_at: datetime | None = Field(
        None, description="when the delivery last failed (null: none failing, or failed before the time was kept)"
    )
    pending: int = Field(description="messages waiting for their first attempt, or being sent")
    failed: int = Field(description="messages whose last attempt failed, to be tried again")
    dead: int = Field(description="messages given up on (out of attempts): retry them at /notify/outbox/{id}/retry")


class WebhookRead(BaseModel):
    id: int
    url: str
    events: list[str]
    unit: UnitRef | None = Field(description="only orders whose lead unit, street or community is this unit")
    description: str | None
    created_at: datetime
    created_by: str | None = Field(description="who added it (null: added before the configuration log kept it)")
    delivery: DeliveryRead


class WebhookCreated(WebhookRead):
    secret: str = Field(description="the signing secret of X-Cityhub-Signature: answered this once, never again")


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="the receiver: an http:// or https:// address with a host, at most 500 characters")
    events: list[str] = Field(max_length=len(Topic), description=f"the topics to receive, of {TOPICS}")
    unit: str | None = Field(
        default=None, max_length=50, description="a unit's code: only orders whose lead unit, street or community it is"
    )
    description: str | None = Field(default=None, description="a note on who receives this, at most 200 characters")


class OutboxRead(BaseModel):
    id: int
    topic: str
    order_id: int | None
    subscription_id: int
    url: str
    status: OutboxStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime
    sent_at: datetime | None
    last_error: str | None


class OutboxPage(BaseModel):
    items: list[OutboxRead]
    limit: int
    offset: int
    has_more: bool


def _failure(message: OutboxMessage | None) -> FailureRead | None:
    if message is None:
        return None
    return FailureRead(
        id=message.id,
        topic=message.topic.value,
        status=message.status,
        attempts=message.attempts,
        error=message.last_error,
        created_at=message.created_at,
    )


def _read(overview: service.SubscriptionOverview) -> WebhookRead:
    sub, delivery = overview.subscription, overview.delivery
    return WebhookRead(
        id=sub.id,
        url=sub.target,
        events=sub.topics,
        unit=UnitRef(id=sub.unit.id, code=sub.unit.code, name=sub.unit.name) if sub.unit else None,
        description=sub.description,
        created_at=sub.created_at,
        created_by=overview.created_by,
        delivery=DeliveryRead(
            last_sent_at=delivery.last_sent_at,
            last_failure=_failure(delivery.last_failure),
            last_failed_at=delivery.last_failed_at,
            pending=delivery.pending,
            failed=delivery.failed,
            dead=delivery.dead,
        ),
    )


def _one(db: Session, sub: Subscription) -> WebhookRead:
    return _read(service.subscriptions_overview(db, subscription_id=sub.id)[0])


def _outbox(message: OutboxMessage) -> OutboxRead:
    return OutboxRead(
        id=message.id,
        topic=message.topic.value,
        order_id=message.order_id,
        subscription_id=message.subscription_id,
        url=message.subscription.target,
        status=message.status,
        attempts=message.attempts,
        created_at=message.created_at,
        next_attempt_at=message.next_attempt_at,
        sent_at=message.sent_at,
        last_error=message.last_error,
    )


@router.get("/webhooks", response_model=list[WebhookRead])
def list_webhooks(db: DbSession, principal: Admin, page: ListPaging) -> list[WebhookRead]:
    """The webhook subscriptions in force, by id, each with who added it and how its deliveries go (never its
    secret); optionally paged."""
    return [_read(o) for o in page.of(service.subscriptions_overview(db))]


@router.post("/webhooks", response_model=WebhookCreated, status_code=http.HTTP_201_CREATED)
def create_webhook(body: WebhookCreate, db: DbSession, principal: Admin, response: Response) -> WebhookCreated:
    """Subscribe a receiver to topics; the answer carries its signing secret, this once. A refused field is a 422
    naming it (``url``, ``events``, ``unit``, ``description``)."""
    sub, secret = service.add_subscription(
        db,
        target=body.url,
        topics=body.events,
        unit_code=body.unit,
        description=body.description,
        actor=principal.actor,
    )
    response.headers["Location"] = f"/api/v1/notify/webhooks/{sub.id}"
    return WebhookCreated(**_one(db, sub).model_dump(), secret=secret)


@router.get("/webhooks/{subscription_id}", response_model=WebhookRead)
def get_webhook(subscription_id: int, db: DbSession, principal: Admin) -> WebhookRead:
    return _one(db, service.get_subscription(db, subscription_id=subscription_id))


@router.delete("/webhooks/{subscription_id}", status_code=http.HTTP_204_NO_CONTENT)
def delete_webhook(subscription_id: int, db: DbSession, principal: Admin) -> None:
    """Remove a subscription: nothing more is sent to it, and its undelivered messages are dead."""
    service.remove_subscription(db, subscription_id=subscription_id, actor=principal.actor)


@router.get("/outbox", response_model=OutboxPage)
def list_outbox(
    db: DbSession,
    principal: Admin,
    page: Paging,
    status: Annotated[
        list[OutboxStatus] | None, Query(description="only messages of these statuses (repeat the parameter)")
    ] = None,
    subscription_id: IdQuery = None,
) -> OutboxPage:
    """The outbox's messages, newest first — ``status=failed&status=dead`` the deliveries that did not go through."""
    query = service.messages_query(statuses=status or (), subscription_id=subscription_id)
    rows = list(db.scalars(query.limit(page.limit + 1).offset(page.offset)))
    return OutboxPage(
        items=[_outbox(m) for m in rows[: page.limit]],
        limit=page.limit,
        offset=page.offset,
        has_more=len(rows) > page.limit,
    )


@router.post("/outbox/{message_id}/retry", response_model=OutboxRead)
def retry_message(message_id: int, db: DbSession, principal: Admin) -> OutboxRead:
    """Send a failed or dead message again, now, with a full budget of attempts; 409 for one in another state or of a
    removed subscription."""
    return _outbox(service.retry(db, message_id=message_id, actor=principal.actor))
