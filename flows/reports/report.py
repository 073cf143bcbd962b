"""One report: the KPIs of a period, a row per building, and the series the charts draw."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from data import reporting
from data.clock import local
from data.kinds import TicketKind, TicketStatus
from data.reporting import BillFact, CallbackFact, TicketFact
from data.settings import CompoundSettings
from data.store import Store
from flows.reports.kpi import Kpis, Period, compute

KIND_LABELS = {"repair": "报修", "complaint": "投诉", "booking": "预约", "emergency": "紧急"}
FAULT_NAMES = {
    "water": "水管/漏水",
    "drain": "下水堵塞",
    "electric": "电路",
    "lighting": "照明",
    "door_lock": "门锁/门禁",
    "lift": "电梯",
    "wall": "墙面",
    "gas": "燃气",
    "appliance": "家电",
    "other": "其他",
}


@dataclass(frozen=True)
class BuildingRow:
    building: int | None
    kpis: Kpis


@dataclass(frozen=True)
class Report:
    compound: str
    period: Period
    as_of: datetime
    kpis: Kpis
    buildings: list[BuildingRow]
    daily: dict[date, Counter[str]]  # tickets created per day, by kind
    complaint_topics: Counter[str]
    fault_categories: Counter[str]
    scores: Counter[int]  # callback scores of the period's rounds


def build(store: Store, period: Period, now: datetime, compound_id: int | None = None) -> Report:
    """The report of ``period`` for a compound (the first one by default), as known at ``now``."""
    compound = store.compound(compound_id)
    settings = store.settings(compound)
    tickets = reporting.ticket_facts(store, compound.id, period.start, period.end)
    callbacks = reporting.callback_facts(store, [t.id for t in tickets])
    bills = reporting.bill_facts(store, compound.id, period.first, period.last)
    return assemble(
        compound.name,
        reporting.buildings(store, compound.id),
        tickets,
        callbacks,
        bills,
        period,
        now,
        settings,
    )


def assemble(
    compound: str,
    numbers: list[int],
    tickets: list[TicketFact],
    callbacks: list[CallbackFact],
    bills: list[BillFact],
    period: Period,
    now: datetime,
    settings: CompoundSettings,
) -> Report:
    as_of = now  # outcomes as known now: a callback made after the period still counts (docs/kpi.md)
    kpis = compute(tickets, callbacks, bills, period, as_of, settings)
    rows = [
        BuildingRow(
            number,
            compute(
                [t for t in tickets if t.building == number],
                callbacks,
                [b for b in bills if b.building == number],
                period,
                as_of,
                settings,
            ),
        )
        for number in numbers
    ]
    created = [t for t in tickets if period.holds(t.created_at) and t.status != TicketStatus.CANCELLED]
    daily: dict[date, Counter[str]] = {day: Counter() for day in period.days}
    for ticket in created:
        daily[local(ticket.created_at).date()][ticket.kind] += 1
    return Report(
        compound=compound,
        period=period,
        as_of=as_of,
        kpis=kpis,
        buildings=rows,
        daily=daily,
        complaint_topics=Counter(t.category or "other" for t in created if t.kind == TicketKind.COMPLAINT),
        fault_categories=Counter(
            t.category or "other" for t in created if t.kind in (TicketKind.REPAIR, TicketKind.EMERGENCY)
        ),
        scores=_scores(tickets, callbacks, period),
    )


def _scores(tickets: list[TicketFact], callbacks: list[CallbackFact], period: Period) -> Counter[int]:
    ids = {t.id for t in tickets}
    return Counter(c.score for c in callbacks if c.ticket_id in ids and c.score and period.holds(c.done_at))


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f}%"


def money(value: Decimal) -> str:
    return f"{value:,.2f}"
