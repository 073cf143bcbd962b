"""Bill notices and arrears reminders on both databases: on schedule, gentle, never a threat, never
in quiet hours; "已缴费" and "发工资后再提醒我"; bad bills reported."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from bot.app import App
from data.clock import SHANGHAI, FixedClock, local
from data.db import transaction
from data.models import Bill
from data.scheduling import PaymentReminder
from data.settings import CompoundSettings
from data.store import Store
from flows.jobs.reminders import FORBIDDEN, snooze_date
from tests.conftest import NOW, Chat
from tests.integration.outbox_helpers import FakeSender, dispatcher, due_now, outbox, run_sweeps, staff_texts

BILL_DAY = datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI)


def _resident_rows(app: App, kind: str, recipient: str | None = None) -> list:  # type: ignore[type-arg]
    return [
        r
        for r in outbox(app, "console")
        if r.kind == kind and (recipient is None or r.recipient == recipient)
    ]


def _unit_id(app: App, building: int, unit_no: int, room: str) -> int:
    with app.sessions() as session:
        unit = Store(session).find_unit(building, unit_no, room)
        assert unit is not None
        return unit.id


# -- bill notices ----------------------------------------------------------------------------------------
def test_bill_notice_on_billing_day_at_the_set_hour_once(app: App, clock: FixedClock) -> None:
    clock.set(BILL_DAY - timedelta(minutes=1))
    assert [a for a in due_now(app, "billing") if a.kind == "bill_notice"] == []
    clock.set(BILL_DAY)
    run_sweeps(app, "billing")
    run_sweeps(app, "billing")
    rows = _resident_rows(app, "bill_notice")
    assert sorted(r.recipient for r in rows) == ["demo", "elder", "family"]
    text = next(r.text for r in rows if r.recipient == "demo")
    assert "3栋2单元1502 2026-11 账单已出" in text and "物业费" in text and "停车费" in text
    assert "合计" in text and "2026年11月20日" in text and "缴费方式" in text and "0571-88881234" in text
    assert next(r for r in rows if r.recipient == "demo").payload["template"] == "bill_notice"


def test_a_missed_bill_notice_catches_up_for_three_days_only(app: App, clock: FixedClock) -> None:
    clock.set(BILL_DAY + timedelta(days=3))
    assert len([a for a in due_now(app, "billing") if a.kind == "bill_notice"]) == 2
    clock.set(BILL_DAY + timedelta(days=3, minutes=1))
    assert [a for a in due_now(app, "billing") if a.kind == "bill_notice"] == []


def test_twice_a_year_billing_skips_other_months(app: App, clock: FixedClock) -> None:
    with transaction(app.sessions) as session:
        Store(session).compound().settings = {"billing_mode": "semiannual", "billing_months": [1, 7]}
    clock.set(BILL_DAY)
    assert [a for a in due_now(app, "billing") if a.kind == "bill_notice"] == []


# -- arrears cadence -----------------------------------------------------------------------------------
def test_reminder_then_second_then_a_call_task(app: App, clock: FixedClock) -> None:
    run_sweeps(app, "arrears")
    first = _resident_rows(app, "reminder", "demo")
    assert len(first) == 1 and first[0].text.startswith("您好，温馨提示")
    assert "物业费：2026-09、2026-10、2026-11" in first[0].text and "合计" in first[0].text
    assert first[0].payload["template"] == "arrears" and first[0].payload["fields"]["unit"] == "3栋2单元1502"
    assert len(_resident_rows(app, "reminder", "family")) == 1  # the household shares the unit's bills
    assert _resident_rows(app, "reminder", "elder") == []  # 1 month behind, due 11-20: not 7 days yet

    clock.advance(days=4)
    run_sweeps(app, "arrears")
    assert len(_resident_rows(app, "reminder", "elder")) == 1
    clock.set(NOW + timedelta(days=13, hours=23))
    run_sweeps(app, "arrears")
    assert len(_resident_rows(app, "reminder", "demo")) == 1
    clock.set(NOW + timedelta(days=14))
    run_sweeps(app, "arrears")
    run_sweeps(app, "arrears")
    second = _resident_rows(app, "reminder", "demo")
    assert len(second) == 2 and second[1].text.startswith("您好，再次温馨提示")

    clock.set(NOW + timedelta(days=28))
    run_sweeps(app, "arrears")
    calls = [t for t in staff_texts(app) if "【催缴沟通】3栋2单元1502" in t]
    assert len(calls) == 1 and "两次线上提醒" in calls[0] and "13800138000" not in calls[0]
    clock.set(NOW + timedelta(days=60))
    run_sweeps(app, "arrears")
    assert (
        len(_resident_rows(app, "reminder", "demo")) == 2
        and len([t for t in staff_texts(app) if "【催缴沟通】3栋2单元1502" in t]) == 1
    )


def test_a_unit_nobody_can_reach_goes_to_the_butler(app: App, clock: FixedClock) -> None:
    actions = [a for a in due_now(app, "arrears") if a.kind == "arrears_call"]
    assert actions and all("无线上联系方式" in a.summary for a in actions)
    run_sweeps(app, "arrears")
    assert any("没有可联系的线上账号" in t for t in staff_texts(app))


def test_no_text_ever_threatens(app: App, clock: FixedClock) -> None:
    clock.set(BILL_DAY)
    for day in range(0, 60, 7):
        clock.set(BILL_DAY + timedelta(days=day))
        run_sweeps(app, "billing", "arrears")
    texts = [r.text for r in outbox(app) if r.kind in ("bill_notice", "reminder", "arrears_call")]
    assert len(texts) > 20
    offending = [(word, text) for text in texts for word in FORBIDDEN if word in text]
    assert offending == []


def test_reminders_never_go_out_in_quiet_hours(app: App, clock: FixedClock) -> None:
    """Three days of the scheduler and the dispatcher every 30 minutes, around the clock."""
    clock.set(datetime(2026, 11, 23, 0, 0, tzinfo=SHANGHAI))
    sent: list[datetime] = []
    console = FakeSender("console")
    original = console.send

    async def stamped(message):  # type: ignore[no-untyped-def]
        sent.append(clock.now())
        await original(message)

    console.send = stamped  # type: ignore[method-assign]
    run = dispatcher(app, clock, {"console": console})
    for _ in range(3 * 48):
        run_sweeps(app, "billing", "arrears", "callbacks")
        asyncio.run(run.run_once())
        clock.advance(minutes=30)
    settings = CompoundSettings()
    assert len(sent) >= 2
    assert [local(t) for t in sent if settings.in_quiet_hours(local(t).time())] == []


def test_a_sweep_in_quiet_hours_schedules_for_the_morning(app: App, clock: FixedClock) -> None:
    clock.set(datetime(2026, 11, 23, 22, 30, tzinfo=SHANGHAI))
    run_sweeps(app, "arrears")
    [row] = _resident_rows(app, "reminder", "demo")
    assert row.due_at == datetime(2026, 11, 24, 8, 0, tzinfo=SHANGHAI)


# -- residents answering ---------------------------------------------------------------------------------
def test_already_paid_makes_a_finance_task_and_pauses_reminders(
    app: App, clock: FixedClock, chat: Chat
) -> None:
    reply = chat.say("已缴费")
    chat.say("我已经交了")
    assert "财务" in reply and "不会再给您发缴费提醒" in reply
    tasks = [t for t in staff_texts(app) if t.startswith("【缴费核对】")]
    assert len(tasks) == 1 and "3栋2单元1502" in tasks[0] and "物业费" in tasks[0]
    run_sweeps(app, "arrears")
    assert _resident_rows(app, "reminder", "demo") == []
    clock.advance(days=5)
    run_sweeps(app, "arrears")
    assert len(_resident_rows(app, "reminder", "demo")) == 1


def test_already_paid_with_nothing_owed(app: App) -> None:
    reply = Chat(app, "tenant").say("已缴费")
    assert "没有待缴费用" in reply
    assert [t for t in staff_texts(app) if t.startswith("【缴费核对】")] == []


def test_remind_me_after_payday(app: App, clock: FixedClock, chat: Chat) -> None:
    run_sweeps(app, "arrears")  # the first reminder
    reply = chat.say("发工资后再提醒我")
    assert "12月16日" in reply  # payday the 15th: the day after
    with app.sessions() as session:
        state = session.scalars(
            select(PaymentReminder).where(PaymentReminder.unit_id == _unit_id(app, 3, 2, "1502"))
        ).one()
        assert state.snoozed_until == date(2026, 12, 16)
    clock.set(NOW + timedelta(days=20))  # the second reminder would be due: snoozed
    run_sweeps(app, "arrears")
    assert len(_resident_rows(app, "reminder", "demo")) == 1
    clock.set(datetime(2026, 12, 16, 10, 0, tzinfo=SHANGHAI))
    run_sweeps(app, "arrears")
    assert len(_resident_rows(app, "reminder", "demo")) == 2


def test_snooze_dates() -> None:
    settings = CompoundSettings()
    monday = NOW  # 2026-11-23
    assert snooze_date("下周再提醒我", monday, settings) == date(2026, 11, 30)
    assert snooze_date("发工资后再提醒我", monday, settings) == date(2026, 12, 16)
    assert snooze_date("3天后再提醒我", monday, settings) == date(2026, 11, 26)
    assert snooze_date("过两天再提醒", monday, settings) == date(2026, 11, 25)
    assert snooze_date("月底再提醒我", monday, settings) == date(2026, 11, 30)
    assert snooze_date("5号再提醒我", monday, settings) == date(2026, 12, 5)
    assert snooze_date("明年再提醒我吧", monday, settings) == date(2026, 11, 30)  # a week, by default
    assert snooze_date("100天后再提醒我", monday, settings) == date(2027, 1, 7)  # at most 45 days


def test_snooze_words_without_bills_go_to_the_conversation(app: App) -> None:
    reply = Chat(app, "tenant").say("下周再提醒我")
    assert "再提醒您" not in reply


# -- bad data --------------------------------------------------------------------------------------------
def test_a_negative_bill_is_reported_once_and_left_out(app: App, clock: FixedClock) -> None:
    unit_id = _unit_id(app, 1, 1, "101")
    with transaction(app.sessions) as session:
        session.add(
            Bill(
                unit_id=unit_id,
                item="water",
                period="2026-12",
                amount=Decimal("-35.00"),
                due_date=date(2026, 11, 1),
                paid_amount=Decimal(0),
            )
        )
    clock.advance(days=4)
    run_sweeps(app, "billing", "arrears")
    run_sweeps(app, "billing", "arrears")
    reports = [t for t in staff_texts(app) if t.startswith("【账单异常】")]
    assert len(reports) == 1 and "1栋1单元101" in reports[0] and "-35.00" in reports[0]
    [reminder] = _resident_rows(app, "reminder", "elder")
    assert "-35" not in reminder.text and "2026-12" not in reminder.text


def test_paying_everything_ends_the_round_and_new_arrears_start_afresh(app: App, clock: FixedClock) -> None:
    run_sweeps(app, "arrears")
    unit_id = _unit_id(app, 3, 2, "1502")
    with transaction(app.sessions) as session:
        for bill in session.scalars(select(Bill).where(Bill.unit_id == unit_id)):
            bill.paid_amount = bill.amount
    run_sweeps(app, "arrears")
    with app.sessions() as session:
        assert (
            session.scalars(select(PaymentReminder).where(PaymentReminder.unit_id == unit_id)).first() is None
        )
    with transaction(app.sessions) as session:
        session.add(
            Bill(
                unit_id=unit_id,
                item="management",
                period="2026-12",
                amount=Decimal("300.00"),
                due_date=date(2026, 12, 20),
                paid_amount=Decimal(0),
            )
        )
    clock.set(datetime(2026, 12, 27, 10, 0, tzinfo=SHANGHAI))
    run_sweeps(app, "arrears")
    latest = _resident_rows(app, "reminder", "demo")[-1]
    assert (
        latest.text.startswith("您好，温馨提示") and "2026-12" in latest.text and "2026-09" not in latest.text
    )
