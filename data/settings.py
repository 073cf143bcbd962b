"""Per-compound business settings. Defaults are the trade's own (shared/domain.md); a compound
overrides any of them in ``Compound.settings`` (JSON)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import time
from decimal import Decimal
from typing import Any

from data.kinds import TicketKind


@dataclass(frozen=True)
class CompoundSettings:
    arrive_urgent_min: int = 15  # water, power, gas
    arrive_normal_min: int = 30
    fix_ordinary_h: int = 2
    callback_after_h: int = 48
    complaint_reply_workdays: int = 4
    duplicate_window_days: int = 7  # same unit + same problem while open -> merge
    urgent_categories: tuple[str, ...] = ("water", "electric", "gas")
    quiet_hours: tuple[tuple[str, str], ...] = (("21:00", "08:00"), ("12:00", "14:00"))
    management_fee_per_m2: Decimal = Decimal("2.6")
    billing_day: int = 20
    booking_slots: tuple[tuple[str, str], ...] = (("09:00", "11:00"), ("14:00", "16:00"), ("16:00", "18:00"))
    booking_slot_capacity: int = 2
    booking_days_ahead: int = 14
    binding_attempts: int = 5
    # -- scheduler and outbox (issue 5) ------------------------------------------------------------
    quiet_grace_min: int = 30  # a resident who wrote this recently is awake: quiet hours don't hold
    # callbacks (回访)
    callback_kinds: tuple[str, ...] = (TicketKind.REPAIR, TicketKind.EMERGENCY, TicketKind.COMPLAINT)
    callback_answer_h: int = 24  # no answer to the satisfaction question -> a callback task for staff
    confirm_window_days: int = 7  # a plain "解决了" refers to a ticket done at most this long ago
    reopen_score_max: int = 2  # overall score at or below this reopens the ticket
    # time limits: warn the assignee before a breach; breach -> lead; later -> director
    arrive_warn_min: int = 5
    fix_warn_min: int = 30
    reply_warn_h: int = 8
    director_after_min: int = 60  # after the breach, the office director is named too
    unclaimed_urgent_min: int = 5  # emergencies and urgent repairs nobody has claimed
    unclaimed_normal_min: int = 30
    # billing and arrears (催缴)
    billing_mode: str = "monthly"  # monthly | semiannual
    billing_hour: int = 10  # the bill notice goes out on billing_day at this hour
    billing_months: tuple[int, ...] = (1, 7)  # semiannual billing months
    billing_catchup_days: int = 3  # a missed bill notice is still sent this many days late
    arrears_first_days: int = 7  # days past the due date before the first reminder
    arrears_second_days: int = 14  # days after the first reminder before the second
    arrears_call_days: int = 14  # days after the second reminder before the butler calls
    paid_claim_hold_days: int = 5  # after "已缴费", no reminders while finance checks
    payday: int = 15  # "发工资后再提醒我" -> the day after this day of the month
    snooze_max_days: int = 45
    # -- digests (issue 14): the week's figures to the staff group, the month's to the manager -----
    digest_weekday: int = 1  # ISO weekday, 1 Monday ... 7 Sunday; 0 turns the weekly digest off
    digest_hour: int = 9
    digest_monthly_day: int = 1  # day of the month (1-28); 0 turns the monthly digest off
    digest_monthly_hour: int = 9
    digest_manager_roles: tuple[str, ...] = ("director",)  # who gets the monthly one (Telegram)
    digest_catchup_h: int = 12  # a digest missed by longer than this is skipped, not sent late

    @classmethod
    def from_json(cls, raw: dict[str, Any] | None) -> CompoundSettings:
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in (raw or {}).items():
            if key not in known:
                continue  # settings from a newer version: ignore rather than fail
            default = getattr(cls, key)
            values[key] = _coerce(value, default)
        return replace(cls(), **values)

    def in_quiet_hours(self, at: time) -> bool:
        return any(_within(at, start, end) for start, end in self.quiet_hours)


def _coerce(value: Any, default: Any) -> Any:
    if isinstance(default, Decimal):
        return Decimal(str(value))
    if isinstance(default, tuple):
        return tuple(tuple(v) if isinstance(v, list) else v for v in value)
    return type(default)(value)


def _within(at: time, start: str, end: str) -> bool:
    begin, finish = time.fromisoformat(start), time.fromisoformat(end)
    if begin <= finish:
        return begin <= at < finish
    return at >= begin or at < finish  # wraps midnight


DEFAULTS = CompoundSettings()
