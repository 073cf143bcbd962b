"""Time expressions resolved against ``now`` in Asia/Shanghai.

Rules (documented because they are choices, not facts):

* A date without a time is the whole day: 00:00 to 23:59.
* A part of day alone is a range: 凌晨 00-06, 早上 07-09, 上午 08-12, 中午 12-14, 下午 14-18,
  傍晚 17-19, 晚上 18-21, 夜里 21-23:59, 白天 08-18.
* A bare hour 1-6 with no part of day means the afternoon (三点 -> 15:00): nobody books a visit at 3 am.
* Future first: residents book visits. A time or part of day without a date that has already passed
  today moves to tomorrow; a bare weekday (周六) is the next one, today included. 这周X is this
  (Monday-based) week's day even if it has passed, 下周X next week's.
* A calendar date is the recent past or the future: 11月20日 said on 11-23 is three days ago (a past
  visit date is a slip the dialog then points out, or a report: 11月20日报的修), not next year; only a
  date more than two months back rolls on (1月5日 said in November is next January). A bare day of
  the month works the same with a week: 20号 said on the 23rd is this month's, 3号 next month's.
* 11.24, 11/24 and 11月24 are dates when nothing says they are amounts: no unit after them (2.6元,
  3.5米, 1.5小时, 12.5号楼) and no price or amount word just before (单价2.6, 面积3.5). A dotted clock
  (9.30) is a time only after a date or part of day (明天9.30, 下午3.30); alone, 9.30 is a date.
* A date may be glued to its clock time (11月24日9:00) and followed by its weekday (11月24日(周二));
  the date wins over a weekday that does not match it.
* 现在/马上/尽快 are ``now`` as a point; 半小时后 is a point; 两小时内 a range from now; 3天后 a whole day.
* 三点以后 runs to the end of the part of day named, else to 21:00; 五点前 runs from now (or 08:00 on a
  later day) to 17:00.
* Two expressions joined by 到/至/- become one range (周一到周五, 10号到15号). Joined by 到 or 或/和/、,
  the second takes what it leaves out from the first: 明天上午或下午, 下周三或周四, 晚上7点或8点.
* Not times: 一点 alone ("a little"), 两点建议 ("two points"), 早上好 (a greeting), 3号楼/3号门.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from nlu.entities._numbers import scan, to_int
from nlu.types import Entity, TimeSpan

SH = ZoneInfo("Asia/Shanghai")

_CN = "零〇一二两三四五六七八九十"
# Chinese numbers as they are said, not any run of numeral characters: 两三点 ("two or three") must
# not read as 23:00, and a tight pattern backtracks less.
_CN_SMALL = "(?:[二两三四五]?十[一二三四五六七八九]?|[一二两三四五六七八九])"
_NUM = rf"(?:\d{{1,2}}|{_CN_SMALL})"
_MINUTE = r"(?:\d{1,2}|零[一二三四五六七八九]|[一二三四五]?十[一二三四五六七八九]?|[一二三四五六七八九])"
_DAY = r"(?:\d{1,2}|三十一?|二十[一二三四五六七八九]?|十[一二三四五六七八九]?|[一二三四五六七八九])"
_MONTH = r"(?:\d{1,2}|十[一二]?|[一二三四五六七八九])"

_REL_DAYS = {
    "今天": 0, "今日": 0, "今儿": 0, "明天": 1, "明日": 1, "明儿": 1, "听日": 1,
    "后天": 2, "后日": 2, "大后天": 3, "昨天": -1, "昨日": -1, "前天": -2,
}  # fmt: skip
# 今晚 = 今天晚上; 听日/听朝/听晚 are Cantonese (聽日 after t2s) for tomorrow / tomorrow morning / evening.
_DAY_AND_POD = {
    "今晚": (0, "晚上"), "明晚": (1, "晚上"), "听晚": (1, "晚上"), "今夜": (0, "夜里"),
    "今早": (0, "早上"), "明早": (1, "早上"), "听朝": (1, "早上"), "昨晚": (-1, "晚上"),
}  # fmt: skip
# (start hour, end hour) of each part of day; 24 means 23:59.
_POD_RANGE = {
    "凌晨": (0, 6), "清晨": (6, 8), "早上": (7, 9), "早晨": (7, 9), "一早": (7, 9), "朝早": (7, 9),
    "早": (7, 9), "上午": (8, 12), "上昼": (8, 12), "中午": (12, 14), "晌午": (12, 14), "下午": (14, 18),
    "晏昼": (14, 18), "下昼": (14, 18), "傍晚": (17, 19), "晚上": (18, 21), "晚间": (18, 21),
    "晚": (18, 21), "夜里": (21, 24), "夜间": (21, 24), "半夜": (21, 24), "深夜": (21, 24),
    "白天": (8, 18),
}  # fmt: skip
_PM_PODS = frozenset({"下午", "晏昼", "下昼", "傍晚", "晚上", "晚间", "晚"})
_NIGHT_PODS = frozenset({"夜里", "夜间", "半夜", "深夜"})
_WEEKDAY = (
    {c: i for i, c in enumerate("一二三四五六")}
    | {"日": 6, "天": 6, "末": 5}
    | {str(i + 1): i for i in range(7)}
)
_MINUTE_WORDS = {"半": 30, "一刻": 15, "三刻": 45, "整": 0}

_POD_WORDS = "|".join(sorted((p for p in _POD_RANGE if len(p) > 1), key=len, reverse=True))
_CLOCK_AHEAD = rf"(?={_NUM}(?:点|时|:|\.\d\d))"
# 点 as "point (of an argument)": 两点建议 is not 14:00.
_NOT_A_CLOCK = r"(?!建议|意见|要求|问题|原因|看法|想法|需求|疑问|不满|理由|说明)"
# 早上好, 晚上好! are greetings; 晚上好吵 ("it was loud in the evening") is a time.
_NOT_A_GREETING = r"(?!好(?![\u4e00-\u9fff]))"
_SEP = r"\s*(?:到|至|-|~|—)\s*"
# A number followed by a unit or a place is an amount or an address: 2.6元, 3.5米, 1.5小时, 12.5号楼, 5%.
_NOT_AN_AMOUNT = (
    r"(?!\s*(?:[元块角毛分秒米克斤吨升度平方寸尺里个倍折成%‰岁次件位人天年点楼栋幢座门单户室层期号万千百亿每a-z]"
    r"|小时))"
)


def _pod(tag: str) -> str:
    # Single-character 早/晚 only directly before a clock time: 早点来 and 太晚了 are not times.
    return rf"(?P<pod{tag}>(?:{_POD_WORDS}){_NOT_A_GREETING}|早{_CLOCK_AHEAD}|晚{_CLOCK_AHEAD})"


def _clock(tag: str) -> str:
    # 9.30 as a clock time: only after a date or part of day (_resolve checks), never before a unit.
    return (
        rf"(?:(?P<h{tag}>\d{{1,2}})(?::|(?P<dot{tag}>\.))(?P<m{tag}>\d{{2}})(?(dot{tag})(?!\d){_NOT_AN_AMOUNT})"
        rf"|(?P<H{tag}>{_NUM})(?P<dian{tag}>点钟|点|时){_NOT_A_CLOCK}"
        rf"(?P<mm{tag}>半|一刻|三刻|整|(?P<M{tag}>{_MINUTE})分?)?)"
    )


# 号/日 may be followed by a clock time (24日9:00, 24号14点) but not by other digits (a room: 3号101).
_DAY_END = r"(?:号|日)(?![楼栋幢座门线床位房室机柜窗口车院馆#])(?!\d(?!\d?(?:[:.]\d\d|点|时)))"
_WEEKDAY_NOTE = (
    r"(?:\s*\(?\s*(?:周|星期|礼拜)[一二三四五六日天1-7]\)?)?"  # 11月24日(周二), as the bot writes it
)
_CALENDAR = (
    r"(?:(?<![\d])(?P<iy>\d{4})[-/.](?P<im>\d{1,2})[-/.](?P<id>\d{1,2})(?!\d)"
    rf"|(?<![\d.,:/a-z¥$])(?P<dm>\d{{1,2}})[./](?P<dd>\d{{1,2}})(?!\d|\.\d)(?:号|日)?{_NOT_AN_AMOUNT}"
    rf"|(?<![\d])(?:(?P<y>\d{{4}})年)?(?P<mon>(?P<mo>{_MONTH})月份?|(?P<nm>下个?)月)?(?P<d>{_DAY})"
    rf"(?:{_DAY_END}|(?(mon)(?![\d号日月]){_NOT_AN_AMOUNT}|(?!))))"  # 11月24 without 号/日
    rf"{_WEEKDAY_NOTE}"
)
_DATE = (
    rf"(?:(?P<dp>{'|'.join(_DAY_AND_POD)})"
    rf"|(?<![以之然最])(?P<rel>{'|'.join(sorted(_REL_DAYS, key=len, reverse=True))})"  # not 以后天天
    r"|(?P<wp>下下个?|下个?|这个?|本|上个?)?(?:周|星期|礼拜)(?P<wd>[一二三四五六日天1-7末])"
    rf"|{_CALENDAR})"
)
_CLOCK_RANGE = (
    rf"(?:{_clock('1')}(?:{_SEP}(?:{_pod('2')}\s*)?{_clock('2')})?"
    rf"|(?P<rb>{_NUM}){_SEP}{_clock('3')})"
)
_WEEK = r"(?P<wk>下下个?|下个?|这个?|本)(?:周|星期|礼拜)(?![一二三四五六日天1-7末])"
_TIME = re.compile(rf"{_WEEK}|(?:{_DATE}\s*的?\s*)?(?:{_pod('1')}\s*)?(?:{_CLOCK_RANGE})?")

# Characters a time expression can start with; a numeral only at the start of a run of numerals
# (1502点 is not 02:00, 两三点 not 三点).
_TIME_START = re.compile(rf"(?<![\d{_CN}])[\d{_CN}]|[今明听大后昨前下这本上周星礼凌清早朝中晌晏傍晚夜半深白]")

_NOW_WORDS = "现在|马上|立刻|立即|尽快|尽早|赶紧|赶快|越快越好|即刻|asap"
_RELATIVE = re.compile(
    rf"(?P<now>{_NOW_WORDS})"
    rf"|(?:(?P<an>{_NUM})(?:\.(?P<ad>\d))?\s*个?\s*(?P<ah>半)?|(?P<ah0>半))\s*个?\s*(?P<au>小时|钟头|分钟|天)"
    r"\s*(?P<ak>以后|之后|后|以内|之内|内)"
)
_RELATIVE_START = re.compile(rf"(?<![\d.{_CN}])[\d{_CN}]|[半现马立尽赶越即a]")  # not the 5 of 1.5小时


def _at(day: date, hour: int = 0, minute: int = 0) -> datetime:
    # hour may be 24+ (晚上12点, 半夜两点): it carries into the next day.
    if hour >= 24:
        day, hour = day + timedelta(days=hour // 24), hour % 24
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=SH)


def _whole_days(first: date, last: date) -> TimeSpan:
    return TimeSpan(_at(first), _at(last, 23, 59))


def _weekday_date(prefix: str | None, weekday: int, today: date) -> date:
    monday = today - timedelta(days=today.weekday())
    if not prefix:
        return today + timedelta(days=(weekday - today.weekday()) % 7)
    weeks = {"下": 1, "下个": 1, "下下": 2, "下下个": 2, "上": -1, "上个": -1}.get(prefix, 0)
    return monday + timedelta(days=7 * weeks + weekday)


# How far back a named date stays in the past before it means the next year (month) instead.
_RECENT_PAST = timedelta(days=61)  # 11月20日 said on 11-23: three days ago; 1月5日: next January
_RECENT_DAYS = timedelta(days=7)  # 20号 said on the 23rd: this month's; 3号: next month's


def _next_month(today: date) -> tuple[int, int]:
    return today.year + today.month // 12, today.month % 12 + 1


def _calendar_date(year: int | None, month: int | None, day: int, today: date) -> date | None:
    try:
        if year is not None and month is not None:
            return date(year, month, day)
        if month is not None:
            return _latest_recent(
                [(y, month) for y in (today.year - 1, today.year, today.year + 1)], day, today - _RECENT_PAST
            )
        found = date(today.year, today.month, day)  # 31号 in November is no date, not December's
        return found if found >= today - _RECENT_DAYS else date(*_next_month(today), day)
    except ValueError:  # 2月30号, 11月31号
        return None


def _latest_recent(months: list[tuple[int, int]], day: int, earliest: date) -> date | None:
    """The first of these (year, month)s' ``day`` on or after ``earliest``; None if none has the day."""
    for year, month in months:
        try:
            found = date(year, month, day)
        except ValueError:  # 2月29日 in a common year
            continue
        if found >= earliest:
            return found
    return None


