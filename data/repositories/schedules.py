"""Schedules: what the scheduled jobs look for (callbacks, time limits, arrears reminders,
notices and care messages) and the sweeps' own bookkeeping."""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from sqlalchemy import CursorResult, Select, and_, exists, or_, select, text, update
from sqlalchemy.orm import Session

from data.kinds import OPEN_STATUSES
from data.models import Bill, Building, ChannelAccount, OutboxMessage, Resident, Ticket, Unit
from data.repositories.units import CHUNK
from data.scheduling import Callback, JobRun, Notice, PaymentReminder, Subscription


@dataclass(frozen=True)
class Addressee:
    """A bound chat account and where its resident lives."""

    account: ChannelAccount
    building: int
    unit_no: int | None
    room: str


class SchedulesRepository(Protocol):
    # -- callbacks (回访)
    def tickets_to_call_back(self, compound_id: int, kinds: Sequence[str], done_by: datetime) -> list[Ticket]:
        """Done tickets of those kinds, done by ``done_by``, whose round was not asked yet; oldest first."""
        ...

    def unanswered_callbacks(self, compound_id: int, asked_by: datetime) -> list[Callback]:
        """Callbacks asked by ``asked_by`` and still without an answer."""
        ...

    def callback_round(self, ticket_id: int, done_at: datetime) -> Callback | None: ...

    def add_callback(self, callback: Callback) -> None: ...

    def callbacks_to_answer(
        self, statuses: Sequence[str], asked_since: datetime, number: str | None, limit: int
    ) -> list[Callback]:
        """Callbacks in those statuses asked since ``asked_since`` (of one ticket number when
        given), the latest asked first."""
        ...

    def callbacks_of_period(self, compound_id: int, since: datetime, until: datetime) -> list[Callback]:
        """Callback rounds of jobs done in [since, until)."""
        ...

    def tickets_done_between(
        self, compound_id: int, kinds: Sequence[str], since: datetime, until: datetime
    ) -> list[Ticket]: ...

    # -- time limits (时限)
    def tickets_near_deadline(
        self, compound_id: int, horizon: datetime, unclaimed_by: datetime
    ) -> list[Ticket]:
        """Open tickets with a deadline by ``horizon``, or unassigned since ``unclaimed_by``."""
        ...

    # -- arrears reminders (催缴)
    def reminder_states(self, units: Iterable[int]) -> dict[int, PaymentReminder]: ...

    def reminder_state(self, unit_id: int) -> PaymentReminder | None: ...

    def add_reminder_state(self, state: PaymentReminder) -> None: ...

    def remove_reminder_state(self, state: PaymentReminder) -> None: ...

    def settled_reminder_states(self, compound_id: int) -> list[PaymentReminder]:
        """Reminder states of the compound's units that owe nothing any more."""
        ...

    # -- notices (通知) and care messages
    def add_notice(self, notice: Notice) -> Notice:
        """The notice stored, with its id."""
        ...

    def notice(self, notice_id: int) -> Notice | None: ...

    def notices(self, compound_id: int, limit: int) -> list[Notice]:
        """The compound's latest notices, newest first."""
        ...

    def outages(
        self, compound_id: int, utilities: Sequence[str], starting_by: datetime, sent_by: datetime
    ) -> list[Notice]:
        """Outage notices not cancelled, starting by ``starting_by`` and sent by ``sent_by``; the
        latest start first."""
        ...

    def take_back_notice(self, notice_id: int, why: str) -> int:
        """Cancel the notice's messages not sent yet; how many."""
        ...

    def addressees(
        self, compound_id: int, buildings: set[int] | None, subscribed_to: str | None
    ) -> list[Addressee]:
        """Bound chat accounts of the compound (of those buildings; subscribed to the topic), by account."""
        ...

    def subscription(self, account_id: int, topic: str) -> Subscription | None: ...

    def add_subscription(self, subscription: Subscription) -> None: ...

    def remove_subscription(self, subscription: Subscription) -> None: ...

    def residents_moved_in(
        self, compound_id: int, first: date, last: date
    ) -> list[tuple[ChannelAccount, Resident]]:
        """Bound accounts of the compound's residents who moved in between ``first`` and ``last``."""
        ...

    def subscribers_with_birthday(
        self, compound_id: int, topic: str
    ) -> list[tuple[ChannelAccount, Resident]]:
        """Bound accounts subscribed to ``topic`` whose resident's birthday is known."""
        ...

    # -- the sweeps' bookkeeping
    def job_run(self, job: str) -> JobRun | None: ...

    def add_job_run(self, run: JobRun) -> None: ...

    def lock_job(self, job: str) -> bool:
        """Take the job for this transaction; False if another process has it."""
        ...


