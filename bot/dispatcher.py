"""Outbox dispatcher: finds due outbox rows, claims each one just before it is sent, hands it to the
channel's sender, records the outcome.

Delivery is **at least once**, and duplicates are confined to one narrow edge:

* A round *plans* in one short transaction: the due rows (on PostgreSQL ``FOR UPDATE SKIP LOCKED``),
  quiet-hours holds, daily quotas, the snapshots to send. Nothing is claimed there.
* Each row is **claimed right before its send**, one conditional UPDATE (status ``sending``,
  ``attempts`` + 1, ``claimed_by`` this process's token, a lease in ``claimed_until``). Two
  dispatchers that planned the same row cannot both claim it. A process killed mid-round therefore
  leaves at most the rows it was sending at that instant (one per chat being served) in ``sending``;
  the rest are still ``pending`` and any dispatcher sends them on its next round.
* A claim names its owner (``host:pid:start-time``). Every round first releases claims whose owner
  is a dead process on this host, without waiting for the lease; a claim from another host is
  released when its lease (kept just above the send timeout) runs out. So a restarted or surviving
  server takes a killed one's rows within one round.
* A row is sent outside any transaction, then marked in another one, but only if the row still
  carries this claim (same ``attempts``). If the database is unreachable at that moment the outcome
  is kept and the mark retried until it lands: a delivery the peer confirmed is never sent again
  because of a database blip. The peer's message id (Telegram's ``message_id``) is recorded in
  ``sent_ref``.
* What remains: a process killed after the peer accepted a message and before the mark. Its row
  is released and sent again: one HTTP round trip per chat in flight. WeChat template messages carry
  ``client_msg_id`` (WeChat drops a repeat within 10 minutes); Telegram and WeChat customer-service
  messages have no idempotency key, so there the repeat is the unavoidable at-least-once case.
  Dedupe keys work one level up: a sweep or a retried request that would enqueue the same message
  again finds the key taken, so a duplicate can only come from that window, never from the business
  logic.
* ``attempts`` counts claims, so a message that crashes the process on every try (a poison message)
  fails for good after ``max_attempts`` instead of crash-looping; rows never attempted count nothing.
* A sender may ask for follow-up rows (a card's photos, as a reply to the card it has just sent):
  they are added in the transaction that marks the row sent, with a dedupe key naming the row, so
  they exist exactly when the row is recorded as sent.

Order: urgent rows first (emergency cards before anything else), then by id. One chat's rows go in
order: a row is not claimed while an older row of the same resident chat is being sent, or waits
for a retry after failing (a newer message never overtakes an older one that is still to come);
urgent rows wait only for one in flight. The staff group is exempt (a card stuck in retries must not
hold an emergency page). Conversation replies that a newer answer made obsolete never reach the
outbox's send at all: the engine marks them ``superseded`` (``Store.supersede_replies``).

Quiet hours hold non-urgent messages to residents (the staff group and urgent messages go anyway;
a resident who wrote to us in the last ``quiet_grace_min`` minutes is evidently awake). Rate limits
come from ``bot.ratelimit``; a message that would wait too long goes back to the outbox with a later
``due_at``. Failures are recorded in ``last_error`` and logged in one line (error class and reason,
no recipient, a traceback only at DEBUG); permanent ones and exhausted retries are reported to the
staff group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot.outbound import (
    FollowUp,
    OutboundMessage,
    PermanentFailure,
    Receipt,
    Sender,
    TemporaryFailure,
)
from bot.ratelimit import DEFAULT_LIMITS, ChannelLimiter, ChannelLimits, Monotonic
from data.clock import Clock, local
from data.db import Sessions, unit_of_work
from data.models import OutboxMessage
from data.repositories.outbox import STAFF_CHANNELS
from data.settings import DEFAULTS, CompoundSettings
from data.store import Store, day_start
from flows.domain.outbox import enqueue_once, staff_once
from flows.domain.quiet import next_allowed

log = logging.getLogger(__name__)

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
MAX_REASON = 200  # characters of a failure reason in a log line


@dataclass(frozen=True)
class DispatchConfig:
    batch: int = 100  # rows planned per round
    # a claim is one send: the lease only has to outlast the send timeout (a dead owner on this host
    # is released at once; the lease is what frees a claim of a process on another host)
    lease: timedelta = timedelta(seconds=45)
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
    record_retry_max: float = 5.0  # seconds between tries to record an outcome while the database is away


@dataclass(frozen=True)
class Claim:
    message: OutboundMessage
    token: int  # the row's ``attempts`` after this claim


@dataclass(frozen=True)
class Planned:
    """A due row this round will try to claim and send; ``seen`` is its ``attempts`` when planned."""

    message: OutboundMessage
    seen: int


# -- who holds a claim ----------------------------------------------------------------------------------
HOST = socket.gethostname()[:30]


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state first), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw.rpartition(")")[2].split()


def owner_token(pid: int | None = None) -> str:
    """``host:pid:start:instance``: the start time (clock ticks since boot) tells a reused pid
    apart; the instance, two dispatchers of one process (tests)."""
    pid = os.getpid() if pid is None else pid
    stat = _proc_stat(pid)
    return f"{HOST}:{pid}:{stat[19] if stat else '0'}:{secrets.token_hex(3)}"


def owner_alive(token: str) -> bool | None:
    """Whether the process behind a claim still runs: None when it ran on another host (only its
    lease can tell) or the token is not ours to read."""
    host, _, rest = token.partition(":")
    pid, _, start = rest.partition(":")
    start = start.partition(":")[0]
    if host != HOST or not pid.isdigit():
        return None
    stat = _proc_stat(int(pid))
    if stat is None:
        if Path("/proc/self/stat").exists():
            return False  # /proc works here and has no such process
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return stat[0] != "Z" and (start == "0" or stat[19] == start)  # a zombie is dead


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
        sessions: Sessions,
        senders: dict[str, Sender],
        clock: Clock,
        config: DispatchConfig | None = None,
        limits: dict[str, ChannelLimits] | None = None,
        monotonic: Monotonic = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        shared: dict[str, str] | None = None,
        owner: str | None = None,
        only: dict[str, str] | None = None,
    ) -> None:
        """``shared`` maps a channel to another whose rate limiter it uses: two channels that reach
        one peer (the WeCom robot's own ``wecom`` rows and ``staff`` rows) keep to one limit.
        ``owner`` names this dispatcher's claims (default: this process, ``owner_token``). ``only``
        maps a channel to the one recipient whose rows this dispatcher sends (a console terminal
        is one account; the others' rows wait for theirs)."""
        self.sessions = sessions
        self.senders = senders
        self.clock = clock
        self.config = config or DispatchConfig()
        self.monotonic = monotonic
        self.sleep = sleep  # tests pass one that moves their clock
        self.owner = owner or owner_token()
        self.only = only or {}
        chosen = {**DEFAULT_LIMITS, **(limits or {})}
        self.limiters = {c: ChannelLimiter(chosen.get(c, ChannelLimits()), monotonic) for c in senders}
        for channel, peer in (shared or {}).items():
            if channel in self.limiters and peer in self.limiters:
                self.limiters[channel] = self.limiters[peer]
        self._last_now: datetime | None = None
        self._started = False  # the first round also releases this owner's own leftover claims
        self._stop: asyncio.Event | None = None  # run_forever's: set, a round sends nothing more

    # -- loop -----------------------------------------------------------------------------------
    async def run_forever(self, stop: asyncio.Event, idle: float = 1.0) -> None:
        """Dispatch until ``stop`` is set; rest ``idle`` seconds when nothing was due, longer
        (up to a minute) while rounds keep failing, so a broken database is not hammered."""
        failures = 0
        self._stop = stop
        try:
            while not stop.is_set():
                try:
                    handled = await self.run_once()
                    failures = 0
                except Exception as exc:
                    failures += 1
                    log.warning("dispatch round failed (%d in a row): %s", failures, _reason(exc))
                    log.debug("dispatch round failure", exc_info=True)
                    handled = 0
                if handled == 0:
                    pause = min(idle * 2**failures, 60.0) if failures else idle
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), timeout=pause)
        finally:  # cancelled in the middle of a send (a stop that timed out): free it for the next process
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._release_own)

    def _release_own(self) -> None:
        with unit_of_work(self.sessions) as store:
            store.outbox.release_claims({self.owner}, self.clock.now())

    async def run_once(self) -> int:
        """Plan what is due, claim and send it row by row, record the outcome; the rows planned."""
        now = self.clock.now()
        await asyncio.to_thread(self._check_clock, now)
        plan = await asyncio.to_thread(self._plan, now)
        groups: dict[tuple[str, str], list[Planned]] = defaultdict(list)
        for item in plan:
            groups[(item.message.channel, item.message.recipient)].append(item)
        gate = asyncio.Semaphore(self.config.concurrency)

        async def serve(group: list[Planned]) -> None:
            async with gate:
                await self._deliver(group)

        await asyncio.gather(*(serve(g) for g in groups.values()))
        return len(plan)

    # -- planning -------------------------------------------------------------------------------
    def _plan(self, now: datetime) -> list[Planned]:
        with unit_of_work(self.sessions) as store:
            self._release_dead(store, now)
            # planned only when it could be claimed (no older row of its chat in the way): no idle spinning
            rows = store.outbox.claimable(list(self.senders), now, self.config.batch)
            if not rows:
                return []
            recipients = _load_recipients(store, rows)
            quota = _QuotaBook(store, self.limiters, now)
            plan = []
            for row in rows:
                if self.only.get(row.channel, row.recipient) != row.recipient:
                    continue
                if self._hold(row, recipients, now) or quota.defer(row, now):
                    continue
                plan.append(Planned(_snapshot(row, recipients, now), row.attempts))
            return plan

    def _release_dead(self, store: Store, now: datetime) -> int:
        """Claims whose owner died (on this host) back to pending now, not after their lease; on the
        first round also this owner's own (a previous run under the same token cannot be sending)."""
        owners = store.outbox.claim_owners(now)
        dead = {o for o in owners if owner_alive(o) is False or (not self._started and o == self.owner)}
        self._started = True
        if not dead:
            return 0
        reason = "released: its dispatcher died while sending it (it may have gone out)"
        released = store.outbox.release_claims(dead, now, reason)
        log.warning("released %d outbox claim(s) of %d dead dispatcher(s)", released, len(dead))
        return released

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
        row.status, row.claimed_until, row.claimed_by, row.due_at = "pending", None, None, release
        return True

    # -- claiming one row -----------------------------------------------------------------------
    def _claim(self, item: Planned) -> Claim | None:
        """Claim ``item`` for one send; None if another dispatcher has it, it changed since the
        plan, or an older row of its chat must go first."""
        now = self.clock.now()
        message = item.message
        with unit_of_work(self.sessions) as store:
            claimed = store.outbox.claim(message.id, item.seen, self.owner, now, now + self.config.lease)
        if not claimed:
            return None
        return Claim(_with_attempts(message, item.seen + 1), item.seen + 1)

    # -- sending --------------------------------------------------------------------------------
    async def _deliver(self, group: list[Planned]) -> None:
        """One recipient's messages, in order; the rest go back to the outbox if one must wait."""
        limiter = self.limiters[group[0].message.channel]
        for index, item in enumerate(group):
            if self._stopping():
                return  # nothing claimed yet: the rows are pending for the next process
            if not await self._acquire(limiter, item.message):
                later = max(limiter.delay(item.message.recipient), 0.1)
                await asyncio.to_thread(self._defer, group[index:], later)
                return
            claim = await asyncio.to_thread(self._claim, item)
            if claim is None:
                return  # someone else serves this chat now, or an older row goes first: keep order
            outcome = await self._send(claim.message)
            if isinstance(outcome, TemporaryFailure) and outcome.retry_after:
                limiter.pause(outcome.retry_after)  # Telegram's retry_after holds for the whole bot
            await self._record_durably(claim, outcome)
            if isinstance(outcome, Exception) and claim.message.channel not in STAFF_CHANNELS:
                return  # the chat's later rows wait behind this one (claimed again only after it)

    def _stopping(self) -> bool:
        return self._stop is not None and self._stop.is_set()

    async def _acquire(self, limiter: ChannelLimiter, message: OutboundMessage) -> bool:
        """Wait for the rate limits; False if that would take longer than ``max_wait``."""
        recipient = message.recipient
        budget = self.config.max_wait
        chat = limiter.chat_delay(recipient)
        if chat > min(budget, self.config.chat_wait):
            return False
        if chat > 0:
            await self.sleep(chat)
        wait = limiter.reserve(recipient, budget - chat, cost=_cost(message))
        if wait is None:
            return False
        if wait > 0:
            await self.sleep(wait)
        return True

    async def _send(self, message: OutboundMessage) -> Exception | _Delivered:
        """The failure, or what the delivery produced (follow-up rows, the peer's message id)."""
        sender = self.senders[message.channel]
        try:
            asked = await asyncio.wait_for(sender.send(message), timeout=self.config.send_timeout)
        except (TemporaryFailure, PermanentFailure) as exc:
            return exc
        except TimeoutError:
            return TemporaryFailure(f"no answer within {self.config.send_timeout:g}s")
        except Exception as exc:  # a sender bug or a garbage answer: retry, report, never crash
            log.debug("sender %s raised on outbox row %s", message.channel, message.id, exc_info=True)
            return TemporaryFailure(f"{type(exc).__name__}: {exc}"[:500])
        follow = [f for f in asked or () if isinstance(f, FollowUp)]
        refs = [r.ref for r in asked or () if isinstance(r, Receipt)]
        if asked and len(follow) + len(refs) != len(asked):  # it was sent: never fail it over a sender bug
            log.error("sender %s returned non-follow-ups for row %s", message.channel, message.id)
        return _Delivered(follow, refs[0][:64] if refs else None)

    # -- bookkeeping ----------------------------------------------------------------------------
    async def _record_durably(self, claim: Claim, outcome: Exception | _Delivered) -> None:
        """Record the outcome; while the database is unreachable keep it and try again (a delivery
        recorded late is not sent twice; one never recorded would be, once its claim is released)."""
        pause = 0.2
        while True:
            try:
                await asyncio.to_thread(self._record, claim, outcome)
                return
            except Exception as exc:
                if self._stopping():
                    log.warning(
                        "outbox row %s: outcome not recorded before stopping: %s",
                        claim.message.id,
                        _reason(exc),
                    )
                    return
                log.warning(
                    "outbox row %s: cannot record its outcome yet (%s); retrying",
                    claim.message.id,
                    _reason(exc),
                )
                await asyncio.sleep(pause)  # real time: the database comes back in real time
                pause = min(pause * 2, self.config.record_retry_max)

    def _record(self, claim: Claim, outcome: Exception | _Delivered | Sequence[FollowUp] | None) -> None:
        """Mark the row sent (adding its follow-ups), back to pending, or failed."""
        if outcome is None or isinstance(outcome, list | tuple):
            outcome = _Delivered(list(outcome or ()), None)
        now = self.clock.now()
        with unit_of_work(self.sessions) as store:
            row = store.outbox.get(claim.message.id)
            if row is None or row.status != "sending" or row.attempts != claim.token:
                log.warning("outbox row %s was claimed again while sending; leaving it", claim.message.id)
                return
            row.claimed_until, row.claimed_by = None, None
            if isinstance(outcome, _Delivered):
                row.status, row.sent_at, row.sent_ref, row.last_error = "sent", now, outcome.ref, None
                _add_follow_ups(store, row, outcome.follow_ups, now)
                return
            assert isinstance(outcome, Exception)
            reason = getattr(outcome, "reason", None) or _reason(outcome)
            self._log_failure(row, outcome, reason)
            if isinstance(outcome, TemporaryFailure) and row.attempts < self.config.max_attempts:
                row.status, row.last_error = "pending", reason
                row.due_at = now + timedelta(seconds=self._backoff(row.attempts, outcome.retry_after))
                return
            if isinstance(outcome, TemporaryFailure):
                reason = f"{row.attempts} 次尝试均失败，最后一次：{reason}"
            row.status, row.last_error = "failed", reason
            _report_failure(store, row, now)

    @staticmethod
    def _log_failure(row: OutboxMessage, outcome: Exception, reason: str) -> None:
        """One line per failed send: row, channel, kind, attempt, error class and reason (never the
        recipient or the text); the traceback of the channel library only at DEBUG."""
        cause = outcome.__cause__ or outcome
        log.warning(
            "outbox row %s (%s %s, attempt %d) not sent: %s %s",
            row.id,
            row.channel,
            row.kind,
            row.attempts,
            type(cause).__name__,
            reason[:MAX_REASON],
        )
        if cause is not outcome or not isinstance(outcome, TemporaryFailure | PermanentFailure):
            log.debug("outbox row %s failure", row.id, exc_info=(type(cause), cause, cause.__traceback__))

    def _defer(self, items: Sequence[Planned], seconds: float) -> None:
        """Back to the outbox for later (the rows were never claimed: no attempt is counted)."""
        due = self.clock.now() + timedelta(seconds=seconds)
        with unit_of_work(self.sessions) as store:
            store.outbox.postpone([i.message.id for i in items], due)

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        """The peer's ``retry_after`` when it gave one (flood control says nothing against the
        message: an emergency card goes again as soon as allowed), else doubling per attempt."""
        if retry_after:
            delay = min(retry_after, self.config.backoff_max)
        else:
            delay = min(self.config.backoff_base * 2 ** max(attempts - 1, 0), self.config.backoff_max)
        return float(delay * (1 + random.uniform(0, 0.1)))  # spread retries of a burst that failed together

    def _check_clock(self, now: datetime) -> None:
        """A clock that jumps backwards is recorded and reported once; leases stay safe because a
        row is only ever marked by the claim that holds it."""
        last, self._last_now = self._last_now, now
        if last is None or last - now <= self.config.clock_skew:
            return
        log.error("clock went backwards: %s -> %s", last.isoformat(), now.isoformat())
        with unit_of_work(self.sessions) as store:
            staff_once(
                store,
                f"clock_back:dispatcher:{local(last):%Y%m%d%H%M}",
                "system",
                f"【系统提醒】服务器时间倒退（{local(last):%m-%d %H:%M} → {local(now):%m-%d %H:%M}），"
                "消息发送不受影响，请技术人员检查服务器时间同步。",
                now,
            )


