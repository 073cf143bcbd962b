"""The outbox dispatcher on both databases: once and only once, retries, failures shown to staff,
quiet hours, rate limits, concurrent dispatchers, a dispatcher killed mid-send."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import select

from bot.app import App
from bot.channels.telegram import TelegramSender, make_bot
from bot.dispatcher import DispatchConfig, Dispatcher, owner_alive, owner_token
from bot.outbound import OutboundMessage, PermanentFailure, TemporaryFailure
from bot.ratelimit import ChannelLimits, Rate
from bot.settings import Settings
from data.clock import SHANGHAI, FixedClock
from data.db import make_engine, make_session_factory, transaction
from data.models import OutboxMessage
from data.store import Store
from tests.conftest import NOW, PG_ADMIN
from tests.fakes.serve import served
from tests.fakes.telegram_api import TOKEN, BotApiSender, FakeTelegram, Limits
from tests.integration.outbox_helpers import FakeSender, dispatcher, enqueue, outbox, staff_texts

REPO = Path(__file__).resolve().parents[2]
NO_LIMITS = {"telegram": ChannelLimits(), "console": ChannelLimits(), "staff": ChannelLimits()}


async def test_due_rows_are_sent_once_and_marked(app: App, clock: FixedClock) -> None:
    enqueue(app, 3)
    sender = FakeSender("telegram")
    run = dispatcher(app, clock, {"telegram": sender})
    assert await run.run_once() == 3
    assert await run.run_once() == 0
    assert sorted(sender.texts) == ["消息0", "消息1", "消息2"]  # three chats, served at once
    rows = outbox(app, "telegram")
    assert {r.status for r in rows} == {"sent"} and all(r.attempts == 1 for r in rows)


async def test_rows_not_yet_due_wait(app: App, clock: FixedClock) -> None:
    enqueue(app, 1, due_at=NOW + timedelta(minutes=10))
    sender = FakeSender("telegram")
    run = dispatcher(app, clock, {"telegram": sender})
    assert await run.run_once() == 0
    clock.advance(minutes=10)
    assert await run.run_once() == 1 and sender.texts == ["消息0"]


async def test_temporary_failure_backs_off_honouring_retry_after(app: App, clock: FixedClock) -> None:
    enqueue(app, 1)
    sender = FakeSender("telegram", [TemporaryFailure("HTTP 502", retry_after=30)])
    run = dispatcher(app, clock, {"telegram": sender})
    assert await run.run_once() == 1
    row = outbox(app, "telegram")[0]
    assert row.status == "pending" and row.last_error == "HTTP 502"
    assert row.due_at >= NOW + timedelta(seconds=30)
    assert await run.run_once() == 0  # not due yet: the test moves the clock, never sleeps
    clock.advance(seconds=40)
    assert await run.run_once() == 1
    assert sender.texts == ["消息0"] and outbox(app, "telegram")[0].status == "sent"


async def test_flood_control_waits_only_what_the_peer_asks(app: App, clock: FixedClock) -> None:
    """A 429 with retry_after 1 s on a later attempt: again in ~1 s, not the doubled backoff (an
    emergency card held by flood control goes as soon as it may)."""
    enqueue(app, 1, channel="staff", recipient="staff", urgent=True)
    failures = [TemporaryFailure("HTTP 502"), TemporaryFailure("HTTP 502"), TemporaryFailure("429", 1)]
    sender = FakeSender("staff", failures)
    run = dispatcher(app, clock, {"staff": sender}, DispatchConfig(backoff_base=10))
    for _ in range(3):
        clock.set(outbox(app, "staff")[0].due_at)
        start = clock.now()
        await run.run_once()
    assert 1 <= (outbox(app, "staff")[0].due_at - start).total_seconds() < 1.2


async def test_backoff_grows_exponentially(app: App, clock: FixedClock) -> None:
    enqueue(app, 1)
    sender = FakeSender("telegram", [TemporaryFailure("timeout") for _ in range(3)])
    run = dispatcher(app, clock, {"telegram": sender}, DispatchConfig(backoff_base=10))
    gaps = []
    for _ in range(3):
        start = clock.now()
        await run.run_once()
        due = outbox(app, "telegram")[0].due_at
        gaps.append((due - start).total_seconds())
        clock.set(due)
    assert 10 <= gaps[0] < 12 and 20 <= gaps[1] < 23 and 40 <= gaps[2] < 45
    await run.run_once()
    assert sender.texts == ["消息0"]


async def test_permanent_failure_is_recorded_and_shown_to_staff(app: App, clock: FixedClock) -> None:
    enqueue(app, 1, channel="console", recipient="demo", kind="reminder")
    sender = FakeSender("console", [PermanentFailure("Forbidden: bot was blocked by the user")])
    await dispatcher(app, clock, {"console": sender}).run_once()
    row = outbox(app, "console")[0]
    assert row.status == "failed" and "blocked" in (row.last_error or "")
    [notice] = staff_texts(app)
    assert "3栋2单元1502 李明" in notice and "缴费提醒" in notice and "blocked" in notice
    assert "13800138000" not in notice  # never a phone number in the group


async def test_exhausted_retries_fail_and_are_reported_once(app: App, clock: FixedClock) -> None:
    enqueue(app, 1)
    sender = FakeSender("telegram", [TemporaryFailure("HTTP 503") for _ in range(10)])
    run = dispatcher(app, clock, {"telegram": sender}, DispatchConfig(max_attempts=3, backoff_base=1))
    for _ in range(6):
        await run.run_once()
        clock.advance(minutes=5)
    row = outbox(app, "telegram")[0]
    assert (row.status, row.attempts) == ("failed", 3) and "3 次尝试均失败" in (row.last_error or "")
    assert len(staff_texts(app)) == 1 and sender.sent == []


async def test_a_sender_answering_garbage_never_crashes_the_loop(app: App, clock: FixedClock) -> None:
    enqueue(app, 2)
    sender = FakeSender("telegram", [ValueError("Expecting value: line 1 column 1"), KeyError("result")])
    run = dispatcher(app, clock, {"telegram": sender}, DispatchConfig(backoff_base=1))
    assert await run.run_once() == 2
    assert {r.last_error for r in outbox(app, "telegram")} == {
        "ValueError: Expecting value: line 1 column 1",
        "KeyError: 'result'",
    }
    clock.advance(seconds=5)
    assert await run.run_once() == 2 and sorted(sender.texts) == ["消息0", "消息1"]


async def test_run_forever_survives_a_broken_database_and_stops(app: App, clock: FixedClock) -> None:
    run = dispatcher(app, clock, {"telegram": FakeSender("telegram")})
    calls = 0

    async def broken() -> int:
        nonlocal calls
        calls += 1
        if calls >= 3:
            stop.set()
        raise RuntimeError("database is down")

    run.run_once = broken  # type: ignore[method-assign]
    stop = asyncio.Event()
    await asyncio.wait_for(run.run_forever(stop, idle=0.001), timeout=5)
    assert calls == 3


async def test_stopping_puts_unsent_claims_back_at_once(app: App, clock: FixedClock) -> None:
    """A stop in the middle of a round: what was claimed and not sent is pending again, due now,
    not held until its lease runs out (a restart would otherwise delay it by minutes)."""
    enqueue(app, 3, recipient="chat7")
    stop = asyncio.Event()

    class StopsTheServer(FakeSender):
        async def send(self, message: OutboundMessage) -> None:
            await super().send(message)
            stop.set()  # the server is told to stop while the first message goes out

    sender = StopsTheServer("telegram")
    run = dispatcher(app, clock, {"telegram": sender}, limits=NO_LIMITS)
    await asyncio.wait_for(run.run_forever(stop, idle=0.001), timeout=5)
    assert sender.texts == ["消息0"]
    first, *rest = outbox(app, "telegram")
    assert first.status == "sent"
    assert [(r.status, r.claimed_until, r.attempts) for r in rest] == [("pending", None, 0)] * 2
    assert all(r.due_at <= clock.now() for r in rest)


# -- quiet hours ---------------------------------------------------------------------------------------
async def test_quiet_hours_hold_resident_messages_but_not_staff_or_urgent(
    app: App, clock: FixedClock
) -> None:
    clock.set(datetime(2026, 11, 23, 22, 0, tzinfo=SHANGHAI))
    enqueue(app, 1, channel="console", recipient="demo", kind="reminder")
    enqueue(app, 1, channel="console", recipient="elder", urgent=True)
    enqueue(app, 1, channel="staff", recipient="staff")
    console, staff = FakeSender("console"), FakeSender("staff")
    run = dispatcher(app, clock, {"console": console, "staff": staff})
    assert await run.run_once() == 2
    assert [m.recipient for m in console.sent] == ["elder"] and len(staff.sent) == 1
    held = outbox(app, "console")[0]
    assert held.status == "pending" and held.attempts == 0
    assert held.due_at == datetime(2026, 11, 24, 8, 0, tzinfo=SHANGHAI)
    clock.set(datetime(2026, 11, 24, 7, 59, tzinfo=SHANGHAI))
    assert await run.run_once() == 0
    clock.set(datetime(2026, 11, 24, 8, 0, tzinfo=SHANGHAI))
    assert await run.run_once() == 1 and console.sent[-1].recipient == "demo"


async def test_noon_rest_and_a_resident_who_just_wrote(app: App, clock: FixedClock) -> None:
    clock.set(datetime(2026, 11, 23, 12, 30, tzinfo=SHANGHAI))
    with transaction(app.sessions) as session:
        Store(session).account("console", "family").last_inbound_at = clock.now() - timedelta(minutes=5)
    enqueue(app, 1, channel="console", recipient="demo")
    enqueue(app, 1, channel="console", recipient="family")
    console = FakeSender("console")
    await dispatcher(app, clock, {"console": console}).run_once()
    assert [m.recipient for m in console.sent] == ["family"]  # awake and chatting: not held
    assert outbox(app, "console")[0].due_at == datetime(2026, 11, 23, 14, 0, tzinfo=SHANGHAI)


async def test_per_compound_quiet_hours(app: App, clock: FixedClock) -> None:
    with transaction(app.sessions) as session:
        Store(session).compound().settings = {"quiet_hours": [["22:30", "07:30"]]}
    clock.set(datetime(2026, 11, 23, 22, 0, tzinfo=SHANGHAI))
    enqueue(app, 1, channel="console", recipient="demo")
    console = FakeSender("console")
    await dispatcher(app, clock, {"console": console}).run_once()
    assert len(console.sent) == 1


# -- rate limits -----------------------------------------------------------------------------------------
async def test_per_chat_rate_keeps_order_and_spacing(app: App, clock: FixedClock) -> None:
    enqueue(app, 3, recipient="42")
    stamps: list[float] = []
    sender = FakeSender("telegram")
    original = sender.send

    async def stamped(message):  # type: ignore[no-untyped-def]
        stamps.append(clock.now().timestamp())
        await original(message)

    sender.send = stamped  # type: ignore[method-assign]
    patient = dispatcher(app, clock, {"telegram": sender}, DispatchConfig(chat_wait=5))
    await patient.run_once()
    assert sender.texts == ["消息0", "消息1", "消息2"]
    assert [round(b - a, 3) for a, b in zip(stamps, stamps[1:], strict=False)] == [1.0, 1.0]


async def test_a_chat_waiting_its_turn_goes_back_to_the_outbox(app: App, clock: FixedClock) -> None:
    enqueue(app, 3, recipient="42")
    enqueue(app, 1, recipient="43")
    sender = FakeSender("telegram")
    run = dispatcher(app, clock, {"telegram": sender})
    assert await run.run_once() == 4
    assert sender.texts == ["消息0", "消息0"]  # 42's first and 43's; 42's rest wait in the outbox
    waiting = [r for r in outbox(app, "telegram") if r.status == "pending"]
    assert [r.text for r in waiting] == ["消息1", "消息2"] and all(r.attempts == 0 for r in waiting)
    for _ in range(3):
        clock.advance(seconds=1)
        await run.run_once()
    assert [m.text for m in sender.sent if m.recipient == "42"] == ["消息0", "消息1", "消息2"]


async def test_a_long_wait_goes_back_to_the_outbox_without_counting_an_attempt(
    app: App, clock: FixedClock
) -> None:
    enqueue(app, 20, channel="staff", recipient="staff")
    staff = FakeSender("staff")
    limits = {"staff": ChannelLimits(overall=Rate(20, 60.0))}  # one every 3 s
    run = dispatcher(app, clock, {"staff": staff}, DispatchConfig(max_wait=2), limits=limits)
    assert await run.run_once() == 20
    assert 0 < len(staff.sent) < 20
    waiting = [r for r in outbox(app, "staff") if r.status == "pending"]
    assert len(waiting) == 20 - len(staff.sent)
    assert all(r.attempts == 0 and r.claimed_by is None and r.due_at > clock.now() for r in waiting)
    for _ in range(40):
        clock.advance(seconds=3)
        await run.run_once()
    assert staff.texts == [f"消息{i}" for i in range(20)]  # all, once, in order


async def test_retry_after_pauses_the_whole_channel(app: App, clock: FixedClock) -> None:
    enqueue(app, 2)
    sender = FakeSender("telegram", [TemporaryFailure("Too Many Requests", retry_after=20)])
    run = dispatcher(app, clock, {"telegram": sender}, DispatchConfig(max_wait=5, concurrency=1))
    await run.run_once()
    second = outbox(app, "telegram")[1]
    assert sender.sent == [] and second.status == "pending" and second.attempts == 0
    assert second.due_at >= NOW + timedelta(seconds=19)


async def test_daily_quota_defers_to_tomorrow_and_tells_staff_once(app: App, clock: FixedClock) -> None:
    enqueue(app, 4, channel="wechat")
    wechat = FakeSender("wechat")
    run = dispatcher(app, clock, {"wechat": wechat}, limits={"wechat": ChannelLimits(daily=2)})
    await run.run_once()
    await run.run_once()
    assert len(wechat.sent) == 2
    assert all(m.payload["cs_window_open"] is False for m in wechat.sent)  # unknown openid: template
    assert sum("额度已用完" in t for t in staff_texts(app)) == 1
    clock.set(datetime(2026, 11, 24, 8, 0, tzinfo=SHANGHAI))
    await run.run_once()
    assert len(wechat.sent) == 4


# -- crashes, leases, concurrency -----------------------------------------------------------------------
async def test_an_expired_lease_is_claimed_again_and_the_stale_claim_cannot_mark(
    app: App, clock: FixedClock
) -> None:
    """A claim of a process on another host (its liveness cannot be seen from here) holds until its
    lease runs out; the old claim cannot mark the row afterwards."""
    enqueue(app, 1)
    first = dispatcher(app, clock, {"telegram": FakeSender("telegram")}, owner="elsewhere:4242:1")
    [planned] = first._plan(clock.now())
    claim = first._claim(planned)  # claimed, then that host goes dark
    assert claim is not None and outbox(app, "telegram")[0].claimed_by == "elsewhere:4242:1"
    sender = FakeSender("telegram")
    second = dispatcher(app, clock, {"telegram": sender})
    assert await second.run_once() == 0  # the lease still holds
    clock.advance(seconds=46)
    assert await second.run_once() == 1 and len(sender.sent) == 1
    first._record(claim, TemporaryFailure("late answer"))  # the old claim wakes up: ignored
    row = outbox(app, "telegram")[0]
    assert (row.status, row.attempts, row.last_error, row.claimed_by) == ("sent", 2, None, None)


async def test_clock_jumping_back_is_reported_once_and_sends_nothing_twice(
    app: App, clock: FixedClock
) -> None:
    enqueue(app, 2)
    sender = FakeSender("telegram")
    run = dispatcher(app, clock, {"telegram": sender})
    await run.run_once()
    clock.advance(hours=-3)
    await run.run_once()
    await run.run_once()
    assert sorted(sender.texts) == ["消息0", "消息1"]
    assert sum("时间倒退" in t for t in staff_texts(app)) == 1


def _drain(db_url: str, clock: FixedClock, sender: FakeSender, counts: list[int]) -> None:
    engine = make_engine(db_url)
    try:
        run = Dispatcher(
            make_session_factory(engine),
            {"telegram": sender},
            clock,
            DispatchConfig(batch=10),
            limits=NO_LIMITS,
        )

        async def loop() -> None:
            idle = 0
            while idle < 3:
                handled = await run.run_once()
                counts.append(handled)
                idle = idle + 1 if handled == 0 else 0

        asyncio.run(loop())
    finally:
        engine.dispose()


def test_two_dispatchers_at_once_send_nothing_twice(app: App, db_url: str, clock: FixedClock) -> None:
    ids = enqueue(app, 400)

    class SlowSender(FakeSender):
        async def send(self, message):  # type: ignore[no-untyped-def]
            await asyncio.sleep(0.001)  # let the other dispatcher in
            await super().send(message)

    sender = SlowSender("telegram")
    counts: tuple[list[int], list[int]] = ([], [])
    threads = [threading.Thread(target=_drain, args=(db_url, clock, sender, counts[i])) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    sent = [m.id for m in sender.sent]
    assert len(sent) == len(set(sent)) == 400 and set(sent) == set(ids)
    assert sum(counts[0]) > 0 and sum(counts[1]) > 0  # both really dispatched
    assert {r.status for r in outbox(app, "telegram")} == {"sent"}


KILLABLE = """
import asyncio, sys
from datetime import datetime
from pathlib import Path
from bot.dispatcher import Dispatcher, DispatchConfig
from bot.ratelimit import ChannelLimits
from data.clock import FixedClock
from data.db import make_engine, make_session_factory

