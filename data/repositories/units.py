"""Units: compounds, buildings, units, their bills and the chat accounts living there."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from typing import Protocol, TypeVarTuple

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from data.models import Bill, Building, ChannelAccount, Compound, Resident, Unit

CHUNK = 500  # ids per IN list: a sane size on every database
Columns = TypeVarTuple("Columns")


class UnitsRepository(Protocol):
    def compounds(self) -> list[Compound]:
        """Every compound, the oldest first."""
        ...

    def building_numbers(self, compound_id: int) -> set[int]: ...

    def bills(self, unit_id: int) -> list[Bill]:
        """All the unit's bills, by period and item."""
        ...

    def unpaid_bills(
        self,
        compound_id: int | None = None,
        *,
        period: str | None = None,
        units: Iterable[int] | None = None,
        due_before: date | None = None,
    ) -> dict[int, list[Bill]]:
        """Unpaid bills with a positive amount by unit (by period and item), of a compound, a
        period, some units, due before a day, when given."""
        ...

    def overdue_since(self, compound_id: int, today: date) -> dict[int, date]:
        """Units of the compound with unpaid bills due before ``today``: the oldest due date."""
        ...

    def bad_bills(self, compound_id: int) -> list[Bill]:
        """Bills of the compound with a missing or negative amount."""
        ...

    def accounts_by_unit(self, units: Iterable[int]) -> dict[int, list[ChannelAccount]]:
        """The chat accounts bound to residents of each unit (units without any left out)."""
        ...


class SqlUnits:
    def __init__(self, session: Session) -> None:
        self.session = session

    def compounds(self) -> list[Compound]:
        return list(self.session.scalars(select(Compound).order_by(Compound.id)).all())

    def building_numbers(self, compound_id: int) -> set[int]:
        return set(self.session.scalars(select(Building.number).where(Building.compound_id == compound_id)))

    def bills(self, unit_id: int) -> list[Bill]:
        query = select(Bill).where(Bill.unit_id == unit_id).order_by(Bill.period, Bill.item)
        return list(self.session.scalars(query).all())

    def unpaid_bills(
        self,
        compound_id: int | None = None,
        *,
        period: str | None = None,
        units: Iterable[int] | None = None,
        due_before: date | None = None,
    ) -> dict[int, list[Bill]]:
        query = select(Bill).where(Bill.amount > 0, Bill.paid_amount < Bill.amount)
        if compound_id is not None:
            query = _in_compound(query, compound_id)
        if period is not None:
            query = query.where(Bill.period == period)
        if due_before is not None:
            query = query.where(Bill.due_date < due_before)
        parts = (
            [query] if units is None else [query.where(Bill.unit_id.in_(chunk)) for chunk in _chunks(units)]
        )
        found: dict[int, list[Bill]] = defaultdict(list)
        for part in parts:
            for bill in self.session.scalars(part.order_by(Bill.unit_id, Bill.period, Bill.item)).unique():
                found[bill.unit_id].append(bill)
        return dict(found)

    def overdue_since(self, compound_id: int, today: date) -> dict[int, date]:
        query = _in_compound(
            select(Bill.unit_id, func.min(Bill.due_date))
            .where(Bill.amount > 0, Bill.paid_amount < Bill.amount, Bill.due_date < today)
            .group_by(Bill.unit_id),
            compound_id,
        )
        return {unit_id: since for unit_id, since in self.session.execute(query).all()}

    def bad_bills(self, compound_id: int) -> list[Bill]:
        query = _in_compound(select(Bill).where(or_(Bill.amount.is_(None), Bill.amount < 0)), compound_id)
        return list(self.session.scalars(query).unique().all())

    def accounts_by_unit(self, units: Iterable[int]) -> dict[int, list[ChannelAccount]]:
        found: dict[int, list[ChannelAccount]] = defaultdict(list)
        for chunk in _chunks(units):
            rows = self.session.execute(
                select(ChannelAccount, Resident.unit_id)
                .join(Resident, ChannelAccount.resident_id == Resident.id)
                .where(Resident.unit_id.in_(chunk))
                .order_by(ChannelAccount.id)
            ).unique()
            for account, unit_id in rows:
                found[unit_id].append(account)
        return dict(found)


def _in_compound(query: Select[*Columns], compound_id: int) -> Select[*Columns]:
    """``query`` on bills narrowed to the compound's units."""
    return (
        query.join(Unit, Bill.unit_id == Unit.id)
        .join(Building, Unit.building_id == Building.id)
        .where(Building.compound_id == compound_id)
    )


def _chunks(ids: Iterable[int]) -> list[list[int]]:
    wanted = list(ids)
    return [wanted[start : start + CHUNK] for start in range(0, len(wanted), CHUNK)]
