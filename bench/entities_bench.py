"""Latency of ``nlu.entities.extract`` on realistic resident messages.

Run: ``uv run python bench/entities_bench.py`` (figures go in docs/benchmarks.md, section Entities).

"cold" clears the normaliser's cache before every call, so the figure includes normalisation of a
message never seen before; "warm" is the pipeline's case, where the classifier has already
normalised the same text. The machine is shared, so each figure is measured in TRIALS separate
trials and the trial with the lowest p50 is printed (as timeit does), next to the load average.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import percentile  # noqa: E402
from nlu.entities import extract  # noqa: E402
from nlu.entities._numbers import to_int  # noqa: E402
from nlu.normalize import normalize  # noqa: E402

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
ROUNDS = 60
TRIALS = 5

MESSAGES = [
    "你好，3栋2单元1502厨房水管漏水了，明天下午三点能来吗？电话13800138000",
    "我家卫生间马桶堵了",
    "12栋1单元301 客厅插座没电了，跳闸了",
    "楼道灯不亮好几天了，5号楼3单元",
    "电梯又坏了！！被困了快来人",
    "投诉一下电梯又坏了，这已经是这个月第三次了",
    "查一下上个月的物业费交了没有",
    "今年上半年的停车费多少钱",
    "我想问下2026年3月的水费为什么这么贵",
    "1到3月的公摊怎么算的",
    "我要预约保洁，这周六上午可以吗",
    "下周一下午两点来装空调",
    "想约个家政打扫一下，周末有空吗",
    "干洗衣服可以上门收吗，明天早上",
    "我要装修，装修申请怎么办",
    "下个星期三搬家，要用货梯",
    "想租车位，有没有空的",
    "国庆出去玩，宠物寄养有吗",
    "社区活动怎么报名",
    "老人健康体检什么时候",
    "我报的修什么时候来？",
    "煤气味很重，是不是漏气了",
    "楼上漏水到我家天花板了，墙都发霉了",
    "小区门口的路灯坏了",
    "地下车库好多积水",
    "门禁卡刷不开单元门",
    "家里停水了，什么时候来水",
    "热水器不出热水",
    "幾時來修？聽日得唔得",
    "３棟２單元１５０２，電梯壞咗",
    "我家冇水呀，好急",
    "你好",
    "谢谢",
    "转人工",
    "好的",
    "可以",
    "不用了",
    "三号楼二单元一五零二 下午两点到四点在家",
    "电话 138 0013 8000 找王先生",
    "物业电话多少？021-12345678 打不通",
    "十二月三号上午十点一刻",
    "一个半小时后能到吗",
    "尽快派人来，越快越好",
    "维修费是多少",
    "装修垃圾清运费怎么收",
    "快一点啊，等了一上午了",
    "我有两点建议：一是绿化，二是停车",
    "保安态度太差了，昨天晚上8点在大门口",
    "隔壁装修太吵了，周日早上7点就开始",
    "3-2-1502 阳台地漏反水",
]


def _percentiles(samples_ns: list[int]) -> tuple[float, float, float, float]:
    """p50, p90, p99 and max in microseconds."""
    p90, p99 = (percentile(samples_ns, q) / 1000 for q in (0.90, 0.99))
    return statistics.median(samples_ns) / 1000, p90, p99, max(samples_ns) / 1000


def _time_calls(call: Callable[[str], object], texts: list[str], before: Callable[[], None]) -> list[int]:
    samples: list[int] = []
    for _ in range(ROUNDS):
        for text in texts:
            before()
            started = time.perf_counter_ns()
            call(text)
            samples.append(time.perf_counter_ns() - started)
    return samples


def _best_trial(call: Callable[[str], object], texts: list[str], before: Callable[[], None]) -> list[int]:
    trials = [_time_calls(call, texts, before) for _ in range(TRIALS)]
    return min(trials, key=lambda samples: statistics.median(samples))


def _report(name: str, samples: list[int]) -> None:
    p50, p90, p99, worst = _percentiles(samples)
    figures = f"p50 {p50:7.1f}  p90 {p90:7.1f}  p99 {p99:8.1f}  max {worst:9.1f} µs"
    print(f"{name:<46} {figures}  n={len(samples)}")


def _per_call_us(call: Callable[[], object], count: int = 2000) -> float:
    started = time.perf_counter_ns()
    for _ in range(count):
        call()
    return (time.perf_counter_ns() - started) / count / 1000


def _cn2an_costs() -> None:
    code = "import time; t = time.perf_counter(); import cn2an; print(time.perf_counter() - t)"
    seconds = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout)
    print(f"{'cn2an import (once per process, lazy)':<46} {seconds * 1000:8.1f} ms")
    import cn2an  # type: ignore[import-untyped]

    uncached = _per_call_us(lambda: cn2an.cn2an("二十三", "smart"))
    print(f"{'cn2an.cn2an uncached, per call':<46} {uncached:8.1f} µs")
    to_int("二十三")
    print(f"{'to_int cached (lru_cache hit), per call':<46} {_per_call_us(lambda: to_int('二十三')):8.1f} µs")


def main() -> None:
    for text in MESSAGES:  # warm-up: compiled regexes, cn2an import, opencc dictionaries
        extract(text, NOW)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"{len(MESSAGES)} messages x {ROUNDS} rounds, best of {TRIALS} trials")
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load}")
    run = lambda text: extract(text, NOW)  # noqa: E731
    _report("extract, cold (includes normalize)", _best_trial(run, MESSAGES, normalize.cache_clear))
    _report("extract, warm (normalize cached)", _best_trial(run, MESSAGES, lambda: None))
    _report("normalize alone, cold", _best_trial(normalize, MESSAGES, normalize.cache_clear))
    odd = ["", "😀" * 50, "\x00\x01" * 30, "SELECT * FROM tickets; DROP TABLE x;--", "9" * 10_000]
    odd += ["啊" * 10_000, "電梯壞了" * 2_500, "下周" * 5_000]
    _report("extract, odd input (up to 10,000 chars), cold", _best_trial(run, odd, normalize.cache_clear))
    _cn2an_costs()


if __name__ == "__main__":
    main()
