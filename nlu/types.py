"""The NLU contract: what every backend returns and what the flows consume.

Entity types and the shape of their ``value`` (fixed; flows and tests rely on them):

=============  ==================================================================================
type           value
=============  ==================================================================================
unit           ``UnitRef`` (building number, unit number or None, room string)
phone          ``str`` of 11 digits (mobile) or a landline with area code, digits and '-' only
datetime       ``TimeSpan`` in Asia/Shanghai; a point in time has ``start == end``
fee_item       one of ``FEE_ITEMS``
period         ``Period`` (first and last month, inclusive)
service        one of ``SERVICES``
category       one of ``FAULT_CATEGORIES`` (what is broken)
area           ``"in_home"`` or ``"common"``
common_area    ``str``: the common place named (电梯, 车库, 大堂, 楼道, ...)
=============  ==================================================================================
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

INTENTS: tuple[str, ...] = (
    "repair",
    "complaint",
    "fee_query",
    "booking",
    "status_query",
    "emergency",
    "enquiry",
    "suggestion",
    "praise",
    "human_handoff",
    "greet",
    "thanks",
    "goodbye",
    "affirm",
    "deny",
    "cancel",
    "out_of_scope",
)

# What residents come for: the six intents every evaluation scores (macro-F1 over these).
MAIN_INTENTS: tuple[str, ...] = INTENTS[:6]

FEE_ITEMS: tuple[str, ...] = (
    "management",  # 物业费
    "parking",  # 停车费
    "water",  # 水费
    "electricity",  # 电费
    "shared",  # 公摊
    "decoration_waste",  # 装修垃圾清运费
    "repair",  # 维修费
)

SERVICES: tuple[str, ...] = (
    "cleaning",  # 保洁/家政
    "laundry",  # 洗衣
    "appliance_install",  # 家电安装
    "decoration",  # 装修申请
    "moving",  # 搬家 + 货梯
    "parking_space",  # 车位
    "pet_boarding",  # 宠物寄养
    "elderly_check",  # 老人健康检查
    "event",  # 社区活动
)

FAULT_CATEGORIES: tuple[str, ...] = (
    "water",  # 漏水, 水管, 水龙头, 没水
    "drain",  # 堵塞, 下水道, 马桶
    "electric",  # 停电, 跳闸, 插座
    "lighting",  # 灯不亮
    "door_lock",  # 门锁, 门禁
    "lift",  # 电梯
    "wall",  # 墙裂, 渗水, 脱落
    "gas",  # 燃气
    "appliance",  # 空调, 热水器
    "other",
)


@dataclass(frozen=True, slots=True)
class UnitRef:
    """A unit address as written: 3栋2单元1502 -> UnitRef(3, 2, "1502")."""

    building: int
    unit: int | None
    room: str

    def label(self) -> str:
        unit = f"{self.unit}单元" if self.unit is not None else ""
        return f"{self.building}栋{unit}{self.room}"


@dataclass(frozen=True, slots=True)
class TimeSpan:
    """A resolved time expression. ``start == end`` for a point in time."""

    start: datetime
    end: datetime

    @property
    def is_point(self) -> bool:
        return self.start == self.end


@dataclass(frozen=True, slots=True)
class Period:
    """Billing months, inclusive, as ``YYYY-MM``."""

    first: str
    last: str

    def contains(self, month: str) -> bool:
        return self.first <= month <= self.last


@dataclass(frozen=True, slots=True)
class Entity:
    type: str
    value: Any
    text: str = ""
    start: int = 0
    end: int = 0


@dataclass(frozen=True, slots=True)
class Parse:
    text: str
    intent: str
    confidence: float
    entities: tuple[Entity, ...] = field(default_factory=tuple)
    # The classifier's best guesses, best first, (intent, probability); ``intent`` may differ (a
    # fallback to out_of_scope, an emergency rule). Lets a dialog ask "报修还是投诉？" when unsure.
    ranking: tuple[tuple[str, float], ...] = ()

    def first(self, type_: str) -> Entity | None:
        return next(self.all(type_), None)

    def all(self, type_: str) -> Iterator[Entity]:
        return (e for e in self.entities if e.type == type_)

    def value(self, type_: str, default: Any = None) -> Any:
        entity = self.first(type_)
        return entity.value if entity is not None else default


class NLUBackend(Protocol):
    """Anything that understands a resident's message."""

    name: str

    def parse(self, text: str, now: datetime | None = None) -> Parse:
        """Classify ``text`` and extract entities; ``now`` (aware) anchors relative times."""
        ...
