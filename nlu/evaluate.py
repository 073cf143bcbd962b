"""How well a backend understands residents: k-fold cross-validation, held-out evaluation,
per-intent precision/recall/F1, confusion matrix, missed emergencies, parse latency.

k-fold needs a backend that can be trained on any subset (a *factory*); the Rasa server serves one
model trained on the training split, so backends are compared on the held-out split.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from zoneinfo import ZoneInfo

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import StratifiedKFold

from nlu.training_data import Example
from nlu.types import INTENTS, MAIN_INTENTS, NLUBackend

Factory = Callable[[Sequence[Example]], NLUBackend]

# A fixed clock keeps entity extraction (part of every parse) reproducible.
EVAL_NOW = datetime(2025, 3, 12, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))


@dataclass(frozen=True)
class IntentScore:
    precision: float
    recall: float
    f1: float
    support: int


@dataclass
class Report:
    """Predictions of one backend on labelled examples, and the metrics derived from them."""

    backend: str
    mode: str  # "heldout" or "5-fold"
    texts: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    predicted: list[str] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)

    def add(self, text: str, expected: str, predicted: str, confidence: float, latency_ms: float) -> None:
        self.texts.append(text)
        self.expected.append(expected)
        self.predicted.append(predicted)
        self.confidences.append(confidence)
        self.latencies_ms.append(latency_ms)

    @cached_property
    def labels(self) -> list[str]:
        """Every intent of the contract, then any unknown label a backend invented."""
        extra = sorted(set(self.expected + self.predicted) - set(INTENTS))
        return [*INTENTS, *extra]

    @property
    def accuracy(self) -> float:
        return float(accuracy_score(self.expected, self.predicted)) if self.expected else 0.0

    @cached_property
    def scores(self) -> dict[str, IntentScore]:
        """Per-intent scores, for the intents present in the expected labels."""
        return self._scores_of(self.labels)

    @property
    def macro_f1(self) -> float:
        return float(np.mean([s.f1 for s in self.scores.values()])) if self.scores else 0.0

    @cached_property
    def main_scores(self) -> dict[str, IntentScore]:
        """Scores of the six main intents present in the expected labels; any other answer (an
        enquiry, out_of_scope) counts against recall, never as a hit."""
        return self._scores_of(MAIN_INTENTS)

    def _scores_of(self, labels: Sequence[str]) -> dict[str, IntentScore]:
        present = [label for label in labels if label in set(self.expected)]
        if not present:
            return {}
        p, r, f, s = precision_recall_fscore_support(
            self.expected, self.predicted, labels=present, zero_division=0
        )
        return {
            label: IntentScore(float(p[i]), float(r[i]), float(f[i]), int(s[i]))
            for i, label in enumerate(present)
        }

    @property
    def main_macro_f1(self) -> float:
        """Macro-F1 over the main intents: the figure the project is judged by."""
        return float(np.mean([s.f1 for s in self.main_scores.values()])) if self.main_scores else 0.0

    @property
    def emergency_recall(self) -> float | None:
        """Share of emergencies answered as emergency; None without any emergency to find."""
        total = self.expected.count("emergency")
        return (total - len(self.missed_emergencies)) / total if total else None

    @cached_property
    def confusion(self) -> np.ndarray:
        """Rows: expected, columns: predicted, in ``labels`` order."""
        matrix: np.ndarray = confusion_matrix(self.expected, self.predicted, labels=self.labels)
        return matrix

    @property
    def missed_emergencies(self) -> list[tuple[str, str]]:
        """(text, predicted) of emergencies not classified as emergency."""
        return [
            (t, p)
            for t, e, p in zip(self.texts, self.expected, self.predicted, strict=True)
            if e == "emergency" and p != "emergency"
        ]

    @property
    def false_emergencies(self) -> list[tuple[str, str]]:
        """(text, expected) of other messages classified as emergency (false alarms)."""
        return [
            (t, e)
            for t, e, p in zip(self.texts, self.expected, self.predicted, strict=True)
            if p == "emergency" and e != "emergency"
        ]

    def latency(self, quantile: float) -> float:
        return float(np.quantile(self.latencies_ms, quantile)) if self.latencies_ms else 0.0

    def errors(self) -> list[tuple[str, str, str, float]]:
        """(text, expected, predicted, confidence) of every wrong prediction."""
        rows = zip(self.texts, self.expected, self.predicted, self.confidences, strict=True)
        return [(t, e, p, c) for t, e, p, c in rows if e != p]


def evaluate(
    backend: NLUBackend, examples: Sequence[Example], *, mode: str = "heldout", report: Report | None = None
) -> Report:
    """Parse every example with ``backend`` and record the outcome and the time taken."""
    report = report or Report(getattr(backend, "name", type(backend).__name__), mode)
    for text, expected in examples:
        start = time.perf_counter_ns()
        parse = backend.parse(text, EVAL_NOW)
        elapsed_ms = (time.perf_counter_ns() - start) / 1e6
        report.add(text, expected, parse.intent, parse.confidence, elapsed_ms)
    return report


def cross_validate(
    factory: Factory,
    examples: Sequence[Example],
    *,
    folds: int = 5,
    seed: int = 0,
    name: str = "embedded",
    repeats: int = 1,
) -> Report:
    """Stratified k-fold: train on k-1 folds, parse the remaining one, pool the predictions.

    ``repeats`` > 1 shuffles the folds again (seeds ``seed``, ``seed + 1``, ...) and pools every
    round: each example is counted once per round. One shuffle's counts of rare outcomes (false
    emergencies) move by several when a few training examples change; the pool is steadier."""
    if folds < 2:
        raise ValueError("k-fold needs at least 2 folds")
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    intents = [intent for _, intent in examples]
    report = Report(name, f"{folds}-fold" if repeats == 1 else f"{folds}-fold x{repeats}")
    for round_seed in range(seed, seed + repeats):
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=round_seed)
        for train_index, test_index in splitter.split(np.zeros(len(examples)), intents):
            backend = factory([examples[i] for i in train_index])
            evaluate(backend, [examples[i] for i in test_index], report=report)
    return report


def leave_one_source_out(
    factory: Factory, by_source: Mapping[str, Sequence[Example]], *, name: str = "embedded"
) -> dict[str, Report]:
    """For each kind of source: train on every other kind, test on this one. A split of one
    writer's lines flatters a model; a kind of writing it has never seen predicts real residents."""
    if len(by_source) < 2:
        raise ValueError("leave-one-source-out needs at least two sources")
    reports: dict[str, Report] = {}
    for held_out, test in by_source.items():
        train = [
            example for source, examples in by_source.items() if source != held_out for example in examples
        ]
        reports[held_out] = evaluate(factory(train), test, mode=f"without {held_out}")
    return reports


