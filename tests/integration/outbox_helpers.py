"""Shared bits for the dispatcher and scheduler tests: scripted senders, a dispatcher whose rate
limits run on the test's clock, outbox look-ups."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import select

from bot.app import App
from bot.dispatcher import DispatchConfig, Dispatcher
from bot.outbound import OutboundMessage, Sender
from data.clock import FixedClock
from data.db import transaction
from data.models import OutboxMessage
from data.store import Store


class FakeSender:
    """Records what it was given; fails as scripted (exceptions consumed in order)."""

    def __init__(self, channel: str, failures: list[Exception] | None = None) -> None:
        self.channel = channel
        self.sent: list[OutboundMessage] = []
        self.failures = list(failures or [])
        self.lock = threading.Lock()

    async def send(self, message: OutboundMessage) -> None:
        with self.lock:
            if self.failures:
                raise self.failures.pop(0)
            self.sent.append(message)

    @property
    def texts(self) -> list[str]:
        return [m.text for m in self.sent]


def dispatcher(
    app: App, clock: FixedClock, senders: dict[str, Sender], config: DispatchConfig | None = None, **kw: Any
) -> Dispatcher:
    """A dispatcher whose rate limits read the test's clock and whose waits move it."""

    async def sleep(seconds: float) -> None:
        clock.advance(seconds=seconds)

    return Dispatcher(
        app.sessions, senders, clock, config, monotonic=lambda: clock.now().timestamp(), sleep=sleep, **kw
    )


def enqueue(
    app: App,
    count: int,
    channel: str = "telegram",
    recipient: str | None = None,
    kind: str = "notice",
    **extra: Any,
) -> list[int]:
    with transaction(app.sessions) as session:
        store = Store(session)
        now = app.clock.now()
        rows = [
            store.enqueue(channel, recipient or f"chat{i}", kind, f"消息{i}", now, **extra)
            for i in range(count)
        ]
        session.flush()
        return [r.id for r in rows]


def outbox(app: App, channel: str | None = None) -> list[OutboxMessage]:
    with app.sessions() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        if channel is not None:
            query = query.where(OutboxMessage.channel == channel)
        return list(session.scalars(query))


def staff_texts(app: App) -> list[str]:
    return [r.text for r in outbox(app, "staff")]
