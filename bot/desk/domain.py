"""The desk's one door to the domain: every read and every action the web pages need, as plain
views (no ORM object leaves this module, so templates never touch a closed session).

The ticket actions (claim, assign, done, reopen, close) are the service layer's handlers
(flows.services), the same the staff group's buttons and ``propbot tickets`` call; a reply goes
through the relay (flows.domain.relay), binding codes through flows.domain.binding_codes. Each function is one
transaction; a refused step raises ``DeskError`` and leaves nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.app import App
from data.clock import local
from data.db import unit_of_work
from data.kinds import BEFORE_VISIT, OPEN_STATUSES, EventKind, TicketKind, TicketStatus
from data.models import BindingCode, Staff, Ticket, TicketEvent, Unit
from data.store import Store
from data.views import TicketQuery
from flows import services
from flows.domain import binding_codes, relay, tickets
from flows.domain.binding_codes import STATE_NAMES, CodeError
from flows.domain.errors import ActionError
from flows.domain.tickets import AREA_NAMES
from flows.intents.booking import SERVICE_NAMES
from flows.intents.complaint import TOPIC_NAMES
from flows.reports import report as reports
from flows.reports.kpi import Period
from flows.services import Actor, Result

PAGE = 50
FAULT_NAMES = {
    "water": "给水漏水",
    "drain": "下水堵塞",
    "electric": "电路",
    "lighting": "照明",
    "door_lock": "门锁门禁",
    "lift": "电梯",
    "wall": "墙面",
    "gas": "燃气",
    "appliance": "家电",
    "other": "其他",
}
CATEGORY_NAMES: dict[str, dict[str, str]] = {
    TicketKind.REPAIR: FAULT_NAMES,
    TicketKind.EMERGENCY: FAULT_NAMES,
    TicketKind.COMPLAINT: TOPIC_NAMES,
    TicketKind.BOOKING: SERVICE_NAMES,
}
ROLE_NAMES = {
    "technician": "维修",
    "front_desk": "前台",
    "cleaner": "保洁",
    "lead": "主管",
    "director": "主任",
    "manager": "经理",
    "security": "保安",
}
ACTOR_NAMES = {"system": "系统", "staff:cli": "命令行", "resident": "居民"}


class DeskError(ValueError):
    """A refused request, in words for the page."""


# -- views ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TicketRow:
    number: str
    kind: str
    kind_name: str
    status: str
    status_name: str
    urgent: bool
    place: str
    category: str
    summary: str
    assignee: str
    created: str
    deadlines: str
    late: bool


@dataclass(frozen=True)
class Filters:
    status: str = "open"  # open | all | a status
    kind: str = ""
    building: int | None = None
    late: bool = False
    page: int = 1


@dataclass(frozen=True)
class Inbox:
    rows: list[TicketRow]
    more: bool
    buildings: list[int]


@dataclass(frozen=True)
class Event:
    at: str
    what: str
    who: str
    note: str


@dataclass(frozen=True)
class TicketPage:
    row: TicketRow
    description: str
    contact_phone: str
    resident: str
    unit_id: int | None
    preferred: str
    photos: int
    timeline: list[Event]
    staff: list[tuple[int, str]]  # whom it can be assigned to
    assignee_id: int | None
    actions: frozenset[str]  # claim, assign, done, reopen, close, reply
    mine: bool


@dataclass(frozen=True)
class CodeRow:
    code: str
    resident: str
    unit: str
    unit_id: int
    state: str
    state_name: str
    created: str
    expires: str
    used: str
    issued_by: str
    issuer: str  # staff:3, who may revoke it besides a manager
    line: str


@dataclass(frozen=True)
class ResidentRow:
    id: int
    name: str
    role: str
    phone: str
    accounts: int


@dataclass(frozen=True)
class UnitPage:
    id: int
    label: str
    residents: list[ResidentRow]
    tickets: list[TicketRow]
    codes: list[CodeRow]


@dataclass(frozen=True)
class UnitHit:
    id: int
    label: str
    residents: str


# -- the inbox --------------------------------------------------------------------------------------
def inbox(app: App, filters: Filters) -> Inbox:
    now = app.clock.now()
    query = TicketQuery(
        status=filters.status
        if filters.status == "open" or TicketStatus.of(filters.status) is not None
        else None,
        kind=filters.kind if TicketKind.of(filters.kind) is not None else None,
        building=filters.building,
        late_at=now if filters.late else None,
        offset=(max(filters.page, 1) - 1) * PAGE,
        limit=PAGE + 1,  # one more tells whether there is a next page
    )
    with unit_of_work(app.sessions) as store:
        found = store.views.tickets(query)
        numbers = store.views.building_numbers()
        return Inbox([_row(t, now) for t in found[:PAGE]], len(found) > PAGE, numbers)


def is_late(ticket: Ticket, now: datetime) -> bool:
    if ticket.status not in OPEN_STATUSES:
        return False
    arriving = ticket.arrive_by is not None and ticket.status in BEFORE_VISIT
    return (
        (arriving and ticket.arrive_by is not None and ticket.arrive_by < now)
        or (ticket.fix_by is not None and ticket.fix_by < now)
        or (ticket.reply_by is not None and ticket.reply_by < now)
    )


def _row(ticket: Ticket, now: datetime) -> TicketRow:
    return TicketRow(
        number=ticket.number,
        kind=ticket.kind,
        kind_name=TicketKind.name_of(ticket.kind),
        status=ticket.status,
        status_name=TicketStatus.name_of(ticket.status),
        urgent=ticket.priority == "urgent",
        place=_place(ticket),
        category=_category(ticket),
        summary=ticket.description[:80],
        assignee=ticket.assignee.name if ticket.assignee is not None else "",
        created=_when(ticket.created_at),
        deadlines=_deadlines(ticket, now),
        late=is_late(ticket, now),
    )


def _category(ticket: Ticket) -> str:
    if not ticket.category:
        return ""
    return CATEGORY_NAMES.get(ticket.kind, {}).get(ticket.category, ticket.category)


def _place(ticket: Ticket) -> str:
    place = ticket.location or (ticket.unit.label if ticket.unit is not None else "")
    if ticket.area in AREA_NAMES:
        place += f"（{AREA_NAMES[ticket.area]}）"
    return place


def _deadlines(ticket: Ticket, now: datetime) -> str:
    parts = []
    running = ticket.status in OPEN_STATUSES
    limits = (("到场", ticket.arrive_by), ("修复", ticket.fix_by), ("答复", ticket.reply_by))
    for label, deadline in limits:
        if deadline is not None:
            late = "（超时）" if running and deadline < now else ""
            parts.append(f"{label} {local(deadline):%m-%d %H:%M}{late}")
    return "；".join(parts)


def _when(at: datetime | None) -> str:
    return f"{local(at):%Y-%m-%d %H:%M}" if at is not None else ""


# -- one ticket -------------------------------------------------------------------------------------
def ticket_page(app: App, number: str, staff_id: int) -> TicketPage:
    now = app.clock.now()
    with unit_of_work(app.sessions) as store:
        ticket = _ticket(store, number)
        resident = store.accounts.resident(ticket.resident_id) if ticket.resident_id else None
        return TicketPage(
            row=_row(ticket, now),
            description=ticket.description,
            contact_phone=ticket.contact_phone or "",
            resident=resident.name if resident is not None else "",
            unit_id=ticket.unit_id,
            preferred=tickets.format_span(ticket.preferred_start, ticket.preferred_end),
            photos=len(ticket.photos),
            timeline=[_event(store, e) for e in ticket.events],
            staff=[
                (s.id, f"{s.name}（{ROLE_NAMES.get(s.role, s.role)}）")
                for s in _colleagues(store, ticket.compound_id)
            ],
            assignee_id=ticket.assignee_id,
            actions=_actions(ticket),
            mine=ticket.assignee_id == staff_id,
        )


def _actions(ticket: Ticket) -> frozenset[str]:
    if ticket.status in OPEN_STATUSES:
        found = {"claim", "assign", "done", "close"}
    else:
        found = {"reopen"} | ({"close"} if ticket.status == TicketStatus.DONE else set())
    if ticket.account_id is not None or ticket.unit_id is not None:
        found.add("reply")
    return frozenset(found)


def _colleagues(store: Store, compound_id: int) -> Sequence[Staff]:
    """Active staff, technicians first (whom a repair is usually assigned to)."""
    return sorted(store.accounts.active_staff(compound_id), key=lambda s: s.role != "technician")


def _event(store: Store, event: TicketEvent) -> Event:
    return Event(_when(event.at), EventKind.name_of(event.kind), _actor(store, event.actor), event.note)


def _actor(store: Store, actor: str) -> str:
    """``staff:3`` -> 王师傅, ``resident:12`` -> 李明; others (system, staff:cli) as they are."""
    return store.views.actor_name(actor) or ACTOR_NAMES.get(actor, actor)


def _ticket(store: Store, number: str) -> Ticket:
    ticket = store.tickets.by_number(number)
    if ticket is None:
        raise DeskError(f"没有工单 {number}")
    return ticket


def photo_ref(app: App, number: str, index: int) -> str | None:
    with unit_of_work(app.sessions) as store:
        ticket = store.tickets.by_number(number)
        photos = list(ticket.photos) if ticket is not None else []
        return str(photos[index]) if 0 <= index < len(photos) else None


# -- actions ----------------------------------------------------------------------------------------
WORK = {"claim", "assign", "done", "reopen", "close"}  # the service layer's handlers (flows.services)


def act(app: App, number: str, staff_id: int, action: str, text: str = "", target: int | None = None) -> str:
    """Carry out ``action`` on ticket ``number`` as staff member ``staff_id``; what to tell them."""
    now = app.clock.now()
    try:
        with unit_of_work(app.sessions) as store:
            ticket = _ticket(store, number)
            staff = _staff(store, staff_id, ticket.compound_id)
            if action == "reply":
                return _reply(store, ticket, staff, text.strip(), now)
            if action not in WORK:
                raise DeskError("没有这个操作")
            return _work(store, ticket, Actor.of(staff), action, text.strip(), target, now).text
    except (ActionError, CodeError) as exc:
        raise DeskError(str(exc)) from exc


def _work(
    store: Store, ticket: Ticket, actor: Actor, action: str, text: str, target: int | None, now: datetime
) -> Result:
    """The same handler the staff group's buttons and ``propbot tickets`` call."""
    if action == "claim":
        return services.claim(store, actor, ticket, now)
    if action == "assign":
        chosen = _staff(store, target, ticket.compound_id)
        return services.assign(store, actor, ticket, chosen, now)
    if action == "done":
        return services.done(store, actor, ticket, now, text)
    if action == "reopen":
        return services.reopen(store, actor, ticket, now, text)
    return services.close(store, actor, ticket, now, text)


