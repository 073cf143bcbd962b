"""callback nonces: each signed (timestamp, nonce) of a WeChat callback for the replay window

Revision ID: 0005_callback_nonces
Revises: 0004_relay_marker
Create Date: 2026-12-03 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import data.models

revision = "0005_callback_nonces"
down_revision = "0004_relay_marker"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "callback_nonces",
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("timestamp", sa.String(length=16), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("seen_at", data.models.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("channel", "timestamp", "nonce", name=op.f("pk_callback_nonces")),
    )
    op.create_index(op.f("ix_callback_nonces_seen_at"), "callback_nonces", ["seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_callback_nonces_seen_at"), table_name="callback_nonces")
    op.drop_table("callback_nonces")
