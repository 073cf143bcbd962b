"""The accounts repository's contract, run on both implementations: ``SqlAccounts`` on SQLite and
``MemoryAccounts``. A difference between them is a bug in the memory one (or a contract to write down).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from data.clock import SHANGHAI
from data.db import make_engine, migrate
from data.models import (
    Base,
    BindingCode,
    Building,
    ChannelAccount,
    Compound,
    DeskAccount,
    DeskSession,
    Resident,
    Staff,
    Unit,
)
from data.repositories.accounts import AccountRepository, SqlAccounts
from data.repositories.memory_accounts import MemoryAccounts
from data.repositories.memory_rows import DuplicateRow

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
LATER = NOW + timedelta(minutes=1)
REFUSED = (IntegrityError, DuplicateRow)  # what each says when a unique key is taken


@dataclass
class People:
    """One compound (and a second with staff of its own), two flats; the owner and family of the
    first flat are bound to chats, a stranger's chat is not bound."""

    owner: Resident
    family: Resident
    neighbour: Resident
    owners_chat: ChannelAccount
    stranger: ChannelAccount
    fixer: Staff
    desk: Staff
    retired: Staff
    login: DeskAccount
    rows: list[Base]


def _people() -> People:
    home_compound = Compound(id=1, code="t", name="测试小区", duty_phone="1", office_phone="2", settings={})
    other_compound = Compound(id=2, code="u", name="别的小区", duty_phone="3", office_phone="4", settings={})
    building = Building(id=1, compound_id=1, number=3, name="3栋", compound=home_compound)
    home = Unit(id=1, building_id=1, unit_no=1, room="101", building=building)
    elsewhere = Unit(id=2, building_id=1, unit_no=2, room="202", building=building)
    owner = Resident(id=1, unit_id=1, name="王", unit=home)
    family = Resident(id=2, unit_id=1, name="李", unit=home)
    neighbour = Resident(id=3, unit_id=2, name="赵", unit=elsewhere)
    owners_chat = ChannelAccount(
        id=1, channel="telegram", external_id="t1", resident_id=1, resident=owner, last_inbound_at=NOW
    )
    owners_phone = ChannelAccount(id=2, channel="wechat", external_id="o1", resident_id=1, resident=owner)
    familys = ChannelAccount(id=3, channel="telegram", external_id="t2", resident_id=2, resident=family)
    stranger = ChannelAccount(id=4, channel="telegram", external_id="t9", last_inbound_at=LATER)
    fixer = Staff(id=1, compound_id=1, name="张师傅", role="technician", telegram_user_id="tg-1", skills=[])
    desk = Staff(id=2, compound_id=1, name="小王", role="front_desk", skills=[])
    retired = Staff(id=3, compound_id=1, name="张师傅", role="technician", active=False, skills=[])
    elsewhere_staff = Staff(id=4, compound_id=2, name="小王", role="front_desk", skills=[])
    login = DeskAccount(
        id=1, login="xiaowang", staff_id=2, staff=desk, role="clerk", password_hash="h", created_at=NOW
    )
    rows: list[Base] = [
        home_compound, other_compound, building, home, elsewhere, owner, family, neighbour,
        owners_chat, owners_phone, familys, stranger, fixer, desk, retired, elsewhere_staff, login,
    ]  # fmt: skip
    return People(owner, family, neighbour, owners_chat, stranger, fixer, desk, retired, login, rows)


@dataclass
class World:
    accounts: AccountRepository
    people: People
    settle: Callable[[], None]  # write what is pending and read rows afresh (SQL); nothing (memory)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("accounts") / "propbot.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sql", "memory"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    people = _people()
    if request.param == "memory":
        memory = MemoryAccounts()
        memory.seed(people.rows)
        yield World(memory, people, lambda: None)
        return
    engine: Engine = request.getfixturevalue("engine")
    with Session(engine) as session:
        session.add_all(people.rows)
        session.flush()

        def settle() -> None:
            session.flush()
            session.expire_all()

        yield World(SqlAccounts(session), people, settle)
        session.rollback()  # the next test starts from the empty schema again


def code(text: str, resident: Resident, at: datetime) -> BindingCode:
    return BindingCode(code=text, resident_id=resident.id, created_at=at)


def desk_login(login: str, staff: Staff) -> DeskAccount:
    return DeskAccount(login=login, staff_id=staff.id, role="clerk", password_hash="h", created_at=NOW)


