"""Outbox dispatcher: claims due outbox rows, hands them to the channel's sender, records the outcome.

Delivery is **at least once**, and duplicates are confined to one narrow edge:

* A row is claimed in one short transaction (status ``sending``, ``attempts`` + 1, a lease in
  ``claimed_until``); on PostgreSQL with ``FOR UPDATE SKIP LOCKED`` so concurrent dispatchers take
  disjoint rows, on SQLite the writer lock (``BEGIN IMMEDIATE``) serialises the claims.
* It is sent outside any transaction, then marked in another one, but only if the row still
  carries this claim (same ``attempts``): a claim that outlived its lease never overwrites a newer one.
* A process killed between claim and mark leaves the row ``sending``; when the lease runs out any
  dispatcher claims it again. Nothing is lost. If the kill came *after* the peer accepted the message
  and *before* the mark, the message goes out twice: that window is one HTTP round trip per row.
  Dedupe keys work one level up: a sweep or a retried request that would enqueue the same message
  again finds the key taken, so a duplicate can only come from that window, never from the business
  logic. The lease is kept well above the send timeout plus the rate-limit wait, so a live dispatcher
  never has its rows taken away.
* ``attempts`` counts claims, so a message that crashes the process on every try (a poison message)
  fails for good after ``max_attempts`` instead of crash-looping.
* A sender may ask for follow-up rows (a card's photos, as a reply to the card it has just sent):
  they are added in the transaction that marks the row sent, with a dedupe key naming the row, so
  they exist exactly when the row is recorded as sent.

Quiet hours hold non-urgent messages to residents (the staff group and urgent messages go anyway;
a resident who wrote to us in the last ``quiet_grace_min`` minutes is evidently awake). Rate limits
come from ``bot.ratelimit``; a message that would wait too long goes back to the outbox with a later
``due_at`` instead of holding its lease. Failures are recorded in ``last_error``; permanent ones and
exhausted retries are reported to the staff group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from bot.outbound import FollowUp, OutboundMessage, PermanentFailure, Sender, TemporaryFailure
from bot.ratelimit import DEFAULT_LIMITS, ChannelLimiter, ChannelLimits, Monotonic
from data.clock import Clock, local
from data.db import transaction
from data.models import Building, ChannelAccount, Compound, OutboxMessage, Resident, Unit
from data.settings import DEFAULTS, CompoundSettings
from data.store import day_start
from flows.outbox import enqueue_once, staff_once
from flows.quiet import next_allowed

log = logging.getLogger(__name__)

STAFF_CHANNELS = frozenset({"staff", "wecom"})
WECHAT_WINDOW = timedelta(hours=48)  # customer-service messages only inside it; templates outside
KIND_WORDS = {
    "reminder": "缴费提醒",
    "bill_notice": "账单通知",
    "callback": "满意度回访",
    "done": "完工确认",
    "dispatched": "派工通知",
    "notice": "小区通知",
    "greeting": "节日问候",
    "relay": "员工回复",
}


@dataclass(frozen=True)
class DispatchConfig:
    batch: int = 100  # rows claimed per round
    lease: timedelta = timedelta(seconds=120)  # a claimed row is re-claimable after this
    send_timeout: float = 30.0  # seconds; a send taking longer is a temporary failure
    max_wait: float = 10.0  # longest rate-limit wait before a row goes back to the outbox
    # longest wait for one chat's own limit: longer, and the chat's rest goes back to the outbox so
    # the round is not held open (and the overall rate idle) while one chat waits its turn
    chat_wait: float = 0.25
    max_attempts: int = 8  # then the row fails for good and staff are told
    backoff_base: float = 5.0  # seconds; doubled per attempt
    backoff_max: float = 3600.0
    concurrency: int = 32  # recipients served at once (one message at a time per recipient)
    clock_skew: timedelta = timedelta(minutes=1)  # a backward jump larger than this is reported


@dataclass(frozen=True)
class Claim:
    message: OutboundMessage
    token: int  # the row's ``attempts`` after this claim
    deadline: float  # monotonic time by which this claim must be settled (lease minus margin)


@dataclass
class _Recipients:
    """What the claim needs to know about the resident behind each row."""

    settings: dict[int, CompoundSettings]
    default: CompoundSettings
    accounts: dict[tuple[str, str], tuple[datetime | None, int | None]] = field(default_factory=dict)

    def of(self, row: OutboxMessage) -> tuple[datetime | None, CompoundSettings]:
        last_inbound, compound_id = self.accounts.get((row.channel, row.recipient), (None, None))
        return last_inbound, self.settings.get(compound_id or -1, self.default)


class Dispatcher:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        senders: dict[str, Sender],
        clock: Clock,
        config: DispatchConfig | None = None,
        limits: dict[str, ChannelLimits] | None = None,
        monotonic: Monotonic = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        shared: dict[str, str] | None = None,
    ) -> None:
        """``shared`` maps a channel to another whose rate limiter it uses: two channels that reach
        one peer (the WeCom robot's own ``wecom`` rows and ``staff`` rows) keep to one limit."""
        self.sessions = sessions
        self.senders = senders
        self.clock = clock
        self.config = config or DispatchConfig()
        self.monotonic = monotonic
        self.sleep = sleep  # tests pass one that moves their clock
        chosen = {**DEFAULT_LIMITS, **(limits or {})}
        self.limiters = {c: ChannelLimiter(chosen.get(c, ChannelLimits()), monotonic) for c in senders}
        for channel, peer in (shared or {}).items():
            if channel in self.limiters and peer in self.limiters:
                self.limiters[channel] = self.limiters[peer]
        self._last_now: datetime | None = None
        self._stop: asyncio.Event | None = None  # run_forever's: set, a round sends nothing more

    # -- loop -----------------------------------------------------------------------------------
    async def run_forever(self, stop: asyncio.Event, idle: float = 1.0) -> None:
        """Dispatch until ``stop`` is set; rest ``idle`` seconds when nothing was due, longer
        (up to a minute) while rounds keep failing, so a broken database is not hammered."""
        failures = 0
        self._stop = stop
        while not stop.is_set():
            try:
                handled = await self.run_once()
                failures = 0
            except Exception:
                failures += 1
                log.exception("dispatch round failed (%d in a row)", failures)
                handled = 0
            if handled == 0:
                pause = min(idle * 2**failures, 60.0) if failures else idle
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=pause)

    async def run_once(self) -> int:
        """Claim what is due, send it, record the outcome; the number of rows claimed."""
        now = self.clock.now()
        await asyncio.to_thread(self._check_clock, now)
        claims = await asyncio.to_thread(self._claim, now)
        groups: dict[tuple[str, str], list[Claim]] = defaultdict(list)
        for claim in claims:
            groups[(claim.message.channel, claim.message.recipient)].append(claim)
        gate = asyncio.Semaphore(self.config.concurrency)

        async def serve(group: list[Claim]) -> None:
            async with gate:
                await self._deliver(group)

        await asyncio.gather(*(serve(g) for g in groups.values()))
        return len(claims)

    # -- claiming -------------------------------------------------------------------------------
    def _claim(self, now: datetime) -> list[Claim]:
        deadline = self.monotonic() + (self.config.lease.total_seconds() * 0.75)
        with transaction(self.sessions) as session:
            rows = self._candidates(session, now)
            if not rows:
                return []
            recipients = _load_recipients(session, rows)
            quota = _QuotaBook(session, self.limiters, now)
            claims = []
            for row in rows:
                if self._hold(row, recipients, now) or quota.defer(session, row, now):
                    continue
                row.status, row.attempts = "sending", row.attempts + 1
                row.claimed_until = now + self.config.lease
                claims.append(Claim(_snapshot(row, recipients, now), row.attempts, deadline))
            return claims

    def _candidates(self, session: Session, now: datetime) -> Sequence[OutboxMessage]:
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
        return session.scalars(query).all()

    @staticmethod
    def _hold(row: OutboxMessage, recipients: _Recipients, now: datetime) -> bool:
        """Quiet hours: move a non-urgent resident message to the end of them (True if held)."""
        if row.urgent or row.channel in STAFF_CHANNELS:
            return False
        last_inbound, settings = recipients.of(row)
        if last_inbound is not None and now - last_inbound <= timedelta(minutes=settings.quiet_grace_min):
            return False
        release = next_allowed(settings, now)
        if release <= now:
            return False
        row.status, row.claimed_until, row.due_at = "pending", None, release
        return True

    # -- sending --------------------------------------------------------------------------------
    async def _deliver(self, group: list[Claim]) -> None:
        """One recipient's messages, in order; the rest go back to the outbox if one must wait."""
        limiter = self.limiters[group[0].message.channel]
        for index, claim in enumerate(group):
            if self._stopping() or not await self._acquire(limiter, claim) or self._stopping():
                # Stopping: back to the outbox now, not after the lease, for the next process to send.
                later = 0.0 if self._stopping() else max(limiter.delay(claim.message.recipient), 0.1)
                await asyncio.to_thread(self._defer, group[index:], later)
                return
            outcome = await self._send(claim.message)
            if isinstance(outcome, TemporaryFailure) and outcome.retry_after:
                limiter.pause(outcome.retry_after)  # Telegram's retry_after holds for the whole bot
            await asyncio.to_thread(self._record, claim, outcome)

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    async def _acquire(self, limiter: ChannelLimiter, claim: Claim) -> bool:
        """Wait for the rate limits; False if that would take longer than the claim can afford."""
        recipient = claim.message.recipient
        budget = min(self.config.max_wait, claim.deadline - self.monotonic() - self.config.send_timeout)
        chat = limiter.chat_delay(recipient)
        if chat > min(budget, self.config.chat_wait):
            return False
        if chat > 0:
            await self.sleep(chat)
        wait = limiter.reserve(recipient, budget - chat, cost=_cost(claim.message))
        if wait is None:
            return False
        if wait > 0:
            await self.sleep(wait)
        return True

    async def _send(self, message: OutboundMessage) -> Exception | list[FollowUp]:
        """The failure, or the follow-up rows the sender asked for (a list, maybe empty: sent)."""
        sender = self.senders[message.channel]
        try:
            asked = await asyncio.wait_for(sender.send(message), timeout=self.config.send_timeout)
        except (TemporaryFailure, PermanentFailure) as exc:
            return exc
        except TimeoutError:
            return TemporaryFailure(f"no answer within {self.config.send_timeout:g}s")
        except Exception as exc:  # a sender bug or a garbage answer: retry, report, never crash
            log.exception("sender %s raised on outbox row %s", message.channel, message.id)
            return TemporaryFailure(f"{type(exc).__name__}: {exc}"[:500])
        follow = [f for f in asked or () if isinstance(f, FollowUp)]
        if asked and len(follow) != len(asked):  # it was sent: never fail it over a sender bug
            log.error("sender %s returned non-follow-ups for row %s", message.channel, message.id)
        return follow

    # -- bookkeeping ----------------------------------------------------------------------------
    def _record(self, claim: Claim, outcome: Exception | Sequence[FollowUp] | None) -> None:
        """Mark the row sent (adding its follow-ups), back to pending, or failed; ``outcome`` is the
        failure, or what a successful send asked for (None: nothing)."""
        now = self.clock.now()
        with transaction(self.sessions) as session:
            row = session.get(OutboxMessage, claim.message.id)
            if row is None or row.status != "sending" or row.attempts != claim.token:
                log.warning("outbox row %s was claimed again while sending; leaving it", claim.message.id)
                return
            row.claimed_until = None
            if not isinstance(outcome, Exception):
                row.status, row.sent_at = "sent", now
                _add_follow_ups(session, row, outcome or (), now)
            elif isinstance(outcome, TemporaryFailure) and row.attempts < self.config.max_attempts:
                row.status, row.last_error = "pending", outcome.reason
                row.due_at = now + timedelta(seconds=self._backoff(row.attempts, outcome.retry_after))
            else:
                reason = getattr(outcome, "reason", str(outcome))
                if isinstance(outcome, TemporaryFailure):
                    reason = f"{row.attempts} 次尝试均失败，最后一次：{reason}"
                row.status, row.last_error = "failed", reason
                _report_failure(session, row, now)

    def _defer(self, claims: Sequence[Claim], seconds: float) -> None:
        """Back to the outbox for later; a deferral is not an attempt."""
        due = self.clock.now() + timedelta(seconds=seconds)
        with transaction(self.sessions) as session:
            for claim in claims:
                row = session.get(OutboxMessage, claim.message.id)
                if row is None or row.status != "sending" or row.attempts != claim.token:
                    continue
                row.status, row.claimed_until, row.due_at = "pending", None, due
                row.attempts -= 1

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        delay = min(self.config.backoff_base * 2 ** max(attempts - 1, 0), self.config.backoff_max)
        delay *= 1 + random.uniform(0, 0.1)  # spread retries of a burst that failed together
        return float(max(delay, retry_after or 0.0))

    def _check_clock(self, now: datetime) -> None:
        """A clock that jumps backwards is recorded and reported once; leases stay safe because a
        row is only ever marked by the claim that holds it."""
        last, self._last_now = self._last_now, now
        if last is None or last - now <= self.config.clock_skew:
            return
        log.error("clock went backwards: %s -> %s", last.isoformat(), now.isoformat())
        with transaction(self.sessions) as session:
            staff_once(
                session,
                f"clock_back:dispatcher:{local(last):%Y%m%d%H%M}",
                "system",
                f"【系统提醒】服务器时间倒退（{local(last):%m-%d %H:%M} → {local(now):%m-%d %H:%M}），"
                "消息发送不受影响，请技术人员检查服务器时间同步。",
                now,
            )


