"""Time limits on both databases: warning before the breach, lead at the breach, director later,
unclaimed emergencies after 5 minutes; each step once."""

from __future__ import annotations

from datetime import timedelta

from bot.app import App
from data.clock import FixedClock
from data.db import transaction
from data.store import Store
from tests.integration.outbox_helpers import due_now, make_ticket, run_sweeps, staff_texts


def _escalations(app: App) -> list[str]:
    return [
        t
        for t in staff_texts(app)
        if t.startswith(("【即将超时】", "【超时升级】", "【超时督办】", "【无人认领】"))
    ]


def test_arrival_warning_then_lead_then_director_each_once(app: App, clock: FixedClock) -> None:
    number = make_ticket(app, assignee="张师傅")  # lighting: arrive within 30 minutes
    clock.advance(minutes=24)
    assert due_now(app, "time_limits") == []
    clock.advance(minutes=1)
    run_sweeps(app, "time_limits")
    run_sweeps(app, "time_limits")
    [warning] = _escalations(app)
    assert (
        warning.startswith("【即将超时】")
        and number in warning
        and "张师傅" in warning
        and "还剩 5 分钟" in warning
    )

    clock.advance(minutes=5)  # the deadline
    run_sweeps(app, "time_limits")
    lead = _escalations(app)[-1]
    assert lead.startswith("【超时升级】") and "赵主管" in lead and "到场时限" in lead

    clock.advance(minutes=59)
    run_sweeps(app, "time_limits")
    assert len(_escalations(app)) == 2
    clock.advance(minutes=1)
    run_sweeps(app, "time_limits")
    run_sweeps(app, "time_limits")
    director = _escalations(app)[-1]
    assert director.startswith("【超时督办】") and "孙主任" in director and "张师傅" in director
    assert len(_escalations(app)) == 3
    assert all("13900139" not in t for t in _escalations(app))  # no staff phone numbers either

    with app.sessions() as session:
        ticket = Store(session).tickets.by_number(number)
        assert ticket is not None
        kinds = [e.kind for e in ticket.events]
    assert kinds.count("sla_warning") == 1 and kinds.count("escalated") == 2


def test_a_late_sweep_sends_only_the_highest_stage(app: App, clock: FixedClock) -> None:
    make_ticket(app, assignee="张师傅")
    clock.advance(minutes=100)  # the scheduler was down: arrival 70 min late, fix not yet
    run_sweeps(app, "time_limits")
    texts = _escalations(app)
    assert [t[:6] for t in texts] == ["【超时督办】"]


def test_fix_deadline_escalates_after_arrival(app: App, clock: FixedClock) -> None:
    number = make_ticket(app, assignee="张师傅")
    with transaction(app.sessions) as session:
        ticket = Store(session).tickets.by_number(number)
        assert ticket is not None
        ticket.status = "in_progress"  # on site in time: the arrival limit no longer applies
    clock.advance(minutes=150)  # arrive 30 min + fix 2 h
    run_sweeps(app, "time_limits")
    [text] = _escalations(app)
    assert text.startswith("【超时升级】") and "完成时限" in text


def test_unclaimed_emergency_escalates_after_five_minutes(app: App, clock: FixedClock) -> None:
    number = make_ticket(app, kind="emergency", category="gas", description="厨房有煤气味", assignee=None)
    clock.advance(minutes=4)
    run_sweeps(app, "time_limits")
    assert _escalations(app) == []
    clock.advance(minutes=1)
    run_sweeps(app, "time_limits")
    [first] = _escalations(app)
    assert first.startswith("【无人认领】") and number in first and "赵主管" in first and "5 分钟" in first
    clock.advance(minutes=10)
    run_sweeps(app, "time_limits")
    assert "孙主任" in _escalations(app)[-1]


def test_unclaimed_normal_ticket_waits_thirty_minutes_and_claimed_ones_do_not_chase(
    app: App, clock: FixedClock
) -> None:
    make_ticket(app, assignee=None, category="door_lock", description="单元门锁坏了")
    claimed = make_ticket(app, assignee="刘师傅", category="door_lock", description="信箱锁坏了")
    clock.advance(minutes=29)
    assert [a for a in due_now(app, "time_limits") if a.kind != "sla_warn"] == []
    clock.advance(minutes=1)
    texts = [a.summary for a in due_now(app, "time_limits")]
    assert any("接单" in t for t in texts) and not any(claimed in t and "接单" in t for t in texts)


def test_done_and_closed_tickets_are_left_alone(app: App, clock: FixedClock) -> None:
    make_ticket(app, assignee="张师傅", done=True)
    clock.advance(hours=10)
    assert due_now(app, "time_limits") == []


def test_a_rescheduled_visit_is_watched_afresh(app: App, clock: FixedClock) -> None:
    number = make_ticket(app, assignee="张师傅")
    clock.advance(minutes=30)
    run_sweeps(app, "time_limits")
    with transaction(app.sessions) as session:
        ticket = Store(session).tickets.by_number(number)
        assert ticket is not None
        ticket.arrive_by = clock.now() + timedelta(minutes=60)
        ticket.fix_by = ticket.arrive_by + timedelta(minutes=120)
    clock.advance(minutes=60)
    run_sweeps(app, "time_limits")
    assert [t[:6] for t in _escalations(app)] == ["【超时升级】", "【超时升级】"]
