"""Read Rasa 3.x NLU training YAML into plain (text, intent) pairs.

Only ``- intent:`` blocks are read; synonyms, lookups and regexes are for the Rasa backend and
ignored here. Entity markup (``[漏水](category)``, ``[漏水]{"entity": ...}``,
``[漏水][{...}]``) is stripped to the annotated text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import yaml

Example = tuple[str, str]  # (text, intent)
TSV_HELP = "one example per line: text<TAB>intent (blank lines and lines starting with # are skipped)"

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


def source_of(path: Path) -> str:
    """The kind of source a training file's lines imitate: its folder (``train/forum/repair.yml`` ->
    ``forum``). Leave-one-source-out evaluation holds out one such kind at a time."""
    return path.parent.name


def load_by_source(paths: Iterable[Path | str]) -> dict[str, list[Example]]:
    """The intent examples of ``paths`` grouped by ``source_of`` their file, in file order."""
    grouped: dict[str, list[Example]] = {}
    for path in paths:
        examples = list(_examples_in(Path(path)))
        if examples:
            grouped.setdefault(source_of(Path(path)), []).extend(examples)
    return grouped


class TsvError(ValueError):
    """A labelled TSV file that cannot be read as (text, intent) lines; says where and why."""


def load_tsv(path: Path | str, intents: Iterable[str]) -> list[Example]:
    """(text, intent) pairs from a TSV file; any malformed line is an error naming the line."""
    known = frozenset(intents)
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TsvError(f"{path}: cannot read: {exc}") from exc
    examples: list[Example] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            raise TsvError(
                f"{path}:{number}: expected 2 tab-separated fields, found {len(fields)}; {TSV_HELP}"
            )
        text, intent = fields[0].strip(), fields[1].strip()
        if not text:
            raise TsvError(f"{path}:{number}: the text is empty")
        if intent not in known:
            raise TsvError(f"{path}:{number}: unknown intent {intent!r}; known: {', '.join(sorted(known))}")
        examples.append((text, intent))
    if not examples:
        raise TsvError(f"{path}: no examples; {TSV_HELP}")
    return examples


def _examples_in(path: Path) -> Iterator[Example]:
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for block in document.get("nlu") or ():
        if isinstance(block, dict) and "intent" in block:
            intent = str(block["intent"])
            for text in _block_texts(block.get("examples")):
                yield strip_entities(text), intent


def _block_texts(examples: object) -> Iterator[str]:
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
