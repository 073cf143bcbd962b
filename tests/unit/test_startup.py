"""Starting a channel with retries (bot.startup): the backoff, the states /healthz shows, the log."""

from __future__ import annotations

import asyncio
import logging
from itertools import islice

import pytest

from bot.startup import Backoff, ChannelStates, start_or_retry

TOKEN = "777000111:SECRET-token"


def test_the_backoff_doubles_up_to_its_cap() -> None:
    assert list(islice(Backoff(1.0, 60.0).delays(), 8)) == [1, 2, 4, 8, 16, 32, 60, 60]


class FlakyStart:
    """Fails ``failures`` times as ptb does for a rejected token (quoting it), then starts."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, 0

    async def __call__(self) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise RuntimeError(f"The token `{TOKEN}` was rejected by the server.")


async def test_a_channel_that_starts_at_once_is_up_and_needs_no_task() -> None:
    states = ChannelStates()
    assert await start_or_retry("telegram", FlakyStart(0), states, Backoff(0.01, 0.02)) is None
    assert states.states == {"telegram": "up"} and states.down() == []


async def test_a_failing_channel_is_down_until_a_retry_starts_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="bot.startup")
    start, states = FlakyStart(3), ChannelStates({"wechat": "up"})
    task = await start_or_retry("telegram", start, states, Backoff(0.01, 0.02), secrets=[TOKEN, ""])
    assert task is not None and states.down() == ["telegram"] and not states.is_up("telegram")
    await asyncio.wait_for(task, timeout=5)
    assert start.calls == 4 and states.down() == [] and states.is_up("telegram")
    failures = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage().rsplit("next try in ", 1)[1] for r in failures] == ["0.01 s", "0.02 s", "0.02 s"]
    assert TOKEN not in caplog.text and "The token `***` was rejected" in caplog.text
    assert all(r.exc_info is None for r in caplog.records)


async def test_the_retries_stop_when_the_server_does() -> None:
    start, states = FlakyStart(10**6), ChannelStates()
    task = await start_or_retry("telegram", start, states, Backoff(0.01, 0.01))
    assert task is not None
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    calls = start.calls
    await asyncio.sleep(0.05)
    assert start.calls == calls and states.down() == ["telegram"]
