"""The office's measures (KPIs) for a period, from the store's facts (``data.reporting``).

Every definition is written out in docs/kpi.md; this module is that text as code. A rate whose
denominator is empty is ``None`` ("no data"), never 0 or 1.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from data.clock import SHANGHAI
from data.kinds import Limits, TicketKind, TicketStatus
from data.reporting import BillFact, CallbackFact, TicketFact
from data.settings import CompoundSettings

RATES = (
    "collection_rate",
    "callback_rate",
    "satisfaction_rate",
    "on_time_arrival_rate",
    "on_time_fix_rate",
    "reopen_rate",
)
TIMED_KINDS = tuple(k for k in TicketKind if k.limits == Limits.VISIT)  # arrival and fix deadlines
SATISFIED = 4  # a score of 4 or 5 is satisfied


@dataclass(frozen=True)
class Period:
    """Local days ``first`` to ``last``, both included (Asia/Shanghai)."""

    first: date
    last: date

    @classmethod
    def month(cls, text: str) -> Period:
        """``2026-11`` -> the whole of November 2026."""
        first = date.fromisoformat(f"{text}-01")
        following = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        return cls(first, following - timedelta(days=1))

    @classmethod
    def week_before(cls, day: date) -> Period:
        """The Monday-to-Sunday week before the one ``day`` is in."""
        monday = day - timedelta(days=day.weekday())
        return cls(monday - timedelta(days=7), monday - timedelta(days=1))

    @classmethod
    def month_before(cls, day: date) -> Period:
        return cls.month(f"{(day.replace(day=1) - timedelta(days=1)):%Y-%m}")

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(0), tzinfo=SHANGHAI)

    @property
    def end(self) -> datetime:
        """Midnight after the last day: the period is [start, end)."""
        return datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=SHANGHAI)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]

    @property
    def label(self) -> str:
        if self.first.day == 1 and self.last == Period.month(f"{self.first:%Y-%m}").last:
            return f"{self.first.year}年{self.first.month}月"
        return f"{self.first:%Y-%m-%d} 至 {self.last:%Y-%m-%d}"

    def holds(self, at: datetime | None) -> bool:
        return at is not None and self.start <= at < self.end


@dataclass(frozen=True)
class Ratio:
    """A rate with what it was computed from, so a report can say "37/40"."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float | None:
        return self.numerator / self.denominator if self.denominator else None


@dataclass
class Kpis:
    rates: dict[str, Ratio]
    collection: tuple[Decimal, Decimal]  # (paid by the period's end, billed)
    collected_to_date: Decimal
    median_close_hours: float | None
    median_done_hours: float | None
    counts: Counter[str] = field(default_factory=Counter)  # tickets created in the period, by kind

    @property
    def collection_rate(self) -> float | None:
        paid, billed = self.collection
        return float(paid / billed) if billed else None

    def value(self, name: str) -> float | None:
        if name == "collection_rate":
            return self.collection_rate
        return self.rates[name].value

    def rows(self) -> list[tuple[str, str]]:
        """``metric,value`` rows for kpi.csv: rates as fractions with 4 decimals, empty for no data."""
        paid, billed = self.collection
        values: list[tuple[str, float | Decimal | int | None]] = [(name, self.value(name)) for name in RATES]
        values += [
            ("median_close_hours", self.median_close_hours),
            ("median_done_hours", self.median_done_hours),
            ("collection_rate_to_date", float(self.collected_to_date / billed) if billed else None),
            ("billed_amount", billed),
            ("collected_amount", paid),
            ("owed_amount", billed - self.collected_to_date),
            ("tickets", sum(self.counts.values())),
        ]
        values += [(f"tickets_{kind}", count) for kind, count in sorted(self.counts.items())]
        values += [(f"{name}_count", self.rates[name].denominator) for name in RATES if name in self.rates]
        return [(name, _format(name, value)) for name, value in values]


def _format(name: str, value: float | Decimal | int | None) -> str:
    if value is None:
        return ""  # no data: nothing to divide by
    if isinstance(value, Decimal | int):
        return str(value)
    return f"{value:.1f}" if name.endswith("_hours") else f"{value:.4f}"


