"""预约服务: which service, which free slot, any requirements (and a return date for laundry)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta
from typing import Any

from data.clock import local
from flows import slots as s
from flows.form import Form, Question, Slot, Values
from flows.tickets import NewTicket, format_span, open_ticket
from flows.turn import Button, Turn
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
SLOTS_OFFERED = 4


def _spot_service(turn: Turn, values: Values) -> str | None:
    found = turn.parse.value("service")
    return found if found in SERVICES else None


def _answer_service(turn: Turn, values: Values) -> str | None:
    by_name = next((key for key, name in SERVICE_NAMES.items() if turn.text in (name, key)), None)
    return by_name or _spot_service(turn, values)


# -- slots of time ---------------------------------------------------------------------------
def service_windows(turn: Turn, day: datetime) -> list[tuple[datetime, datetime]]:
    """The compound's booking windows on ``day`` (local)."""
    windows = []
    for start, end in turn.settings.booking_slots:
        first = datetime.combine(day.date(), time.fromisoformat(start), tzinfo=day.tzinfo)
        last = datetime.combine(day.date(), time.fromisoformat(end), tzinfo=day.tzinfo)
        windows.append((first, last))
    return windows


def free_windows(turn: Turn, service: str, since: datetime, until: datetime) -> list[tuple[datetime, datetime]]:
    """Windows starting in [since, until) that still have room for ``service``."""
    taken = Counter(turn.store.booking_starts(service, since - timedelta(days=1), until + timedelta(days=1)))
    found = []
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


def _time_question(turn: Turn, values: Values) -> Question:
    horizon = turn.now + timedelta(days=turn.settings.booking_days_ahead)
    free = free_windows(turn, values["service"], turn.now, horizon)[:SLOTS_OFFERED]
    if not free:
        return "抱歉，近两周的服务时段都约满了，请问您想约哪一天？我们帮您登记候补。", ()
    buttons = tuple(Button(format_span(a, b), SLOT_PREFIX + a.isoformat()) for a, b in free)
    return "请问您想约什么时间？以下时段还有空，也可以直接告诉我日期和时间：", buttons


def _answer_time(turn: Turn, values: Values) -> dict[str, Any] | None:
    if turn.text.startswith(SLOT_PREFIX):
        try:
            first = datetime.fromisoformat(turn.text.removeprefix(SLOT_PREFIX).strip())
        except ValueError:
            return None
        return _window_at(turn, first)
    span = turn.parse.value("datetime")
    if not isinstance(span, TimeSpan):
        return None
    if span.is_point:
        return _window_at(turn, span.start) or {"start": span.start.isoformat(), "end": span.end.isoformat(), "outside": True}
    service = values.get("service", "cleaning")
    free = free_windows(turn, service, max(span.start, turn.now), span.end + timedelta(seconds=1))
    if free:
        return _window_json(*free[0])
    return {"start": span.start.isoformat(), "end": span.end.isoformat(), "full": True}


def _spot_time(turn: Turn, values: Values) -> dict[str, Any] | None:
    """A date or time named in any message (the first one, or a correction) picks a window."""
    if "service" not in values or not isinstance(turn.parse.value("datetime"), TimeSpan):
        return None
    return _answer_time(turn, values)


def _window_at(turn: Turn, at: datetime) -> dict[str, Any] | None:
    at = local(at)
    for first, last in service_windows(turn, at):
        if first <= at < last:
            return _window_json(first, last)
    return None


def _check_time(turn: Turn, values: Values, raw: dict[str, Any]) -> str | None:
    windows = "、".join(f"{a}-{b}" for a, b in turn.settings.booking_slots)
    if raw.get("outside"):
        return f"这个时间不在服务时段内（每天 {windows}），请选一个时段。"
    if raw.get("full"):
        return "抱歉，您说的这个时间已经约满了，请换一个时段。"
    error = s.check_future(turn, values, raw)
    if error is not None:
        return error
    start, end = s.span_from_json(raw)
    if len(turn.store.booking_starts(values.get("service", ""), start, end)) >= turn.settings.booking_slot_capacity:
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
        Slot("when", "预约时间", _time_question, _answer_time, spot=_spot_time, check=_check_time, show=s.show_span),
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
            lambda turn, values: ("请问有什么具体要求吗？比如面积、房间数、需要注意的地方。没有可以回复“没有”。", ("没有",)),
            s.answer_text,
            skippable=True,
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
                kind="booking",
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
            f"好的，已为您预约{SERVICE_NAMES[values['service']]}：{format_span(start, end)}，单号 {ticket.number}。\n"
            "服务人员上门前会联系您；如需改期或取消，随时告诉我就可以。"
        )
