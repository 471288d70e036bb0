"""The feed of changes' hardest promise, checked the same way through each API that serves it (the order list's
``cursor``, the data-sharing API's ``feed=changes``): an order whose transaction commits late is never passed."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from cityhub.db import session_factory, session_scope
from cityhub.workorders import service as orders
from cityhub.workorders.lifecycle import Action

Poll = Callable[[str], tuple[list[tuple[str, str]], str]]  # cursor → (number, state) of each item, the next cursor
Receive = Callable[[Session, str, int], str]  # (session, text, days ago) → the number of the order received


def check_late_commit_is_held_back(
    *, change: str, begin: Callable[[], tuple[list[tuple[str, str]], str]], poll: Poll, received: Receive
) -> None:
    """PostgreSQL: one transaction stores (``change`` "store") or changes ("update") an order and stays open while a
    second stores (changes) another and commits. The feed hands out what settled before the open transaction, holds
    the rest back — not the second: it would pass the first — and gives both once the first commits. ``begin``: the
    first poll, from the feed's beginning."""
    with session_scope() as s:  # on different days: each order's number from another day's counter
        known = [received(s, f"井盖缺失{i}", 10 + i) for i in range(2)]
    polled, kept = begin()
    assert polled == [(n, "received") for n in known]
    with session_scope() as s:  # settled before the open transaction below: handed out while it is open
        between = received(s, "路面塌陷", 20)

    def touch(s: Session, number: str | None, text: str, days: int) -> str:
        if number is None:
            return received(s, text, days)
        order = orders.get_order_by_number(s, number=number)
        assert order is not None
        orders.act(s, order_id=order.id, action=Action.CANCEL, params={"reason": text})
        return number

    early_target, late_target = (None, None) if change == "store" else (known[0], known[1])
    state = "received" if change == "store" else "cancelled"
    early = session_factory()()
    try:
        first = touch(early, early_target, "早开的事务", 30)
        early.flush()  # its id and its transaction taken, not committed
        with session_scope() as s:
            second = touch(s, late_target, "后开先提交", 40)
        while_open, after = poll(kept)
        assert while_open == [(between, "received")]  # not the second: it would pass the first
        held, after = poll(after)
        assert held == []  # still held back, and the cursor the poll answers does not pass them
        early.commit()
    finally:
        early.close()
    settled, last = poll(after)
    assert settled == [(first, state), (second, state)]
    assert poll(last)[0] == []
