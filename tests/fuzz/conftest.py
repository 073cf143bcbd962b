"""Fuzzing the doors residents (and strangers) can knock on: ``/telegram``, ``/wechat`` and the console.

One real server per backend (uvicorn on a loopback port, fake Telegram and WeChat APIs, the
dispatcher and scheduler running), shared by every example of both webhooks' modules: starting one
costs more than a hundred requests. The invariants are checked per request (its status, its reply, what it
left in the store) and over the whole store afterwards (``tests/fuzz/invariants.py``).

Hypothesis runs derandomized (the same examples every run) with a bounded number of examples, so a
failure reproduces and ``make test`` stays fast; ``PROPBOT_FUZZ_EXAMPLES=2000`` runs a longer hunt.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from bot.app import App
from tests.conftest import BACKENDS, NOW, pg_database, pg_url
from tests.e2e.conftest import Propbot, RunningClock, channel_settings, start_propbot
from tests.fakes.serve import served
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.wechat_api import FakeWeChat

CORPUS = Path(__file__).parent / "corpus"
EXAMPLES = int(os.environ.get("PROPBOT_FUZZ_EXAMPLES", "40"))
LOGGERS = ("bot", "flows", "data", "nlu")

FUZZ = settings(
    derandomize=True,  # the same examples on every run: a failure in CI reproduces locally
    database=None,  # nothing written to .hypothesis/
    max_examples=EXAMPLES,
    deadline=None,  # a request is real HTTP and a database transaction; timing is not the point
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    print_blob=True,
)


@pytest.fixture(scope="session", params=BACKENDS)
def fuzz_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A copy of the demo store for the whole module, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("fuzz") / "propbot.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    with pg_database(template=request.getfixturevalue("pg_template")) as name:
        yield pg_url(name)


@pytest.fixture(scope="session")
def fuzz_telegram() -> Iterator[FakeTelegram]:
    with served(FakeTelegram()) as fake:
        yield fake


@pytest.fixture(scope="session")
def fuzz_wechat() -> Iterator[FakeWeChat]:
    with served(FakeWeChat()) as fake:
        yield fake


@pytest.fixture(scope="session")
def fuzz_propbot(
    fuzz_db_url: str, embedded_nlu: Any, fuzz_telegram: FakeTelegram, fuzz_wechat: FakeWeChat
) -> Iterator[Propbot]:
    settings_ = channel_settings(fuzz_db_url, fuzz_telegram.url, fuzz_wechat.url)  # type: ignore[attr-defined]
    app = App(settings_, RunningClock(NOW))
    app.__dict__["nlu"] = embedded_nlu
    try:
        yield from start_propbot(app, fuzz_telegram, fuzz_wechat)
    finally:
        app.close()


class Logs:
    """The records of propbot's loggers (DEBUG and up) and of anything else at WARNING and up."""

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self._seen = 0

    def problems(self) -> list[str]:
        """Tracebacks and errors logged since the last call (so each example answers for its own)."""
        records = self.caplog.records[self._seen :]
        self._seen = len(self.caplog.records)
        return [_describe(r) for r in records if r.exc_info or r.levelno >= logging.ERROR]


def _describe(record: logging.LogRecord) -> str:
    """The record's message and, for a traceback, its last lines (where it failed, and why)."""
    text = f"{record.name} {record.levelname}: {record.getMessage()}"
    if record.exc_info:
        lines = logging.Formatter().formatException(record.exc_info).splitlines()
        text += "\n" + "\n".join(lines[-6:])
    return text


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Logs:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return Logs(caplog)
