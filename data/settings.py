"""Per-compound business settings. Defaults are the trade's own (shared/domain.md); a compound
overrides any of them in ``Compound.settings`` (JSON)."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import time
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class CompoundSettings:
    arrive_urgent_min: int = 15  # water, power, gas
    arrive_normal_min: int = 30
    fix_ordinary_h: int = 2
    fix_difficult_h: int = 72
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
