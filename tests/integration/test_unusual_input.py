"""Input the fuzzers (tests/fuzz) found the store choking on, on SQLite and PostgreSQL: long
names, NUL and lone surrogates, ids that are not ints the database can hold, stdin that is not UTF-8."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from bot.app import App
from bot.channels.console import ConsoleChat
from data.db import transaction
from data.models import ChannelAccount, Staff
from data.store import Store, storable_text
from flows.dialog.engine import APOLOGY
from flows.domain.tickets import NewTicket, open_ticket
from flows.services import staff_commands
from tests.conftest import NOW


def test_a_telegram_full_name_longer_than_the_column_is_cut(app: App) -> None:
    name = "阳" * 64 + " " + "光" * 64  # Telegram allows 64 characters for each half
    with transaction(app.sessions) as session:
        Store(session).chat("telegram", "42", NOW, name)
    with transaction(app.sessions) as session:
        Store(session).chat("telegram", "42", NOW, name + "!")  # renamed: still cut
    with app.sessions() as session:
        account = session.scalars(select(ChannelAccount).where(ChannelAccount.external_id == "42")).one()
    assert account.display_name == name[:100]


def test_storable_text_is_stored_on_every_backend(app: App) -> None:
    with transaction(app.sessions) as session:
        Store(session).chat("telegram", "43", NOW, storable_text("\x00居\ud800民"))
    with app.sessions() as session:
        account = session.scalars(select(ChannelAccount).where(ChannelAccount.external_id == "43")).one()
    assert account.display_name == "居\ufffd民"


@pytest.mark.parametrize("typed", ["²", "9" * 30, "2147483648"])
def test_staff_ids_that_are_not_ints_of_the_table_find_nobody(app: App, typed: str) -> None:
    with app.sessions() as session:
        assert Store(session).staff_member(typed) is None


@pytest.mark.parametrize(("typed", "answer"), [("9" * 40, "没有编号为"), ("²", "用法")])
def test_cancelling_a_notice_by_an_impossible_number_says_so(app: App, typed: str, answer: str) -> None:
    with pytest.raises(staff_commands.CommandError, match=answer), transaction(app.sessions) as session:
        store = Store(session)
        lead = session.scalars(select(Staff).where(Staff.role == "lead")).first()
        assert lead is not None
        command = staff_commands.parse_command(f"/notice cancel {typed}", None)
        assert command is not None
        staff_commands.run(store, lead, command, NOW)


def test_propbot_chat_takes_bytes_that_are_not_utf8(db_url: str) -> None:
    """A terminal in another encoding, or a binary file piped in: replaced characters, no crash."""
    env = {**os.environ, "DATABASE_URL": db_url, "PROPBOT_NLU": "embedded", "PYTHONIOENCODING": "utf-8"}
    env.pop("PROPBOT_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())", "chat"],
        input="厨房水管漏水了\n".encode("gbk") + b"\xff\xfe\n",
        capture_output=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stdout.decode().count("物业: ") >= 2  # both lines answered


@pytest.mark.parametrize("line", ["\udfff建议", "建议\x00"])
def test_console_lines_are_made_storable(app: App, line: str) -> None:
    """A suggestion's words are kept in the dialog state: a lone surrogate failed the turn."""
    with ConsoleChat(app, "demo", io.StringIO()) as chat:
        chat.send("建议")
        assert APOLOGY not in [reply.text for reply in chat.send(line)]


def test_a_snooze_of_a_hundred_million_days_is_the_longest_snooze(app: App) -> None:
    """李明 owes fees, so "N天以后再提醒我" snoozes his reminders: N past a date's range raised."""
    with ConsoleChat(app, "demo", io.StringIO()) as chat:
        reply = chat.send("99999999天以后再提醒我交费")
    assert [r.text for r in reply] == [reply[0].text] and "1月7日 再提醒您" in reply[0].text  # 45 days


def test_a_place_longer_than_the_column_is_cut(app: App) -> None:
    """A complaint's place is the resident's words; 201 characters failed on PostgreSQL."""
    with transaction(app.sessions) as session:
        store = Store(session)
        account = store.account("console", "demo")
        compound = store.compound(account.resident.unit.building.compound_id)
        new = NewTicket("complaint", "太吵了", category="noise", area="common", location="楼" * 300)
        number = open_ticket(store, compound, account, new, NOW, "resident").number
    with app.sessions() as session:
        assert Store(session).tickets.by_number(number).location == "楼" * 200
