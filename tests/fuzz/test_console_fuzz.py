"""The console (``propbot chat``) under fuzzing: random lines through ``ConsoleChat`` in process, and
the corpus (texts, random bytes, invalid UTF-8) piped through the real command in its own process.
Every line gets a reply (never the apology for a failure), nothing raises or logs an error, and the
store hangs together afterwards."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.app import App
from bot.channels.console import BOT, ConsoleChat
from flows.dialog.engine import APOLOGY
from tests.fuzz.conftest import FUZZ, Logs
from tests.fuzz.invariants import Baseline, store_problems
from tests.fuzz.nasty import corpus_files, corpus_texts, nasty_text, words

pytestmark = pytest.mark.fuzz

ECHO = "居民: "
NOW = "2026-11-23T10:00:00+08:00"


@FUZZ
@given(
    lines=st.lists(st.one_of(words(), nasty_text()), min_size=1, max_size=6),
    account=st.sampled_from(["demo", "tenant", "fuzz-guest"]),  # bound, bound, a stranger
)
def test_random_lines_each_get_a_reply(app: App, logs: Logs, lines: list[str], account: str) -> None:
    baseline = Baseline.of(app.sessions)
    out = io.StringIO()
    with ConsoleChat(app, account, out) as chat:
        for line in lines:
            printed = out.tell()
            replies = chat.send(line)
            assert replies and all(r.text for r in replies), f"no reply to {line!r}"
            assert APOLOGY not in [r.text for r in replies], "the engine failed on this line"
            assert out.getvalue()[printed:].startswith(f"{BOT}: ")
            assert logs.problems() == []
    assert store_problems(app.sessions, baseline) == []


def test_corpus_texts_in_every_step_of_a_repair(app: App, logs: Logs) -> None:
    """Each corpus text as a first message, as what is broken, and as the time to come."""
    baseline = Baseline.of(app.sessions)
    for name, text in corpus_texts().items():
        for lead in ([], ["我要报修"], ["厨房水管漏水了"]):
            with ConsoleChat(app, "demo", io.StringIO()) as chat:
                chat.send("算了")  # a fresh start
                for line in [*lead, text]:
                    replies = chat.send(line)
                    assert replies and APOLOGY not in [r.text for r in replies], f"{name} after {lead}"
            assert logs.problems() == [], f"{name} after {lead}"
    assert store_problems(app.sessions, baseline) == []


def corpus_stdin() -> bytes:
    """Everything in the corpus as lines for stdin: the texts (as bytes, surrogates as they would
    arrive from a broken terminal) and the raw files."""
    texts = [t.encode("utf-8", "surrogatepass") for t in corpus_texts().values()]
    raw = [path.read_bytes() for path in corpus_files("*.bin", "wechat/*.xml")]
    return b"\n".join([*texts, *raw]) + b"\n"


def test_the_corpus_piped_through_propbot_chat(db_url: str) -> None:
    data = corpus_stdin()
    env = {**os.environ, "DATABASE_URL": db_url, "PROPBOT_NLU": "embedded", "PYTHONIOENCODING": "utf-8"}
    env.pop("PROPBOT_CONFIG", None)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from bot.cli import main; sys.exit(main())",
            "chat",
            "--now",
            NOW,
        ],
        input=data,
        capture_output=True,
        env=env,
        timeout=120,
    )
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr and "ERROR" not in stderr, stderr[-3000:]
    # the lines as the command reads them: split at "\n" only, bytes that are not UTF-8 replaced
    lines = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", errors="replace", newline="\n").readlines()
    turns = split_turns(done.stdout.decode("utf-8"))
    assert len(turns) == len(lines), "a line was lost or split"
    for said, answer in turns:
        assert any(line.startswith(f"{BOT}: ") for line in answer), f"no reply to {said!r}"
        assert APOLOGY not in "\n".join(answer), f"the engine failed on {said!r}"


def split_turns(printed: str) -> list[tuple[str, list[str]]]:
    """(what the resident said, the lines printed after it) for every echoed line."""
    turns: list[tuple[str, list[str]]] = []
    for line in printed.split("\n"):
        if line.startswith(ECHO):
            turns.append((line[len(ECHO) :], []))
        elif turns:
            turns[-1][1].append(line)
    return turns
