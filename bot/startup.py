"""Starting a channel that may not be reachable yet: one unreachable channel API (Telegram's
``getMe`` at start) must not take the server down, so the channel is marked down, retried with
capped exponential backoff while the other channels serve, and marked up once it starts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

UP, DOWN = "up", "down"
MAX_REASON = 200  # characters of an exception's text in a log line


@dataclass(frozen=True)
class Backoff:
    """Seconds between attempts: ``first``, doubling, at most ``cap``."""

    first: float = 1.0
    cap: float = 60.0

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(delay * 2, self.cap)


@dataclass
class ChannelStates:
    """Each configured channel's state for /healthz: ``up`` or ``down``."""

    states: dict[str, str] = field(default_factory=dict)

    def set(self, name: str, state: str) -> None:
        self.states[name] = state

    def is_up(self, name: str) -> bool:
        return self.states.get(name) == UP

    def down(self) -> list[str]:
        return sorted(name for name, state in self.states.items() if state != UP)


async def start_or_retry(
    name: str,
    start: Callable[[], Awaitable[None]],
    states: ChannelStates,
    backoff: Backoff,
    secrets: Iterable[str] = (),
) -> asyncio.Task[None] | None:
    """Try ``start`` once now; if it fails, mark ``name`` down and return the task that keeps trying
    (None when it is up at once). The caller cancels the task at shutdown."""
    hidden = tuple(s for s in secrets if s)
    if await _attempt(name, start, states, hidden, next_try=backoff.first):
        return None
    return asyncio.create_task(_keep_trying(name, start, states, hidden, backoff), name=f"start-{name}")


async def _keep_trying(
    name: str,
    start: Callable[[], Awaitable[None]],
    states: ChannelStates,
    secrets: tuple[str, ...],
    backoff: Backoff,
) -> None:
    delays = backoff.delays()
    delay = next(delays)
    while True:
        await asyncio.sleep(delay)
        delay = next(delays)
        if await _attempt(name, start, states, secrets, next_try=delay):
            return


async def _attempt(
    name: str,
    start: Callable[[], Awaitable[None]],
    states: ChannelStates,
    secrets: tuple[str, ...],
    next_try: float,
) -> bool:
    try:
        await start()
    except Exception as exc:  # any failure to start is the same to us: down, try again later
        states.set(name, DOWN)
        # one line, no traceback: it repeats for as long as the API is unreachable
        log.warning(
            "%s channel could not start (%s); next try in %g s", name, _reason(exc, secrets), next_try
        )
        return False
    if states.states.get(name) == DOWN:
        log.info("%s channel started after all: up", name)
    states.set(name, UP)
    return True


def _reason(exc: Exception, secrets: tuple[str, ...]) -> str:
    """The exception's class and text without secrets (ptb's InvalidToken quotes the token)."""
    text = f"{type(exc).__name__}: {exc}"
    for secret in secrets:
        text = text.replace(secret, "***")
    return text if len(text) <= MAX_REASON else text[:MAX_REASON] + "…"
