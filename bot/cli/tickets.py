"""``propbot tickets``: the front desk without a group chat (list, show; assign, done, escalate, reopen,
close, cancel).

Actions are the service layer's handlers (``flows.services``), the same the staff group's buttons
call: the same checks, events and outbox messages.
"""

from __future__ import annotations

import argparse
import json
import unicodedata
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from bot.app import App
from bot.cli import Subparsers
from bot.cli.run import with_app
from data.clock import local
from data.db import unit_of_work
from data.kinds import OPEN_STATUSES, EventKind, TicketKind, TicketStatus
from data.models import Staff, Ticket, TicketEvent
from data.store import Store
from flows import services
from flows.domain.errors import ActionError, NotFound
from flows.domain.tickets import AREA_NAMES
from flows.services import OFFICE, Actor, Result


# -- parser ------------------------------------------------------------------------------------------------
def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "tickets",
        help="list, show and work tickets (the front desk without a group chat)",
        description="Work tickets from the terminal. Actions record an event (actor staff:cli, or the "
        "staff member given with --as) and notify the resident or the staff group through the outbox.",
    )
    actions = parser.add_subparsers(dest="tickets_command", metavar="ACTION", required=True)
    _add_list(actions)
    _add_show(actions)
    actor = argparse.ArgumentParser(add_help=False)
    actor.add_argument(
        "--as",
        dest="actor",
        metavar="STAFF",
        help="record the action as this staff member (name or id); default: staff:cli",
    )
    _add_action(
        actions,
        actor,
        "assign",
        "dispatch the ticket to a staff member and tell the resident",
        _assign,
        staff=True,
    )
    _add_action(
        actions,
        actor,
        "done",
        "mark the work done and ask the resident to confirm",
        _done,
        text=("--note", "what was done"),
    )
    _add_action(
        actions,
        actor,
        "escalate",
        "escalate one step up the chain (the team lead, then the director)",
        _escalate,
    )
    _add_action(
        actions,
        actor,
        "reopen",
        "reopen a done or closed ticket (back to its technician)",
        _reopen,
        text=("--reason", "why it is reopened (shown to the staff)"),
    )
    _add_action(actions, actor, "close", "close the ticket", _close, text=("--note", "closing note"))
    _add_action(
        actions,
        actor,
        "cancel",
        "cancel an open ticket and tell the resident and the staff group",
        _cancel,
        text=("--reason", "why (shown to the resident)"),
    )


def _add_list(actions: Subparsers) -> None:
    parser = actions.add_parser(
        "list",
        help="list tickets, newest first",
        description="List tickets, newest first. --status open means every "
        f"status still being worked ({', '.join(OPEN_STATUSES)}).",
    )
    parser.add_argument("--status", choices=("open", *TicketStatus), help="only tickets in this status")
    parser.add_argument("--kind", choices=tuple(TicketKind), help="only tickets of this kind")
    parser.add_argument("--limit", type=int, default=200, help="at most this many (default 200)")
    parser.add_argument("--json", action="store_true", help="print a JSON list with every field")
    parser.set_defaults(handler=run_list)


def _add_show(actions: Subparsers) -> None:
    parser = actions.add_parser(
        "show",
        help="show one ticket with its timeline",
        description="Show every field of a ticket and its timeline of events.",
    )
    parser.add_argument("number", help="ticket number, e.g. BX-20261123-0007")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run_show)


Action = Callable[[Store, Actor, Ticket, datetime, argparse.Namespace], Result]


def _add_action(
    actions: Subparsers,
    actor: argparse.ArgumentParser,
    name: str,
    help_text: str,
    action: Action,
    *,
    staff: bool = False,
    text: tuple[str, str] | None = None,
) -> None:
    parser = actions.add_parser(
        name, parents=[actor], help=help_text, description=help_text[0].upper() + help_text[1:] + "."
    )
    parser.add_argument("number", help="ticket number")
    if staff:
        parser.add_argument("staff", help="staff member's name or id")
    if text:
        parser.add_argument(text[0], dest="text", default="", help=text[1])
    parser.set_defaults(handler=lambda args: run_action(args, action))


