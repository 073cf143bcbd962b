"""``UnitsRepository`` in memory: compounds, buildings, units and bills in dicts by id.

Same filters and order as ``SqlUnits`` (``tests/unit/test_memory_units.py`` runs the same tests on
both). Rows point at each other by id; only the chat accounts are reached through
``account.resident``, as in ``MemoryTickets``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import date
from typing import TYPE_CHECKING, TypeVar

from data.models import Bill, Building, ChannelAccount, Compound, Unit
from data.repositories.units import UnitsRepository

Row = Compound | Building | Unit | Bill
R = TypeVar("R", Compound, Building, Unit, Bill)


class MemoryUnits:
    """``accounts`` (by id) stand in for the accounts aggregate."""

    def __init__(self, accounts: dict[int, ChannelAccount] | None = None) -> None:
        self.accounts = accounts if accounts is not None else {}
        self.compound_rows: dict[int, Compound] = {}
        self.building_rows: dict[int, Building] = {}
        self.unit_rows: dict[int, Unit] = {}
        self.bill_rows: dict[int, Bill] = {}

    def add(self, *rows: Row) -> None:
        """Store rows (a test's or a seed's), numbering those without an id."""
        for row in rows:
            match row:
                case Compound():
                    _put(self.compound_rows, row)
                case Building():
                    _put(self.building_rows, row)
                case Unit():
                    _put(self.unit_rows, row)
                case Bill():
                    _put(self.bill_rows, row)

    def compounds(self) -> list[Compound]:
        return [self.compound_rows[id_] for id_ in sorted(self.compound_rows)]

    def building_numbers(self, compound_id: int) -> set[int]:
        return {b.number for b in self.building_rows.values() if b.compound_id == compound_id}

    def bills(self, unit_id: int) -> list[Bill]:
        return _by_period_and_item(b for b in self.bill_rows.values() if b.unit_id == unit_id)

    def unpaid_bills(
        self,
        compound_id: int | None = None,
        *,
        period: str | None = None,
        units: Iterable[int] | None = None,
        due_before: date | None = None,
    ) -> dict[int, list[Bill]]:
        wanted = None if units is None else set(units)
        found: dict[int, list[Bill]] = defaultdict(list)
        for bill in self._bills(compound_id, _unpaid):
            if (
                (period is None or bill.period == period)
                and (wanted is None or bill.unit_id in wanted)
                and (due_before is None or bill.due_date < due_before)
            ):
                found[bill.unit_id].append(bill)
        return {unit_id: _by_period_and_item(found[unit_id]) for unit_id in sorted(found)}

    def overdue_since(self, compound_id: int, today: date) -> dict[int, date]:
        oldest: dict[int, date] = {}
        for bill in self._bills(compound_id, lambda b: _unpaid(b) and b.due_date < today):
            oldest[bill.unit_id] = min(bill.due_date, oldest.get(bill.unit_id, bill.due_date))
        return oldest

    def bad_bills(self, compound_id: int) -> list[Bill]:
        return self._bills(compound_id, lambda b: b.amount is None or b.amount < 0)

    def accounts_by_unit(self, units: Iterable[int]) -> dict[int, list[ChannelAccount]]:
        wanted = set(units)
        found: dict[int, list[ChannelAccount]] = defaultdict(list)
        for _, account in sorted(self.accounts.items()):
            if account.resident is not None and account.resident.unit_id in wanted:
                found[account.resident.unit_id].append(account)
        return dict(found)

    def compound_of_unit(self, unit_id: int) -> int | None:
        """The compound a unit belongs to (None for a unit not stored here)."""
        unit = self.unit_rows.get(unit_id)
        building = self.building_rows.get(unit.building_id) if unit is not None else None
        return building.compound_id if building is not None else None

    def _bills(self, compound_id: int | None, wanted: Callable[[Bill], bool]) -> list[Bill]:
        """Bills by id, of the compound when given, that pass ``wanted``."""
        return [
            self.bill_rows[id_]
            for id_ in sorted(self.bill_rows)
            if wanted(bill := self.bill_rows[id_])
            and (compound_id is None or self.compound_of_unit(bill.unit_id) == compound_id)
        ]


def _put(table: dict[int, R], row: R) -> None:
    if row.id is None:
        row.id = max(table, default=0) + 1
    table[row.id] = row


def _unpaid(bill: Bill) -> bool:
    """Owed: a positive amount not paid in full (a missing amount is not owed, as in SQL)."""
    return bill.amount is not None and bill.amount > 0 and bill.paid_amount < bill.amount


def _by_period_and_item(bills: Iterable[Bill]) -> list[Bill]:
    return sorted(bills, key=lambda b: (b.period, b.item, b.id))


if TYPE_CHECKING:  # mypy holds the memory repository to its protocol
    _units: UnitsRepository = MemoryUnits()
