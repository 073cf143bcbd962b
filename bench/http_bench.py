"""``/wechat`` and ``/telegram`` over loopback: throughput and p50/p99 latency with concurrent clients,
on SQLite and PostgreSQL.

``propbot serve`` runs as its own process (as in production) against a scratch database with the demo
compound; a fake Telegram Bot API runs in another process and takes the bot's replies. Each client is
one resident (a bound WeChat openid or Telegram chat) who sends the next message when the previous one
is answered: a realistic mix of fee queries, status queries, repairs (with their dialog) and small
talk. WeChat callbacks are signed and AES-encrypted beforehand, exactly as WeChat sends them.

    uv run python bench/http_bench.py [--clients 50] [--requests 2000] [--backends sqlite postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import free_port, percentile, scratch_database, served_in_process, wait_until_up  # noqa: E402
from tests.fakes import telegram_api, wechat_api  # noqa: E402
from tests.fakes.wechat_api import Callbacks, message_xml  # noqa: E402

SECRET = "bench-secret"
STAFF_CHAT = "-1009999"

# One resident's messages, in order, repeated (a day's mix, as in bench/engine_bench.py).
SCRIPT = (
    "你好",
    "我家物业费还欠多少",
    "厨房水管漏水了",
    "尽快",
    "确认",
    "我报的修什么时候来",
    "物业电话多少",
    "谢谢",
)


# -- the processes ------------------------------------------------------------------------------------
def _fake_telegram(port: int) -> None:
    import uvicorn

    uvicorn.run(telegram_api.FakeTelegram().app, host="127.0.0.1", port=port, log_level="error")


def fake_telegram() -> AbstractContextManager[tuple[str, int]]:
    return served_in_process(_fake_telegram, health=f"/bot{telegram_api.TOKEN}/getMe")


@contextmanager
def propbot(
    database_url: str, telegram_url: str, staff_group: bool = True, workers: int = 1
) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TELEGRAM_TOKEN": telegram_api.TOKEN,
        "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_URL": f"{telegram_url}/bot",
        **({"TELEGRAM_STAFF_CHAT_ID": STAFF_CHAT} if staff_group else {}),
        "WECHAT_APP_ID": wechat_api.APP_ID,
        "WECHAT_TOKEN": wechat_api.TOKEN,
        "WECHAT_AES_KEY": wechat_api.AES_KEY,
    }
    command = [
        sys.executable,
        "-c",
        "import sys; from bot.cli import main; sys.exit(main())",
        "serve",
        "--demo",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    log_path = Path(tempfile.gettempdir()) / f"propbot-bench-{port}.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            command,
            env=env,
            cwd=Path(__file__).resolve().parents[1],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_until_up(f"http://127.0.0.1:{port}/healthz", server, str(log_path))
            yield f"http://127.0.0.1:{port}", server.pid
        except Exception:
            print(f"server log: {log_path}", file=sys.stderr)
            raise
        finally:
            server.terminate()
            server.wait(timeout=30)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time so far of a process and its descendants (the server's workers);
    Linux /proc, 0 elsewhere."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        process = int(stat.parent.name)
        parents[process] = int(fields[1])
        times[process] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    tree, grew = {pid}, True
    while grew:
        children = {p for p, parent in parents.items() if parent in tree} - tree
        tree |= children
        grew = bool(children)
    return sum(times.get(p, 0.0) for p in tree)


def bind_accounts(database_url: str, clients: int) -> tuple[list[str], list[int]]:
    """Bind one WeChat openid and one Telegram chat per client to demo residents (round robin)."""
    from sqlalchemy import select

    from bot.app import App
    from bot.settings import Settings
    from data.clock import SystemClock
    from data.db import transaction
    from data.models import Resident
    from data.store import Store

    app = App(Settings(database_url=database_url), SystemClock())
    openids = [f"oBENCH{i:04d}{'x' * 18}" for i in range(clients)]
    chats = [7_000_000 + i for i in range(clients)]
    try:
        with transaction(app.sessions) as session:
            store = Store(session)
            residents = list(session.scalars(select(Resident).order_by(Resident.id).limit(clients * 2)))
            for i in range(clients):
                resident = residents[(2 * i) % len(residents)]  # every other resident: distinct units
                for channel, external in (("wechat", openids[i]), ("telegram", str(chats[i]))):
                    store.bind(store.account(channel, external), resident, app.clock.now())
    finally:
        app.close()
    return openids, chats


# -- the load ------------------------------------------------------------------------------------------
@dataclass
class Result:
    endpoint: str
    latencies: list[float]
    errors: int
    seconds: float
    server_cpu: float = 0.0  # seconds of the server process's CPU during the run
    bench_cpu: float = 0.0  # seconds of the load generator's and the fake Telegram's CPU (same cores)

    def row(self, backend: str) -> str:
        ms = sorted(x * 1000 for x in self.latencies)
        return (
            f"| {backend} | `{self.endpoint}` | {len(ms)} | {len(ms) / self.seconds:,.0f} | "
            f"{statistics.median(ms):.1f} | {percentile(ms, 0.90):.1f} | {percentile(ms, 0.99):.1f} | "
            f"{ms[-1]:.0f} | "
            f"{self.server_cpu / len(ms) * 1000:.1f} | {self.bench_cpu / len(ms) * 1000:.1f} | "
            f"{self.errors} |"
        )


Request = tuple[str, dict[str, Any]]  # path and httpx.post keyword arguments


def telegram_requests(chats: list[int], per_client: int) -> list[list[Request]]:
    updates = telegram_api.Updates()
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    return [
        [
            ("/telegram", {"json": updates.text(chat, SCRIPT[n % len(SCRIPT)]), "headers": headers})
            for n in range(per_client)
        ]
        for chat in chats
    ]


def wechat_requests(openids: list[str], per_client: int) -> list[list[Request]]:
    """Signed and AES-encrypted beforehand, so the clients spend nothing on crypto."""
    callbacks = Callbacks(aes=True)
    created = int(time.time())
    scripts = []
    for c, openid in enumerate(openids):
        script = []
        for n in range(per_client):
            xml = message_xml(openid, "text", created + n, 10_000 * c + n, Content=SCRIPT[n % len(SCRIPT)])
            path, body = callbacks.build(xml)
            script.append((path, {"content": body, "headers": {"Content-Type": "text/xml"}}))
        scripts.append(script)
    return scripts


async def run_load(base: str, endpoint: str, scripts: list[list[Request]], telegram: str = "") -> Result:
    """Each script on its own keep-alive connection, as WeChat's and Telegram's servers keep theirs;
    the connections are opened before the clock starts. (One shared httpx pool for all clients
    starved some of them for seconds: a client-side tail, not the server's.)

    With ``telegram`` (the fake Bot API), a client also plays Telegram's part after each answer: the
    call a webhook's answer carries (the reply) is made there, outside the measured time, as the
    answer is the moment the reply is in Telegram's hands (as with WeChat's passive reply)."""
    latencies: list[float] = []
    errors = 0
    one_connection = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [httpx.AsyncClient(base_url=base, limits=one_connection, timeout=30) for _ in scripts]
    executors = [httpx.AsyncClient(base_url=telegram, limits=one_connection, timeout=30) for _ in scripts]
    try:
        await asyncio.gather(*(client.get("/healthz") for client in clients))

        async def one_client(
            client: httpx.AsyncClient, executor: httpx.AsyncClient, script: list[Request]
        ) -> None:
            nonlocal errors
            for path, options in script:
                started = time.perf_counter()
                try:
                    response = await client.post(path, **options)
                    ok = response.status_code == 200
                except httpx.TransportError as exc:
                    print(f"{endpoint}: {type(exc).__name__}: {exc}", file=sys.stderr)
                    ok = False
                latencies.append(time.perf_counter() - started)
                errors += not ok
                if ok and telegram:
                    ok = await execute_webhook_answer(executor, response)
                    errors += not ok

        started = time.perf_counter()
        await asyncio.gather(*(one_client(*c) for c in zip(clients, executors, scripts, strict=True)))
        return Result(endpoint, latencies, errors, time.perf_counter() - started)
    finally:
        await asyncio.gather(*(client.aclose() for client in clients + executors))


async def execute_webhook_answer(telegram: httpx.AsyncClient, response: httpx.Response) -> bool:
    """Make the Bot API call a webhook's answer carries; False if there was none (every message of
    the script gets a reply) or the fake refused it."""
    answer = response.json()
    method = answer.pop("method", None)
    if method is None:
        return False
    return (await telegram.post(f"/bot{telegram_api.TOKEN}/{method}", json=answer)).status_code == 200


def measured(
    base: str, pids: tuple[int, int], endpoint: str, scripts: list[list[Request]], telegram: str = ""
) -> Result:
    """The run's latencies, and the CPU spent on it by the server (``pids[0]``) and by the load
    generator with the fake Telegram (``pids[1]``)."""
    server, fake = pids
    before, bench_before = cpu_seconds(server), cpu_seconds(fake) + time.process_time()
    result = asyncio.run(run_load(base, endpoint, scripts, telegram))
    result.server_cpu = cpu_seconds(server) - before
    result.bench_cpu = cpu_seconds(fake) + time.process_time() - bench_before
    return result


def bench_backend(backend: str, clients: int, requests: int, staff_group: bool, workers: int) -> list[Result]:
    per_client = max(1, requests // clients)
    with (
        scratch_database(backend) as url,
        fake_telegram() as (telegram_url, fake_pid),
        propbot(url, telegram_url, staff_group, workers) as (base, pid),
    ):
        openids, chats = bind_accounts(url, clients + 1)
        # a spare resident's first messages load the NLU and fill the connection pools
        warm = 2 * workers  # every worker loads its NLU model and fills its pools
        for path, options in wechat_requests(openids[-1:], warm)[0] + telegram_requests(chats[-1:], warm)[0]:
            httpx.post(base + path, timeout=60, **options)
        return [
            measured(base, (pid, fake_pid), "/wechat", wechat_requests(openids[:clients], per_client)),
            measured(
                base,
                (pid, fake_pid),
                "/telegram",
                telegram_requests(chats[:clients], per_client),
                telegram_url,
            ),
        ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000, help="per endpoint and backend")
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--workers", type=int, default=1, help="server processes (propbot serve --workers)")
    parser.add_argument(
        "--no-staff-group",
        action="store_true",
        help="no Telegram staff group (its cards are then not dispatched during the run)",
    )
    args = parser.parse_args()
    print(f"{args.clients} concurrent clients, {args.requests} requests per endpoint; CPUs: {os.cpu_count()}")
    print(
        "| database | endpoint | requests | req/s | p50 ms | p90 ms | p99 ms | max ms | server CPU ms/req "
        "| client + fake CPU ms/req | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for backend in args.backends:
        for result in bench_backend(
            backend, args.clients, args.requests, not args.no_staff_group, args.workers
        ):
            print(
                result.row(backend if args.workers == 1 else f"{backend}, {args.workers} workers"), flush=True
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
