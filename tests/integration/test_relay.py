"""The staff relay through the engine, on SQLite and PostgreSQL: a staff member's question reaches the
resident, the resident's answer goes back to the card, and the most recent question wins over a
dialog (报修/投诉/预约) that is in progress."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event, select
from sqlalchemy.orm import selectinload

from bot.app import App
from data.clock import FixedClock
from data.db import transaction
from data.models import ChannelAccount, Conversation, OutboxMessage, Ticket
from data.store import Store
from flows.dialog.turn import Inbound
from flows.domain.relay import MASK, relay_to_resident
from flows.domain.tickets import NewTicket, open_ticket
from tests.conftest import Chat

FIRST, SECOND = "BX-20261123-0001", "BX-20261123-0002"
WANG_PHONE = "13900139001"  # 王师傅's phone on file
LI_PHONE = "13800138000"  # 李明's
CARD = 4242  # the staff group's message id of the ticket's card


def report_leak(chat: Chat) -> None:
    chat.say("厨房水管漏水了")
    chat.say("明天上午")
    assert FIRST in chat.say("确认")


def staff_asks(app: App, number: str, text: str, card: int = CARD) -> None:
    with transaction(app.sessions) as session:
        store = Store(session)
        ticket = store.tickets.by_number(number)
        staff = store.staff_member("王师傅")
        assert ticket is not None and staff is not None
        relay_to_resident(store, ticket, staff, text, card, app.clock.now())


def outbox(app: App, channel: str, kind: str = "relay") -> list[OutboxMessage]:
    with app.sessions() as session:
        query = select(OutboxMessage).where(OutboxMessage.channel == channel, OutboxMessage.kind == kind)
        return list(session.scalars(query.order_by(OutboxMessage.id)).all())


def ticket(app: App, number: str) -> Ticket:
    with app.sessions() as session:
        query = select(Ticket).options(selectinload(Ticket.events)).where(Ticket.number == number)
        return session.scalars(query).unique().one()


def conversation(app: App, account: str) -> Conversation:
    with app.sessions() as session:
        return session.scalars(select(Conversation).where(Conversation.external_id == account)).one()


@contextmanager
def ticket_queries(app: App) -> Iterator[list[str]]:
    """The SQL statements that read the tickets table while the block runs."""
    seen: list[str] = []

    def note(_conn, _cursor, statement: str, *_args) -> None:  # type: ignore[no-untyped-def]
        if "FROM tickets" in statement:
            seen.append(statement)

    event.listen(app.db, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(app.db, "before_cursor_execute", note)


def test_a_staff_question_in_the_middle_of_a_repair_form_is_answered_and_the_form_goes_on(
    chat: Chat, app: App, clock: FixedClock
) -> None:
    report_leak(chat)
    assert "什么时候上门" in chat.say("卧室的灯不亮了")
    clock.advance(minutes=5)
    staff_asks(app, FIRST, f"您好，厨房下午三点去可以吗？有事打我 {WANG_PHONE}")
    clock.advance(minutes=1)

    reply = chat.say(f"可以 三点后都在 打我{LI_PHONE}")
    assert "已将您的回复转达给王师傅" in reply
    assert "您的报修还没有提交" in reply and "什么时候上门" in reply  # the form's question again
    [back] = outbox(app, "staff")
    assert back.text == f"【居民回复】{FIRST}：可以 三点后都在 打我{MASK}"
    assert back.payload["reply_to"] == CARD and LI_PHONE not in back.text
    [asked] = outbox(app, "console")
    assert "厨房下午三点去可以吗" in asked.text and WANG_PHONE not in asked.text
    saved = conversation(app, "demo")
    assert saved.flow == "repair" and saved.state["values"]["description"] == "卧室的灯不亮了"

    assert "核对" in chat.say("明天下午")  # answered once: the form has the next message again
    assert SECOND in chat.say("确认")
    lights = ticket(app, SECOND)
    assert (lights.category, lights.description) == ("lighting", "卧室的灯不亮了")
    assert [e.kind for e in ticket(app, FIRST).events].count("relay_in") == 1
    assert len(outbox(app, "staff")) == 1


def test_a_staff_question_older_than_the_dialogs_question_leaves_the_answer_to_the_dialog(
    chat: Chat, app: App, clock: FixedClock
) -> None:
    report_leak(chat)
    staff_asks(app, FIRST, "请问家里几点有人？")
    clock.advance(minutes=2)
    # A button pressed on an earlier menu answers that menu (Telegram says which message it was on)
    menu = "李明您好！我是阳光花园物业的智能客服……请问有什么可以帮您？"
    started = app.engine.handle(Inbound("console", "demo", "我要投诉", clock.now(), reply_to=menu))
    assert "遇到了什么情况" in started[0].text
    clock.advance(minutes=1)
    assert "哪里发生" in chat.say("楼道里堆满了杂物")  # answers the form's newer question
    assert "已为您取消投诉" in chat.say("算了")
    assert outbox(app, "staff") == []
    # the staff question is the only one still open now: the next message answers it
    assert "已将您的回复转达给王师傅" in chat.say("晚上七点以后")
    assert [m.text for m in outbox(app, "staff")] == [f"【居民回复】{FIRST}：晚上七点以后"]


def test_a_reply_to_the_relayed_message_always_reaches_staff(chat: Chat, app: App, clock: FixedClock) -> None:
    report_leak(chat)
    staff_asks(app, FIRST, "请问家里几点有人？")
    [asked] = outbox(app, "console")
    assert "已将您的回复转达" in chat.say("下午都在")
    assert "什么时候上门" in chat.say("卧室的灯不亮了")  # a newer question, and the relay was answered
    clock.advance(minutes=1)
    late = app.engine.handle(
        Inbound("console", "demo", "对了 门禁坏了要敲门", clock.now(), reply_to=asked.text)
    )
    assert "已将您的回复转达给王师傅" in late[0].text and "什么时候上门" in late[-1].text
    assert [m.text for m in outbox(app, "staff")][-1] == f"【居民回复】{FIRST}：对了 门禁坏了要敲门"
    assert outbox(app, "staff")[-1].payload["reply_to"] == CARD
    assert "核对" in chat.say("明天上午")


def test_a_button_value_is_not_taken_for_an_answer_to_staff(chat: Chat, app: App) -> None:
    report_leak(chat)
    staff_asks(app, FIRST, "请问家里几点有人？")
    assert "已将您的回复转达" not in chat.say(f"查一下 {FIRST} 的进度")
    assert outbox(app, "staff") == []


def test_the_question_goes_to_the_reporter_and_not_to_the_rest_of_the_household(chat: Chat, app: App) -> None:
    report_leak(chat)  # 李明 reported it
    family = Chat(app, "family")  # 王芳, same flat
    assert "什么时候上门" in family.say("客厅插座没电了")
    staff_asks(app, FIRST, "请问家里几点有人？")
    assert "核对" in family.say("明天上午")  # 王芳 was not asked: her form goes on
    assert "已将您的回复转达" in chat.say("下午都在")


def test_a_ticket_nobody_reported_asks_every_account_of_the_household_and_one_answer_is_enough(
    app: App,
) -> None:
    with transaction(app.sessions) as session:  # the front desk opened it from a phone call
        store = Store(session)
        unit = store.account("console", "demo").resident.unit  # type: ignore[union-attr]
        repair = NewTicket(kind="repair", description="阳台漏水", category="water", area="in_home")
        opened = open_ticket(store, store.compound(), None, repair, app.clock.now(), "staff:1")
        opened.unit_id = unit.id
    staff_asks(app, FIRST, "请问家里几点有人？")
    with app.sessions() as session:
        waiting = session.scalars(select(ChannelAccount).where(ChannelAccount.awaiting_relay == FIRST)).all()
        assert sorted(a.external_id for a in waiting) == ["demo", "family"]
    owner, family = Chat(app, "demo"), Chat(app, "family")
    assert "已将您的回复转达" in family.say("晚上在家")
    assert "已将您的回复转达" not in owner.say("你好")  # answered already, by 王芳
    with app.sessions() as session:
        assert session.scalars(
            select(ChannelAccount.awaiting_relay).where(ChannelAccount.external_id.in_(["demo", "family"]))
        ).all() == [None, None]
    assert len(outbox(app, "staff")) == 1


def test_with_nothing_pending_a_message_costs_no_ticket_look_up(chat: Chat, app: App) -> None:
    report_leak(chat)
    staff_asks(app, FIRST, "请问家里几点有人？")
    assert "已将您的回复转达" in chat.say("下午都在")
    with ticket_queries(app) as seen:
        assert "请问有什么可以帮您" in chat.say("你好")
    assert seen == []