_NO_DATE = (None, None)
# Words just before a dotted number that make it an amount, not a date.
_AMOUNT_BEFORE = re.compile(r"[价费钱额积数¥$欠扣涨降]|[交付花收]了")


def _date_part(
    m: re.Match[str], today: date, week_prefix: str | None
) -> tuple[date | None, date | None] | None:
    """(first day, last day) of the date named, _NO_DATE if none is named, None if it is invalid."""
    if m["dp"]:
        day = today + timedelta(days=_DAY_AND_POD[m["dp"]][0])
        return day, day
    if m["rel"]:
        day = today + timedelta(days=_REL_DAYS[m["rel"]])
        return day, day
    if m["wd"]:
        day = _weekday_date(week_prefix, _WEEKDAY[m["wd"]], today)
        return day, day + timedelta(days=1 if m["wd"] == "末" else 0)
    if m["iy"]:
        found = _calendar_date(int(m["iy"]), int(m["im"]), int(m["id"]), today)
    elif m["dm"]:
        if _AMOUNT_BEFORE.search(m.string, max(0, m.start("dm") - 4), m.start("dm")):
            return None  # 单价2.6, 面积大概3.5: an amount
        found = _calendar_date(None, int(m["dm"]), int(m["dd"]), today)
    elif m["d"]:
        day_of_month = to_int(m["d"])
        month = to_int(m["mo"]) if m["mo"] else None
        year = int(m["y"]) if m["y"] else None
        if m["nm"]:  # 下个月25号
            year, month = _next_month(today)
        if not day_of_month or (m["mo"] and not month):
            return None
        found = _calendar_date(year, month, day_of_month, today)
    else:
        return _NO_DATE
    return (found, found) if found else None