url, log_path, block_at, now = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

class Sender:
    channel = "telegram"
    count = 0
    async def send(self, message):
        Sender.count += 1
        if Sender.count == block_at:
            with log_path.open("a") as log:
                log.write("blocked\\n")
            await asyncio.Event().wait()  # stuck in the middle of a send
        with log_path.open("a") as log:
            log.write(f"{message.id}\\n")

sessions = make_session_factory(make_engine(url))
run = Dispatcher(sessions, {"telegram": Sender()}, FixedClock(datetime.fromisoformat(now)),
                 DispatchConfig(batch=50, concurrency=1), limits={"telegram": ChannelLimits()})
asyncio.run(run.run_forever(asyncio.Event(), idle=0.05))
"""


def test_a_dispatcher_killed_mid_send_loses_nothing(
    app: App, db_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    ids = enqueue(app, 20)
    log_path = tmp_path / "delivered.log"
    log_path.touch()
    process = subprocess.Popen(
        [sys.executable, "-c", KILLABLE, db_url, str(log_path), "6", clock.now().isoformat()], cwd=REPO
    )
    try:
        deadline = time.monotonic() + 60
        while "blocked" not in log_path.read_text():  # waiting for another process, not for time
            assert process.poll() is None, "the dispatcher process died by itself"
            assert time.monotonic() < deadline, "the dispatcher process never reached the 6th send"
            time.sleep(0.05)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    first = [int(line) for line in log_path.read_text().split() if line.isdigit()]
    assert first == ids[:5]
    rows = outbox(app, "telegram")
    # claimed one at a time: only the row in the middle of its send is held, the rest never were
    assert [r.status for r in rows] == ["sent"] * 5 + ["sending"] + ["pending"] * 14
    assert [r.attempts for r in rows[6:]] == [0] * 14

    sender = FakeSender("telegram")
    survivor = dispatcher(app, clock, {"telegram": sender}, limits=NO_LIMITS)
    asyncio.run(survivor.run_once())  # no waiting for a lease: the owner is dead
    second = [m.id for m in sender.sent]
    assert sorted(first + second) == ids  # everything, once
    assert {r.status for r in outbox(app, "telegram")} == {"sent"}
    assert outbox(app, "telegram")[5].attempts == 2  # the interrupted send counted as an attempt


def _claimed_by(app: App, ids: list[int], owner: str, until: datetime) -> None:
    """Rows as a dispatcher ``owner`` left them: claimed, lease running."""
    with transaction(app.sessions) as session:
        for row in session.scalars(select(OutboxMessage).where(OutboxMessage.id.in_(ids))):
            row.status, row.attempts, row.claimed_by, row.claimed_until = "sending", 1, owner, until


def _dead_owner() -> str:
    """The claim token of a process that ran on this host and is gone."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    token = owner_token(process.pid)
    process.kill()
    process.wait()
    return token


