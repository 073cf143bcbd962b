"""The Rasa backend: intents from a Rasa NLU server over HTTP, entities and safety rules from us.

Rasa 3.6 runs in its own Python 3.10 venv beside the bot (``bash nlu/rasa/rasa.sh serve``), so this
module only speaks HTTP (``POST {url}/model/parse``). Rasa's entity spans are plain strings, while
the flows need resolved values (a ``UnitRef``, a ``TimeSpan``), so entities come from the same rule
extractors as the embedded backend, and so does the emergency override: a missed emergency is too
costly to leave to one classifier.

Whenever Rasa is down, slow or talks nonsense, the embedded backend answers instead: the resident
must never notice. The outage is logged once, not once per message, and its end is logged too.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from collections.abc import Callable, Mapping
from datetime import datetime

import httpx

from nlu.emergency import emergency_possible, find_cues
from nlu.normalize import normalize
from nlu.types import INTENTS, Entity, NLUBackend, Parse

log = logging.getLogger(__name__)

RASA_FALLBACK_INTENT = "nlu_fallback"  # what Rasa's FallbackClassifier answers below its threshold
RULE_CONFIDENCE = 0.95  # floor for an emergency found by the rules (as in the embedded backend)
MAX_CHARS = 200  # what residents mean is said up front; more text only costs the server time
_SPACES = re.compile(r"\s+")

Extractor = Callable[[str, datetime | None], tuple[Entity, ...]]


class RasaUnusable(Exception):
    """Rasa answered, but nothing we can use (HTTP error, not JSON, wrong shape, unknown intent)."""


class RasaNLU:
    """``NLUBackend`` backed by a Rasa NLU server, with another backend to fall back on."""

    name = "rasa"

    def __init__(
        self,
        url: str,
        fallback: NLUBackend,
        timeout: float = 2.0,
        *,
        extract: Extractor | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.fallback = fallback
        self.timeout = timeout
        self._extract = extract
        # One persistent client: keep-alive saves a TCP handshake per message. Rasa runs beside the
        # bot, so an HTTP(S)_PROXY from the environment must not capture these calls.
        self._client = httpx.Client(base_url=self.url, timeout=httpx.Timeout(timeout), trust_env=False)
        self._down = False
        self._lock = threading.Lock()

    # --- NLUBackend --------------------------------------------------------------------------

    def parse(self, text: str, now: datetime | None = None) -> Parse:
        normalised = normalize(text) if isinstance(text, str) else ""
        if not normalised:
            return self.fallback.parse(text, now)  # nothing to classify; no round trip
        try:
            ranking = self._ask(_for_rasa(text))
        except (httpx.HTTPError, httpx.InvalidURL, RasaUnusable, ValueError, OSError) as exc:
            self._mark_down(exc)
            return self.fallback.parse(text, now)
        self._mark_up()
        intent, confidence = _apply_emergency_rules(normalised, ranking)
        return Parse(text, intent, confidence, self._entities(text, now), tuple(ranking[:3]))

    # --- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> RasaNLU:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def available(self) -> bool:
        """False while an outage is going on (the last request failed)."""
        return not self._down

    # --- internals ---------------------------------------------------------------------------

    def _ask(self, text: str) -> list[tuple[str, float]]:
        """Rasa's ranking as (our intent, confidence), best first; raises when unusable."""
        response = self._client.post("/model/parse", json={"text": text})
        if response.status_code != 200:
            raise RasaUnusable(f"HTTP {response.status_code}: {response.text[:200]!r}")
        try:
            body = response.json()
        except ValueError as exc:
            raise RasaUnusable(f"not JSON: {response.text[:200]!r}") from exc
        return _ranking(body)

    def _entities(self, text: str, now: datetime | None) -> tuple[Entity, ...]:
        if self._extract is None:
            self._extract = _default_extractor()
        try:
            return tuple(self._extract(text, now))
        except Exception:  # an extractor bug must not cost the resident the intent
            log.exception("entity extraction failed for %r", text[:80])
            return ()

    def _mark_down(self, exc: Exception) -> None:
        with self._lock:
            first = not self._down
            self._down = True
        if first:
            log.warning(
                "Rasa NLU at %s is unusable (%s: %s); the %s backend answers until it recovers",
                self.url,
                type(exc).__name__,
                exc,
                getattr(self.fallback, "name", "fallback"),
            )

    def _mark_up(self) -> None:
        with self._lock:
            recovered = self._down
            self._down = False
        if recovered:
            log.warning("Rasa NLU at %s answers again", self.url)


def _for_rasa(text: str) -> str:
    """The text as the resident wrote it, white space folded and capped. Not ``normalize``d: Rasa
    learns from the training YAML as written, Traditional and Cantonese examples included, and on
    the heldout set raw text scored better (0.927) than Simplified (0.918)."""
    return _SPACES.sub(" ", text[: MAX_CHARS * 2]).strip()[:MAX_CHARS]


def _default_extractor() -> Extractor:
    # Imported on first use: the extractors warm up number tables we do not need at import time.
    from nlu.entities import extract

    return extract


def _ranking(body: object) -> list[tuple[str, float]]:
    """Validate a /model/parse answer and map Rasa's intent names to ours."""
    if not isinstance(body, Mapping):
        raise RasaUnusable(f"expected a JSON object, got {type(body).__name__}")
    top = _intent(body.get("intent"))
    ranking = body.get("intent_ranking")
    rest: list[tuple[str, float]] = []
    for item in ranking if isinstance(ranking, list) else ():
        try:
            candidate = _intent(item)
        except RasaUnusable:
            continue  # a bad runner-up does not spoil a good answer
        if candidate[0] != top[0] and candidate[0] not in dict(rest):
            rest.append(candidate)
    return [top, *rest]


def _intent(raw: object) -> tuple[str, float]:
    if not isinstance(raw, Mapping):
        raise RasaUnusable(f"intent is not an object: {raw!r:.100}")
    name, confidence = raw.get("name"), raw.get("confidence")
    if name == RASA_FALLBACK_INTENT:
        name = "out_of_scope"
    if name not in INTENTS:
        # A model trained on other data; its labels mean nothing to the flows.
        raise RasaUnusable(f"unknown intent {name!r}")
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or math.isnan(confidence):
        raise RasaUnusable(f"confidence is not a number: {confidence!r:.50}")
    return str(name), min(1.0, max(0.0, float(confidence)))


def _apply_emergency_rules(normalised: str, ranking: list[tuple[str, float]]) -> tuple[str, float]:
    """The embedded backend's safety rules: a live emergency cue wins whatever Rasa thinks; a
    defused one (past, hypothetical, negated) or an everyday fault (停电) may not yield an emergency."""
    cues = find_cues(normalised)
    emergency = dict(ranking).get("emergency", 0.0)
    if any(not cue.defused for cue in cues):
        return "emergency", max(RULE_CONFIDENCE, emergency)
    if (cues or not emergency_possible(normalised)) and ranking[0][0] == "emergency":
        others = [item for item in ranking[1:] if item[0] != "emergency"]
        return others[0] if others else ("out_of_scope", 1.0 - emergency)
    return ranking[0]
