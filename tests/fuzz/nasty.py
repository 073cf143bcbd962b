"""The nasty inputs: the checked-in corpus (``tests/fuzz/corpus``) and Hypothesis strategies that
mix it with generated text and mutate valid payloads."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

CORPUS = Path(__file__).parent / "corpus"
SNIPPETS = [  # pieces to splice into otherwise ordinary messages
    "\x00",
    "\ud800",
    "\udfff",
    "\u202e",
    "\u200b",
    "\ufeff",
    "\u0301" * 8,
    "😡",
    "👨‍👩‍👧",
    "'; DROP TABLE tickets; --",
    "%s%n{0}{}",
    "<![CDATA[",
    "]]>",
    "&amp;",
    "\r\n",
    "确认",
    "算了",
    "3栋2单元1502",
    "明天上午",
    "13800138000",
    "SUN888",
    "9" * 40,
]


@cache
def corpus_texts() -> dict[str, str]:
    """Message texts from ``corpus/texts.json`` (JSON, so NUL and lone surrogates can be written)."""
    entries = json.loads((CORPUS / "texts.json").read_text())
    return {entry["name"]: entry["text"] for entry in entries}


def corpus_files(*patterns: str) -> list[Path]:
    return sorted(path for pattern in patterns for path in CORPUS.glob(pattern))


# -- text ---------------------------------------------------------------------------------------------
ANY_CHAR = st.characters()  # every code point, lone surrogates included
CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)


def nasty_text() -> st.SearchStrategy[str]:
    """Corpus texts, generated text (any code point), and ordinary words with nasty pieces spliced in."""
    spliced = st.lists(st.one_of(st.sampled_from(SNIPPETS), st.text(CJK, max_size=6)), max_size=6).map(
        "".join
    )
    return st.one_of(
        st.sampled_from(sorted(corpus_texts().values())),
        st.text(ANY_CHAR, max_size=60),
        spliced,
        st.text(st.sampled_from("0123456789²٣３-: "), max_size=30),
    )


def words() -> st.SearchStrategy[str]:
    """What residents type to move a dialog along, so nasty text reaches slot filling too."""
    return st.sampled_from(
        [
            "厨房水管漏水了",
            "我要投诉",
            "物业费还欠多少",
            "周六想约个保洁",
            "尽快",
            "明天上午",
            "确认",
            "1",
            "2",
        ]
    )


# -- JSON ---------------------------------------------------------------------------------------------
JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(ANY_CHAR, max_size=20),
)
JSON_VALUE = st.recursive(
    JSON_LEAF,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside nested dicts and lists."""
    found = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, item in value.items():
            found += paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += paths(item, (*prefix, index))
    return found


def _parent(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        document = document[step]
    return document


@st.composite
def mutated_json(draw: st.DrawFn, document: dict[str, Any], max_mutations: int = 3) -> dict[str, Any]:
    """``document`` with a few fields replaced by values of any type, removed, or added."""
    result = copy.deepcopy(document)
    for _ in range(draw(st.integers(0, max_mutations))):
        targets = paths(result)
        if not targets:
            break
        path = draw(st.sampled_from(targets))
        parent, key = _parent(result, path), path[-1]
        action = draw(st.sampled_from(["replace", "text", "drop", "add"]))
        if action == "replace":
            parent[key] = draw(JSON_VALUE)
        elif action == "text":
            parent[key] = draw(nasty_text())
        elif action == "drop":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.text(max_size=12))] = draw(JSON_VALUE)
    return result
