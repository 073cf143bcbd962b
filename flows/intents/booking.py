"""预约服务: which service, which free slot, any requirements (and a return date for laundry)."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, time, timedelta
from typing import Any

from data.clock import SHANGHAI, local
from data.kinds import TicketKind
from flows.dialog import slots as s
from flows.dialog.form import Form, Narrowed, Question, Slot, Values, is_correction, narrowed
from flows.dialog.spec import Aside, FlowSpec
from flows.dialog.turn import Button, Turn
from flows.domain.tickets import WEEKDAYS, NewTicket, format_span, open_ticket
from nlu.types import SERVICES, TimeSpan

SERVICE_NAMES = {
    "cleaning": "家政保洁",
    "laundry": "洗衣",
    "appliance_install": "家电安装",
    "decoration": "装修申请",
    "moving": "搬家（预约货梯）",
    "parking_space": "车位租用",
    "pet_boarding": "宠物寄养",
    "elderly_check": "老人健康检查",
    "event": "社区活动报名",
}
SLOT_PREFIX = "时段 "
SLOTS_OFFERED = 4  # windows offered when no day is named yet
RANGE_OFFERED = 6  # at most this many windows as buttons for several days (周末, 下周)
NEARBY_DAYS = 7  # a named day that is full: look this many days either side for room
NEARBY_OFFERED = 2  # ... and offer the windows of the nearest days, this many
# No waiting list exists: say so honestly and offer a person (转人工 opens a handoff ticket).
FULLY_BOOKED = "抱歉，{when}的服务时段都约满了。您可以告诉我其他日期，或者回复“转人工”请工作人员帮您协调。"


def _spot_service(turn: Turn, values: Values) -> str | None:
    found = turn.parse.value("service")
    return found if found in SERVICES else None


def _answer_service(turn: Turn, values: Values) -> str | None:
    by_name = next((key for key, name in SERVICE_NAMES.items() if turn.text in (name, key)), None)
    return by_name or _spot_service(turn, values)


# -- slots of time ---------------------------------------------------------------------------
Window = tuple[datetime, datetime]


def service_windows(turn: Turn, day: datetime) -> list[Window]:
    """The compound's booking windows on ``day`` (local)."""
    windows = []
    for start, end in turn.settings.booking_slots:
        first = datetime.combine(day.date(), time.fromisoformat(start), tzinfo=day.tzinfo)
        last = datetime.combine(day.date(), time.fromisoformat(end), tzinfo=day.tzinfo)
        windows.append((first, last))
    return windows


def free_windows(turn: Turn, service: str, since: datetime, until: datetime) -> list[Window]:
    """Windows starting in [since, until) that still have room for ``service``."""
    taken = Counter(turn.store.bookings.starts(service, since - timedelta(days=1), until + timedelta(days=1)))
    found: list[Window] = []
    day = local(since).replace(hour=0, minute=0, second=0, microsecond=0)
    while day < until and len(found) < 50:
        for first, last in service_windows(turn, day):
            booked = sum(n for at, n in taken.items() if first <= at < last)
            if since <= first < until and booked < turn.settings.booking_slot_capacity:
                found.append((first, last))
        day += timedelta(days=1)
    return found


def _window_json(first: datetime, last: datetime) -> dict[str, Any]:
    return s.span_to_json(TimeSpan(first, last))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=SHANGHAI)


def _day_label(day: date) -> str:
    return f"{day.month}月{day.day}日(周{WEEKDAYS[day.weekday()]})"


def _days_label(first: date, last: date) -> str:
    return _day_label(first) if first == last else f"{_day_label(first)}至{_day_label(last)}"


def _part_label(first: datetime, last: datetime) -> str:
    """上午 09:00-11:00: a window of a day that is already named."""
    first, last = local(first), local(last)
    part = "上午" if first.hour < 12 else "中午" if first.hour < 13 else "下午" if first.hour < 18 else "晚上"
    return f"{part} {first:%H:%M}-{last:%H:%M}"


