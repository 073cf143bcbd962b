"""The outbox aggregate: rows waiting to be sent, their claims by dispatchers, their outcome.

The dispatcher (bot.dispatcher) decides what to claim and when; this module only says how the
rows are found and changed. Bulk changes run as Core statements: no row they touch is loaded."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Update, exists, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from data.models import OutboxMessage

STAFF_CHANNELS = frozenset({"staff", "wecom", "wecom_app"})  # staff rows: no per-chat order to keep
IN_LINE = 500  # keys per IN list


class OutboxRepository(Protocol):
    def taken(self, keys: Sequence[str]) -> set[str]:
        """Which of ``keys`` already name an outbox row."""
        ...

    def add_once(self, row: OutboxMessage, checked: bool = False) -> bool:
        """Add ``row`` unless its dedupe key exists; True if added. ``checked``: the caller looked
        the key up already (``taken``), so the row is just added."""
        ...

    def get(self, row_id: int) -> OutboxMessage | None: ...

    def pending(self, channels: Sequence[str], now: datetime, limit: int = 100) -> Sequence[OutboxMessage]:
        """Pending rows of ``channels`` due by ``now``, oldest first (no claim: one reader only)."""
        ...

    def staff_cards(self, ticket_id: int, channel: str) -> Sequence[OutboxMessage]:
        """The ticket's delivered rows of ``channel`` that the channel named (``sent_ref``), newest
        first: its cards in the staff group, to edit when the ticket changes elsewhere."""
        ...

    def claimable(self, channels: Sequence[str], now: datetime, limit: int) -> Sequence[OutboxMessage]:
        """Due rows of ``channels`` a dispatcher could claim now, urgent first then oldest; locked
        for this transaction where the database can skip rows another dispatcher locked."""
        ...

    def claim(self, row_id: int, seen: int, owner: str, now: datetime, until: datetime) -> bool:
        """Claim a row for one send if it is still as planned (``attempts`` == ``seen``), due and
        not held up by an older row of its chat; True if this call claimed it."""
        ...

    def claim_owners(self, now: datetime) -> set[str]:
        """Owners of the claims whose lease still runs."""
        ...

    def release_claims(self, owners: set[str], now: datetime, reason: str | None = None) -> int:
        """The rows being sent by ``owners`` back to pending, due now; how many."""
        ...

    def postpone(self, row_ids: Sequence[int], due: datetime) -> int:
        """Pending rows among ``row_ids`` due before ``due`` made due at ``due``; how many."""
        ...

    def counted_since(self, channel: str, since: datetime) -> int:
        """Rows of ``channel`` sent since ``since`` or being sent now (a daily quota's use)."""
        ...

    def backlog(self) -> int:
        """Rows still to be sent (pending or being sent)."""
        ...


class SqlOutbox:
    def __init__(self, session: Session) -> None:
        self._session = session

    def taken(self, keys: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(keys), IN_LINE):
            chunk = list(keys[start : start + IN_LINE])
            query = select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(chunk))
            found.update(key for key in self._session.scalars(query) if key is not None)
        return found

    def add_once(self, row: OutboxMessage, checked: bool = False) -> bool:
        if checked:
            self._session.add(row)
            return True
        if row.dedupe_key is not None and self.taken([row.dedupe_key]):
            return False
        try:
            with self._session.begin_nested():
                self._session.add(row)
        except IntegrityError:  # another process added it between our look and our insert
            return False
        return True

    def get(self, row_id: int) -> OutboxMessage | None:
        return self._session.get(OutboxMessage, row_id)

    def pending(self, channels: Sequence[str], now: datetime, limit: int = 100) -> Sequence[OutboxMessage]:
        query = (
            select(OutboxMessage)
            .where(
                OutboxMessage.status == "pending",
                OutboxMessage.channel.in_(list(channels)),
                OutboxMessage.due_at <= now,
            )
            .order_by(OutboxMessage.id)
            .limit(limit)
        )
        return self._session.scalars(query).all()

    def staff_cards(self, ticket_id: int, channel: str) -> Sequence[OutboxMessage]:
        query = (
            select(OutboxMessage)
            .where(
                OutboxMessage.channel == channel,
                OutboxMessage.ticket_id == ticket_id,
                OutboxMessage.status == "sent",
                OutboxMessage.sent_ref.is_not(None),
            )
            .order_by(OutboxMessage.id.desc())
        )
        return self._session.scalars(query).all()

    def claimable(self, channels: Sequence[str], now: datetime, limit: int) -> Sequence[OutboxMessage]:
        query = (
            select(OutboxMessage)
            .where(OutboxMessage.channel.in_(list(channels)), _claimable(now))
            .order_by(OutboxMessage.urgent.desc(), OutboxMessage.id)
            .limit(limit)
        )
        if self._session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return self._session.scalars(query).all()

    def claim(self, row_id: int, seen: int, owner: str, now: datetime, until: datetime) -> bool:
        statement = (
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id, OutboxMessage.attempts == seen, _claimable(now))
            .values(status="sending", attempts=seen + 1, claimed_by=owner, claimed_until=until)
        )
        return self._changed(statement) > 0

    def claim_owners(self, now: datetime) -> set[str]:
        query = select(OutboxMessage.claimed_by).where(
            OutboxMessage.status == "sending", OutboxMessage.claimed_until >= now
        )
        return {owner for owner in self._session.scalars(query) if owner}

    def release_claims(self, owners: set[str], now: datetime, reason: str | None = None) -> int:
        values: dict[str, Any] = {
            "status": "pending",
            "claimed_by": None,
            "claimed_until": None,
            "due_at": now,
        }
        if reason is not None:
            values["last_error"] = reason
        statement = (
            update(OutboxMessage)
            .where(OutboxMessage.status == "sending", OutboxMessage.claimed_by.in_(owners))
            .values(**values)
        )
        return self._changed(statement)

    def postpone(self, row_ids: Sequence[int], due: datetime) -> int:
        statement = (
            update(OutboxMessage)
            .where(
                OutboxMessage.id.in_(list(row_ids)),
                OutboxMessage.status == "pending",
                OutboxMessage.due_at < due,
            )
            .values(due_at=due)
        )
        return self._changed(statement)

    def counted_since(self, channel: str, since: datetime) -> int:
        query = (
            select(func.count())
            .select_from(OutboxMessage)
            .where(
                OutboxMessage.channel == channel,
                or_(
                    (OutboxMessage.status == "sent") & (OutboxMessage.sent_at >= since),
                    OutboxMessage.status == "sending",  # claimed by someone right now
                ),
            )
        )
        return int(self._session.scalar(query) or 0)

    def backlog(self) -> int:
        query = (
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.status.in_(("pending", "sending")))
        )
        return int(self._session.scalar(query) or 0)

    def _changed(self, statement: Update) -> int:
        """Run a bulk UPDATE (no ORM synchronisation: the rows are not loaded); the rows it changed."""
        result = self._session.execute(statement.execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)


