"""SQLAlchemy 2.x models: the whole store.

Times are stored in UTC (``UTCDateTime`` makes them aware on the way out, on SQLite too); money is
``Numeric(12, 2)`` and read as ``Decimal``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Aware datetimes in, aware UTC datetimes out, whatever the database keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Money = Numeric(12, 2, asdecimal=True)


DISPLAY_NAME_LENGTH = 100  # a chat account's name as the channel gave it
LOCATION_LENGTH = 200  # a ticket's place, as the resident typed it


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Compound(Base):
    __tablename__ = "compounds"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    duty_phone: Mapped[str] = mapped_column(String(32))  # 24 h duty line
    office_phone: Mapped[str] = mapped_column(String(32))
    office_hours: Mapped[str] = mapped_column(String(100), default="每天 08:30-18:00")
    office_address: Mapped[str] = mapped_column(String(200), default="")
    payment_methods: Mapped[str] = mapped_column(Text, default="")
    # Per-compound business settings (time limits, quiet hours, ...); see data.settings.
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    buildings: Mapped[list[Building]] = relationship(back_populates="compound", order_by="Building.number")


class Building(Base):
    __tablename__ = "buildings"
    __table_args__ = (UniqueConstraint("compound_id", "number"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compounds.id"))
    number: Mapped[int]
    name: Mapped[str] = mapped_column(String(50))  # as people say it: "3栋"
    compound: Mapped[Compound] = relationship(back_populates="buildings")
    units: Mapped[list[Unit]] = relationship(back_populates="building")


class Unit(Base):
    """A flat (户): building + unit (单元, optional) + room."""

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("building_id", "unit_no", "room"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"))
    unit_no: Mapped[int | None]
    room: Mapped[str] = mapped_column(String(16))
    area_m2: Mapped[Decimal | None] = mapped_column(Numeric(8, 2))
    building: Mapped[Building] = relationship(back_populates="units", lazy="joined")
    residents: Mapped[list[Resident]] = relationship(back_populates="unit")

    @property
    def label(self) -> str:
        unit = f"{self.unit_no}单元" if self.unit_no is not None else ""
        return f"{self.building.number}栋{unit}{self.room}"


class Resident(Base):
    __tablename__ = "residents"
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    role: Mapped[str] = mapped_column(String(16), default="owner")  # owner | tenant | family
    moved_in: Mapped[date | None] = mapped_column(Date)
    birthday: Mapped[date | None] = mapped_column(Date)
    unit: Mapped[Unit] = relationship(back_populates="residents", lazy="joined")


class BindingCode(Base):
    """One-time code the office gives a resident to bind a chat account to a unit."""

    __tablename__ = "binding_codes"
    code: Mapped[str] = mapped_column(String(16), primary_key=True)
    resident_id: Mapped[int] = mapped_column(ForeignKey("residents.id"))
    created_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    # Codes from the office (propbot codes issue, the desk) expire and can be revoked; the demo's
    # codes have neither (None: never expires).
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    issued_by: Mapped[str | None] = mapped_column(String(64))  # staff:3 | staff:cli
    resident: Mapped[Resident] = relationship()  # not joined: redeeming locks the code row alone

    def state(self, now: datetime) -> str:
        """issued | used | expired | revoked."""
        if self.used_at is not None:
            return "used"
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "issued"


class ChannelAccount(Base):
    """A chat identity (Telegram user, WeChat openid, console name) -> resident once bound."""

    __tablename__ = "channel_accounts"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))  # console | telegram | wechat
    external_id: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str] = mapped_column(String(DISPLAY_NAME_LENGTH), default="")
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"), index=True)
    bound_at: Mapped[datetime | None]
    last_inbound_at: Mapped[datetime | None]  # WeChat's 48-hour customer-service window
    failed_binding_attempts: Mapped[int] = mapped_column(default=0)
    # The ticket whose staff question (flows.domain.relay) waits for this account's next message: loaded
    # with the account, so a message with nothing pending costs no look-up at all.
    awaiting_relay: Mapped[str | None] = mapped_column(String(32))
    resident: Mapped[Resident | None] = relationship(lazy="joined")


class Staff(Base):
    __tablename__ = "staff"
    id: Mapped[int] = mapped_column(primary_key=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compounds.id"))
    name: Mapped[str] = mapped_column(String(50))
    role: Mapped[str] = mapped_column(String(16))  # front_desk | technician | cleaner | lead | director ...
    phone: Mapped[str | None] = mapped_column(String(32))
    telegram_user_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    wecom_user_id: Mapped[str | None] = mapped_column(String(64), unique=True)  # the WeCom app's userid
    skills: Mapped[list[Any]] = mapped_column(default=list)  # fault categories / services
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    compound: Mapped[Compound] = relationship()


class DeskAccount(Base):
    """A login to the web front desk (``propbot staff add``), for one staff member."""

    __tablename__ = "desk_accounts"
    id: Mapped[int] = mapped_column(primary_key=True)
    login: Mapped[str] = mapped_column(String(50), unique=True)  # the name typed at the login page
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"), unique=True)
    role: Mapped[str] = mapped_column(String(16))  # clerk | manager
    password_hash: Mapped[str] = mapped_column(String(255))  # argon2id, with its salt and parameters
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]
    # Lockout: failures counted from failed_since inside the window; locked_until once too many.
    failed_logins: Mapped[int] = mapped_column(default=0)
    failed_since: Mapped[datetime | None]
    locked_until: Mapped[datetime | None]
    staff: Mapped[Staff] = relationship(lazy="joined")


class DeskSession(Base):
    """A logged-in browser. The cookie holds a random token (signed); only its SHA-256 is kept, so
    the table cannot be used to log in. Logging out deletes the row."""

    __tablename__ = "desk_sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # sha256 hex of the token
    account_id: Mapped[int] = mapped_column(ForeignKey("desk_accounts.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(String(64))  # the token every POST form carries
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    flash: Mapped[str | None] = mapped_column(Text)  # one message for the next page shown
    account: Mapped[DeskAccount] = relationship(lazy="joined")


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (Index("ix_tickets_unit_status", "unit_id", "status"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)  # BX-20261123-0007
    compound_id: Mapped[int] = mapped_column(ForeignKey("compounds.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    resident_id: Mapped[int | None] = mapped_column(ForeignKey("residents.id"))
    account_id: Mapped[int | None] = mapped_column(ForeignKey("channel_accounts.id"))
    kind: Mapped[str] = mapped_column(
        String(16)
    )  # repair | complaint | booking | emergency | handoff | enquiry
    category: Mapped[str | None] = mapped_column(String(32))  # fault category / complaint topic / service
    area: Mapped[str | None] = mapped_column(String(16))  # in_home | common
    location: Mapped[str] = mapped_column(String(LOCATION_LENGTH), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    photos: Mapped[list[Any]] = mapped_column(default=list)
    preferred_start: Mapped[datetime | None]
    preferred_end: Mapped[datetime | None]
    contact_phone: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)  # kind-specific fields
    priority: Mapped[str] = mapped_column(String(8), default="normal")  # normal | urgent
    status: Mapped[str] = mapped_column(String(16), default="received", index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    repeat_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    arrive_by: Mapped[datetime | None]
    fix_by: Mapped[datetime | None]
    reply_by: Mapped[datetime | None]
    done_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    unit: Mapped[Unit | None] = relationship(lazy="joined")
    assignee: Mapped[Staff | None] = relationship(lazy="joined")
    events: Mapped[list[TicketEvent]] = relationship(
        back_populates="ticket", order_by="TicketEvent.id", cascade="all, delete-orphan"
    )


class TicketEvent(Base):
    __tablename__ = "ticket_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(64))  # resident:12 | staff:3 | system
    kind: Mapped[str] = mapped_column(String(32))  # received | merged | dispatched | done | reopened ...
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    ticket: Mapped[Ticket] = relationship(back_populates="events")


class TicketCounter(Base):
    """Next serial per number prefix and day, so numbers stay short and unique."""

    __tablename__ = "ticket_counters"
    key: Mapped[str] = mapped_column(String(32), primary_key=True)  # BX-20261123
    value: Mapped[int] = mapped_column(default=0)


class Bill(Base):
    __tablename__ = "bills"
    __table_args__ = (UniqueConstraint("unit_id", "item", "period"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    item: Mapped[str] = mapped_column(String(32))  # nlu.types.FEE_ITEMS
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM (first month of the billing period)
    amount: Mapped[Decimal] = mapped_column(Money)
    due_date: Mapped[date] = mapped_column(Date)
    paid_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    paid_at: Mapped[datetime | None]
    unit: Mapped[Unit] = relationship(lazy="joined")

    @property
    def outstanding(self) -> Decimal:
        return max(self.amount - self.paid_amount, Decimal("0"))


class Conversation(Base):
    """Dialog state per chat account: which flow, which slots are filled, what we asked last."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    flow: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime]


