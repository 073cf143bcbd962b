"""Outbox dispatcher: claims due outbox rows, hands them to the channel's sender, records the outcome.

Delivery is at least once. A row is claimed (status ``sending`` with a lease in ``claimed_until``) in
one short transaction, sent outside any transaction, then marked in another. A process that dies in
between leaves the row ``sending``; when the lease runs out any dispatcher claims it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from bot.outbound import OutboundMessage, PermanentFailure, Sender, TemporaryFailure
from data.clock import Clock
from data.db import transaction
from data.models import OutboxMessage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DispatchConfig:
    batch: int = 100  # rows claimed per round
    lease: timedelta = timedelta(seconds=120)  # a claimed row is re-claimable after this
    max_attempts: int = 8  # then the row fails for good and staff are told
    backoff_base: float = 5.0  # seconds; doubled per attempt
    backoff_max: float = 3600.0


class Dispatcher:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        senders: dict[str, Sender],
        clock: Clock,
        config: DispatchConfig | None = None,
    ) -> None:
        self.sessions = sessions
        self.senders = senders
        self.clock = clock
        self.config = config or DispatchConfig()

    async def run_forever(self, stop: asyncio.Event, idle: float = 1.0) -> None:
        """Dispatch until ``stop`` is set; sleep ``idle`` seconds when nothing was due."""
        while not stop.is_set():
            try:
                handled = await self.run_once()
            except Exception:  # a database hiccup must not end the loop
                log.exception("dispatch round failed")
                handled = 0
            if handled == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=idle)

    async def run_once(self) -> int:
        """Claim what is due, send it, record the outcome; the number of rows handled."""
        claimed = await asyncio.to_thread(self._claim)
        for message, lease in claimed:
            outcome = await self._send(message)
            await asyncio.to_thread(self._record, message, lease, outcome)
        return len(claimed)

    # -- claiming -------------------------------------------------------------------------------
    def _claim(self) -> list[tuple[OutboundMessage, datetime]]:
        now = self.clock.now()
        lease = now + self.config.lease
        with transaction(self.sessions) as session:
            query = (
                select(OutboxMessage)
                .where(
                    OutboxMessage.channel.in_(list(self.senders)),
                    OutboxMessage.due_at <= now,
                    or_(
                        OutboxMessage.status == "pending",
                        (OutboxMessage.status == "sending") & (OutboxMessage.claimed_until < now),
                    ),
                )
                .order_by(OutboxMessage.urgent.desc(), OutboxMessage.id)
                .limit(self.config.batch)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = session.scalars(query).all()
            for row in rows:
                row.status, row.claimed_until, row.attempts = "sending", lease, row.attempts + 1
            return [(_snapshot(row), lease) for row in rows]

    # -- sending --------------------------------------------------------------------------------
    async def _send(self, message: OutboundMessage) -> Exception | None:
        sender = self.senders[message.channel]
        try:
            await sender.send(message)
        except (TemporaryFailure, PermanentFailure) as exc:
            return exc
        except Exception as exc:  # a sender bug or an unexpected answer: retry, do not crash
            log.exception("sender %s raised on outbox row %s", message.channel, message.id)
            return TemporaryFailure(f"{type(exc).__name__}: {exc}")
        return None

    # -- bookkeeping ----------------------------------------------------------------------------
    def _record(self, message: OutboundMessage, lease: datetime, outcome: Exception | None) -> None:
        now = self.clock.now()
        with transaction(self.sessions) as session:
            row = session.get(OutboxMessage, message.id)
            if row is None or row.status != "sending" or row.claimed_until != lease:
                log.warning("outbox row %s was re-claimed while sending; leaving it", message.id)
                return
            if outcome is None:
                row.status, row.sent_at, row.claimed_until = "sent", now, None
            elif isinstance(outcome, TemporaryFailure) and row.attempts < self.config.max_attempts:
                row.status, row.claimed_until, row.last_error = "pending", None, outcome.reason
                row.due_at = now + timedelta(seconds=self._backoff(row.attempts, outcome.retry_after))
            else:
                reason = getattr(outcome, "reason", str(outcome))
                row.status, row.claimed_until, row.last_error = "failed", None, reason

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        delay = min(self.config.backoff_base * 2 ** max(attempts - 1, 0), self.config.backoff_max)
        return max(delay, retry_after or 0.0)


def _snapshot(row: OutboxMessage) -> OutboundMessage:
    return OutboundMessage(
        id=row.id,
        channel=row.channel,
        recipient=row.recipient,
        kind=row.kind,
        text=row.text,
        payload=dict(row.payload or {}),
        urgent=row.urgent,
        ticket_id=row.ticket_id,
    )

