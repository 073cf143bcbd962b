"""Changing what exists: "保洁改到周日上午吧", "不用来了", "那个报修取消吧", "时间提前一点".

These act on the resident's open booking or repair (asking which one when several fit), never open a
second one. The dialog state holds the action, the tickets that fit, and the one chosen.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from data.kinds import TicketKind
from data.models import Ticket
from flows.dialog import slots
from flows.dialog.form import Narrowed
from flows.dialog.spec import FlowSpec
from flows.dialog.turn import Button, Turn
from flows.domain.tickets import TicketError, cancel, format_span, reschedule
from flows.intents import booking
from nlu.types import TimeSpan

NAME = "change"
NOTHING = "nothing"  # asked to call off a kind of thing the resident has none of
CHANGEABLE = (TicketKind.REPAIR, TicketKind.BOOKING, TicketKind.COMPLAINT)
# Words that move a time: 改到周日, 换个时间, 推迟到下午, 提前一点, 改期.
RESCHEDULE = re.compile(
    r"(?:改|换|调|挪)(?:到|成|为|在|个?时间|一下时间)|推迟|延后|延期|提前|往后推|改期|改天|换个?日子"
)
# Words that call off what exists: 取消, 不用来了, 不要了, 撤销, 不修了, 不约了.
CALL_OFF = re.compile(
    r"取消|撤销|撤回|退掉|退了|不用来了|别来了|不用过来|不要来|不修了|不约了|不需要了|不用修了|不要了|不做了"
)
# Which kind the message names.
KIND_WORDS = (
    (TicketKind.REPAIR, ("报修", "维修", "修", "师傅")),
    (TicketKind.BOOKING, ("预约", "保洁", "约", "家政", "洗衣", "搬家", "安装", "寄养")),
    (TicketKind.COMPLAINT, ("投诉",)),
)


def wanted(turn: Turn) -> str | None:
    """ "cancel" or "reschedule" when the message changes something the resident already has."""
    if turn.unit is None or turn.parse.intent == "emergency":
        return None
    named = _named_kind(turn.text) or (turn.parse.first("service") and TicketKind.BOOKING)
    if CALL_OFF.search(turn.text) and (turn.parse.intent == "cancel" or named):
        return "cancel" if _candidates(turn, "cancel") else (NOTHING if named else None)
    moving = turn.parse.intent in ("booking", "repair", "deny", "out_of_scope") or named
    if RESCHEDULE.search(turn.text) and moving:
        return "reschedule" if _candidates(turn, "reschedule") else None
    return None


class ChangeFlow:
    name = NAME

    def start(self, turn: Turn) -> None:
        action = wanted(turn) or "cancel"
        if action == NOTHING:
            kind = (_named_kind(turn.text) or TicketKind.BOOKING).label
            turn.say(f"查了一下，您家目前没有进行中的{kind}，不需要取消。还有其他需要随时告诉我。")
            return
        found = _candidates(turn, action)
        turn.state.update(action=action, candidates=[t.number for t in found])
        if len(found) == 1:
            self._act(turn, found[0])
            return
        self._ask_which(turn, found)

    def resume(self, turn: Turn) -> bool:
        chosen = turn.state.get("chosen")
        if chosen is None:
            ticket = self._pick(turn)
            if ticket is None:
                return False
            self._act(turn, ticket)
            return True
        ticket = turn.store.tickets.by_number(str(chosen))
        if ticket is None:
            turn.finish()
            return False
        if turn.state.get("action") == "cancel":
            return self._confirm_cancel(turn, ticket)
        return self._reschedule(turn, ticket, asked=True)

    def takes(self, turn: Turn, asked: FlowSpec) -> bool:
        if turn.state.get("chosen") is None:
            return self._pick(turn) is not None
        return turn.parse.first("datetime") is not None or _yes_or_no(turn) is not None

    def ask_again(self, turn: Turn, hint: str = "抱歉，我没太明白。") -> None:
        chosen = turn.state.get("chosen")
        ticket = turn.store.tickets.by_number(str(chosen)) if chosen is not None else None
        if ticket is not None and turn.state.get("action") == "cancel":
            self._ask_cancel(turn, ticket, hint)
            return
        if ticket is not None:
            turn.say(hint + "请问改到什么时间？", *slots.visit_time_question(turn, {})[1][1:])
            turn.stay(self.name)
            return
        tickets = [t for n in turn.state.get("candidates", []) if (t := turn.store.tickets.by_number(str(n)))]
        self._ask_which(turn, tickets, hint)

    # -- internals -------------------------------------------------------------------------------
    def _ask_which(self, turn: Turn, tickets: list[Ticket], hint: str = "") -> None:
        verb = "取消" if turn.state.get("action") == "cancel" else "改时间"
        buttons = [Button(f"{t.number} {_short(t)}", t.number) for t in tickets]
        turn.say(f"{hint}您有{len(tickets)}个进行中的事项，请问要{verb}哪一个？", *buttons)
        turn.stay(self.name)

    def _pick(self, turn: Turn) -> Ticket | None:
        numbers = [str(n) for n in turn.state.get("candidates", [])]
        text = turn.text.strip().upper()
        number = next((n for n in numbers if n in text), None)
        if number is not None:
            return turn.store.tickets.by_number(number)
        kind = _named_kind(turn.text)
        fitting = [
            t for n in numbers if (t := turn.store.tickets.by_number(n)) is not None and t.kind == kind
        ]
        return fitting[0] if len(fitting) == 1 else None

    def _act(self, turn: Turn, ticket: Ticket) -> None:
        turn.state["chosen"] = ticket.number
        if turn.state.get("action") == "cancel":
            self._ask_cancel(turn, ticket)
            return
        self._reschedule(turn, ticket, asked=False)

    def _ask_cancel(self, turn: Turn, ticket: Ticket, hint: str = "") -> None:
        """Calling off is not undone by a word: say which one, and ask."""
        kind = TicketKind.name_of(ticket.kind, "")
        turn.say(f"{hint}您是要取消{kind} {ticket.number}（{_short(ticket)}）吗？", "确认取消", "不取消")
        turn.stay(self.name)

    def _confirm_cancel(self, turn: Turn, ticket: Ticket) -> bool:
        answer = _yes_or_no(turn)
        if answer is None:
            return False
        if not answer:
            turn.finish()
            turn.say(f"好的，{ticket.number} 保留不变。还有其他需要随时告诉我。")
            return True
        self._cancel(turn, ticket)
        return True

    @staticmethod
    def _cancel(turn: Turn, ticket: Ticket) -> None:
        turn.finish()
        try:
            cancel(turn.store, ticket, turn.now, turn.actor, "居民取消")
        except TicketError as error:
            turn.say(f"抱歉，{error}。如有需要请转人工。")
            return
        turn.say(
            f"好的，已为您取消{TicketKind.name_of(ticket.kind, '')} {ticket.number}（{_short(ticket)}）。"
        )

    def _reschedule(self, turn: Turn, ticket: Ticket, asked: bool) -> bool:
        value = _new_time(turn, ticket)
        if isinstance(value, Narrowed):
            turn.state["narrowed"] = {"when": value.hint}  # "上午" next means that day's morning
            first, last = booking.hint_days(value.hint)
            text, buttons = booking.days_question(turn, {"service": ticket.category}, first, last)
            turn.say(value.note + text, *buttons)
            turn.stay(self.name)
            return True
        if value is None:
            if asked:
                return False
            turn.say(f"好的，{_short(ticket)}（{ticket.number}）请问改到什么时间？")
            turn.stay(self.name)
            return True
        error = _check(turn, ticket, value)
        if error is not None:
            turn.say(error)
            turn.stay(self.name)
            return True
        start, end = slots.span_from_json(value)
        turn.finish()
        what = _short(ticket)  # before the change: 预约家政保洁 11月28日(周六) ...
        reschedule(turn.store, ticket, start, end, turn.now, turn.actor)
        turn.say(f"好的，{what}（{ticket.number}）已改到 {format_span(start, end)}，已通知工作人员。")
        return True


FLOW = ChangeFlow()
SPEC = FlowSpec(NAME, flow=FLOW)  # started by what the message says (``wanted``), not by an intent


def _candidates(turn: Turn, action: str) -> list[Ticket]:
    """The resident's open tickets the action can apply to, those of the kind named if any."""
    if turn.unit is None:
        return []
    kinds = (TicketKind.REPAIR, TicketKind.BOOKING) if action == "reschedule" else CHANGEABLE
    found = [t for t in turn.store.tickets.open_of_unit(turn.unit.id) if t.kind in kinds]
    if action == "reschedule":
        found = [t for t in found if t.preferred_start is not None or t.kind == TicketKind.REPAIR]
    named = _named_kind(turn.text)
    service = turn.parse.value("service")
    if service is not None:
        found = [t for t in found if t.kind == TicketKind.BOOKING and t.category == service] or found
    elif named is not None:
        found = [t for t in found if t.kind == named] or found
    return sorted(found, key=lambda t: t.created_at, reverse=True)[:5]


