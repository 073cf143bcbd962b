"""End-to-end cost of one resident message through the engine (NLU + flow + store), on SQLite and
PostgreSQL: messages per second and p50/p99 latency, sequential and with concurrent workers.

    uv run python bench/engine_bench.py [--residents 60] [--workers 8] [--backends sqlite postgres]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import scratch_database  # noqa: E402
from bot.app import App  # noqa: E402
from bot.settings import Settings  # noqa: E402
from data.clock import SHANGHAI, FixedClock  # noqa: E402
from data.db import transaction  # noqa: E402
from data.models import ChannelAccount, Resident  # noqa: E402
from flows.dialog.turn import Inbound  # noqa: E402

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)

# What residents say, as whole conversations (a realistic mix of the day's traffic).
SCRIPTS: tuple[tuple[str, ...], ...] = (
    ("厨房水管漏水了", "明天上午", "确认"),
    ("我家物业费还欠多少",),
    ("我报的修什么时候来",),
    ("我要投诉楼下晚上太吵了", "5栋楼下", "每天晚上", "尽快处理", "确认"),
    ("周六上午想约个保洁", "没有", "确认"),
    ("你好",),
    ("物业电话多少",),
    ("卧室的灯不亮了", "后天下午", "算了"),
    ("谢谢",),
)


def conversations(residents: int) -> list[list[Inbound]]:
    """One list of messages per account; accounts are independent, messages within one are ordered."""
    plans = []
    for index in range(residents):
        at = NOW
        messages = []
        for script in SCRIPTS:
            for text in script:
                at += timedelta(seconds=20)
                messages.append(Inbound("bench", f"r{index}", text, at))
        plans.append(messages)
    return plans


def bind_accounts(app: App, residents: int) -> None:
    with transaction(app.sessions) as session:
        people = session.scalars(select(Resident).order_by(Resident.id).limit(residents)).all()
        for index, resident in enumerate(people):
            session.add(ChannelAccount(channel="bench", external_id=f"r{index}", resident_id=resident.id))


def run(app: App, plans: list[list[Inbound]], workers: int) -> tuple[list[float], float]:
    def talk(messages: list[Inbound]) -> list[float]:
        spent = []
        for inbound in messages:
            started = time.perf_counter()
            app.engine.handle(inbound)
            spent.append(time.perf_counter() - started)
        return spent

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        latencies = [t for result in pool.map(talk, plans) for t in result]
    return latencies, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]
    )


def bench(backend: str, residents: int, workers: int) -> list[tuple[str, int, float, float, float]]:
    rows = []
    with scratch_database(backend) as url:
        app = App(replace(Settings(), database_url=url), FixedClock(NOW))
        try:
            app.prepare_store(with_demo=True)
            app.nlu.parse("预热", NOW)  # train or load the model outside the measurement
            bind_accounts(app, residents * 2)
            plans = conversations(residents * 2)
            for label, chosen, pool in (
                ("sequential", plans[:residents], 1),
                (f"{workers} workers", plans[residents:], workers),
            ):
                latencies, elapsed = run(app, chosen, pool)
                rows.append(
                    (
                        f"{backend:8} {label}",
                        len(latencies),
                        len(latencies) / elapsed,
                        percentile(latencies, 50) * 1000,
                        percentile(latencies, 99) * 1000,
                    )
                )
        finally:
            app.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--residents",
        type=int,
        default=60,
        help=f"accounts per run (each talks {sum(map(len, SCRIPTS))} messages)",
    )
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument(
        "--backends", nargs="+", default=["sqlite", "postgres"], choices=["sqlite", "postgres"]
    )
    args = parser.parse_args()
    print(f"{'run':28} {'messages':>9} {'msg/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for backend in args.backends:
        for name, count, rate, p50, p99 in bench(backend, args.residents, args.workers):
            print(f"{name:28} {count:9d} {rate:8.0f} {p50:8.2f} {p99:8.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
