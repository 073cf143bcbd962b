"""A console turn (``propbot chat``) end to end, as the terminal sees it: the line through Intake and
the engine, the replies into the outbox, the dispatcher's round that prints them (with the staff
group's cards). Per turn: median, p90 and max in ms of wall-clock time, and the median CPU time of
the process (the figure that does not move with the machine's load), over whole conversations on the
demo store.

    uv run python bench/console_bench.py [--rounds 5] [--backends sqlite postgres]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import percentile, scratch_database  # noqa: E402
from bot.app import App  # noqa: E402
from bot.channels.console import ConsoleChat  # noqa: E402
from bot.settings import Settings  # noqa: E402
from data.clock import SHANGHAI, FixedClock  # noqa: E402

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)
# A demo session: a repair to the end (a ticket, a staff card), questions, a complaint, small talk.
LINES = (
    "厨房水管漏水了", "明天上午", "确认", "我报的修什么时候来", "物业费还欠多少", "物业电话多少",
    "我要投诉楼下晚上太吵了", "5栋楼下", "每天晚上", "尽快处理", "确认", "你好", "谢谢",
)  # fmt: skip


def run(backend: str, rounds: int) -> tuple[list[float], list[float]]:
    with scratch_database(backend) as url:
        app = App(replace(Settings(), database_url=url, propbot_nlu="embedded"), FixedClock(NOW))
        app.prepare_store(with_demo=True)
        times: list[float] = []
        cpu: list[float] = []
        with ConsoleChat(app, "demo", io.StringIO()) as chat:
            chat.send("你好")  # warm-up: the model trained, the statements compiled
            for _ in range(rounds):
                for line in LINES:
                    started, used = time.perf_counter(), time.process_time()
                    chat.send(line)
                    times.append((time.perf_counter() - started) * 1000)
                    cpu.append((time.process_time() - used) * 1000)
        app.close()
        return times, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--backends", nargs="+", default=["sqlite"])
    args = parser.parse_args()
    for backend in args.backends:
        times, cpu = run(backend, args.rounds)
        print(
            f"{backend:10} console turn: median {statistics.median(times):.1f} ms, "
            f"p90 {percentile(times, 0.9):.1f} ms, max {max(times):.1f} ms; "
            f"CPU median {statistics.median(cpu):.1f} ms ({len(times)} turns)"
        )


if __name__ == "__main__":
    main()
