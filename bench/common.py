"""What the benchmarks share: a scratch database, a free loopback port, a server in a process of its
own, waiting for a server to answer, a percentile.

psycopg and httpx are imported where used: nlu_bench reports its own process's memory.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

PG_ADMIN = os.environ.get("PROPBOT_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@contextmanager
def scratch_database(backend: str) -> Iterator[str]:
    """The URL of an empty database, gone afterwards: a SQLite file or a PostgreSQL database."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    import psycopg

    name = f"propbot_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_ADMIN.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def served_in_process(serve: Callable[..., None], *args: object, health: str) -> Iterator[tuple[str, int]]:
    """``serve(port, *args)`` in a spawned process: its base URL and pid, once ``GET base + health``
    answers; terminated afterwards."""
    port = free_port()
    # Not a daemon: a server with workers starts processes of its own.
    process = multiprocessing.get_context("spawn").Process(target=serve, args=(port, *args))
    process.start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until_up(base + health)
        yield base, process.pid or 0
    finally:
        process.terminate()
        process.join()


def wait_until_up(
    url: str,
    process: subprocess.Popen[str] | subprocess.Popen[bytes] | None = None,
    log: str = "",
    timeout: float = 120,
) -> None:
    """Until ``GET url`` answers 200; fails at once if ``process`` exits (with the tail of ``log``)."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited:\n{Path(log).read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up")


def percentile(values: Sequence[float], q: float) -> float:
    """The value at rank ``int(q * n)`` of the sorted values (``q`` from 0 to 1)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
