"""Fault drill: real ``propbot serve`` processes on one PostgreSQL database, a fake Telegram Bot API
(and a fake WeChat API) on localhost, and faults thrown at them while they deliver.

Scenarios (each on a fresh copy of the demo compound):

* ``kill9_during_dispatch``: 240 messages to 120 resident chats being delivered; emergency cards
  written, the server killed with SIGKILL in the middle of its sends, a new server started.
* ``postgres_connections_killed``: every connection of the server to the database terminated
  (``pg_terminate_backend``) twice while it delivers; emergency cards written after the first cut.
* ``telegram_429_and_5xx``: the fake answers 429 with ``retry_after`` 3 s, then a storm of 502s,
  while messages and emergency cards wait.
* ``wechat_retries_while_running``: ten residents report emergencies on WeChat; each callback is
  posted three times at once (WeChat's retries arriving while the first attempt still runs).
* ``two_servers_one_postgres``: two servers, both running the dispatcher and the scheduler, on one
  database, delivering the same outbox; emergency cards written while they do.

Each reports ``lost`` (a message that never reached the fake), ``duplicated`` (deliveries beyond
the first, per message) and ``worst_emergency_delay_s`` (from the card's row being written, or the
resident's first post, to the fake receiving it). Messages are told apart by a marker in their text.

    uv run python bench/fault_drill.py --json [--scenario NAME ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402

from bench.common import PG_ADMIN, free_port, scratch_database, wait_until_up  # noqa: E402
from data.clock import SystemClock  # noqa: E402
from data.db import make_engine, make_session_factory, migrate, transaction  # noqa: E402
from data.demo import load_demo  # noqa: E402
from data.models import ChannelAccount, OutboxMessage, Ticket  # noqa: E402
from data.store import Store  # noqa: E402
from tests.fakes import telegram_api, wechat_api  # noqa: E402
from tests.fakes.serve import served  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
STAFF_CHAT = "-1001234567890"
SECRET = "drill-secret"
MARK = re.compile(r"drill#([A-Za-z0-9-]+)")
CHATS = [str(7_000_000 + i) for i in range(120)]


# -- the fake Telegram, with the answer's trip back -----------------------------------------------------
class SlowTelegram(telegram_api.FakeTelegram):
    """Records a message as delivered, then takes ``latency`` to answer: a process killed in that
    gap has had its message delivered without knowing it (the real at-least-once window)."""

    latency = 0.03

    async def _endpoint(self, request: Request) -> Response:
        response = await super()._endpoint(request)
        if request.path_params.get("method", "").startswith("send"):
            await asyncio.sleep(self.latency)
        return response

    def markers(self) -> Counter[str]:
        found: Counter[str] = Counter()
        for call in self.sent():
            found.update(MARK.findall(str(call.params.get("text", ""))))
        return found

    def first_seen(self) -> dict[str, float]:
        seen: dict[str, float] = {}
        for call in self.sent():
            for mark in MARK.findall(str(call.params.get("text", ""))):
                seen.setdefault(mark, call.at)
        return seen


# -- the database and the servers ---------------------------------------------------------------------
def prepare(url: str) -> None:
    engine = make_engine(url)
    try:
        migrate(engine)
        now = SystemClock().now()
        with transaction(make_session_factory(engine)) as session:
            store = Store(session)
            load_demo(store, now)
            for chat in CHATS:  # residents who just wrote: quiet hours do not hold their messages
                store.account("telegram", chat).last_inbound_at = now
    finally:
        engine.dispose()


@dataclass
class Outbox:
    url: str

    def __post_init__(self) -> None:
        self.engine = make_engine(self.url)
        self.sessions = make_session_factory(self.engine)
        self.written: dict[str, float] = {}  # marker -> monotonic time its row was committed

    def enqueue(self, prefix: str, count: int, *, emergency: bool = False) -> list[str]:
        now = SystemClock().now()
        marks = [f"{prefix}-{i}" for i in range(count)]
        with transaction(self.sessions) as session:
            store = Store(session)
            for index, mark in enumerate(marks):
                if emergency:
                    text = f"【紧急】电梯困人 3栋 drill#{mark}"
                    store.enqueue("staff", "staff", "emergency", text, now, urgent=True)
                else:
                    store.enqueue("telegram", CHATS[index % len(CHATS)], "notice", f"通知 drill#{mark}", now)
        at = time.monotonic()
        self.written.update(dict.fromkeys(marks, at))
        return marks

    def unfinished(self) -> int:
        with self.sessions() as session:
            return (
                session.query(OutboxMessage).filter(OutboxMessage.status.in_(("pending", "sending"))).count()
            )

    def close(self) -> None:
        self.engine.dispose()


@contextmanager
def server(url: str, telegram: str, wechat: str | None = None) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "PORT": str(port),
        "TELEGRAM_TOKEN": telegram_api.TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_URL": f"{telegram}/bot",
        "TELEGRAM_STAFF_CHAT_ID": STAFF_CHAT,
    }
    if wechat:
        env.update(
            WECHAT_APP_ID=wechat_api.APP_ID,
            WECHAT_APP_SECRET=wechat_api.APP_SECRET,
            WECHAT_TOKEN=wechat_api.TOKEN,
            WECHAT_API_URL=f"{wechat}/cgi-bin/",
        )
    command = [sys.executable, "-c", "import sys; from bot.cli import main; sys.exit(main())", "serve"]
    log_path = Path(tempfile.gettempdir()) / f"propbot-drill-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True
        )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", process, str(log_path))
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"drill: {what} did not happen within {timeout:g}s")
        time.sleep(0.05)


def report(fake: SlowTelegram, outbox: Outbox, emergencies: list[str], **extra: Any) -> dict[str, Any]:
    seen = fake.markers()
    first = fake.first_seen()
    delays = [first[m] - outbox.written[m] for m in emergencies if m in first]
    if os.environ.get("DRILL_DEBUG"):
        print({m: round(first.get(m, -1) - outbox.written[m], 2) for m in emergencies}, file=sys.stderr)
    return {
        "lost": sum(1 for mark in outbox.written if seen[mark] == 0),
        "duplicated": sum(count - 1 for count in seen.values() if count > 1),
        "worst_emergency_delay_s": round(max(delays), 2) if delays else None,
        "messages": len(outbox.written),
        **extra,
    }


@contextmanager
def drill(wechat: bool = False) -> Iterator[tuple[str, SlowTelegram, Outbox, str]]:
    with ExitStack() as stack:
        url = stack.enter_context(scratch_database("postgres"))
        prepare(url)
        fake = stack.enter_context(served(SlowTelegram(limits=telegram_api.Limits())))
        wechat_url = stack.enter_context(served(wechat_api.FakeWeChat())).url if wechat else ""
        outbox = Outbox(url)
        stack.callback(outbox.close)
        yield url, fake, outbox, wechat_url


# -- scenarios ------------------------------------------------------------------------------------------
def kill9_during_dispatch() -> dict[str, Any]:
    with drill() as (url, fake, outbox, _):
        outbox.enqueue("k", 240)
        with server(url, fake.url) as (first, _):
            wait_for(lambda: sum(fake.markers().values()) >= 60, 60, "the first sends")
            emergencies = outbox.enqueue("kE", 3, emergency=True)
            time.sleep(0.05)  # the round has planned them, some may be on their way
            os.kill(first.pid, signal.SIGKILL)
            first.wait()
        in_flight = outbox.unfinished()
        killed_at = time.monotonic()
        with server(url, fake.url):
            restarted = time.monotonic() - killed_at
            wait_for(lambda: outbox.unfinished() == 0, 120, "delivery after the restart")
            time.sleep(0.5)
        return report(fake, outbox, emergencies, left_at_kill=in_flight, restart_s=round(restarted, 2))


def postgres_connections_killed() -> dict[str, Any]:
    with drill() as (url, fake, outbox, _):
        outbox.enqueue("p", 240)
        database = url.rsplit("/", 1)[1]
        with server(url, fake.url):
            wait_for(lambda: sum(fake.markers().values()) >= 40, 60, "the first sends")
            outbox.engine.dispose()  # the drill's own connections are not the server's: keep them out
            cut = terminate_backends(database)
            emergencies = outbox.enqueue("pE", 3, emergency=True)
            wait_for(lambda: sum(fake.markers().values()) >= 150, 60, "more sends")
            outbox.engine.dispose()
            cut += terminate_backends(database)
            wait_for(lambda: outbox.unfinished() == 0, 120, "delivery after the cuts")
            time.sleep(0.5)
        return report(fake, outbox, emergencies, connections_terminated=cut)


def terminate_backends(database: str) -> int:
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (database,),
        ).fetchall()
    return len(rows)


def telegram_429_and_5xx() -> dict[str, Any]:
    with drill() as (url, fake, outbox, _):
        outbox.enqueue("t", 120)
        fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 3", retry_after=3, times=4)
        fake.fail_next("sendMessage", 502, "Bad Gateway", times=60)
        emergencies = outbox.enqueue("tE", 3, emergency=True)
        with server(url, fake.url):
            wait_for(lambda: outbox.unfinished() == 0, 180, "delivery through the storm")
            time.sleep(0.5)
        refused = sum(1 for c in fake.calls("sendMessage") if not c.ok)
        return report(fake, outbox, emergencies, refused_sends=refused)


def wechat_retries_while_running() -> dict[str, Any]:
    with drill(wechat=True) as (url, fake, outbox, wechat_url):
        callbacks = wechat_api.Callbacks(aes=False)
        openids = [f"oDRILL{i:04d}xxxxxxxxxxxxxxxxxx" for i in range(10)]
        with server(url, fake.url, wechat_url) as (_, base):
            posted = asyncio.run(post_emergencies(base, callbacks, openids))
            wait_for(lambda: len(cards(fake)) >= len(openids), 60, "the emergency cards")
            time.sleep(1.0)  # anything doubled would arrive by now
            tickets = emergency_tickets(outbox)
        numbers = Counter(n for text in cards(fake) for n in re.findall(r"[A-Z]{2}-\d{8}-\d{4}", text)[:1])
        first_card = {}
        for call in fake.sent_to(STAFF_CHAT):
            for number in re.findall(r"[A-Z]{2}-\d{8}-\d{4}", str(call.params.get("text", "")))[:1]:
                first_card.setdefault(number, call.at)
        delays = [first_card[n] - posted[openid] for n, openid in tickets.items() if n in first_card]
        return {
            "lost": len(openids) - len({openid for openid in tickets.values()}),
            "duplicated": (len(tickets) - len(set(tickets.values())))
            + sum(count - 1 for count in numbers.values() if count > 1),
            "worst_emergency_delay_s": round(max(delays), 2) if delays else None,
            "messages": len(openids),
            "callbacks_posted": 3 * len(openids),
        }


async def post_emergencies(
    base: str, callbacks: wechat_api.Callbacks, openids: list[str]
) -> dict[str, float]:
    """Each resident's callback three times at once; when each was first posted."""
    posted: dict[str, float] = {}
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        jobs = []
        for index, openid in enumerate(openids):
            xml = wechat_api.message_xml(
                openid, "text", int(time.time()), 9_000_000 + index, Content="电梯里有人被困住了，快来人"
            )
            path, body = callbacks.build(xml)
            posted[openid] = time.monotonic()
            for _ in range(3):
                jobs.append(client.post(path, content=body, headers={"Content-Type": "text/xml"}))
        answers = await asyncio.gather(*jobs)
    bad = [a.status_code for a in answers if a.status_code != 200]
    if bad:
        raise RuntimeError(f"drill: WeChat callbacks answered {bad}")
    return posted


