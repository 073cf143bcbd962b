"""Tickets: the ticket, its events, its number counter."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from data.models import ChannelAccount, Resident, Ticket, TicketEvent

OPEN_STATUSES = ("received", "dispatched", "quoted", "in_progress")


class TicketsRepository(Protocol):
    def append_event(
        self, ticket: Ticket, at: datetime, actor: str, kind: str, note: str, data: dict[str, Any]
    ) -> None:
        """An event for the ticket without loading its event list (sweeps touch thousands)."""
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

    def append_event(
        self, ticket: Ticket, at: datetime, actor: str, kind: str, note: str, data: dict[str, Any]
    ) -> None:
        self.session.add(
            TicketEvent(ticket_id=ticket.id, at=at, actor=actor, kind=kind, note=note, data=data)
        )
        ticket.updated_at = at

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