def compute(
    tickets: Sequence[TicketFact],
    callbacks: Sequence[CallbackFact],
    bills: Sequence[BillFact],
    period: Period,
    as_of: datetime,
    settings: CompoundSettings,
) -> Kpis:
    """The measures of ``period``, as known at ``as_of`` (docs/kpi.md)."""
    work = [t for t in tickets if t.kind in settings.callback_kinds]
    created = [t for t in tickets if period.holds(t.created_at)]
    rounds = _callback_rounds(work, callbacks, period, as_of, settings)
    answered = [r for r in rounds if r is not None and r.score is not None]
    paid, to_date, billed = _collection(bills, period)
    return Kpis(
        rates={
            "callback_rate": Ratio(len(answered), len(rounds)),
            "satisfaction_rate": Ratio(sum((r.score or 0) >= SATISFIED for r in answered), len(answered)),
            "on_time_arrival_rate": _on_time(created, as_of, lambda t: t.arrive_by, _arrival),
            "on_time_fix_rate": _on_time(created, as_of, lambda t: t.fix_by, _first_done),
            "reopen_rate": _reopen(work, period, as_of),
        },
        collection=(paid, billed),
        collected_to_date=to_date,
        median_close_hours=_median_hours(
            (t.created_at, t.closed_at)
            for t in work
            if t.status == TicketStatus.CLOSED and period.holds(t.closed_at)
        ),
        median_done_hours=_median_hours(
            (t.created_at, t.dones[0]) for t in work if t.dones and period.holds(t.dones[0])
        ),
        counts=Counter(t.kind for t in created if t.status != TicketStatus.CANCELLED),
    )


def _callback_rounds(
    work: Sequence[TicketFact],
    callbacks: Sequence[CallbackFact],
    period: Period,
    as_of: datetime,
    settings: CompoundSettings,
) -> list[CallbackFact | None]:
    """Each time a work ticket was done in the period and its callback was due by ``as_of``: its
    round's record (None if no round was ever started)."""
    by_round = {
        (c.ticket_id, c.done_at): c for c in callbacks if c.answered_at is None or c.answered_at <= as_of
    }
    due = timedelta(hours=settings.callback_after_h)
    return [
        by_round.get((t.id, done))
        for t in work
        for done in t.dones
        if period.holds(done) and done + due <= as_of
    ]


def _arrival(ticket: TicketFact) -> datetime | None:
    """On site: the first "arrived" event; without one, the first "done" (the work was done there)."""
    return ticket.arrivals[0] if ticket.arrivals else _first_done(ticket)


def _first_done(ticket: TicketFact) -> datetime | None:
    return ticket.dones[0] if ticket.dones else None


def _on_time(
    created: Sequence[TicketFact],
    as_of: datetime,
    deadline_of: Callable[[TicketFact], datetime | None],
    met_at: Callable[[TicketFact], datetime | None],
) -> Ratio:
    """Tickets with the deadline, decided by ``as_of`` (met, or the deadline passed): met in time."""
    on_time = counted = 0
    for ticket in created:
        deadline = deadline_of(ticket)
        if ticket.kind not in TIMED_KINDS or ticket.status == TicketStatus.CANCELLED or deadline is None:
            continue
        met = met_at(ticket)
        if met is not None and met > as_of:
            met = None
        if met is None and deadline >= as_of:
            continue  # still in time: not decided yet
        counted += 1
        on_time += met is not None and met <= deadline
    return Ratio(on_time, counted)


def _reopen(work: Sequence[TicketFact], period: Period, as_of: datetime) -> Ratio:
    """Work tickets first done in the period: reopened afterwards (by ``as_of``)."""
    finished = [t for t in work if t.dones and period.holds(t.dones[0])]
    reopened = sum(any(t.dones[0] < at <= as_of for at in t.reopenings) for t in finished)
    return Ratio(reopened, len(finished))


def _collection(bills: Sequence[BillFact], period: Period) -> tuple[Decimal, Decimal, Decimal]:
    """(paid by the period's end, paid by now, billed) for bills due in the period."""
    due = [b for b in bills if period.first <= b.due_date <= period.last and b.amount > 0]
    billed = sum((b.amount for b in due), Decimal(0))
    to_date = sum((min(b.paid_amount, b.amount) for b in due if b.paid_at is not None), Decimal(0))
    in_time = sum(
        (min(b.paid_amount, b.amount) for b in due if b.paid_at is not None and b.paid_at < period.end),
        Decimal(0),
    )
    return in_time, to_date, billed


def _median_hours(spans: Iterable[tuple[datetime, datetime | None]]) -> float | None:
    hours = [(end - start).total_seconds() / 3600 for start, end in spans if end is not None]
    return round(statistics.median(hours), 1) if hours else None
