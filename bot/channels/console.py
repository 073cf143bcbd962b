"""Console channel: chat with the bot in a terminal, or pipe a conversation through it.

Messages the bot writes to the outbox for this account and for the staff group are shown inline,
clearly marked, so a demo shows the whole picture.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from bot.app import App
from data.db import unit_of_work
from data.store import STAFF_RECIPIENT, storable_text
from flows.turn import Inbound, Reply

CHANNEL = "console"
BOT = "物业"
STAFF_MARK = "【员工群】"
NOTICE_MARK = "【通知】"


class ConsoleChat:
    def __init__(self, app: App, account: str, out: TextIO, show_staff: bool = True) -> None:
        self.app = app
        self.account = account
        self.out = out
        self.show_staff = show_staff
        self._choices: dict[str, str] = {}

    def send(self, text: str) -> list[Reply]:
        """Handle one line typed by the resident and print everything that results."""
        text = storable_text(self._choices.get(text.strip(), text))  # a caller's str may hold anything
        inbound = Inbound(CHANNEL, self.account, text, self.app.clock.now())
        replies = self.app.engine.handle(inbound)
        for reply in replies:
            self._print_reply(reply)
        self.deliver_outbox()
        return replies

    def _print_reply(self, reply: Reply) -> None:
        self.out.write(f"{BOT}: {reply.text}\n")
        if reply.buttons:
            self._choices = {str(i): b.value for i, b in enumerate(reply.buttons, start=1)}
            self.out.write(
                "    " + "  ".join(f"[{i}] {b.label}" for i, b in enumerate(reply.buttons, 1)) + "\n"
            )
        self.out.flush()

    def deliver_outbox(self) -> None:
        """Show and mark sent what is due for this account (and the staff group, in a demo)."""
        now = self.app.clock.now()
        with unit_of_work(self.app.sessions) as store:
            channels = [CHANNEL, "staff"] if self.show_staff else [CHANNEL]
            for message in store.outbox.pending(channels, now):
                if message.channel == CHANNEL and message.recipient != self.account:
                    continue
                if message.channel == "staff" and message.recipient != STAFF_RECIPIENT:
                    continue
                mark = STAFF_MARK if message.channel == "staff" else NOTICE_MARK
                self.out.write(f"{mark} {message.text}\n")
                message.status, message.sent_at = "sent", now
        self.out.flush()

    def run_lines(self, lines: Iterable[str], echo: bool = True) -> None:
        for line in lines:
            line = line.rstrip("\n")
            if echo:
                self.out.write(f"居民: {line}\n")
            self.send(line)
