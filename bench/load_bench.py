"""Open-loop load on ``propbot serve``: residents' messages arrive on a fixed schedule at ``--rate`` per
second whether or not earlier ones were answered, and latency runs from each message's scheduled
time, so a server that falls behind shows its queue (a closed loop, bench/http_bench.py, slows its
clients down instead).

The server is its own process on a scratch database with the demo compound (SQLite or PostgreSQL),
with a fake Telegram Bot API in another process (tests/fakes) taking the staff cards, answered
callback queries and replies sent before the webhook's answer. The traffic is residents talking, not
single messages: repair forms to the end (typed, with buttons, with a photo, in a common area),
complaints, fee questions, ticket status and small talk, mostly as Telegram webhook updates, some as
signed and AES-encrypted WeChat callbacks. Each resident waits a few seconds between messages (its
replies come long before), so its messages stay in order. A message that failed (5xx, timeout) is
delivered once more a second later, as Telegram and WeChat do.

Then the same requests at the same rate go to the floor: a bare Starlette + uvicorn app that parses
the body (JSON or XML) and answers 200. The server's CPU per message (the process tree's user +
system time from /proc) is compared with the floor's.

``lost``: messages with no reply in their answer and none recorded in the store (inbound_messages);
``duplicated``: tickets beyond one per finished repair or complaint dialog of an account.

    uv run python bench/load_bench.py [--rate 150 --seconds 20 --backend sqlite --workers 1] [--json]
    uv run python bench/load_bench.py --sweep --backend postgres --sweep-workers 1 2 4 \\
        --out var/load_sweep.json --plot docs/load_curve.png
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile, scratch_database, served_in_process  # noqa: E402
from bench.http_bench import SECRET, cpu_seconds, fake_telegram, propbot  # noqa: E402

TELEGRAM, WECHAT = "telegram", "wechat"
TARGET_P99_MS = 100.0


# -- what residents say --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Step:
    kind: str  # "text" | "press" (an inline button; typed on WeChat) | "photo" (with a caption)
    text: str


def _say(*texts: str) -> tuple[Step, ...]:
    return tuple(Step("text", t) for t in texts)


def _press(*buttons: str) -> tuple[Step, ...]:
    return tuple(Step("press", b) for b in buttons)


# (name, weight, steps, makes a ticket). Every step gets a reply; the forms go to the end.
CONVERSATIONS: tuple[tuple[str, int, tuple[Step, ...], bool], ...] = (
    ("repair_typed", 12, _say("卧室的灯坏了", "明天上午", "确认"), True),
    ("repair_buttons", 12, (Step("text", "厨房水管漏水了"), *_press("尽快", "确认")), True),
    ("repair_common", 6, (*_say("电梯坏了", "3栋2单元电梯"), *_press("确认")), True),
    (
        "repair_photo",
        8,
        (Step("photo", "卫生间天花板漏水"), *_press("尽快", "确认")),
        True,
    ),
    ("complaint", 6, _say("我要投诉楼下晚上太吵了", "5栋楼下", "每天晚上", "尽快处理", "确认"), True),
    ("fee_owed", 16, _say("我家物业费还欠多少"), False),
    ("fee_how", 6, _say("物业费怎么交"), False),
    ("status", 16, _say("我报的修什么时候来"), False),
    ("phone", 6, _say("物业电话多少"), False),
    ("hello", 6, _say("你好"), False),
    ("thanks", 6, _say("谢谢"), False),
)
WECHAT_SHARE = 0.15  # of the residents
THINK_S = (2.0, 6.0)  # between a resident's messages inside a conversation
BETWEEN_S = (8.0, 20.0)  # between one conversation and the resident's next


@dataclass
class Resident:
    index: int
    channel: str
    steps: deque[Step] = field(default_factory=deque)
    tickets: int = 0  # ticket-making conversations finished


@dataclass(frozen=True)
class Planned:
    at: float  # seconds after the start
    resident: int
    step: Step


@dataclass
class Plan:
    messages: list[Planned]
    residents: list[Resident]
    mix: Counter[str]


def plan(rate: float, seconds: float, seed: int) -> Plan:
    """Arrivals every ``1 / rate`` s; each goes to a resident who is ready for their next message
    (a new resident when none is), so the population grows to about rate x think time."""
    rng = random.Random(seed)
    weights = [w for _, w, _, _ in CONVERSATIONS]
    residents: list[Resident] = []
    ready: deque[Resident] = deque()
    waiting: list[tuple[float, Resident]] = []
    messages, mix = [], Counter[str]()
    for k in range(int(rate * seconds)):
        at = k / rate
        ready.extend(r for t, r in waiting if t <= at)
        waiting = [(t, r) for t, r in waiting if t > at]
        if not ready:
            channel = WECHAT if rng.random() < WECHAT_SHARE else TELEGRAM
            ready.append(Resident(len(residents), channel))
            residents.append(ready[-1])
        resident = ready.popleft()
        if not resident.steps:
            name, _, steps, ticket = rng.choices(CONVERSATIONS, weights)[0]
            resident.steps.extend(steps)
            resident.tickets += ticket
            mix[name] += 1
        messages.append(Planned(at, resident.index, resident.steps.popleft()))
        pause = THINK_S if resident.steps else BETWEEN_S
        waiting.append((at + rng.uniform(*pause), resident))
    for resident in residents:  # a conversation cut off by the end of the run makes no ticket
        resident.tickets -= bool(resident.steps) and _makes_ticket(resident.steps)
    return Plan(messages, residents, mix)


def _makes_ticket(rest: deque[Step]) -> bool:
    return rest[-1].text == "确认"


# -- the requests, built beforehand ------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    at: float
    path: str
    body: bytes
    headers: dict[str, str]
    channel: str
    message_id: str  # as the server records it (inbound_messages.message_id)


def chat_id(offset: int, resident: int) -> int:
    return 7_000_000 + offset + resident


def openid(offset: int, resident: int) -> str:
    return f"oLOAD{offset + resident:07d}{'x' * 16}"


def build_requests(the_plan: Plan, offset: int) -> list[Request]:
    """Telegram updates (JSON with the secret header) and WeChat callbacks (signed and encrypted)."""
    from tests.fakes.telegram_api import Updates
    from tests.fakes.wechat_api import Callbacks

    updates, callbacks = Updates(), Callbacks(aes=True)
    callbacks._nonce = offset * 100  # nonces unique across runs: a (timestamp, nonce) is claimed once
    msg_ids = iter(range(10**12 + offset * 10**4, 10**13))
    created = int(time.time())
    built = []
    for item in the_plan.messages:
        resident = the_plan.residents[item.resident]
        if resident.channel == TELEGRAM:
            built.append(_telegram(updates, item, chat_id(offset, item.resident)))
        else:
            xml_id = next(msg_ids)
            built.append(_wechat(callbacks, item, openid(offset, item.resident), created, xml_id))
    return built


def _telegram(updates: Any, item: Planned, chat: int) -> Request:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    if item.step.kind == "press":
        update = updates.callback(chat, item.step.text)
        message_id = f"cb:{update['callback_query']['id']}"
    else:
        content: dict[str, Any] = {"text": item.step.text}
        if item.step.kind == "photo":
            sizes = [(90, 60), (320, 240), (1280, 960)]
            name = f"p{chat}-{int(item.at * 1000)}"
            photo = [
                {"file_id": f"{name}-{w}", "file_unique_id": f"u{name}{w}", "width": w, "height": h}
                for w, h in sizes
            ]
            content = {"photo": photo, "caption": item.step.text}
        update = updates.message(chat, **content)
        message_id = f"{chat}:{update['message']['message_id']}"
    body = json.dumps(update, ensure_ascii=False).encode()
    return Request(item.at, "/telegram", body, headers, TELEGRAM, message_id)


def _wechat(callbacks: Any, item: Planned, sender: str, created: int, msg_id: int) -> Request:
    from tests.fakes.wechat_api import message_xml

    xml = message_xml(sender, "text", created + int(item.at), msg_id, Content=item.step.text)
    path, body = callbacks.build(xml)
    return Request(item.at, path, body, {"Content-Type": "text/xml"}, WECHAT, str(msg_id))


# -- the accounts ---------------------------------------------------------------------------------------
def bind_accounts(database_url: str, residents: Sequence[Resident], offset: int) -> None:
    """One bound account per planned resident. The demo has 150 residents in 432 flats: a household
    member is added to each flat without one, and accounts go round the flats (then share them)."""
    from sqlalchemy import select

    from bot.app import App
    from bot.settings import Settings
    from data.clock import SystemClock
    from data.db import transaction
    from data.models import Resident as Person
    from data.models import Unit
    from data.store import Store

    app = App(Settings(database_url=database_url), SystemClock())
    try:
        with transaction(app.sessions) as session:
            people = list(session.scalars(select(Person).order_by(Person.id)))
            housed = {p.unit_id for p in people}
            for unit in session.scalars(select(Unit).order_by(Unit.id)):
                if unit.id not in housed:
                    person = Person(unit_id=unit.id, name=f"住户{unit.id}", phone=f"139{unit.id:08d}")
                    session.add(person)
                    people.append(person)
            session.flush()
            store, now = Store(session), app.clock.now()
            for resident in residents:
                external = (
                    str(chat_id(offset, resident.index))
                    if resident.channel == TELEGRAM
                    else openid(offset, resident.index)
                )
                person = people[(offset + resident.index) % len(people)]
                store.bind(store.account(resident.channel, external), person, now)
    finally:
        app.close()


# -- the floor -------------------------------------------------------------------------------------------
def _floor_app() -> Any:
    from xml.etree import ElementTree

    from starlette.applications import Starlette
    from starlette.requests import Request as HttpRequest
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def telegram(request: HttpRequest) -> Response:
        json.loads(await request.body())
        return JSONResponse({"ok": True})

    async def wechat(request: HttpRequest) -> Response:
        ElementTree.fromstring(await request.body())
        return Response("success")

    async def healthz(_: HttpRequest) -> Response:
        return JSONResponse({"status": "ok"})

    routes = [
        Route("/telegram", telegram, methods=["POST"]),
        Route("/wechat", wechat, methods=["POST"]),
        Route("/healthz", healthz),
    ]
    return Starlette(routes=routes)


def _serve_floor(port: int, workers: int) -> None:
    import uvicorn

    options: dict[str, Any] = {"host": "127.0.0.1", "port": port, "log_level": "error"}
    options |= {"access_log": False, "server_header": False}
    if workers == 1:
        uvicorn.run(_floor_app(), **options)
    else:
        # uvicorn hands its workers our stdin, which multiprocessing has already closed: none, then.
        sys.stdin = None  # type: ignore[assignment]
        uvicorn.run("bench.load_bench:_floor_app", factory=True, workers=workers, **options)


def floor(workers: int) -> AbstractContextManager[tuple[str, int]]:
    return served_in_process(_serve_floor, workers, health="/healthz")


# -- the open loop ---------------------------------------------------------------------------------------
@dataclass
class Outcome:
    lag: float = 0.0  # the send's start after its scheduled time (the client's own delay)
    latency: float = 0.0  # from the scheduled time to the answer's last byte
    status: int = 0  # 0: no answer (timeout, connection error)
    replied: bool = False  # the answer carries the reply (Telegram's sendMessage, WeChat's XML)
    redelivered: bool = False


async def open_loop(base: str, requests: Sequence[Request], timeout: float) -> list[Outcome]:
    """Send each request at its time on a pool of keep-alive connections (opened before the clock
    starts); never wait for an answer before the next send."""
    outcomes = [Outcome() for _ in requests]
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
    limits = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(base, connector=connector, timeout=limits) as session:
        await asyncio.gather(*(_get(session, "/healthz") for _ in range(64)))
        tasks: list[asyncio.Task[None]] = []
        start = time.perf_counter() + 0.2
        for index, request in enumerate(requests):
            delay = start + request.at - time.perf_counter()
            if delay > 0.0005:
                await asyncio.sleep(delay)
            sending = _send(session, request, outcomes[index], start + request.at)
            tasks.append(asyncio.create_task(sending))
        await asyncio.gather(*tasks)
    return outcomes


async def _get(session: Any, path: str) -> None:
    async with session.get(path) as response:
        await response.read()


async def _send(session: Any, request: Request, outcome: Outcome, scheduled: float) -> None:
    outcome.lag = time.perf_counter() - scheduled
    outcome.status, outcome.replied = await _post(session, request)
    outcome.latency = time.perf_counter() - scheduled
    if outcome.status == 200:
        return
    await asyncio.sleep(1.0)  # Telegram and WeChat deliver a failed message again
    outcome.redelivered = True
    status, replied = await _post(session, request)
    outcome.replied = outcome.replied or (status == 200 and replied)


async def _post(session: Any, request: Request) -> tuple[int, bool]:
    try:
        async with session.post(request.path, data=request.body, headers=request.headers) as response:
            body = await response.read()
            return response.status, _carries_reply(request.channel, body)
    except (TimeoutError, OSError, aiohttp.ClientError):
        return 0, False


def _carries_reply(channel: str, body: bytes) -> bool:
    if channel == TELEGRAM:
        return b'"method"' in body
    return body not in (b"", b"success")


# -- one run ---------------------------------------------------------------------------------------------
@dataclass
class Phase:
    outcomes: list[Outcome]
    seconds: float
    server_cpu: float
    bench_cpu: float  # this process and the fake Telegram
    machine_cpu: float  # every process on the machine (the cores are shared with whatever else runs)


def machine_cpu_seconds() -> float:
    """Busy CPU time of the whole machine so far (/proc/stat: all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def measure(
    base: str, pids: Sequence[int], requests: Sequence[Request], timeout: float, fake_pid: int = 0
) -> Phase:
    before, machine_before = sum(cpu_seconds(p) for p in pids), machine_cpu_seconds()
    bench_before = time.process_time() + (cpu_seconds(fake_pid) if fake_pid else 0)
    started = time.perf_counter()
    outcomes = run_async(open_loop(base, requests, timeout))
    seconds = time.perf_counter() - started
    server = sum(cpu_seconds(p) for p in pids) - before
    bench = time.process_time() + (cpu_seconds(fake_pid) if fake_pid else 0) - bench_before
    return Phase(outcomes, seconds, server, bench, machine_cpu_seconds() - machine_before)


def run_async(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def warm_up(base: str, workers: int, rate: float, url: str, timeout: float) -> None:
    """Every worker loads its NLU model and fills its pools before the measured run: a few messages,
    then a few seconds of the same traffic from other residents, not counted."""
    for offset, seconds, count in ((WARM, 1.0, 4 * workers), (WARM + 50_000, 3.0, None)):
        warm = plan(rate, seconds, seed=offset)
        bind_accounts(url, warm.residents, offset)
        run_async(open_loop(base, build_requests(warm, offset)[:count], timeout))


def checks(
    url: str, requests: Sequence[Request], outcomes: Sequence[Outcome], the_plan: Plan
) -> dict[str, int]:
    """``lost`` and ``duplicated`` from the store after the run."""
    from sqlalchemy import create_engine, func, select

    from data.models import ChannelAccount, InboundMessage, Ticket

    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            inbound = InboundMessage.channel, InboundMessage.message_id, InboundMessage.replies
            rows = connection.execute(select(*inbound))
            recorded = {(channel, message_id) for channel, message_id, replies in rows if replies}
            per_account = connection.execute(
                select(ChannelAccount.channel, ChannelAccount.external_id, func.count(Ticket.id))
                .join(Ticket, Ticket.account_id == ChannelAccount.id)
                .group_by(ChannelAccount.channel, ChannelAccount.external_id)
            ).all()
    finally:
        engine.dispose()
    lost = sum(
        1
        for request, outcome in zip(requests, outcomes, strict=True)
        if not outcome.replied and (request.channel, request.message_id) not in recorded
    )
    expected = {_external(r): r.tickets for r in the_plan.residents}
    duplicated = sum(max(0, n - expected.get((c, e), 0)) for c, e, n in per_account)
    return {"lost": lost, "duplicated": duplicated}


def _external(resident: Resident) -> tuple[str, str]:
    if resident.channel == TELEGRAM:
        return TELEGRAM, str(chat_id(MEASURED, resident.index))
    return WECHAT, openid(MEASURED, resident.index)


MEASURED, WARM = 0, 100_000  # where the residents' chat ids and openids start (plus 7,000,000 for chats)


def summary(phase: Phase) -> dict[str, float]:
    ms = [o.latency * 1000 for o in phase.outcomes]
    lag = [o.lag * 1000 for o in phase.outcomes]
    n = len(ms)
    return {
        "p50_ms": round(percentile(ms, 0.50), 1),
        "p90_ms": round(percentile(ms, 0.90), 1),
        "p99_ms": round(percentile(ms, 0.99), 1),
        "max_ms": round(max(ms), 1),
        "cpu_ms_per_msg": round(phase.server_cpu / n * 1000, 2),
        "client_lag_p99_ms": round(percentile(lag, 0.99), 2),
        "client_lag_max_ms": round(max(lag), 2),
        "bench_cpu_ms_per_msg": round(phase.bench_cpu / n * 1000, 2),
        # the cores' time taken by neither the server nor the bench (other sessions, PostgreSQL)
        "other_cores_busy": round(
            (phase.machine_cpu - phase.server_cpu - phase.bench_cpu) / phase.seconds, 2
        ),
    }


def run_once(
    rate: float,
    seconds: float,
    backend: str,
    workers: int,
    timeout: float,
    seed: int,
    dump: str = "",
    profile: str = "",
    with_floor: bool = True,
) -> dict[str, Any]:
    the_plan = plan(rate, seconds, seed)
    requests = build_requests(the_plan, MEASURED)
    with (
        scratch_database(backend) as url,
        fake_telegram() as (telegram_url, fake_pid),
        propbot(url, telegram_url, workers=workers) as (base, pid),
    ):
        bind_accounts(url, the_plan.residents, MEASURED)
        warm_up(base, workers, rate, url, timeout)
        with py_spy(pid, seconds, profile):
            server = measure(base, [pid], requests, timeout, fake_pid)
        found = checks(url, requests, server.outcomes, the_plan)
    if dump:
        write_dump(dump, requests, server.outcomes)
    bare = None
    if with_floor:
        with floor(workers) as (floor_base, floor_pid):
            run_async(open_loop(floor_base, requests[: int(rate * 2)], timeout))
            bare = measure(floor_base, [floor_pid], requests, timeout)
    return report(rate, seconds, backend, workers, the_plan, server, bare, found)


@contextmanager
def py_spy(pid: int, seconds: float, path: str) -> Iterator[None]:
    """py-spy sampling ``pid`` and its workers for the run (nothing without ``path``)."""
    if not path:
        yield
        return
    command = ["py-spy", "record", "--pid", str(pid), "--subprocesses", "--format", "raw"]
    command += ["--duration", str(int(seconds)), "--rate", "200", "--output", path]
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        recorder.wait(timeout=seconds + 60)


def write_dump(path: str, requests: Sequence[Request], outcomes: Sequence[Outcome]) -> None:
    """Where in the run the slow answers were (scheduler sweeps, dispatcher rounds, ...)."""
    lines = ["at_s\tchannel\tpath_kind\tlatency_ms\tlag_ms\tstatus"]
    for request, outcome in zip(requests, outcomes, strict=True):
        kind = "callback" if request.message_id.startswith("cb:") else "message"
        lines.append(
            f"{request.at:.3f}\t{request.channel}\t{kind}\t{outcome.latency * 1000:.1f}"
            f"\t{outcome.lag * 1000:.2f}\t{outcome.status}"
        )
    Path(path).write_text("\n".join(lines) + "\n")


def report(
    rate: float,
    seconds: float,
    backend: str,
    workers: int,
    the_plan: Plan,
    server: Phase,
    bare: Phase | None,
    found: dict[str, int],
) -> dict[str, Any]:
    outcomes = server.outcomes
    ours = summary(server)
    theirs: dict[str, float | None] = dict.fromkeys(ours) if bare is None else dict(summary(bare))
    channels = Counter(the_plan.residents[m.resident].channel for m in the_plan.messages)
    return {
        "rate": rate,
        "seconds": seconds,
        "backend": backend,
        "workers": workers,
        "messages": len(outcomes),
        "achieved_rate": round(len(outcomes) / server.seconds, 1),
        **ours,
        "floor_cpu_ms_per_msg": theirs["cpu_ms_per_msg"],
        "cpu_vs_floor": round(ours["cpu_ms_per_msg"] / theirs["cpu_ms_per_msg"], 1)
        if theirs["cpu_ms_per_msg"]
        else None,
        "floor_p50_ms": theirs["p50_ms"],
        "floor_p99_ms": theirs["p99_ms"],
        "floor_client_lag_p99_ms": theirs["client_lag_p99_ms"],
        "other_cores_busy": ours["other_cores_busy"],
        "load_average_1m": round(os.getloadavg()[0], 2),
        **found,
        "errors_5xx": sum(500 <= o.status < 600 for o in outcomes),
        "errors_other": sum(o.status != 200 and not 500 <= o.status < 600 for o in outcomes),
        "redelivered": sum(o.redelivered for o in outcomes),
        "residents": len(the_plan.residents),
        "by_channel": dict(channels),
        "conversations": dict(the_plan.mix),
        "cpus": os.cpu_count(),
    }


# -- the sweep ---------------------------------------------------------------------------------------------
def sweep(args: argparse.Namespace) -> dict[str, Any]:
    """For each worker count, rising rates until p99 has crossed the target (and one more point),
    each on a fresh server and database (no floor run); the crossing is interpolated between the two
    points around it."""
    points: list[dict[str, Any]] = []
    crossings: dict[str, float | None] = {}
    for workers in args.sweep_workers:
        over = 0
        for rate in args.sweep_rates:
            point = run_once(
                rate, args.seconds, args.backend, workers, args.timeout, args.seed, with_floor=False
            )
            points.append(point)
            print(_line(point), file=sys.stderr, flush=True)
            over += point["p99_ms"] > TARGET_P99_MS or point["lost"] > 0
            if over >= 2:
                break
        crossings[str(workers)] = crossing([p for p in points if p["workers"] == workers])
    return {"backend": args.backend, "target_p99_ms": TARGET_P99_MS, "crossings": crossings, "points": points}


def crossing(points: Sequence[dict[str, Any]]) -> float | None:
    """The rate where p99 passes the target, linear between the last point under it and the next."""
    for low, high in zip(points, points[1:], strict=False):
        if low["p99_ms"] <= TARGET_P99_MS < high["p99_ms"]:
            share = (TARGET_P99_MS - low["p99_ms"]) / (high["p99_ms"] - low["p99_ms"])
            return round(low["rate"] + share * (high["rate"] - low["rate"]), 1)
    return None


def plot(result: dict[str, Any], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.2), dpi=120)
    for workers in sorted({p["workers"] for p in result["points"]}):
        mine = [p for p in result["points"] if p["workers"] == workers]
        label = f"--workers {workers}"
        if result["crossings"].get(str(workers)):
            label += f" (crosses at {result['crossings'][str(workers)]:.0f}/s)"
        axis.plot([p["rate"] for p in mine], [p["p99_ms"] for p in mine], marker="o", label=label)
    axis.axhline(TARGET_P99_MS, color="grey", linestyle="--", linewidth=1)
    axis.set_yscale("log")
    axis.set_xlabel("offered rate, messages/s (open loop)")
    axis.set_ylabel("p99 latency from scheduled send, ms")
    axis.set_title(f"propbot serve on {result['backend']}, {os.cpu_count()} cores shared with the load")
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path)


