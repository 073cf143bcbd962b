"""The dialogs repository's contract, run on ``SqlDialogs`` (SQLite, claims by
``Store.claim_inbound``) and ``MemoryDialogs`` (claims by its own ``claim_inbound``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from data.clock import SHANGHAI
from data.db import make_engine, migrate
from data.repositories.dialogs import DialogsRepository, SqlDialogs
from data.repositories.memory_dialogs import MemoryDialogs
from data.store import Store

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)


@dataclass
class World:
    dialogs: DialogsRepository
    claim_inbound: Callable[[str, str, str, datetime], bool]

    def claim(self, channel: str, message_id: str) -> bool:
        return self.claim_inbound(channel, message_id, "u1", NOW)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    path: Path = tmp_path_factory.mktemp("dialogs") / "propbot.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sql", "memory"])
def world(request: pytest.FixtureRequest) -> Iterator[World]:
    if request.param == "memory":
        memory = MemoryDialogs()
        yield World(memory, memory.claim_inbound)
        return
    engine: Engine = request.getfixturevalue("engine")
    with Session(engine) as session:
        yield World(SqlDialogs(session), Store(session).claim_inbound)
        session.rollback()  # the next test starts from the empty schema again


REPLIES = [{"text": "收到，已为您登记报修。"}, {"text": "单号 BX-20261123-0001"}]


def test_a_message_id_is_claimed_once_per_channel(world: World) -> None:
    assert world.claim("telegram", "m1")
    assert not world.claim("telegram", "m1")
    assert world.claim("wechat", "m1")
    assert world.claim("telegram", "m2")


def test_a_claimed_message_has_no_replies_until_they_are_recorded(world: World) -> None:
    world.claim("telegram", "m1")
    assert world.dialogs.recorded_replies("telegram", "m1") == []
    world.dialogs.record_replies("telegram", "m1", REPLIES)
    assert world.dialogs.recorded_replies("telegram", "m1") == REPLIES
    assert world.dialogs.recorded_replies("wechat", "m1") == []


def test_recording_again_replaces_the_replies(world: World) -> None:
    world.claim("telegram", "m1")
    world.dialogs.record_replies("telegram", "m1", REPLIES)
    world.dialogs.record_replies("telegram", "m1", REPLIES[:1])
    assert world.dialogs.recorded_replies("telegram", "m1") == REPLIES[:1]


def test_the_replies_kept_are_a_copy_of_the_list_given(world: World) -> None:
    world.claim("telegram", "m1")
    replies = list(REPLIES)
    world.dialogs.record_replies("telegram", "m1", replies)
    replies.append({"text": "late"})
    found = world.dialogs.recorded_replies("telegram", "m1")
    found.append({"text": "later"})
    assert world.dialogs.recorded_replies("telegram", "m1") == REPLIES


def test_replies_to_a_message_never_claimed_are_not_kept(world: World) -> None:
    world.dialogs.record_replies("telegram", "nobody", REPLIES)
    assert world.dialogs.recorded_replies("telegram", "nobody") == []
    assert world.claim("telegram", "nobody")
