"""The outbox and accounts repositories and the read-only views on both databases: what the
dispatcher, the desk and the token storage rely on, asked through ``Store`` as they ask it."""

from __future__ import annotations

from datetime import timedelta

from bot.app import App
from data.db import reading, unit_of_work
from data.repositories.outbox import outbox_row
from data.views import TicketQuery
from tests.conftest import NOW

LATER = NOW + timedelta(minutes=1)


def test_a_dedupe_key_names_one_row_only(app: App) -> None:
    with unit_of_work(app.sessions) as store:
        assert store.outbox.add_once(outbox_row("telegram", "1", "reply", "a", NOW, dedupe_key="k:1"))
        assert not store.outbox.add_once(outbox_row("telegram", "1", "reply", "b", NOW, dedupe_key="k:1"))
        assert store.outbox.taken(["k:1", "k:2"]) == {"k:1"}


def test_a_claim_holds_back_the_chats_later_rows_until_released(app: App) -> None:
    with unit_of_work(app.sessions) as store:
        first = outbox_row("telegram", "chat-1", "reply", "一", NOW, dedupe_key="c:1")
        second = outbox_row("telegram", "chat-1", "reply", "二", NOW, dedupe_key="c:2")
        other = outbox_row("telegram", "chat-2", "reply", "三", NOW, dedupe_key="c:3")
        for row in (first, second, other):
            store.outbox.add_once(row)
        store.flush()
        ids = first.id, second.id, other.id
    with unit_of_work(app.sessions) as store:
        assert [r.id for r in store.outbox.claimable(["telegram"], NOW, 10)] == list(ids)
        assert store.outbox.claim(ids[0], 0, "me", NOW, NOW + timedelta(seconds=45))
        assert not store.outbox.claim(ids[0], 0, "you", NOW, NOW + timedelta(seconds=45))  # taken
    with unit_of_work(app.sessions) as store:
        assert [r.id for r in store.outbox.claimable(["telegram"], NOW, 10)] == [ids[2]]  # chat-1 waits
        assert store.outbox.claim_owners(NOW) == {"me"}
        assert store.outbox.counted_since("telegram", NOW) == 1  # being sent counts against a quota
        assert store.outbox.release_claims({"me"}, NOW, "released") == 1
    with reading(app.sessions) as store:
        released = store.outbox.get(ids[0])
        assert released is not None and (released.status, released.attempts) == ("pending", 1)
        assert released.last_error == "released"
        assert store.outbox.claim_owners(NOW) == set()


def test_postponed_rows_are_not_due_before_their_time(app: App) -> None:
    with unit_of_work(app.sessions) as store:
        row = outbox_row("telegram", "chat-9", "reply", "晚点", NOW, dedupe_key="p:1")
        store.outbox.add_once(row)
        store.flush()
        assert store.outbox.postpone([row.id], LATER) == 1
        assert store.outbox.postpone([row.id], NOW) == 0  # never earlier
        assert row.id not in [r.id for r in store.outbox.claimable(["telegram"], NOW, 100)]
        assert row.id in [r.id for r in store.outbox.claimable(["telegram"], LATER, 100)]
        assert store.outbox.backlog() >= 1


def test_one_owner_at_a_time_holds_a_token_lease(app: App) -> None:
    with unit_of_work(app.sessions) as store:
        assert store.accounts.take_token_lease("wx_token", "a", NOW, NOW + timedelta(seconds=30))
        assert not store.accounts.take_token_lease("wx_token", "b", NOW, NOW + timedelta(seconds=30))
        assert store.accounts.take_token_lease("wx_token", "a", NOW, NOW + timedelta(seconds=30))  # again
    with unit_of_work(app.sessions) as store:  # run out: anyone may take it
        assert store.accounts.take_token_lease("wx_token", "b", LATER, LATER + timedelta(seconds=30))
        store.accounts.release_token_lease("wx_token", "b")
    with unit_of_work(app.sessions) as store:
        assert store.accounts.take_token_lease("wx_token", "a", LATER, LATER + timedelta(seconds=30))
        assert not store.accounts.add_token("wx_token", "x")  # the row exists
        assert store.accounts.add_token("desk_key", "secret")
    with reading(app.sessions) as store:
        found = store.accounts.token("desk_key")
        assert found is not None and found.value == "secret"


def test_the_ticket_view_filters_by_status_and_pages(app: App) -> None:
    with reading(app.sessions) as store:
        everything = store.views.tickets(TicketQuery(status=None, limit=500))
        open_ones = store.views.tickets(TicketQuery(status="open", limit=500))
        assert {t.id for t in open_ones} <= {t.id for t in everything}
        assert all(t.status in ("received", "dispatched", "quoted", "in_progress") for t in open_ones)
        second_page = store.views.tickets(TicketQuery(status=None, offset=1, limit=1))
        assert [t.id for t in second_page] == [t.id for t in everything[1:2]]
        assert store.views.building_numbers() == sorted(set(store.views.building_numbers()))
        assert [c.id for c in store.views.compounds()] == sorted(c.id for c in store.views.compounds())
