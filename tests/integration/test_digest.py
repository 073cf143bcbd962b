"""The weekly digest to the staff group and the monthly one to the manager, on both databases: due at
the compound's day and hour, once (a second run, a second process), with one chart in the row."""

from __future__ import annotations

import base64
import json
import threading
from datetime import datetime

import pytest
from sqlalchemy import select

from bot.app import App
from bot.cli import main
from bot.scheduler import run_sweep
from data.clock import SHANGHAI, FixedClock
from data.db import make_engine, make_session_factory, transaction
from data.models import Compound, OutboxMessage, Staff
from flows.reports.digest import PNG_URI
from tests.integration.outbox_helpers import make_ticket, outbox, run_sweeps

LAST_WEEK = datetime(2026, 11, 18, 10, 0, tzinfo=SHANGHAI)  # a Wednesday
MONDAY_9 = datetime(2026, 11, 23, 9, 0, tzinfo=SHANGHAI)
DIRECTOR = "900007"  # 孙主任's Telegram id in the demo


def digests(app: App) -> list[OutboxMessage]:
    return [row for row in outbox(app) if row.kind == "digest"]


def chart(row: OutboxMessage) -> bytes:
    [ref] = row.payload["photos"]
    assert ref.startswith(PNG_URI)
    return base64.b64decode(ref.removeprefix(PNG_URI))


@pytest.fixture
def last_week(app: App, clock: FixedClock) -> None:
    """Two repairs last week, one done within its limits by 张师傅."""
    clock.set(LAST_WEEK)
    make_ticket(app, done=True)
    make_ticket(app, description="厨房水管漏水", category="water", assignee=None)


def test_the_weekly_digest_goes_to_the_staff_group_on_monday_at_nine_once(
    app: App, clock: FixedClock, last_week: None
) -> None:
    clock.set(MONDAY_9.replace(hour=8, minute=59))
    run_sweeps(app, "digests")
    assert digests(app) == []
    clock.set(MONDAY_9.replace(minute=10))
    run_sweeps(app, "digests")
    run_sweeps(app, "digests")
    [row] = digests(app)
    assert (row.channel, row.recipient, row.dedupe_key) == (
        "staff",
        "staff",
        f"digest:weekly:{_id(app)}:20261123",
    )
    lines = row.text.splitlines()
    assert lines[0] == "【本周服务周报】阳光花园 2026-11-16 至 2026-11-22"
    assert lines[1] == "新增工单 2 件（报修 2）"
    # the watered pipe nobody claimed is past its 15 minutes, 张师傅's light was done in time
    assert lines[2].startswith("按时到场 50.0%（1/2），按时完成 50.0%（1/2）")
    assert chart(row).startswith(b"\x89PNG")
    assert len(row.text) <= 1024  # fits a photo caption


def test_a_digest_missed_by_more_than_the_catch_up_window_is_skipped(app: App, clock: FixedClock) -> None:
    clock.set(MONDAY_9.replace(hour=21, minute=1))
    assert [a for a in run_sweeps(app) if a.job == "digests"] == []


def test_day_and_hour_are_the_compounds_settings(app: App, clock: FixedClock) -> None:
    with transaction(app.sessions) as session:
        compound = session.scalars(select(Compound)).one()
        compound.settings = {**compound.settings, "digest_weekday": 5, "digest_hour": 17}
    clock.set(MONDAY_9.replace(minute=30))
    run_sweeps(app, "digests")
    assert digests(app) == []
    clock.set(datetime(2026, 11, 27, 17, 5, tzinfo=SHANGHAI))  # Friday
    run_sweeps(app, "digests")
    [row] = digests(app)
    assert row.text.splitlines()[0].endswith("2026-11-20 至 2026-11-26")


def test_propbot_due_lists_the_digest_and_draws_nothing(
    app: App, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["due", "--now", "2026-11-23T09:30", "--json", "--job", "digests"]) == 0
    [action] = json.loads(capsys.readouterr().out)["actions"]
    assert action["kind"] == "weekly_digest" and "2026-11-16 至 2026-11-22 周报" in action["summary"]
    assert digests(app) == []


def test_two_servers_sweeping_at_once_send_one_digest(app: App, db_url: str, clock: FixedClock) -> None:
    clock.set(MONDAY_9.replace(minute=5))
    barrier = threading.Barrier(2)

    def sweep() -> None:
        engine = make_engine(db_url)
        try:
            barrier.wait()
            run_sweep(make_session_factory(engine), clock, "digests")
        finally:
            engine.dispose()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(digests(app)) == 1


def test_the_monthly_digest_goes_to_the_director_on_telegram(
    app: App, clock: FixedClock, last_week: None
) -> None:
    clock.set(datetime(2026, 12, 1, 9, 20, tzinfo=SHANGHAI))
    run_sweeps(app, "digests")
    run_sweeps(app, "digests")
    [row] = digests(app)
    assert (row.channel, row.recipient) == ("telegram", DIRECTOR)
    lines = row.text.splitlines()
    assert lines[0] == "【月度服务报告】阳光花园 2026年11月"
    assert any(line.startswith("收费率 ") and "至今未缴" in line for line in lines)
    assert chart(row).startswith(b"\x89PNG")


def test_without_a_manager_on_telegram_the_monthly_digest_goes_to_the_group_naming_them(
    app: App, clock: FixedClock
) -> None:
    with transaction(app.sessions) as session:
        session.scalars(select(Staff).where(Staff.role == "director")).one().telegram_user_id = None
    clock.set(datetime(2026, 12, 1, 9, 20, tzinfo=SHANGHAI))
    run_sweeps(app, "digests")
    [row] = digests(app)
    assert row.channel == "staff" and row.text.endswith("（请转 孙主任）")


def _id(app: App) -> int:
    with app.sessions() as session:
        return int(session.scalars(select(Compound.id)).one())
