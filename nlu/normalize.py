"""Text normalisation shared by every backend and extractor."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import opencc

_T2S = opencc.OpenCC("t2s")
_SPACES = re.compile(r"\s+")
# Characters t2s leaves as they are that residents write for a common one: Taiwan's 著 (关著, 等著)
# is the particle 着 (著名 reads oddly after this, which nothing here depends on).
_VARIANTS = str.maketrans({"著": "着"})
_CONTROL = {c: None for c in range(32) if chr(c) not in "\t\n\r"} | {0x7F: None}


def _t2s_tables() -> tuple[dict[int, str], frozenset[str], re.Pattern[str]] | None:
    """The t2s conversion split into a character table and a pattern of the multi-character phrases.

    opencc-python-reimplemented is pure Python and costs ~20 µs per character (0.1-0.6 ms for a
    message), which would be most of the NLU budget. When no phrase key (乾乾淨淨, 沈默, 一目瞭然; 277 of
    them) occurs in a text, its conversion is exactly a per-character replacement by the first
    mapping of each character, which ``str.translate`` does in C; otherwise the converter itself
    runs. None (always run the converter) if the library's internals ever change shape.
    """
    chain = getattr(_T2S, "_dict_chain_data", None)
    if not isinstance(chain, list) or len(chain) != 1 or len(chain[0]) != 2:
        return None
    (_p_max, _p_min, phrases), (c_max, c_min, characters) = chain[0]
    if (c_max, c_min) != (1, 1):
        return None
    table = {ord(key): value.split(" ")[0] for key, value in characters.items()}
    keys = sorted(phrases, key=len, reverse=True)
    # The phrase alternation has no common prefix for the regex engine to search by; a set of first
    # characters rules most texts out first.
    return table, frozenset(key[0] for key in keys), re.compile("|".join(map(re.escape, keys)))


_TABLES = _t2s_tables()


def to_simplified(text: str) -> str:
    """Traditional -> Simplified, the same result as ``opencc.OpenCC("t2s").convert``, faster."""
    if _TABLES is None:
        return str(_T2S.convert(text))
    table, first_chars, phrases = _TABLES
    if not first_chars.isdisjoint(text) and phrases.search(text):
        return str(_T2S.convert(text))
    return text.translate(table)


@lru_cache(maxsize=4096)
def normalize(text: str) -> str:
    """Traditional -> Simplified, full-width -> half-width (NFKC), control characters gone,
    runs of white space folded, lower case for Latin letters."""
    text = unicodedata.normalize("NFKC", text).translate(_CONTROL)
    text = to_simplified(text).translate(_VARIANTS)
    return _SPACES.sub(" ", text).strip().lower()