def _hour(hour: int, pod: str | None) -> int | None:
    """Hour of day (may exceed 23 for the small hours of the next day) from a 12-hour reading."""
    if hour > 24:
        return None
    if pod is None:
        return hour + 12 if 1 <= hour <= 6 else hour
    if pod in ("中午", "晌午"):
        return hour + 12 if 1 <= hour <= 2 else hour
    if pod in _PM_PODS:
        if hour == 12 and pod != "下午":
            return 24
        return hour + 12 if 1 <= hour <= 11 else hour
    if pod in _NIGHT_PODS:
        if 7 <= hour <= 12:
            return hour + 12
        return hour + 24 if hour <= 5 else hour
    return hour


def _clock_value(m: re.Match[str], tag: str, pod: str | None) -> tuple[int, int] | None:
    """(hour, minute) of clock number ``tag``, None if absent or impossible."""
    hour: int | None
    minute: int | None
    if m[f"h{tag}"]:
        hour, minute = int(m[f"h{tag}"]), int(m[f"m{tag}"])
    elif m[f"H{tag}"]:
        hour = to_int(m[f"H{tag}"])
        words = m[f"mm{tag}"]
        minute = _MINUTE_WORDS[words] if words in _MINUTE_WORDS else to_int(m[f"M{tag}"] or "0")
    else:
        return None
    if hour is None or minute is None or minute > 59:
        return None
    adjusted = _hour(hour, pod)
    return None if adjusted is None else (adjusted, minute)


