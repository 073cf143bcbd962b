"""What a set of training files looks like: counts per intent and per source, the style mix the
data aims for, and near-duplicate pairs (character-bigram Jaccard above a threshold).

    uv run python -m nlu.training_check [PATH ...]     (default: the whole training split)

A path may be a YAML file or a directory of them. Exits 1 when a near-duplicate pair is found.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from nlu.normalize import normalize
from nlu.training_data import load_examples

NEAR_DUPLICATE = 0.8  # character-bigram Jaccard above this: two lines say the same thing
LONG_CHARS = 60

_HAN = re.compile(r"[\u3400-\u9fff]")
_CANTONESE = re.compile(r"咗|冇|嘅|唔|喺|佢|嚟|啲|咁|乜|嘢|噉|睇|揾|搵|哋|畀|俾|瞓|攞|咩|喎|囉")
_LATIN_RUN = re.compile(r"[a-z]{3,}")


def bigrams(text: str) -> set[str]:
    """The character bigrams of normalised text, spaces and punctuation left out."""
    chars = "".join(c for c in normalize(text) if c.isalnum())
    return {chars[i : i + 2] for i in range(len(chars) - 1)}  # empty for "嗯", "👍": never a pair


def near_duplicates(texts: Sequence[str], threshold: float = NEAR_DUPLICATE) -> list[tuple[int, int, float]]:
    """(i, j, jaccard) for every pair i < j whose bigram sets overlap above ``threshold``.

    One sparse product per block of rows instead of n² set operations: 10,000 lines in seconds."""
    sets = [bigrams(t) for t in texts]
    vocabulary: dict[str, int] = {}
    rows, cols = [], []
    for row, grams in enumerate(sets):
        for gram in grams:
            rows.append(row)
            cols.append(vocabulary.setdefault(gram, len(vocabulary)))
    matrix = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(sets), len(vocabulary))
    )
    sizes = np.asarray(matrix.sum(axis=1)).ravel()
    found: list[tuple[int, int, float]] = []
    block = 512
    for start in range(0, len(sets), block):
        stop = min(start + block, len(sets))
        shared = (matrix[start:stop] @ matrix.T).toarray()
        union = sizes[start:stop, None] + sizes[None, :] - shared
        jaccard = np.divide(shared, union, out=np.zeros_like(shared), where=union > 0)
        for i, j in zip(*np.nonzero(jaccard > threshold), strict=True):
            if start + i < j:
                found.append((start + int(i), int(j), float(jaccard[i, j])))
    return found


@dataclass(frozen=True)
class Mix:
    lines: int
    long: int
    traditional: int
    cantonese: int
    latin: int

    def line(self) -> str:
        def share(n: int) -> str:
            return f"{n} ({n / self.lines:.0%})" if self.lines else "0"

        return (
            f"{self.lines} lines: long (≥{LONG_CHARS} chars) {share(self.long)}, "
            f"Traditional {share(self.traditional)}, "
            f"Cantonese {share(self.cantonese)}, pinyin/Latin runs {share(self.latin)}"
        )


def mix(texts: Sequence[str]) -> Mix:
    from nlu.normalize import to_simplified

    return Mix(
        lines=len(texts),
        long=sum(len(t) >= LONG_CHARS for t in texts),
        traditional=sum(to_simplified(t) != t for t in texts),
        cantonese=sum(bool(_CANTONESE.search(t)) for t in texts),
        latin=sum(bool(_LATIN_RUN.search(t.lower())) for t in texts),
    )


def yaml_files(paths: Sequence[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        found.extend(sorted(path.rglob("*.yml")) if path.is_dir() else [path])
    return found


def main(argv: Sequence[str]) -> int:
    from nlu import training_files

    files = yaml_files(argv) if argv else training_files("train")
    examples = load_examples(files)
    texts = [t for t, _ in examples]
    print(mix(texts).line())
    for intent, n in sorted(Counter(i for _, i in examples).items(), key=lambda kv: -kv[1]):
        print(f"  {intent:<14}{n:>6}")
    pairs = near_duplicates(texts)
    for i, j, score in pairs:
        print(
            f"near-duplicate {score:.2f}: {texts[i]!r} ({examples[i][1]}) ~ {texts[j]!r} ({examples[j][1]})"
        )
    print(f"{len(pairs)} near-duplicate pairs (bigram Jaccard > {NEAR_DUPLICATE})")
    return 1 if pairs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
