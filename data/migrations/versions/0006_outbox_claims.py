"""outbox claims: who holds a claim (claimed_by), the channel's id of a sent message (sent_ref),
an index for one chat's rows (per-chat order and superseding)

Revision ID: 0006_outbox_claims
Revises: 0005_callback_nonces
Create Date: 2026-12-04 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_outbox_claims"
down_revision = "0005_callback_nonces"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("sent_ref", sa.String(length=64), nullable=True))
    op.create_index("ix_outbox_chat", "outbox", ["channel", "recipient", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_chat", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("sent_ref")
        batch.drop_column("claimed_by")
