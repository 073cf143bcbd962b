"""Rate limits for outbound channels: GCRA (a token bucket with exact spacing).

Why not aiolimiter or limits: the dispatcher must know *how long* a send would wait before it
commits to it, so a message that would wait too long goes back to the outbox instead of holding its
lease (aiolimiter only says whether there is capacity now; limits is synchronous and keyed to the
wall clock). GCRA answers that with one number per key, and takes an injected monotonic clock, so
the tests are exact without sleeping.

The limits are per process. Several dispatcher processes share a channel's limit only if each is
configured with its share (see docs/benchmarks.md, "Dispatcher and scheduler").
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

Monotonic = Callable[[], float]


@dataclass(frozen=True)
class Rate:
    """``count`` messages per ``per`` seconds, at most ``burst`` of them back to back."""

    count: int
    per: float
    burst: int = 1

    @property
    def interval(self) -> float:
        return self.per / self.count


class Gcra:
    """Generic cell rate algorithm: one 'theoretical arrival time' per limiter."""

    def __init__(self, rate: Rate, clock: Monotonic = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self._tat = -math.inf
        self._previous = -math.inf
        self._tolerance = rate.interval * (rate.burst - 1)

    def delay(self, not_before: float = 0.0) -> float:
        """Seconds until the next message may go (0 when it may go now), or ``not_before`` if later."""
        now = self.clock()
        return max(not_before, max(self._tat, now + not_before) - self._tolerance - now)

    def reserve(self, max_wait: float = math.inf, not_before: float = 0.0, cost: int = 1) -> float | None:
        """Take the next ``cost`` slots, no earlier than ``not_before`` seconds from now, and return
        the wait for the first; None (nothing taken) if that is longer than ``max_wait``."""
        wait = self.delay(not_before)
        if wait > max_wait:
            return None
        self._previous = self._tat
        self._tat = max(self._tat, self.clock() + not_before) + self.rate.interval * cost
        return wait

    def release(self) -> None:
        """Give back the slot just taken (call before any other reservation)."""
        self._tat = self._previous

    def pause(self, seconds: float) -> None:
        """The peer said 'retry after': nothing goes before then."""
        self._tat = max(self._tat, self.clock() + seconds + self._tolerance)

    def idle(self) -> bool:
        return self._tat <= self.clock()


@dataclass
class Keyed:
    """One GCRA per key (per chat); idle keys are dropped so memory stays bounded."""

    rate: Rate
    clock: Monotonic = time.monotonic
    limit: int = 10_000
    _limiters: dict[str, Gcra] = field(default_factory=dict)

    def get(self, key: str) -> Gcra:
        found = self._limiters.get(key)
        if found is None:
            if len(self._limiters) >= self.limit:
                self._limiters = {k: v for k, v in self._limiters.items() if not v.idle()}
            found = self._limiters[key] = Gcra(self.rate, self.clock)
        return found


@dataclass(frozen=True)
class ChannelLimits:
    """What one channel allows. ``group`` applies to recipients that are group chats."""

    overall: Rate | None = None
    per_chat: Rate | None = None
    per_group: Rate | None = None
    daily: int | None = None  # messages per local day, counted in the outbox (shared by processes)


WECOM_MEMBER = Rate(16, 60.0, burst=13)

# Published limits: Telegram Bot API FAQ (30/s overall, 1/s per chat, 20/min per group); WeCom
# group robots 20/min; WeChat template messages have a daily quota per account (100,000 by default).
DEFAULT_LIMITS: dict[str, ChannelLimits] = {
    "telegram": ChannelLimits(overall=Rate(30, 1.0), per_chat=Rate(1, 1.0), per_group=Rate(20, 60.0)),
    "staff": ChannelLimits(overall=Rate(20, 60.0, burst=3)),
    "wecom": ChannelLimits(overall=Rate(20, 60.0, burst=3)),
    # the WeCom app: to one member at most 30 a minute and 1000 an hour (WeCom drops the rest
    # silently): 16 a minute after a burst of 13 keeps under both (29 in any minute, 973 an hour).
    # A group chat is one recipient here too (its members take 200 a minute). The app overall.
    "wecom_app": ChannelLimits(overall=Rate(600, 60.0, burst=20), per_chat=WECOM_MEMBER),
    "wechat": ChannelLimits(overall=Rate(50, 1.0), daily=100_000),
    "console": ChannelLimits(),
}


class ChannelLimiter:
    """All the limiters of one channel, asked together for one message."""

    def __init__(self, limits: ChannelLimits, clock: Monotonic = time.monotonic) -> None:
        self.limits = limits
        self.overall = Gcra(limits.overall, clock) if limits.overall else None
        self.chats = Keyed(limits.per_chat, clock) if limits.per_chat else None
        self.groups = Keyed(limits.per_group, clock) if limits.per_group else None

    def chat_delay(self, recipient: str) -> float:
        """Seconds until ``recipient``'s own limit allows another message (nothing is taken).

        Wait for this *before* ``reserve``: an overall slot taken now but used only when the chat
        allows it would hold up every other chat (one theoretical arrival time per limiter)."""
        keyed = self._keyed(recipient)
        return keyed.get(recipient).delay() if keyed is not None else 0.0

    def reserve(self, recipient: str, max_wait: float, cost: int = 1) -> float | None:
        """Take the overall slot and the chat's slot no earlier than it (``cost`` of each: an album
        counts as its photos); the seconds to wait, or None (nothing taken) if that would be longer
        than ``max_wait``."""
        overall_wait = 0.0
        if self.overall is not None:
            got = self.overall.reserve(max_wait, cost=cost)
            if got is None:
                return None
            overall_wait = got
        keyed = self._keyed(recipient)
        if keyed is None:
            return overall_wait
        wait = keyed.get(recipient).reserve(max_wait, not_before=overall_wait, cost=cost)
        if wait is None and self.overall is not None:
            self.overall.release()
        return wait

    def delay(self, recipient: str) -> float:
        """Seconds until a message to ``recipient`` could go, without taking anything."""
        overall = self.overall.delay() if self.overall is not None else 0.0
        return max(overall, self.chat_delay(recipient))

    def pause(self, seconds: float) -> None:
        if self.overall is not None:
            self.overall.pause(seconds)

    def _keyed(self, recipient: str) -> Keyed | None:
        return self.groups if is_group(recipient) and self.groups is not None else self.chats


def is_group(recipient: str) -> bool:
    """Telegram group and channel chat ids are negative."""
    return recipient.startswith("-")