def _reply(store: Store, ticket: Ticket, staff: Staff, text: str, now: datetime) -> str:
    """No handler for a reply: the relay is the one place that writes to the resident for staff."""
    if not text:
        raise DeskError("请写上要回复居民的话")
    if ticket.account_id is None and ticket.unit_id is None:
        raise DeskError(f"工单 {ticket.number} 没有可联系的居民账号，请电话联系")
    relay.relay_to_resident(store, ticket, staff, text, None, now)
    return "已转达给居民，居民的回复会记在时间线上并发到员工群"


def _staff(store: Store, staff_id: int | None, compound_id: int) -> Staff:
    staff = store.accounts.staff(staff_id) if staff_id is not None else None
    if staff is None or not staff.active or staff.compound_id != compound_id:
        raise DeskError("没有这位在职员工")
    return staff


# -- flats and binding codes ------------------------------------------------------------------------
def find_units(app: App, query: str) -> list[UnitHit]:
    """Flats matching ``3-2-1502``, ``3-1502``, a room number or a resident's name (at most 30)."""
    query = query.strip()
    with unit_of_work(app.sessions) as store:
        if "-" in query:
            try:
                unit = binding_codes.find_unit(store, query)
            except CodeError:
                return []
            return [_hit(store, unit)]
        return [_hit(store, u) for u in store.views.units_matching(query, limit=30)]


