"""Slot builders shared by the forms: times, phone numbers, units, free text."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from data.clock import local
from data.models import Unit
from flows.dialog.form import Question, Slot, Values
from flows.dialog.turn import Turn
from flows.domain.tickets import format_span, is_whole_days
from nlu.normalize import to_simplified
from nlu.types import Entity, TimeSpan, UnitRef

ASAP_WORDS = ("尽快", "越快越好", "马上", "现在", "随时", "都可以", "立刻", "赶紧", "快点", "今天就")
# A date in a time expression (今天, 周六, 3号, 12月, 3天后, 2026-11-28); 白天 is a part of day.
_DATE_WORDS = re.compile(r"[今明昨周号日月年]|星期|礼拜|听[朝晚]|(?<![白天每])天(?!天)|\d{4}[-/.]\d")
MAX_AHEAD = timedelta(days=60)
ASAP_WITHIN = timedelta(minutes=1)  # 尽快/马上 resolve to the point "now"


# -- time --------------------------------------------------------------------------------------
def span_to_json(span: TimeSpan, asap: bool = False) -> dict[str, Any]:
    return {"start": span.start.isoformat(), "end": span.end.isoformat(), "asap": asap}


def span_from_json(raw: dict[str, Any]) -> tuple[datetime, datetime]:
    return datetime.fromisoformat(raw["start"]), datetime.fromisoformat(raw["end"])


def show_span(raw: dict[str, Any]) -> str:
    if raw.get("asap"):
        return "尽快"
    return format_span(*span_from_json(raw))


def names_a_date(expression: str) -> bool:
    """Whether a time expression names the day (周六下午) or only a time of day (下午, 三点)."""
    return _DATE_WORDS.search(expression) is not None


def whole_days(span: TimeSpan) -> bool:
    """A date said without a time (周六, 明天, 周末): whole days, 00:00 to 23:59."""
    return is_whole_days(span.start, span.end)


def spot_time(turn: Turn, values: Values) -> dict[str, Any] | None:
    entity = said_time(turn)
    return span_to_json(entity.value) if entity is not None else None


def said_time(turn: Turn) -> Entity | None:
    """The time the resident means: the first named, or the one after "不是明天 是后天上午"."""
    times = [e for e in turn.parse.all("datetime") if isinstance(e.value, TimeSpan)]
    denied = turn.text.rfind("不是")
    if denied >= 0 and len(times) > 1:
        meant = [e for e in times if turn.text.find(e.text, denied + 2) > denied + 2]
        return meant[-1] if meant else times[-1]
    if len(times) > 1 and names_a_date(times[0].text) and not names_a_date(times[1].text):
        # "明天能不能改到下午来", "这个周六下午 … 四点以后": the later time on that day, within it
        return _on_day(times[1], times[0].value)
    return times[0] if times else None


def _on_day(entity: Entity, day: TimeSpan) -> Entity:
    span: TimeSpan = entity.value
    shift = timedelta(days=(local(day.start).date() - local(span.start).date()).days)
    start, end = span.start + shift, span.end + shift
    if start <= day.end and day.start <= end:  # overlapping: the part both name
        start, end = max(start, day.start), min(end, day.end)
    return Entity(entity.type, TimeSpan(start, end), entity.text, entity.start, entity.end)


# A time of day said as a description ("晚上黑乎乎的", "成个下昼都冇水") is no visit time: only a
# date, a clock time, or a time of day followed by coming over counts in a message about something else.
_CLOCK = re.compile(r"\d|[一二两三四五六七八九十]点|[:：]|点钟|点半")
# "昨天开始就一直漏水", "洗澡的时候", "从上周起": when the fault began or shows, not when to come.
_SINCE_BEFORE = re.compile(r"(?:从|自从|打|自)\s*$")
_SINCE_AFTER = re.compile(r"^\s*(?:开始|以来|起|的时候|时候|那会|之后|以后|一直|就一直|总是|老是|都|就)")
_VISIT_AFTER = re.compile(r"^\s*(?:再|就|都|也)?(?:来|上门|过来|到|修|弄|处理|吧|可以|方便|有空|在家|有人)")


def spot_visit_time(turn: Turn, values: Values) -> dict[str, Any] | None:
    """A visit time from a message that was not asked for one: "明天上午10点来" is; "晚上黑乎乎的",
    "昨天开始就一直漏水" and anything already past describe the fault instead."""
    entity = said_time(turn)
    if entity is None or entity.value.end < turn.now:
        return None
    at = turn.text.find(entity.text)
    before, after = turn.text[: max(at, 0)], turn.text[at + len(entity.text) :] if at >= 0 else ""
    if _SINCE_BEFORE.search(before) or _SINCE_AFTER.search(after):
        return None
    if names_a_date(entity.text) or _CLOCK.search(entity.text) or _VISIT_AFTER.search(after):
        return span_to_json(entity.value)
    return None


def answer_time(turn: Turn, values: Values) -> dict[str, Any] | None:
    """A visit time; 尽快 (a button) means as soon as possible, though it also reads as the point "now"."""
    span = turn.parse.value("datetime")
    at_now = isinstance(span, TimeSpan) and span.is_point and abs(span.start - turn.now) < ASAP_WITHIN
    if (span is None or at_now) and any(word in turn.text for word in ASAP_WORDS):
        return asap(turn, values)
    soon = in_a_few_days(turn)
    return span_to_json(soon) if soon is not None else spot_time(turn, values)


# "过两天", "过几天", "改天": a day soon, not named; the day after tomorrow is the honest reading.
_IN_A_FEW_DAYS = re.compile(r"过(?:两|几|2|3|三)天|改天|过些天")


def in_a_few_days(turn: Turn) -> TimeSpan | None:
    if turn.parse.first("datetime") is not None or not _IN_A_FEW_DAYS.search(turn.text):
        return None
    day = local(turn.now).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=2)
    return TimeSpan(day, day.replace(hour=23, minute=59))


def asap(turn: Turn, values: Values) -> dict[str, Any]:
    return span_to_json(TimeSpan(turn.now, turn.now), asap=True)


def check_future(turn: Turn, values: Values, raw: dict[str, Any]) -> str | None:
    if raw.get("asap"):
        return None
    start, end = span_from_json(raw)
    if end < turn.now - timedelta(minutes=5):
        return f"您说的时间（{format_span(start, end)}）已经过去了，请问换个时间可以吗？"
    if start > turn.now + MAX_AHEAD:
        return "这个时间有点远了，我们最多可以预约两个月内的时间，请问换个近一点的时间可以吗？"
    return None


def visit_time_question(turn: Turn, values: Values) -> Question:
    hour = local(turn.now).hour
    options: list[str] = ["尽快"]
    if hour < 12:
        options.append("今天下午")
    options += ["明天上午", "明天下午"]
    return "请问您方便什么时候上门？可以说“尽快”或者具体时间，比如“明天下午三点”。", tuple(options)


# -- phone -------------------------------------------------------------------------------------
def mask_phone(phone: str) -> str:
    digits = phone.replace("-", "")
    if len(digits) >= 7:
        return digits[:3] + "****" + digits[-4:]
    return phone


def spot_phone(turn: Turn, values: Values) -> str | None:
    phone = turn.parse.value("phone")
    return phone if isinstance(phone, str) else None


def phone_slot() -> Slot:
    return Slot(
        "phone",
        "联系电话",
        lambda turn, values: ("请留一个联系电话，方便工作人员联系您。", ()),
        spot_phone,
        spot=spot_phone,
        show=mask_phone,
        aliases=("电话", "手机", "手机号"),
    )


# -- units -------------------------------------------------------------------------------------
def spot_unit(turn: Turn, values: Values) -> dict[str, Any] | None:
    ref = turn.parse.value("unit")
    if isinstance(ref, UnitRef):
        return {"building": ref.building, "unit": ref.unit, "room": ref.room, "label": ref.label()}
    return None


def named_unit(turn: Turn, raw: dict[str, Any]) -> Unit | None:
    """The flat a unit reference names; "3座1502" (the unit left out) is one's own flat if it fits."""
    unit = turn.store.find_unit(raw["building"], raw.get("unit"), raw["room"])
    home = turn.unit
    if unit is None and home is not None and raw.get("unit") is None:
        unit = home if (home.building.number, home.room) == (raw["building"], raw["room"]) else None
    return unit