class InboundMessage(Base):
    """Each inbound message id once: a retry gets the recorded replies and creates nothing."""

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("channel", "message_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[str] = mapped_column(String(128))
    external_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime]
    replies: Mapped[list[Any]] = mapped_column(default=list)


class OutboxMessage(Base):
    """Every outbound message that is not the immediate reply, written with the change that caused it."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "due_at"),
        Index("ix_outbox_chat", "channel", "recipient", "id"),  # one chat's rows, in order
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]
    channel: Mapped[str] = mapped_column(String(16))  # telegram | wechat | console | staff | wecom
    recipient: Mapped[str] = mapped_column(String(128))  # external id, chat id, or "staff"
    kind: Mapped[str] = mapped_column(String(32))  # escalation | notice | callback | reminder | relay ...
    text: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)  # buttons, template fields, ...
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)  # ignores quiet hours
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    # pending | sending | sent | failed | superseded (a newer answer made it obsolete: last_error says why)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_until: Mapped[datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(64))  # host:pid:start:instance of the claim
    sent_ref: Mapped[str | None] = mapped_column(String(64))  # the channel's id of the sent message
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]


class ChannelToken(Base):
    """An access token every process shares (WeChat's), refreshed by whoever holds the lease."""

    __tablename__ = "channel_tokens"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)  # wx123_access_token
    value: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[datetime | None]
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]


class CallbackNonce(Base):
    """Each signed (timestamp, nonce) of a webhook callback, for the replay window (WeChat's): the
    same pair again is a retry only if it carries the same body (``body_hash``); rows older than
    the window are purged."""

    __tablename__ = "callback_nonces"
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    timestamp: Mapped[str] = mapped_column(String(16), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    body_hash: Mapped[str] = mapped_column(String(64))  # sha256 hex of the body as received
    seen_at: Mapped[datetime] = mapped_column(index=True)
