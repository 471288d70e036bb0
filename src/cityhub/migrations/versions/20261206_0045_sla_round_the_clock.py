"""sla_rules.round_the_clock: a time limit counted in natural hours and days (全天候), not working time

Revision ID: 0045_sla_round_the_clock
Revises: 0043_unit_aliases
Create Date: 2026-12-06 00:30:00.000000

`sla_rules.round_the_clock` (BOOLEAN, not null, false): the rule's accept hours and finish days run around the clock
(an emergency: a flooded underpass at 23:00 on a Saturday is due within the hour, not on Monday morning). Existing
rules keep working time; `cityhub sla seed` on a database without rules makes the critical (特急) default round the
clock.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0045_sla_round_the_clock'
down_revision: str | None = '0043_unit_aliases'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# A plain ADD/DROP COLUMN, not a batch copy of the table: on SQLite the copy would drop the table's reference-version
# trigger (migration 0011), and the processes' cached time-limit rules would then never see an edit.


def upgrade() -> None:
    op.add_column('sla_rules', sa.Column('round_the_clock', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column('sla_rules', 'round_the_clock')
