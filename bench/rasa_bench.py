"""Rasa backend figures: server start time, parse latency over HTTP, server memory, heldout accuracy.

    bash nlu/rasa/rasa.sh setup && bash nlu/rasa/rasa.sh train   # first: install and train (timed there)
    uv run python bench/rasa_bench.py [--rounds 3]

Starts ``rasa.sh serve`` on a free loopback port, waits for ``GET /status``, then sends every
heldout and training example (bounded: at most ``--rounds`` passes over the heldout set) through
raw ``POST /model/parse`` and through ``RasaNLU`` (which adds our entity extraction and rules),
reads the server's RSS from /proc, and stops the server. Exits non-zero if the server never starts.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, wait_until_up  # noqa: E402
from nlu import load_backend, training_files  # noqa: E402
from nlu.rasa_backend import RasaNLU  # noqa: E402
from nlu.training_data import Example, load_examples  # noqa: E402
from tests import rasa_server  # noqa: E402

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
START_TIMEOUT = 1200.0


def start_server(port: int, log: Path) -> tuple[subprocess.Popen[bytes], float]:
    """(process, seconds until GET /status answered)."""
    started = time.monotonic()
    process = rasa_server.start(port, log)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/status", process, str(log), START_TIMEOUT)
    except (RuntimeError, TimeoutError) as exc:
        rasa_server.stop(process)
        sys.exit(f"Rasa did not start ({exc}); see {log}")
    return process, time.monotonic() - started


def rss_mib(pid: int) -> float:
    """Resident memory of the server (rasa.sh execs rasa, so the pid is the server's)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(call: Callable[[str], str], texts: Sequence[str]) -> tuple[list[float], list[str]]:
    """(latencies in ms, answers) for each text, one request at a time."""
    latencies, answers = [], []
    for text in texts:
        started = time.perf_counter()
        answers.append(call(text))
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies, answers


def accuracy(examples: Sequence[Example], answers: Sequence[str]) -> float:
    right = sum(answer == intent for (_, intent), answer in zip(examples, answers, strict=True))
    return right / len(examples)


def report_latency(label: str, latencies: Sequence[float]) -> None:
    print(
        f"{label:<34} n={len(latencies):<5} p50={percentile(latencies, 0.5):6.1f} ms  "
        f"p99={percentile(latencies, 0.99):6.1f} ms  mean={statistics.fmean(latencies):6.1f} ms"
    )


def run(rounds: int, show_errors: bool) -> None:
    heldout = load_examples(training_files("heldout"))
    port = free_port()
    log = Path(os.environ.get("TMPDIR", "/tmp")) / f"rasa-bench-{port}.log"
    process, start_seconds = start_server(port, log)
    url = f"http://127.0.0.1:{port}"
    try:
        print(f"server start (rasa.sh serve -> GET /status 200): {start_seconds:.1f} s")
        client = httpx.Client(base_url=url, timeout=30)
        started = time.perf_counter()
        client.post("/model/parse", json={"text": "你好"}).raise_for_status()
        first_ms = (time.perf_counter() - started) * 1000
        print(f"first parse (jieba dictionary, graph tracing): {first_ms:.0f} ms")

        def raw(text: str) -> str:
            return str(client.post("/model/parse", json={"text": text}).json()["intent"]["name"])

        texts = [text for text, _ in heldout] * rounds
        latencies, answers = timed(raw, texts)
        report_latency("raw POST /model/parse", latencies)
        raw_answers = answers[: len(heldout)]

        nlu = load_backend("rasa", rasa_url=url, timeout=10)
        assert isinstance(nlu, RasaNLU)
        latencies, answers = timed(lambda text: nlu.parse(text, NOW).intent, texts)
        report_latency("RasaNLU.parse (+ entities, rules)", latencies)
        print(f"server RSS after {2 * len(texts) + 1} parses: {rss_mib(process.pid):.0f} MiB")
        ours = answers[: len(heldout)]
        raw_mapped = ["out_of_scope" if a == "nlu_fallback" else a for a in raw_answers]
        print(f"heldout examples: {len(heldout)}")
        print(f"heldout intent accuracy, Rasa alone: {accuracy(heldout, raw_mapped):.3f}")
        print(f"heldout intent accuracy, RasaNLU (with emergency rules): {accuracy(heldout, ours):.3f}")
        if show_errors:
            for (text, intent), alone, with_rules in zip(heldout, raw_mapped, ours, strict=True):
                if intent not in (alone, with_rules) or alone != with_rules:
                    print(f"  {text!r}: expected {intent}, Rasa {alone}, RasaNLU {with_rules}")
        embedded = load_backend("embedded")
        print(
            "heldout intent accuracy, embedded backend for comparison: "
            f"{accuracy(heldout, [embedded.parse(t, NOW).intent for t, _ in heldout]):.3f}"
        )
        nlu.close()
        client.close()
    finally:
        rasa_server.stop(process)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="passes over the heldout set (default 3)")
    parser.add_argument("--show-errors", action="store_true", help="list the heldout misses")
    args = parser.parse_args()
    run(max(1, args.rounds), args.show_errors)


if __name__ == "__main__":
    main()
