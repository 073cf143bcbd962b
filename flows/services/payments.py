"""Fees (物业费): the office records a payment, or holds the reminders until a date."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from data.clock import local
from data.models import Unit
from data.store import Store
from flows.domain.errors import ActionError
from flows.jobs.reminders import items_line, outstanding, snooze_reminders
from flows.services.base import Actor, Result, require_compound


def mark_paid(
    store: Store,
    actor: Actor,
    unit: Unit,
    now: datetime,
    *,
    period: str | None = None,
    item: str | None = None,
) -> Result:
    """Finance found the money: the unit's unpaid bills (of ``period`` / ``item`` if given) are paid in
    full. Once nothing is owed the arrears sweep ends the reminders (and a paid claim's check)."""
    require_compound(actor, unit.building.compound_id, unit.label)
    owed = [
        b
        for b in outstanding(store, None, units=[unit.id]).get(unit.id, [])
        if (period is None or b.period == period) and (item is None or b.item == item)
    ]
    if not owed:
        raise ActionError(f"{unit.label} 没有符合条件的待缴费用。")
    total = sum((b.outstanding for b in owed), Decimal(0))
    paid = items_line(owed)
    for bill in owed:
        bill.paid_amount, bill.paid_at = bill.amount, now
    left = sum(
        (b.outstanding for b in outstanding(store, None, units=[unit.id]).get(unit.id, [])), Decimal(0)
    )
    rest = f"仍待缴 {left} 元。" if left else "已全部缴清，缴费提醒随之结束。"
    return Result(f"{unit.label} 已登记缴费 {total} 元（{paid}）。{rest}")


def snooze(store: Store, actor: Actor, unit: Unit, until: date, now: datetime) -> Result:
    """No arrears reminder to the unit before ``until`` (the resident asked the office to wait)."""
    require_compound(actor, unit.building.compound_id, unit.label)
    owed = outstanding(store, None, units=[unit.id]).get(unit.id, [])
    if not owed:
        raise ActionError(f"{unit.label} 没有待缴费用，无需暂停提醒。")
    if until <= local(now).date():
        raise ActionError(f"暂停到的日期 {until:%Y-%m-%d} 应晚于今天。")
    snooze_reminders(store, unit.id, owed, until, now)
    return Result(f"{unit.label} 的缴费提醒暂停到 {until.month}月{until.day}日。")
