"""The tickets repository's contract, run on both implementations: ``SqlTickets`` on SQLite and
``MemoryTickets``. A difference between them is a bug in the memory one (or a contract to write down).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from data.clock import SHANGHAI
from data.db import make_engine, migrate
from data.models import Building, ChannelAccount, Compound, Resident, Ticket, Unit
from data.repositories.memory import MemoryTickets
from data.repositories.tickets import SqlTickets, TicketsRepository

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)


@dataclass
class World:
    """One compound, two units; the reporter and a housemate live in the first, a stranger elsewhere."""

    tickets: TicketsRepository
    compound: Compound
    home: Unit
    elsewhere: Unit
    reporter: ChannelAccount
    housemate: ChannelAccount
    stranger: ChannelAccount

    def ticket(self, at: datetime, **fields: Any) -> Ticket:
        """A ticket stored at ``at``: by default an open repair of the reporter's home."""
        kind = fields.pop("kind", "repair")
        values: dict[str, Any] = {
            "compound_id": self.compound.id,
            "unit_id": self.home.id,
            "account_id": self.reporter.id,
            "status": "received",
            "category": "water",
            "area": "in_home",
            "location": "",
            "created_at": at,
            "updated_at": at,
        }
        values.update(fields)
        return self.tickets.add(Ticket(number=self.tickets.next_number(kind, at), kind=kind, **values))


def _people() -> list[Any]:
    compound = Compound(id=1, code="t", name="测试小区", duty_phone="1", office_phone="2", settings={})
    building = Building(id=1, compound_id=1, number=3, name="3栋", compound=compound)
    home = Unit(id=1, building_id=1, unit_no=1, room="101", building=building)
    elsewhere = Unit(id=2, building_id=1, unit_no=2, room="202", building=building)
    owner = Resident(id=1, unit_id=1, name="王", unit=home)
    family = Resident(id=2, unit_id=1, name="李", unit=home)
    other = Resident(id=3, unit_id=2, name="赵", unit=elsewhere)
    accounts = [
        ChannelAccount(id=id_, channel="console", external_id=f"a{id_}", resident_id=who.id, resident=who)
        for id_, who in ((1, owner), (2, family), (3, other))
    ]
    return [compound, building, home, elsewhere, owner, family, other, *accounts]


def _world(tickets: TicketsRepository, people: list[Any]) -> World:
    compound, _, home, elsewhere, *_, reporter, housemate, stranger = people
    return World(tickets, compound, home, elsewhere, reporter, housemate, stranger)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("tickets") / "propbot.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sql", "memory"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    people = _people()
    if request.param == "memory":
        accounts = {a.id: a for a in people if isinstance(a, ChannelAccount)}
        yield _world(MemoryTickets(accounts), people)
        return
    engine: Engine = request.getfixturevalue("engine")
    with Session(engine) as session:
        session.add_all(people)
        session.flush()
        yield _world(SqlTickets(session), people)
        session.rollback()  # the next test starts from the empty schema again


def numbers(tickets: list[Ticket]) -> list[str]:
    return [t.number for t in tickets]


def test_numbers_count_per_kind_and_local_day(world: World) -> None:
    repo = world.tickets
    assert repo.next_number("repair", NOW) == "BX-20261123-0001"
    assert repo.next_number("repair", NOW) == "BX-20261123-0002"
    assert repo.next_number("complaint", NOW) == "TS-20261123-0001"
    assert repo.next_number("other", NOW) == "GD-20261123-0001"
    assert repo.next_number("repair", NOW + timedelta(days=1)) == "BX-20261124-0001"
    late_evening_utc = datetime(2026, 11, 23, 16, 30, tzinfo=UTC)  # 00:30 on the 24th in Shanghai
    assert repo.next_number("repair", late_evening_utc) == "BX-20261124-0002"


def test_a_ticket_added_is_found_by_its_number_in_any_case(world: World) -> None:
    ticket = world.ticket(NOW)
    assert ticket.id is not None
    assert world.tickets.by_number(ticket.number.lower()) is ticket
    assert world.tickets.by_number("BX-20991231-0001") is None


def test_events_join_the_history_and_touch_the_ticket(world: World) -> None:
    ticket = world.ticket(NOW)
    later = NOW + timedelta(hours=1)
    event = world.tickets.add_event(ticket, later, "staff:1", "dispatched", "王师傅", {"staff_id": 1})
    assert ticket.events == [event]
    assert (event.kind, event.note, event.data) == ("dispatched", "王师傅", {"staff_id": 1})
    assert ticket.updated_at == later
    world.tickets.append_event(ticket, later + timedelta(hours=1), "system", "sla_warn", "快超时", {})
    assert ticket.updated_at == later + timedelta(hours=1)