# -- helpers shared by the claim and the record ------------------------------------------------------
class _QuotaBook:
    """Daily quotas, counted from the outbox itself so every process sees the same number; a
    channel is counted only when one of its rows is about to be claimed."""

    def __init__(self, session: Session, limiters: dict[str, ChannelLimiter], now: datetime) -> None:
        self.session = session
        self.limiters = limiters
        self.midnight = day_start(now)
        self.left: dict[str, int] = {}

    def _left(self, channel: str) -> int | None:
        daily = self.limiters[channel].limits.daily
        if daily is None:
            return None
        if channel not in self.left:
            used = self.session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(
                    OutboxMessage.channel == channel,
                    or_(
                        (OutboxMessage.status == "sent") & (OutboxMessage.sent_at >= self.midnight),
                        OutboxMessage.status == "sending",  # claimed by someone right now
                    ),
                )
            )
            self.left[channel] = daily - int(used or 0)
        return self.left[channel]

    def defer(self, session: Session, row: OutboxMessage, now: datetime) -> bool:
        left = self._left(row.channel)
        if left is None:
            return False
        if left > 0:
            self.left[row.channel] = left - 1
            return False
        tomorrow = day_start(now) + timedelta(days=1)
        row.status, row.claimed_until, row.due_at = "pending", None, tomorrow
        staff_once(
            session,
            f"quota:{row.channel}:{local(now):%Y%m%d}",
            "system",
            f"【系统提醒】今日{row.channel}消息额度已用完，其余消息将于明天 0 点后继续发送。",
            now,
        )
        return True


