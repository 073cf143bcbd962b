"""Natural-language understanding: text -> ``Parse(intent, confidence, entities)``.

Importing the package is cheap; backends (scikit-learn, HTTP) are imported when loaded.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from nlu.embedded import EmbeddedNLU
    from nlu.types import NLUBackend

TRAINING_DIR = Path(__file__).parent / "training"
BACKENDS: tuple[str, ...] = ("embedded", "rasa")
DEFAULT_RASA_URL = "http://127.0.0.1:5005"

_embedded: EmbeddedNLU | None = None


def training_files(split: Literal["train", "heldout"] = "train") -> list[Path]:
    """The YAML files of one split, sorted so the cache key is stable. The training split has a
    folder per kind of source (``train/forum/*.yml``): see ``source_of``."""
    if split not in ("train", "heldout"):
        raise ValueError(f"unknown split {split!r}")
    return sorted((TRAINING_DIR / split).rglob("*.yml"))


def load_backend(name: str = "embedded", *, rasa_url: str | None = None, timeout: float = 2.0) -> NLUBackend:
    """The named backend; the embedded model is loaded once per process and also backs Rasa."""
    if name == "embedded":
        return _embedded_backend()
    if name == "rasa":
        from nlu.rasa_backend import RasaNLU

        url = rasa_url or os.environ.get("RASA_URL") or DEFAULT_RASA_URL
        return RasaNLU(url, fallback=_embedded_backend(), timeout=timeout)
    raise ValueError(f"unknown NLU backend {name!r}; choose one of {', '.join(BACKENDS)}")


def _embedded_backend() -> EmbeddedNLU:
    global _embedded
    if _embedded is None:
        from nlu.embedded import EmbeddedNLU

        _embedded = EmbeddedNLU.load()
    return _embedded
