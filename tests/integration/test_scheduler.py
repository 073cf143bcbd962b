"""The scheduler and ``propbot due`` on both databases: jobs configured as promised, sweeps
idempotent, a clock jumping back reported once, the CLI listing and running."""

from __future__ import annotations

import json
import threading

import pytest
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.app import App
from bot.cli import main
from bot.scheduler import JOBS, build_scheduler, run_job, run_sweep
from data.clock import FixedClock
from data.db import make_engine, make_session_factory
from tests.integration.outbox_helpers import make_ticket, outbox, run_sweeps, staff_texts


def test_scheduler_has_one_coalescing_job_per_sweep(app: App) -> None:
    scheduler = build_scheduler(app)
    assert isinstance(scheduler, AsyncIOScheduler) and str(scheduler.timezone) == "Asia/Shanghai"
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert set(jobs) == {f"sweep:{j.name}" for j in JOBS}
    for job in jobs.values():
        assert job.coalesce is True and job.max_instances == 1 and job.misfire_grace_time >= 300


async def test_a_job_runs_its_sweep_on_the_apps_clock(app: App, clock: FixedClock) -> None:
    make_ticket(app, done=True)
    clock.advance(hours=48)
    assert await run_job(app.sessions, app.clock, "callbacks") == 1
    assert await run_job(app.sessions, app.clock, "callbacks") == 0
    assert await run_job(app.sessions, app.clock, "no_such_sweep") == 0  # logged, never raised


def test_two_processes_sweeping_at_once_send_nothing_twice(app: App, db_url: str, clock: FixedClock) -> None:
    for index in range(5):
        make_ticket(app, done=True, description=f"灯{index}")
    clock.advance(hours=48)
    barrier = threading.Barrier(2)

    def sweep() -> None:
        engine = make_engine(db_url)
        try:
            barrier.wait()
            run_sweep(make_session_factory(engine), clock, "callbacks")
        finally:
            engine.dispose()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    keys = [r.dedupe_key for r in outbox(app, "console") if r.kind == "callback"]
    assert len(keys) == len(set(keys)) == 5


def test_clock_jumping_back_is_reported_once_and_repeats_nothing(app: App, clock: FixedClock) -> None:
    make_ticket(app, assignee="张师傅")
    clock.advance(days=10)  # clear of the bill-notice catch-up window, which a jump could re-open
    run_sweeps(app)
    before = len(outbox(app))
    clock.advance(hours=-2)
    run_sweeps(app)
    run_sweeps(app)
    reports = [t for t in staff_texts(app) if "时间倒退" in t]
    assert len(reports) == len(JOBS)  # one per sweep, once
    assert len(outbox(app)) == before + len(JOBS)


def test_due_lists_without_changing_and_run_does_it_once(
    app: App, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    number = make_ticket(app, done=True)
    assert main(["due", "--now", "2026-11-25T10:00", "--json", "--job", "callbacks"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["ran"] is False and [a["ticket"] for a in listed["actions"]] == [number]
    assert [r for r in outbox(app) if r.kind == "callback"] == []
    assert main(["due", "--now", "2026-11-25T10:00", "--run", "--job", "callbacks"]) == 0
    assert "已执行 1 项" in capsys.readouterr().out
    assert main(["due", "--now", "2026-11-25T10:00", "--run", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert not [a for a in again["actions"] if a["kind"] == "ask_callback"]
    assert len([r for r in outbox(app) if r.kind == "callback"]) == 1


def test_due_refuses_a_bad_time(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["due", "--now", "tomorrow"])
    assert "ISO 8601" in capsys.readouterr().err


def test_a_backlog_is_worked_off_over_several_short_runs(app: App, clock: FixedClock) -> None:
    from data.db import transaction
    from data.store import Store
    from flows.jobs import sweeps

    for index in range(5):
        make_ticket(app, assignee="张师傅", description=f"灯{index}")
    clock.advance(hours=10)  # arrival and fix limits of all five long gone: ten escalations
    sizes = []
    for _ in range(7):
        with transaction(app.sessions) as session:
            sizes.append(len(sweeps.run(Store(session), clock.now(), ["time_limits"], limit=3)))
    assert sizes == [3, 3, 3, 1, 0, 0, 0]
    assert len([t for t in staff_texts(app) if t.startswith("【超时督办】")]) == 10
