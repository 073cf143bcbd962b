"""What must hold in the store whatever was thrown at the bot, and the footprint of one request."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from bot.channels.base import PHOTOS
from data.models import (
    ChannelAccount,
    Conversation,
    InboundMessage,
    OutboxMessage,
    Resident,
    Ticket,
    TicketEvent,
)


@dataclass(frozen=True)
class Footprint:
    """Rows a request can leave behind. The outbox count leaves out the rows the dispatcher adds
    itself after a delivery (a card's photos): they come whenever it gets to the card."""

    inbound: int
    tickets: int
    outbox: int
    accounts: int

    @classmethod
    def of(cls, sessions: sessionmaker[Session]) -> Footprint:
        counts = [
            select(func.count()).select_from(InboundMessage).scalar_subquery(),
            select(func.count()).select_from(Ticket).scalar_subquery(),
            select(func.count()).where(OutboxMessage.kind != PHOTOS).scalar_subquery(),
            select(func.count()).select_from(ChannelAccount).scalar_subquery(),
        ]
        with sessions() as session:
            return cls(*session.execute(select(*counts)).one())  # one round trip per look


@dataclass(frozen=True)
class Baseline:
    """The highest ids before fuzzing: the demo compound's own rows are not the fuzzer's."""

    ticket: int
    outbox: int
    inbound: int

    @classmethod
    def of(cls, sessions: sessionmaker[Session]) -> Baseline:
        with sessions() as session:

            def top(column: object) -> int:
                return int(session.scalar(select(func.max(column))) or 0)  # type: ignore[call-overload]

            return cls(top(Ticket.id), top(OutboxMessage.id), top(InboundMessage.id))


def store_problems(sessions: sessionmaker[Session], since: Baseline) -> list[str]:
    """Inconsistencies among the rows made since ``since`` (an empty list when all is well)."""
    problems: list[str] = []
    with sessions() as session:
        accounts = {a.id: a for a in session.scalars(select(ChannelAccount))}
        chats = {(a.channel, a.external_id) for a in accounts.values()}
        dialogs = {(c.channel, c.external_id) for c in session.scalars(select(Conversation))}
        for ticket in session.scalars(select(Ticket).where(Ticket.id > since.ticket)).unique():
            if ticket.account_id not in accounts:
                problems.append(f"ticket {ticket.number} has no account")
            resident = session.get(Resident, ticket.resident_id) if ticket.resident_id else None
            if resident is not None and ticket.unit_id not in (None, resident.unit_id):  # None: common area
                # not "the account's resident": an account may bind anew (a code) after its tickets
                problems.append(f"ticket {ticket.number} is for a unit its resident does not live in")
            events = session.scalar(select(func.count()).where(TicketEvent.ticket_id == ticket.id))
            if not events:
                problems.append(f"ticket {ticket.number} has no events")
        for message in session.scalars(select(InboundMessage).where(InboundMessage.id > since.inbound)):
            if message.channel in ("staff", "wecom_app"):
                continue  # staff presses and commands (Telegram group, WeCom app): no chat account
            if (message.channel, message.external_id) not in chats:
                problems.append(f"inbound {message.channel}:{message.message_id} has no chat account")
            if (message.channel, message.external_id) not in dialogs:
                problems.append(f"inbound {message.channel}:{message.message_id} has no dialog state")
        for row in session.scalars(select(OutboxMessage).where(OutboxMessage.id > since.outbox)):
            if row.status == "failed":
                problems.append(f"outbox {row.id} ({row.channel} {row.kind}) failed: {row.last_error}")
            if row.ticket_id is not None and session.get(Ticket, row.ticket_id) is None:
                problems.append(f"outbox {row.id} points at a missing ticket")
    return problems


def stuck_outbox(sessions: sessionmaker[Session], since: Baseline, now: datetime) -> list[str]:
    """Rows made since ``since`` that the dispatcher is not getting to: taken and their lease lapsed,
    tried and failed, or due a while ago on a channel where nothing was sent lately. The staff
    group takes 20 messages a minute, so a backlog there drains slowly: waiting its turn while
    the channel moves is not stuck."""
    late, lately = now - timedelta(seconds=5), now - timedelta(seconds=10)
    with sessions() as session:
        rows = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.id > since.outbox,
                or_(
                    (OutboxMessage.status == "pending") & (OutboxMessage.due_at <= late),
                    (OutboxMessage.status == "sending") & (OutboxMessage.claimed_until <= now),
                    (OutboxMessage.status != "sent") & OutboxMessage.last_error.is_not(None),
                ),
            )
        ).all()
        moving = set(
            session.scalars(select(OutboxMessage.channel).where(OutboxMessage.sent_at >= lately).distinct())
        )
        return [
            f"outbox {r.id} ({r.channel} {r.kind}) {r.status}, {r.attempts} tries: {r.last_error}"
            for r in rows
            if r.status != "pending" or r.last_error is not None or r.channel not in moving
        ]


def wait_until_delivered(
    sessions: sessionmaker[Session], since: Baseline, now: Callable[[], datetime], timeout: float = 15.0
) -> list[str]:
    """Wait for the dispatcher to get to every due row; what is still stuck after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        stuck = stuck_outbox(sessions, since, now())
        if not stuck or time.monotonic() > deadline:
            return stuck
        time.sleep(0.1)