def desk_session(digest: str, account: DeskAccount, expires_at: datetime) -> DeskSession:
    return DeskSession(id=digest, account_id=account.id, csrf="c", created_at=NOW, expires_at=expires_at)


# -- chat accounts and residents ------------------------------------------------------------------
def test_a_chat_account_is_found_by_channel_and_id_with_its_resident(world: World) -> None:
    repo, people = world.accounts, world.people
    found = repo.chat_account("telegram", "t1")
    assert found is people.owners_chat and found.resident is people.owner
    assert repo.chat_account("wechat", "t1") is None
    assert repo.chat_account("telegram", "nobody") is None
    assert repo.last_inbound("telegram", "t1") == NOW
    assert repo.last_inbound("wechat", "o1") is None  # known, never wrote
    assert repo.last_inbound("telegram", "nobody") is None


def test_chat_facts_of_the_known_chats_among_those_asked(world: World) -> None:
    facts = world.accounts.chat_facts("telegram", {"t1", "t9", "nobody", "o1"})
    assert set(facts) == {"t1", "t9"}
    assert (facts["t1"].last_inbound_at, facts["t1"].compound_id) == (NOW, 1)
    assert (facts["t9"].last_inbound_at, facts["t9"].compound_id) == (LATER, None)  # not bound yet
    assert world.accounts.chat_facts("telegram", set()) == {}


def test_residents_and_how_many_chats_each_has_bound(world: World) -> None:
    repo, people = world.accounts, world.people
    assert repo.resident(people.owner.id) is people.owner
    assert repo.resident(99) is None
    assert [repo.bound_accounts(r.id) for r in (people.owner, people.family, people.neighbour)] == [2, 1, 0]


# -- staff ----------------------------------------------------------------------------------------
def test_staff_are_found_active_or_not_and_listed_active_in_the_order_added(world: World) -> None:
    repo, people = world.accounts, world.people
    assert repo.staff(people.retired.id) is people.retired
    assert repo.staff(99) is None
    assert list(repo.active_staff(1)) == [people.fixer, people.desk]
    assert repo.active_staff(3) == []
    assert repo.active_staff_named(1, "张师傅") is people.fixer  # not the retired namesake
    assert repo.active_staff_named(2, "张师傅") is None


def test_staff_added_get_an_id_and_are_active(world: World) -> None:
    added = world.accounts.add_staff(Staff(compound_id=1, name="刘阿姨", role="cleaner"))
    assert added.id is not None and added.active is True and added.skills == []
    assert world.accounts.staff(added.id) is added
    assert list(world.accounts.active_staff(1))[-1] is added
    with pytest.raises(REFUSED):  # one Telegram user is one staff member
        world.accounts.add_staff(Staff(compound_id=1, name="冒名", role="lead", telegram_user_id="tg-1"))


# -- binding codes --------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:New instance:sqlalchemy.exc.SAWarning")  # SQL: the refused twin
def test_binding_codes_are_found_by_their_exact_code(world: World) -> None:
    added = world.accounts.add_binding_code(code("AB12CD", world.people.owner, NOW))
    assert world.accounts.binding_code("AB12CD") is added
    assert world.accounts.binding_code("ab12cd") is None  # callers write codes in capitals
    assert world.accounts.binding_code("ZZZZZZ") is None
    with pytest.raises(REFUSED):
        world.accounts.add_binding_code(code("AB12CD", world.people.family, NOW))


def test_binding_codes_are_listed_newest_first_by_flat_with_their_residents(world: World) -> None:
    repo, people = world.accounts, world.people
    for text, who, at in (
        ("B2", people.owner, NOW),
        ("A1", people.family, NOW),
        ("C3", people.neighbour, LATER),
        ("D4", people.owner, NOW - timedelta(days=1)),
    ):
        repo.add_binding_code(code(text, who, at))
    world.settle()
    listed = repo.binding_codes()
    assert [c.code for c in listed] == ["C3", "A1", "B2", "D4"]  # same time: by code
    assert [c.resident.name for c in listed] == ["赵", "李", "王", "王"]
    assert [c.code for c in repo.binding_codes(unit_id=1)] == ["A1", "B2", "D4"]
    assert [c.code for c in repo.binding_codes(unit_id=1, limit=2)] == ["A1", "B2"]
    assert repo.binding_codes(unit_id=99) == []


