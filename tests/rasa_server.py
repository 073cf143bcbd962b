"""The real Rasa NLU server (``nlu/rasa/rasa.sh serve``) on a loopback port, started and stopped the
same way by the Rasa tests and ``bench/rasa_bench.py``."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from pathlib import Path

RASA_SH = Path(__file__).resolve().parents[1] / "nlu" / "rasa" / "rasa.sh"


def start(port: int, log: Path) -> subprocess.Popen[bytes]:
    """``rasa.sh serve`` with its output in ``log``; answers ``GET /status`` once the model is loaded."""
    with log.open("wb") as out:
        return subprocess.Popen(
            ["bash", str(RASA_SH), "serve", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so stop() ends everything it started
            preexec_fn=_die_with_parent,
        )


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the whole process group (rasa.sh execs rasa, but be sure), then SIGKILL."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _die_with_parent() -> None:
    """Runs in the child before exec: if pytest or the benchmark is killed (a CI timeout, SIGKILL)
    and cannot tear down, the kernel sends the server SIGTERM instead of leaving ~1 GB of Rasa
    running. rasa.sh execs rasa, so the setting reaches the server itself."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