# -- reading -------------------------------------------------------------------------------------------------
def run_list(args: argparse.Namespace) -> int:
    def work(store: Store, now: datetime) -> str:
        tickets = store.tickets.listed(status=args.status, kind=args.kind, limit=args.limit)
        if args.json:
            return json.dumps([ticket_dict(t) for t in tickets], ensure_ascii=False, indent=2)
        return _table(tickets, now) if tickets else "没有符合条件的工单。"

    return _in_store(work)


def run_show(args: argparse.Namespace) -> int:
    def work(store: Store, now: datetime) -> str:
        ticket = _ticket(store, args.number)
        if args.json:
            data = ticket_dict(ticket) | {"timeline": [_event_dict(store, e) for e in ticket.events]}
            return json.dumps(data, ensure_ascii=False, indent=2)
        return "\n".join(_details(store, ticket, now))

    return _in_store(work)


def _in_store(work: Callable[[Store, datetime], str]) -> int:
    """Run ``work`` in one transaction and print what it says. A refused step (``ActionError``) rolls
    back, leaving no event or message behind, and exits 1 with the message."""

    def run(app: App) -> int:
        with unit_of_work(app.sessions) as store:
            text = work(store, app.clock.now())
        print(text)
        return 0

    return with_app(run, (ActionError,))


def ticket_dict(ticket: Ticket) -> dict[str, Any]:
    """Every field of a ticket, codes as stored plus their names, times in ISO 8601 (local offset)."""
    return {
        "number": ticket.number,
        "id": ticket.id,
        "kind": ticket.kind,
        "kind_name": TicketKind.name_of(ticket.kind),
        "status": ticket.status,
        "status_name": TicketStatus.name_of(ticket.status),
        "priority": ticket.priority,
        "category": ticket.category,
        "area": ticket.area,
        "unit": ticket.unit.label if ticket.unit is not None else None,
        "unit_id": ticket.unit_id,
        "location": ticket.location,
        "description": ticket.description,
        "photos": list(ticket.photos),
        "preferred_start": _iso(ticket.preferred_start),
        "preferred_end": _iso(ticket.preferred_end),
        "contact_phone": ticket.contact_phone,
        "details": ticket.details,
        "resident_id": ticket.resident_id,
        "account_id": ticket.account_id,
        "assignee": ticket.assignee.name if ticket.assignee is not None else None,
        "assignee_id": ticket.assignee_id,
        "repeat_count": ticket.repeat_count,
        "created_at": _iso(ticket.created_at),
        "updated_at": _iso(ticket.updated_at),
        "arrive_by": _iso(ticket.arrive_by),
        "fix_by": _iso(ticket.fix_by),
        "reply_by": _iso(ticket.reply_by),
        "done_at": _iso(ticket.done_at),
        "closed_at": _iso(ticket.closed_at),
        "events": len(ticket.events),
    }


def _event_dict(store: Store, event: TicketEvent) -> dict[str, Any]:
    return {
        "at": _iso(event.at),
        "actor": event.actor,
        "actor_name": _actor_name(store, event.actor),
        "kind": event.kind,
        "note": event.note,
        "data": event.data,
    }


def _iso(at: datetime | None) -> str | None:
    return local(at).isoformat() if at is not None else None


def _when(at: datetime | None) -> str:
    return f"{local(at):%Y-%m-%d %H:%M}" if at is not None else ""


def _place(ticket: Ticket) -> str:
    place = ticket.unit.label if ticket.unit is not None else ticket.location
    return place + (f"（{AREA_NAMES[ticket.area]}）" if ticket.area in AREA_NAMES else "")


def _deadlines(ticket: Ticket, now: datetime) -> str:
    """The time limits still running, marked when already missed."""
    parts = []
    for label, deadline in (("到场", ticket.arrive_by), ("修复", ticket.fix_by), ("答复", ticket.reply_by)):
        if deadline is None:
            continue
        late = "（超时）" if ticket.status in OPEN_STATUSES and deadline < now else ""
        parts.append(f"{label} {local(deadline):%m-%d %H:%M}{late}")
    return "；".join(parts)