Clock = tuple[int, int]


def _clock_part(m: re.Match[str], pod: str | None) -> tuple[Clock, Clock] | None:
    """(start, end) clock times; start == end for a single time."""
    if m["rb"]:  # 2-4点: the first hour has no 点 of its own
        last = _clock_value(m, "3", pod)
        first_hour = to_int(m["rb"])
        first = _hour(first_hour, pod) if first_hour is not None else None
        if last is None or first is None:
            return None
        return ((first, 0), last) if (first, 0) < last else (last, last)
    start = _clock_value(m, "1", pod)
    if start is None:
        return None
    end = _clock_value(m, "2", m["pod2"] or pod) if (m["H2"] or m["h2"]) else None
    return (start, end) if end is not None and end > start else (start, start)


def _is_vague_one(m: re.Match[str], has_context: bool) -> bool:
    # 一点 alone is "a little" (快一点, 便宜一点), not 1 o'clock; 一点半 or 下午一点 are times.
    return m["H1"] == "一" and not m["mm1"] and m["dian1"] == "点" and not has_context


def _week_span(prefix: str, today: date) -> TimeSpan:
    if prefix in ("这", "这个", "本"):
        return _whole_days(today, today + timedelta(days=6 - today.weekday()))
    monday = _weekday_date(prefix, 0, today)
    return _whole_days(monday, monday + timedelta(days=6))


