"""SQL the repositories share."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite


def insert_for(dialect: str, table: type[Any]) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which has ``ON CONFLICT`` (SQLite and PostgreSQL)."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
