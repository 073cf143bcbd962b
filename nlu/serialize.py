"""JSON for parses and entities: dataclasses become objects, datetimes ISO 8601 strings."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, time, timedelta
from enum import Enum
from pathlib import Path
from typing import TypeAlias

from nlu.types import Entity, Parse

JsonValue: TypeAlias = dict[str, "JsonValue"] | list["JsonValue"] | str | int | float | bool | None


def jsonable(value: object) -> JsonValue:
    """``value`` as plain JSON types (dict, list, str, int, float, bool, None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)  # anything exotic still serialises, readably


def entity_to_dict(entity: Entity) -> dict[str, JsonValue]:
    return {
        "type": entity.type,
        "value": jsonable(entity.value),
        "text": entity.text,
        "start": entity.start,
        "end": entity.end,
    }


def parse_to_dict(parse: Parse) -> dict[str, JsonValue]:
    return {
        "text": parse.text,
        "intent": parse.intent,
        "confidence": round(parse.confidence, 4),
        "entities": [entity_to_dict(e) for e in parse.entities],
    }


def dumps(value: object) -> str:
    """One line of JSON, Chinese kept readable."""
    if isinstance(value, Parse):
        value = parse_to_dict(value)
    return json.dumps(jsonable(value), ensure_ascii=False, separators=(",", ":"))
