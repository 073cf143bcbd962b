"""The outbox repository's contract, run on both implementations: ``SqlOutbox`` on SQLite and
``MemoryOutbox``. A difference between them is a bug in the memory one (or a contract to write down).

Each step after a change reads the rows again (``settle``), as the dispatcher's next unit of work does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from data.clock import SHANGHAI
from data.db import make_engine, migrate
from data.models import Compound, OutboxMessage, Ticket
from data.repositories.memory_outbox import MemoryOutbox
from data.repositories.memory_rows import DuplicateRow
from data.repositories.outbox import IN_LINE, OutboxRepository, SqlOutbox, outbox_row

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
SOON = NOW + timedelta(seconds=45)  # a claim's lease
LATER = NOW + timedelta(minutes=1)


@dataclass
class Box:
    outbox: OutboxRepository
    settle: Callable[[], None]  # write what is pending and read rows afresh (SQL); nothing (memory)
    other_rows: Callable[[object], None] = lambda _row: None  # rows of other tables the SQL side needs

    def row(self, recipient: str = "chat-1", channel: str = "telegram", **fields: Any) -> OutboxMessage:
        """A row added at NOW (pending, due now unless ``due_at``); other ``fields`` set after
        adding it, as a dispatcher changes a row it holds."""
        made = {k: fields.pop(k) for k in ("due_at", "urgent", "dedupe_key") if k in fields}
        row = outbox_row(channel, recipient, "reply", "你好", NOW, **made)
        assert self.outbox.add_once(row)
        for name, value in fields.items():
            setattr(row, name, value)
        self.settle()
        return row

    def sending(self, row: OutboxMessage, owner: str = "me", until: datetime = SOON) -> OutboxMessage:
        """``row`` claimed by ``owner`` (its lease runs until ``until``)."""
        assert self.outbox.claim(row.id, row.attempts, owner, NOW, until)
        self.settle()
        return row

    def claimable(self, now: datetime = NOW, channels: tuple[str, ...] = ("telegram",)) -> list[int]:
        return [row.id for row in self.outbox.claimable(list(channels), now, 100)]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("outbox") / "propbot.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sql", "memory"])
def box(request: pytest.FixtureRequest) -> Iterator[Box]:
    if request.param == "memory":
        yield Box(MemoryOutbox(), lambda: None)
        return
    engine: Engine = request.getfixturevalue("engine")
    with Session(engine) as session:

        def settle() -> None:
            session.flush()
            session.expire_all()

        yield Box(SqlOutbox(session), settle, session.add)
        session.rollback()  # the next test starts from the empty schema again


# -- adding ---------------------------------------------------------------------------------------
def test_a_dedupe_key_names_one_row_only(box: Box) -> None:
    first = box.row(dedupe_key="k:1")
    again = outbox_row("telegram", "chat-1", "reply", "又一次", NOW, dedupe_key="k:1")
    assert not box.outbox.add_once(again)
    assert box.outbox.taken(["k:1", "k:2"]) == {"k:1"}
    box.row(), box.row()  # rows without a key are never the same
    assert box.outbox.backlog() == 3
    assert box.outbox.get(first.id) is first


def test_a_row_added_has_an_id_and_the_columns_defaults(box: Box) -> None:
    row = box.row()
    assert row.id is not None
    assert (row.status, row.attempts, row.urgent, row.payload) == ("pending", 0, False, {})
    assert box.outbox.get(row.id + 1000) is None


def test_a_checked_add_trusts_the_caller_but_a_taken_key_is_still_refused(box: Box) -> None:
    box.row(dedupe_key="k:1")
    fresh = outbox_row("telegram", "x", "reply", "新", NOW, dedupe_key="k:2")
    assert box.outbox.add_once(fresh, checked=True)
    box.settle()
    assert box.outbox.taken(["k:2"]) == {"k:2"}
    twice = outbox_row("telegram", "x", "reply", "重", NOW, dedupe_key="k:1")
    with pytest.raises((IntegrityError, DuplicateRow)):  # at the write, as the unique key says
        box.outbox.add_once(twice, checked=True)
        box.settle()


def test_taken_looks_up_more_keys_than_one_in_list_holds(box: Box) -> None:
    box.row(dedupe_key="k:0")
    last = box.row(dedupe_key=f"k:{IN_LINE + 10}")
    keys = [f"k:{i}" for i in range(IN_LINE * 2 + 1)]
    assert box.outbox.taken(keys) == {"k:0", last.dedupe_key}


# -- reading what is due --------------------------------------------------------------------------
def test_pending_rows_of_the_channels_due_by_now_oldest_first(box: Box) -> None:
    first = box.row()
    staff = box.row("staff", channel="staff")
    box.row(due_at=LATER)
    box.row(status="sent", sent_at=NOW)
    box.row(channel="wechat")
    last = box.row("chat-2")
    found = box.outbox.pending(["telegram", "staff"], NOW)
    assert [r.id for r in found] == [first.id, staff.id, last.id]
    assert [r.id for r in box.outbox.pending(["telegram"], NOW, limit=1)] == [first.id]


def test_staff_cards_are_the_tickets_sent_and_named_rows_of_the_channel_newest_first(box: Box) -> None:
    box.other_rows(Compound(id=1, code="c", name="花园", duty_phone="1", office_phone="2", settings={}))
    for ident in (7, 8):  # the rows' tickets (the SQL side's foreign key)
        number = f"BX-20261123-000{ident}"
        box.other_rows(
            Ticket(id=ident, number=number, compound_id=1, kind="repair", created_at=NOW, updated_at=NOW)
        )
    box.settle()
    older = box.row("staff", channel="staff", ticket_id=7, status="sent", sent_ref="101")
    newer = box.row("staff", channel="staff", ticket_id=7, status="sent", sent_ref="102")
    box.row("staff", channel="staff", ticket_id=7, status="sent")  # sent, but no message id kept
    box.row("staff", channel="staff", ticket_id=7)  # not sent yet
    box.row("staff", channel="staff", ticket_id=8, status="sent", sent_ref="103")  # another ticket
    box.row("staff", channel="wecom_app", ticket_id=7, status="sent", sent_ref="104")  # another channel
    assert [r.id for r in box.outbox.staff_cards(7, "staff")] == [newer.id, older.id]


def test_claimable_rows_are_urgent_first_then_oldest_within_the_limit(box: Box) -> None:
    plain = box.row("chat-1")
    urgent = box.row("chat-2", urgent=True)
    box.row("chat-3", due_at=LATER)
    box.row("chat-4", status="sent", sent_at=NOW)
    box.row("chat-5", status="failed")
    other = box.row("chat-6")
    box.row("chat-7", channel="wechat")
    assert box.claimable() == [urgent.id, plain.id, other.id]
    assert [r.id for r in box.outbox.claimable(["telegram"], NOW, 2)] == [urgent.id, plain.id]


def test_postponed_rows_are_not_due_before_their_time(box: Box) -> None:
    row = box.row()
    sent = box.row("chat-2", status="sent", sent_at=NOW)
    assert box.outbox.postpone([row.id, sent.id], LATER) == 1
    assert box.outbox.postpone([row.id], NOW) == 0  # never earlier
    assert box.outbox.postpone([row.id], LATER) == 0  # due then already
    box.settle()
    assert row.due_at == LATER
    assert box.claimable(NOW) == []
    assert box.claimable(LATER) == [row.id]


# -- claims ---------------------------------------------------------------------------------------
def test_a_row_is_claimed_once_for_one_send(box: Box) -> None:
    row = box.row()
    assert box.outbox.claim(row.id, 0, "me", NOW, SOON)
    assert not box.outbox.claim(row.id, 0, "you", NOW, SOON)  # taken
    assert not box.outbox.claim(row.id, 1, "you", NOW, SOON)  # and its lease runs
    box.settle()
    assert (row.status, row.attempts, row.claimed_by, row.claimed_until) == ("sending", 1, "me", SOON)


def test_a_claim_needs_the_row_as_planned_and_due(box: Box) -> None:
    row = box.row(attempts=2)
    later = box.row("chat-2", due_at=LATER)
    assert not box.outbox.claim(row.id, 1, "me", NOW, SOON)  # someone sent it meanwhile
    assert not box.outbox.claim(later.id, 0, "me", NOW, SOON)
    assert not box.outbox.claim(row.id + 1000, 0, "me", NOW, SOON)
    assert box.outbox.claim(later.id, 0, "me", LATER, LATER + timedelta(seconds=45))


def test_a_lapsed_claim_may_be_claimed_again(box: Box) -> None:
    row = box.sending(box.row())
    assert box.claimable(SOON) == []  # the lease runs to its last instant
    after = SOON + timedelta(seconds=1)
    assert box.claimable(after) == [row.id]
    assert box.outbox.claim(row.id, 1, "you", after, after + timedelta(seconds=45))
    box.settle()
    assert (row.attempts, row.claimed_by) == (2, "you")


def test_a_row_being_sent_holds_back_its_chats_later_rows_only(box: Box) -> None:
    first = box.sending(box.row("chat-1"))
    second = box.row("chat-1")
    urgent = box.row("chat-1", urgent=True)
    other_chat = box.row("chat-2")
    same_id_elsewhere = box.row("chat-1", channel="wechat")
    assert box.claimable(NOW, ("telegram", "wechat")) == [other_chat.id, same_id_elsewhere.id]
    assert not box.outbox.claim(second.id, 0, "you", NOW, SOON)
    assert not box.outbox.claim(urgent.id, 0, "you", NOW, SOON)  # even urgent rows keep the chat's order
    assert box.outbox.release_claims({"me"}, NOW) == 1
    box.settle()
    # released, the first row is due again and, as a retry, holds back the chat's rows but urgent ones
    assert box.claimable() == [urgent.id, first.id, other_chat.id]
    assert (first.status, first.attempts) == ("pending", 1)


def test_a_row_waiting_for_a_retry_holds_back_all_but_urgent_rows_of_its_chat(box: Box) -> None:
    retry = box.row("chat-1", attempts=1, due_at=LATER)
    plain = box.row("chat-1")
    urgent = box.row("chat-1", urgent=True)
    fresh_first = box.row("chat-2")
    fresh_second = box.row("chat-2")  # an older row never tried does not hold it back
    before_a_retry = box.row("chat-3")
    urgent_retry = box.row("chat-3", attempts=1, due_at=LATER, urgent=True)  # newer: never in the way
    assert box.claimable() == [urgent.id, fresh_first.id, fresh_second.id, before_a_retry.id]
    wanted_later = [urgent.id, urgent_retry.id, retry.id, fresh_first.id, fresh_second.id, before_a_retry.id]
    assert box.claimable(LATER) == wanted_later  # the plain row still waits behind the retry
    assert plain.id not in box.claimable(LATER + timedelta(hours=1))


def test_staff_rows_keep_no_chat_order(box: Box) -> None:
    first = box.sending(box.row("staff", channel="staff"))
    second = box.row("staff", channel="staff")
    robot = box.row("staff", channel="wecom", attempts=1)
    after_robot = box.row("staff", channel="wecom")
    assert box.claimable(NOW, ("staff", "wecom")) == [second.id, robot.id, after_robot.id]
    assert first.id not in box.claimable(NOW, ("staff",))


def test_claim_owners_are_those_whose_lease_runs(box: Box) -> None:
    box.sending(box.row("chat-1"), "me")
    box.sending(box.row("chat-2"), "you", until=NOW)
    box.row("chat-3", status="sent", claimed_by="old", sent_at=NOW)
    assert box.outbox.claim_owners(NOW) == {"me", "you"}
    assert box.outbox.claim_owners(NOW + timedelta(seconds=1)) == {"me"}
    assert box.outbox.claim_owners(SOON + timedelta(seconds=1)) == set()


def test_released_claims_are_pending_and_due_at_once(box: Box) -> None:
    mine = box.sending(box.row("chat-1", last_error="timeout"), "me")
    quiet = box.sending(box.row("chat-2"), "me")
    yours = box.sending(box.row("chat-3"), "you")
    sent = box.row("chat-4", status="sent", claimed_by="me", sent_at=NOW)
    assert box.outbox.release_claims({"me"}, LATER) == 2
    assert box.outbox.release_claims({"nobody"}, LATER) == 0
    box.settle()
    assert (mine.status, mine.attempts, mine.claimed_by, mine.claimed_until) == ("pending", 1, None, None)
    assert (mine.due_at, mine.last_error) == (LATER, "timeout")  # no reason: the last error stays
    assert quiet.status == "pending" and (yours.status, yours.claimed_by) == ("sending", "you")
    assert sent.status == "sent"
    assert box.outbox.release_claims({"you"}, LATER, "released") == 1
    box.settle()
    assert (yours.status, yours.last_error) == ("pending", "released")


# -- counts ---------------------------------------------------------------------------------------
def test_a_quota_counts_rows_sent_since_and_those_being_sent(box: Box) -> None:
    box.row("chat-1", status="sent", sent_at=NOW)
    box.row("chat-2", status="sent", sent_at=NOW - timedelta(days=1))
    box.sending(box.row("chat-3"))
    box.row("chat-4")
    box.row("chat-5", status="failed")
    box.row("chat-6", channel="wechat", status="sent", sent_at=NOW)
    assert box.outbox.counted_since("telegram", NOW) == 2
    assert box.outbox.counted_since("telegram", NOW - timedelta(days=2)) == 3
    assert box.outbox.counted_since("wechat", LATER) == 0


def test_the_backlog_is_what_is_pending_or_being_sent(box: Box) -> None:
    assert box.outbox.backlog() == 0
    box.row("chat-1", due_at=LATER)
    box.sending(box.row("chat-2"))
    for status in ("sent", "failed", "superseded"):
        box.row(status, status=status)
    assert box.outbox.backlog() == 2
