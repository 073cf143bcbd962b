"""Console channel: chat with the bot in a terminal, or pipe a conversation through it.

It takes the path the other channels take: each line is an ``Inbound`` handed to ``Intake``, the
engine's replies become outbox rows, and the outbox dispatcher delivers them to the terminal
(``ConsoleSender``) in the same round as everything else due for this account (notices, marked) and,
in a demo, for the staff group (``StaffView``, marked). So a console session exercises intake, the
outbox and the dispatcher as production does, and still answers at once (no rate limits: a terminal
takes any pace).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import TextIO

from starlette.routing import Route

from bot.app import App
from bot.channels.base import STAFF, Outlet, Terminal, Wiring
from bot.channels.registry import build_channels
from bot.intake import Intake
from bot.metrics import Metrics
from bot.outbound import OutboundMessage
from bot.ratelimit import ChannelLimits
from data.db import unit_of_work
from data.store import STAFF_RECIPIENT, storable_text
from flows.dialog.turn import Button, Inbound, Reply

CHANNEL = "console"
BOT = "物业"
STAFF_MARK = "【员工群】"
NOTICE_MARK = "【通知】"
REPLY = "reply"  # the outbox kind of a conversation reply
ANY_PACE = ChannelLimits()


class Screen:
    """What one dispatcher round delivered, printed in the order a reader expects: the replies to
    the line just typed, then the rest by age. The last buttons shown are the numbers one can type."""

    def __init__(self, terminal: Terminal) -> None:
        self.terminal = terminal
        self.choices: dict[str, str] = {}
        self._replies: list[OutboundMessage] = []
        self._others: list[tuple[str, OutboundMessage]] = []

    def reply(self, message: OutboundMessage) -> None:
        self._replies.append(message)

    def other(self, mark: str, message: OutboundMessage) -> None:
        self._others.append((mark, message))

    def flush(self) -> None:
        out = self.terminal.out
        for message in sorted(self._replies, key=lambda m: m.id):
            out.write(f"{BOT}: {message.text}\n")
            buttons = [Button(label, value) for label, value in message.payload.get("buttons") or ()]
            if buttons:
                self.choices = {str(i): b.value for i, b in enumerate(buttons, start=1)}
                out.write("    " + "  ".join(f"[{i}] {b.label}" for i, b in enumerate(buttons, 1)) + "\n")
        for mark, message in sorted(self._others, key=lambda item: item[1].id):
            out.write(f"{mark} {message.text}\n")
        out.flush()
        self._replies, self._others = [], []


class ConsoleSender:
    """The console account's outbox rows: conversation replies with their buttons, anything else
    (notices, reminders, a technician on the way) marked as a notice."""

    channel = CHANNEL

    def __init__(self, screen: Screen) -> None:
        self.screen = screen

    async def send(self, message: OutboundMessage) -> None:
        if message.kind == REPLY:
            self.screen.reply(message)
        else:
            self.screen.other(NOTICE_MARK, message)


class StaffView:
    """The staff group's rows, shown in the terminal (a demo shows what staff would get)."""

    channel = STAFF

    def __init__(self, screen: Screen) -> None:
        self.screen = screen

    async def send(self, message: OutboundMessage) -> None:
        self.screen.other(STAFF_MARK, message)


class ConsoleChannel:
    """The console as a registered channel: lines in (``say``), the outbox's rows out to the screen."""

    name = CHANNEL

    def __init__(self, intake: Intake, terminal: Terminal) -> None:
        self.intake = intake
        self.account = terminal.account
        self.screen = Screen(terminal)
        self._outlets = [Outlet(CHANNEL, ConsoleSender(self.screen), limits=ANY_PACE, recipient=self.account)]
        if terminal.show_staff:
            view = StaffView(self.screen)
            self._outlets.append(Outlet(STAFF, view, limits=ANY_PACE, recipient=STAFF_RECIPIENT))

    def routes(self) -> Sequence[Route]:
        return ()  # it reads a terminal, not HTTP

    def outlets(self) -> Sequence[Outlet]:
        return self._outlets

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def say(self, text: str) -> list[Reply]:
        """One line typed by the resident: the engine's replies, queued in the outbox."""
        inbound = Inbound(CHANNEL, self.account, text, self.intake.app.clock.now())
        async with self.intake.chat(CHANNEL, self.account):
            replies = await self.intake.handle(inbound)
            await self.intake.run(self._enqueue, replies, inbound.received_at)
        return replies

    def _enqueue(self, replies: list[Reply], now: datetime) -> None:
        with unit_of_work(self.intake.app.sessions) as store:
            for reply in replies:
                store.enqueue(CHANNEL, self.account, REPLY, reply.text, now, payload=reply.to_json())


def build(wiring: Wiring) -> ConsoleChannel | None:
    return ConsoleChannel(wiring.intake, wiring.terminal) if wiring.terminal is not None else None


class ConsoleChat:
    """A terminal session (``propbot chat``): the console channel built by the registry, with its
    own intake and dispatcher on one event loop. Close it (or use ``with``) when done."""

    def __init__(self, app: App, account: str, out: TextIO, show_staff: bool = True) -> None:
        self.app = app
        self.account = account
        self._loop = asyncio.Runner()
        self.intake = Intake(app, Metrics())
        wiring = Wiring(app, self.intake, terminal=Terminal(account, out, show_staff))
        self.channels = build_channels(wiring, names=[CHANNEL])
        console = self.channels[CHANNEL]
        assert isinstance(console, ConsoleChannel)
        self.console = console
        self.dispatcher = self.channels.dispatcher(app.sessions, app.clock)

    def send(self, text: str) -> list[Reply]:
        """Handle one line typed by the resident and print everything that results."""
        text = storable_text(self.console.screen.choices.get(text.strip(), text))  # a str may hold anything
        return self._loop.run(self._turn(text))

    async def _turn(self, text: str) -> list[Reply]:
        replies = await self.console.say(text)
        await self.dispatcher.run_once()
        self.console.screen.flush()
        return replies

    def run_lines(self, lines: Iterable[str], echo: bool = True) -> None:
        for line in lines:
            line = line.rstrip("\n")
            if echo:
                self.console.screen.terminal.out.write(f"居民: {line}\n")
            self.send(line)

    def close(self) -> None:
        self._loop.run(self.channels.close())
        self.intake.close()
        self._loop.close()

    def __enter__(self) -> ConsoleChat:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()
