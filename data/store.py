"""Repository over one SQLAlchemy session: the only door from flows and bot into the tables.

A ``Store`` never commits; the caller's unit of work (``data.db.transaction``) does, so a whole
message (state, ticket, events, outbox rows, processed id) lands together or not at all.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import CursorResult, Executable, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from data.clock import local
from data.models import (
    DISPLAY_NAME_LENGTH,
    Bill,
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
    TicketCounter,
    TicketEvent,
    Unit,
)
from data.settings import CompoundSettings

OPEN_STATUSES = ("received", "dispatched", "quoted", "in_progress")
STAFF_RECIPIENT = "staff"  # the staff group, whatever channel carries it

TICKET_PREFIX = {
    "repair": "BX",  # 报修
    "complaint": "TS",  # 投诉
    "booking": "YY",  # 预约
    "emergency": "JJ",  # 紧急
    "enquiry": "ZX",  # 咨询
    "handoff": "RG",  # 人工
    "suggestion": "JY",  # 建议
    "praise": "BY",  # 表扬
}


class Store:
    def __init__(self, session: Session) -> None:
        self.session = session

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

    def recorded_replies(self, channel: str, message_id: str) -> list[Any]:
        """The replies recorded for a message id (empty while its first delivery is still running)."""
        replies = self.session.scalars(
            select(InboundMessage.replies).where(
                InboundMessage.channel == channel, InboundMessage.message_id == message_id
            )
        ).first()
        return list(replies or [])

    def record_replies(self, channel: str, message_id: str, replies: list[Any]) -> None:
        self._core(_RECORD_REPLIES, {"b_channel": channel, "b_message_id": message_id, "replies": replies})

    # -- tickets -------------------------------------------------------------------------------
    def next_ticket_number(self, kind: str, now: datetime) -> str:
        key = f"{TICKET_PREFIX.get(kind, 'GD')}-{local(now):%Y%m%d}"
        bumped = self._core(_bump_counter_statement(self._dialect()), {"key": key}).scalar_one()
        return f"{key}-{bumped:04d}"

    def add_ticket(self, ticket: Ticket) -> Ticket:
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

    def ticket(self, number: str) -> Ticket | None:
        return self.session.scalars(select(Ticket).where(Ticket.number == number.upper())).first()

    def open_tickets(
        self,
        unit_id: int,
        kind: str | None = None,
        category: str | None = None,
        since: datetime | None = None,
    ) -> Sequence[Ticket]:
        query = select(Ticket).where(Ticket.unit_id == unit_id, Ticket.status.in_(OPEN_STATUSES))
        if kind is not None:
            query = query.where(Ticket.kind == kind)
        if category is not None:
            query = query.where(Ticket.category == category)
        if since is not None:
            query = query.where(Ticket.created_at >= since)
        return self.session.scalars(query.order_by(Ticket.created_at.desc())).unique().all()

    def recent_open_tickets(self, account_id: int, kind: str, since: datetime) -> Sequence[Ticket]:
        """This account's open tickets of ``kind`` created since ``since``, newest first (at most 10)."""
        return self.session.scalars(
            select(Ticket)
            .where(
                Ticket.account_id == account_id,
                Ticket.kind == kind,
                Ticket.status.in_(OPEN_STATUSES),
                Ticket.created_at >= since,
            )
            .order_by(Ticket.created_at.desc())
            .limit(10)
        ).all()

    def open_common_ticket(
        self, compound_id: int, category: str, place: str, since: datetime
    ) -> Ticket | None:
        """An open common-area repair of the same kind at the same place (for merging repeats)."""
        return self.session.scalars(
            select(Ticket)
            .where(
                Ticket.compound_id == compound_id,
                Ticket.kind == "repair",
                Ticket.area == "common",
                Ticket.category == category,
                Ticket.location == place,
                Ticket.status.in_(OPEN_STATUSES),
                Ticket.created_at >= since,
            )
            .order_by(Ticket.created_at.desc())
            .limit(1)
        ).first()

    def recent_tickets(self, unit_id: int, since: datetime) -> Sequence[Ticket]:
        """Open tickets of the unit and those closed since ``since`` (for status queries)."""
        query = (
            select(Ticket)
            .where(Ticket.unit_id == unit_id)
            .where(Ticket.status.in_(OPEN_STATUSES) | (Ticket.updated_at >= since))
            .order_by(Ticket.created_at.desc())
            .limit(10)
        )
        return self.session.scalars(query).unique().all()

    def tickets(
        self, status: str | None = None, kind: str | None = None, limit: int = 200
    ) -> Sequence[Ticket]:
        query = select(Ticket).order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(limit)
        if status == "open":
            query = query.where(Ticket.status.in_(OPEN_STATUSES))
        elif status is not None:
            query = query.where(Ticket.status == status)
        if kind is not None:
            query = query.where(Ticket.kind == kind)
        return self.session.scalars(query).unique().all()

    def booking_starts(self, category: str, start: datetime, end: datetime) -> list[datetime]:
        """Start times of the open bookings of one service in [start, end), one query for a whole range."""
        return list(
            at
            for at in self.session.scalars(
                select(Ticket.preferred_start).where(
                    Ticket.kind == "booking",
                    Ticket.category == category,
                    Ticket.status.in_(OPEN_STATUSES),
                    Ticket.preferred_start >= start,
                    Ticket.preferred_start < end,
                )
            ).all()
            if at is not None  # the range conditions exclude NULL; this tells mypy
        )

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

    # -- bills ---------------------------------------------------------------------------------
    def bills(self, unit_id: int) -> Sequence[Bill]:
        return self.session.scalars(
            select(Bill).where(Bill.unit_id == unit_id).order_by(Bill.period, Bill.item)
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

    def staff_cards(self, ticket_id: int, channel: str = STAFF_RECIPIENT) -> Sequence[OutboxMessage]:
        """The ticket's delivered rows of ``channel`` that the channel named (``sent_ref``), newest
        first: its cards in the staff group, to edit when the ticket changes elsewhere."""
        return self.session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.channel == channel,
                OutboxMessage.ticket_id == ticket_id,
                OutboxMessage.status == "sent",
                OutboxMessage.sent_ref.is_not(None),
            )
            .order_by(OutboxMessage.id.desc())
        ).all()

    def pending_outbox(
        self, channels: Sequence[str], now: datetime, limit: int = 100
    ) -> Sequence[OutboxMessage]:
        return self.session.scalars(
            select(OutboxMessage)
            .where(
                OutboxMessage.status == "pending",
                OutboxMessage.channel.in_(channels),
                OutboxMessage.due_at <= now,
            )
            .order_by(OutboxMessage.id)
            .limit(limit)
        ).all()

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
_RECORD_REPLIES = (
    update(InboundMessage)
    .where(
        InboundMessage.channel == bindparam("b_channel"),
        InboundMessage.message_id == bindparam("b_message_id"),
    )
    .values(replies=bindparam("replies", type_=InboundMessage.__table__.c.replies.type))
)


def _insert(dialect: str, table: type[Any]) -> postgresql.Insert | sqlite.Insert:
    """The dialect's INSERT, which has ``ON CONFLICT`` (SQLite and PostgreSQL)."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


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


@cache
def _bump_counter_statement(dialect: str) -> Executable:
    """One upsert: the day's first ticket of a kind creates its counter."""
    return (
        _insert(dialect, TicketCounter)
        .values(value=1)
        .on_conflict_do_update(index_elements=[TicketCounter.key], set_={"value": TicketCounter.value + 1})
        .returning(TicketCounter.value)
    )