def _load_recipients(session: Session, rows: Sequence[OutboxMessage]) -> _Recipients:
    compounds = session.execute(select(Compound.id, Compound.settings).order_by(Compound.id)).all()
    settings = {cid: CompoundSettings.from_json(raw) for cid, raw in compounds}
    recipients = _Recipients(settings, settings[compounds[0][0]] if compounds else DEFAULTS)
    wanted: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row.channel not in STAFF_CHANNELS:
            wanted[row.channel].add(row.recipient)
    for channel, ids in wanted.items():
        found = session.execute(
            select(ChannelAccount.external_id, ChannelAccount.last_inbound_at, Building.compound_id)
            .outerjoin(Resident, ChannelAccount.resident_id == Resident.id)
            .outerjoin(Unit, Resident.unit_id == Unit.id)
            .outerjoin(Building, Unit.building_id == Building.id)
            .where(ChannelAccount.channel == channel, ChannelAccount.external_id.in_(ids))
        ).all()
        for external_id, last_inbound, compound_id in found:
            recipients.accounts[(channel, external_id)] = (last_inbound, compound_id)
    return recipients


def _cost(message: OutboundMessage) -> int:
    """Messages one row stands for against the rate limits: an album of N photos is N messages."""
    try:
        return max(1, int(message.payload.get("cost") or 1))
    except (TypeError, ValueError):
        return 1


