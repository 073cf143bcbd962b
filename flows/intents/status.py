"""进度查询: this unit's tickets with their timeline; never another unit's."""

from __future__ import annotations

import re
from datetime import timedelta

from data.kinds import BEFORE_VISIT, TicketKind, TicketStatus
from data.models import Ticket
from flows.dialog.spec import Aside, FlowSpec
from flows.dialog.turn import Turn
from flows.domain.tickets import format_time, timeline

TICKET_NUMBER = re.compile(r"\b([a-z]{2})-?(\d{8})-?(\d{4})\b", re.IGNORECASE)
RECENT = timedelta(days=30)


def answer_status(turn: Turn) -> None:
    unit = turn.unit
    if unit is None:
        turn.say("为保护业主信息，查询进度前需要先绑定房屋。")
        return
    number = TICKET_NUMBER.search(turn.text)
    if number is not None:
        _answer_one(turn, "-".join(number.groups()).upper())
        return
    tickets = [t for t in turn.store.tickets.recent_of_unit(unit.id, turn.now - RECENT) if _visible(turn, t)]
    category = turn.parse.value("category")
    if category is not None:
        tickets = [t for t in tickets if t.category == category] or tickets
    if not tickets:
        turn.say("您家最近没有需要处理的工单。如需报修、投诉或预约，直接告诉我就可以。")
        return
    turn.say("\n\n".join(describe(t) for t in tickets[:5]))


def _answer_one(turn: Turn, number: str) -> None:
    ticket = turn.store.tickets.by_number(number)
    if ticket is None or not _visible(turn, ticket):
        turn.say(f"没有查到您家的工单 {number}，请核对单号。只能查询本户的工单哦。")
        return
    turn.say(describe(ticket))


def _visible(turn: Turn, ticket: Ticket) -> bool:
    """Household members share the unit's tickets; other units' stay private."""
    unit_id = turn.unit.id if turn.unit is not None else None
    return ticket.unit_id == unit_id or ticket.details.get("reporter_unit_id") == unit_id


def describe(ticket: Ticket) -> str:
    lines = [f"{TicketKind.name_of(ticket.kind, '工单')} {ticket.number}：{ticket.description[:40]}"]
    status = TicketStatus.name_of(ticket.status)
    if ticket.assignee is not None and ticket.status in (TicketStatus.DISPATCHED, TicketStatus.IN_PROGRESS):
        status += f"，{ticket.assignee.name}负责"
    lines.append(f"当前状态：{status}")
    if ticket.status in BEFORE_VISIT and ticket.arrive_by is not None:
        lines.append(f"预计上门：{format_time(ticket.arrive_by)} 前")
    if (
        ticket.kind == TicketKind.COMPLAINT
        and ticket.reply_by is not None
        and ticket.status != TicketStatus.CLOSED
    ):
        lines.append(f"答复时限：{format_time(ticket.reply_by)} 前")
    lines.append("进度：" + "；".join(timeline(ticket)))
    return "\n".join(lines)


SPEC = FlowSpec("status_query", answer=answer_status, needs_binding=True, aside=Aside.QUESTION)
