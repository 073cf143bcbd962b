"""Text normalisation shared by every backend and extractor."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import opencc

_T2S = opencc.OpenCC("t2s")
_SPACES = re.compile(r"\s+")
_CONTROL = {c: None for c in range(32) if chr(c) not in "\t\n\r"} | {0x7F: None}


def _t2s_triggers() -> frozenset[str] | None:
    """Every character that can make the t2s conversion change a string.

    The pure-Python converter costs ~0.1 ms even on plain Simplified text, which would eat most of the
    entity extractor's budget; a message with none of these characters is returned unchanged by it,
    so it can skip the converter (exact, not a heuristic). Single-character keys cover all phrase
    entries but two (沈船, 沈默), whose characters the second loop adds. None (always convert) if the
    library's internals ever change shape.
    """
    _T2S.convert("")  # loads the dictionaries
    chain = getattr(_T2S, "_dict_chain_data", None)
    if not isinstance(chain, list) or not chain:
        return None
    triggers: set[str] = set()
    for group in chain:
        for _max_len, _min_len, mapping in group:
            triggers.update(key for key in mapping if len(key) == 1)
    for group in chain:
        for _max_len, _min_len, mapping in group:
            for key, value in mapping.items():
                if len(key) > 1 and key != value and triggers.isdisjoint(key):
                    triggers.update(key)
    return frozenset(triggers)


_TRIGGERS = _t2s_triggers()


@lru_cache(maxsize=4096)
def normalize(text: str) -> str:
    """Traditional -> Simplified, full-width -> half-width (NFKC), control characters gone,
    runs of white space folded, lower case for Latin letters."""
    text = unicodedata.normalize("NFKC", text).translate(_CONTROL)
    if _TRIGGERS is None or not _TRIGGERS.isdisjoint(text):
        text = _T2S.convert(text)
    return _SPACES.sub(" ", text).strip().lower()
