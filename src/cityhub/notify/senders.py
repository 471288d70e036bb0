"""How a notification leaves the system: a :class:`Sender` per subscription kind, looked up in a registry.

``webhook`` is built in (HMAC-SHA256 signed JSON over HTTP). ``sms``, ``wecom`` (企业微信) and ``dingtalk`` (钉钉)
are plug-in points: the stubs registered here raise :class:`NotConfigured`, which dead-letters the message with a
clear error. A deployment provides the real one with ``register_sender("sms", MySmsSender())`` at start-up (for
example from a module imported by its own entry point); ``cityhub notify outbox retry ID`` then re-sends.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from cityhub.errors import CityhubError

SIGNATURE_HEADER = "X-Cityhub-Signature"
TIMESTAMP_HEADER = "X-Cityhub-Timestamp"
DELIVERY_HEADER = "X-Cityhub-Delivery"
TOPIC_HEADER = "X-Cityhub-Topic"


class DeliveryFailed(CityhubError):
    """The receiver did not take the message; it is tried again later."""

    code = "delivery_failed"
    http_status = 502


class NotConfigured(CityhubError):
    """No working sender for this kind of subscription: retrying cannot help until one is registered."""

    code = "not_configured"
    http_status = 501


@dataclass(frozen=True)
class Envelope:
    """One message ready to go: ``delivery_id`` is stable across retries so receivers can de-duplicate."""

    delivery_id: str
    topic: str
    body: bytes
    target: str
    secret: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Sender(Protocol):
    def send(self, envelope: Envelope, *, timeout: float) -> None:
        """Deliver or raise DeliveryFailed (retry) / NotConfigured (dead-letter)."""
        ...


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``timestamp + "." + body`` with the subscription's secret."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, tolerance: float | None = 300) -> bool:
    """Check a signature as a receiver should: constant-time compare, and refuse stale timestamps (replays)."""
    if tolerance is not None:
        try:
            if abs(time.time() - int(timestamp)) > tolerance:
                return False
        except ValueError:
            return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookSender:
    """POST the JSON body; any 2xx is a delivery, anything else (or no answer in time) a failure."""

    def send(self, envelope: Envelope, *, timeout: float) -> None:
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "cityhub-webhook/1",
            DELIVERY_HEADER: envelope.delivery_id,
            TOPIC_HEADER: envelope.topic,
            TIMESTAMP_HEADER: timestamp,
            **envelope.headers,
        }
        if envelope.secret:
            headers[SIGNATURE_HEADER] = sign(envelope.secret, timestamp, envelope.body)
        try:
            response = httpx.post(envelope.target, content=envelope.body, headers=headers, timeout=timeout)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from exc
        if not response.is_success:
            raise DeliveryFailed(f"HTTP {response.status_code}: {response.text[:200]}")


class UnconfiguredSender:
    """Placeholder for a channel a deployment must plug in (SMS gateway, WeCom / DingTalk robot)."""

    def __init__(self, kind: str, what: str) -> None:
        self.kind = kind
        self.what = what

    def send(self, envelope: Envelope, *, timeout: float) -> None:
        raise NotConfigured(
            f"no {self.what} sender is configured: register one with "
            f"cityhub.notify.senders.register_sender({self.kind!r}, sender)"
        )


_REGISTRY: dict[str, Sender] = {
    "webhook": WebhookSender(),
    "sms": UnconfiguredSender("sms", "SMS gateway"),
    "wecom": UnconfiguredSender("wecom", "WeCom (企业微信) robot"),
    "dingtalk": UnconfiguredSender("dingtalk", "DingTalk (钉钉) robot"),
}


def register_sender(kind: str, sender: Sender) -> None:
    """Install (or replace) the sender for subscriptions of ``kind``."""
    _REGISTRY[kind] = sender


def get_sender(kind: str) -> Sender:
    sender = _REGISTRY.get(kind)
    if sender is None:
        raise NotConfigured(f"unknown sender kind '{kind}' (known: {', '.join(sorted(_REGISTRY))})")
    return sender


def sender_kinds() -> list[str]:
    return sorted(_REGISTRY)
