"""orders: a reply sent back before 退回答复 emptied it no longer stands as the order's answer

Revision ID: 0048_sent_back_replies
Revises: 0047_escalated_indexes
Create Date: 2026-12-06 03:30:00.000000

Since the release of 6 December a reply sent back (退回答复) or an order reopened (重办) empties the order's
`reply_text` and drops its reply check (`knowledge.service.forget_reply_check`): the reply no longer stands as the
answer, the review list forgets it and the unit's next reply is scored afresh. The orders sent back before still hold
the rejected reply while a unit works on them again: an open order (received, dispatched, returned, accepted, in
progress, suspended) holds no reply in this release's model, so theirs is emptied here and its check deleted. The
trail keeps every reply's text (its 答复 event), as for the orders sent back since. Data only: the downgrade leaves it.
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0048_sent_back_replies'
down_revision: str | None = '0047_escalated_indexes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# lifecycle.OPEN_STATES as stored (the order_state enum's values), written out: a migration keeps its own copy.
OPEN = ('received', 'dispatched', 'returned', 'accepted', 'in_progress', 'suspended')


def upgrade() -> None:
    open_states = ", ".join(f"'{state}'" for state in OPEN)
    held = f"SELECT id FROM orders WHERE reply_text IS NOT NULL AND state IN ({open_states})"
    op.execute(f"DELETE FROM reply_checks WHERE order_id IN ({held})")
    op.execute(f"UPDATE orders SET reply_text = NULL WHERE reply_text IS NOT NULL AND state IN ({open_states})")


def downgrade() -> None:
    pass