def cards(fake: SlowTelegram) -> list[str]:
    return [
        str(c.params.get("text", ""))
        for c in fake.sent_to(STAFF_CHAT)
        if "紧急" in str(c.params.get("text", ""))
    ]


def emergency_tickets(outbox: Outbox) -> dict[str, str]:
    """Ticket number -> the reporting openid, for every emergency ticket."""
    with outbox.sessions() as session:
        rows = (
            session.query(Ticket.number, ChannelAccount.external_id)
            .outerjoin(ChannelAccount, Ticket.account_id == ChannelAccount.id)
            .filter(Ticket.kind == "emergency")
        )
        return {number: external_id or "" for number, external_id in rows}


def two_servers_one_postgres() -> dict[str, Any]:
    with drill() as (url, fake, outbox, _):
        overdue_tickets(outbox, 5)  # the time-limit sweep (every 30 s, in both servers) escalates them
        outbox.enqueue("d", 240)
        with server(url, fake.url), server(url, fake.url):
            emergencies = outbox.enqueue("dE", 3, emergency=True)
            wait_for(lambda: sum(fake.markers().values()) >= 100, 60, "the first sends")
            emergencies += outbox.enqueue("dE2", 3, emergency=True)
            wait_for(lambda: scheduler_rows(outbox) >= 5, 90, "the escalations")
            wait_for(lambda: outbox.unfinished() == 0, 180, "delivery by both")
            time.sleep(2.0)
            swept = scheduler_rows(outbox)
        others = Counter(
            (str(c.params.get("chat_id")), str(c.params.get("text")))
            for c in fake.sent()
            if not MARK.search(str(c.params.get("text", "")))
        )
        result = report(fake, outbox, emergencies, scheduler_rows=swept)
        result["duplicated"] += sum(count - 1 for count in others.values() if count > 1)
        return result


