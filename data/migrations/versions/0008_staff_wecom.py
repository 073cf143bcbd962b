"""staff: the WeCom (企业微信) userid a staff member acts from in the WeCom app

Revision ID: 0008_staff_wecom
Revises: 0007_desk_accounts_codes
Create Date: 2026-12-12 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_staff_wecom"
down_revision = "0007_desk_accounts_codes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("staff") as batch:  # SQLite adds a unique column only by a copy
        batch.add_column(sa.Column("wecom_user_id", sa.String(length=64), nullable=True))
        batch.create_unique_constraint("uq_staff_wecom_user_id", ["wecom_user_id"])


def downgrade() -> None:
    with op.batch_alter_table("staff") as batch:
        batch.drop_constraint("uq_staff_wecom_user_id", type_="unique")
        batch.drop_column("wecom_user_id")