async def test_start_up_releases_claims_of_dead_processes_at_once(app: App, clock: FixedClock) -> None:
    """Claims of a dead process on this host and this dispatcher's own leftover claims are sent on
    the first round, not after the lease; a live process's and another host's claims are left."""
    ids = enqueue(app, 4, urgent=True)
    lease = clock.now() + timedelta(seconds=45)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _claimed_by(app, ids[:1], _dead_owner(), lease)
        _claimed_by(app, ids[1:2], "me:1:1", lease)  # this dispatcher's own, from before a restart
        _claimed_by(app, ids[2:3], owner_token(live.pid), lease)
        _claimed_by(app, ids[3:], "otherhost:99:1", lease)
        sender = FakeSender("telegram")
        run = dispatcher(app, clock, {"telegram": sender}, owner="me:1:1")
        await run.run_once()
        assert sorted(m.id for m in sender.sent) == ids[:2]
        rows = outbox(app, "telegram")
        assert [r.status for r in rows] == ["sent", "sent", "sending", "sending"]
        assert rows[0].attempts == 2  # the interrupted send was an attempt
        _claimed_by(app, ids[:1], "me:1:1", lease)  # after the first round its own claims are live
        await run.run_once()
        assert outbox(app, "telegram")[0].status == "sending"
    finally:
        live.kill()
        live.wait()
    assert owner_alive(owner_token()) is True and owner_alive("otherhost:99:1") is None


