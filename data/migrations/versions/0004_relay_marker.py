"""relay marker: the ticket whose staff question waits for a chat account's answer

Revision ID: 0004_relay_marker
Revises: 0003_scheduling
Create Date: 2026-11-24 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_relay_marker"
down_revision = "0003_scheduling"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("channel_accounts", sa.Column("awaiting_relay", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("channel_accounts") as batch:  # SQLite cannot drop a column in place
        batch.drop_column("awaiting_relay")