def _claimable(now: datetime) -> ColumnElement[bool]:
    """Due, pending or with a lapsed claim, and not held up by an older row of its chat."""
    return (
        (OutboxMessage.due_at <= now)
        & or_(
            OutboxMessage.status == "pending",
            (OutboxMessage.status == "sending") & (OutboxMessage.claimed_until < now),
        )
        & ~_in_the_way(now)
    )


def _in_the_way(now: datetime) -> ColumnElement[bool]:
    """For the outbox row in question: an older row of the same resident chat must go first, one
    being sent by someone or (unless this row is urgent) one waiting for a retry after a failed send."""
    older = aliased(OutboxMessage)
    in_flight = (older.status == "sending") & (older.claimed_until >= now)
    waiting = (older.status == "pending") & (older.attempts > 0)
    return OutboxMessage.channel.not_in(STAFF_CHANNELS) & exists().where(
        older.channel == OutboxMessage.channel,
        older.recipient == OutboxMessage.recipient,
        older.id < OutboxMessage.id,
        or_(in_flight, ~OutboxMessage.urgent & waiting),
    )


def outbox_row(
    channel: str,
    recipient: str,
    kind: str,
    text: str,
    now: datetime,
    *,
    due_at: datetime | None = None,
    payload: dict[str, Any] | None = None,
    urgent: bool = False,
    ticket_id: int | None = None,
    dedupe_key: str | None = None,
) -> OutboxMessage:
    """A new outbox row, not yet added to any session."""
    return OutboxMessage(
        created_at=now,
        due_at=due_at or now,
        channel=channel,
        recipient=recipient,
        kind=kind,
        text=text,
        payload=payload or {},
        urgent=urgent,
        ticket_id=ticket_id,
        dedupe_key=dedupe_key,
    )
