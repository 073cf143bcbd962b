"""The embedded NLU backend: normalise, classify with a linear model, let emergency rules override.

Character n-grams need no word segmentation (no jieba) and shrug off typos, homophones and
Cantonese particles; scikit-learn fits a linear model over them in a second or two, and the fitted
weights classify one message in about 0.1 ms with numpy alone (figures in docs/benchmarks.md).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np

from nlu.emergency import MAX_SCAN_CHARS, emergency_possible, find_cues
from nlu.lexicon import markers
from nlu.normalize import normalize
from nlu.training_data import Example, load_examples
from nlu.types import Entity, Parse

if TYPE_CHECKING:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer

log = logging.getLogger(__name__)

MODEL_VERSION = "3"  # bump when features or estimator change: old caches are then ignored
DEFAULT_THRESHOLD = 0.3  # below this top probability the intent is out_of_scope (see docs/benchmarks.md)
RULE_CONFIDENCE = 0.95  # floor for an emergency found by the rules
NGRAM_RANGE = (1, 2)
SVM_C = 2.0
RANKING_SIZE = 3  # guesses kept on a parse, for a clarifying question
MAX_CLASSIFIER_CHARS = 200  # what residents mean is said up front; longer text only costs time
TZ = ZoneInfo("Asia/Shanghai")

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0003134f]")
_DIGITS = re.compile(r"\d+")


def features_text(normalised: str) -> str:
    """What the classifier sees: capped, every number folded to one symbol so that unit addresses
    and times (3栋2单元1502, 下午3点) do not become spurious features, and the trade's word classes
    found in it (nlu.lexicon) as one marker character each."""
    capped = normalised[:MAX_CLASSIFIER_CHARS]
    return f"{_DIGITS.sub('0', capped)} {markers(capped)}"


@dataclass
class IntentModel:
    """A TF-IDF + calibrated linear SVM fitted by scikit-learn, flattened into plain arrays.

    Inference needs only numpy: scikit-learn costs seconds of import time and ~100 MB of memory
    in every bot process, and milliseconds of input validation per message; the arrays give the
    same probabilities in tens of microseconds (a unit test holds them equal to scikit-learn's)."""

    labels: tuple[str, ...]
    vocabulary: dict[str, int]  # character n-gram -> feature column
    ngram_range: tuple[int, int]
    idf: np.ndarray  # (n_features,)
    coef: np.ndarray  # (n_features, n_classes)
    intercept: np.ndarray  # (n_classes,)
    slope: np.ndarray  # (n_classes,) Platt scaling: p = 1 / (1 + exp(slope * decision + offset))
    offset: np.ndarray  # (n_classes,)
    version: str = MODEL_VERSION

    @classmethod
    def compile(cls, vectorizer: TfidfVectorizer, estimator: CalibratedClassifierCV) -> IntentModel:
        (calibrated,) = estimator.calibrated_classifiers_  # ensemble=False: one SVM, one calibrator per class
        svm = calibrated.estimator
        return cls(
            labels=tuple(str(c) for c in estimator.classes_),
            vocabulary={str(gram): int(i) for gram, i in vectorizer.vocabulary_.items()},
            ngram_range=vectorizer.ngram_range,
            idf=vectorizer.idf_,
            coef=np.ascontiguousarray(svm.coef_.T),
            intercept=svm.intercept_,
            slope=np.array([c.a_ for c in calibrated.calibrators]),
            offset=np.array([c.b_ for c in calibrated.calibrators]),
        )

    def probabilities(self, normalised: str) -> np.ndarray:
        """Class probabilities, as ``estimator.predict_proba(vectorizer.transform([text]))``."""
        counts = Counter(char_ngrams(features_text(normalised), *self.ngram_range))
        hits = [(self.vocabulary[gram], n) for gram, n in counts.items() if gram in self.vocabulary]
        decision = self.intercept
        if hits:
            index = np.fromiter((i for i, _ in hits), dtype=np.intp, count=len(hits))
            values = (1.0 + np.log([n for _, n in hits])) * self.idf[index]  # sublinear tf * idf
            decision = values @ self.coef[index] / np.sqrt(values @ values) + self.intercept  # l2-normed
        proba = np.exp(-np.logaddexp(0.0, self.slope * decision + self.offset))  # overflow-free sigmoid
        total = proba.sum()
        return proba / total if total > 0 else np.full(len(proba), 1.0 / len(proba))


def char_ngrams(text: str, low: int, high: int) -> list[str]:
    """Character n-grams as scikit-learn's ``analyzer="char"`` makes them from normalised text."""
    return [text[i : i + n] for n in range(low, high + 1) for i in range(len(text) - n + 1)]


def fit_estimators(examples: Sequence[Example]) -> tuple[TfidfVectorizer, CalibratedClassifierCV]:
    """The scikit-learn models, fitted on (text, intent) pairs."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    texts = [features_text(normalize(text)) for text, _ in examples]
    intents = [intent for _, intent in examples]
    # Character uni- and bigrams: in k-fold cross-validation longer n-grams only overfit our data.
    # Text is normalised already (lower case, one space), exactly what char_ngrams assumes.
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=NGRAM_RANGE, lowercase=False, sublinear_tf=True)
    # Platt-scaled SVM: more accurate than logistic regression here, and its confidences separate
    # right from wrong answers well (wrong ones are rarely above 0.75).
    svm = LinearSVC(C=SVM_C, class_weight="balanced")
    folds = min(5, min(Counter(intents).values()))
    estimator = CalibratedClassifierCV(svm, method="sigmoid", cv=folds, ensemble=False)
    estimator.fit(vectorizer.fit_transform(texts), intents)
    return vectorizer, estimator


def fit(examples: Sequence[Example]) -> IntentModel:
    """Fit a model on (text, intent) pairs."""
    return IntentModel.compile(*fit_estimators(examples))


def train(paths: Iterable[Path | str]) -> IntentModel:
    """Fit a model on the intent examples of Rasa YAML files."""
    return fit(load_examples(paths))


# --- the backend ---------------------------------------------------------------------------------


class EmbeddedNLU:
    """``NLUBackend`` that runs in-process."""

    name = "embedded"

    def __init__(self, model: IntentModel, *, threshold: float | None = None) -> None:
        self.model = model
        self.threshold = _threshold_from_env() if threshold is None else threshold
        self._emergency = model.labels.index("emergency") if "emergency" in model.labels else None

    @classmethod
    def load(
        cls,
        paths: Sequence[Path] | None = None,
        *,
        cache_dir: Path | None = None,
        threshold: float | None = None,
    ) -> EmbeddedNLU:
        """The model for ``paths`` (default: the training split), from the cache when it is fresh."""
        model, _ = load_model(paths, cache_dir=cache_dir)
        return cls(model, threshold=threshold)

    @classmethod
    def from_examples(cls, examples: Sequence[Example], *, threshold: float | None = None) -> EmbeddedNLU:
        return cls(fit(examples), threshold=threshold)

    def parse(self, text: str, now: datetime | None = None) -> Parse:
        intent, confidence, ranking = self.understand(text)
        return Parse(text, intent, confidence, _entities(text, now or datetime.now(TZ)), ranking)

    def classify(self, text: str) -> tuple[str, float]:
        """(intent, confidence) without entity extraction."""
        intent, confidence, _ = self.understand(text)
        return intent, confidence

    def understand(self, text: str) -> tuple[str, float, tuple[tuple[str, float], ...]]:
        """(intent, confidence, the classifier's ranking) without entity extraction."""
        # Normalising 10,000 characters costs milliseconds; nothing past the scan limit is read.
        normalised = normalize(text[:MAX_SCAN_CHARS]) if isinstance(text, str) else ""
        cues = find_cues(normalised)
        if any(not cue.defused for cue in cues):
            confidence = max(RULE_CONFIDENCE, self._emergency_probability(normalised))
            return "emergency", confidence, (("emergency", confidence),)
        if not _CJK.search(normalised):
            return "out_of_scope", 1.0, ()  # empty, digits, emoji, English, pinyin: nothing we can act on
        probabilities = self.model.probabilities(normalised)
        if self._emergency is not None and (cues or not emergency_possible(normalised)):
            # The text names an emergency only as past, hypothetical or prevention talk, reports an
            # everyday fault (停电) that the trade handles as an (urgent) repair, or shows no sign of
            # danger at all (在家, a flat number): the classifier alone may not page the duty staff.
            probabilities = probabilities.copy()
            probabilities[self._emergency] = 0.0
            probabilities /= probabilities.sum() or 1.0
        return self._best(probabilities)

    def _emergency_probability(self, normalised: str) -> float:
        if self._emergency is None or not _CJK.search(normalised):
            return 0.0
        return float(self.model.probabilities(normalised)[self._emergency])

    def _best(self, probabilities: np.ndarray) -> tuple[str, float, tuple[tuple[str, float], ...]]:
        order = np.argsort(probabilities)[::-1][:RANKING_SIZE]
        ranking = tuple((self.model.labels[i], float(probabilities[i])) for i in order)
        intent, confidence = ranking[0]
        if confidence < self.threshold:
            return "out_of_scope", self.threshold, ranking  # as Rasa's FallbackClassifier reports it
        return intent, confidence, ranking


def _threshold_from_env() -> float:
    raw = os.environ.get("PROPBOT_NLU_THRESHOLD", "")
    try:
        return float(raw) if raw else DEFAULT_THRESHOLD
    except ValueError:
        log.warning("PROPBOT_NLU_THRESHOLD=%r is not a number; using %s", raw, DEFAULT_THRESHOLD)
        return DEFAULT_THRESHOLD


# --- entities ------------------------------------------------------------------------------------

Extractor = Callable[[str, datetime], tuple[Entity, ...]]
_extractor_missing = False


def _extractor() -> Extractor | None:
    """``nlu.entities.extract``, or None while that module does not exist yet."""
    global _extractor_missing
    module = sys.modules.get("nlu.entities")
    if module is None and not _extractor_missing:
        try:
            import nlu.entities as module
        except ModuleNotFoundError as exc:
            if exc.name != "nlu.entities":
                raise
            _extractor_missing = True
            log.warning("nlu.entities is missing; parses carry no entities")
    return getattr(module, "extract", None) if module is not None else None


def _entities(text: str, now: datetime) -> tuple[Entity, ...]:
    extract = _extractor()
    if extract is None or not isinstance(text, str):
        return ()
    try:
        return tuple(extract(text, now))
    except Exception:  # an extractor bug must not cost the resident the intent
        log.exception("entity extraction failed for %r", text[:80])
        return ()


# --- the model cache -----------------------------------------------------------------------------


def cache_dir() -> Path:
    return Path(os.environ.get("PROPBOT_CACHE_DIR") or Path.home() / ".cache" / "propbot")


def cache_key(paths: Sequence[Path]) -> str:
    """Changes whenever a training file, the model version or scikit-learn's version changes
    (a new release may fit different weights from the same data)."""
    digest = hashlib.sha256(f"{MODEL_VERSION}\0{_sklearn_version()}".encode())
    for path in sorted(paths):
        digest.update(f"{path.parent.name}/{path.name}".encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def _sklearn_version() -> str:
    """Without importing scikit-learn: a cached model must load without it."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scikit-learn")
    except PackageNotFoundError:
        return "none"


def cache_path(paths: Sequence[Path], directory: Path | None = None) -> Path:
    return (directory or cache_dir()) / f"embedded-{cache_key(paths)}.pkl"


def load_model(
    paths: Sequence[Path] | None = None, *, cache_dir: Path | None = None, force: bool = False
) -> tuple[IntentModel, bool]:
    """(model, came_from_cache). A missing, stale or unreadable cache means training afresh."""
    if paths is None:
        from nlu import training_files

        paths = training_files("train")
    path = cache_path(paths, cache_dir)
    model = None if force else _read_cache(path)
    if model is not None:
        return model, True
    model = train(paths)
    _write_cache(path, model)
    return model, False


def _read_cache(path: Path) -> IntentModel | None:
    try:
        with path.open("rb") as file:
            model: object = pickle.load(file)  # our own file, in the user's cache directory
    except FileNotFoundError:
        return None
    except Exception as exc:  # truncated, corrupt, or pickled by an incompatible version
        log.warning("ignoring unreadable NLU model cache %s: %s", path, exc)
        return None
    if not isinstance(model, IntentModel) or model.version != MODEL_VERSION:
        log.warning("ignoring NLU model cache %s: not a version %s model", path, MODEL_VERSION)
        return None
    return model


def _write_cache(path: Path, model: IntentModel) -> None:
    """Write atomically, so a concurrent reader never sees half a file; failure is not fatal."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, delete=False) as file:
            pickle.dump(model, file, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(file.name, path)
    except OSError as exc:
        log.warning("could not cache the NLU model in %s: %s", path, exc)
