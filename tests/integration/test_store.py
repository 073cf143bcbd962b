"""The store on both databases: schema, demo data, numbering, idempotent intake, money."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.pool import NullPool

from bot.app import App
from data.db import transaction
from data.models import Bill, ChannelAccount, InboundMessage, Ticket
from data.store import Store
from tests.conftest import NOW, Chat


def test_demo_compound_is_loaded_with_arrears(app: App) -> None:
    with transaction(app.sessions) as session:
        store = Store(session)
        unit = store.find_unit(3, 2, "1502")
        assert unit is not None and unit.label == "3栋2单元1502"
        owed = [b for b in store.units.bills(unit.id) if b.outstanding > 0]
        assert {b.period for b in owed} == {"2026-09", "2026-10", "2026-11"}
        assert all(isinstance(b.amount, Decimal) for b in owed)
        assert store.find_unit(3, 2, "9999") is None


def test_ticket_numbers_are_sequential_per_day_and_prefix(app: App) -> None:
    with transaction(app.sessions) as session:
        store = Store(session)
        first = store.tickets.next_number("repair", NOW)
        second = store.tickets.next_number("repair", NOW)
        complaint = store.tickets.next_number("complaint", NOW)
        tomorrow = store.tickets.next_number("repair", NOW + timedelta(days=1))
    assert (first, second) == ("BX-20261123-0001", "BX-20261123-0002")
    assert complaint == "TS-20261123-0001"
    assert tomorrow == "BX-20261124-0001"


def test_inbound_message_is_claimed_once(app: App) -> None:
    with transaction(app.sessions) as session:
        store = Store(session)
        assert store.claim_inbound("wechat", "m1", "openid", NOW) is True
        assert store.claim_inbound("wechat", "m1", "openid", NOW) is False
        assert store.claim_inbound("telegram", "m1", "openid", NOW) is True
    with app.sessions() as session:
        assert len(session.scalars(select(InboundMessage)).all()) == 2


def test_dialog_state_is_saved_on_first_contact_and_after(app: App) -> None:
    later = NOW + timedelta(minutes=5)
    with transaction(app.sessions) as session:  # first contact: account and conversation are new
        store = Store(session)
        account, conversation = store.chat("wechat", "o-1", NOW, "王芳")
        store.save_dialog(account, conversation, "repair", {"slots": {"place": "厨房"}}, NOW, NOW)
    with transaction(app.sessions) as session:  # known chat; a new display name dirties the account
        store = Store(session)
        account, conversation = store.chat("wechat", "o-1", later, "王芳芳")
        assert (conversation.flow, conversation.state) == ("repair", {"slots": {"place": "厨房"}})
        assert account.last_inbound_at == NOW
        store.save_dialog(account, conversation, "repair", {"slots": {"place": "卫生间"}}, later, later)
        assert conversation.state == {"slots": {"place": "卫生间"}}, "the loaded object follows"
    with transaction(app.sessions) as session:  # known chat, nothing else changed: the Core path
        store = Store(session)
        account, conversation = store.chat("wechat", "o-1", later)
        assert (account.display_name, account.last_inbound_at) == ("王芳芳", later)
        assert (conversation.state, conversation.updated_at) == ({"slots": {"place": "卫生间"}}, later)
        store.save_dialog(account, conversation, None, {}, later + timedelta(minutes=1), later)
        assert conversation not in session.dirty and account not in session.dirty
    with app.sessions() as session:
        account, conversation = Store(session).chat("wechat", "o-1", later)
        assert (conversation.flow, conversation.state) == (None, {})
        assert conversation.updated_at == later + timedelta(minutes=1)


def test_a_turn_survives_a_lost_database_connection(app: App, chat: Chat) -> None:
    url = app.settings.database_url
    if not url.startswith("postgresql"):
        pytest.skip("PostgreSQL: a server that drops connections")
    assert "什么时候上门" in chat.say("厨房水管漏水了")  # the pool now holds a connection
    killer = create_engine(url.replace("postgresql:", "postgresql+psycopg:", 1), poolclass=NullPool)
    with killer.connect() as connection:
        dropped = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar_one()
    killer.dispose()
    assert dropped >= 1
    assert "请您核对报修信息" in chat.say("尽快"), "answered on a new connection, not an apology"
    assert "已为您登记报修" in chat.say("确认")


def _turn_started(app: App, chat_id: str) -> threading.Event:
    """A turn for ``chat_id`` begun in another thread (as another server process would); the event is
    set once it holds the chat, and the turn then ends."""
    started = threading.Event()

    def turn() -> None:
        with transaction(app.sessions) as session:
            Store(session).chat("telegram", chat_id, NOW)
            started.set()

    threading.Thread(target=turn, daemon=True).start()
    return started


def test_one_turn_per_chat_at_a_time(app: App) -> None:
    for chat_id in ("42", "43"):
        with transaction(app.sessions) as session:
            Store(session).chat("telegram", chat_id, NOW)  # first contact: the accounts exist
    with transaction(app.sessions) as session:
        Store(session).chat("telegram", "42", NOW)
        same = _turn_started(app, "42")
        assert not same.wait(0.5), "a second turn of the same chat waits for the first"
        if app.settings.database_url.startswith("postgresql"):  # SQLite: one writer at all
            assert _turn_started(app, "43").wait(10), "another chat does not wait"
    assert same.wait(10)


def test_two_first_messages_of_a_new_chat_at_once_both_go_on(app: App) -> None:
    """As from two server processes: the second waits for the first turn (PostgreSQL) or for the
    writer lock (SQLite), then finds the account the first one made."""
    made, release = threading.Event(), threading.Event()
    first: list[int] = []

    def first_turn() -> None:
        with transaction(app.sessions) as session:
            account, _ = Store(session).chat("telegram", "9001", NOW, "新住户")
            first.append(account.id)
            made.set()
            release.wait(10)

    thread = threading.Thread(target=first_turn)
    thread.start()
    assert made.wait(10)
    threading.Timer(0.5, release.set).start()  # the first turn ends while the second waits
    with transaction(app.sessions) as session:
        account, conversation = Store(session).chat("telegram", "9001", NOW, "新住户")
        second = account.id
    thread.join(10)
    assert second == first[0]
    assert conversation.id is not None, "the first turn's conversation, not a second one"
    with app.sessions() as session:
        assert (
            len(session.scalars(select(ChannelAccount).where(ChannelAccount.external_id == "9001")).all())
            == 1
        )


def test_times_come_back_aware_in_utc(app: App) -> None:
    with transaction(app.sessions) as session:
        session.add(
            Ticket(
                number="X-1", compound_id=1, kind="repair", created_at=NOW, updated_at=NOW, description="t"
            )
        )
    with app.sessions() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == "X-1")).one()
        assert ticket.created_at == NOW and ticket.created_at.tzinfo is not None


def test_failed_transaction_leaves_nothing(app: App) -> None:
    try:
        with transaction(app.sessions) as session:
            Store(session).tickets.next_number("repair", NOW)
            session.add(
                Bill(unit_id=1, item="water", period="2026-11", amount=Decimal(1), due_date=NOW.date())
            )
            session.flush()  # duplicate (unit, item, period): the demo has it already
    except Exception:
        pass
    with transaction(app.sessions) as session:
        assert Store(session).tickets.next_number("repair", NOW) == "BX-20261123-0001"
