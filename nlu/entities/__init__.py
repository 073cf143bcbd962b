"""Entity extraction from a resident's message: ``extract(text, now) -> tuple[Entity, ...]``.

Types and value shapes are those of ``nlu.types``. ``start``/``end`` and ``text`` refer to the
**normalised** text, ``normalize(text[:MAX_CHARS])`` (Traditional -> Simplified, full-width -> ASCII,
lower case, white space folded), not to the raw message.

Extractors run in a fixed order and a later numeric one never takes characters an earlier one took:
phone, unit, datetime, period. So 13800138000 is a phone and never a room, 3号楼 a building and never
the 3rd of the month, 12月3号 a date and never the period 12月. Keyword entities (fee_item, service,
category, area, common_area) are independent of those and of each other; each (type, value) is reported
once, at its first mention. The result is ordered by position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from nlu.entities._address import find_phones, find_units
from nlu.entities._keywords import find_keywords
from nlu.entities._numbers import warm_up
from nlu.entities._period import find_periods
from nlu.entities._time import SH, find_datetimes
from nlu.normalize import normalize
from nlu.types import Entity

__all__ = ["MAX_CHARS", "MAX_PER_TYPE", "SH", "anchor", "extract", "warm_up"]

# A resident's message is a few dozen characters; anything past this is pasted text, and scanning it
# would only cost time. Entities after the cut are not reported.
MAX_CHARS = 1000
# A message names a handful of times or units at most; past this many of one type the text is noise
# (a pasted table, a spam run), and stopping bounds the work on it.
MAX_PER_TYPE = 8

_Finder = Callable[[str, datetime], Iterable[Entity]]
_NUMERIC: tuple[_Finder, ...] = (
    lambda text, _now: find_phones(text),
    lambda text, _now: find_units(text),
    find_datetimes,
    find_periods,
)


def anchor(now: datetime | None) -> datetime:
    """``now`` in Asia/Shanghai; a naive datetime is taken to be Shanghai time already."""
    if now is None:
        return datetime.now(SH)
    if now.tzinfo is None:
        return now.replace(tzinfo=SH)
    return now.astimezone(SH)


def _free(taken: list[tuple[int, int]], start: int, end: int) -> bool:
    return all(end <= s or start >= e for s, e in taken)


def extract(text: str, now: datetime | None = None) -> tuple[Entity, ...]:
    """All entities in ``text``; never raises on odd input (empty, huge, binary-looking, not a str)."""
    if not isinstance(text, str) or not text:
        return ()
    norm = normalize(text[:MAX_CHARS])
    if not norm:
        return ()
    current = anchor(now)
    found: list[Entity] = []
    taken: list[tuple[int, int]] = []
    for finder in _NUMERIC:
        kept = 0
        for entity in finder(norm, current):
            if _free(taken, entity.start, entity.end):
                found.append(entity)
                taken.append((entity.start, entity.end))
                kept += 1
                if kept == MAX_PER_TYPE:
                    break
    found.extend(find_keywords(norm))
    found.sort(key=lambda e: (e.start, e.end))
    return tuple(found)
