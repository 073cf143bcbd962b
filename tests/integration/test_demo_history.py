"""``propbot demo``'s six months of history: realistic, deterministic, never after the demo's today,
and leaving the flats the console demos and their tests talk as untouched."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from data.clock import SHANGHAI
from data.db import make_engine, make_session_factory, migrate, transaction
from data.demo import NAMED_RESIDENTS, load_demo
from data.kinds import OPEN_STATUSES
from data.models import Bill, OutboxMessage, Ticket, TicketEvent, Unit
from data.scheduling import Callback
from data.store import Store
from tests.conftest import BACKENDS, NOW, pg_database, pg_url


@pytest.fixture(scope="module", params=BACKENDS)
def history_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One demo with history per backend for the whole module (it takes a few seconds to load)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('history') / 'demo.db'}"
        return
    with pg_database() as name:
        yield pg_url(name)


@pytest.fixture(scope="module")
def history(history_url: str) -> Iterator[Session]:
    engine = make_engine(history_url)
    migrate(engine)
    sessions = make_session_factory(engine)
    with transaction(sessions) as session:
        load_demo(Store(session), NOW, history=True)
    with sessions() as session:
        yield session
    engine.dispose()


def _named_units(session: Session) -> set[int]:
    units = session.scalars(select(Unit)).unique().all()
    named = {(b, u, r) for b, u, r, *_ in NAMED_RESIDENTS}
    return {unit.id for unit in units if (unit.building.number, unit.unit_no, unit.room) in named}


def test_six_months_of_every_kind_and_outcome(history: Session) -> None:
    tickets = history.scalars(select(Ticket)).unique().all()
    kinds = Counter(t.kind for t in tickets)
    statuses = Counter(t.status for t in tickets)
    assert set(kinds) == {"repair", "complaint", "booking", "emergency"} and len(tickets) > 400
    assert {"closed", "done", "cancelled", "dispatched"} <= set(statuses)
    events = Counter(history.scalars(select(TicketEvent.kind)))
    assert events["reopened"] > 5 and events["arrived"] > 100 and events["callback_task"] > 5
    late = [
        t
        for t in tickets
        if t.arrive_by and any(e.kind == "arrived" and e.at > t.arrive_by for e in t.events)
    ]
    assert len(late) > 10
    callbacks = Counter((c.via, c.score is not None) for c in history.scalars(select(Callback)))
    assert callbacks[("chat", True)] > 100 and callbacks[("phone", True)] > 20 and callbacks[("", False)] > 5
    first = min(t.created_at for t in tickets)
    assert NOW - first > timedelta(days=175)


def test_bills_paid_on_time_late_after_a_reminder_call_and_still_owed(history: Session) -> None:
    bills = history.scalars(select(Bill)).unique().all()
    late = [b for b in bills if b.paid_at and b.paid_at.astimezone(SHANGHAI).date() > b.due_date]
    on_time = [b for b in bills if b.paid_at and b.paid_at.astimezone(SHANGHAI).date() <= b.due_date]
    owed = [b for b in bills if b.paid_at is None]
    calls = history.scalars(select(OutboxMessage).where(OutboxMessage.kind == "arrears_call")).all()
    assert len(on_time) > 3 * len(late) > 0 and owed and len(calls) > 20
    assert all(c.status == "sent" and c.dedupe_key.startswith("arrears:") for c in calls)  # type: ignore[union-attr]


def test_nothing_is_dated_after_the_demos_today(history: Session) -> None:
    latest = [
        history.scalar(select(func.max(column)))
        for column in (
            Ticket.created_at,
            Ticket.updated_at,
            Ticket.done_at,
            Ticket.closed_at,
            TicketEvent.at,
            Callback.answered_at,
            Callback.task_at,
            Bill.paid_at,
            OutboxMessage.created_at,
        )
    ]
    assert all(at is not None and at <= NOW for at in latest), latest
    today = NOW.replace(hour=0, minute=0)
    assert history.scalar(select(func.count()).where(Ticket.created_at >= today)) == 0


def test_the_named_flats_and_common_areas_have_nothing_open(history: Session) -> None:
    named = _named_units(history)
    assert history.scalar(select(func.count()).where(Ticket.unit_id.in_(named))) == 0
    open_common = select(func.count()).where(Ticket.status.in_(OPEN_STATUSES), Ticket.area == "common")
    assert history.scalar(open_common) == 0
    li_ming = Store(history).find_unit(3, 2, "1502")
    assert li_ming is not None
    owed = sum(b.outstanding for b in Store(history).units.bills(li_ming.id))
    assert str(owed) == "2016.90"  # what the fee-query tests see, history or not


def test_the_same_today_gives_the_same_history(history: Session, tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'again.db'}")
    migrate(engine)
    with transaction(make_session_factory(engine)) as session:
        load_demo(Store(session), NOW, history=True)
        again = [
            (t.number, t.status, t.created_at)
            for t in session.scalars(select(Ticket).order_by(Ticket.number))
        ]
    engine.dispose()
    first = [
        (t.number, t.status, t.created_at) for t in history.scalars(select(Ticket).order_by(Ticket.number))
    ]
    assert first == again


def test_a_today_before_the_18th_pays_no_bill_in_the_future(empty_db_url: str) -> None:
    early = datetime(2026, 11, 5, 9, 0, tzinfo=SHANGHAI)
    engine = make_engine(empty_db_url)
    migrate(engine)
    with transaction(make_session_factory(engine)) as session:
        load_demo(Store(session), early, history=True)
        assert session.scalar(select(func.max(Bill.paid_at))) <= early  # type: ignore[operator]
    engine.dispose()
