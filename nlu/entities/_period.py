"""Billing periods: 上个月, 今年上半年, 2026年3月, 1到3月, 一季度 -> Period("YYYY-MM", "YYYY-MM").

Rule for a month or quarter named without a year (past first: bills exist for the past): it is this
year's if it has begun (its first month <= the current month), otherwise last year's. So in November
"3月" is this March and "12月" last December; 今年/去年 alone are the whole calendar year.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime

from nlu.entities._numbers import scan, to_int
from nlu.types import Entity, Period

_M = r"(?:1[0-2]|0?[1-9]|十[一二]|[一二三四五六七八九十])"
_YEAR_WORDS = {"今年": 0, "本年": 0, "去年": -1, "前年": -2, "明年": 1}
_MONTH_WORDS = {
    "上上个月": -2, "上上月": -2, "上个月": -1, "上月": -1, "这个月": 0, "这月": 0, "本月": 0, "当月": 0,
    "下个月": 1, "下月": 1,
}  # fmt: skip
_QUARTER_WORDS = {"上个季度": -1, "上季度": -1, "这个季度": 0, "本季度": 0, "这季度": 0, "下个季度": 1}

_PERIOD = re.compile(
    rf"(?P<mw>{'|'.join(sorted(_MONTH_WORDS, key=len, reverse=True))})"
    rf"|(?P<qw>{'|'.join(sorted(_QUARTER_WORDS, key=len, reverse=True))})"
    r"|(?:近|最近|过去)\s*的?\s*(?P<last>\d{1,2}|[一二两三四五六七八九十]{1,2})\s*个\s*月"
    rf"|(?:(?P<yw>{'|'.join(_YEAR_WORDS)})|(?<!\d)(?P<y>\d{{4}})\s*年)?\s*的?\s*(?:"
    r"(?P<half>上半年|下半年)"
    r"|第?(?P<q>[一二三四1-4])季度|q(?P<qn>[1-4])(?![\d])"
    rf"|(?<!\d)(?P<m1>{_M})\s*月?份?\s*(?:到|至|-|~)\s*(?P<m2>{_M})\s*月份?"
    rf"|(?<![\d月])(?P<mo>{_M})\s*月份?(?!\s*(?:\d|[一二三四五六七八九十])+\s*(?:号|日))"
    r")?"
)

# A numeral only at the start of a run of numerals: "13月" is not March.
_PERIOD_START = re.compile(
    r"(?<![\d一二三四五六七八九十])[\d一二三四五六七八九十]|[上这本当下近最过今去前明第q]"
)


def _month(year: int, month: int) -> str:
    # month may run outside 1..12 (上个月 in January): carry into the year.
    year, index = divmod(year * 12 + month - 1, 12)
    return f"{year:04d}-{index + 1:02d}"


def _year_for(first_month: int, now: datetime) -> int:
    return now.year if first_month <= now.month else now.year - 1


def _months(m: re.Match[str]) -> tuple[int, int] | None:
    """First and last month (1-12) of the part after the year, None if there is none."""
    if m["half"]:
        return (1, 6) if m["half"] == "上半年" else (7, 12)
    quarter = m["q"] or m["qn"]
    if quarter:
        number = to_int(quarter) or 0
        return 3 * number - 2, 3 * number
    if m["m1"]:
        first, last = to_int(m["m1"]), to_int(m["m2"])
        return (first, last) if first and last and first <= last else None
    if m["mo"]:
        month = to_int(m["mo"])
        return (month, month) if month else None
    return None


def _resolve(m: re.Match[str], now: datetime) -> Period | None:
    if m["mw"]:
        month = _month(now.year, now.month + _MONTH_WORDS[m["mw"]])
        return Period(month, month)
    if m["qw"]:
        first = (now.month - 1) // 3 * 3 + 1 + 3 * _QUARTER_WORDS[m["qw"]]
        return Period(_month(now.year, first), _month(now.year, first + 2))
    if m["last"]:
        count = to_int(m["last"])
        if not count or count > 60:
            return None
        return Period(_month(now.year, now.month - count + 1), _month(now.year, now.month))
    months = _months(m)
    if m["yw"] or m["y"]:
        year = now.year + _YEAR_WORDS[m["yw"]] if m["yw"] else int(m["y"])
        first, last = months or (1, 12)
    elif months is not None:
        first, last = months
        year = _year_for(first, now)
    else:
        return None
    return Period(_month(year, first), _month(year, last))


def find_periods(text: str, now: datetime) -> Iterator[Entity]:
    for m in scan(_PERIOD, _PERIOD_START, text):
        period = _resolve(m, now)
        if period is not None:
            raw = m[0].strip(" 的")
            start = m.start() + m[0].index(raw)
            yield Entity("period", period, raw, start, start + len(raw))
