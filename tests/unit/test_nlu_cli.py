"""``propbot nlu ...`` through ``bot.cli.main``, plus the JSON, YAML and evaluation helpers."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import nlu
from bot.cli import main
from nlu.evaluate import Report, cross_validate, evaluate, format_comparison, format_report
from nlu.serialize import dumps, jsonable, parse_to_dict
from nlu.training_data import load_examples, strip_entities
from nlu.types import INTENTS, MAIN_INTENTS, Entity, Parse, Period, TimeSpan, UnitRef

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    # One cache directory for the module: the model is trained once, later commands load it.
    path = Path(tmp_path_factory.getbasetemp()) / "nlu-cli-cache"
    monkeypatch.setenv("PROPBOT_CACHE_DIR", str(path))
    monkeypatch.delenv("PROPBOT_NLU", raising=False)
    return path


def run(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, stdin: str = ""
) -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# --- CLI -----------------------------------------------------------------------------------------


def test_parse_reads_lines_and_writes_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = "投诉一下电梯又坏了 3栋2单元1502\n明天下午三点想约保洁\n\n着火了\n"
    code, out, _ = run(["nlu", "parse", "--now", "2025-03-12T10:00"], capsys, monkeypatch, stdin)
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["intent"] for r in rows] == ["repair", "booking", "out_of_scope", "emergency"]
    assert rows[2]["text"] == ""
    assert all(set(r) == {"text", "intent", "confidence", "entities"} for r in rows)
    unit = next(e for e in rows[0]["entities"] if e["type"] == "unit")
    assert unit["value"] == {"building": 3, "unit": 2, "room": "1502"}
    assert set(unit) == {"type", "value", "text", "start", "end"}
    when = next(e for e in rows[1]["entities"] if e["type"] == "datetime")
    assert when["value"]["start"] == "2025-03-13T15:00:00+08:00"


def test_train_reports_heldout_accuracy(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cache_dir: Path
) -> None:
    code, out, _ = run(["nlu", "train"], capsys, monkeypatch)
    assert code == 0
    assert "held-out accuracy 0.9" in out  # measured 0.945
    assert "missed emergencies 0 of" in out
    assert list(cache_dir.glob("embedded-*.pkl"))


def test_eval_kfold_prints_the_tables(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, _ = run(["nlu", "eval", "--folds", "2", "--repeat", "2"], capsys, monkeypatch)
    assert code == 0
    assert "embedded (2-fold x2" in out
    assert "intent         precision  recall      F1  support" in out
    assert "confusion (rows expected, columns predicted)" in out
    for intent in INTENTS:
        assert f"\n{intent:<14}" in out
    assert "parse latency p50" in out


def test_eval_heldout(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(["nlu", "eval", "--heldout", "--errors", "5"], capsys, monkeypatch)
    assert code == 0
    assert "embedded (heldout" in out and "missed emergencies 0" in out


def test_eval_rasa_not_running_is_an_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = [
        "nlu",
        "eval",
        "--backend",
        "embedded",
        "--backend",
        "rasa",
        "--rasa-url",
        "http://127.0.0.1:9",
        "--timeout",
        "0.5",
    ]
    code, out, err = run(argv, capsys, monkeypatch)
    assert code == 1
    assert "does not answer" in err and "comparing on the held-out split" in err


class FakeRasa(BaseHTTPRequestHandler):
    """Answers every /model/parse with "repair" (and everything else with 200, like Rasa's /)."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = {
            "intent": {"name": "repair", "confidence": 0.9},
            "intent_ranking": [{"name": "repair", "confidence": 0.9}],
            "entities": [],
        }
        self._reply(json.dumps(body).encode())

    def do_GET(self) -> None:  # noqa: N802
        self._reply(b"Hello from Rasa: 3.6.21")

    def _reply(self, payload: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_rasa() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeRasa)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_eval_compares_backends_side_by_side(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, fake_rasa: str
) -> None:
    argv = ["nlu", "eval", "--backend", "embedded", "--backend", "rasa", "--rasa-url", fake_rasa]
    code, out, err = run(argv, capsys, monkeypatch)
    assert code == 0, err
    assert "== embedded (heldout" in out and "== rasa (heldout" in out
    comparison = out[out.index("== comparison") :]
    assert comparison.splitlines()[1].split() == ["embedded", "rasa"]
    accuracy = next(line for line in comparison.splitlines() if line.startswith("accuracy")).split()
    assert float(accuracy[1]) > 0.9 > float(accuracy[2])  # the fake says "repair" to everything...
    missed = next(line for line in comparison.splitlines() if line.startswith("missed emergencies")).split()
    assert missed[2:] == ["0", "0"]  # ...but the emergency rules still hold for Rasa