def _hit(store: Store, unit: Unit) -> UnitHit:
    return UnitHit(unit.id, unit.label, "、".join(r.name for r in store.residents_of_unit(unit.id)))


def unit_page(app: App, unit_id: int) -> UnitPage:
    now = app.clock.now()
    with unit_of_work(app.sessions) as store:
        unit = store.views.unit(unit_id)
        if unit is None:
            raise DeskError("没有这个房屋")
        residents = [
            ResidentRow(r.id, r.name, r.role, _masked(r.phone), store.accounts.bound_accounts(r.id))
            for r in store.residents_of_unit(unit.id)
        ]
        recent = store.views.unit_tickets(unit.id, limit=20)
        codes = [_code_row(store, c, now) for c in binding_codes.codes(store, unit_id=unit.id)]
        return UnitPage(unit.id, unit.label, residents, [_row(t, now) for t in recent], codes)


def _masked(phone: str | None) -> str:
    return f"{phone[:3]}****{phone[-4:]}" if phone and len(phone) >= 8 else (phone or "")


def _code_row(store: Store, code: BindingCode, now: datetime) -> CodeRow:
    state = code.state(now)
    return CodeRow(
        code=code.code,
        resident=code.resident.name,
        unit=code.resident.unit.label,
        unit_id=code.resident.unit_id,
        state=state,
        state_name=STATE_NAMES[state],
        created=_when(code.created_at),
        expires=_when(code.expires_at) or "长期",
        used=_when(code.used_at or code.revoked_at),
        issued_by=_actor(store, code.issued_by) if code.issued_by else "",
        issuer=code.issued_by or "",
        line=binding_codes.printable(code),
    )


