"""Dispatcher and scheduler benchmark.

1. 10,000 reminders through the outbox dispatcher to a fake Telegram Bot API on 127.0.0.1 (real
   HTTP, Telegram's limits enforced by the fake: 30/s overall, 1/s per chat; a tenth of the chats
   get two messages back to back). Achieved rate against the configured 30/s, 429s, duplicates.
2. A scheduler sweep (every job) over a store with 100,000 tickets and 100,000 bills: the first
   run (which acts) and a second run at the same time (which must find nothing to do).

    uv run python bench/dispatch_bench.py [--count 10000] [--rate 30] [--backends sqlite postgres]
        [--dispatch-backends sqlite] [--tickets 100000] [--bills 100000] [--skip-dispatch] [--skip-sweep]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import insert, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import scratch_database  # noqa: E402
from bot.dispatcher import DispatchConfig, Dispatcher  # noqa: E402
from bot.ratelimit import ChannelLimits, Rate  # noqa: E402
from data.clock import SHANGHAI  # noqa: E402
from data.db import make_engine, make_session_factory, migrate, transaction  # noqa: E402
from data.models import (  # noqa: E402
    Bill,
    Building,
    ChannelAccount,
    Compound,
    OutboxMessage,
    Resident,
    Staff,
    Ticket,
    Unit,
)
from data.store import Store  # noqa: E402
from flows.jobs import sweeps  # noqa: E402
from tests.fakes.serve import ServerThread  # noqa: E402
from tests.fakes.telegram_api import TOKEN, FakeTelegram, Limits  # noqa: E402

START = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)  # a Monday morning: no quiet hours


class RunningClock:
    """Business time that starts at ``START`` and runs with the wall clock (no quiet hours)."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()

    def now(self) -> datetime:
        return START + timedelta(seconds=time.monotonic() - self.t0)


def compound_row(session) -> Compound:  # type: ignore[no-untyped-def]
    compound = Compound(
        code="bench",
        name="基准花园",
        duty_phone="0571-88880000",
        office_phone="0571-88881234",
        payment_methods="公众号缴费",
        settings={},
    )
    session.add(compound)
    session.flush()
    return compound


# -- 1. dispatcher ---------------------------------------------------------------------------------------
def telegram_sender(base_url: str):  # type: ignore[no-untyped-def]
    """The Telegram channel's own sender (python-telegram-bot)."""
    from bot.channels.telegram import TelegramSender, make_bot
    from bot.settings import Settings

    bot = make_bot(Settings(telegram_token=TOKEN, telegram_api_url=base_url))
    return TelegramSender(bot), "bot.channels.telegram.TelegramSender (python-telegram-bot)"


def bench_dispatch(backend: str, count: int, rate: float) -> dict[str, object]:
    api = FakeTelegram(limits=Limits(overall_per_s=30.0))
    with ServerThread(api.app) as server, scratch_database(backend) as url:
        engine = make_engine(url)
        migrate(engine)
        sessions = make_session_factory(engine)
        ids = _enqueue_reminders(sessions, count)
        sender, sender_name = telegram_sender(f"{server.url}/bot")
        limits = {
            "telegram": ChannelLimits(
                overall=Rate(int(rate), 1.0), per_chat=Rate(1, 1.0), per_group=Rate(20, 60.0)
            )
        }
        dispatcher = Dispatcher(
            sessions, {"telegram": sender}, RunningClock(), DispatchConfig(batch=200), limits=limits
        )
        elapsed = asyncio.run(_drain(dispatcher, sessions, count))
        with sessions() as session:
            statuses = Counter(session.scalars(select(OutboxMessage.status)))
        engine.dispose()
    received = api.sent()
    rejected = sum(api.rejected_by.values())
    texts = Counter((c.params["chat_id"], c.params["text"]) for c in received)
    first, last = received[0].at, received[-1].at
    achieved = (len(received) - 1) / (last - first) if last > first else 0.0
    return {
        "backend": backend,
        "sender": sender_name,
        "messages": count,
        "delivered": len(received),
        "limit": rate,
        "achieved": achieved,
        "share": achieved / rate,
        "wall_s": elapsed,
        "http_429": f"{rejected} {api.rejected_by}" if rejected else 0,
        "duplicates": sum(n - 1 for n in texts.values() if n > 1),
        "all_sent": statuses.get("sent", 0) == len(ids),
    }