async def test_a_failed_send_is_one_log_line_without_a_traceback(
    app: App, clock: FixedClock, caplog: pytest.LogCaptureFixture, bot_api: FakeTelegram
) -> None:
    """The reason in one line (error class, the peer's short message), never the chat id or the
    text; the channel library's traceback only at DEBUG."""
    enqueue(app, 1, recipient="5550001")
    bot_api.fail_next("sendMessage", 502, "Bad Gateway")
    bot = make_bot(replace(Settings(), telegram_token=TOKEN, telegram_api_url=f"{bot_api.url}/bot"))
    run = dispatcher(app, clock, {"telegram": TelegramSender(bot)})
    with caplog.at_level(logging.INFO):
        await run.run_once()
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1 and lines[0].name == "bot.dispatcher"
    line = lines[0].getMessage()
    assert "NetworkError" in line and "Bad Gateway" in line and "attempt 1" in line
    assert "5550001" not in line and "消息0" not in line
    assert lines[0].exc_info is None and "Traceback" not in caplog.text
    caplog.clear()
    clock.advance(minutes=1)
    bot_api.fail_next("sendMessage", 502, "Bad Gateway")
    with caplog.at_level(logging.DEBUG, logger="bot.dispatcher"):
        await run.run_once()
    assert any(r.exc_info for r in caplog.records if r.levelno == logging.DEBUG)
    await bot.shutdown()


