"""Read-only queries that span aggregates: the desk's inbox and pages, the lists of the CLI and the
server's start-up checks. Nothing here changes a row."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from data.kinds import BEFORE_VISIT, OPEN_STATUSES
from data.models import Building, Compound, Resident, Staff, Ticket, Unit


@dataclass(frozen=True)
class TicketQuery:
    """Which tickets a list shows: ``status`` ``open`` (any open status), a status, or None (all)."""

    status: str | None = "open"
    kind: str | None = None
    building: int | None = None
    late_at: datetime | None = None  # only those past a running time limit at this moment
    offset: int = 0
    limit: int = 50


class Views(Protocol):
    def compounds(self) -> Sequence[Compound]:
        """Every compound, in the order they were made."""
        ...

    def compound_code_of_ticket(self, ticket_id: int) -> str | None: ...

    def tickets(self, query: TicketQuery) -> Sequence[Ticket]:
        """Tickets newest first, as ``query`` filters and pages them."""
        ...

    def building_numbers(self) -> list[int]:
        """The building numbers in use, ascending."""
        ...

    def unit(self, unit_id: int) -> Unit | None: ...

    def units_matching(self, text: str, limit: int = 30) -> Sequence[Unit]:
        """Flats whose room number or one of whose residents' name is ``text``."""
        ...

    def unit_tickets(self, unit_id: int, limit: int = 20) -> Sequence[Ticket]:
        """The flat's latest tickets, newest first."""
        ...

    def actor_name(self, actor: str) -> str | None:
        """Who an event's actor is: ``staff:3`` -> 王师傅, ``resident:12`` -> 李明; None for other
        actors (``system``, ``staff:cli``) and ids no longer on file."""
        ...


class SqlViews:
    def __init__(self, session: Session) -> None:
        self._session = session

    def compounds(self) -> Sequence[Compound]:
        return self._session.scalars(select(Compound).order_by(Compound.id)).all()

    def compound_code_of_ticket(self, ticket_id: int) -> str | None:
        query = (
            select(Compound.code)
            .join(Ticket, Ticket.compound_id == Compound.id)
            .where(Ticket.id == ticket_id)
        )
        return self._session.scalar(query)

    def tickets(self, query: TicketQuery) -> Sequence[Ticket]:
        found = select(Ticket).outerjoin(Unit, Ticket.unit_id == Unit.id).outerjoin(Building)
        if query.status == "open":
            found = found.where(Ticket.status.in_(OPEN_STATUSES))
        elif query.status is not None:
            found = found.where(Ticket.status == query.status)
        if query.kind is not None:
            found = found.where(Ticket.kind == query.kind)
        if query.building is not None:
            found = found.where(Building.number == query.building)
        if query.late_at is not None:
            found = found.where(_late(query.late_at))
        found = (
            found.order_by(Ticket.created_at.desc(), Ticket.id.desc()).offset(query.offset).limit(query.limit)
        )
        return self._session.scalars(found).unique().all()

    def building_numbers(self) -> list[int]:
        return sorted(self._session.scalars(select(Building.number).distinct()))

    def unit(self, unit_id: int) -> Unit | None:
        return self._session.get(Unit, unit_id)

    def units_matching(self, text: str, limit: int = 30) -> Sequence[Unit]:
        query = (
            select(Unit)
            .join(Resident, isouter=True)
            .where(or_(Unit.room == text, Resident.name == text))
            .order_by(Unit.id)
            .limit(limit)
        )
        return self._session.scalars(query).unique().all()

    def unit_tickets(self, unit_id: int, limit: int = 20) -> Sequence[Ticket]:
        query = (
            select(Ticket).where(Ticket.unit_id == unit_id).order_by(Ticket.created_at.desc()).limit(limit)
        )
        return self._session.scalars(query).unique().all()

    def actor_name(self, actor: str) -> str | None:
        kind, _, ident = actor.partition(":")
        if not ident.isdigit():
            return None
        found: Staff | Resident | None = None
        if kind == "staff":
            found = self._session.get(Staff, int(ident))
        elif kind == "resident":
            found = self._session.get(Resident, int(ident))
        return found.name if found is not None else None


def _late(now: datetime) -> ColumnElement[bool]:
    """Open, and past a time limit that still runs (arrival only until someone is there)."""
    return Ticket.status.in_(OPEN_STATUSES) & or_(
        (Ticket.arrive_by < now) & Ticket.status.in_(BEFORE_VISIT),
        Ticket.fix_by < now,
        Ticket.reply_by < now,
    )
