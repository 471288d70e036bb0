"""Notifications through a transactional outbox: webhook subscriptions, enqueue, claim, deliver, retry."""
