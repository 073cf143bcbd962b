"""回访 on both databases: the confirmation, the 48-hour satisfaction callback, reopening on
dissatisfaction, the staff task when nobody answers, and the report."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.app import App
from data.clock import FixedClock
from data.db import transaction
from data.scheduling import Callback
from data.store import Store
from flows.jobs import callbacks
from nlu.types import Parse
from tests.conftest import NOW, Chat
from tests.integration.outbox_helpers import due_now, make_ticket, outbox, run_sweeps, staff_texts

BUTTON = re.compile(r"[A-Z]{2}-\d{8}-\d{4}")


class ButtonsAsTyped:
    """The embedded NLU, except that a button value carrying a ticket number is not classified.

    The real classifier currently calls "解决了 BX-20261123-0001" an emergency (0.4-0.7) and the
    engine acts on emergency at any confidence, before the pre-routes; see
    ``test_button_value_is_not_an_emergency``. These tests check the callback flow itself."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner

    def parse(self, text: str, now: datetime | None = None) -> Parse:
        if BUTTON.search(text):
            return Parse(text, "out_of_scope", 1.0)
        return self.inner.parse(text, now)


@pytest.fixture
def chat(app: App) -> Chat:
    app.__dict__["nlu"] = ButtonsAsTyped(app.nlu)
    return Chat(app)


def _ticket(app: App, number: str):  # type: ignore[no-untyped-def]
    """A read-only look; events and assignee loaded before the session closes (on SQLite an open
    session would hold the writer lock)."""
    with app.sessions() as session:
        ticket = Store(session).tickets.by_number(number)
        assert ticket is not None
        _ = ticket.events, ticket.assignee
        return ticket


def _callback(app: App, number: str) -> Callback:
    with app.sessions() as session:
        ticket = Store(session).tickets.by_number(number)
        assert ticket is not None
        return session.scalars(select(Callback).where(Callback.ticket_id == ticket.id)).one()


def test_satisfaction_callback_goes_at_48_hours_once(app: App, clock: FixedClock) -> None:
    number = make_ticket(app, done=True)
    clock.advance(hours=47, minutes=59)
    assert [a for a in due_now(app, "callbacks") if a.kind == "ask_callback"] == []
    clock.advance(minutes=1)
    [action] = due_now(app, "callbacks")
    assert action.kind == "ask_callback" and action.ticket == number
    run_sweeps(app, "callbacks")
    run_sweeps(app, "callbacks")  # twice: nothing twice
    [row] = [r for r in outbox(app, "console") if r.kind == "callback"]
    assert row.recipient == "demo" and number in row.text and "1-5 分" in row.text
    assert [b[1] for b in row.payload["buttons"]][0] == f"评分5 {number}"
    assert row.due_at == clock.now()  # 10:00 is not quiet
    assert _callback(app, number).status == "asked"
    assert "callback" in [e.kind for e in _ticket(app, number).events]


def test_callback_due_in_quiet_hours_waits_for_the_morning(app: App, clock: FixedClock) -> None:
    clock.advance(hours=11)  # done at 21:00
    make_ticket(app, done=True)
    clock.advance(hours=48)
    run_sweeps(app, "callbacks")
    [row] = [r for r in outbox(app, "console") if r.kind == "callback"]
    assert row.due_at.astimezone(NOW.tzinfo).hour == 8


def test_button_value_is_not_an_emergency(app: App) -> None:
    number = make_ticket(app, done=True)
    assert "感谢您的确认" in Chat(app).say(f"解决了 {number}")


def test_plain_solved_is_recorded(app: App) -> None:
    number = make_ticket(app, done=True)
    assert "感谢您的确认" in Chat(app).say("解决了")
    assert _callback(app, number).confirmed == "solved"


def test_solved_button_is_recorded(app: App, chat: Chat) -> None:
    number = make_ticket(app, done=True)
    reply = chat.say(f"解决了 {number}")
    assert "感谢您的确认" in reply
    callback = _callback(app, number)
    assert callback.confirmed == "solved" and callback.status == "open"
    assert _ticket(app, number).status == "done"  # the satisfaction callback still comes


