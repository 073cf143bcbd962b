"""web front desk: logins (desk_accounts) and their sessions (desk_sessions); binding codes from
the office expire, can be revoked and name who issued them

Revision ID: 0007_desk_accounts_codes
Revises: 0006_outbox_claims
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from data.models import UTCDateTime

revision = "0007_desk_accounts_codes"
down_revision = "0006_outbox_claims"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "desk_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("login", sa.String(length=50), nullable=False),
        sa.Column("staff_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("failed_since", UTCDateTime(timezone=True), nullable=True),
        sa.Column("locked_until", UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["staff_id"], ["staff.id"], name="fk_desk_accounts_staff_id_staff"),
        sa.PrimaryKeyConstraint("id", name="pk_desk_accounts"),
        sa.UniqueConstraint("login", name="uq_desk_accounts_login"),
        sa.UniqueConstraint("staff_id", name="uq_desk_accounts_staff_id"),
    )
    op.create_table(
        "desk_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("csrf", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("flash", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["desk_accounts.id"],
            name="fk_desk_sessions_account_id_desk_accounts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_desk_sessions"),
    )
    op.create_index("ix_desk_sessions_account_id", "desk_sessions", ["account_id"], unique=False)
    op.create_index("ix_desk_sessions_expires_at", "desk_sessions", ["expires_at"], unique=False)
    with op.batch_alter_table("binding_codes") as batch:
        batch.add_column(sa.Column("expires_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revoked_at", UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("issued_by", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("binding_codes") as batch:
        batch.drop_column("issued_by")
        batch.drop_column("revoked_at")
        batch.drop_column("expires_at")
    op.drop_index("ix_desk_sessions_expires_at", table_name="desk_sessions")
    op.drop_index("ix_desk_sessions_account_id", table_name="desk_sessions")
    op.drop_table("desk_sessions")
    op.drop_table("desk_accounts")
