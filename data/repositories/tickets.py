"""Tickets: the ticket, its events, its number counter."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any, Protocol

from sqlalchemy import Executable, select
from sqlalchemy.orm import Session

from data.clock import local
from data.kinds import OPEN_STATUSES, UNKNOWN_PREFIX, TicketKind
from data.models import ChannelAccount, Resident, Ticket, TicketCounter, TicketEvent
from data.repositories._sql import insert_for

RECENT_LIMIT = 10  # tickets a resident is shown or asked about at most


def number_key(kind: str, now: datetime) -> str:
    """The day's counter key of a kind: ``BX-20261123``; a number is the key and the count."""
    known = TicketKind.of(kind)
    return f"{known.prefix if known is not None else UNKNOWN_PREFIX}-{local(now):%Y%m%d}"


class TicketsRepository(Protocol):
    def next_number(self, kind: str, now: datetime) -> str:
        """The next ticket number of the kind and local day: ``BX-20261123-0001``."""
        ...

    def add(self, ticket: Ticket) -> Ticket:
        """The new ticket stored, with its id."""
        ...

    def add_event(
        self,
        ticket: Ticket,
        at: datetime,
        actor: str,
        kind: str,
        note: str = "",
        data: dict[str, Any] | None = None,
    ) -> TicketEvent:
        """An event in the ticket's history (``ticket.events`` includes it); the ticket counts as
        updated at ``at``."""
        ...

    def append_event(
        self, ticket: Ticket, at: datetime, actor: str, kind: str, note: str, data: dict[str, Any]
    ) -> None:
        """``add_event`` without loading the ticket's event list (sweeps touch thousands)."""
        ...

    def by_number(self, number: str) -> Ticket | None:
        """The ticket of that number, in any letter case."""
        ...

    def open_of_unit(
        self,
        unit_id: int,
        kind: str | None = None,
        category: str | None = None,
        since: datetime | None = None,
    ) -> list[Ticket]:
        """The unit's open tickets (of a kind and category, created since, when given), newest first."""
        ...

    def recent_open_of_account(self, account_id: int, kind: str, since: datetime) -> list[Ticket]:
        """The account's open tickets of ``kind`` created since ``since``, newest first (at most 10)."""
        ...

    def open_common_repair(
        self, compound_id: int, category: str, place: str, since: datetime
    ) -> Ticket | None:
        """The newest open common-area repair of the category at the place created since ``since``
        (for merging repeats)."""
        ...

    def recent_of_unit(self, unit_id: int, since: datetime) -> list[Ticket]:
        """The unit's open tickets and those changed since ``since``, newest first (at most 10)."""
        ...

    def accounts_to_tell(self, ticket: Ticket) -> list[ChannelAccount]:
        """Who hears about the ticket: the reporting account, else every account of its unit."""
        ...

    def of_account_or_unit(self, account_id: int, unit_id: int | None, since: datetime) -> list[Ticket]:
        """Tickets reported by the account or of the unit, changed since ``since``; the latest done first."""
        ...

    def listed(self, status: str | None = None, kind: str | None = None, limit: int = 200) -> list[Ticket]:
        """The newest tickets, of a status (``open``: any open one) and kind when given."""
        ...


