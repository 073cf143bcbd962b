"""The desk's report page: a month's report (``flows.reports``) and its charts, kept for a while.

Building a report reads a month of tickets and bills; drawing its six charts takes matplotlib a
second or so. Both happen on request, off the event loop (the store on the engine pool, matplotlib
in a worker thread), once per (compound, month) and for ``ttl``: the page says as of when. One
lock per key, so the six chart requests a page makes wait for one drawing instead of six.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from starlette.concurrency import run_in_threadpool

from data.clock import Clock
from flows.reports.charts import render_all
from flows.reports.report import Report

Key = tuple[int, str]  # (compound id, YYYY-MM)
SIZE = 48  # entries kept at most: a few compounds' year or two


@dataclass
class Entry:
    report: Report
    made: datetime
    charts: dict[str, bytes] | None = None  # file name -> PNG, drawn on the first chart request
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class ReportCache:
    def __init__(self, clock: Clock, ttl: timedelta) -> None:
        self.clock, self.ttl = clock, ttl
        self._entries: dict[Key, Entry] = {}
        self._locks: dict[Key, asyncio.Lock] = {}

    async def report(self, key: Key, build: Callable[[], Awaitable[Report]]) -> Report:
        return (await self._entry(key, build)).report

    async def charts(self, key: Key, build: Callable[[], Awaitable[Report]]) -> dict[str, bytes]:
        entry = await self._entry(key, build)
        async with entry.lock:
            if entry.charts is None:
                entry.charts = await run_in_threadpool(render_all, entry.report)
            return entry.charts

    async def _entry(self, key: Key, build: Callable[[], Awaitable[Report]]) -> Entry:
        async with self._locks.setdefault(key, asyncio.Lock()):
            entry = self._entries.get(key)
            now = self.clock.now()
            if entry is None or now - entry.made >= self.ttl:
                entry = Entry(await build(), now)
                self._entries.pop(key, None)  # re-inserted last: the dict's order is the age
                self._entries[key] = entry
                self._evict()
            return entry

    def _evict(self) -> None:
        while len(self._entries) > SIZE:
            oldest = next(iter(self._entries))
            del self._entries[oldest]
            lock = self._locks.get(oldest)
            if lock is not None and not lock.locked():
                del self._locks[oldest]
