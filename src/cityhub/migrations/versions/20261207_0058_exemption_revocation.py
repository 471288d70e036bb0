"""assessment_exemptions.revoked_*: 撤销核减 kept beside the approval it takes back

Revision ID: 0058_exemption_revocation
Revises: 0057_kb_public
Create Date: 2026-12-07 09:00:00.000000

An approved exemption request taken back (撤销核减) wrote the revocation over the row's decision (``decided_*``):
who approved it, when and why were left only in the order's trail. Four columns keep the revocation apart —
``revoked_by_id`` (a user, nullable), ``revoked_by_name``, ``revoked_at``, ``revocation_reason`` — and the decision
stays the approval. Added in place on both backends (SQLite: ``ALTER TABLE … ADD COLUMN`` with its reference, no
table copy). Rows revoked before are filled from what they and the trail hold: the revocation from the row's
``decided_*``, the approval from the order's last ``exemption_approve`` event naming the request
(``payload.exemption_id``) — its actor, time and reason; a row whose trail holds no such event keeps no decision.
The downgrade writes the revocation back over the decision, as the code before read it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import cityhub.db

revision: str = '0058_exemption_revocation'
down_revision: str | None = '0057_kb_public'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK = 'fk_assessment_exemptions_revoked_by_id_users'
DECISION = ('decided_by_id', 'decided_by_name', 'decided_at', 'decision_reason')
REVOCATION = ('revoked_by_id', 'revoked_by_name', 'revoked_at', 'revocation_reason')


def _exemptions() -> sa.TableClause:
    when = cityhub.db.UTCDateTime(timezone=True)
    return sa.table(
        'assessment_exemptions',
        sa.column('id', sa.Integer()),
        sa.column('order_id', sa.Integer()),
        sa.column('state', sa.String()),
        sa.column('decided_by_id', sa.Integer()),
        sa.column('decided_by_name', sa.String()),
        sa.column('decided_at', when),
        sa.column('decision_reason', sa.Text()),
        sa.column('revoked_by_id', sa.Integer()),
        sa.column('revoked_by_name', sa.String()),
        sa.column('revoked_at', when),
        sa.column('revocation_reason', sa.Text()),
    )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        op.execute(
            f'ALTER TABLE assessment_exemptions ADD COLUMN revoked_by_id INTEGER CONSTRAINT {FK} REFERENCES users (id)'
        )
    else:
        op.add_column('assessment_exemptions', sa.Column('revoked_by_id', sa.Integer(), nullable=True))
        op.create_foreign_key(FK, 'assessment_exemptions', 'users', ['revoked_by_id'], ['id'])
    op.add_column('assessment_exemptions', sa.Column('revoked_by_name', sa.String(length=80), nullable=True))
    op.add_column(
        'assessment_exemptions', sa.Column('revoked_at', cityhub.db.UTCDateTime(timezone=True), nullable=True)
    )
    op.add_column('assessment_exemptions', sa.Column('revocation_reason', sa.Text(), nullable=True))

    # Rows revoked before: the revocation out of the decision's columns, the approval back from the trail.
    rows = _exemptions()
    events = sa.table(
        'order_events',
        sa.column('id', sa.Integer()),
        sa.column('order_id', sa.Integer()),
        sa.column('action', sa.String()),
        sa.column('actor_id', sa.Integer()),
        sa.column('actor_name', sa.String()),
        sa.column('at', cityhub.db.UTCDateTime(timezone=True)),
        sa.column('reason', sa.Text()),
        sa.column('payload', sa.JSON()),
    )
    revoked = bind.execute(
        sa.select(rows.c.id, rows.c.order_id, *(rows.c[c] for c in DECISION)).where(rows.c.state == 'revoked')
    ).all()
    for row in revoked:
        approvals = bind.execute(
            sa.select(events.c.actor_id, events.c.actor_name, events.c.at, events.c.reason, events.c.payload)
            .where(events.c.order_id == row.order_id, events.c.action == 'exemption_approve')
            .order_by(events.c.id.desc())
        ).all()
        approval = next((e for e in approvals if (e.payload or {}).get('exemption_id') == row.id), None)
        decision = (approval.actor_id, approval.actor_name, approval.at, approval.reason) if approval else (None,) * 4
        values = {**dict(zip(REVOCATION, row[2:], strict=True)), **dict(zip(DECISION, decision, strict=True))}
        bind.execute(rows.update().where(rows.c.id == row.id).values(values))


def downgrade() -> None:
    rows = _exemptions()
    op.get_bind().execute(
        rows.update()
        .where(rows.c.state == 'revoked')
        .values({d: rows.c[r] for d, r in zip(DECISION, REVOCATION, strict=True)})
    )
    op.drop_column('assessment_exemptions', 'revocation_reason')
    op.drop_column('assessment_exemptions', 'revoked_at')
    op.drop_column('assessment_exemptions', 'revoked_by_name')
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('ALTER TABLE assessment_exemptions DROP COLUMN revoked_by_id')  # SQLite ≥ 3.35; its reference too
    else:
        op.drop_constraint(FK, 'assessment_exemptions', type_='foreignkey')
        op.drop_column('assessment_exemptions', 'revoked_by_id')
