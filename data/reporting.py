"""The rows the office's reports are computed from (``flows.reports``): plain facts, no figures.

Three queries per report: the tickets that touch the period (created, done or closed in it) with
the times of their arrivals, dones and reopenings; their callback rounds; the bills due in it.
Everything else (rates, medians, charts) is arithmetic on these rows, outside the database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import or_, select

from data.kinds import EventKind
from data.models import Bill, Building, Compound, Ticket, TicketEvent, Unit
from data.scheduling import Callback
from data.store import Store

MILESTONES = (EventKind.ARRIVED, EventKind.DONE, EventKind.REOPENED)  # the events a report reads


@dataclass(frozen=True)
class TicketFact:
    id: int
    number: str
    kind: str
    category: str | None
    status: str
    building: int | None  # the flat's building, or the reporter's for a common area
    created_at: datetime
    arrive_by: datetime | None
    fix_by: datetime | None
    closed_at: datetime | None
    arrivals: tuple[datetime, ...] = ()
    dones: tuple[datetime, ...] = ()
    reopenings: tuple[datetime, ...] = ()


@dataclass(frozen=True)
class CallbackFact:
    ticket_id: int
    done_at: datetime  # the "done" this round is about
    score: int | None
    answered_at: datetime | None
    via: str


@dataclass(frozen=True)
class BillFact:
    unit_id: int
    building: int
    item: str
    due_date: date
    amount: Decimal
    paid_amount: Decimal
    paid_at: datetime | None


def buildings(store: Store, compound_id: int) -> list[int]:
    """The compound's building numbers, in order."""
    query = select(Building.number).where(Building.compound_id == compound_id).order_by(Building.number)
    return list(store.session.scalars(query))


def ticket_facts(store: Store, compound_id: int, start: datetime, end: datetime) -> list[TicketFact]:
    """Tickets created, done or closed in [start, end), with their milestones (any time)."""
    done_in = select(TicketEvent.ticket_id).where(
        TicketEvent.kind == EventKind.DONE, TicketEvent.at >= start, TicketEvent.at < end
    )
    rows = store.session.scalars(
        select(Ticket)
        .where(
            Ticket.compound_id == compound_id,
            or_(
                (Ticket.created_at >= start) & (Ticket.created_at < end),
                (Ticket.closed_at >= start) & (Ticket.closed_at < end),
                Ticket.id.in_(done_in),
            ),
        )
        .order_by(Ticket.created_at, Ticket.id)
    ).unique()
    tickets = list(rows)
    times = _milestones(store, [t.id for t in tickets])
    homes = _unit_buildings(store, compound_id)
    return [_fact(ticket, times.get(ticket.id, {}), homes) for ticket in tickets]


def _fact(ticket: Ticket, times: dict[str, list[datetime]], homes: dict[int, int]) -> TicketFact:
    unit_id = ticket.unit_id or (ticket.details or {}).get("reporter_unit_id")
    return TicketFact(
        id=ticket.id,
        number=ticket.number,
        kind=ticket.kind,
        category=ticket.category,
        status=ticket.status,
        building=homes.get(int(unit_id)) if unit_id is not None else None,
        created_at=ticket.created_at,
        arrive_by=ticket.arrive_by,
        fix_by=ticket.fix_by,
        closed_at=ticket.closed_at,
        arrivals=tuple(sorted(times.get(EventKind.ARRIVED, ()))),
        dones=tuple(sorted(times.get("done", ()))),
        reopenings=tuple(sorted(times.get("reopened", ()))),
    )


def _milestones(store: Store, ticket_ids: Sequence[int]) -> dict[int, dict[str, list[datetime]]]:
    found: dict[int, dict[str, list[datetime]]] = defaultdict(lambda: defaultdict(list))
    for chunk in _chunks(ticket_ids):
        query = select(TicketEvent.ticket_id, TicketEvent.kind, TicketEvent.at).where(
            TicketEvent.ticket_id.in_(chunk), TicketEvent.kind.in_(MILESTONES)
        )
        for ticket_id, kind, at in store.session.execute(query):
            found[ticket_id][kind].append(at)
    return found


def _unit_buildings(store: Store, compound_id: int) -> dict[int, int]:
    query = select(Unit.id, Building.number).join(Building).where(Building.compound_id == compound_id)
    return {unit_id: number for unit_id, number in store.session.execute(query)}


def callback_facts(store: Store, ticket_ids: Sequence[int]) -> list[CallbackFact]:
    """Every callback round of these tickets."""
    facts: list[CallbackFact] = []
    for chunk in _chunks(ticket_ids):
        query = select(
            Callback.ticket_id, Callback.done_at, Callback.score, Callback.answered_at, Callback.via
        ).where(Callback.ticket_id.in_(chunk))
        facts += [CallbackFact(*row) for row in store.session.execute(query)]
    return facts


def bill_facts(store: Store, compound_id: int, first: date, last: date) -> list[BillFact]:
    """The compound's bills due from ``first`` to ``last`` (both included)."""
    query = (
        select(
            Bill.unit_id,
            Building.number,
            Bill.item,
            Bill.due_date,
            Bill.amount,
            Bill.paid_amount,
            Bill.paid_at,
        )
        .join(Unit, Bill.unit_id == Unit.id)
        .join(Building, Unit.building_id == Building.id)
        .where(Building.compound_id == compound_id, Bill.due_date >= first, Bill.due_date <= last)
        .order_by(Bill.id)
    )
    return [BillFact(*row) for row in store.session.execute(query)]


def _chunks(ids: Sequence[int], size: int = 500) -> Iterable[Sequence[int]]:
    for index in range(0, len(ids), size):
        yield ids[index : index + size]


def compound_id_of(store: Store, code_or_name: str | None) -> int | None:
    """The id of the compound with this code or name; None for "the first one" (no name given)."""
    if code_or_name is None:
        return None
    found = store.session.scalar(
        select(Compound.id).where(or_(Compound.code == code_or_name, Compound.name == code_or_name))
    )
    if found is None:
        raise LookupError(f"no compound with code or name {code_or_name!r}")
    return int(found)
