"""Alembic environment: the engine comes from ``data.db.migrate`` (config attribute)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

import data.scheduling  # noqa: F401  (its tables belong to the same metadata)
from data.models import Base

engine: Engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