def _line(point: dict[str, Any]) -> str:
    keys = ("backend", "workers", "rate", "achieved_rate", "p50_ms", "p99_ms", "client_lag_p99_ms")
    keys += ("cpu_ms_per_msg", "floor_cpu_ms_per_msg", "lost", "duplicated", "errors_5xx", "errors_other")
    return " ".join(f"{k}={point[k]}" for k in keys)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=150.0, help="messages per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="server processes (propbot serve --workers)")
    parser.add_argument("--timeout", type=float, default=10.0, help="a request's answer, seconds")
    parser.add_argument("--seed", type=int, default=15)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--sweep", action="store_true", help="rising rates until p99 crosses 100 ms")
    parser.add_argument("--sweep-workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument(
        "--sweep-rates", type=float, nargs="+", default=[25, 50, 75, 100, 125, 150, 175, 200, 250, 300]
    )
    parser.add_argument("--out", help="write the sweep's JSON here")
    parser.add_argument(
        "--profile",
        help="record the server with py-spy during the measured run (collapsed stacks to this file; "
        "py-spy on PATH, e.g. `uv tool install py-spy`)",
    )
    parser.add_argument("--dump", help="write each message's time, channel, latency and lag (TSV) here")
    parser.add_argument("--plot", help="draw the sweep's p99 curve to this PNG")
    parser.add_argument("--plot-from", help="redraw --plot from a sweep's JSON (no measuring)")
    args = parser.parse_args()
    if args.plot_from:
        plot(json.loads(Path(args.plot_from).read_text()), args.plot or "docs/load_curve.png")
        return 0
    if args.sweep:
        result = sweep(args)
        if args.out:
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=1))
        if args.plot:
            plot(result, args.plot)
        print(json.dumps(result if args.json else result["crossings"], ensure_ascii=False))
        return 0
    point = run_once(
        args.rate, args.seconds, args.backend, args.workers, args.timeout, args.seed, args.dump, args.profile
    )
    print(json.dumps(point, ensure_ascii=False) if args.json else _line(point))
    return 0


if __name__ == "__main__":
    sys.exit(main())
