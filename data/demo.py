"""A realistic demo compound (阳光花园), loaded into an empty store on first use.

Deterministic: the same ``now`` gives the same compound, so tests can rely on it. Bills run over the
six months before ``now``; a few units are behind on payments. ``history=True`` (``propbot demo``,
``propbot chat`` on first run) adds six months of tickets, callbacks and payment habits
(``data.demo_history``); the tests' compound is built without it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from data import demo_history
from data.clock import local
from data.models import (
    Bill,
    BindingCode,
    Building,
    ChannelAccount,
    Compound,
    Resident,
    Staff,
    Unit,
)
from data.store import Store

BUILDINGS = 6
UNITS_PER_BUILDING = 2
FLOORS = 18
ROOMS_PER_FLOOR = 2
MONTHS_BILLED = 6


@dataclass(frozen=True)
class DemoAccount:
    """A console account the demo ships, for ``propbot chat --as NAME``."""

    name: str
    description: str
    building: int | None = None
    unit_no: int | None = None
    room: str | None = None
    resident: str | None = None


# Named residents the demos and tests talk as; everyone else gets a generated name.
NAMED_RESIDENTS: tuple[tuple[int, int, str, str, str, str], ...] = (
    # building, unit, room, name, phone, role
    (3, 2, "1502", "李明", "13800138000", "owner"),
    (3, 2, "1502", "王芳", "13800138001", "family"),
    (5, 1, "302", "陈静", "13800138002", "tenant"),
    (5, 1, "302", "赵强", "13800138003", "owner"),
    (1, 1, "101", "周阿姨", "13800138004", "owner"),
    (2, 2, "801", "吴磊", "13800138005", "owner"),
)

DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("demo", "李明, owner of 3栋2单元1502 (bound; owes management fees)", 3, 2, "1502", "李明"),
    DemoAccount("family", "王芳, family member in 3栋2单元1502 (bound)", 3, 2, "1502", "王芳"),
    DemoAccount("tenant", "陈静, tenant of 5栋1单元302 (bound; all paid)", 5, 1, "302", "陈静"),
    DemoAccount("elder", "周阿姨, owner of 1栋1单元101 (bound)", 1, 1, "101", "周阿姨"),
    DemoAccount("guest", "a new WeChat follower, not bound yet (try code SUN888 or 2栋2单元801 13800138005)"),
)

# One-time binding codes the office handed out (code -> resident name).
BINDING_CODES = {"SUN888": "吴磊", "SUN777": "赵强"}

STAFF: tuple[tuple[str, str, str, list[str]], ...] = (
    ("小李", "front_desk", "13900139000", []),
    ("王师傅", "technician", "13900139001", ["water", "drain", "wall", "gas"]),
    ("张师傅", "technician", "13900139002", ["electric", "lighting", "appliance"]),
    ("刘师傅", "technician", "13900139003", ["lift", "door_lock", "other"]),
    ("陈阿姨", "cleaner", "13900139004", ["cleaning", "laundry"]),
    ("赵主管", "lead", "13900139005", []),
    ("孙主任", "director", "13900139006", []),
)

SURNAMES = "张王李赵刘陈杨黄周吴徐孙马朱胡郭何林罗高"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华"


def is_empty(store: Store) -> bool:
    return store.count(Compound) == 0


def load_demo(store: Store, now: datetime, history: bool = False) -> Compound:
    """Create the demo compound with units, residents, staff, bills and binding codes; with
    ``history``, six months of its past too."""
    rng = random.Random(20261123)
    compound = Compound(
        code="sunshine",
        name="阳光花园",
        duty_phone="0571-88880000",
        office_phone="0571-88881234",
        office_hours="每天 08:30-18:00（节假日 09:00-17:00）",
        office_address="小区东门物业服务中心",
        payment_methods="微信公众号“阳光花园物业”-缴费，或到物业服务中心刷卡/扫码缴费",
        settings={},
    )
    store.session.add(compound)
    units = _add_units(store, compound, rng)
    residents = _add_residents(store, units, rng)
    _add_staff(store, compound)
    _add_bills(store, units, now, rng)
    _add_binding_codes(store, residents, now)
    _add_console_accounts(store, residents)
    store.session.flush()
    if history:
        named = {units[(b, u, r)].id for b, u, r, *_ in NAMED_RESIDENTS}
        demo_history.load_history(store, compound.id, named, now)
    return compound


def _add_units(store: Store, compound: Compound, rng: random.Random) -> dict[tuple[int, int, str], Unit]:
    units: dict[tuple[int, int, str], Unit] = {}
    for number in range(1, BUILDINGS + 1):
        building = Building(compound=compound, number=number, name=f"{number}栋")
        store.session.add(building)
        for unit_no in range(1, UNITS_PER_BUILDING + 1):
            for floor in range(1, FLOORS + 1):
                for door in range(1, ROOMS_PER_FLOOR + 1):
                    room = f"{floor}{door:02d}"
                    area = Decimal(rng.choice((89, 96, 105, 118, 128, 142)))
                    unit = Unit(building=building, unit_no=unit_no, room=room, area_m2=area)
                    units[(number, unit_no, room)] = unit
    store.session.add_all(units.values())
    return units


def _add_residents(
    store: Store, units: dict[tuple[int, int, str], Unit], rng: random.Random
) -> dict[str, Resident]:
    named: dict[str, Resident] = {}
    for building, unit_no, room, name, phone, role in NAMED_RESIDENTS:
        resident = Resident(unit=units[(building, unit_no, room)], name=name, phone=phone, role=role)
        named[name] = resident
        store.session.add(resident)
    taken = {(b, u, r) for b, u, r, *_ in NAMED_RESIDENTS}
    for index, (key, unit) in enumerate(sorted(units.items())):
        if key in taken or index % 3:  # about a third of flats have a resident on file
            continue
        name = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(("", *GIVEN))
        phone = f"1860000{index:04d}"
        store.session.add(Resident(unit=unit, name=name, phone=phone, role="owner"))
    return named


def _add_staff(store: Store, compound: Compound) -> None:
    for index, (name, role, phone, skills) in enumerate(STAFF):
        store.session.add(
            Staff(
                compound=compound,
                name=name,
                role=role,
                phone=phone,
                skills=skills,
                telegram_user_id=str(900001 + index),
            )
        )


def _months_before(now: datetime, count: int) -> list[date]:
    first = local(now).date().replace(day=1)
    months = []
    for _ in range(count):
        months.append(first)
        first = (first - timedelta(days=1)).replace(day=1)
    return sorted(months)


def _add_bills(
    store: Store, units: dict[tuple[int, int, str], Unit], now: datetime, rng: random.Random
) -> None:
    months = _months_before(now, MONTHS_BILLED)
    arrears = {(3, 2, "1502"): 3, (1, 1, "101"): 1}  # unpaid trailing months for the demo
    for key, unit in units.items():
        unpaid_months = arrears.get(key, 0 if rng.random() > 0.08 else rng.randint(1, 4))
        has_parking = key[2].endswith("01") and rng.random() < 0.5 or key == (3, 2, "1502")
        for index, month in enumerate(months):
            paid = index < len(months) - unpaid_months
            due = month.replace(day=20)
            items = {
                "management": (unit.area_m2 or Decimal(100)) * Decimal("2.6"),
                "water": Decimal(rng.randint(30, 120)) + Decimal("0.50"),
            }
            if has_parking:
                items["parking"] = Decimal(300)
            for item, amount in items.items():
                amount = amount.quantize(Decimal("0.01"))
                paid_at = datetime(due.year, due.month, 18, 10, tzinfo=now.tzinfo) if paid else None
                if paid_at is not None and paid_at > now:  # this month's bill, not paid yet
                    paid, paid_at = False, None
                store.session.add(
                    Bill(
                        unit=unit,
                        item=item,
                        period=f"{month:%Y-%m}",
                        amount=amount,
                        due_date=due,
                        paid_amount=amount if paid else Decimal(0),
                        paid_at=paid_at,
                    )
                )


def _add_binding_codes(store: Store, residents: dict[str, Resident], now: datetime) -> None:
    for code, name in BINDING_CODES.items():
        store.session.add(BindingCode(code=code, resident=residents[name], created_at=now))


def _add_console_accounts(store: Store, residents: dict[str, Resident]) -> None:
    for account in DEMO_ACCOUNTS:
        resident = residents.get(account.resident or "")
        store.session.add(
            ChannelAccount(
                channel="console",
                external_id=account.name,
                display_name=resident.name if resident else account.name,
                resident=resident,
            )
        )
