"""Signed desk links (bot.desk.links): what holds and what is refused, with a fixed key and time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from bot.desk import links

KEY = "a-server-secret"
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
NUMBER = "BX-20261203-0001"


def parts(path: str) -> tuple[str, str, str]:
    url = urlsplit(path)
    query = parse_qs(url.query)
    return url.path.rsplit("/", 1)[1], query["exp"][0], query["sig"][0]


def test_a_link_holds_until_it_expires() -> None:
    number, exp, sig = parts(links.path(KEY, NUMBER, NOW + timedelta(hours=72)))
    assert number == NUMBER and links.refusal(KEY, number, exp, sig, NOW) is None
    assert links.refusal(KEY, number, exp, sig, NOW + timedelta(hours=72)) is None
    assert "已过期" in str(links.refusal(KEY, number, exp, sig, NOW + timedelta(hours=72, seconds=1)))


def test_changed_links_and_other_keys_are_refused() -> None:
    number, exp, sig = parts(links.path(KEY, NUMBER, NOW + timedelta(hours=1)))
    assert "无效" in str(links.refusal(KEY, "BX-20261203-0002", exp, sig, NOW))
    assert "无效" in str(links.refusal(KEY, number, str(int(exp) + 1), sig, NOW))
    assert "无效" in str(links.refusal("another-key", number, exp, sig, NOW))
    assert "无效" in str(links.refusal(KEY, number, exp, sig.upper(), NOW))
    for broken in (("bx-1", exp), (number, ""), (number, "12a"), (number, "９９"), (number, "9" * 13)):
        assert "不完整" in str(links.refusal(KEY, broken[0], broken[1], sig, NOW))
