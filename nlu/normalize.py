"""Text normalisation shared by every backend and extractor."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import opencc

_T2S = opencc.OpenCC("t2s")
_SPACES = re.compile(r"\s+")
_CONTROL = {c: None for c in range(32) if chr(c) not in "\t\n\r"} | {0x7F: None}


@lru_cache(maxsize=4096)
def normalize(text: str) -> str:
    """Traditional -> Simplified, full-width -> half-width (NFKC), control characters gone,
    runs of white space folded, lower case for Latin letters."""
    text = unicodedata.normalize("NFKC", text).translate(_CONTROL)
    text = _T2S.convert(text)
    return _SPACES.sub(" ", text).strip().lower()
