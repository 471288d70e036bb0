"""reply_checks.scorer: the reply scorer's version of each stored score

Revision ID: 0041_reply_check_scorer
Revises: 0040_order_changed_xid
Create Date: 2026-12-05 13:30:00.000000

`reply_checks.scorer` (INTEGER, nullable) is `cityhub.nlp.reply_quality.SCORER_VERSION` when the reply was scored;
the scores stored before are null. The reply-check job scores again the replies still under review (state replied)
whose score another version gave, so that an upgraded scorer's judgement reaches the supervisor's review list.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0041_reply_check_scorer'
down_revision: str | None = '0040_order_changed_xid'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('reply_checks') as batch:
        batch.add_column(sa.Column('scorer', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('reply_checks') as batch:
        batch.drop_column('scorer')