def overdue_tickets(outbox: Outbox, count: int) -> None:
    """Repairs reported two days ago that nobody took: past every time limit."""
    from flows.domain.tickets import NewTicket, open_ticket

    then = SystemClock().now() - timedelta(days=2)
    with transaction(outbox.sessions) as session:
        store = Store(session)
        for index in range(count):
            new = NewTicket("repair", f"楼道灯不亮 {index}", category="lighting", area="common")
            open_ticket(store, store.compound(), None, new, then, "drill")


def scheduler_rows(outbox: Outbox) -> int:
    """Escalations the sweeps wrote (each under its dedupe key, so a second server's sweep finds it)."""
    with outbox.sessions() as session:
        made = OutboxMessage.dedupe_key.is_not(None), OutboxMessage.kind != "new_ticket"
        return session.query(OutboxMessage).filter(*made).count()


SCENARIOS: dict[str, Callable[[], dict[str, Any]]] = {
    "kill9_during_dispatch": kill9_during_dispatch,
    "postgres_connections_killed": postgres_connections_killed,
    "telegram_429_and_5xx": telegram_429_and_5xx,
    "wechat_retries_while_running": wechat_retries_while_running,
    "two_servers_one_postgres": two_servers_one_postgres,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="run only these")
    args = parser.parse_args()
    results = {}
    started = datetime.now(UTC)
    for name in args.scenario or list(SCENARIOS):
        results[name] = SCENARIOS[name]()
        if not args.json:
            print(name, results[name], file=sys.stderr)
    out = {"scenarios": results, "started": started.isoformat(timespec="seconds")}
    print(json.dumps(out, ensure_ascii=False, indent=None if args.json else 2))
    return 0 if all(r["lost"] == 0 for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