def issue_code(app: App, unit_id: int, resident_id: int | None, valid: str, staff_id: int) -> str:
    """A new code for a resident of the flat; the code."""
    now = app.clock.now()
    try:
        duration = binding_codes.parse_duration(valid or "7d")
        if duration > timedelta(days=90):
            raise DeskError("有效期最长 90 天")
        with unit_of_work(app.sessions) as store:
            unit = store.views.unit(unit_id)
            if unit is None:
                raise DeskError("没有这个房屋")
            who = str(resident_id) if resident_id is not None else None
            resident = binding_codes.resident_for(store, unit, who)
            return binding_codes.issue(store, resident, now, f"staff:{staff_id}", duration).code
    except CodeError as exc:
        raise DeskError(str(exc)) from exc


def code(app: App, code_text: str) -> CodeRow:
    now = app.clock.now()
    with unit_of_work(app.sessions) as store:
        found = store.accounts.binding_code(code_text.strip().upper())
        if found is None:
            raise DeskError(f"没有绑定码 {code_text}")
        return _code_row(store, found, now)


def codes(app: App, state: str = "") -> list[CodeRow]:
    now = app.clock.now()
    with unit_of_work(app.sessions) as store:
        rows = [_code_row(store, c, now) for c in binding_codes.codes(store)]
        return [r for r in rows if not state or r.state == state]


def revoke_code(app: App, code_text: str, staff_id: int, manager: bool) -> CodeRow:
    """Revoke a code: a manager any, a clerk the codes they issued."""
    now = app.clock.now()
    try:
        with unit_of_work(app.sessions) as store:
            found = store.accounts.binding_code(code_text.strip().upper())
            if found is not None and not manager and found.issued_by != f"staff:{staff_id}":
                raise DeskError("只能作废自己发放的绑定码；其他的请经理作废")
            found = binding_codes.revoke(store, code_text, now)
            return _code_row(store, found, now)
    except CodeError as exc:
        raise DeskError(str(exc)) from exc


# -- the report page --------------------------------------------------------------------------------
def report(app: App, compound_id: int, period: Period) -> reports.Report:
    """The KPI report of ``period`` for the compound, as ``propbot report`` builds it."""
    with unit_of_work(app.sessions) as store:
        return reports.build(store, period, app.clock.now(), compound_id)
