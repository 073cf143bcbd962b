"""The scheduler's sweeps as plain functions of ``(store, now)``: what is due, and doing it.

Each sweep looks at the store and returns ``Action``s: a description plus the change to make. The
scheduler (``bot.scheduler``) calls ``run`` every minute or so; ``propbot due --now`` calls ``due``
to show what would happen. Every action carries a dedupe key naming the business fact, and the
change writes outbox rows under that key, so running a sweep twice (or in two processes at once)
sends nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from data.clock import local
from data.models import Ticket
from data.scheduling import JobRun
from data.store import Store
from flows.domain.outbox import staff_once

log = logging.getLogger(__name__)

CLOCK_SKEW = timedelta(minutes=1)
RUN_LIMIT = 500  # actions per job per run: a backlog is worked off over several short transactions


@dataclass
class Action:
    job: str
    kind: str  # ask_callback | callback_task | sla_warning | escalate_lead | bill_notice | reminder ...
    key: str  # the business fact; the same key is never acted on twice
    summary: str  # for people (``propbot due``)
    apply: Callable[[], None] = field(repr=False, compare=False)
    ticket: str | None = None
    unit: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "kind": self.kind,
            "key": self.key,
            "summary": self.summary,
            "ticket": self.ticket,
            "unit": self.unit,
        }


Sweep = Callable[[Store, datetime], list[Action]]


def registry() -> dict[str, Sweep]:
    """Every sweep by name (imported here so each module stays importable on its own)."""
    from flows.jobs import broadcasts, callbacks, reminders, time_limits
    from flows.reports import digest

    return {
        "time_limits": time_limits.sweep,
        "callbacks": callbacks.sweep,
        "billing": reminders.billing_sweep,
        "arrears": reminders.arrears_sweep,
        "notices": broadcasts.sweep,
        "digests": digest.sweep,
    }


def due(store: Store, now: datetime, jobs: Iterable[str] | None = None) -> list[Action]:
    """What the sweeps would do at ``now``; changes nothing."""
    sweeps = registry()
    names = list(jobs) if jobs is not None else list(sweeps)
    unknown = [n for n in names if n not in sweeps]
    if unknown:
        raise KeyError(f"unknown sweep(s): {', '.join(unknown)}; known: {', '.join(sweeps)}")
    return [action for name in names for action in sweeps[name](store, now)]


def run(
    store: Store, now: datetime, jobs: Iterable[str] | None = None, limit: int | None = RUN_LIMIT
) -> list[Action]:
    """Do what is due at ``now``, in the caller's transaction; the actions taken.

    At most ``limit`` actions per job: the scheduler's transaction (the SQLite writer lock) stays
    short even after a long outage, and the next run takes the rest. A job another process is
    running right now (PostgreSQL advisory lock) is skipped: it will be done there."""
    names = list(jobs) if jobs is not None else list(registry())
    actions: list[Action] = []
    for name in names:
        if not store.schedules.lock_job(name):  # one process at a time per sweep
            log.info("sweep %s is running in another process; skipped", name)
            continue
        check_clock(store, name, now)
        found = due(store, now, [name])[:limit]
        for action in found:
            action.apply()
        store.flush()
        _record_run(store, name, now, len(found))
        actions.extend(found)
    return actions


def check_clock(store: Store, job: str, now: datetime) -> bool:
    """False, with one report to staff, if ``now`` is behind the last run of ``job``.

    The sweep still runs: its actions are keyed by business facts, not by time, so an earlier
    ``now`` can only find less to do, never do something twice."""
    last = store.schedules.job_run(job)
    if last is None or last.last_now - now <= CLOCK_SKEW:
        return True
    log.error("clock went backwards for sweep %s: %s -> %s", job, last.last_now, now)
    staff_once(
        store,
        f"clock_back:{job}:{local(last.last_now):%Y%m%d%H%M}",
        "system",
        f"【系统提醒】服务器时间倒退（{local(last.last_now):%m-%d %H:%M} → {local(now):%m-%d %H:%M}），"
        f"定时任务“{job}”照常运行、不会重复发送，请技术人员检查服务器时间同步。",
        now,
    )
    return False


def ticket_event(
    store: Store,
    ticket: Ticket,
    now: datetime,
    kind: str,
    note: str,
    data: dict[str, Any] | None = None,
    actor: str = "system",
) -> None:
    """``store.tickets.add_event`` without loading the ticket's whole event list (sweeps touch thousands)."""
    store.tickets.append_event(ticket, now, actor, kind, note, data or {})


def _record_run(store: Store, job: str, now: datetime, count: int) -> None:
    found = store.schedules.job_run(job)
    if found is None:
        store.schedules.add_job_run(JobRun(name=job, last_now=now, runs=1, last_actions=count))
        return
    found.last_now = max(found.last_now, now)  # keep the high-water mark across a backward jump
    found.runs += 1
    found.last_actions = count