@pytest.mark.postgres
def test_an_outcome_is_recorded_after_the_database_connection_is_lost(
    app: App, db_url: str, clock: FixedClock
) -> None:
    """The database connections die while a message is on its way: the delivery is recorded on a new
    connection once the mark can be made, so the message is not sent again."""
    if not db_url.startswith("postgresql"):
        pytest.skip("terminating backends is PostgreSQL's")
    ids = enqueue(app, 3, recipient="chat9")
    database = db_url.rsplit("/", 1)[1]

    class CutsTheDatabase(FakeSender):
        async def send(self, message: OutboundMessage) -> None:
            await super().send(message)
            if message.id == ids[0]:
                _terminate_backends(database)  # after the peer took it, before the mark

    sender = CutsTheDatabase("telegram")
    run = dispatcher(app, clock, {"telegram": sender}, limits=NO_LIMITS)
    for _ in range(3):
        asyncio.run(run.run_once())
    assert [m.id for m in sender.sent] == ids
    assert [(r.status, r.attempts) for r in outbox(app, "telegram")] == [("sent", 1)] * 3


def _terminate_backends(database: str) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        )


# -- one chat's order ------------------------------------------------------------------------------------
async def test_a_chats_newer_row_waits_behind_an_older_one_in_retry(app: App, clock: FixedClock) -> None:
    """The older row failed and waits for its retry: the newer one is not sent before it (another
    chat is not held, nor is an urgent row of the same chat)."""
    older, newer = enqueue(app, 2, recipient="42")
    [other] = enqueue(app, 1, recipient="43")
    sender = FakeSender("telegram", [TemporaryFailure("HTTP 502")])
    run = dispatcher(app, clock, {"telegram": sender}, DispatchConfig(backoff_base=30, concurrency=1))
    await run.run_once()
    assert [m.id for m in sender.sent] == [other]
    clock.advance(seconds=5)
    [urgent] = enqueue(app, 1, recipient="42", urgent=True)
    assert await run.run_once() == 1  # the urgent one; the newer plain one is not even planned
    clock.advance(seconds=30)
    for _ in range(3):
        await run.run_once()
        clock.advance(seconds=1)
    assert [m.id for m in sender.sent] == [other, urgent, older, newer]


