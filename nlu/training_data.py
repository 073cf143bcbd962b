"""Read Rasa 3.x NLU training YAML into plain (text, intent) pairs.

Only ``- intent:`` blocks are read; synonyms, lookups and regexes are for the Rasa backend and
ignored here. Entity markup (``[漏水](category)``, ``[漏水]{"entity": ...}``,
``[漏水][{...}]``) is stripped to the annotated text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

Example = tuple[str, str]  # (text, intent)

_ENTITY_MARKUP = re.compile(r"\[([^\]]+)\](?:\([^)]*\)|\{[^}]*\}|\[[^\]]*\])")


def strip_entities(text: str) -> str:
    """``厨房[漏水](category)了`` -> ``厨房漏水了``."""
    return _ENTITY_MARKUP.sub(r"\1", text)


def load_examples(paths: Iterable[Path | str]) -> list[Example]:
    """All intent examples in ``paths``, in file order."""
    examples: list[Example] = []
    for path in paths:
        examples.extend(_examples_in(Path(path)))
    return examples


def _examples_in(path: Path) -> Iterator[Example]:
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for block in document.get("nlu") or ():
        if isinstance(block, dict) and "intent" in block:
            intent = str(block["intent"])
            for text in _block_texts(block.get("examples")):
                yield strip_entities(text), intent


def _block_texts(examples: Any) -> Iterator[str]:
    """Rasa allows a ``|`` string of ``- text`` lines or a list of ``{text: ...}`` mappings."""
    if isinstance(examples, str):
        for line in examples.splitlines():
            line = line.strip()
            if line.startswith("- "):
                yield line[2:].strip()
    elif isinstance(examples, list):
        for item in examples:
            text = item.get("text") if isinstance(item, dict) else item
            if isinstance(text, str) and text.strip():
                yield text.strip().removeprefix("- ")