def _add_follow_ups(session: Session, row: OutboxMessage, follow: Sequence[FollowUp], now: datetime) -> None:
    for item in follow:
        enqueue_once(
            session,
            f"after:{row.id}:{item.tag}"[:128],
            item.channel,
            row.recipient,
            item.kind,
            item.text,
            now,
            payload=item.payload,
            urgent=row.urgent,
            ticket_id=row.ticket_id,
        )


def _snapshot(row: OutboxMessage, recipients: _Recipients, now: datetime) -> OutboundMessage:
    payload: dict[str, Any] = dict(row.payload or {})
    if row.channel == "wechat":  # fresh at claim time: the sender picks service vs template message
        last_inbound, _ = recipients.of(row)
        payload["cs_window_open"] = last_inbound is not None and now - last_inbound < WECHAT_WINDOW
    return OutboundMessage(
        id=row.id,
        channel=row.channel,
        recipient=row.recipient,
        kind=row.kind,
        text=row.text,
        payload=payload,
        urgent=row.urgent,
        ticket_id=row.ticket_id,
        attempts=row.attempts,
    )


def _report_failure(session: Session, row: OutboxMessage, now: datetime) -> None:
    """Tell the staff group that a resident did not get a message, so someone calls instead."""
    if row.channel in STAFF_CHANNELS:
        log.error("staff message %s failed for good: %s", row.id, row.last_error)
        return
    account = session.scalars(
        select(ChannelAccount).where(
            ChannelAccount.channel == row.channel, ChannelAccount.external_id == row.recipient
        )
    ).first()
    who = "居民"
    if account is not None and account.resident is not None:
        who = f"{account.resident.unit.label} {account.resident.name}"
    ticket = row.payload.get("ticket")
    text = (
        f"【发送失败】给 {who} 的{KIND_WORDS.get(row.kind, row.kind)}未能送达"
        + (f"（{ticket}）" if ticket else "")
        + f"。原因：{(row.last_error or '')[:200]}。请改用电话等方式联系。"
    )
    key = f"delivery_failed:{row.id}"
    staff_once(session, key, "delivery_failed", text, now, ticket_id=row.ticket_id)
