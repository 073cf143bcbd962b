"""Run an ASGI app under a real uvicorn server in a background thread, on a free loopback port; the
fake channel servers' common part."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import uvicorn


class ServerThread:
    def __init__(self, app: Any, *, startup_timeout: float = 60.0, port: int = 0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=10)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.startup_timeout = startup_timeout

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServerThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("server failed to start (see the log above)")
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start in time")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.sock.close()


class FakeServer:
    """A fake channel server: its ASGI ``app``, the ``url`` it answers at once ``served``, and
    waiting for what it records."""

    name = "fake"
    app: Any
    url = ""

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = predicate()
            if found:
                return found
            time.sleep(0.02)
        raise AssertionError(f"the fake {self.name} server never saw what the test waited for")


Fake = TypeVar("Fake", bound=FakeServer)


@contextmanager
def served(fake: Fake, port: int = 0) -> Iterator[Fake]:
    """``fake`` answering on a loopback port (``port``, or a free one), at ``fake.url``."""
    with ServerThread(fake.app, port=port) as server:
        fake.url = server.url
        yield fake