def test_plain_unsolved_reopens_to_the_same_technician_and_tells_staff(app: App, chat: Chat) -> None:
    number = make_ticket(app, done=True, assignee="张师傅")
    reply = chat.say("没解决")
    assert number in reply and "张师傅" in reply and "对不起" in reply
    ticket = _ticket(app, number)
    assert ticket.status == "dispatched" and ticket.assignee.name == "张师傅"
    assert any(number in t and "重新打开" in t for t in staff_texts(app))
    assert _callback(app, number).confirmed == "unsolved"


def test_low_score_reopens_and_high_score_closes(app: App, clock: FixedClock, chat: Chat) -> None:
    bad = make_ticket(app, done=True, description="厨房灯不亮")
    clock.advance(hours=48)
    run_sweeps(app, "callbacks")
    reply = chat.say(f"评分2 {bad}")
    assert "非常抱歉" in reply and bad in reply
    assert _ticket(app, bad).status == "dispatched"
    assert any("回访不满意（2 分）" in t for t in staff_texts(app))
    assert _callback(app, bad).status == "reopened"

    good = make_ticket(app, done=True, description="门铃坏了")
    clock.advance(hours=48)
    run_sweeps(app, "callbacks")
    assert "感谢您的评价（5 分）" in chat.say("5分 师傅很细心")
    assert "态度、质量、效率" in chat.say("态度5 质量4 效率5")
    callback = _callback(app, good)
    assert (callback.score, callback.attitude, callback.quality, callback.speed) == (5, 5, 4, 5)
    assert "师傅很细心" in callback.comment and callback.via == "chat"
    assert _ticket(app, good).status == "closed"


def test_ordinary_messages_are_not_taken_for_scores(app: App, clock: FixedClock, chat: Chat) -> None:
    number = make_ticket(app, done=True)
    clock.advance(hours=48)
    run_sweeps(app, "callbacks")
    chat.say("3楼走廊灯不亮")  # a new repair, not a score of 3
    chat.say("满意度怎么算")
    assert _callback(app, number).score is None


def test_no_answer_becomes_a_staff_callback_task(app: App, clock: FixedClock) -> None:
    number = make_ticket(app, done=True)
    clock.advance(hours=48)
    run_sweeps(app, "callbacks")
    clock.advance(hours=23)
    assert [a.kind for a in due_now(app, "callbacks")] == []
    clock.advance(hours=1)
    assert [a.kind for a in due_now(app, "callbacks")] == ["callback_task"]
    run_sweeps(app, "callbacks")
    run_sweeps(app, "callbacks")
    tasks = [t for t in staff_texts(app) if "回访任务" in t]
    assert len(tasks) == 1 and number in tasks[0] and "电话回访" in tasks[0]
    assert f"/huifang {number} " in tasks[0]  # how to record the result, ready to copy
    assert "13800138000" not in tasks[0]
    assert _callback(app, number).status == "staff_task"


def test_a_resident_nobody_can_reach_gets_a_phone_callback(app: App, clock: FixedClock) -> None:
    number = make_ticket(app, account=None, unit=(2, 2, "801"), done=True)
    clock.advance(hours=48)
    run_sweeps(app, "callbacks")
    assert [r for r in outbox(app) if r.kind == "callback"] == []
    assert any(number in t and "没有可联系的线上账号" in t for t in staff_texts(app))


def test_phone_callback_recorded_by_staff_and_the_report(app: App, clock: FixedClock, chat: Chat) -> None:
    first = make_ticket(app, done=True, description="灯1")
    second = make_ticket(app, done=True, description="灯2")
    third = make_ticket(app, done=True, description="灯3")
    clock.advance(hours=48)
    run_sweeps(app, "callbacks")
    chat.say(f"评分5 {first}")
    chat.say(f"评分1 {second}")
    with transaction(app.sessions) as session:
        store = Store(session)
        ticket = store.tickets.by_number(third)
        assert ticket is not None
        callbacks.record_callback(
            store, ticket, clock.now(), "staff:1", score=4, attitude=5, comment="电话回访"
        )
    with app.sessions() as session:
        result = callbacks.report(Store(session), NOW - timedelta(days=1), NOW + timedelta(days=1))
    assert (result.finished, result.called_back, result.answered, result.satisfied) == (3, 3, 3, 2)
    assert result.callback_rate == 1.0 and abs((result.satisfaction or 0) - 2 / 3) < 1e-9
    assert result.mean_score == 3.33 and result.reopened == 1
