"""The registry drives the server: a channel registered by a test (tests.fakes.probe_channel) gets its
route, its line in /healthz (down while it cannot start, its route 503 meanwhile), its outbox rows
from the dispatcher and its close at shutdown, with nothing in bot/server.py naming it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from bot.app import App
from bot.channels import registry
from bot.server import create_app
from bot.settings import Settings
from bot.startup import Backoff
from data.clock import FixedClock
from data.db import transaction
from data.models import OutboxMessage
from data.store import Store
from tests.fakes import probe_channel
from tests.fakes.serve import ServerThread

FAST_RETRY = Backoff(first=0.05, cap=0.05)


@pytest.fixture
def probe_app(
    db_url: str, clock: FixedClock, embedded_nlu: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[App]:
    """Settings with no real channel on, and the probe registered."""
    monkeypatch.setitem(registry.CHANNELS, probe_channel.CHANNEL, probe_channel.__name__)
    app = App(replace(Settings(), database_url=db_url), clock)
    app.__dict__["nlu"] = embedded_nlu
    yield app
    app.close()


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_registered_channel_is_served_reported_dispatched_to_and_closed(probe_app: App) -> None:
    web = create_app(probe_app, dispatch_idle=0.05)
    probe = web.state.channels[probe_channel.CHANNEL]
    with ServerThread(web) as server:
        health = httpx.get(f"{server.url}/healthz").json()
        assert health == {"status": "ok", "database": "ok", "channels": {"probe": "up"}}
        answer = httpx.post(f"{server.url}/probe", json={"from": "p1", "text": "物业电话多少"})
        assert answer.status_code == 200 and answer.json()["replies"]
        with transaction(probe_app.sessions) as session:
            row = Store(session).enqueue("probe", "p1", "notice", "停水通知", probe_app.clock.now())
            session.flush()
            row_id = row.id
        assert eventually(lambda: [m.text for m in probe.sender.delivered] == ["停水通知"])
        with probe_app.sessions() as session:
            assert eventually(
                lambda: session.get(OutboxMessage, row_id, populate_existing=True).status == "sent"
            )
    assert probe.closed


def test_a_channel_that_cannot_start_is_down_and_its_route_refuses_until_it_starts(
    probe_app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(probe_channel, "FAIL_START", True)
    with ServerThread(create_app(probe_app, dispatch=False, retry=FAST_RETRY)) as server:
        health = httpx.get(f"{server.url}/healthz").json()
        assert health["status"] == "degraded" and health["channels"] == {"probe": "down"}
        refused = httpx.post(f"{server.url}/probe", json={"from": "p1", "text": "你好"})
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
        monkeypatch.setattr(probe_channel, "FAIL_START", False)
        assert eventually(lambda: httpx.get(f"{server.url}/healthz").json()["channels"] == {"probe": "up"})
        assert httpx.post(f"{server.url}/probe", json={"from": "p1", "text": "你好"}).status_code == 200


def test_an_unregistered_channel_has_no_route(probe_app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(registry.CHANNELS, probe_channel.CHANNEL)
    with ServerThread(create_app(probe_app, dispatch=False)) as server:
        assert httpx.post(f"{server.url}/probe", json={}).status_code == 404
        assert httpx.get(f"{server.url}/healthz").json()["channels"] == {}
