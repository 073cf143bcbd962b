"""``propbot nlu train|parse|eval``: train the embedded model, parse messages, compare backends."""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import nlu
from bot.cli import Subparsers
from nlu.types import NLUBackend, Parse

SHANGHAI = ZoneInfo("Asia/Shanghai")
RASA_HINT = "start it with: bash nlu/rasa/rasa.sh serve"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("nlu", help="train, try and evaluate the language understanding")
    commands = parser.add_subparsers(dest="nlu_command", metavar="NLU_COMMAND", required=True)

    train = commands.add_parser("train", help="train the embedded model, cache it, report held-out accuracy")
    train.set_defaults(handler=run_train)

    parse = commands.add_parser(
        "parse", help="one message per line on stdin -> one JSON object per line on stdout"
    )
    _backend_options(parse, several=False)
    parse.add_argument(
        "--now", type=_aware, help="anchor for relative times (ISO 8601; Asia/Shanghai if naive)"
    )
    parse.set_defaults(handler=run_parse)

    evaluate = commands.add_parser(
        "eval",
        help="k-fold or held-out metrics: per-intent P/R/F1, confusion matrix, missed emergencies, latency",
        description="Without --heldout, --file or --by-source the embedded backend is cross-validated on "
        "the training split. Several --backend options compare backends side by side on the held-out split "
        "(or on --file).",
    )
    _backend_options(evaluate, several=True)
    evaluate.add_argument("--folds", type=int, help="k for k-fold cross-validation (default 5)")
    evaluate.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="k-fold N times with differently shuffled folds, pooled (steadier counts)",
    )
    evaluate.add_argument(
        "--heldout", action="store_true", help="train on the training split, test on the held-out split"
    )
    evaluate.add_argument(
        "--file",
        type=Path,
        metavar="FILE.tsv",
        help="test on a labelled TSV file (text<TAB>intent per line) with the model trained on the training "
        "split; lists every wrong answer unless --errors says how many",
    )
    evaluate.add_argument(
        "--by-source",
        action="store_true",
        help="leave-one-source-out: for each kind of source in nlu/training/train/, train on the others "
        "and test on it (embedded backend)",
    )
    evaluate.add_argument(
        "--errors", type=int, metavar="N", help="also list up to N wrong answers (default 0; all with --file)"
    )
    evaluate.set_defaults(handler=run_eval)


def _backend_options(parser: argparse.ArgumentParser, *, several: bool) -> None:
    default = os.environ.get("PROPBOT_NLU") or "embedded"
    if several:
        parser.add_argument(
            "--backend",
            action="append",
            choices=nlu.BACKENDS,
            help=f"repeat to compare backends (default: $PROPBOT_NLU or {default})",
        )
    else:
        parser.add_argument(
            "--backend", choices=nlu.BACKENDS, default=default, help=f"default: $PROPBOT_NLU or {default}"
        )
    parser.add_argument(
        "--rasa-url",
        default=os.environ.get("RASA_URL") or nlu.DEFAULT_RASA_URL,
        help="Rasa server (default: $RASA_URL or %(default)s)",
    )
    parser.add_argument("--timeout", type=float, default=2.0, help="Rasa request timeout in seconds")


def _aware(raw: str) -> datetime:
    at = datetime.fromisoformat(raw)
    return at if at.tzinfo else at.replace(tzinfo=SHANGHAI)


# --- train ---------------------------------------------------------------------------------------


def run_train(args: argparse.Namespace) -> int:
    from nlu.embedded import EmbeddedNLU, cache_path, load_model
    from nlu.evaluate import evaluate
    from nlu.training_data import load_examples

    paths = nlu.training_files("train")
    start = time.perf_counter()
    model, _ = load_model(paths, force=True)
    seconds = time.perf_counter() - start
    report = evaluate(EmbeddedNLU(model), load_examples(nlu.training_files("heldout")))
    print(f"trained on {len(load_examples(paths))} examples in {seconds:.2f} s")
    print(f"cached in {cache_path(paths)}")
    print(
        f"held-out accuracy {report.accuracy:.3f}, macro F1 {report.macro_f1:.3f}, "
        f"missed emergencies {len(report.missed_emergencies)} of {report.expected.count('emergency')}"
    )
    return 0


# --- parse ---------------------------------------------------------------------------------------


def run_parse(args: argparse.Namespace) -> int:
    from nlu.serialize import dumps

    backend = _load(args.backend, args)
    for line in sys.stdin:
        text = line.rstrip("\r\n")
        now = args.now or datetime.now(SHANGHAI)
        print(dumps(backend.parse(text, now)), flush=True)
    return 0


