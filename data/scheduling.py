"""Tables of the scheduler's work: callbacks (回访), arrears reminder state (催缴), notices
(broadcasts), subscriptions (opt-ins), and the sweeps' own bookkeeping."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from data.models import Base, ChannelAccount, Ticket, Unit


class Callback(Base):
    """One callback round of a ticket: one per time it was marked done (a reopened ticket done
    again gets a new round). Structured answers for the callback rate and satisfaction reports."""

    __tablename__ = "callbacks"
    __table_args__ = (
        UniqueConstraint("ticket_id", "done_at"),
        Index("ix_callbacks_status", "status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compounds.id"))
    done_at: Mapped[datetime]  # the "done" this round is about
    # open -> asked -> answered | staff_task (no answer: staff phone) | reopened (not satisfied)
    status: Mapped[str] = mapped_column(String(16), default="open")
    confirmed: Mapped[str | None] = mapped_column(String(16))  # solved | unsolved (解决了/没解决)
    confirmed_at: Mapped[datetime | None]
    account_id: Mapped[int | None] = mapped_column(ForeignKey("channel_accounts.id"))
    asked_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    task_at: Mapped[datetime | None]
    score: Mapped[int | None]  # overall 1-5
    attitude: Mapped[int | None]  # 服务态度 1-5
    quality: Mapped[int | None]  # 服务质量 1-5
    speed: Mapped[int | None]  # 服务效率 1-5
    comment: Mapped[str] = mapped_column(Text, default="")
    via: Mapped[str] = mapped_column(String(16), default="")  # chat | phone
    ticket: Mapped[Ticket] = relationship(lazy="joined")


class PaymentReminder(Base):
    """Where a unit stands in the gentle arrears cadence: reminder -> second -> butler calls."""

    __tablename__ = "payment_reminders"
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), unique=True)
    stage: Mapped[int] = mapped_column(default=0)  # 0 none yet, 1 first, 2 second, 3 call task
    since: Mapped[date] = mapped_column(Date)  # due date of the oldest unpaid bill of this round
    last_at: Mapped[datetime | None]
    snoozed_until: Mapped[date | None] = mapped_column(Date)
    paid_claimed_at: Mapped[datetime | None]  # resident said "已缴费": finance is checking
    updated_at: Mapped[datetime]
    unit: Mapped[Unit] = relationship(lazy="joined")


class Notice(Base):
    """A broadcast: outage, pest control, event, greeting, or anything staff want to tell."""

    __tablename__ = "notices"
    id: Mapped[int] = mapped_column(primary_key=True)
    compound_id: Mapped[int] = mapped_column(ForeignKey("compounds.id"))
    kind: Mapped[str] = mapped_column(String(16))  # outage | pest | event | greeting | general
    utility: Mapped[str | None] = mapped_column(String(16))  # water | power | gas (outages)
    title: Mapped[str] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    audience: Mapped[dict[str, Any]] = mapped_column(
        default=dict
    )  # {"buildings": [..]} | {"units": [..]} | {}
    starts_at: Mapped[datetime | None]
    ends_at: Mapped[datetime | None]  # restoration time for outages
    send_at: Mapped[datetime]
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    recipients: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(64))
    cancelled_at: Mapped[datetime | None]


class Subscription(Base):
    """Opt-ins such as festival greetings (节日问候), per chat account."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("account_id", "topic"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id"))
    topic: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]
    account: Mapped[ChannelAccount] = relationship(lazy="joined")


class JobRun(Base):
    """The last ``now`` each sweep ran at: a clock that went backwards is noticed and reported."""

    __tablename__ = "job_runs"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_now: Mapped[datetime]
    runs: Mapped[int] = mapped_column(default=0)
    last_actions: Mapped[int] = mapped_column(default=0)
