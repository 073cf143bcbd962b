"""What channels receive made storable, and ids typed by people read safely (no I/O)."""

from __future__ import annotations

import pytest
from telegram import Bot

from bot.channels.telegram import parse_update, storable
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
