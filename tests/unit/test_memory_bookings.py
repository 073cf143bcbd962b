"""The bookings repository's contract, run on ``SqlBookings`` (SQLite) and ``MemoryBookings``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from data.clock import SHANGHAI
from data.db import make_engine, migrate
from data.models import Building, Compound, Ticket, Unit
from data.repositories.bookings import BookingsRepository, SqlBookings
from data.repositories.memory import MemoryTickets
from data.repositories.memory_bookings import MemoryBookings
from data.repositories.tickets import SqlTickets, TicketsRepository

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
NINE = NOW.replace(hour=9)


@dataclass
class World:
    bookings: BookingsRepository
    tickets: TicketsRepository

    def booking(self, start: datetime | None, **fields: Any) -> Ticket:
        """A ticket stored now: by default an open moving-van booking starting at ``start``."""
        kind = fields.pop("kind", "booking")
        values: dict[str, Any] = {
            "compound_id": 1,
            "unit_id": 1,
            "status": "received",
            "category": "moving",
            "area": "in_home",
            "location": "",
            "preferred_start": start,
            "created_at": NOW,
            "updated_at": NOW,
        }
        values.update(fields)
        return self.tickets.add(Ticket(number=self.tickets.next_number(kind, NOW), kind=kind, **values))


def _places() -> list[Any]:
    compound = Compound(id=1, code="t", name="测试小区", duty_phone="1", office_phone="2", settings={})
    building = Building(id=1, compound_id=1, number=3, name="3栋", compound=compound)
    return [compound, building, Unit(id=1, building_id=1, unit_no=1, room="101", building=building)]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("bookings") / "propbot.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sql", "memory"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    if request.param == "memory":
        tickets = MemoryTickets()
        yield World(MemoryBookings(tickets.rows), tickets)
        return
    engine: Engine = request.getfixturevalue("engine")
    with Session(engine) as session:
        session.add_all(_places())
        session.flush()
        yield World(SqlBookings(session), SqlTickets(session))
        session.rollback()  # the next test starts from the empty schema again


def test_the_starts_taken_are_the_open_bookings_of_the_service_in_the_range(world: World) -> None:
    world.booking(NINE)
    world.booking(NINE)  # two vans at nine: both count
    world.booking(NINE + timedelta(hours=2))
    world.booking(NINE, category="hall")
    world.booking(NINE, status="cancelled")
    world.booking(NINE, status="closed")
    world.booking(NINE, kind="repair")
    world.booking(None)
    found = world.bookings.starts("moving", NINE, NINE + timedelta(days=1))
    assert sorted(found) == [NINE, NINE, NINE + timedelta(hours=2)]


def test_the_range_includes_its_start_and_excludes_its_end(world: World) -> None:
    world.booking(NINE)
    world.booking(NINE + timedelta(hours=1))
    assert world.bookings.starts("moving", NINE, NINE + timedelta(hours=1)) == [NINE]
    assert world.bookings.starts("moving", NINE + timedelta(minutes=1), NINE + timedelta(hours=1)) == []
    assert world.bookings.starts("hall", NINE, NINE + timedelta(days=1)) == []
