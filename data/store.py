"""The unit of work over one SQLAlchemy session: the only door from flows and bot into the tables.

``store.tickets``, ``store.units``, ``store.bookings``, ``store.dialogs``, ``store.schedules``: the
repositories by aggregate (``data.repositories``); the methods still here are the accounts' and the
outbox's. A ``Store`` never commits; ``data.db.transaction`` (``unit_of_work`` below) does, so a
whole message (state, ticket, events, outbox rows, processed id) lands together or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from functools import cache, cached_property
from typing import Any

from sqlalchemy import CursorResult, Executable, bindparam, delete, func, select, update
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from data.clock import local
from data.models import (
    DISPLAY_NAME_LENGTH,
    BindingCode,
    Building,
    CallbackNonce,
    ChannelAccount,
    Compound,
    Conversation,
    InboundMessage,
    OutboxMessage,
    Resident,
    Staff,
    Ticket,
    Unit,
)
from data.repositories._sql import insert_for as _insert
from data.repositories.accounts import AccountRepository, SqlAccounts
from data.repositories.bookings import BookingsRepository, SqlBookings
from data.repositories.dialogs import DialogsRepository, SqlDialogs
from data.repositories.outbox import OutboxRepository, SqlOutbox, outbox_row
from data.repositories.schedules import SchedulesRepository, SqlSchedules
from data.repositories.tickets import SqlTickets, TicketsRepository
from data.repositories.units import SqlUnits, UnitsRepository
from data.settings import CompoundSettings
from data.views import SqlViews, Views

STAFF_RECIPIENT = "staff"  # the staff group, whatever channel carries it


class Store:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- repositories (one per aggregate) and the unit of work -----------------------------------
    @cached_property
    def accounts(self) -> AccountRepository:
        return SqlAccounts(self.session)

    @cached_property
    def outbox(self) -> OutboxRepository:
        return SqlOutbox(self.session)

    @cached_property
    def views(self) -> Views:
        return SqlViews(self.session)

    @cached_property
    def tickets(self) -> TicketsRepository:
        return SqlTickets(self.session)

    @cached_property
    def units(self) -> UnitsRepository:
        return SqlUnits(self.session)

    @cached_property
    def bookings(self) -> BookingsRepository:
        return SqlBookings(self.session)

    @cached_property
    def dialogs(self) -> DialogsRepository:
        return SqlDialogs(self.session)

    @cached_property
    def schedules(self) -> SchedulesRepository:
        return SqlSchedules(self.session)

    def flush(self) -> None:
        """Write what is pending now, so that a refused change fails here rather than at commit."""
        self.session.flush()

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A step that is undone alone if it raises; the turn's other changes stay."""
        with self.session.begin_nested():
            yield

    def _core(self, statement: Executable, parameters: dict[str, Any] | None = None) -> CursorResult[Any]:
        """Run a statement on the session's connection without the ORM's per-statement machinery
        (autoflush, identity bookkeeping): for hot-path rows that no loaded object mirrors."""
        return self.session.connection().execute(statement, parameters)

    def _dialect(self) -> str:
        return self.session.get_bind().dialect.name

    # -- compound ------------------------------------------------------------------------------
    def compound(self, compound_id: int | None = None) -> Compound:
        if compound_id is not None:
            found = self.session.get(Compound, compound_id)
        else:
            found = self.session.scalars(select(Compound).order_by(Compound.id).limit(1)).first()
        if found is None:
            raise LookupError("no compound in the store; load the demo or import your data first")
        return found

    def settings(self, compound: Compound) -> CompoundSettings:
        return CompoundSettings.from_json(compound.settings)

    # -- accounts and identity -----------------------------------------------------------------
    def account(self, channel: str, external_id: str, display_name: str = "") -> ChannelAccount:
        query = select(ChannelAccount).where(
            ChannelAccount.channel == channel, ChannelAccount.external_id == external_id
        )
        found = self.session.scalars(query).first()
        if found is None:
            self._add_account(channel, external_id, display_name)
            found = self.session.scalars(query).one()
        return self._named(found, display_name)

    def chat(
        self, channel: str, external_id: str, now: datetime, display_name: str = ""
    ) -> tuple[ChannelAccount, Conversation]:
        """The chat account and its dialog state in one query; both made on first contact. The
        account row stays locked to the end of the turn (PostgreSQL; SQLite has one writer): one
        turn per chat at a time across server processes."""
        chat = {"b_channel": channel, "b_external_id": external_id}
        found = self.session.execute(_CHAT, chat).first()
        if found is None:
            self._add_account(channel, external_id, display_name)
            found = self.session.execute(_CHAT, chat).one()
        account = self._named(found[0], display_name)
        conversation = found[1]
        if conversation is None:
            conversation = Conversation(channel=channel, external_id=external_id, state={}, updated_at=now)
            self.session.add(conversation)
        return account, conversation

    def _add_account(self, channel: str, external_id: str, display_name: str) -> None:
        """A first contact's account; nothing if another server process made it meanwhile (on
        PostgreSQL this waits for that process's turn to end): both first messages go on."""
        row = {"channel": channel, "external_id": external_id, "display_name": _fit_name(display_name)}
        self._core(_new_account_statement(self._dialect()), row)

    @staticmethod
    def _named(account: ChannelAccount, display_name: str) -> ChannelAccount:
        """``account`` with its display name kept current."""
        display_name = _fit_name(display_name)
        if display_name and account.display_name != display_name:
            account.display_name = display_name
        return account

    def save_dialog(
        self,
        account: ChannelAccount,
        conversation: Conversation,
        flow: str | None,
        state: dict[str, Any],
        now: datetime,
        last_inbound_at: datetime,
    ) -> None:
        """Store the turn's dialog state and the account's last message time. Two Core UPDATEs for
        rows that already exist: the ORM's unit of work costs several times more for the same two
        statements (the loaded objects are kept in step without being marked dirty)."""
        values = {"flow": flow, "state": state, "updated_at": now}
        if conversation.id is None:  # first contact: the ORM inserts it
            for name, value in values.items():
                setattr(conversation, name, value)
        else:
            self._core(_SAVE_CONVERSATION, {"b_id": conversation.id, **values})
            for name, value in values.items():
                set_committed_value(conversation, name, value)
        if account in self.session.dirty:  # its other changes go with the ORM's flush anyway
            account.last_inbound_at = last_inbound_at
        else:
            self._core(_SAVE_LAST_INBOUND, {"b_id": account.id, "last_inbound_at": last_inbound_at})
            set_committed_value(account, "last_inbound_at", last_inbound_at)

    def accounts_of_unit(self, unit_id: int) -> Sequence[ChannelAccount]:
        return self.session.scalars(
            select(ChannelAccount)
            .join(Resident, ChannelAccount.resident_id == Resident.id)
            .where(Resident.unit_id == unit_id)
            .order_by(ChannelAccount.id)
        ).all()

    def bind(self, account: ChannelAccount, resident: Resident, now: datetime) -> None:
        account.resident_id = resident.id
        account.resident = resident
        account.bound_at = now
        account.failed_binding_attempts = 0

    def usable_binding_code(self, code: str, now: datetime) -> BindingCode | None:
        """The code if it can still bind: known, unused, not revoked, not expired."""
        found = self.session.get(BindingCode, code.upper())
        return found if found is not None and found.state(now) == "issued" else None

    def redeem_binding_code(self, code: str, now: datetime) -> Resident | None:
        """The resident a one-time code belongs to, marking it used; None if unknown, used, revoked
        or expired. The row is locked first (PostgreSQL), so two accounts cannot both use it."""
        found = self.session.get(BindingCode, code.upper(), with_for_update=True)
        if found is None or found.state(now) != "issued":
            return None
        found.used_at = now
        return self.session.get(Resident, found.resident_id)

    def find_unit(self, building: int, unit_no: int | None, room: str) -> Unit | None:
        """The unit at that address; without a unit number, only when the room is unambiguous."""
        query = select(Unit).join(Building).where(Building.number == building, Unit.room == room)
        if unit_no is not None:
            query = query.where(Unit.unit_no == unit_no)
        found = self.session.scalars(query.limit(2)).all()
        return found[0] if len(found) == 1 else None

    def residents_of_unit(self, unit_id: int) -> Sequence[Resident]:
        return self.session.scalars(
            select(Resident).where(Resident.unit_id == unit_id).order_by(Resident.id)
        ).all()

    # -- conversation state and idempotent intake ------------------------------------------------
    def claim_inbound(self, channel: str, message_id: str, external_id: str, now: datetime) -> bool:
        """Record a message id; False if it was seen before (a retry).

        One INSERT ... ON CONFLICT DO NOTHING: on PostgreSQL a concurrent retry waits for the first
        transaction and then sees its row, so exactly one of them goes on."""
        row = {"channel": channel, "message_id": message_id, "external_id": external_id, "received_at": now}
        claimed = self._core(_claim_statement(self._dialect()), row).first()
        return claimed is not None

    def claim_callback(self, channel: str, timestamp: str, nonce: str, body_hash: str, now: datetime) -> bool:
        """Record a signed callback's (timestamp, nonce); False if the pair was seen before with
        another body (a replay with a forged body). The same body again is a retry and passes.

        INSERT ... ON CONFLICT DO NOTHING, then the stored hash is read: on PostgreSQL a concurrent
        copy waits for the first transaction and then sees its row, on SQLite writers queue."""
        row = {"channel": channel, "timestamp": timestamp, "nonce": nonce, "body_hash": body_hash}
        claimed = self._core(_nonce_statement(self._dialect()), {**row, "seen_at": now}).first()
        if claimed is not None:
            return True
        stored = self.session.scalar(
            select(CallbackNonce.body_hash).where(
                CallbackNonce.channel == channel,
                CallbackNonce.timestamp == timestamp,
                CallbackNonce.nonce == nonce,
            )
        )
        return stored == body_hash

    def purge_callbacks(self, before: datetime) -> int:
        """Forget callbacks seen before ``before`` (out of the replay window): how many."""
        result = self._core(delete(CallbackNonce).where(CallbackNonce.seen_at < before))
        return int(result.rowcount or 0)

    # -- staff ---------------------------------------------------------------------------------
    def staff_member(self, name_or_id: str) -> Staff | None:
        query = select(Staff).where(Staff.active.is_(True))
        staff_id = row_id(name_or_id)
        if staff_id is not None:
            return self.session.scalars(query.where(Staff.id == staff_id)).first()
        return self.session.scalars(query.where(Staff.name == name_or_id)).first()

    def staff_by_telegram(self, user_id: str) -> Staff | None:
        """The active staff member with this Telegram user id (the staff group's buttons and replies)."""
        return self.session.scalars(
            select(Staff).where(Staff.telegram_user_id == str(user_id), Staff.active.is_(True))
        ).first()

    def staff_by_wecom(self, user_id: str) -> Staff | None:
        """The active staff member with this WeCom userid (the WeCom app's commands and buttons)."""
        return self.session.scalars(
            select(Staff).where(Staff.wecom_user_id == user_id, Staff.active.is_(True))
        ).first()

    def staff_by_role(self, compound_id: int, role: str) -> Sequence[Staff]:
        return self.session.scalars(
            select(Staff)
            .where(Staff.compound_id == compound_id, Staff.role == role, Staff.active.is_(True))
            .order_by(Staff.id)
        ).all()

    # -- outbox --------------------------------------------------------------------------------
    def enqueue(
        self,
        channel: str,
        recipient: str,
        kind: str,
        text: str,
        now: datetime,
        *,
        due_at: datetime | None = None,
        payload: dict[str, Any] | None = None,
        urgent: bool = False,
        ticket: Ticket | None = None,
        dedupe_key: str | None = None,
    ) -> OutboxMessage:
        message = outbox_row(
            channel,
            recipient,
            kind,
            text,
            now,
            due_at=due_at,
            payload=payload,
            urgent=urgent,
            ticket_id=ticket.id if ticket is not None else None,
            dedupe_key=dedupe_key,
        )
        self.session.add(message)
        return message

    def supersede_replies(self, channel: str, external_id: str, now: datetime) -> int:
        """A newer message of this chat is being answered: its conversation replies still waiting in
        the outbox (deferred while the channel was down) answer questions the resident has moved on
        from, so they are never sent (``superseded``, the reason in ``last_error``). A row already
        being sent is left to finish; urgent rows are kept. How many."""
        result = self._core(
            update(OutboxMessage)
            .where(
                OutboxMessage.channel == channel,
                OutboxMessage.recipient == external_id,
                OutboxMessage.kind == "reply",
                OutboxMessage.status == "pending",
                OutboxMessage.urgent.is_(False),
            )
            .values(
                status="superseded",
                last_error=f"superseded: a newer message of the chat was answered at {local(now):%H:%M:%S}",
            )
        )
        return int(result.rowcount or 0)

    def has_outbox(self, dedupe_key: str) -> bool:
        return (
            self.session.scalar(
                select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key).limit(1)
            )
            is not None
        )

    def count(self, model: type[Any]) -> int:
        return int(self.session.scalar(select(func.count()).select_from(model)) or 0)


