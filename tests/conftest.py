"""Shared fixtures: a demo store on SQLite and on PostgreSQL, a fixed clock, a conversation driver.

The demo compound is built once per backend per session (a template), and each test gets a fresh
copy: a file copy on SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import psycopg
import pytest

from bot.app import App
from bot.settings import Settings
from data.clock import SHANGHAI, FixedClock
from data.db import make_engine, make_session_factory, migrate, transaction
from data.demo import load_demo
from data.store import Store
from flows.dialog.turn import Inbound

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)  # a Monday morning
PG_ADMIN = os.environ.get("PROPBOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pg_url(database: str) -> str:
    base, _, _ = PG_ADMIN.rpartition("/")
    return f"{base}/{database}"


def _pg_admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql)


@contextmanager
def pg_database(template: str | None = None) -> Iterator[str]:
    """The name of a throwaway PostgreSQL database, empty or a copy of ``template``."""
    name = f"propbot_t_{uuid.uuid4().hex[:10]}"
    _pg_admin(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield name
    finally:
        _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _build_template(url: str) -> None:
    engine = make_engine(url)
    try:
        migrate(engine)
        with transaction(make_session_factory(engine)) as session:
            load_demo(Store(session), NOW)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "demo.db"
    _build_template(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    with pg_database() as name:
        _build_template(pg_url(name))
        yield name


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh copy of the demo store, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "propbot.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    with pg_database(template=request.getfixturevalue("pg_template")) as name:
        yield pg_url(name)


@pytest.fixture(params=BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema yet), once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    with pg_database() as name:
        yield pg_url(name)


@pytest.fixture(scope="session")
def embedded_nlu():  # type: ignore[no-untyped-def]
    import nlu

    return nlu.load_backend("embedded")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def app(db_url: str, clock: FixedClock, embedded_nlu) -> Iterator[App]:  # type: ignore[no-untyped-def]
    application = App(replace(Settings(), database_url=db_url), clock)
    application.__dict__["nlu"] = embedded_nlu  # one trained model per session
    yield application
    application.close()


class Chat:
    """Drives whole conversations through the engine, as a console account."""

    def __init__(self, app: App, account: str = "demo", channel: str = "console") -> None:
        self.app = app
        self.account = account
        self.channel = channel
        self.last: list[str] = []
        self.last_buttons: list[str] = []
        self._values: dict[str, str] = {}

    def say(self, text: str, photos: tuple[str, ...] = (), message_id: str | None = None) -> str:
        inbound = Inbound(self.channel, self.account, text, self.app.clock.now(), message_id, photos)
        replies = self.app.engine.handle(inbound)
        self.last = [r.text for r in replies]
        self.last_buttons = [b.label for r in replies for b in r.buttons]
        self._values = {b.label: b.value for r in replies for b in r.buttons}
        return "\n".join(self.last)

    def press(self, label: str) -> str:
        """Press a button of the last reply, as a channel would: its value is sent."""
        assert label in self._values, f"no button {label!r} in {self.last_buttons}"
        return self.say(self._values[label])

    def store(self) -> Store:
        """A read-only look at the store (a new session each time)."""
        return Store(self.app.sessions())


@pytest.fixture
def chat(app: App) -> Chat:
    return Chat(app)