@dataclass(frozen=True, slots=True)
class _Context:
    """What an expression passes to the next one joined by 到/或: 明天上午或下午, 下周三或周四."""

    day: date | None = None
    week_prefix: str | None = None
    pod: str | None = None


def _bounded(span: TimeSpan, bound: str | None, pod: str | None, now: datetime) -> TimeSpan:
    """三点以后 -> from 15:00 to the end of the part of day (or 21:00); 五点前 -> from now (or 08:00)."""
    day = span.start.date()
    if bound == "after":
        end = _at(day, _POD_RANGE[pod][1]) if pod and _POD_RANGE[pod][1] < 24 else _at(day, 21)
        return TimeSpan(span.start, end if end > span.start else _at(day, 23, 59))
    start = max(now, _at(day, 8))
    return TimeSpan(start, span.end) if start < span.end else span


def _resolve(m: re.Match[str], now: datetime, inherited: _Context) -> tuple[TimeSpan, _Context] | None:
    today = now.date()
    if m["wk"]:
        return _week_span(m["wk"], today), _Context()
    week_prefix = m["wp"] or (inherited.week_prefix if m["wd"] else None)
    dates = _date_part(m, today, week_prefix)
    if dates is None:
        return None
    own_date = dates != _NO_DATE
    first, last = dates if own_date else (inherited.day, inherited.day)
    pod = m["pod1"] or (_DAY_AND_POD[m["dp"]][1] if m["dp"] else None)
    if pod is None and not own_date:
        pod = inherited.pod  # 晚上7点或8点: 8点 is in the evening too
    context = _Context(first, week_prefix, pod)
    has_clock = bool(m["H1"] or m["h1"] or m["rb"])
    if m["dot1"] and first is None and pod is None:
        return None  # 2.50 alone is an amount; 明天9.30 and 下午3.30 are times
    if has_clock and _is_vague_one(m, first is not None or pod is not None):
        has_clock = False
        if first is None and pod is None:
            return None
    if has_clock:
        clocks = _clock_part(m, pod)
        if clocks is None:
            return None
        day = first or today
        span = TimeSpan(_at(day, *clocks[0]), _at(day, *clocks[1]))
    elif pod is not None:
        start_hour, end_hour = _POD_RANGE[pod]
        day = first or today
        span = TimeSpan(_at(day, start_hour), _at(day, 23, 59) if end_hour == 24 else _at(day, end_hour))
    elif first is not None and last is not None:
        return _whole_days(first, last), context
    else:
        return None
    if first is None and span.end < now:  # future first: 9点 said at 10:00 is tomorrow
        span = TimeSpan(span.start + timedelta(days=1), span.end + timedelta(days=1))
    return span, context


