"""The dispatcher and the console take their channels from the registry: a registered channel's rows
go to its sender and no other's; the console's replies are outbox rows the dispatcher delivers to
the terminal, with the account's notices and (in a demo) the staff group's messages, marked."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from bot.app import App
from bot.channels import registry
from bot.channels.base import Wiring
from bot.channels.console import BOT, NOTICE_MARK, STAFF_MARK, ConsoleChat
from bot.channels.photos import PhotoFetcher
from bot.intake import Intake
from bot.metrics import Metrics
from data.clock import FixedClock
from data.db import transaction
from data.models import OutboxMessage
from data.store import Store
from tests.fakes import probe_channel
from tests.fakes.probe_channel import Probe
from tests.integration.outbox_helpers import enqueue, outbox


def queue(app: App, channel: str, recipient: str, text: str) -> None:
    with transaction(app.sessions) as session:
        Store(session).enqueue(channel, recipient, "notice", text, app.clock.now())


@pytest.fixture
def intake(app: App) -> Iterator[Intake]:
    running = Intake(app, Metrics())
    yield running
    running.close()


async def test_the_dispatcher_sends_a_registered_channels_rows_to_its_sender(
    app: App, clock: FixedClock, intake: Intake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(registry.CHANNELS, probe_channel.CHANNEL, probe_channel.__name__)
    channels = registry.build_channels(Wiring(app, intake, PhotoFetcher()), names=["probe", "telegram"])
    assert [c.name for c in channels] == ["probe"]  # Telegram is not configured: not built
    enqueue(app, 2, channel="probe")
    enqueue(app, 1, channel="telegram")
    dispatcher = channels.dispatcher(app.sessions, clock)
    assert await dispatcher.run_once() == 2
    probe = channels["probe"]
    assert isinstance(probe, Probe)
    assert sorted(m.text for m in probe.sender.delivered) == ["消息0", "消息1"]
    assert {r.status for r in outbox(app, "probe")} == {"sent"}
    assert [r.status for r in outbox(app, "telegram")] == ["pending"]  # no channel carries it here
    await channels.close()


def test_console_replies_go_through_the_outbox_and_the_dispatcher(app: App) -> None:
    out = io.StringIO()
    with ConsoleChat(app, "demo", out) as chat:
        replies = chat.send("物业电话多少")
    with app.sessions() as session:
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.channel == "console", OutboxMessage.kind == "reply")
        ).all()
    assert [(r.recipient, r.text, r.status, r.attempts) for r in rows] == [
        ("demo", reply.text, "sent", 1) for reply in replies
    ]
    assert out.getvalue().startswith(f"{BOT}: {replies[0].text}\n")


def test_the_console_shows_its_accounts_notices_and_the_staff_group_after_the_replies(app: App) -> None:
    queue(app, "console", "demo", "明天停水")
    queue(app, "console", "tenant", "给另一个账号")
    queue(app, "staff", "staff", "员工群消息")
    out = io.StringIO()
    with ConsoleChat(app, "demo", out) as chat:
        replies = chat.send("你好")
    printed = out.getvalue()
    assert printed.startswith(f"{BOT}: {replies[0].text}")
    assert printed.index(f"{NOTICE_MARK} 明天停水") < printed.index(f"{STAFF_MARK} 员工群消息")
    assert "给另一个账号" not in printed  # another terminal's
    statuses = {r.text: r.status for r in outbox(app, "console") + outbox(app, "staff")}
    assert statuses["明天停水"] == "sent" and statuses["员工群消息"] == "sent"
    assert statuses["给另一个账号"] == "pending"


def test_without_the_staff_view_the_staff_groups_rows_wait(app: App) -> None:
    queue(app, "staff", "staff", "员工群消息")
    out = io.StringIO()
    with ConsoleChat(app, "demo", out, show_staff=False) as chat:
        chat.send("你好")
    assert STAFF_MARK not in out.getvalue()
    assert [r.status for r in outbox(app, "staff") if r.text == "员工群消息"] == ["pending"]
