"""Working a ticket: claim, assign, reassign, done, reopen, close, cancel.

Each handler checks who may do it, applies the life-cycle step of ``flows.domain.tickets`` (the state
change, its event and its outbox messages, in the caller's transaction) and says what happened.
"""

from __future__ import annotations

from datetime import datetime

from data.kinds import OPEN_STATUSES, TicketKind, TicketStatus
from data.models import Staff, Ticket
from data.store import Store
from flows.domain import tickets
from flows.domain.errors import ActionError, NotAllowed
from flows.services.base import Actor, Result, require_compound, require_staff


def claim(store: Store, actor: Actor, ticket: Ticket, now: datetime) -> Result:
    """A staff member takes the ticket; the resident is told who comes and by when.

    Claiming one's own open ticket again changes nothing; someone else's open ticket is refused
    (``NotAllowed``: reassign it instead); a done, closed or cancelled one too (``TicketError``)."""
    staff = require_staff(actor, "认领")
    require_compound(actor, ticket.compound_id, ticket.number)
    if ticket.assignee_id == staff.id and ticket.status in OPEN_STATUSES:
        return Result("您已经接了这个单")
    if ticket.assignee is not None and ticket.status in OPEN_STATUSES:
        raise NotAllowed(f"该工单已由 {ticket.assignee.name} 接单；如需接手请用“转派”")
    told = tickets.assign(store, ticket, staff, now, actor.tag)
    return Result("接单成功，已通知居民", status=f"已由 {staff.name} 接单", resident=told)


def assign(store: Store, actor: Actor, ticket: Ticket, to: Staff, now: datetime) -> Result:
    """Dispatch the ticket to ``to`` (the office's choice); the resident is told."""
    _check_pair(actor, ticket, to)
    told = tickets.assign(store, ticket, to, now, actor.tag)
    return Result(
        f"{ticket.number} 已派给 {to.name}（{TicketStatus.name_of(ticket.status)}），已通知居民。",
        status=f"已由 {actor.name} 派给 {to.name}",
        resident=told,
    )


def reassign(store: Store, actor: Actor, ticket: Ticket, to: Staff, now: datetime) -> Result:
    """Hand the ticket to another technician (``reassign_choices``); the resident is told."""
    _check_pair(actor, ticket, to)
    if ticket.assignee_id == to.id and ticket.status in OPEN_STATUSES:
        raise ActionError(f"{ticket.number} 已经由 {to.name} 负责")
    told = tickets.assign(store, ticket, to, now, actor.tag)
    return Result(f"已转派给 {to.name}", status=f"已由 {actor.name} 转派给 {to.name}", resident=told)


def reassign_choices(store: Store, ticket: Ticket) -> list[Staff]:
    """The technicians the ticket can go to: the compound's, but not the one who has it."""
    technicians = store.staff_by_role(ticket.compound_id, "technician")
    return [s for s in technicians if s.id != ticket.assignee_id]


def done(store: Store, actor: Actor, ticket: Ticket, now: datetime, note: str = "") -> Result:
    """The work is done; the resident is asked to confirm (解决了 / 没解决), the callback follows."""
    require_compound(actor, ticket.compound_id, ticket.number)
    told = tickets.mark_done(store, ticket, now, actor.tag, note)
    return Result(f"{ticket.number} 已完成，已请居民确认。", status=f"已由 {actor.name} 完成", resident=told)


def reopen(store: Store, actor: Actor, ticket: Ticket, now: datetime, reason: str = "") -> Result:
    """A done or closed ticket goes back to its technician; the staff group is told."""
    require_compound(actor, ticket.compound_id, ticket.number)
    tickets.reopen(store, ticket, now, actor.tag, reason)
    who = f"，由 {ticket.assignee.name} 跟进" if ticket.assignee else "，待认领"
    return Result(
        f"{ticket.number} 已重新打开（{TicketStatus.name_of(ticket.status)}{who}），已通知员工群。",
        status=f"已由 {actor.name} 重新打开",
    )


def close(store: Store, actor: Actor, ticket: Ticket, now: datetime, note: str = "") -> Result:
    """Close the ticket (after the callback, or by the office)."""
    require_compound(actor, ticket.compound_id, ticket.number)
    tickets.close(store, ticket, now, actor.tag, note)
    return Result(f"{ticket.number} 已关闭。", status=f"已由 {actor.name} 关闭")


def cancel(store: Store, actor: Actor, ticket: Ticket, now: datetime, reason: str = "") -> Result:
    """Cancel an open ticket on the office's side; the staff group and the resident are told."""
    require_compound(actor, ticket.compound_id, ticket.number)
    why = reason or f"{actor.name}取消"
    tickets.cancel(store, ticket, now, actor.tag, why)
    what = TicketKind.name_of(ticket.kind, "工单")
    told = f"您的{what}（{ticket.number}）已取消：{why}。如有疑问请联系管理处。"
    tickets.notify_resident(store, ticket, now, "cancelled", told)
    return Result(f"{ticket.number} 已取消。", status=f"已由 {actor.name} 取消", resident=told)


def _check_pair(actor: Actor, ticket: Ticket, to: Staff) -> None:
    require_compound(actor, ticket.compound_id, ticket.number)
    if to.compound_id != ticket.compound_id:
        raise NotAllowed(f"{to.name} 不是这个小区的员工")