class SqlTickets:
    def __init__(self, session: Session) -> None:
        self.session = session

    def next_number(self, kind: str, now: datetime) -> str:
        key = number_key(kind, now)
        dialect = self.session.get_bind().dialect.name
        # Core on the session's connection: no loaded object mirrors the counter row
        bumped = (
            self.session.connection().execute(_bump_counter_statement(dialect), {"key": key}).scalar_one()
        )
        return f"{key}-{bumped:04d}"

    def add(self, ticket: Ticket) -> Ticket:
        self.session.add(ticket)
        self.session.flush()
        return ticket

    def add_event(
        self,
        ticket: Ticket,
        at: datetime,
        actor: str,
        kind: str,
        note: str = "",
        data: dict[str, Any] | None = None,
    ) -> TicketEvent:
        event = TicketEvent(ticket=ticket, at=at, actor=actor, kind=kind, note=note, data=data or {})
        self.session.add(event)
        ticket.updated_at = at
        return event

    def append_event(
        self, ticket: Ticket, at: datetime, actor: str, kind: str, note: str, data: dict[str, Any]
    ) -> None:
        self.session.add(
            TicketEvent(ticket_id=ticket.id, at=at, actor=actor, kind=kind, note=note, data=data)
        )
        ticket.updated_at = at

    def by_number(self, number: str) -> Ticket | None:
        return self.session.scalars(select(Ticket).where(Ticket.number == number.upper())).first()

    def open_of_unit(
        self,
        unit_id: int,
        kind: str | None = None,
        category: str | None = None,
        since: datetime | None = None,
    ) -> list[Ticket]:
        query = select(Ticket).where(Ticket.unit_id == unit_id, Ticket.status.in_(OPEN_STATUSES))
        if kind is not None:
            query = query.where(Ticket.kind == kind)
        if category is not None:
            query = query.where(Ticket.category == category)
        if since is not None:
            query = query.where(Ticket.created_at >= since)
        return list(self.session.scalars(query.order_by(Ticket.created_at.desc())).unique().all())

    def recent_open_of_account(self, account_id: int, kind: str, since: datetime) -> list[Ticket]:
        query = (
            select(Ticket)
            .where(
                Ticket.account_id == account_id,
                Ticket.kind == kind,
                Ticket.status.in_(OPEN_STATUSES),
                Ticket.created_at >= since,
            )
            .order_by(Ticket.created_at.desc())
            .limit(RECENT_LIMIT)
        )
        return list(self.session.scalars(query).all())

    def open_common_repair(
        self, compound_id: int, category: str, place: str, since: datetime
    ) -> Ticket | None:
        query = (
            select(Ticket)
            .where(
                Ticket.compound_id == compound_id,
                Ticket.kind == TicketKind.REPAIR,
                Ticket.area == "common",
                Ticket.category == category,
                Ticket.location == place,
                Ticket.status.in_(OPEN_STATUSES),
                Ticket.created_at >= since,
            )
            .order_by(Ticket.created_at.desc())
            .limit(1)
        )
        return self.session.scalars(query).first()

    def recent_of_unit(self, unit_id: int, since: datetime) -> list[Ticket]:
        query = (
            select(Ticket)
            .where(Ticket.unit_id == unit_id)
            .where(Ticket.status.in_(OPEN_STATUSES) | (Ticket.updated_at >= since))
            .order_by(Ticket.created_at.desc())
            .limit(RECENT_LIMIT)
        )
        return list(self.session.scalars(query).unique().all())

    def accounts_to_tell(self, ticket: Ticket) -> list[ChannelAccount]:
        if ticket.account_id is not None:
            account = self.session.get(ChannelAccount, ticket.account_id)
            if account is not None:
                return [account]
        if ticket.unit_id is None:
            return []
        return list(
            self.session.scalars(
                select(ChannelAccount)
                .join(Resident, ChannelAccount.resident_id == Resident.id)
                .where(Resident.unit_id == ticket.unit_id)
                .order_by(ChannelAccount.id)
            ).all()
        )

    def of_account_or_unit(self, account_id: int, unit_id: int | None, since: datetime) -> list[Ticket]:
        mine = Ticket.account_id == account_id
        if unit_id is not None:
            mine = mine | (Ticket.unit_id == unit_id)
        return list(
            self.session.scalars(
                select(Ticket)
                .where(mine, Ticket.updated_at >= since)
                .order_by(Ticket.done_at.desc(), Ticket.id.desc())
            ).unique()
        )

    def listed(self, status: str | None = None, kind: str | None = None, limit: int = 200) -> list[Ticket]:
        query = select(Ticket).order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit)
        if status == "open":
            query = query.where(Ticket.status.in_(OPEN_STATUSES))
        elif status is not None:
            query = query.where(Ticket.status == status)
        if kind is not None:
            query = query.where(Ticket.kind == kind)
        return list(self.session.scalars(query).unique().all())


@cache
def _bump_counter_statement(dialect: str) -> Executable:
    """One upsert: the day's first ticket of a kind creates its counter."""
    return (
        insert_for(dialect, TicketCounter)
        .values(value=1)
        .on_conflict_do_update(index_elements=[TicketCounter.key], set_={"value": TicketCounter.value + 1})
        .returning(TicketCounter.value)
    )
