"""The scheduler: APScheduler 3.x running the sweeps of ``flows.jobs.sweeps`` at intervals.

No per-ticket job objects that could be lost: each job asks the store what is due *now* (the
injected clock's now), so a restart, a missed run or a second process changes nothing. Jobs
coalesce (a backlog of missed runs is one run) and have a generous misfire grace time. On
PostgreSQL a transaction-level advisory lock lets one process at a time run a given sweep; on
SQLite the writer lock does the same. Either way the dedupe keys make a double run harmless.

The server's lifespan does::

    scheduler = build_scheduler(app)
    scheduler.start()
    ...
    scheduler.shutdown(wait=False)
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.app import App
from data.clock import SHANGHAI, Clock
from data.db import Sessions, unit_of_work
from flows.jobs import sweeps

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Job:
    name: str  # a sweep in flows.jobs.sweeps.registry()
    every: int  # seconds
    grace: int  # misfire grace time, seconds


JOBS: tuple[Job, ...] = (
    Job("time_limits", 30, 300),  # emergencies escalate after 5 minutes: check often
    Job("callbacks", 120, 1800),
    Job("billing", 300, 3600),
    Job("arrears", 600, 3600),
    Job("notices", 600, 3600),
    Job("digests", 600, 3600),  # weekly and monthly figures; drawing the chart takes a second
)


def build_scheduler(app: App, jobs: tuple[Job, ...] = JOBS) -> AsyncIOScheduler:
    """An AsyncIOScheduler (Asia/Shanghai) with one interval job per sweep; not started."""
    scheduler = AsyncIOScheduler(timezone=SHANGHAI)
    for job in jobs:
        scheduler.add_job(
            run_job,
            IntervalTrigger(seconds=job.every, timezone=SHANGHAI),
            args=(app.sessions, app.clock, job.name),
            id=f"sweep:{job.name}",
            name=f"sweep {job.name}",
            coalesce=True,
            max_instances=1,
            misfire_grace_time=job.grace,
            replace_existing=True,
        )
    return scheduler


async def run_job(sessions: Sessions, clock: Clock, name: str) -> int:
    """One sweep in a worker thread (the database calls block); the number of actions taken."""
    try:
        return await asyncio.to_thread(run_sweep, sessions, clock, name)
    except Exception:  # the next interval tries again; never take the scheduler down
        log.exception("sweep %s failed", name)
        return 0


def run_sweep(sessions: Sessions, clock: Clock, name: str) -> int:
    with unit_of_work(sessions) as store:
        actions = sweeps.run(store, clock.now(), [name])
    if actions:
        log.info("sweep %s: %d action(s)", name, len(actions))
    return len(actions)