def pooled(reports: Mapping[str, Report], *, backend: str, mode: str) -> Report:
    """One report over the predictions of several (each example counted once)."""
    report = Report(backend, mode)
    for part in reports.values():
        for row in zip(
            part.texts, part.expected, part.predicted, part.confidences, part.latencies_ms, strict=True
        ):
            report.add(*row)
    return report


# --- text output ---------------------------------------------------------------------------------


def format_report(report: Report, *, errors: int = 0) -> str:
    """Metrics table, confusion matrix and latency, as plain text."""
    parts = [
        f"== {report.backend} ({report.mode}, {len(report.expected)} examples)",
        _summary_lines(report),
        _scores_table(report),
        _confusion_table(report),
        _emergency_lines(report),
    ]
    if errors:
        parts.append(_error_lines(report, errors))
    return "\n\n".join(part for part in parts if part)


def _summary_lines(report: Report) -> str:
    recall = report.emergency_recall
    others = len(report.expected) - report.expected.count("emergency")
    return (
        f"main-intent macro F1 {report.main_macro_f1:.3f}   accuracy {report.accuracy:.3f}   "
        f"macro F1 (all intents) {report.macro_f1:.3f}\n"
        f"emergency recall {'-' if recall is None else f'{recall:.3f}'}   "
        f"missed emergencies {len(report.missed_emergencies)}   "
        f"false emergencies {len(report.false_emergencies)} of {others}\n"
        f"parse latency p50 {report.latency(0.5):.3f} ms   p99 {report.latency(0.99):.3f} ms"
    )