def test_eval_refuses_kfold_for_rasa(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(["nlu", "eval", "--backend", "rasa", "--folds", "3"], capsys, monkeypatch)
    assert code == 2 and "--heldout" in err


def test_load_backend() -> None:
    assert nlu.load_backend("embedded") is nlu.load_backend("embedded")
    rasa = nlu.load_backend("rasa", rasa_url="http://127.0.0.1:9", timeout=0.3)
    assert rasa.name == "rasa"
    assert rasa.parse("厨房漏水了").intent == "repair"  # answered by the embedded fallback
    with pytest.raises(ValueError, match="unknown NLU backend"):
        nlu.load_backend("gpt")


def test_training_files() -> None:
    train, heldout = nlu.training_files("train"), nlu.training_files("heldout")
    assert train and heldout and not set(train) & set(heldout)
    assert any(p.name == "lookups.yml" for p in train)
    with pytest.raises(ValueError):
        nlu.training_files("test")  # type: ignore[arg-type]


# --- training data -------------------------------------------------------------------------------


def test_training_data_covers_every_intent() -> None:
    from collections import Counter

    train = Counter(intent for _, intent in load_examples(nlu.training_files("train")))
    heldout = Counter(intent for _, intent in load_examples(nlu.training_files("heldout")))
    assert set(train) == set(INTENTS) == set(heldout)
    assert all(train[i] >= 500 for i in MAIN_INTENTS)
    assert all(train[i] >= 50 for i in INTENTS)
    # The held-out split is the tidy lines of the desk source kept aside (a sanity check); the
    # figures that predict real residents are leave-one-source-out (tests/unit/test_training_data.py).
    assert all(heldout[i] >= 20 for i in MAIN_INTENTS)


def test_heldout_never_overlaps_training() -> None:
    from nlu.normalize import normalize

    train = [normalize(t) for t, _ in load_examples(nlu.training_files("train"))]
    heldout = [normalize(t) for t, _ in load_examples(nlu.training_files("heldout"))]
    assert len(set(train)) == len(train)  # no duplicates either (Rasa rejects them)
    assert not set(train) & set(heldout)


def test_entity_markup_is_stripped(tmp_path: Path) -> None:
    assert strip_entities("厨房[漏水](category)了") == "厨房漏水了"
    assert strip_entities('[物业费]{"entity": "fee_item", "value": "management"}交了吗') == "物业费交了吗"
    assert strip_entities('[保洁][{"entity": "service"}]明天') == "保洁明天"
    path = tmp_path / "x.yml"
    path.write_text(
        'version: "3.1"\nnlu:\n- intent: repair\n  examples: |\n    - [马桶](category)堵了\n'
        "- synonym: drain\n  examples: |\n    - 马桶\n"
        "- intent: greet\n  examples:\n  - text: 你好\n",
        encoding="utf-8",
    )
    assert load_examples([path]) == [("马桶堵了", "repair"), ("你好", "greet")]


# --- JSON ----------------------------------------------------------------------------------------


def test_serialise_parse() -> None:
    at = datetime(2025, 3, 13, 15, 0, tzinfo=SHANGHAI)
    parse = Parse(
        "x",
        "repair",
        0.912345,
        (
            Entity("unit", UnitRef(3, None, "302"), "3栋302", 0, 5),
            Entity("datetime", TimeSpan(at, at), "明天下午三点", 5, 11),
            Entity("period", Period("2025-01", "2025-06"), "上半年", 11, 14),
        ),
    )
    data = json.loads(dumps(parse))
    assert data == parse_to_dict(parse) | {"entities": data["entities"]}
    assert data["confidence"] == 0.9123
    assert [e["value"] for e in data["entities"]] == [
        {"building": 3, "unit": None, "room": "302"},
        {"start": "2025-03-13T15:00:00+08:00", "end": "2025-03-13T15:00:00+08:00"},
        {"first": "2025-01", "last": "2025-06"},
    ]
    assert "3栋302" in dumps(parse)  # Chinese stays readable
    assert jsonable({1: (Path("a"), {2})}) == {"1": ["a", [2]]}


# --- evaluation ----------------------------------------------------------------------------------


@dataclass
class Always:
    intent: str
    name: str = "always"

    def parse(self, text: str, now: datetime | None = None) -> Parse:
        return Parse(text, self.intent, 1.0)


EXAMPLES = [("着火了", "emergency"), ("漏水", "repair"), ("马桶堵了", "repair"), ("你好", "greet")]


def test_report_metrics() -> None:
    report = evaluate(Always("repair"), EXAMPLES)
    assert report.accuracy == 0.5
    assert report.missed_emergencies == [("着火了", "repair")]
    assert report.scores["repair"].recall == 1.0 and report.scores["repair"].precision == 0.5
    assert report.scores["greet"].f1 == 0.0
    assert report.confusion.sum() == 4
    assert report.latency(0.5) >= 0


def test_cross_validate_trains_on_other_folds() -> None:
    seen: list[int] = []

    def factory(examples: Sequence[tuple[str, str]]) -> Always:
        seen.append(len(examples))
        return Always(examples[0][1])

    examples = [(f"文本{i}", "repair" if i % 2 else "greet") for i in range(10)]
    report = cross_validate(factory, examples, folds=5)
    assert seen == [8] * 5 and len(report.expected) == 10 and report.mode == "5-fold"


def test_cross_validate_repeats_with_other_folds() -> None:
    test_sets: list[frozenset[str]] = []

    def factory(examples: Sequence[tuple[str, str]]) -> Always:
        test_sets.append(frozenset(all_texts - {text for text, _ in examples}))
        return Always(examples[0][1])

    examples = [(f"文本{i}", "repair" if i % 2 else "greet") for i in range(10)]
    all_texts = {text for text, _ in examples}
    report = cross_validate(factory, examples, folds=5, repeats=3)
    assert len(report.expected) == 30 and report.mode == "5-fold x3"  # every example once per round
    assert len(set(test_sets)) > 5  # the rounds shuffle the folds differently


def test_format_report_and_comparison() -> None:
    a = evaluate(Always("repair"), EXAMPLES)
    b = Report("other", "heldout")
    evaluate(Always("emergency"), EXAMPLES, report=b)
    text = format_report(a, errors=2)
    assert "accuracy 0.500" in text and "missed emergency: '着火了' -> repair" in text
    assert "errors (2, showing 2)" in text
    table = format_comparison({"always": a, "other": b})
    assert "missed emergencies" in table and "other" in table
    assert "  repair" in table


def test_eval_file_prints_main_f1_and_every_wrong_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "residents.tsv"
    path.write_text(
        "厨房水管漏水了 麻烦来修一下\trepair\n救命 着火了\temergency\n厨房水管漏水了\tpraise\n",
        encoding="utf-8",
    )
    code, out, _ = run(["nlu", "eval", "--file", str(path)], capsys, monkeypatch)
    assert code == 0
    assert "embedded (residents.tsv, 3 examples)" in out
    # repair: recall 1, precision 1/2 (the praise line) -> F1 2/3; emergency 1.0
    assert "main-intent macro F1 0.833" in out and "emergency recall 1.000" in out
    assert "errors (1, showing 1)" in out and "praise -> repair" in out  # the wrong line is listed


def test_eval_file_fails_loudly_on_a_malformed_tsv(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "broken.tsv"
    path.write_text("厨房漏水了\trepair\n物业费多少 fee_query\n", encoding="utf-8")
    code, out, err = run(["nlu", "eval", "--file", str(path)], capsys, monkeypatch)
    assert code == 2 and out == ""
    assert f"error: {path}:2: expected 2 tab-separated fields, found 1" in err


def test_eval_file_that_does_not_exist(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    code, _, err = run(["nlu", "eval", "--file", str(tmp_path / "missing.tsv")], capsys, monkeypatch)
    assert code == 2 and "cannot read" in err


def test_eval_by_source_is_embedded_only(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run(["nlu", "eval", "--by-source", "--backend", "rasa"], capsys, monkeypatch)
    assert code == 2 and "only the embedded backend" in err