# -- desk logins and sessions ---------------------------------------------------------------------
def test_a_desk_login_added_is_active_with_its_staff_member(world: World) -> None:
    repo, people = world.accounts, world.people
    added = repo.add_desk_login(desk_login("zhang", people.fixer))
    assert added.id is not None and added.active is True and added.failed_logins == 0
    assert added.staff is people.fixer
    assert repo.desk_login("zhang") is added
    assert repo.desk_login("nobody") is None
    assert list(repo.desk_logins()) == [people.login, added]
    with pytest.raises(REFUSED):
        repo.add_desk_login(desk_login("zhang", people.retired))


def test_a_desk_session_is_found_by_its_digest_with_its_login(world: World) -> None:
    repo, login = world.accounts, world.people.login
    repo.add_desk_session(desk_session("d1", login, LATER))
    world.settle()
    found = repo.desk_session("d1")
    assert found is not None and found.account.login == "xiaowang" and found.expires_at == LATER
    assert repo.desk_session("d2") is None
    repo.end_desk_session("d1")
    repo.end_desk_session("d1")  # once more: nothing to end
    assert repo.desk_session("d1") is None


def test_logging_out_everywhere_ends_only_that_logins_sessions(world: World) -> None:
    repo, people = world.accounts, world.people
    other = repo.add_desk_login(desk_login("zhang", people.fixer))
    for digest, login in (("d1", people.login), ("d2", people.login), ("d3", other)):
        repo.add_desk_session(desk_session(digest, login, LATER))
    repo.end_desk_sessions(people.login.id)
    world.settle()
    assert [repo.desk_session(d) is not None for d in ("d1", "d2", "d3")] == [False, False, True]


def test_expired_desk_sessions_are_dropped_at_their_expiry(world: World) -> None:
    repo, login = world.accounts, world.people.login
    for digest, expires in (("gone", NOW - timedelta(hours=1)), ("now", NOW), ("later", LATER)):
        repo.add_desk_session(desk_session(digest, login, expires))
    repo.drop_expired_desk_sessions(NOW)
    world.settle()
    assert [repo.desk_session(d) is not None for d in ("gone", "now", "later")] == [False, False, True]


# -- channel tokens -------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:New instance:sqlalchemy.exc.SAWarning")  # SQL: the refused twin
def test_a_token_row_is_made_empty_once_and_kept(world: World) -> None:
    repo = world.accounts
    assert repo.token("wx_token") is None
    row = repo.token_row("wx_token")
    assert (row.name, row.value, row.expires_at, row.lease_owner) == ("wx_token", None, None, None)
    row.value, row.expires_at = "abc", LATER  # as the token storage keeps a fresh token
    world.settle()
    again = repo.token_row("wx_token")
    assert (again.value, again.expires_at) == ("abc", LATER)
    assert not repo.add_token("wx_token", "x")  # the row exists
    assert repo.add_token("desk_key", "secret")
    world.settle()
    found = repo.token("desk_key")
    assert found is not None and found.value == "secret"


def test_one_owner_at_a_time_holds_a_token_lease(world: World) -> None:
    repo = world.accounts
    until = NOW + timedelta(seconds=30)
    assert repo.take_token_lease("wx_token", "a", NOW, until)  # the row is made for it
    assert not repo.take_token_lease("wx_token", "b", NOW, until)
    assert repo.take_token_lease("wx_token", "a", NOW, until)  # again, its own
    assert not repo.take_token_lease("wx_token", "b", until, until + timedelta(seconds=30))  # to its end
    after = until + timedelta(seconds=1)
    assert repo.take_token_lease("wx_token", "b", after, after + timedelta(seconds=30))  # run out: anyone
    world.settle()
    row = repo.token("wx_token")
    assert row is not None and (row.lease_owner, row.lease_until) == ("b", after + timedelta(seconds=30))


def test_only_the_owner_releases_a_token_lease(world: World) -> None:
    repo = world.accounts
    assert repo.take_token_lease("wx_token", "a", NOW, LATER)
    repo.release_token_lease("wx_token", "b")
    repo.release_token_lease("other_token", "a")  # no such row: nothing happens
    world.settle()
    assert not repo.take_token_lease("wx_token", "b", NOW, LATER)
    repo.release_token_lease("wx_token", "a")
    world.settle()
    row = repo.token("wx_token")
    assert row is not None and (row.lease_owner, row.lease_until) == (None, None)
    assert repo.take_token_lease("wx_token", "b", NOW, LATER)
    assert repo.token("other_token") is None