def _enqueue_reminders(sessions, count: int) -> list[int]:  # type: ignore[no-untyped-def]
    """``count`` reminders; every tenth chat gets a second one right after its first."""
    rows, chat = [], 0
    while len(rows) < count:
        chat += 1
        copies = 2 if chat % 10 == 0 else 1
        for copy in range(copies):
            if len(rows) < count:
                rows.append(
                    {
                        "created_at": START,
                        "due_at": START,
                        "channel": "telegram",
                        "recipient": str(100_000 + chat),
                        "kind": "reminder",
                        "text": f"您好，温馨提示：您家有待缴物业费 {len(rows)} ({copy})",
                        "payload": {},
                        "urgent": False,
                        "status": "pending",
                        "attempts": 0,
                        "dedupe_key": f"bench:{len(rows)}",
                    }
                )
    with transaction(sessions) as session:
        session.execute(insert(OutboxMessage), rows)
        return list(session.scalars(select(OutboxMessage.id)))


async def _drain(dispatcher: Dispatcher, sessions, count: int) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    idle = 0
    while idle < 3:
        handled = await dispatcher.run_once()
        idle = idle + 1 if handled == 0 else 0
        if handled == 0:
            await asyncio.sleep(0.2)  # deferred rows come due again after their wait
    return time.monotonic() - started


# -- 2. scheduler sweep ----------------------------------------------------------------------------------
def bench_sweep(backend: str, tickets: int, bills: int) -> dict[str, object]:
    with scratch_database(backend) as url:
        engine = make_engine(url)
        migrate(engine)
        sessions = make_session_factory(engine)
        started = time.monotonic()
        counts = _fill(sessions, tickets, bills)
        fill_s = time.monotonic() - started
        timings = {"due (look only)": _timed(sessions, look=True)}
        timings["run (first)"] = _timed(sessions)
        runs, total, drained = 1, timings["run (first)"][0], timings["run (first)"][1]
        while True:  # the scheduler's next runs take the rest of the backlog
            took, count, _ = _timed(sessions)
            if count == 0:
                timings["run (steady, nothing due)"] = (took, 0, Counter())
                break
            runs, total, drained = runs + 1, total + took, drained + count
        timings["backlog"] = (total, drained, Counter({"runs": runs}))
        engine.dispose()
    return {"backend": backend, **counts, "fill_s": fill_s, "timings": timings}


def _timed(sessions, look: bool = False) -> tuple[float, int, Counter[str]]:  # type: ignore[no-untyped-def]
    with transaction(sessions) as session:
        store = Store(session)
        started = time.monotonic()
        found = sweeps.due(store, START) if look else sweeps.run(store, START)
        took = time.monotonic() - started
        if look:
            session.rollback()
    return took, len(found), Counter(a.job for a in found)