MAX_ROW_ID = 2**31 - 1  # INTEGER primary keys on PostgreSQL (int4)


def row_id(text: str) -> int | None:
    """``text`` as a row id if it is one (ASCII digits, in range), else None: ``"²".isdigit()`` is
    true but ``int("²")`` fails, and a number past int4 fails in the database."""
    if not (text.isascii() and text.isdigit()) or len(text) > 10:
        return None
    number = int(text)
    return number if number <= MAX_ROW_ID else None


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(text: str) -> str:
    """``text`` as every database can keep it: NUL dropped (PostgreSQL's text cannot hold it),
    lone surrogates (not encodable as UTF-8) replaced by U+FFFD. Channels apply it to what they
    receive; JSON escapes and console input can carry both."""
    return _UNSTORABLE.sub(lambda found: "" if found.group() == "\x00" else "\ufffd", text)


def _fit_name(name: str) -> str:
    """A display name cut to its column: Telegram's first and last names are 64 characters each."""
    return name[:DISPLAY_NAME_LENGTH]


def day_start(now: datetime) -> datetime:
    """Midnight of ``now``'s local day, as an aware datetime."""
    at = local(now)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


def workdays_after(start: datetime, days: int) -> datetime:
    """``days`` working days (Mon-Fri) after ``start``, same time of day."""
    at = local(start)
    while days > 0:
        at += timedelta(days=1)
        if at.weekday() < 5:
            days -= 1
    return at