def _buttons(windows: list[Window], *, same_day: bool = False) -> tuple[Button, ...]:
    label = _part_label if same_day else format_span
    return tuple(Button(label(a, b), SLOT_PREFIX + a.isoformat()) for a, b in windows)


# -- asking for a time ------------------------------------------------------------------------
def _time_question(turn: Turn, values: Values) -> Question:
    hint = narrowed(turn, "when")
    if hint is not None:
        return days_question(turn, values, *hint_days(hint))
    horizon = turn.now + timedelta(days=turn.settings.booking_days_ahead)
    free = free_windows(turn, values["service"], turn.now, horizon)[:SLOTS_OFFERED]
    if not free:
        return FULLY_BOOKED.format(when="近两周"), ("转人工",)
    return "请问您想约什么时间？以下时段还有空，也可以直接告诉我日期和时间：", _buttons(free)


def days_question(turn: Turn, values: Values, first: date, last: date) -> Question:
    """The free windows of the day(s) the resident named, or of the nearest days with room."""
    since = max(turn.now, _midnight(first))
    free = free_windows(turn, values["service"], since, _midnight(last + timedelta(days=1)))
    label = _days_label(first, last)
    if free and first == last:
        choices = " / ".join(_part_label(a, b) for a, b in free)
        return f"{label}有这几个时间可以：{choices}，请选一个：", _buttons(free, same_day=True)
    if free:
        return f"{label}还有这些时间可以，请选一个：", _buttons(free[:RANGE_OFFERED])
    return _nearby_question(turn, values, first, last, label)


def _nearby_question(turn: Turn, values: Values, first: date, last: date, label: str) -> Question:
    since = max(turn.now, _midnight(first - timedelta(days=NEARBY_DAYS)))
    until = _midnight(last + timedelta(days=NEARBY_DAYS + 1))
    by_day: dict[date, list[Window]] = {}
    for window in free_windows(turn, values["service"], since, until):
        by_day.setdefault(local(window[0]).date(), []).append(window)
    if not by_day:
        return FULLY_BOOKED.format(when=f"{label}前后一周"), ("转人工",)

    def distance(day: date) -> int:
        return (first - day).days if day < first else (day - last).days

    days = sorted(sorted(by_day, key=lambda day: (distance(day), day))[:NEARBY_OFFERED])
    windows = [w for day in days for w in by_day[day]][:RANGE_OFFERED]
    names = "、".join(_day_label(day) for day in days)
    return (
        f"抱歉，{label}已经没有空的时段了。离得最近还有空的是{names}，请选一个时段，也可以告诉我其他日期：",
        _buttons(windows),
    )


# -- reading the answer -----------------------------------------------------------------------
def answer_time(turn: Turn, values: Values) -> dict[str, Any] | Narrowed | None:
    """A window (a button, or a day with a time), a day to choose a window on, or None."""
    if turn.text.startswith(SLOT_PREFIX):
        try:
            first = datetime.fromisoformat(turn.text.removeprefix(SLOT_PREFIX).strip())
        except ValueError:
            return None
        return _window_at(turn, first)
    soon = s.in_a_few_days(turn)  # 过两天: that day's windows
    if soon is not None:
        return _narrow(local(soon.start).date(), local(soon.start).date())
    entity = s.said_time(turn)
    if entity is None:
        return None
    span: TimeSpan = entity.value
    raw = s.span_to_json(span)
    if s.check_future(turn, values, raw) is not None:
        return raw  # in the past or too far ahead: the check says so
    hint = narrowed(turn, "when")
    if hint is not None and not s.names_a_date(entity.text):
        return _pick_on_days(turn, values, span, *hint_days(hint))  # 周六 ... "下午"
    if s.whole_days(span):  # 周六, 明天, 周末: offer that day's windows
        return _narrow(local(span.start).date(), local(span.end).date())
    return _pick_on_days(turn, values, span, local(span.start).date(), local(span.start).date())