def _named_kind(text: str) -> TicketKind | None:
    return next((kind for kind, words in KIND_WORDS if any(w in text for w in words)), None)


YES = frozenset(
    {"确认取消", "取消", "取消吧", "是", "是的", "对", "确认", "确定", "嗯", "好", "好的", "可以", "要"}
)
NO = frozenset({"不取消", "不", "不用", "不要", "不是", "算了", "先不取消", "保留"})


def _yes_or_no(turn: Turn) -> bool | None:
    text = turn.text.strip("。.！!~ ").lower()
    if text in YES:
        return True
    if text in NO:
        return False
    intent = turn.parse.intent
    return True if intent == "affirm" else False if intent == "deny" else None


def _short(ticket: Ticket) -> str:
    if ticket.kind == TicketKind.BOOKING:
        return f"{ticket.description} {format_span(ticket.preferred_start, ticket.preferred_end)}"
    return ticket.description[:16]


# "推迟一天", "提前两天", "往后推一天": the same window, days later or earlier.
SHIFT = re.compile(r"(推迟|延后|往后推|晚|提前|往前|早)\s*([一两二三1-3])\s*天")
_DAYS = {"一": 1, "两": 2, "二": 2, "三": 3, "1": 1, "2": 2, "3": 3}


def _shifted(turn: Turn, ticket: Ticket) -> dict[str, Any] | None:
    found = SHIFT.search(turn.text)
    if found is None or ticket.preferred_start is None:
        return None
    days = _DAYS[found.group(2)] * (-1 if found.group(1) in ("提前", "往前", "早") else 1)
    end = ticket.preferred_end or ticket.preferred_start
    return slots.span_to_json(
        TimeSpan(ticket.preferred_start + timedelta(days=days), end + timedelta(days=days))
    )


def _new_time(turn: Turn, ticket: Ticket) -> dict[str, Any] | Narrowed | None:
    shifted = _shifted(turn, ticket)
    if shifted is not None:
        return shifted
    if ticket.kind == TicketKind.BOOKING:
        return booking.answer_time(turn, {"service": ticket.category})
    return slots.answer_time(turn, {})


def _check(turn: Turn, ticket: Ticket, value: dict[str, Any]) -> str | None:
    if ticket.kind == TicketKind.BOOKING:
        return booking.check_time(turn, {"service": ticket.category}, value)
    return slots.check_future(turn, {}, value)
