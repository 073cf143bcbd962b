"""GCRA limits with a fake monotonic clock: exact spacing, bursts, pauses, per-chat keys."""

from __future__ import annotations

from bot.ratelimit import DEFAULT_LIMITS, ChannelLimiter, ChannelLimits, Gcra, Rate, is_group


class Ticker:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_spacing_is_exact_and_reservations_add_up() -> None:
    tick = Ticker()
    limiter = Gcra(Rate(30, 1.0), tick)
    waits = [limiter.reserve() for _ in range(31)]
    assert waits[0] == 0.0
    assert abs(waits[30] - 1.0) < 1e-9  # the 31st of 30/s goes one second after the first
    tick.t += 2.0
    assert limiter.reserve() == 0.0  # idle time is not banked beyond the burst


def test_burst_then_steady_rate() -> None:
    tick = Ticker()
    limiter = Gcra(Rate(20, 60.0, burst=3), tick)
    assert [limiter.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.reserve() == 3.0  # then one every 3 s


def test_too_long_a_wait_takes_nothing() -> None:
    tick = Ticker()
    limiter = Gcra(Rate(1, 1.0), tick)
    assert limiter.reserve() == 0.0
    assert limiter.reserve(max_wait=0.5) is None
    assert limiter.reserve(max_wait=1.0) == 1.0


def test_pause_honours_retry_after() -> None:
    tick = Ticker()
    limiter = Gcra(Rate(30, 1.0), tick)
    limiter.pause(7.0)
    assert limiter.reserve() == 7.0


def test_channel_limiter_per_chat_and_group_and_overall() -> None:
    tick = Ticker()
    limits = ChannelLimits(overall=Rate(30, 1.0), per_chat=Rate(1, 1.0), per_group=Rate(20, 60.0))
    channel = ChannelLimiter(limits, tick)
    assert channel.reserve("42", 10) == 0.0
    assert channel.chat_delay("42") == 1.0  # same chat: one a second
    second = channel.reserve("43", 10)
    assert second is not None and second < 0.1  # another chat only waits for the overall slot
    assert channel.reserve("-100", 10) is not None
    group_wait = channel.chat_delay("-100")
    assert 3.0 <= group_wait < 3.1  # a group: one every 3 s (after its overall slot)
    assert channel.reserve("-100", 1) is None  # longer than we wait: nothing taken
    assert channel.chat_delay("-100") == group_wait


def test_a_chat_slot_is_taken_no_earlier_than_the_overall_slot() -> None:
    tick = Ticker()
    channel = ChannelLimiter(ChannelLimits(overall=Rate(1, 2.0), per_chat=Rate(1, 1.0)), tick)
    assert channel.reserve("a", 10) == 0.0
    assert channel.reserve("b", 10) == 2.0  # b goes in 2 s ...
    tick.t += 2.5
    assert channel.chat_delay("b") == 0.5  # ... so its next message is a second after that
    assert is_group("-100") and not is_group("42")


def test_a_refused_reservation_gives_back_the_chat_slot() -> None:
    tick = Ticker()
    channel = ChannelLimiter(ChannelLimits(overall=Rate(1, 10.0), per_chat=Rate(1, 100.0)), tick)
    assert channel.reserve("a", 1) == 0.0
    assert channel.reserve("b", 1) is None  # overall slot 10 s away
    tick.t += 10
    assert channel.reserve("b", 1) == 0.0  # b's own slot was not used up by the refusal
    assert channel.reserve("a", 100) is not None and channel.reserve("a", 1) is None


def test_an_album_costs_its_photos() -> None:
    """Telegram counts each photo of an album against the group's 20 a minute."""
    tick = Ticker()
    limiter = ChannelLimiter(ChannelLimits(overall=Rate(20, 60.0, burst=3)), tick)
    assert limiter.reserve("staff", max_wait=10.0, cost=10) == 0.0
    assert limiter.delay("staff") == 24.0  # ten slots of 3 s taken, less the burst of three
    assert limiter.reserve("staff", max_wait=10.0) is None  # nothing taken: it goes back to the outbox
    tick.t += 24.0
    assert limiter.reserve("staff", max_wait=10.0) == 0.0


def test_the_wecom_member_rate_keeps_to_30_a_minute_and_1000_an_hour() -> None:
    """WeCom drops, without an error, an app's messages to one member past 30 a minute or 1000 an
    hour: sending as fast as the limiter lets, no minute and no hour holds more."""
    tick = Ticker()
    limiter = ChannelLimiter(DEFAULT_LIMITS["wecom_app"], tick)
    start, sent = tick.t, []
    while tick.t < start + 7200:
        wait = limiter.reserve("wangshifu", max_wait=3600.0)
        assert wait is not None
        tick.t += wait
        sent.append(tick.t)
    for i, at in enumerate(sent):
        assert len([t for t in sent[i:] if t <= at + 60]) <= 29  # a minute, its ends included
        assert len([t for t in sent[i:] if t <= at + 3600]) <= 1000
    assert len([t for t in sent if t <= start + 60]) == 29  # close to the minute's allowance
    assert limiter.reserve("zhaozhuguan", max_wait=0.0) == 0.0  # another member is not held up