def _fill(sessions, tickets: int, bills: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    rng = random.Random(5)
    months = 10
    units_needed = bills // (months * 2)
    with transaction(sessions) as session:
        compound = compound_row(session)
        for role, name in (("technician", "王师傅"), ("lead", "赵主管"), ("director", "孙主任")):
            session.add(Staff(compound_id=compound.id, name=name, role=role, skills=[]))
        session.flush()
        technician = session.scalars(select(Staff.id).where(Staff.role == "technician")).first()
        buildings = [{"compound_id": compound.id, "number": n, "name": f"{n}栋"} for n in range(1, 41)]
        session.execute(insert(Building), buildings)
        building_ids = list(session.scalars(select(Building.id).order_by(Building.id)))
        per_building = -(-units_needed // len(building_ids))
        units = [
            {"building_id": b, "unit_no": 1, "room": f"{i // 2 + 1}{i % 2 + 1:02d}", "area_m2": Decimal(100)}
            for b in building_ids
            for i in range(per_building)
        ][:units_needed]
        session.execute(insert(Unit), units)
        unit_ids = list(session.scalars(select(Unit.id).order_by(Unit.id)))
        session.execute(
            insert(Resident), [{"unit_id": u, "name": "业主", "role": "owner"} for u in unit_ids[::3]]
        )
        residents = list(session.execute(select(Resident.id, Resident.unit_id)))
        session.execute(
            insert(ChannelAccount),
            [
                {
                    "channel": "telegram",
                    "external_id": str(200_000 + r),
                    "display_name": "",
                    "resident_id": r,
                    "failed_binding_attempts": 0,
                }
                for r, _ in residents
            ],
        )
        session.execute(insert(Bill), list(_bills(unit_ids, months, rng))[:bills])
        session.execute(insert(Ticket), list(_tickets(compound.id, unit_ids, technician, tickets, rng)))
    return {"tickets": tickets, "bills": bills, "units": len(unit_ids), "accounts": len(residents)}


def _bills(unit_ids: list[int], months: int, rng: random.Random) -> Iterator[dict[str, object]]:
    for unit in unit_ids:
        behind = rng.randint(1, 3) if rng.random() < 0.08 else 0
        for index in range(months):
            year, month = (2026, 2 + index) if index < 11 else (2027, index - 10)
            paid = index < months - behind
            for item, amount in (("management", Decimal("260.00")), ("water", Decimal("58.50"))):
                yield {
                    "unit_id": unit,
                    "item": item,
                    "period": f"{year}-{month:02d}",
                    "amount": amount,
                    "due_date": date(year, month, 20),
                    "paid_amount": amount if paid else Decimal(0),
                    "paid_at": START if paid else None,
                }


def _tickets(
    compound: int, unit_ids: list[int], technician: int, count: int, rng: random.Random
) -> Iterator[dict[str, object]]:
    for index in range(count):
        created = START - timedelta(minutes=rng.randint(5, 60 * 24 * 700))
        roll = rng.random()
        status = (
            "closed" if roll < 0.97 else ("done" if roll < 0.98 else rng.choice(("received", "dispatched")))
        )
        done_at = created + timedelta(hours=3) if status in ("done", "closed") else None
        if status == "done":
            done_at = START - timedelta(hours=rng.randint(1, 120))
        if status in ("received", "dispatched"):
            created = START - timedelta(minutes=rng.randint(5, 600))
        yield {
            "number": f"BX-{index:08d}",
            "compound_id": compound,
            "unit_id": rng.choice(unit_ids),
            "kind": "repair",
            "category": "lighting",
            "area": "in_home",
            "location": "",
            "description": "灯不亮",
            "photos": [],
            "details": {},
            "priority": "normal",
            "status": status,
            "assignee_id": technician if status != "received" else None,
            "repeat_count": 0,
            "created_at": created,
            "updated_at": done_at or created,
            "arrive_by": created + timedelta(minutes=30),
            "fix_by": created + timedelta(minutes=150),
            "done_at": done_at,
            "closed_at": done_at if status == "closed" else None,
        }


# -- report ----------------------------------------------------------------------------------------------
DISPATCH_HEAD = (
    "| store | sender | delivered | achieved | of limit | wall | 429s | duplicates | all marked sent |"
)
SWEEP_HEAD = (
    "| store | units / accounts | fill | due (look only) | due actions | first run (≤500/job) "
    "| whole backlog | steady run (nothing due) |"
)


def report_dispatch(args: argparse.Namespace) -> None:
    print(
        f"Dispatcher: {args.count} reminders to a fake Telegram Bot API on 127.0.0.1 (limit {args.rate:g}/s)"
    )
    print(DISPATCH_HEAD + "\n" + "|---" * 9 + "|")
    for backend in args.dispatch_backends:
        r = bench_dispatch(backend, args.count, args.rate)
        cells = [
            r["backend"],
            r["sender"],
            r["delivered"],
            f"{r['achieved']:.2f}/s",
            f"{r['share']:.1%}",
            f"{r['wall_s']:.0f} s",
            r["http_429"],
            r["duplicates"],
            r["all_sent"],
        ]
        print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)


def report_sweep(args: argparse.Namespace) -> None:
    print(f"\nScheduler sweep (all jobs) over {args.tickets} tickets and {args.bills} bills")
    print(SWEEP_HEAD + "\n" + "|---" * 8 + "|")
    for backend in args.backends:
        r = bench_sweep(backend, args.tickets, args.bills)
        t = r["timings"]
        look, first, backlog, steady = (
            t[k] for k in ("due (look only)", "run (first)", "backlog", "run (steady, nothing due)")
        )
        jobs = ", ".join(f"{k} {v}" for k, v in sorted(look[2].items()))
        cells = [
            r["backend"],
            f"{r['units']} / {r['accounts']}",
            f"{r['fill_s']:.1f} s",
            f"{look[0]:.2f} s",
            f"{look[1]} ({jobs})",
            f"{first[0]:.2f} s ({first[1]})",
            f"{backlog[2]['runs']} runs, {backlog[0]:.1f} s",
            f"{steady[0]:.2f} s",
        ]
        print("| " + " | ".join(str(c) for c in cells) + " |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--rate", type=float, default=30.0, help="configured overall limit, messages/s")
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgres"], help="for the sweep")
    parser.add_argument("--dispatch-backends", nargs="+", default=["sqlite"])
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--bills", type=int, default=100_000)
    parser.add_argument("--skip-dispatch", action="store_true")
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()
    if not args.skip_dispatch:
        report_dispatch(args)
    if not args.skip_sweep:
        report_sweep(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