async def test_a_second_dispatcher_does_not_overtake_a_row_in_flight(app: App, clock: FixedClock) -> None:
    older, newer = enqueue(app, 2, recipient="42")
    first = dispatcher(app, clock, {"telegram": FakeSender("telegram")}, owner="elsewhere:1:1")
    planned = first._plan(clock.now())
    assert first._claim(planned[0]) is not None  # the older row is on its way, from elsewhere
    sender = FakeSender("telegram")
    assert await dispatcher(app, clock, {"telegram": sender}).run_once() == 0
    staff = enqueue(app, 2, channel="staff", recipient="staff")  # the staff group is not held
    elsewhere = dispatcher(app, clock, {"staff": FakeSender("staff")}, owner="elsewhere:1:1")
    assert elsewhere._claim(elsewhere._plan(clock.now())[0]) is not None
    staff_sender = FakeSender("staff")
    await dispatcher(app, clock, {"staff": staff_sender}, limits=NO_LIMITS).run_once()
    assert [m.id for m in staff_sender.sent] == staff[1:] and sender.sent == []


def test_a_newer_answer_supersedes_replies_still_waiting(app: App, clock: FixedClock) -> None:
    """Replies deferred while the channel was down answer questions the resident has moved past:
    the next turn marks them superseded, with the reason, and the dispatcher never sends them."""
    from tests.conftest import Chat

    chat = Chat(app)
    chat.say("厨房水管漏水了")
    with transaction(app.sessions) as session:
        store = Store(session)
        stale = [store.enqueue("console", "demo", "reply", "请问什么时候方便上门？", clock.now())]
        stale.append(store.enqueue("console", "demo", "reply", "旧的回答", clock.now(), urgent=True))
        other = store.enqueue("console", "family", "reply", "别人的回答", clock.now())
        notice = store.enqueue("console", "demo", "notice", "停水通知", clock.now())
    clock.advance(seconds=30)
    assert "物业费" in chat.say("我家物业费还欠多少")
    rows = {r.id: r for r in outbox(app, "console")}
    assert rows[stale[0].id].status == "superseded"
    assert "newer message" in (rows[stale[0].id].last_error or "")
    assert rows[stale[1].id].status == "pending"  # urgent: kept
    assert rows[other.id].status == rows[notice.id].status == "pending"  # another chat; not a reply
    console = FakeSender("console")
    asyncio.run(dispatcher(app, clock, {"console": console}, limits=NO_LIMITS).run_once())
    assert "请问什么时候方便上门？" not in console.texts and "停水通知" in console.texts


