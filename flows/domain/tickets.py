"""The ticket's life: received -> dispatched -> in progress -> done -> closed (or reopened).

One function per use case. Each records an event and writes the messages it causes to the outbox
in the caller's transaction, so the front desk, the staff group and the scheduler all share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from data.clock import local
from data.kinds import OPEN_STATUSES, EventKind, Limits, TicketKind, TicketStatus
from data.models import LOCATION_LENGTH, ChannelAccount, Compound, Staff, Ticket
from data.settings import CompoundSettings
from data.store import STAFF_RECIPIENT, Store, workdays_after
from flows.domain.errors import ActionError

AREA_NAMES = {"in_home": "户内", "common": "公共区域"}
STAFF_BUTTONS = [["认领", "claim"], ["完成", "done"], ["升级", "escalate"], ["转派", "reassign"]]


class TicketError(ActionError):
    """A lifecycle step that does not apply to the ticket as it is (shown to the user as is)."""


@dataclass(frozen=True)
class NewTicket:
    kind: TicketKind
    description: str
    category: str | None = None
    area: str | None = None
    location: str = ""
    preferred_start: datetime | None = None
    preferred_end: datetime | None = None
    contact_phone: str | None = None
    photos: tuple[str, ...] = ()
    details: dict[str, Any] | None = None
    urgent: bool = False


def open_ticket(
    store: Store,
    compound: Compound,
    account: ChannelAccount | None,
    new: NewTicket,
    now: datetime,
    actor: str,
) -> Ticket:
    """Create a ticket with its number and time limits, record it, and tell the staff group."""
    settings = store.settings(compound)
    resident = account.resident if account is not None else None
    urgent = (
        new.urgent
        or new.kind == TicketKind.EMERGENCY
        or (new.kind == TicketKind.REPAIR and new.category in settings.urgent_categories)
    )
    ticket = Ticket(
        number=store.tickets.next_number(new.kind, now),
        compound_id=compound.id,
        unit_id=resident.unit_id if resident is not None and new.area != "common" else None,
        resident_id=resident.id if resident is not None else None,
        account_id=account.id if account is not None else None,
        kind=new.kind,
        category=new.category,
        area=new.area,
        location=new.location[:LOCATION_LENGTH],  # typed words: the place of a complaint is any length
        description=new.description,
        photos=list(new.photos),
        preferred_start=new.preferred_start,
        preferred_end=new.preferred_end,
        contact_phone=new.contact_phone,
        details=new.details or {},
        priority="urgent" if urgent else "normal",
        status=TicketStatus.RECEIVED,
        created_at=now,
        updated_at=now,
    )
    _set_time_limits(ticket, settings, now)
    if resident is not None and new.area == "common":
        ticket.details = {**ticket.details, "reporter_unit_id": resident.unit_id}
    store.tickets.add(ticket)
    store.tickets.add_event(ticket, now, actor, EventKind.RECEIVED, new.description[:200])
    card = staff_card(ticket, "新" + TicketKind.name_of(ticket.kind, "工单"))
    notify_staff(store, ticket, now, "new_ticket", card, photos=ticket.photos)
    return ticket


def _set_time_limits(ticket: Ticket, settings: CompoundSettings, now: datetime) -> None:
    limits = kind.limits if (kind := TicketKind.of(ticket.kind)) is not None else Limits.NONE
    if limits == Limits.VISIT:
        minutes = settings.arrive_urgent_min if ticket.priority == "urgent" else settings.arrive_normal_min
        arrive = now + timedelta(minutes=minutes)
        if ticket.kind == TicketKind.REPAIR and ticket.preferred_start and ticket.preferred_start > arrive:
            # the agreed time: arrive within the window, or within the usual margin of a point in time
            end = ticket.preferred_end or ticket.preferred_start
            arrive = max(end, ticket.preferred_start + timedelta(minutes=settings.arrive_normal_min))
        ticket.arrive_by = arrive
        ticket.fix_by = arrive + timedelta(hours=settings.fix_ordinary_h)
    elif limits == Limits.REPLY_WORKDAYS:
        ticket.reply_by = workdays_after(now, settings.complaint_reply_workdays)
    elif limits == Limits.REPLY_DAY:
        ticket.reply_by = now + timedelta(hours=24)


def merge_repeat(
    store: Store, ticket: Ticket, text: str, now: datetime, actor: str, photos: tuple[str, ...] = ()
) -> None:
    """A second report of an open problem: one ticket, a louder voice."""
    ticket.repeat_count += 1
    if photos:
        ticket.photos = [*ticket.photos, *photos]
    store.tickets.add_event(ticket, now, actor, EventKind.MERGED, text[:500])
    notify_staff(
        store,
        ticket,
        now,
        "repeat",
        f"【催办】{ticket.number} 居民再次反映（第{ticket.repeat_count + 1}次）：{text[:100]}\n"
        f"当前状态：{TicketStatus.name_of(ticket.status)}"
        + (f"，{ticket.assignee.name}" if ticket.assignee else ""),
        photos=photos,  # only the new ones: the earlier ones went with the card
    )


def assign(store: Store, ticket: Ticket, staff: Staff, now: datetime, actor: str) -> str:
    """Dispatch to a named person and tell the resident who is coming and by when; what they are told."""
    _require_open(ticket)
    previous = ticket.assignee
    ticket.assignee_id = staff.id
    ticket.assignee = staff
    if ticket.status == TicketStatus.RECEIVED:
        ticket.status = TicketStatus.DISPATCHED
    moved = previous is not None and previous.id != staff.id
    kind = EventKind.REASSIGNED if moved else EventKind.DISPATCHED
    store.tickets.add_event(ticket, now, actor, kind, f"{staff.name}", {"staff_id": staff.id})
    when = f"，预计 {format_time(ticket.arrive_by)} 前上门" if ticket.arrive_by else ""
    told = f"您的{TicketKind.name_of(ticket.kind, '工单')}（{ticket.number}）已由 {staff.name} 接单{when}。"
    notify_resident(store, ticket, now, "dispatched", told)
    return told


def mark_done(store: Store, ticket: Ticket, now: datetime, actor: str, note: str = "") -> str:
    """Done: the resident is asked to confirm (解决了 / 没解决); what they are told."""
    _require_open(ticket)
    ticket.status = TicketStatus.DONE
    ticket.done_at = now
    store.tickets.add_event(ticket, now, actor, EventKind.DONE, note)
    told = f"您的{TicketKind.name_of(ticket.kind, '工单')}（{ticket.number}）已处理完成。请问问题解决了吗？"
    buttons = [["解决了", f"解决了 {ticket.number}"], ["没解决", f"没解决 {ticket.number}"]]
    notify_resident(store, ticket, now, "done", told, buttons=buttons)
    return told


def reopen(store: Store, ticket: Ticket, now: datetime, actor: str, reason: str = "") -> None:
    """Back to the same technician until the resident is satisfied (直到业主满意为止)."""
    if ticket.status not in (TicketStatus.DONE, TicketStatus.CLOSED):
        raise TicketError(
            f"{ticket.number} 还在处理中（{TicketStatus.name_of(ticket.status)}），无需重新打开"
        )
    ticket.status = TicketStatus.DISPATCHED if ticket.assignee_id else TicketStatus.RECEIVED
    ticket.done_at = None
    ticket.closed_at = None
    store.tickets.add_event(ticket, now, actor, EventKind.REOPENED, reason)
    who = f"，请 {ticket.assignee.name} 跟进" if ticket.assignee else "，请认领"
    notify_staff(
        store,
        ticket,
        now,
        "reopened",
        f"【重新打开】{ticket.number}{who}。原因：{reason or '居民反馈未解决'}",
    )


def close(store: Store, ticket: Ticket, now: datetime, actor: str, note: str = "") -> None:
    if ticket.status == TicketStatus.CLOSED:
        raise TicketError(f"{ticket.number} 已经关闭")
    ticket.status = TicketStatus.CLOSED
    ticket.closed_at = now
    store.tickets.add_event(ticket, now, actor, EventKind.CLOSED, note)


def cancel(store: Store, ticket: Ticket, now: datetime, actor: str, note: str = "") -> None:
    _require_open(ticket)
    ticket.status = TicketStatus.CANCELLED
    ticket.closed_at = now
    store.tickets.add_event(ticket, now, actor, EventKind.CANCELLED, note)
    notify_staff(store, ticket, now, "cancelled", f"【已取消】{ticket.number}：{note or '居民取消'}")


def reschedule(
    store: Store, ticket: Ticket, start: datetime, end: datetime, now: datetime, actor: str
) -> None:
    """The resident moves the agreed visit or service time; the time limits follow it."""
    _require_open(ticket)
    ticket.preferred_start, ticket.preferred_end = start, end
    ticket.updated_at = now
    if ticket.kind == TicketKind.REPAIR:
        _set_time_limits(ticket, store.settings(store.compound(ticket.compound_id)), now)
    span = format_span(start, end)
    store.tickets.add_event(ticket, now, actor, EventKind.RESCHEDULED, span)
    notify_staff(store, ticket, now, "rescheduled", f"【改期】{ticket.number} 居民改约时间：{span}")


def _require_open(ticket: Ticket) -> None:
    if ticket.status not in OPEN_STATUSES:
        raise TicketError(
            f"{ticket.number} 当前状态为“{TicketStatus.name_of(ticket.status)}”，不能进行此操作"
        )


# -- messages ------------------------------------------------------------------------------------
def notify_staff(
    store: Store, ticket: Ticket, now: datetime, kind: str, text: str, photos: Sequence[str] = ()
) -> None:
    """A card in the staff group; ``photos`` (channel references) follow it as a reply."""
    payload: dict[str, Any] = {"ticket": ticket.number, "buttons": STAFF_BUTTONS}
    if photos:
        payload["photos"] = list(photos)
    store.enqueue(
        "staff",
        STAFF_RECIPIENT,
        kind,
        text,
        now,
        payload=payload,
        urgent=ticket.priority == "urgent",
        ticket=ticket,
    )


def notify_resident(
    store: Store,
    ticket: Ticket,
    now: datetime,
    kind: str,
    text: str,
    buttons: list[list[str]] | None = None,
) -> list[ChannelAccount]:
    """Tell the account that reported the ticket (or, failing that, every account of the unit);
    the accounts told."""
    accounts = store.tickets.accounts_to_tell(ticket)
    for account in accounts:
        store.enqueue(
            account.channel,
            account.external_id,
            kind,
            text,
            now,
            payload={"ticket": ticket.number, "buttons": buttons or []},
            urgent=ticket.priority == "urgent",
            ticket=ticket,
        )
    return accounts


def staff_card(ticket: Ticket, title: str) -> str:
    """The group card: what, where, when. No resident phone or account (privacy)."""
    lines = [f"【{title}】{ticket.number}" + ("（紧急）" if ticket.priority == "urgent" else "")]
    home = ticket.unit.label if ticket.unit is not None else ""
    place = ticket.location or home
    if ticket.area:
        place += f"（{AREA_NAMES.get(ticket.area, ticket.area)}）"
    if place:
        lines.append(f"位置：{place}")
    if home and home not in place:  # a complaint about 北门: the place named, then who reported it
        lines.append(f"反映住户：{home}")
    lines.append(f"内容：{ticket.description[:200]}")
    if ticket.preferred_start:
        lines.append(f"预约时间：{format_span(ticket.preferred_start, ticket.preferred_end)}")
    if ticket.photos:
        lines.append(f"照片：{len(ticket.photos)} 张")
    for label, deadline in (("到场时限", ticket.arrive_by), ("答复时限", ticket.reply_by)):
        if deadline:
            lines.append(f"{label}：{format_time(deadline)}")
    return "\n".join(lines)


WEEKDAYS = "一二三四五六日"


def format_time(at: datetime | None) -> str:
    if at is None:
        return ""
    return f"{format_day(at)} {local(at):%H:%M}"


def format_day(at: datetime) -> str:
    at = local(at)
    return f"{at.month}月{at.day}日(周{WEEKDAYS[at.weekday()]})"


def is_whole_days(start: datetime, end: datetime) -> bool:
    """A date said without a time (周六, 明天, 11月20日): 00:00 of the first day to 23:59 of the last."""
    first, last = local(start), local(end)
    return (first.hour, first.minute, last.hour, last.minute) == (0, 0, 23, 59)


def format_span(start: datetime | None, end: datetime | None) -> str:
    if start is None:
        return ""
    if end is None or end == start:
        return format_time(start)
    first, last = local(start), local(end)
    if is_whole_days(first, last):  # the day, not "00:00-23:59"
        same = first.date() == last.date()
        return format_day(first) if same else f"{format_day(first)} 至 {format_day(last)}"
    if first.date() == last.date():
        return f"{format_time(first)}-{last:%H:%M}"
    return f"{format_time(first)} 至 {format_time(last)}"


def timeline(ticket: Ticket, limit: int = 5) -> list[str]:
    """The latest events, oldest first, in words a resident understands."""
    events = ticket.events[-limit:]
    return [
        f"{format_time(e.at)} {EventKind.told_of(e.kind)}"
        + (f"（{e.note[:40]}）" if e.kind in (EventKind.DISPATCHED, EventKind.REASSIGNED) and e.note else "")
        for e in events
    ]
