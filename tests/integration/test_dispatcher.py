"""The outbox dispatcher on both databases: sends due rows once, retries, records failures."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.app import App
from bot.dispatcher import Dispatcher
from bot.outbound import OutboundMessage, PermanentFailure, TemporaryFailure
from data.clock import FixedClock
from data.db import transaction
from data.models import OutboxMessage
from data.store import Store


class FakeSender:
    """Records what it was given; fails as scripted (a list of exceptions, consumed in order)."""

    def __init__(self, channel: str, failures: list[Exception] | None = None) -> None:
        self.channel = channel
        self.sent: list[OutboundMessage] = []
        self.failures = list(failures or [])

    async def send(self, message: OutboundMessage) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)


def _enqueue(app: App, count: int, channel: str = "telegram", **extra: object) -> list[int]:
    with transaction(app.sessions) as session:
        store = Store(session)
        rows = [
            store.enqueue(channel, f"chat{i}", "notice", f"消息{i}", app.clock.now(), **extra)  # type: ignore[arg-type]
            for i in range(count)
        ]
        session.flush()
        return [r.id for r in rows]


def _rows(app: App) -> list[OutboxMessage]:
    with app.sessions() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


async def test_due_rows_are_sent_once_and_marked(app: App, clock: FixedClock) -> None:
    _enqueue(app, 3)
    sender = FakeSender("telegram")
    dispatcher = Dispatcher(app.sessions, {"telegram": sender}, clock)
    assert await dispatcher.run_once() == 3
    assert await dispatcher.run_once() == 0
    assert [m.text for m in sender.sent] == ["消息0", "消息1", "消息2"]
    assert {r.status for r in _rows(app) if r.channel == "telegram"} == {"sent"}


async def test_temporary_failure_backs_off_then_succeeds(app: App, clock: FixedClock) -> None:
    _enqueue(app, 1)
    sender = FakeSender("telegram", [TemporaryFailure("HTTP 502", retry_after=30)])
    dispatcher = Dispatcher(app.sessions, {"telegram": sender}, clock)
    assert await dispatcher.run_once() == 1
    row = [r for r in _rows(app) if r.channel == "telegram"][0]
    assert row.status == "pending" and row.last_error == "HTTP 502"
    assert row.due_at >= clock.now() + timedelta(seconds=30)
    assert await dispatcher.run_once() == 0  # not due yet: no sleeping, the clock moves
    clock.advance(seconds=31)
    assert await dispatcher.run_once() == 1
    assert len(sender.sent) == 1


async def test_permanent_failure_is_recorded(app: App, clock: FixedClock) -> None:
    _enqueue(app, 1)
    sender = FakeSender("telegram", [PermanentFailure("Forbidden: bot was blocked by the user")])
    dispatcher = Dispatcher(app.sessions, {"telegram": sender}, clock)
    await dispatcher.run_once()
    row = [r for r in _rows(app) if r.channel == "telegram"][0]
    assert row.status == "failed" and "blocked" in (row.last_error or "")
