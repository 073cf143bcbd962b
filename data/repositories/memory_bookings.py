"""``BookingsRepository`` in memory: the capacity taken, read from the tickets (as in SQL)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from data.kinds import OPEN_STATUSES, TicketKind
from data.models import Ticket
from data.repositories.bookings import BookingsRepository


class MemoryBookings:
    """Over the tickets by id: pass ``MemoryTickets.rows`` so both see the same bookings."""

    def __init__(self, tickets: dict[int, Ticket] | None = None) -> None:
        self.tickets = tickets if tickets is not None else {}

    def starts(self, category: str, start: datetime, end: datetime) -> list[datetime]:
        return [
            t.preferred_start
            for t in self.tickets.values()
            if t.kind == TicketKind.BOOKING
            and t.category == category
            and t.status in OPEN_STATUSES
            and t.preferred_start is not None
            and start <= t.preferred_start < end
        ]


if TYPE_CHECKING:  # mypy holds the memory repository to its protocol
    _bookings: BookingsRepository = MemoryBookings()