def today(now: datetime) -> date:
    return local(now).date()


# Hot-path statements, built once: constructing one costs about as much as running it. The chat
# query brings the resident's compound along (the turn needs it; session.get then finds it loaded).
_CHAT = (
    select(ChannelAccount, Conversation)
    .options(
        joinedload(ChannelAccount.resident)
        .joinedload(Resident.unit)
        .joinedload(Unit.building)
        .joinedload(Building.compound)
    )
    .outerjoin(
        Conversation,
        (Conversation.channel == ChannelAccount.channel)
        & (Conversation.external_id == ChannelAccount.external_id),
    )
    .where(
        ChannelAccount.channel == bindparam("b_channel"),
        ChannelAccount.external_id == bindparam("b_external_id"),
    )
    .with_for_update(of=ChannelAccount)
)
_SAVE_CONVERSATION = update(Conversation).where(Conversation.id == bindparam("b_id"))
_SAVE_LAST_INBOUND = update(ChannelAccount).where(ChannelAccount.id == bindparam("b_id"))


@cache
def _new_account_statement(dialect: str) -> Executable:
    return _insert(dialect, ChannelAccount).on_conflict_do_nothing()


@cache
def _claim_statement(dialect: str) -> Executable:
    return (
        _insert(dialect, InboundMessage)
        .values(replies=[])
        .on_conflict_do_nothing()
        .returning(InboundMessage.id)
    )


@cache
def _nonce_statement(dialect: str) -> Executable:
    return _insert(dialect, CallbackNonce).on_conflict_do_nothing().returning(CallbackNonce.nonce)