# Details of the job said with the request: 三个房间加一个客厅, 120平, 重点擦窗户, 有只猫.
_REQUIREMENT = re.compile(
    r"[^，,。！!？?\s]*(?:\d+|[一二两三四五六七八九十]+)\s*(?:个房间|个卧室|室|厅|平米?|平方|个客厅|个卫生间|扇窗)[^，,。！!？?\s]*"
    r"|[^，,。！!？?\s]*(?:重点|主要|特别是|特别要)[^，,。！!？?\s]+"
)


def _glean_requirements(turn: Turn, values: Values) -> str | None:
    found = [m.group() for m in _REQUIREMENT.finditer(turn.text)]
    return "，".join(found) if found else None


def _first_free(turn: Turn, values: Values) -> dict[str, Any] | None:
    """The earliest window with room (on the day(s) named, if any): what "随便" / "都行" settles on."""
    since, until = turn.now, turn.now + timedelta(days=turn.settings.booking_days_ahead)
    hint = narrowed(turn, "when")
    if hint is not None:
        first, last = hint_days(hint)
        since, until = max(turn.now, _midnight(first)), _midnight(last + timedelta(days=1))
    free = free_windows(turn, values["service"], since, until)[:1]
    return _window_json(*free[0]) if free else None


def _spot_time(turn: Turn, values: Values) -> dict[str, Any] | Narrowed | None:
    """A date or time named in any message (the first one, or a correction) picks a window or a day."""
    if turn.state.get("asking") in ("return", "requirements") and not is_correction(turn.text):
        return None  # "后天" answers the return date; "下午来之前打个电话" is a requirement
    span = turn.parse.value("datetime")
    if not isinstance(span, TimeSpan):
        return None
    if "service" not in values and not s.whole_days(span):
        return None  # whether a window has room depends on the service
    return answer_time(turn, values)


def _narrow(first: date, last: date, note: str = "") -> Narrowed:
    return Narrowed({"first": first.isoformat(), "last": last.isoformat()}, note)


def hint_days(hint: dict[str, Any]) -> tuple[date, date]:
    return date.fromisoformat(hint["first"]), date.fromisoformat(hint["last"])


def _pick_on_days(
    turn: Turn, values: Values, span: TimeSpan, first: date, last: date
) -> dict[str, Any] | Narrowed:
    """The first free window the time names on one of the days (下午 on 周六); else the days' choices."""
    reason = ""
    for offset in range((last - first).days + 1):
        window, why = _free_window(turn, values, _moved(span, first + timedelta(days=offset)))
        if window is not None:
            return _window_json(*window)
        reason = reason or why
    return _narrow(first, last, note=reason)


def _moved(span: TimeSpan, day: date) -> TimeSpan:
    shift = timedelta(days=(day - local(span.start).date()).days)
    return TimeSpan(span.start + shift, span.end + shift)


def _free_window(turn: Turn, values: Values, span: TimeSpan) -> tuple[Window | None, str]:
    """The first window with room that ``span`` names (the one around a point), or why there is none."""
    named = [(a, b) for a, b in _windows_between(turn, span.start, span.end)
             if (a <= span.start < b if span.is_point else span.start <= a <= span.end)]  # fmt: skip
    if not named:
        hours = "、".join(f"{a}-{b}" for a, b in turn.settings.booking_slots)
        return None, f"抱歉，这个时间不在服务时段内（每天 {hours}）。"
    if all(a < turn.now for a, _ in named):
        return None, "抱歉，这个时段已经开始了，来不及安排了。"
    since = max(turn.now, named[0][0])
    free = free_windows(turn, values.get("service", "cleaning"), since, named[-1][0] + timedelta(seconds=1))
    if not free:
        return None, "抱歉，您说的这个时段已经约满了。"
    return free[0], ""


