"""Rasa backend figures: server start time, parse latency over HTTP, server memory, heldout accuracy;
and Rasa's leave-one-source-out evaluation, the same one ``propbot nlu eval --by-source`` runs for
the embedded model.

    bash nlu/rasa/rasa.sh setup && bash nlu/rasa/rasa.sh train   # first: install and train (timed there)
    uv run python bench/rasa_bench.py [--rounds 3]
    uv run python bench/rasa_bench.py --by-source [--source forum ...]   # one Rasa model per source

Starts ``rasa.sh serve`` on a free loopback port, waits for ``GET /status``, then sends every
heldout and training example (bounded: at most ``--rounds`` passes over the heldout set) through
raw ``POST /model/parse`` and through ``RasaNLU`` (which adds our entity extraction and rules),
reads the server's RSS from /proc, and stops the server. Exits non-zero if the server never starts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import free_port, wait_until_up  # noqa: E402
from nlu import TRAINING_DIR, load_backend, training_files  # noqa: E402
from nlu.evaluate import evaluate, format_report, format_sources, pooled  # noqa: E402
from nlu.rasa_backend import RasaNLU  # noqa: E402
from nlu.training_data import Example, load_by_source, load_examples, source_of  # noqa: E402
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


def by_source(only: Sequence[str], errors: int) -> None:
    """For each source: train Rasa on the other sources' files (rasa.sh train with its own training
    folder), serve that model, parse the held-out source through RasaNLU (entities and emergency rules
    included, as the bot runs it), stop the server."""
    files = training_files("train")
    grouped = load_by_source(files)
    reports = {}
    for held_out in only or list(grouped):
        with tempfile.TemporaryDirectory(prefix=f"rasa-without-{held_out}-") as folder:
            for path in files:
                if source_of(path) != held_out:
                    target = Path(folder) / path.relative_to(TRAINING_DIR / "train")
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(path, target)
            os.environ["PROPBOT_RASA_TRAIN_DIR"] = folder
            started = time.monotonic()
            subprocess.run(["bash", str(rasa_server.RASA_SH), "train"], check=True, stdout=subprocess.DEVNULL)
            trained = time.monotonic() - started
            port = free_port()
            process, _ = start_server(port, Path(folder) / "serve.log")
            try:
                with RasaNLU(
                    f"http://127.0.0.1:{port}", fallback=load_backend("embedded"), timeout=30
                ) as nlu:
                    report = evaluate(nlu, grouped[held_out], mode=f"without {held_out}")
                    if not nlu.available:
                        sys.exit(f"the Rasa server stopped answering while testing {held_out}")
            finally:
                rasa_server.stop(process)
        report.backend = "rasa"
        reports[held_out] = report
        print(f"trained without {held_out} in {trained:.0f} s", flush=True)
        print(format_report(report, errors=errors), end="\n\n", flush=True)
    print(format_report(pooled(reports, backend="rasa", mode="leave-one-source-out, pooled")), end="\n\n")
    print(format_sources(reports))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="passes over the heldout set (default 3)")
    parser.add_argument("--show-errors", action="store_true", help="list the heldout misses")
    parser.add_argument(
        "--by-source", action="store_true", help="leave-one-source-out: one Rasa model per source (slow)"
    )
    parser.add_argument("--source", action="append", default=[], help="with --by-source: only these sources")
    parser.add_argument("--errors", type=int, default=0, help="with --by-source: wrong answers to list")
    args = parser.parse_args()
    if args.by_source:
        by_source(args.source, args.errors)
        return
    run(max(1, args.rounds), args.show_errors)


if __name__ == "__main__":
    main()
