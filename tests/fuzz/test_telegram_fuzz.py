"""``/telegram`` under fuzzing: valid updates mutated (wrong types, missing and extra fields, nasty
text), whole conversations with nasty turns, the staff group, and the checked-in corpus of bodies.

Every request carries the right secret token, so it gets past the door to the parser, the engine
and the store. For each: no 5xx, nothing logged as an error or with a traceback, a resident's
message gets a reply (never the apology for a failure) unless it is refused with a 4xx that wrote
nothing, and the same update again gives the same reply and creates nothing.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.channels.telegram import SECRET_HEADER
from flows.dialog.engine import APOLOGY
from tests.e2e.conftest import LEAD, SECRET, STAFF_CHAT, WANG, Propbot
from tests.fakes.telegram_api import BOT_USER
from tests.fuzz.conftest import FUZZ, Logs
from tests.fuzz.invariants import Baseline, Footprint, store_problems, wait_until_delivered
from tests.fuzz.nasty import corpus_files, corpus_texts, mutated_json, nasty_text, words

pytestmark = pytest.mark.fuzz

BOUND = {6100001: "李明", 6100002: "陈静", 6100003: "周阿姨"}  # chats bound to demo residents
STRANGERS = range(6200001, 6200004)  # chats nobody bound: the binding dialog
OK_STATUSES = {200, 400, 403, 413}
TICKETS: list[str] = []  # the ticket the fixture made, for the staff group's buttons and commands
_ids = itertools.count(700000)


@dataclass
class Posted:
    status: int
    replies: list[str]  # texts for the chat: sent by the bot, or carried by the webhook's answer
    answer: Any


def post(propbot: Propbot, body: bytes, chat: int | None) -> Posted:
    before = len(propbot.telegram.sent_to(chat)) if chat is not None else 0
    response = propbot.http.post(
        "/telegram", content=body, headers={SECRET_HEADER: SECRET, "Content-Type": "application/json"}
    )
    assert response.status_code < 500, response.text
    answer = response.json() if "json" in response.headers.get("content-type", "") else response.text
    replies = [c.params["text"] for c in propbot.telegram.sent_to(chat)[before:]] if chat is not None else []
    if isinstance(answer, dict) and answer.get("method") == "sendMessage" and answer.get("chat_id") == chat:
        replies.append(answer["text"])
    return Posted(response.status_code, replies, answer)


def encode(update: Any) -> bytes:
    return json.dumps(update).encode()  # ensure_ascii: NUL and lone surrogates as \u escapes, as valid JSON


# -- updates --------------------------------------------------------------------------------------------
def message(chat: int, user: int | None = None, chat_type: str = "private", **content: Any) -> dict[str, Any]:
    number = next(_ids)
    chat_data = {"id": chat, "type": chat_type, "first_name": "居民"}
    sender = {"id": user or chat, "is_bot": False, "first_name": "居", "last_name": "民"}
    body = {"message_id": number, "date": 1795413600, "chat": chat_data, "from": sender, **content}
    return {"update_id": number, "message": body}


def callback(chat: int, data: str, user: int | None = None, chat_type: str = "private") -> dict[str, Any]:
    number = next(_ids)
    card = {
        "message_id": 1,
        "date": 1795413600,
        "from": BOT_USER,
        "text": "请选择",
        "chat": {"id": chat, "type": chat_type},
    }
    query = {
        "id": f"cq{number}",
        "from": {"id": user or chat, "is_bot": False, "first_name": "居民"},
        "chat_instance": "ci",
        "data": data,
        "message": card,
    }
    return {"update_id": number, "callback_query": query}


@st.composite
def resident_update(draw: st.DrawFn) -> dict[str, Any]:
    chat = draw(st.sampled_from([*BOUND, *STRANGERS]))
    text = draw(nasty_text())
    kind = draw(st.sampled_from(["text", "command", "photo", "location", "callback", "reply", "name"]))
    if kind == "text":
        return message(chat, text=text)
    if kind == "command":
        return message(chat, text=draw(st.sampled_from(["/start ", "/status", "/help ", "/x@y "])) + text)
    if kind == "photo":
        size = {"file_id": text or "f", "file_unique_id": "u", "width": 10, "height": 10}
        return message(chat, photo=[size], caption=text)
    if kind == "location":
        lat, lon = draw(st.floats(allow_nan=False)), draw(st.floats(allow_nan=False))
        return message(chat, location={"latitude": lat, "longitude": lon})
    if kind == "callback":
        return callback(chat, text)
    if kind == "name":  # the sender's name is stored with the account
        update = message(chat, text=draw(words()))
        update["message"]["from"].update(first_name=text or "x", last_name=draw(nasty_text()))
        return update
    quoted = {
        "message_id": 2,
        "date": 1795413600,
        "from": BOT_USER,
        "text": text,
        "chat": {"id": chat, "type": "private"},
    }
    return message(chat, text=draw(words()), reply_to_message=quoted)


@st.composite
def staff_update(draw: st.DrawFn) -> dict[str, Any]:
    """The staff group: commands, replies to cards and button presses, by staff and by strangers."""
    user = draw(st.sampled_from([WANG, LEAD, 6300001]))
    text = draw(nasty_text())
    kind = draw(st.sampled_from(["command", "press", "reply", "chatter"]))
    if kind == "command":
        command = draw(st.sampled_from(["/huifang ", "/notice ", "/notice cancel ", "/help", "/tongzhi "]))
        return message(STAFF_CHAT, user, "supergroup", text=command + text)
    if kind == "press":
        action = draw(st.sampled_from(["claim", "done", "escalate", "reassign", "to", "back", text]))
        number = draw(st.sampled_from([*TICKETS, text]))
        return callback(STAFF_CHAT, f"{action}:{number}:{draw(nasty_text())}", user, "supergroup")
    if kind == "reply":
        card = {
            "message_id": 3,
            "date": 1795413600,
            "from": BOT_USER,
            "chat": {"id": STAFF_CHAT, "type": "supergroup"},
            "text": draw(st.sampled_from([*(f"【新报修】{t}" for t in TICKETS), text])),
        }
        return message(STAFF_CHAT, user, "supergroup", text=text or "x", reply_to_message=card)
    return message(STAFF_CHAT, user, "supergroup", text=text)


def resident_chat(update: Any) -> int | None:
    """The private chat whose resident must get a reply, if ``update`` is a resident's message."""
    if not isinstance(update, dict):
        return None
    holder = update.get("message")
    if isinstance(update.get("callback_query"), dict):
        holder = update["callback_query"].get("message")
    chat = holder.get("chat") if isinstance(holder, dict) else None
    if not isinstance(chat, dict) or chat.get("type") != "private" or chat.get("id") == STAFF_CHAT:
        return None
    return chat.get("id") if type(chat.get("id")) is int else None


