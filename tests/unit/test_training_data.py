"""The training data itself: how much, in what styles, from which kinds of source, no line twice;
and the tools that read and check it (TSV files, near-duplicates, leave-one-source-out)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import nlu
from nlu.evaluate import Report, leave_one_source_out, pooled
from nlu.training_check import NEAR_DUPLICATE, mix, near_duplicates
from nlu.training_data import TsvError, load_by_source, load_examples, load_tsv, source_of
from nlu.types import INTENTS, MAIN_INTENTS, Parse

SOURCES = {"desk", "board", "forum", "chat", "voice", "hotline", "hk", "tw"}


@pytest.fixture(scope="module")
def training() -> list[tuple[str, str]]:
    return load_examples(nlu.training_files("train"))


# --- the data --------------------------------------------------------------------------------------


def test_every_kind_of_source_has_its_folder_and_every_main_intent() -> None:
    by_source = load_by_source(nlu.training_files("train"))
    assert set(by_source) == SOURCES
    for source, examples in by_source.items():
        counts = Counter(intent for _, intent in examples)
        assert all(counts[intent] >= 15 for intent in MAIN_INTENTS), (source, counts)


def test_the_mix_looks_like_residents(training: list[tuple[str, str]]) -> None:
    shares = mix([text for text, _ in training])
    assert shares.lines >= 6000
    assert shares.long / shares.lines >= 0.25  # narrative lines of 60+ characters
    assert shares.traditional / shares.lines >= 0.10
    assert shares.cantonese / shares.lines >= 0.05


def test_no_two_training_lines_are_near_duplicates(training: list[tuple[str, str]]) -> None:
    pairs = near_duplicates([text for text, _ in training])
    shown = [(training[i][0], training[j][0], round(score, 2)) for i, j, score in pairs[:10]]
    assert not pairs, f"{len(pairs)} pairs above {NEAR_DUPLICATE}, e.g. {shown}"


def test_every_label_is_an_intent_of_the_contract(training: list[tuple[str, str]]) -> None:
    assert {intent for _, intent in training} <= set(INTENTS)


# --- the tools -------------------------------------------------------------------------------------


def test_near_duplicates_finds_a_one_word_swap_and_spares_a_new_line() -> None:
    texts = [
        "我家厨房的水管从昨天晚上开始一直漏水，麻烦派师傅来看一下",
        "我家厨房的水管从昨天晚上开始一直滴水，麻烦派师傅来看一下",
        "楼上邻居每天半夜在家里拍球，吵得孩子睡不着，说了也不听",
        "嗯",
        "👍",
    ]
    [(i, j, score)] = near_duplicates(texts)
    assert (i, j) == (0, 1) and NEAR_DUPLICATE < score < 1.0


def test_source_of_is_the_folder(tmp_path: Path) -> None:
    assert source_of(Path("nlu/training/train/forum/repair.yml")) == "forum"


def test_load_tsv_reads_text_and_intent(tmp_path: Path) -> None:
    path = tmp_path / "set.tsv"
    path.write_text("# comment\n厨房漏水了\trepair\n\n  物业费多少 \tfee_query\n", encoding="utf-8")
    assert load_tsv(path, INTENTS) == [("厨房漏水了", "repair"), ("物业费多少", "fee_query")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("厨房漏水了 repair\n", ":1: expected 2 tab-separated fields, found 1"),
        ("厨房漏水了\trepair\textra\n", ":1: expected 2 tab-separated fields, found 3"),
        ("好的\taffirm\n厨房漏水了\trepairs\n", ":2: unknown intent 'repairs'"),
        ("\trepair\n", ":1: the text is empty"),
        ("# only a comment\n\n", "no examples"),
    ],
)
def test_load_tsv_names_the_bad_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(TsvError, match=message.replace("(", r"\(")):
        load_tsv(path, INTENTS)


def test_load_tsv_refuses_a_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gbk.tsv"
    path.write_bytes("厨房漏水了\trepair\n".encode("gbk"))
    with pytest.raises(TsvError, match="cannot read"):
        load_tsv(path, INTENTS)


class Majority:
    """A backend that always answers the most common intent of what it was trained on."""

    name = "majority"

    def __init__(self, examples: list[tuple[str, str]]) -> None:
        self.intent = Counter(intent for _, intent in examples).most_common(1)[0][0]
        self.trained_on = {text for text, _ in examples}

    def parse(self, text: str, now: object = None) -> Parse:
        assert text not in self.trained_on  # the held-out source is never in the training set
        return Parse(text, self.intent, 1.0)


def test_leave_one_source_out_trains_without_the_source_it_tests() -> None:
    by_source = {
        "a": [("a1", "repair"), ("a2", "repair"), ("a3", "complaint")],
        "b": [("b1", "complaint"), ("b2", "complaint"), ("b3", "repair")],
    }
    reports = leave_one_source_out(Majority, by_source)
    assert reports["a"].predicted == ["complaint"] * 3  # trained on b only
    assert reports["b"].predicted == ["repair"] * 3
    both = pooled(reports, backend="majority", mode="pooled")
    assert len(both.expected) == 6 and both.accuracy == pytest.approx(2 / 6)


def test_main_macro_f1_counts_other_answers_against_recall() -> None:
    report = Report("x", "test")
    report.add("1", "repair", "repair", 1.0, 0.1)
    report.add("2", "repair", "out_of_scope", 1.0, 0.1)
    report.add("3", "emergency", "emergency", 1.0, 0.1)
    report.add("4", "greet", "greet", 1.0, 0.1)
    assert set(report.main_scores) == {"repair", "emergency"}
    assert report.main_scores["repair"].recall == 0.5 and report.main_scores["repair"].precision == 1.0
    assert report.main_macro_f1 == pytest.approx((2 / 3 + 1.0) / 2)
    assert report.emergency_recall == 1.0


def test_leave_one_source_out_predicts_the_unseen() -> None:
    """Trained on seven kinds of writing, tested on the eighth, for each kind (measured: pooled
    main-intent macro-F1 0.937, emergency recall 0.990; docs/benchmarks.md)."""
    from nlu.embedded import EmbeddedNLU

    reports = leave_one_source_out(EmbeddedNLU.from_examples, load_by_source(nlu.training_files("train")))
    both = pooled(reports, backend="embedded", mode="pooled")
    assert both.main_macro_f1 >= 0.90
    assert min(r.main_macro_f1 for r in reports.values()) >= 0.80  # the hardest kind (hk)
    assert (both.emergency_recall or 0) >= 0.97
    assert len(both.false_emergencies) / len(both.expected) < 0.02
