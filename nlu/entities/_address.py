"""Unit addresses (3栋2单元1502) and phone numbers."""

from __future__ import annotations

import re
from collections.abc import Iterator

from nlu.entities._numbers import CN_DIGITS, digits, to_int
from nlu.types import Entity, UnitRef

_SMALL_CN = "一二三四五六七八九十两"
_BUILDING = rf"(?P<b>\d{{1,3}}|[{_SMALL_CN}]{{1,3}})"
_UNIT = rf"(?P<u>\d{{1,2}}|[{_SMALL_CN}]{{1,3}})"
# Rooms are 3-4 digits (floor + door), written in figures or read digit by digit (一五零二).
_ROOM = rf"(?P<r>\d{{3,4}}|[{CN_DIGITS}]{{3,4}})"

# 3栋2单元1502室, 3号楼2单元1502, 十二栋一单元三零一, 3#2-1502, 3栋1502. A bare 楼 is not accepted as the
# building marker: "3楼" is a floor.
_UNIT_WITH_MARKER = re.compile(
    rf"(?<![\d{_SMALL_CN}]){_BUILDING}\s*(?:号楼|号栋|栋|幢|座|#)\s*"
    rf"(?:{_UNIT}\s*(?:单元|-)\s*)?{_ROOM}(?![\d{CN_DIGITS}])(?:\s*(?:室|房|号))?"
)
# 3-2-1502. The lookarounds keep dates (2026-11-23), phone numbers and decimals out.
_UNIT_DASHED = re.compile(r"(?<![\d\-./:#])(?P<b>\d{1,2})-(?P<u>\d{1,2})-(?P<r>\d{3,4})(?![\d\-./:])(?:室)?")

# Mobile: 11 digits from 13x-19x, optionally +86/0086, with spaces or dashes between groups.
_MOBILE = re.compile(r"(?<![\d+])(?:(?:\+|00)?86[\s-]?)?(?P<m>1[3-9]\d(?:[\s-]?\d){8})(?![\d])")
# Landline with area code: 010 and 02x have three-digit codes, all others four; local numbers
# have 7 or 8 digits.
_LANDLINE = re.compile(r"(?<![\d])\(?(?P<a>0(?:10|2\d)|0[3-9]\d{2})\)?[\s-]?(?P<n>[1-9]\d{6,7})(?![\d])")


_SEPARATORS = re.compile(r"[\s-]")


def _unit_entity(match: re.Match[str]) -> Entity | None:
    building = to_int(match["b"])
    unit = to_int(match["u"]) if match["u"] else None
    room = digits(match["r"])
    if not building or room is None or unit == 0:
        return None
    return Entity("unit", UnitRef(building, unit, room), match[0], match.start(), match.end())


def find_units(text: str) -> Iterator[Entity]:
    for pattern in (_UNIT_WITH_MARKER, _UNIT_DASHED):
        for match in pattern.finditer(text):
            entity = _unit_entity(match)
            if entity is not None:
                yield entity


def find_phones(text: str) -> Iterator[Entity]:
    for match in _MOBILE.finditer(text):
        number = _SEPARATORS.sub("", match["m"])
        yield Entity("phone", number, match[0], match.start(), match.end())
    for match in _LANDLINE.finditer(text):
        yield Entity("phone", f"{match['a']}-{match['n']}", match[0], match.start(), match.end())
