"""Unusual input the fuzzers (tests/fuzz) found: text made storable, ids read safely, bad callbacks
refused (no I/O)."""

from __future__ import annotations

import pytest
from telegram import Bot

from bot.channels.telegram import BadUpdate, check_update, parse_update, storable
from bot.channels.wechat import BadCallback, typed_message
from data.store import row_id, storable_text


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("厨房\x00水管漏水了", "厨房水管漏水了"),  # PostgreSQL's text cannot hold NUL
        ("水管\ud800漏水", "水管\ufffd漏水"),  # a lone surrogate is not UTF-8
        ("\udfff\ud800", "\ufffd\ufffd"),
        ("😡 漏水 \u202e\u200b", "😡 漏水 \u202e\u200b"),  # odd but storable: kept as sent
    ],
)
def test_text_is_made_storable(text: str, kept: str) -> None:
    assert storable_text(text) == kept
    assert storable_text(text).encode()  # encodes as UTF-8


def test_every_string_of_a_telegram_update_is_made_storable() -> None:
    body = (
        b'{"update_id": 1, "message": {"message_id": 2, "date": 1, "text": "\\u0000\\ud800\\ud83d\\ude00",'
        b' "chat": {"id": 3, "type": "private"},'
        b' "from": {"id": 3, "is_bot": false, "first_name": "\\udc00"}}}'
    )
    update = parse_update(body, Bot("1:x"))
    assert update is not None and update.message is not None
    assert update.message.text == "\ufffd😀"  # NUL gone, the lone half replaced, the pair kept
    assert update.message.from_user is not None and update.message.from_user.first_name == "\ufffd"


def test_deeply_nested_json_is_walked_without_recursion() -> None:
    nested: list[object] = ["\x00"]
    innermost = nested
    for _ in range(5000):
        nested = [nested]
    storable(nested)  # deeper than Python's recursion limit
    assert innermost == [""]


@pytest.mark.parametrize(
    ("text", "number"),
    [("7", 7), ("0042", 42), ("2147483647", 2**31 - 1), ("2147483648", None), ("9" * 30, None)]
    + [("²", None), ("٣", None), ("３", None), ("-1", None), ("", None), ("1 ", None)],
)
def test_row_ids_are_ascii_digits_within_int4(text: str, number: int | None) -> None:
    assert row_id(text) == number


def test_a_wechat_callback_without_its_recipient_is_refused() -> None:
    """The passive reply is sent from ``ToUserName``: without it there is no valid reply to give."""
    fields = {"FromUserName": "oX", "CreateTime": "1", "MsgType": "text", "Content": "你好", "MsgId": "1"}
    assert typed_message({**fields, "ToUserName": "gh_x"}).target == "gh_x"
    with pytest.raises(BadCallback, match="ToUserName"):
        typed_message(fields)


def test_a_wechat_openid_longer_than_an_openid_is_refused() -> None:
    """Ids made from it (the sender, an event's id) must fit their 128-character columns."""
    fields = {"ToUserName": "gh_x", "CreateTime": "1", "MsgType": "event", "Event": "subscribe"}
    assert typed_message({**fields, "FromUserName": "o" * 64}).source == "o" * 64
    with pytest.raises(BadCallback, match="too long"):
        typed_message({**fields, "FromUserName": "o" * 65})


def update(update_id: int = 1, message_id: int = 2, chat_id: int = 3, user_id: int = 3) -> dict[str, object]:
    chat, sender = {"id": chat_id, "type": "private"}, {"id": user_id}
    return {"update_id": update_id, "message": {"message_id": message_id, "chat": chat, "from": sender}}


@pytest.mark.parametrize("field", ["update_id", "message_id", "chat_id", "user_id"])
def test_telegram_ids_past_52_bits_are_refused(field: str) -> None:
    """The Bot API's ids have at most 52 significant bits; larger ones are nobody's."""
    assert check_update(update(**{field: 2**52 - 1})) is None
    with pytest.raises(BadUpdate, match="expected an integer of at most 52 bits"):
        check_update(update(**{field: 2**52}))