# --- eval ----------------------------------------------------------------------------------------


def run_eval(args: argparse.Namespace) -> int:
    from nlu.evaluate import format_comparison, format_report

    names: list[str] = list(dict.fromkeys(args.backend or [os.environ.get("PROPBOT_NLU") or "embedded"]))
    if args.by_source:
        return _by_source(names, args)
    if args.file is not None:
        return _on_file(names, args)
    errors = args.errors or 0
    heldout = args.heldout or len(names) > 1 or "rasa" in names
    if not args.heldout and heldout:
        if args.folds:
            print("error: only the embedded backend can be cross-validated; use --heldout", file=sys.stderr)
            return 2
        print("note: comparing on the held-out split (as --heldout)", file=sys.stderr)
    reports = {}
    for name in names:
        report = _heldout_report(name, args) if heldout else _kfold_report(args.folds or 5, args.repeat)
        if report is None:
            return 1
        reports[name] = report
        print(format_report(report, errors=errors), end="\n\n")
    if len(reports) > 1:
        print(format_comparison(reports))
    return 0


def _on_file(names: list[str], args: argparse.Namespace) -> int:
    from nlu.evaluate import format_comparison, format_report
    from nlu.training_data import TsvError, load_tsv
    from nlu.types import INTENTS

    try:
        examples = load_tsv(args.file, INTENTS)
    except TsvError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reports = {}
    for name in names:
        report = _report_on(name, args, examples, mode=args.file.name)
        if report is None:
            return 1
        reports[name] = report
        errors = len(report.expected) if args.errors is None else args.errors
        print(format_report(report, errors=errors), end="\n\n")
    if len(reports) > 1:
        print(format_comparison(reports))
    return 0


def _by_source(names: list[str], args: argparse.Namespace) -> int:
    from nlu.embedded import EmbeddedNLU
    from nlu.evaluate import format_report, format_sources, leave_one_source_out, pooled
    from nlu.training_data import load_by_source

    if names != ["embedded"]:
        print(
            "error: --by-source trains a model per source, which only the embedded backend does here; "
            "for Rasa run: uv run python bench/rasa_bench.py --by-source",
            file=sys.stderr,
        )
        return 2
    by_source = load_by_source(nlu.training_files("train"))
    if len(by_source) < 2:
        print("error: leave-one-source-out needs at least two source folders", file=sys.stderr)
        return 2
    reports = leave_one_source_out(EmbeddedNLU.from_examples, by_source)
    errors = args.errors or 0
    for report in reports.values():
        print(format_report(report, errors=errors), end="\n\n")
    print(format_report(pooled(reports, backend="embedded", mode="leave-one-source-out, pooled")), end="\n\n")
    print(format_sources(reports))
    return 0


def _kfold_report(folds: int, repeats: int = 1) -> Any:
    from nlu.embedded import EmbeddedNLU
    from nlu.evaluate import cross_validate
    from nlu.training_data import load_examples

    examples = load_examples(nlu.training_files("train"))
    return cross_validate(EmbeddedNLU.from_examples, examples, folds=folds, repeats=repeats)


def _heldout_report(name: str, args: argparse.Namespace) -> Any:
    from nlu.training_data import load_examples

    return _report_on(name, args, load_examples(nlu.training_files("heldout")), mode="heldout")


def _report_on(name: str, args: argparse.Namespace, examples: Any, *, mode: str) -> Any:
    from nlu.evaluate import evaluate

    backend = _load(name, args)
    if name == "rasa" and not _rasa_answers(backend):
        print(f"error: the Rasa server at {args.rasa_url} does not answer; {RASA_HINT}", file=sys.stderr)
        return None
    watched = _FallbackWatch(backend)
    report = evaluate(watched, examples, mode=mode)
    if watched.fallbacks:
        print(f"warning: {watched.fallbacks} answers came from the fallback, not {name}", file=sys.stderr)
    return report


def _load(name: str, args: argparse.Namespace) -> NLUBackend:
    return nlu.load_backend(name, rasa_url=args.rasa_url, timeout=args.timeout)


def _rasa_answers(backend: NLUBackend) -> bool:
    backend.parse("你好")
    return bool(getattr(backend, "available", True))


class _FallbackWatch:
    """Counts parses a backend handed to its fallback (Rasa down mid-run), which would
    otherwise be scored as the backend's own answers."""

    def __init__(self, backend: NLUBackend) -> None:
        self.backend = backend
        self.name = backend.name
        self.fallbacks = 0

    def parse(self, text: str, now: datetime | None = None) -> Parse:
        parse = self.backend.parse(text, now)
        self.fallbacks += not getattr(self.backend, "available", True)
        return parse
