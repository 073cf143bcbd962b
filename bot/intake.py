"""The async door to the sync engine: one chat at a time, in order, off the event loop.

Every channel adapter hands its ``Inbound`` here. Messages of the same chat are handled one after the
other (a per-chat lock, first come first served), so replies never overtake each other; different
chats run in parallel on a small thread pool sized for the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TypeVar

from bot.app import App
from bot.metrics import Metrics
from flows.dialog.turn import Inbound, Reply

T = TypeVar("T")
# Engine threads (ENGINE_THREADS overrides). Handling a message is mostly Python (the ORM, the flows),
# so threads beyond two only fight over the GIL and starve the event loop: measured tails of several
# seconds with 8 threads, none with 1-2 (docs/benchmarks.md). SQLite takes one writer at a time and its
# busy handler backs off in sleeps of up to 100 ms, so one thread, first come first served, is best there;
# PostgreSQL gets a second thread to overlap database round trips. Scale out with processes.
WORKERS = {"sqlite": 1, "postgresql": 2}


class ChatLocks:
    """One asyncio lock per chat, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


class Intake:
    def __init__(self, app: App, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.locks = ChatLocks()
        workers = app.settings.engine_threads or WORKERS.get(app.db.dialect.name, 4)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="engine")

    async def run(self, func: Callable[..., T], *args: object) -> T:
        """Run blocking work (engine, store) on the engine pool."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, func, *args)

    def chat(self, channel: str, external_id: str) -> AbstractAsyncContextManager[None]:
        return self.locks.hold(f"{channel}:{external_id}")

    async def handle(self, inbound: Inbound) -> list[Reply]:
        """The engine's replies; the caller holds the chat's lock (see ``chat``)."""
        started = time.perf_counter()
        self.metrics.messages_in.labels(inbound.channel).inc()
        replies = await self.run(self.app.engine.handle, inbound)
        self.metrics.latency.labels(inbound.channel).observe(time.perf_counter() - started)
        self.metrics.replies.labels(inbound.channel).inc(len(replies))
        return replies

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
