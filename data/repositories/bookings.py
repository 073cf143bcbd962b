"""Bookings: the capacity of bookable services (slots already taken)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from data.kinds import OPEN_STATUSES, TicketKind
from data.models import Ticket


class BookingsRepository(Protocol):
    def starts(self, category: str, start: datetime, end: datetime) -> list[datetime]:
        """Start times of the open bookings of one service in [start, end)."""
        ...


class SqlBookings:
    def __init__(self, session: Session) -> None:
        self.session = session

    def starts(self, category: str, start: datetime, end: datetime) -> list[datetime]:
        """One query for a whole range."""
        return [
            at
            for at in self.session.scalars(
                select(Ticket.preferred_start).where(
                    Ticket.kind == TicketKind.BOOKING,
                    Ticket.category == category,
                    Ticket.status.in_(OPEN_STATUSES),
                    Ticket.preferred_start >= start,
                    Ticket.preferred_start < end,
                )
            ).all()
            if at is not None  # the range conditions exclude NULL; this tells mypy
        ]