def _scores_table(report: Report) -> str:
    lines = [f"{'intent':<14}{'precision':>10}{'recall':>8}{'F1':>8}{'support':>9}"]
    for label, s in report.scores.items():
        lines.append(f"{label:<14}{s.precision:>10.3f}{s.recall:>8.3f}{s.f1:>8.3f}{s.support:>9d}")
    return "\n".join(lines)


def _confusion_table(report: Report) -> str:
    """Rows are expected intents, columns predicted ones, numbered to keep the table narrow."""
    labels, matrix = report.labels, report.confusion
    used = [i for i in range(len(labels)) if matrix[i].any() or matrix[:, i].any()]
    header = " " * 18 + "".join(f"{n + 1:>4}" for n in range(len(used)))
    lines = ["confusion (rows expected, columns predicted)", header]
    for n, i in enumerate(used):
        cells = "".join(f"{matrix[i, j]:>4}" if matrix[i, j] else f"{'.':>4}" for j in used)
        lines.append(f"{n + 1:>2} {labels[i]:<15}{cells}")
    return "\n".join(lines)


def _emergency_lines(report: Report) -> str:
    lines = [f"missed emergency: {text!r} -> {got}" for text, got in report.missed_emergencies]
    lines += [f"false emergency: {text!r} (expected {want})" for text, want in report.false_emergencies]
    return "\n".join(lines)


def _error_lines(report: Report, limit: int) -> str:
    wrong = report.errors()
    lines = [f"errors ({len(wrong)}, showing {min(limit, len(wrong))})"]
    lines += [f"  {e:>13} -> {p:<13} {c:.2f}  {t}" for t, e, p, c in wrong[:limit]]
    return "\n".join(lines)


def format_sources(reports: Mapping[str, Report]) -> str:
    """Leave-one-source-out at a glance: one row per held-out source."""
    lines = [
        "== leave-one-source-out (train on the other sources, test on this one)",
        f"{'held out':<12}{'examples':>9}{'main F1':>9}{'accuracy':>9}"
        f"{'emerg. recall':>14}{'false emerg.':>13}",
    ]
    for source, r in reports.items():
        recall = r.emergency_recall
        lines.append(
            f"{source:<12}{len(r.expected):>9}{r.main_macro_f1:>9.3f}{r.accuracy:>9.3f}"
            f"{'-' if recall is None else f'{recall:.3f}':>14}{len(r.false_emergencies):>13}"
        )
    return "\n".join(lines)


def format_comparison(reports: Mapping[str, Report]) -> str:
    """Several backends side by side: summary figures, then F1 per intent."""
    names = list(reports)
    width = max(12, *(len(n) + 2 for n in names))
    head = f"{'':<20}" + "".join(f"{n:>{width}}" for n in names)
    rows: list[tuple[str, Callable[[Report], str]]] = [
        ("examples", lambda r: str(len(r.expected))),
        ("main-intent macro F1", lambda r: f"{r.main_macro_f1:.3f}"),
        ("accuracy", lambda r: f"{r.accuracy:.3f}"),
        ("macro F1", lambda r: f"{r.macro_f1:.3f}"),
        ("missed emergencies", lambda r: str(len(r.missed_emergencies))),
        ("false emergencies", lambda r: str(len(r.false_emergencies))),
        ("latency p50 ms", lambda r: f"{r.latency(0.5):.3f}"),
        ("latency p99 ms", lambda r: f"{r.latency(0.99):.3f}"),
    ]
    lines = ["== comparison", head]
    lines += [f"{label:<20}" + "".join(f"{cell(reports[n]):>{width}}" for n in names) for label, cell in rows]
    lines.append("F1 per intent")
    intents = [i for i in INTENTS if any(i in r.scores for r in reports.values())]
    for intent in intents:
        cells = (f"{reports[n].scores[intent].f1:.3f}" if intent in reports[n].scores else "-" for n in names)
        lines.append(f"  {intent:<18}" + "".join(f"{c:>{width}}" for c in cells))
    return "\n".join(lines)