def _table(tickets: Sequence[Ticket], now: datetime) -> str:
    header = ("编号", "类型", "状态", "位置", "类别", "负责人", "受理时间", "时限")
    rows = [
        (
            t.number,
            TicketKind.name_of(t.kind) + ("!" if t.priority == "urgent" else ""),
            TicketStatus.name_of(t.status),
            _place(t),
            t.category or "",
            t.assignee.name if t.assignee else "",
            _when(t.created_at),
            _deadlines(t, now),
        )
        for t in tickets
    ]
    widths = [max(_width(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(_pad(cell, w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in (header, *rows)
    ]
    return "\n".join([lines[0], "-" * _width(lines[0]), *lines[1:]])


def _width(text: str) -> int:
    """Terminal columns: Chinese characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _details(store: Store, ticket: Ticket, now: datetime) -> list[str]:
    kind, status = TicketKind.name_of(ticket.kind), TicketStatus.name_of(ticket.status)
    title = f"{ticket.number}  {kind} · {status}"
    fields = [
        ("优先级", "紧急" if ticket.priority == "urgent" else "普通"),
        ("位置", _place(ticket)),
        ("类别", ticket.category or ""),
        ("内容", ticket.description),
        ("联系电话", ticket.contact_phone or ""),
        ("预约时间", " 至 ".join(filter(None, (_when(ticket.preferred_start), _when(ticket.preferred_end))))),
        ("负责人", ticket.assignee.name if ticket.assignee else "（未派工）"),
        ("受理时间", _when(ticket.created_at)),
        ("更新时间", _when(ticket.updated_at)),
        ("时限", _deadlines(ticket, now)),
        ("完成时间", _when(ticket.done_at)),
        ("关闭时间", _when(ticket.closed_at)),
        ("照片", f"{len(ticket.photos)} 张" if ticket.photos else ""),
        ("再次反映", f"{ticket.repeat_count} 次" if ticket.repeat_count else ""),
        ("详情", json.dumps(ticket.details, ensure_ascii=False) if ticket.details else ""),
    ]
    lines = [title] + [f"{label}：{value}" for label, value in fields if value]
    lines.append("时间线：")
    for event in ticket.events:
        note = f"  {event.note}" if event.note else ""
        lines.append(
            f"  {_when(event.at)}  {EventKind.name_of(event.kind)}  {_actor_name(store, event.actor)}{note}"
        )
    return lines


def _actor_name(store: Store, actor: str) -> str:
    """``staff:3`` -> ``王师傅``; other actors (``staff:cli``, ``system``) as they are."""
    return store.views.actor_name(actor) or actor


# -- actions -------------------------------------------------------------------------------------------------
def run_action(args: argparse.Namespace, action: Action) -> int:
    def work(store: Store, now: datetime) -> str:
        return action(store, _actor(store, args.actor), _ticket(store, args.number), now, args).text

    return _in_store(work)


def _ticket(store: Store, number: str) -> Ticket:
    ticket = store.tickets.by_number(number.strip())
    if ticket is None:
        raise NotFound(f"找不到工单 {number}")
    return ticket


def _staff(store: Store, name_or_id: str) -> Staff:
    staff = store.staff_member(name_or_id.strip())
    if staff is None:
        raise NotFound(f"找不到在职员工“{name_or_id}”（请用姓名或编号）")
    return staff


def _actor(store: Store, name_or_id: str | None) -> Actor:
    return OFFICE if not name_or_id else Actor.of(_staff(store, name_or_id))


def _assign(store: Store, actor: Actor, ticket: Ticket, now: datetime, args: argparse.Namespace) -> Result:
    return services.assign(store, actor, ticket, _staff(store, args.staff), now)


def _done(store: Store, actor: Actor, ticket: Ticket, now: datetime, args: argparse.Namespace) -> Result:
    return services.done(store, actor, ticket, now, args.text)


def _escalate(store: Store, actor: Actor, ticket: Ticket, now: datetime, args: argparse.Namespace) -> Result:
    return services.escalate(store, actor, ticket, now)


def _reopen(store: Store, actor: Actor, ticket: Ticket, now: datetime, args: argparse.Namespace) -> Result:
    return services.reopen(store, actor, ticket, now, args.text)


def _close(store: Store, actor: Actor, ticket: Ticket, now: datetime, args: argparse.Namespace) -> Result:
    return services.close(store, actor, ticket, now, args.text)


def _cancel(store: Store, actor: Actor, ticket: Ticket, now: datetime, args: argparse.Namespace) -> Result:
    return services.cancel(store, actor, ticket, now, args.text)
