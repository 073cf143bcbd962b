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


def make_ticket(
    app: App,
    *,
    account: str | None = "demo",
    description: str = "卫生间灯不亮了",
    category: str = "lighting",
    kind: str = "repair",
    assignee: str | None = "张师傅",
    done: bool = False,
    unit: tuple[int, int, str] | None = None,
) -> str:
    """A ticket made through the lifecycle functions, as the front desk and staff would."""
    from flows.domain.tickets import NewTicket, assign, mark_done, open_ticket

    with transaction(app.sessions) as session:
        store = Store(session)
        now = app.clock.now()
        owner = store.account("console", account) if account else None
        ticket = open_ticket(
            store,
            store.compound(),
            owner,
            NewTicket(kind, description, category=category, area="in_home"),
            now,
            f"console:{account}",
        )
        if unit is not None:
            found = store.find_unit(*unit)
            assert found is not None
            ticket.unit_id = found.id
        if assignee:
            staff = store.staff_member(assignee)
            assert staff is not None
            assign(store, ticket, staff, now, f"staff:{staff.id}")
        if done:
            mark_done(store, ticket, now, "staff:3")
        return ticket.number


def run_sweeps(app: App, *jobs: str) -> list[Any]:
    from flows.jobs import sweeps

    with transaction(app.sessions) as session:
        return sweeps.run(Store(session), app.clock.now(), list(jobs) or None)


def due_now(app: App, *jobs: str) -> list[Any]:
    from flows.jobs import sweeps

    with app.sessions() as session:
        return sweeps.due(Store(session), app.clock.now(), list(jobs) or None)