def test_open_tickets_of_a_unit_newest_first_narrowed_by_kind_category_and_age(world: World) -> None:
    old = world.ticket(NOW - timedelta(days=10))
    new = world.ticket(NOW - timedelta(hours=1), category="power")
    complaint = world.ticket(NOW, kind="complaint", category="noise")
    world.ticket(NOW, status="done")
    world.ticket(NOW, unit_id=world.elsewhere.id)
    repo = world.tickets
    assert numbers(repo.open_of_unit(world.home.id)) == numbers([complaint, new, old])
    assert numbers(repo.open_of_unit(world.home.id, kind="repair")) == numbers([new, old])
    assert numbers(repo.open_of_unit(world.home.id, kind="repair", category="water")) == numbers([old])
    lately = NOW - timedelta(days=1)
    assert numbers(repo.open_of_unit(world.home.id, since=lately)) == numbers([complaint, new])


def test_recent_open_tickets_of_an_account_at_most_ten(world: World) -> None:
    made = [world.ticket(NOW - timedelta(minutes=i), kind="emergency") for i in range(12)]
    world.ticket(NOW, kind="emergency", account_id=world.housemate.id)
    world.ticket(NOW, kind="emergency", status="closed")
    world.ticket(NOW - timedelta(days=2), kind="emergency")
    world.ticket(NOW, kind="repair")
    found = world.tickets.recent_open_of_account(world.reporter.id, "emergency", NOW - timedelta(days=1))
    assert numbers(found) == numbers(made[:10])


def test_an_open_common_repair_at_the_same_place_is_found_for_merging(world: World) -> None:
    common = {"area": "common", "location": "3栋电梯", "unit_id": None}
    world.ticket(NOW - timedelta(hours=3), **common)
    newest = world.ticket(NOW - timedelta(hours=1), **common)
    world.ticket(NOW, **{**common, "location": "5栋电梯"})
    world.ticket(NOW, **{**common, "status": "done"})
    since = NOW - timedelta(days=1)
    assert world.tickets.open_common_repair(world.compound.id, "water", "3栋电梯", since) is newest
    assert world.tickets.open_common_repair(world.compound.id, "power", "3栋电梯", since) is None
    assert world.tickets.open_common_repair(world.compound.id, "water", "3栋电梯", NOW) is None


def test_recent_tickets_of_a_unit_are_the_open_ones_and_those_changed_lately(world: World) -> None:
    open_old = world.ticket(NOW - timedelta(days=60))
    closed_lately = world.ticket(NOW - timedelta(days=5), status="closed")
    world.ticket(NOW - timedelta(days=60), status="closed")
    world.ticket(NOW, unit_id=world.elsewhere.id)
    found = world.tickets.recent_of_unit(world.home.id, NOW - timedelta(days=30))
    assert numbers(found) == numbers([closed_lately, open_old])


def test_the_reporter_hears_about_a_ticket_else_everyone_of_the_unit(world: World) -> None:
    repo = world.tickets
    reported = world.ticket(NOW)
    assert repo.accounts_to_tell(reported) == [world.reporter]
    by_phone = world.ticket(NOW, account_id=None)
    assert repo.accounts_to_tell(by_phone) == [world.reporter, world.housemate]
    common = world.ticket(NOW, account_id=None, unit_id=None)
    assert repo.accounts_to_tell(common) == []


def test_tickets_of_an_account_or_its_unit_latest_done_first(world: World) -> None:
    first = world.ticket(NOW - timedelta(days=3), status="done", done_at=NOW - timedelta(days=2))
    second = world.ticket(NOW - timedelta(days=3), status="done", done_at=NOW - timedelta(days=1))
    housemates = world.ticket(NOW - timedelta(days=1), account_id=world.housemate.id)
    world.ticket(NOW, account_id=world.stranger.id, unit_id=world.elsewhere.id)
    world.ticket(NOW - timedelta(days=40), status="closed")
    since = NOW - timedelta(days=7)
    found = world.tickets.of_account_or_unit(world.reporter.id, world.home.id, since)
    assert numbers(found) == numbers([second, first, housemates])
    unbound = world.tickets.of_account_or_unit(world.reporter.id, None, since)
    assert numbers(unbound) == numbers([second, first])


def test_the_list_is_newest_first_by_status_kind_and_limit(world: World) -> None:
    repair = world.ticket(NOW - timedelta(hours=2))
    done = world.ticket(NOW - timedelta(hours=1), status="done")
    complaint = world.ticket(NOW, kind="complaint")
    repo = world.tickets
    assert numbers(repo.listed()) == numbers([complaint, done, repair])
    assert numbers(repo.listed(status="open")) == numbers([complaint, repair])
    assert numbers(repo.listed(status="done")) == numbers([done])
    assert numbers(repo.listed(kind="repair")) == numbers([done, repair])
    assert numbers(repo.listed(limit=1)) == numbers([complaint])