class SqlSchedules:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- callbacks
    def tickets_to_call_back(self, compound_id: int, kinds: Sequence[str], done_by: datetime) -> list[Ticket]:
        asked = exists().where(
            and_(
                Callback.ticket_id == Ticket.id, Callback.done_at == Ticket.done_at, Callback.status != "open"
            )
        )
        query = (
            select(Ticket)
            .where(
                Ticket.compound_id == compound_id,
                Ticket.status == "done",
                Ticket.kind.in_(kinds),
                Ticket.done_at <= done_by,
                ~asked,
            )
            .order_by(Ticket.done_at)
        )
        return list(self.session.scalars(query).unique().all())

    def unanswered_callbacks(self, compound_id: int, asked_by: datetime) -> list[Callback]:
        query = select(Callback).where(
            Callback.compound_id == compound_id, Callback.status == "asked", Callback.asked_at <= asked_by
        )
        return list(self.session.scalars(query).unique().all())

    def callback_round(self, ticket_id: int, done_at: datetime) -> Callback | None:
        return self.session.scalars(
            select(Callback).where(Callback.ticket_id == ticket_id, Callback.done_at == done_at)
        ).first()

    def add_callback(self, callback: Callback) -> None:
        self.session.add(callback)
        self.session.flush()

    def callbacks_to_answer(
        self, statuses: Sequence[str], asked_since: datetime, number: str | None, limit: int
    ) -> list[Callback]:
        query = (
            select(Callback)
            .join(Ticket, Callback.ticket_id == Ticket.id)
            .where(Callback.status.in_(statuses), Callback.asked_at >= asked_since)
            .order_by(Callback.asked_at.desc())
        )
        if number:
            query = query.where(Ticket.number == number)
        return list(self.session.scalars(query.limit(limit)).unique())

    def callbacks_of_period(self, compound_id: int, since: datetime, until: datetime) -> list[Callback]:
        query = select(Callback).where(
            Callback.compound_id == compound_id, Callback.done_at >= since, Callback.done_at < until
        )
        return list(self.session.scalars(query).unique())

    def tickets_done_between(
        self, compound_id: int, kinds: Sequence[str], since: datetime, until: datetime
    ) -> list[Ticket]:
        query = select(Ticket).where(
            Ticket.compound_id == compound_id,
            Ticket.kind.in_(kinds),
            Ticket.done_at >= since,
            Ticket.done_at < until,
        )
        return list(self.session.scalars(query).unique())

    # -- time limits
    def tickets_near_deadline(
        self, compound_id: int, horizon: datetime, unclaimed_by: datetime
    ) -> list[Ticket]:
        query = (
            select(Ticket)
            .where(
                Ticket.compound_id == compound_id,
                Ticket.status.in_(OPEN_STATUSES),
                or_(
                    Ticket.arrive_by <= horizon,
                    Ticket.fix_by <= horizon,
                    Ticket.reply_by <= horizon,
                    (Ticket.assignee_id.is_(None)) & (Ticket.created_at <= unclaimed_by),
                ),
            )
            .order_by(Ticket.id)
        )
        return list(self.session.scalars(query).unique())

    # -- arrears reminders
    def reminder_states(self, units: Iterable[int]) -> dict[int, PaymentReminder]:
        wanted = list(units)
        found: dict[int, PaymentReminder] = {}
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            for state in self.session.scalars(
                select(PaymentReminder).where(PaymentReminder.unit_id.in_(chunk))
            ).unique():
                found[state.unit_id] = state
        return found

    def reminder_state(self, unit_id: int) -> PaymentReminder | None:
        return self.session.scalars(select(PaymentReminder).where(PaymentReminder.unit_id == unit_id)).first()

    def add_reminder_state(self, state: PaymentReminder) -> None:
        self.session.add(state)

    def remove_reminder_state(self, state: PaymentReminder) -> None:
        self.session.delete(state)

    def settled_reminder_states(self, compound_id: int) -> list[PaymentReminder]:
        unpaid = (
            select(Bill.id)
            .where(Bill.unit_id == PaymentReminder.unit_id, Bill.amount > 0, Bill.paid_amount < Bill.amount)
            .exists()
        )
        query = (
            select(PaymentReminder)
            .join(Unit, PaymentReminder.unit_id == Unit.id)
            .join(Building, Unit.building_id == Building.id)
            .where(Building.compound_id == compound_id, ~unpaid)
        )
        return list(self.session.scalars(query).unique().all())

    # -- notices and care messages
    def add_notice(self, notice: Notice) -> Notice:
        self.session.add(notice)
        self.session.flush()
        return notice

    def notice(self, notice_id: int) -> Notice | None:
        return self.session.get(Notice, notice_id)

    def notices(self, compound_id: int, limit: int) -> list[Notice]:
        query = (
            select(Notice).where(Notice.compound_id == compound_id).order_by(Notice.id.desc()).limit(limit)
        )
        return list(self.session.scalars(query).all())

    def outages(
        self, compound_id: int, utilities: Sequence[str], starting_by: datetime, sent_by: datetime
    ) -> list[Notice]:
        query = (
            select(Notice)
            .where(
                Notice.compound_id == compound_id,
                Notice.kind == "outage",
                Notice.utility.in_(list(utilities)),
                Notice.cancelled_at.is_(None),
                Notice.starts_at <= starting_by,
                Notice.send_at <= sent_by,
            )
            .order_by(Notice.starts_at.desc())
        )
        return list(self.session.scalars(query).all())

    def take_back_notice(self, notice_id: int, why: str) -> int:
        result = self.session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.dedupe_key.like(f"notice:{notice_id}:%"), OutboxMessage.status == "pending")
            .values(status="cancelled", last_error=why)
        )
        assert isinstance(result, CursorResult)  # an UPDATE's result has a row count
        return int(result.rowcount or 0)

    def addressees(
        self, compound_id: int, buildings: set[int] | None, subscribed_to: str | None
    ) -> list[Addressee]:
        query = (
            select(ChannelAccount, Building.number, Unit.unit_no, Unit.room)
            .join(Resident, ChannelAccount.resident_id == Resident.id)
            .join(Unit, Resident.unit_id == Unit.id)
            .join(Building, Unit.building_id == Building.id)
            .where(Building.compound_id == compound_id)
            .order_by(ChannelAccount.id)
        )
        if subscribed_to is not None:
            query = query.join(Subscription, Subscription.account_id == ChannelAccount.id).where(
                Subscription.topic == subscribed_to
            )
        if buildings:
            query = query.where(Building.number.in_(buildings))
        return [Addressee(*row) for row in self.session.execute(query).unique()]

    def subscription(self, account_id: int, topic: str) -> Subscription | None:
        return self.session.scalars(
            select(Subscription).where(Subscription.account_id == account_id, Subscription.topic == topic)
        ).first()

    def add_subscription(self, subscription: Subscription) -> None:
        self.session.add(subscription)

    def remove_subscription(self, subscription: Subscription) -> None:
        self.session.delete(subscription)

    def residents_moved_in(
        self, compound_id: int, first: date, last: date
    ) -> list[tuple[ChannelAccount, Resident]]:
        query = _residents(compound_id).where(Resident.moved_in >= first, Resident.moved_in <= last)
        return [(account, resident) for account, resident in self.session.execute(query).unique()]

    def subscribers_with_birthday(
        self, compound_id: int, topic: str
    ) -> list[tuple[ChannelAccount, Resident]]:
        query = (
            _residents(compound_id)
            .join(Subscription, Subscription.account_id == ChannelAccount.id)
            .where(Subscription.topic == topic, Resident.birthday.is_not(None))
        )
        return [(account, resident) for account, resident in self.session.execute(query).unique()]

    # -- the sweeps' bookkeeping
    def job_run(self, job: str) -> JobRun | None:
        return self.session.get(JobRun, job)

    def add_job_run(self, run: JobRun) -> None:
        self.session.add(run)

    def lock_job(self, job: str) -> bool:
        """A PostgreSQL advisory lock to the end of the transaction; SQLite's writer lock already
        serialises, so there it is always True."""
        if self.session.get_bind().dialect.name != "postgresql":
            return True
        key = zlib.crc32(f"propbot:sweep:{job}".encode())
        return bool(self.session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": key}).scalar())


def _residents(compound_id: int) -> Select[ChannelAccount, Resident]:
    """Bound chat accounts of the compound's residents, with the resident."""
    return (
        select(ChannelAccount, Resident)
        .join(Resident, ChannelAccount.resident_id == Resident.id)
        .join(Unit, Resident.unit_id == Unit.id)
        .join(Building, Unit.building_id == Building.id)
        .where(Building.compound_id == compound_id)
    )