# -- real HTTP -------------------------------------------------------------------------------------------
@pytest.fixture
def bot_api() -> Iterator[FakeTelegram]:
    with served(FakeTelegram(limits=Limits())) as fake:
        yield fake


async def test_retries_after_a_fake_servers_5xx_over_http(
    app: App, clock: FixedClock, bot_api: FakeTelegram
) -> None:
    bot_api.fail_next("sendMessage", 502, "Bad Gateway", times=2)
    bot_api.garbage_next("sendMessage")
    bot_api.blocked.add("777")
    enqueue(app, 1, recipient="100")
    enqueue(app, 1, recipient="777")
    sender = BotApiSender(f"{bot_api.url}/bot")
    try:
        run = dispatcher(app, clock, {"telegram": sender}, DispatchConfig(backoff_base=2, concurrency=1))
        for _ in range(6):
            await run.run_once()
            clock.advance(seconds=30)
    finally:
        await sender.aclose()
    assert [(c.params["chat_id"], c.params["text"]) for c in bot_api.sent()] == [("100", "消息0")]
    ok, blocked = outbox(app, "telegram")
    assert ok.status == "sent" and ok.attempts == 3  # 502, then garbage, then delivered
    assert blocked.status == "failed" and "blocked" in (blocked.last_error or "")
    assert bot_api.rejected_by == {}  # no 429s


async def test_telegrams_message_id_is_recorded_with_the_row(
    app: App, clock: FixedClock, bot_api: FakeTelegram
) -> None:
    enqueue(app, 1, recipient="100")
    enqueue(app, 1, recipient="101")
    bot = make_bot(replace(Settings(), telegram_token=TOKEN, telegram_api_url=f"{bot_api.url}/bot"))
    run = dispatcher(app, clock, {"telegram": TelegramSender(bot)}, limits=NO_LIMITS)
    await run.run_once()
    await bot.shutdown()
    sent = [str(c.result["message_id"]) for c in bot_api.sent_to("100") + bot_api.sent_to("101")]
    assert [r.sent_ref for r in outbox(app, "telegram")] == sent == ["1", "1"]  # numbered per chat