# -- the checks -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def telegram_bot(fuzz_propbot: Propbot) -> Iterator[tuple[Propbot, Baseline]]:
    for chat, name in BOUND.items():
        fuzz_propbot.bind("telegram", str(chat), name)
    for text in ("厨房水管漏水了", "尽快", "确认"):  # a ticket for the staff group's buttons and commands
        fuzz_propbot.tg_say(6100003, text)
    TICKETS[:] = [fuzz_propbot.tickets()[-1].number]
    baseline = Baseline.of(fuzz_propbot.app.sessions)
    yield fuzz_propbot, baseline


def check(propbot: Propbot, logs: Logs, update: Any, body: bytes | None = None) -> Posted:
    """Post ``update`` (or the raw ``body``), check the answer, then post it again: the same answer."""
    body = encode(update) if body is None else body
    chat = resident_chat(update)
    before = Footprint.of(propbot.app.sessions)
    first = post(propbot, body, chat)
    assert first.status in OK_STATUSES, first.answer
    after = Footprint.of(propbot.app.sessions)
    if first.status != 200:
        assert after == before, "a refused update wrote to the store"
    elif chat is not None:
        assert first.replies, f"no reply to a resident's update: {first.answer}"
        assert APOLOGY not in first.replies, "the engine failed on this update"
    assert logs.problems() == []
    again = post(propbot, body, chat)
    assert again.status == first.status
    assert Footprint.of(propbot.app.sessions) == after, "the same update twice made something twice"
    if chat is not None and first.status == 200:
        assert again.replies == first.replies, "a re-delivered update got another answer"
    assert logs.problems() == []
    return first


@FUZZ
@given(update=resident_update())
def test_residents_nasty_messages(
    telegram_bot: tuple[Propbot, Baseline], logs: Logs, update: dict[str, Any]
) -> None:
    check(telegram_bot[0], logs, update)


@FUZZ
@given(
    turns=st.lists(st.one_of(words(), nasty_text()), min_size=2, max_size=5),
    chat=st.sampled_from(list(BOUND)),
)
def test_conversations_with_nasty_turns(
    telegram_bot: tuple[Propbot, Baseline], logs: Logs, turns: list[str], chat: int
) -> None:
    """A dialog in progress (a repair form, a booking) fed nasty slot values."""
    for text in turns:
        check(telegram_bot[0], logs, message(chat, text=text))


@FUZZ
@given(update=resident_update().flatmap(mutated_json))
def test_mutated_updates(telegram_bot: tuple[Propbot, Baseline], logs: Logs, update: dict[str, Any]) -> None:
    check(telegram_bot[0], logs, update)


@FUZZ
@given(update=st.one_of(staff_update(), staff_update().flatmap(mutated_json)))
def test_staff_group_nasty_updates(
    telegram_bot: tuple[Propbot, Baseline], logs: Logs, update: dict[str, Any]
) -> None:
    check(telegram_bot[0], logs, update)


BODIES = corpus_files("telegram/*", "*.bin")


@pytest.mark.parametrize("path", BODIES, ids=[p.name for p in BODIES])
def test_corpus_bodies(telegram_bot: tuple[Propbot, Baseline], logs: Logs, path: Path) -> None:
    body = path.read_bytes().replace(b"BX-20261123-0001", TICKETS[0].encode())  # the corpus's ticket
    try:
        update = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, or nested too deep for Python's parser
        update = None
    check(telegram_bot[0], logs, update, body)


@pytest.mark.parametrize("name", sorted(corpus_texts()))
def test_corpus_texts_from_a_bound_resident(
    telegram_bot: tuple[Propbot, Baseline], logs: Logs, name: str
) -> None:
    check(telegram_bot[0], logs, message(6100001, text=corpus_texts()[name]))


def test_the_store_is_consistent_afterwards(telegram_bot: tuple[Propbot, Baseline]) -> None:
    """Last in the module: every row the fuzzing made hangs together."""
    propbot, baseline = telegram_bot
    assert wait_until_delivered(propbot.app.sessions, baseline, propbot.app.clock.now) == []
    assert store_problems(propbot.app.sessions, baseline) == []
