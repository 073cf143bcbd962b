"""NLU figures: training time, model load (cold and cached), parse latency, memory.

    uv run python bench/nlu_bench.py [--backend embedded] [--backend rasa] [--rounds 5]

The embedded backend is trained into a fresh temporary cache (so "cold" is honest), then loaded
from it in this process and in fresh processes (what a bot start costs: imports included, and the
memory of a process that never imports scikit-learn). Parse latency is measured over the held-out
set (``--rounds`` passes) and over synthetic long messages. ``--backend rasa`` measures parse
latency over HTTP against a running server (``bash nlu/rasa/rasa.sh serve``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import nlu  # noqa: E402
from bench.common import percentile  # noqa: E402
from nlu.embedded import EmbeddedNLU, load_model, train  # noqa: E402
from nlu.evaluate import evaluate  # noqa: E402
from nlu.normalize import normalize  # noqa: E402
from nlu.training_data import load_examples  # noqa: E402

NOW = datetime(2025, 3, 12, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
LONG_SENTENCE = "你好我是3栋2单元1502的业主 厨房水槽下面的管子一直在渗水 麻烦明天下午三点派个师傅来看看 "

# Run in a fresh interpreter: what starting a bot process costs with a warm cache.
CHILD = """
import json, resource, sys, time
start = time.perf_counter()
from nlu.embedded import EmbeddedNLU
imported = time.perf_counter()
backend = EmbeddedNLU.load(cache_dir=__import__("pathlib").Path(sys.argv[1]))
loaded = time.perf_counter()
backend.parse("厨房漏水了")
rss = int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmRSS:")))
print(json.dumps({"import": imported - start, "load": loaded - imported, "rss_kb": rss,
                  "sklearn": "sklearn" in sys.modules, "scipy": "scipy" in sys.modules}))
"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backend", action="append", choices=nlu.BACKENDS)
    parser.add_argument("--rounds", type=int, default=5, help="passes over the held-out set")
    parser.add_argument("--rasa-url", default=os.environ.get("RASA_URL") or nlu.DEFAULT_RASA_URL)
    args = parser.parse_args(argv)
    rows: list[tuple[str, str]] = []
    for name in args.backend or ["embedded"]:
        rows += bench_embedded(args.rounds) if name == "embedded" else bench_rasa(args.rasa_url, args.rounds)
    width = max(len(label) for label, _ in rows)
    print(f"{'measure':<{width}}  value")
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    return 0


def bench_embedded(rounds: int) -> list[tuple[str, str]]:
    paths = nlu.training_files("train")
    heldout = load_examples(nlu.training_files("heldout"))
    train_s = [_seconds(lambda: train(paths)) for _ in range(3)]
    with tempfile.TemporaryDirectory() as cache:
        cold_s = _seconds(lambda: load_model(paths, cache_dir=Path(cache)))
        warm_s = [_seconds(lambda: load_model(paths, cache_dir=Path(cache))) for _ in range(5)]
        children = [_child(cache) for _ in range(3)]
    backend = EmbeddedNLU(load_model(paths)[0])
    report = evaluate(backend, heldout)
    texts = [text for text, _ in heldout]
    child = min(children, key=lambda c: c["import"] + c["load"])
    return [
        ("embedded: training examples", str(len(load_examples(paths)))),
        ("embedded: train (fit from YAML), median of 3", f"{statistics.median(train_s):.2f} s"),
        ("embedded: load cold (train + write cache)", f"{cold_s:.2f} s"),
        ("embedded: load cached, in process, median of 5", f"{statistics.median(warm_s) * 1e3:.1f} ms"),
        ("embedded: new process, import nlu.embedded", f"{child['import']:.2f} s"),
        ("embedded: new process, load cached model", f"{child['load'] * 1e3:.1f} ms"),
        ("embedded: new process, RSS after load + 1 parse", f"{child['rss_kb'] / 1024:.0f} MB"),
        ("embedded: new process imports scikit-learn/scipy", f"{child['sklearn']}/{child['scipy']}"),
        ("embedded: this process, max RSS (trained here)", f"{_max_rss_mb():.0f} MB"),
        ("embedded: held-out accuracy / macro F1", f"{report.accuracy:.3f} / {report.macro_f1:.3f}"),
        (
            "embedded: missed emergencies (held-out)",
            f"{len(report.missed_emergencies)} of {report.expected.count('emergency')}",
        ),
        *_latency_rows("embedded: classify, held-out", backend.classify, texts * rounds),
        *_latency_rows(
            "embedded: parse (+entities), residents' lines (every 4th training line)",
            lambda t: backend.parse(t, NOW),
            [text for text, _ in load_examples(paths)][::4],
        ),
        *_latency_rows(
            "embedded: parse (+entities), held-out", lambda t: backend.parse(t, NOW), texts * rounds
        ),
        *_long_rows(backend),
    ]


def bench_rasa(url: str, rounds: int) -> list[tuple[str, str]]:
    backend = nlu.load_backend("rasa", rasa_url=url)
    backend.parse("你好", NOW)
    if not getattr(backend, "available", True):
        return [("rasa", f"not answering at {url}; start it with: bash nlu/rasa/rasa.sh serve")]
    heldout = load_examples(nlu.training_files("heldout"))
    report = evaluate(backend, heldout)
    return [
        ("rasa: held-out accuracy / macro F1", f"{report.accuracy:.3f} / {report.macro_f1:.3f}"),
        ("rasa: missed emergencies (held-out)", str(len(report.missed_emergencies))),
        *_latency_rows(
            "rasa: parse over HTTP, held-out",
            lambda t: backend.parse(t, NOW),
            [t for t, _ in heldout] * rounds,
        ),
    ]


def _long_rows(backend: EmbeddedNLU) -> list[tuple[str, str]]:
    rows = []
    for size in (500, 2_000, 10_000):
        text = (LONG_SENTENCE * (size // len(LONG_SENTENCE) + 1))[:size]
        variants = [text[i:] + text[:i] for i in range(50)]
        rows += _latency_rows(f"embedded: classify, {size:,} chars", backend.classify, variants)
        rows += _latency_rows(
            f"embedded: parse (+entities), {size:,} chars", lambda t: backend.parse(t, NOW), variants
        )
    return rows


def _latency_rows(label: str, call: Callable[[str], object], texts: list[str]) -> list[tuple[str, str]]:
    for text in texts[:20]:
        call(text)  # warm up
    timings = []
    for text in texts:
        normalize.cache_clear()  # every message is new to the pipeline, as in production
        start = time.perf_counter_ns()
        call(text)
        timings.append((time.perf_counter_ns() - start) / 1e6)
    p50, p99 = percentile(timings, 0.5), percentile(timings, 0.99)
    return [(f"{label} p50 / p99 (n={len(timings)})", f"{p50:.3f} / {p99:.3f} ms")]


def _seconds(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _child(cache: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, cache],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return json.loads(out.stdout)


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


if __name__ == "__main__":
    sys.exit(main())
