"""Engine, sessions and schema migration for SQLite (default) and PostgreSQL."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS = Path(__file__).with_name("migrations")
T = TypeVar("T")
Sessions: TypeAlias = sessionmaker[Session]  # what callers outside data/ hold and pass on
log = logging.getLogger(__name__)


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL, foreign keys and serialised writers."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        if parsed.drivername == "postgresql":
            url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        # No pre-ping: it cost a round trip per transaction, a third of a message's time. A connection
        # lost meanwhile fails its first statement instead (see ``once_more_if_disconnected``).
        return create_engine(url, pool_size=10, max_overflow=20)
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        create_private(Path(parsed.database))
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    _configure_sqlite(engine)
    return engine


def create_private(path: Path) -> None:
    """Create the SQLite file readable by its owner only (0600): it holds residents' phones and the
    WeChat access token. SQLite gives its -wal and -shm files the database file's mode. A file that
    exists keeps its mode (the operator's choice), with a warning if others can read it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))  # an empty file is a database
    except FileExistsError:
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning(
                "%s can be read by other users (mode %03o); it holds phones: chmod 600 it", path, mode
            )


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take over transaction control from pysqlite so that BEGIN IMMEDIATE below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Any) -> None:
        # Writers queue up at BEGIN instead of failing later with "database is locked"
        # when a read transaction tries to become a write transaction.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def once_more_if_disconnected(work: Callable[[], T]) -> T:
    """Run ``work``, one transaction; if the database connection was lost under it (PostgreSQL
    restarted, a proxy cut an idle connection), run it once more. SQLAlchemy has then dropped the
    pool's connections, so the second attempt gets a fresh one. A connection lost during COMMIT
    leaves the outcome unknown: the inbound-message claim makes the second attempt of a committed
    turn answer from the record instead of acting twice."""
    try:
        return work()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("database connection lost (%s); once more on a new connection", type(exc.orig).__name__)
        return work()


def insert_for(dialect: str, table: type[Any]) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which has ``ON CONFLICT`` (SQLite and PostgreSQL)."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back everything on any error."""
    with sessions() as session, session.begin():
        yield session


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (creates it on an empty database)."""
    command.upgrade(alembic_config(engine), "head")