@dataclass(frozen=True)
class _Delivered:
    follow_ups: list[FollowUp]
    ref: str | None


def _reason(exc: BaseException) -> str:
    """Error class and the first line of its message, short: for one log line."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}"[:MAX_REASON] if text else type(exc).__name__


def _with_attempts(message: OutboundMessage, attempts: int) -> OutboundMessage:
    return replace(message, attempts=attempts)


# -- helpers shared by the claim and the record ------------------------------------------------------
class _QuotaBook:
    """Daily quotas, counted from the outbox itself so every process sees the same number; a
    channel is counted only when one of its rows is about to be claimed."""

    def __init__(self, store: Store, limiters: dict[str, ChannelLimiter], now: datetime) -> None:
        self.store = store
        self.limiters = limiters
        self.midnight = day_start(now)
        self.left: dict[str, int] = {}

    def _left(self, channel: str) -> int | None:
        daily = self.limiters[channel].limits.daily
        if daily is None:
            return None
        if channel not in self.left:
            self.left[channel] = daily - self.store.outbox.counted_since(channel, self.midnight)
        return self.left[channel]

    def defer(self, row: OutboxMessage, now: datetime) -> bool:
        left = self._left(row.channel)
        if left is None:
            return False
        if left > 0:
            self.left[row.channel] = left - 1
            return False
        tomorrow = day_start(now) + timedelta(days=1)
        row.status, row.claimed_until, row.due_at = "pending", None, tomorrow
        staff_once(
            self.store,
            f"quota:{row.channel}:{local(now):%Y%m%d}",
            "system",
            f"【系统提醒】今日{row.channel}消息额度已用完，其余消息将于明天 0 点后继续发送。",
            now,
        )
        return True


def _load_recipients(store: Store, rows: Sequence[OutboxMessage]) -> _Recipients:
    compounds = store.views.compounds()
    settings = {c.id: store.settings(c) for c in compounds}
    recipients = _Recipients(settings, settings[compounds[0].id] if compounds else DEFAULTS)
    wanted: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if row.channel not in STAFF_CHANNELS:
            wanted[row.channel].add(row.recipient)
    for channel, ids in wanted.items():
        for external_id, facts in store.accounts.chat_facts(channel, ids).items():
            recipients.accounts[(channel, external_id)] = (facts.last_inbound_at, facts.compound_id)
    return recipients


def _cost(message: OutboundMessage) -> int:
    """Messages one row stands for against the rate limits: an album of N photos is N messages."""
    try:
        return max(1, int(message.payload.get("cost") or 1))
    except (TypeError, ValueError):
        return 1


def _add_follow_ups(store: Store, row: OutboxMessage, follow: Sequence[FollowUp], now: datetime) -> None:
    for item in follow:
        enqueue_once(
            store,
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


def _report_failure(store: Store, row: OutboxMessage, now: datetime) -> None:
    """Tell the staff group that a resident did not get a message, so someone calls instead."""
    if row.channel in STAFF_CHANNELS:
        log.error("staff message %s failed for good: %s", row.id, row.last_error)
        return
    account = store.accounts.chat_account(row.channel, row.recipient)
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
    staff_once(store, key, "delivery_failed", text, now, ticket_id=row.ticket_id)
