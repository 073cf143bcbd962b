"""The units repository's contract, run on both implementations: ``SqlUnits`` on SQLite and
``MemoryUnits``. A difference between them is a bug in the memory one (or a contract to write down).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from data.db import make_engine, migrate
from data.models import Bill, Building, ChannelAccount, Compound, Resident, Unit
from data.repositories.memory_units import MemoryUnits
from data.repositories.units import SqlUnits, UnitsRepository

TODAY = date(2026, 11, 23)


@dataclass
class World:
    """Two compounds: ``here`` with units 1 and 2 in building 3 and unit 3 in building 5,
    ``there`` with unit 4; bills are added by each test."""

    units: UnitsRepository
    add: Any  # stores a bill (the session's or the memory repository's)
    next_bill: int = 1

    def bill(self, unit_id: int, period: str, item: str = "property", **fields: Any) -> Bill:
        values: dict[str, Any] = {
            "amount": Decimal("100.00"),
            "paid_amount": Decimal("0"),
            "due_date": date.fromisoformat(f"{period}-15"),
        }
        values.update(fields)
        bill = Bill(id=self.next_bill, unit_id=unit_id, period=period, item=item, **values)
        self.next_bill += 1
        self.add(bill)
        return bill


def _people() -> list[Any]:
    here = Compound(id=1, code="here", name="这里", duty_phone="1", office_phone="2", settings={})
    there = Compound(id=2, code="there", name="那里", duty_phone="1", office_phone="2", settings={})
    three = Building(id=1, compound_id=1, number=3, name="3栋", compound=here)
    five = Building(id=2, compound_id=1, number=5, name="5栋", compound=here)
    far = Building(id=3, compound_id=2, number=1, name="1栋", compound=there)
    units = [
        Unit(id=1, building_id=1, unit_no=1, room="101", building=three),
        Unit(id=2, building_id=1, unit_no=1, room="102", building=three),
        Unit(id=3, building_id=2, unit_no=2, room="201", building=five),
        Unit(id=4, building_id=3, unit_no=None, room="301", building=far),
    ]
    residents = [Resident(id=i, unit_id=u.id, name=f"住户{i}", unit=u) for i, u in enumerate(units, 1)]
    housemate = Resident(id=5, unit_id=1, name="室友", unit=units[0])
    accounts = [  # ids out of resident order: the lists go by account
        ChannelAccount(id=10 - r.id, channel="console", external_id=f"a{r.id}", resident_id=r.id, resident=r)
        for r in [*residents, housemate]
    ]
    unbound = ChannelAccount(id=20, channel="console", external_id="nobody")
    return [here, there, three, five, far, *units, *residents, housemate, *accounts, unbound]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("units") / "propbot.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sql", "memory"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    people = _people()
    if request.param == "memory":
        memory = MemoryUnits({a.id: a for a in people if isinstance(a, ChannelAccount)})
        memory.add(*(row for row in people if isinstance(row, Compound | Building | Unit)))
        yield World(memory, memory.add)
        return
    engine: Engine = request.getfixturevalue("engine")
    with Session(engine) as session:
        session.add_all(people)
        session.flush()

        def add(bill: Bill) -> None:
            session.add(bill)
            session.flush()

        yield World(SqlUnits(session), add)
        session.rollback()  # the next test starts from the empty schema again


def ids(bills: list[Bill]) -> list[int]:
    return [b.id for b in bills]


def test_compounds_oldest_first_and_their_building_numbers(world: World) -> None:
    assert [c.code for c in world.units.compounds()] == ["here", "there"]
    assert world.units.building_numbers(1) == {3, 5}
    assert world.units.building_numbers(2) == {1}
    assert world.units.building_numbers(99) == set()


def test_a_units_bills_by_period_then_item(world: World) -> None:
    later = world.bill(1, "2026-11", "water")
    earlier = world.bill(1, "2026-10", "water")
    fee = world.bill(1, "2026-11", "property", paid_amount=Decimal("100.00"))
    world.bill(2, "2026-09")
    assert ids(world.units.bills(1)) == ids([earlier, fee, later])
    assert world.units.bills(4) == []


def test_unpaid_bills_by_unit_owing_a_positive_amount(world: World) -> None:
    owed = world.bill(1, "2026-10")
    partly = world.bill(1, "2026-11", paid_amount=Decimal("40.00"))
    world.bill(1, "2026-09", paid_amount=Decimal("100.00"))  # paid
    world.bill(1, "2026-08", amount=Decimal("0"))  # nothing to pay
    world.bill(2, "2026-07", amount=Decimal("-5.00"))  # a refund, not owed
    other = world.bill(3, "2026-10", "water")
    far = world.bill(4, "2026-10")
    found = world.units.unpaid_bills()
    assert {unit: ids(bills) for unit, bills in found.items()} == {
        1: ids([owed, partly]),
        3: ids([other]),
        4: ids([far]),
    }
    assert list(found) == [1, 3, 4]


def test_unpaid_bills_narrowed_by_compound_period_units_and_due_day(world: World) -> None:
    october = world.bill(1, "2026-10")
    november = world.bill(1, "2026-11")
    elsewhere = world.bill(3, "2026-10")
    world.bill(4, "2026-10")
    units = world.units

    def found(**narrowed: Any) -> dict[int, list[int]]:
        return {unit: ids(bills) for unit, bills in units.unpaid_bills(**narrowed).items()}

    assert found(compound_id=1) == {1: ids([october, november]), 3: ids([elsewhere])}
    assert found(compound_id=1, period="2026-10") == {1: ids([october]), 3: ids([elsewhere])}
    assert found(compound_id=1, units=[3, 4]) == {3: ids([elsewhere])}
    assert found(units=iter([4, 1])) == {1: ids([october, november]), 4: [4]}
    assert found(compound_id=1, due_before=date(2026, 11, 15)) == {1: ids([october]), 3: ids([elsewhere])}
    assert found(units=[]) == {}


def test_overdue_units_of_a_compound_since_their_oldest_due_day(world: World) -> None:
    world.bill(1, "2026-10", due_date=date(2026, 10, 15))
    world.bill(1, "2026-09", due_date=date(2026, 9, 15))
    world.bill(1, "2026-08", due_date=date(2026, 8, 15), paid_amount=Decimal("100.00"))
    world.bill(2, "2026-11", due_date=TODAY)  # due today: not overdue yet
    world.bill(3, "2026-11", due_date=date(2026, 11, 22))
    world.bill(4, "2026-01", due_date=date(2026, 1, 15))  # another compound
    assert world.units.overdue_since(1, TODAY) == {1: date(2026, 9, 15), 3: date(2026, 11, 22)}


def test_bad_bills_have_a_negative_amount(world: World) -> None:
    negative = world.bill(2, "2026-10", amount=Decimal("-5.00"))
    world.bill(2, "2026-11")
    world.bill(2, "2026-09", amount=Decimal("0"))
    world.bill(4, "2026-10", amount=Decimal("-1.00"))
    assert ids(world.units.bad_bills(1)) == ids([negative])
    assert world.units.bad_bills(2) != []


def test_the_accounts_of_each_unit_by_account(world: World) -> None:
    found = world.units.accounts_by_unit([1, 3, 99])
    assert {unit: [a.id for a in accounts] for unit, accounts in found.items()} == {1: [5, 9], 3: [7]}
    assert world.units.accounts_by_unit([]) == {}