def check_own_unit(turn: Turn, values: Values, raw: dict[str, Any]) -> str | None:
    """The unit must exist and be the one this account is bound to (privacy)."""
    unit, home = named_unit(turn, raw), turn.unit
    if unit is None:
        return f"没有找到“{raw['label']}”这个房屋，请您核对一下楼栋、单元和房号。"
    if home is None or unit.id != home.id:
        own = home.label if home is not None else "您的房屋"
        return f"为保护业主信息，户内事项只能为您绑定的房屋（{own}）办理。其他房屋请由该户住户绑定后办理。"
    raw["label"] = unit.label
    return None


def own_unit_value(turn: Turn) -> dict[str, Any] | None:
    unit = turn.unit
    if unit is None:
        return None
    return {"building": unit.building.number, "unit": unit.unit_no, "room": unit.room, "label": unit.label}


# -- places ------------------------------------------------------------------------------------
_BUILDING = r"\d{1,2}\s*(?:号楼|栋|幢|座)"
_FLOOR = r"(?:\d{1,2}\s*单元)?(?:\d{1,2}\s*(?:楼|层)(?![上下道梯]))?"
_PLACE_NOUN = (
    r"(?:楼下|楼前|楼后|门口|门前|大堂|大厅|电梯(?:间|厅)?|楼道|楼梯(?:间|口)?|走廊|过道|天台|楼顶|单元门"
    r"|消防通道|地下室|车库|旁边|附近|后面|前面|对面|绿化带|垃圾(?:站|房|桶)|楼梯间|门厅)"
)
PLACES = (
    re.compile(_BUILDING + _FLOOR + "的?" + _PLACE_NOUN),  # 3栋楼下, 3栋2单元5楼楼道, 5栋的电梯
    re.compile(r"(?:地下)?(?:停车场|车库)(?:[A-Za-z]\d{0,3}区?|\d{1,3}号?区)?"),  # 地下车库B2, 车库B区
    re.compile(r"(?:楼上|楼下|隔壁|对门)的?\d{3,4}(?:室|户)?|\d{3,4}(?:室|户)?的?(?:楼上|楼下|隔壁|对门)"),
    re.compile(
        r"(?:小区)?[东西南北正后侧](?:大)?门(?:口|岗)?|中心花园|篮球场|游乐场|儿童乐园|健身(?:区|器材)"
        r"|快递柜|门岗|岗亭|会所|游泳池|地面停车位"
    ),
)


def find_place(text: str) -> str | None:
    """The place a message names, cut cleanly out of the sentence: "明天上午10点来3栋楼下修一下路灯"
    gives 3栋楼下; also 地下车库B2, 楼上1602, 北门. None when it names none of these."""
    text = to_simplified(text)  # 樓上1602 is 楼上1602
    for pattern in PLACES:
        found = pattern.search(text)
        if found:
            return found.group().replace(" ", "")
    return None


# -- free text ---------------------------------------------------------------------------------
_MEANINGFUL = re.compile(r"[\w\u4e00-\u9fff]")


def meaningful(text: str, minimum: int = 2) -> bool:
    return len(_MEANINGFUL.findall(text)) >= minimum


def answer_text(turn: Turn, values: Values) -> str | None:
    return turn.text if meaningful(turn.text) else None


def answer_place(turn: Turn, values: Values) -> str | None:
    """The place cut out of the answer ("就是楼上1602 每天晚上" gives 楼上1602), else the answer."""
    return find_place(turn.text) or answer_text(turn, values)
