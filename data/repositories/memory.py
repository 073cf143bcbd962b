"""In-memory repositories: dicts of model instances, no database, for the fast unit tier.

They keep the contracts of the SQL ones (``tests/unit/test_memory_tickets.py`` runs the same tests
on both): same filters, same order, same limits. Model instances are plain objects here; nothing
is flushed or committed. Only the tickets aggregate so far.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from data.kinds import OPEN_STATUSES, TicketKind
from data.models import ChannelAccount, Ticket, TicketEvent
from data.repositories.tickets import RECENT_LIMIT, TicketsRepository, number_key

_NEVER = datetime.min.replace(tzinfo=UTC)  # sorts below every real time


class MemoryTickets:
    """``TicketsRepository`` over a dict; ``accounts`` (by id) stand in for the accounts aggregate."""

    def __init__(self, accounts: dict[int, ChannelAccount] | None = None) -> None:
        self.accounts = accounts if accounts is not None else {}
        self.rows: dict[int, Ticket] = {}
        self.counters: dict[str, int] = {}
        self._event_ids = 0

    def next_number(self, kind: str, now: datetime) -> str:
        key = number_key(kind, now)
        self.counters[key] = self.counters.get(key, 0) + 1
        return f"{key}-{self.counters[key]:04d}"

    def add(self, ticket: Ticket) -> Ticket:
        if ticket.id is None:
            ticket.id = max(self.rows, default=0) + 1
        self.rows[ticket.id] = ticket
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
        self._event_ids += 1
        event = TicketEvent(
            id=self._event_ids, ticket=ticket, at=at, actor=actor, kind=kind, note=note, data=data or {}
        )
        event.ticket_id = ticket.id
        ticket.updated_at = at
        return event

    def append_event(
        self, ticket: Ticket, at: datetime, actor: str, kind: str, note: str, data: dict[str, Any]
    ) -> None:
        self.add_event(ticket, at, actor, kind, note, data)

    def by_number(self, number: str) -> Ticket | None:
        wanted = number.upper()
        return next((t for t in self.rows.values() if t.number == wanted), None)

    def open_of_unit(
        self,
        unit_id: int,
        kind: str | None = None,
        category: str | None = None,
        since: datetime | None = None,
    ) -> list[Ticket]:
        return _newest(
            self._where(
                lambda t: (
                    t.unit_id == unit_id
                    and t.status in OPEN_STATUSES
                    and (kind is None or t.kind == kind)
                    and (category is None or t.category == category)
                    and (since is None or t.created_at >= since)
                )
            )
        )

    def recent_open_of_account(self, account_id: int, kind: str, since: datetime) -> list[Ticket]:
        found = self._where(
            lambda t: (
                t.account_id == account_id
                and t.kind == kind
                and t.status in OPEN_STATUSES
                and t.created_at >= since
            )
        )
        return _newest(found)[:RECENT_LIMIT]

    def open_common_repair(
        self, compound_id: int, category: str, place: str, since: datetime
    ) -> Ticket | None:
        found = self._where(
            lambda t: (
                t.compound_id == compound_id
                and t.kind == TicketKind.REPAIR
                and t.area == "common"
                and t.category == category
                and t.location == place
                and t.status in OPEN_STATUSES
                and t.created_at >= since
            )
        )
        return next(iter(_newest(found)), None)

    def recent_of_unit(self, unit_id: int, since: datetime) -> list[Ticket]:
        found = self._where(
            lambda t: t.unit_id == unit_id and (t.status in OPEN_STATUSES or t.updated_at >= since)
        )
        return _newest(found)[:RECENT_LIMIT]

    def accounts_to_tell(self, ticket: Ticket) -> list[ChannelAccount]:
        reporter = self.accounts.get(ticket.account_id) if ticket.account_id is not None else None
        if reporter is not None:
            return [reporter]
        if ticket.unit_id is None:
            return []
        return [
            account
            for _, account in sorted(self.accounts.items())
            if account.resident is not None and account.resident.unit_id == ticket.unit_id
        ]

    def of_account_or_unit(self, account_id: int, unit_id: int | None, since: datetime) -> list[Ticket]:
        found = self._where(
            lambda t: (
                (t.account_id == account_id or (unit_id is not None and t.unit_id == unit_id))
                and t.updated_at >= since
            )
        )
        # the latest done first, then by id; not done yet last (as SQLite orders NULL in DESC)
        by_id = sorted(found, key=lambda t: t.id, reverse=True)
        return sorted(by_id, key=lambda t: (t.done_at is not None, t.done_at or _NEVER), reverse=True)

    def listed(self, status: str | None = None, kind: str | None = None, limit: int = 200) -> list[Ticket]:
        found = self._where(
            lambda t: (
                (status is None or (t.status in OPEN_STATUSES if status == "open" else t.status == status))
                and (kind is None or t.kind == kind)
            )
        )
        return sorted(found, key=lambda t: (t.created_at, t.id), reverse=True)[:limit]

    def _where(self, wanted: Callable[[Ticket], bool]) -> list[Ticket]:
        return [ticket for ticket in self.rows.values() if wanted(ticket)]


def _newest(tickets: Iterable[Ticket]) -> list[Ticket]:
    return sorted(tickets, key=lambda t: t.created_at, reverse=True)


if TYPE_CHECKING:  # mypy holds the memory repositories to their protocols
    _tickets: TicketsRepository = MemoryTickets()