def _relative(m: re.Match[str], now: datetime) -> TimeSpan | None:
    if m["now"]:
        return TimeSpan(now, now)
    count = to_int(m["an"]) if m["an"] else 0
    if count is None:
        return None
    fraction = 0.5 if (m["ah"] or m["ah0"]) else 0.0
    fraction += int(m["ad"]) / 10 if m["ad"] else 0.0  # 1.5小时后
    unit = m["au"]
    if unit == "天":
        if fraction:
            return None  # 1.5天后: no whole day to name
        if m["ak"] in ("以内", "之内", "内"):
            return TimeSpan(now, _at(now.date() + timedelta(days=count), 23, 59))
        day = now.date() + timedelta(days=count)
        return _whole_days(day, day)
    minutes = (count + fraction) * (1 if unit == "分钟" else 60)
    later = now + timedelta(minutes=minutes)
    if m["ak"] in ("以内", "之内", "内"):
        return TimeSpan(now, later)
    return TimeSpan(later, later)


_RANGE_LINK = re.compile(r"\s*(?:到|至|-|~|—)\s*")
_CHOICE_LINK = re.compile(r"\s*(?:或者|或是|或|还是|和|跟|及|、|,|/)\s*")
_BOUND = re.compile(r"\s*(?:(?P<after>以后|之后|后)|(?P<before>以前|之前|前)(?!台))")


@dataclass(slots=True)
class _Found:
    span: TimeSpan
    start: int
    end: int
    context: _Context


def _link(text: str, previous: _Found | None, start: int) -> str | None:
    """'range' or 'choice' if only 到/或 (and the like) stand between the previous expression and this."""
    if previous is None:
        return None
    between = text[previous.end : start]
    if _RANGE_LINK.fullmatch(between):
        return "range"
    return "choice" if _CHOICE_LINK.fullmatch(between) else None


# More time expressions than this in one message is noise (a pasted timetable, 下周 x 500): stop there.
_MAX_EXPRESSIONS = 16


def _expressions(text: str, now: datetime) -> list[_Found]:
    found: list[_Found] = []
    for m in scan(_TIME, _TIME_START, text):
        if len(found) == _MAX_EXPRESSIONS:
            break
        previous = found[-1] if found else None
        link = _link(text, previous, m.start())
        inherited = previous.context if previous is not None and link else _Context()
        resolved = _resolve(m, now, inherited)
        if resolved is None:
            continue
        span, context = resolved
        end = m.start() + len(m[0].rstrip(" 的"))
        if span.is_point and (bound := _BOUND.match(text, end)) is not None:
            span, end = _bounded(span, bound.lastgroup, context.pod, now), bound.end()
        if previous is not None and link == "range" and span.end > previous.span.start:
            # 周一到周五, 10号到15号: one range
            previous.span, previous.end, previous.context = (
                TimeSpan(previous.span.start, span.end),
                end,
                context,
            )
            continue
        found.append(_Found(span, m.start(), end, context))
    return found


def find_datetimes(text: str, now: datetime) -> Iterator[Entity]:
    for m in scan(_RELATIVE, _RELATIVE_START, text):
        span = _relative(m, now)
        if span is not None:
            yield Entity("datetime", span, m[0], m.start(), m.end())
    for found in _expressions(text, now):
        yield Entity("datetime", found.span, text[found.start : found.end], found.start, found.end)