def _windows_between(turn: Turn, start: datetime, end: datetime) -> list[Window]:
    """Every service window of the days from ``start`` to ``end``."""
    first, last = local(start).date(), local(end).date()
    days = (first + timedelta(days=n) for n in range((last - first).days + 1))
    return [w for day in days for w in service_windows(turn, _midnight(day))]


def _window_at(turn: Turn, at: datetime) -> dict[str, Any] | None:
    at = local(at)
    for first, last in service_windows(turn, at):
        if first <= at < last:
            return _window_json(first, last)
    return None


def check_time(turn: Turn, values: Values, raw: dict[str, Any]) -> str | None:
    error = s.check_future(turn, values, raw)
    if error is not None:
        return error
    start, end = s.span_from_json(raw)
    if (
        len(turn.store.bookings.starts(values.get("service", ""), start, end))
        >= turn.settings.booking_slot_capacity
    ):
        return "抱歉，这个时段刚刚约满了，请换一个时段。"
    return None


def _check_return(turn: Turn, values: Values, raw: dict[str, Any]) -> str | None:
    error = s.check_future(turn, values, raw)
    if error is None and "when" in values and s.span_from_json(raw)[1] < s.span_from_json(values["when"])[0]:
        return "送回日期要在取衣之后，请换一个日期。"
    return error


class BookingForm(Form):
    name = "booking"
    title = "预约"
    slots = (
        Slot(
            "service",
            "服务项目",
            lambda turn, values: ("请问您想预约什么服务？", tuple(SERVICE_NAMES.values())),
            _answer_service,
            spot=_spot_service,
            show=lambda key: SERVICE_NAMES.get(key, key),
        ),
        Slot(
            "when",
            "预约时间",
            _time_question,
            answer_time,
            spot=_spot_time,
            check=check_time,
            show=s.show_span,
            aliases=("时间",),
            vague_question="没关系，您看哪天家里方便？比如“周六”“下周一上午”，也可以直接选一个时段：",
            default=_first_free,
        ),
        Slot(
            "return",
            "送回日期",
            lambda turn, values: ("请问衣服希望哪天送回？", ("后天", "大后天")),
            s.spot_time,
            check=_check_return,
            show=s.show_span,
            needed=lambda turn, values: values.get("service") == "laundry",
        ),
        Slot(
            "requirements",
            "具体要求",
            lambda turn, values: (
                "请问有什么具体要求吗？比如面积、房间数、需要注意的地方。没有可以回复“没有”。",
                ("没有",),
            ),
            s.answer_text,
            glean=_glean_requirements,
            skippable=True,
            free_text=True,
            takes_intents=frozenset({"booking", "repair", "complaint"}),
            aliases=("要求",),
        ),
    )

    def submit(self, turn: Turn, values: Values) -> None:
        start, end = s.span_from_json(values["when"])
        details: dict[str, Any] = {"requirements": values.get("requirements")}
        if "return" in values:
            details["return"] = values["return"]
        ticket = open_ticket(
            turn.store,
            turn.compound,
            turn.account,
            NewTicket(
                kind=TicketKind.BOOKING,
                description=f"预约{SERVICE_NAMES[values['service']]}",
                category=values["service"],
                area="in_home",
                location=turn.unit.label if turn.unit is not None else "",
                preferred_start=start,
                preferred_end=end,
                contact_phone=turn.resident.phone if turn.resident is not None else None,
                details=details,
            ),
            turn.now,
            turn.actor,
        )
        turn.say(
            f"好的，已为您预约{SERVICE_NAMES[values['service']]}：{format_span(start, end)}，"
            f"单号 {ticket.number}。\n"
            "服务人员上门前会联系您；如需改期或取消，随时告诉我就可以。"
        )


SPEC = FlowSpec(
    "booking",
    flow=BookingForm(),
    title=BookingForm.title,
    needs_binding=True,
    keeps_draft=True,
    aside=Aside.TICKET,
    topic="service",
    ticket=TicketKind.BOOKING,
)
