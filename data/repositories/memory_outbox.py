"""The outbox repository over a dict, for the unit tier (no database).

It keeps ``SqlOutbox``'s contract (``tests/unit/test_memory_outbox.py`` runs the same tests on
both): same filters, same order, same claims. The stored instances are handed out and changed in
place, where the SQL one changes rows behind the session; callers read rows again after a change
either way. One dispatcher at a time: there is no lock to skip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from data.models import OutboxMessage
from data.repositories.memory_rows import insert
from data.repositories.outbox import STAFF_CHANNELS, OutboxRepository


class MemoryOutbox:
    def __init__(self) -> None:
        self.rows: dict[int, OutboxMessage] = {}

    def taken(self, keys: Sequence[str]) -> set[str]:
        stored = {row.dedupe_key for row in self.rows.values()}
        return {key for key in keys if key in stored}

    def add_once(self, row: OutboxMessage, checked: bool = False) -> bool:
        if not checked and row.dedupe_key is not None and self.taken([row.dedupe_key]):
            return False
        insert(self.rows, row)  # a checked key that is taken after all is refused, as the database does
        return True

    def get(self, row_id: int) -> OutboxMessage | None:
        return self.rows.get(row_id)

    def pending(self, channels: Sequence[str], now: datetime, limit: int = 100) -> Sequence[OutboxMessage]:
        return self._where(
            lambda row: row.status == "pending" and row.channel in channels and row.due_at <= now
        )[:limit]

    def staff_cards(self, ticket_id: int, channel: str) -> Sequence[OutboxMessage]:
        found = self._where(
            lambda row: (
                row.channel == channel
                and row.ticket_id == ticket_id
                and row.status == "sent"
                and row.sent_ref is not None
            )
        )
        return found[::-1]

    def claimable(self, channels: Sequence[str], now: datetime, limit: int) -> Sequence[OutboxMessage]:
        found = self._where(lambda row: row.channel in channels and self._claimable(row, now))
        return sorted(found, key=lambda row: not row.urgent)[:limit]  # stable: oldest first within

    def claim(self, row_id: int, seen: int, owner: str, now: datetime, until: datetime) -> bool:
        row = self.rows.get(row_id)
        if row is None or row.attempts != seen or not self._claimable(row, now):
            return False
        row.status, row.attempts, row.claimed_by, row.claimed_until = "sending", seen + 1, owner, until
        return True

    def claim_owners(self, now: datetime) -> set[str]:
        return {
            row.claimed_by
            for row in self.rows.values()
            if row.claimed_by and row.status == "sending" and _runs(row.claimed_until, now)
        }

    def release_claims(self, owners: set[str], now: datetime, reason: str | None = None) -> int:
        released = self._where(lambda row: row.status == "sending" and row.claimed_by in owners)
        for row in released:
            row.status, row.claimed_by, row.claimed_until, row.due_at = "pending", None, None, now
            if reason is not None:
                row.last_error = reason
        return len(released)

    def postpone(self, row_ids: Sequence[int], due: datetime) -> int:
        wanted = set(row_ids)
        moved = self._where(lambda row: row.id in wanted and row.status == "pending" and row.due_at < due)
        for row in moved:
            row.due_at = due
        return len(moved)

    def counted_since(self, channel: str, since: datetime) -> int:
        def counted(row: OutboxMessage) -> bool:
            sent_since = row.status == "sent" and row.sent_at is not None and row.sent_at >= since
            return row.channel == channel and (sent_since or row.status == "sending")

        return len(self._where(counted))

    def backlog(self) -> int:
        return len(self._where(lambda row: row.status in ("pending", "sending")))

    def _where(self, wanted: Callable[[OutboxMessage], bool]) -> list[OutboxMessage]:
        """The rows ``wanted``, oldest first."""
        return [row for _, row in sorted(self.rows.items()) if wanted(row)]

    def _claimable(self, row: OutboxMessage, now: datetime) -> bool:
        """Due, pending or with a lapsed claim, and not held up by an older row of its chat."""
        lapsed = row.status == "sending" and row.claimed_until is not None and row.claimed_until < now
        return row.due_at <= now and (row.status == "pending" or lapsed) and not self._in_the_way(row, now)

    def _in_the_way(self, row: OutboxMessage, now: datetime) -> bool:
        """An older row of the same resident chat must go first: one being sent by someone or
        (unless ``row`` is urgent) one waiting for a retry after a failed send."""
        if row.channel in STAFF_CHANNELS:
            return False

        def first(older: OutboxMessage) -> bool:
            in_flight = older.status == "sending" and _runs(older.claimed_until, now)
            waiting = older.status == "pending" and older.attempts > 0
            return in_flight or (not row.urgent and waiting)

        return any(
            older.channel == row.channel and older.recipient == row.recipient and first(older)
            for older in self.rows.values()
            if older.id < row.id
        )


def _runs(until: datetime | None, now: datetime) -> bool:
    """A claim's lease still runs at ``now``."""
    return until is not None and until >= now


if TYPE_CHECKING:  # mypy holds the memory repository to its protocol
    _outbox: OutboxRepository = MemoryOutbox()
