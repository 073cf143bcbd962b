"""What a ticket is, where it stands and what happened to it: one enum each, one line per value with
the Chinese name staff and residents read.

A ``StrEnum`` equals its string, so the database keeps the plain values ("repair", "received") and
rows read back as ``str`` compare equal to the members. ``of`` reads a stored value back (None for a
value this version does not know); ``name_of`` names one, with a fallback for the unknown.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self


class _Named(StrEnum):
    """A stored value with its Chinese name."""

    label: str

    @classmethod
    def of(cls, value: str) -> Self | None:
        found = cls._value2member_map_.get(value)
        return found if isinstance(found, cls) else None

    @classmethod
    def name_of(cls, value: str, default: str | None = None) -> str:
        """The name of a stored value; an unknown one as stored (or ``default``)."""
        found = cls.of(value)
        return found.label if found is not None else (value if default is None else default)


class Limits(StrEnum):
    """Which time limits a new ticket gets (the minutes and days are the compound's settings)."""

    VISIT = "visit"  # arrive by, fix by: arrive_*_min, fix_ordinary_h
    REPLY_WORKDAYS = "reply_workdays"  # reply by: complaint_reply_workdays working days
    REPLY_DAY = "reply_day"  # reply by: within 24 hours
    NONE = "none"


class TicketKind(_Named):
    """What a ticket is about: its name, the prefix of its number (BX-20261123-0001), its time limits."""

    prefix: str
    limits: Limits

    def __new__(cls, value: str, label: str, prefix: str, limits: Limits) -> TicketKind:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label, member.prefix, member.limits = label, prefix, limits
        return member

    REPAIR = "repair", "报修", "BX", Limits.VISIT
    COMPLAINT = "complaint", "投诉", "TS", Limits.REPLY_WORKDAYS
    BOOKING = "booking", "预约", "YY", Limits.NONE
    EMERGENCY = "emergency", "紧急", "JJ", Limits.VISIT
    ENQUIRY = "enquiry", "咨询", "ZX", Limits.REPLY_DAY
    HANDOFF = "handoff", "转人工", "RG", Limits.REPLY_DAY
    SUGGESTION = "suggestion", "建议", "JY", Limits.NONE
    PRAISE = "praise", "表扬", "BY", Limits.NONE


UNKNOWN_PREFIX = "GD"  # 工单: a kind this version does not know


class TicketStatus(_Named):
    """received -> dispatched -> (quoted) -> in progress -> done -> closed; or cancelled."""

    def __new__(cls, value: str, label: str) -> TicketStatus:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label = label
        return member

    RECEIVED = "received", "已受理"
    DISPATCHED = "dispatched", "已派工"
    QUOTED = "quoted", "待确认报价"
    IN_PROGRESS = "in_progress", "处理中"
    DONE = "done", "已完成"
    CLOSED = "closed", "已关闭"
    CANCELLED = "cancelled", "已取消"


# Still being worked on: the time limits run, the resident may add to it, staff may act on it.
OPEN_STATUSES = (
    TicketStatus.RECEIVED,
    TicketStatus.DISPATCHED,
    TicketStatus.QUOTED,
    TicketStatus.IN_PROGRESS,
)
# Nobody on site yet: the arrival time limit still runs.
BEFORE_VISIT = (TicketStatus.RECEIVED, TicketStatus.DISPATCHED)


class EventKind(_Named):
    """One entry of a ticket's timeline: its name for staff (the desk, ``propbot tickets show``) and,
    where the resident's progress view shows it, the words a resident reads ("" shows the value)."""

    told: str

    def __new__(cls, value: str, label: str, told: str = "") -> EventKind:
        member = str.__new__(cls, value)
        member._value_ = value
        member.label, member.told = label, told
        return member

    RECEIVED = "received", "受理", "已受理"
    MERGED = "merged", "再次反映", "再次反映"
    DISPATCHED = "dispatched", "派工", "已派工"
    REASSIGNED = "reassigned", "转派", "已转派"
    DONE = "done", "完成", "已完成"
    REOPENED = "reopened", "重新打开", "重新处理"
    CLOSED = "closed", "关闭", "已关闭"
    CANCELLED = "cancelled", "取消", "已取消"
    ESCALATED = "escalated", "升级", "已升级处理"
    CALLBACK = "callback", "回访", "已回访"
    NOTE = "note", "备注", "备注"
    RELAY_OUT = "relay_out", "回复居民"
    RELAY_IN = "relay_in", "居民回复"
    RESCHEDULED = "rescheduled", "改期"
    LOCATED = "located", "确认位置"
    SLA_WARNING = "sla_warning", "时限提醒"
    ARRIVED = "arrived", "到场"
    CONFIRMED = "confirmed", "居民确认"
    CALLBACK_TASK = "callback_task", "回访转人工"

    @classmethod
    def told_of(cls, value: str) -> str:
        """What the resident reads for an event; one without words of its own as stored."""
        found = cls.of(value)
        return (found.told or value) if found is not None else value
