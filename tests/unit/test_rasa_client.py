"""RasaNLU against a small fake Rasa server over real HTTP on 127.0.0.1.

The fake answers ``POST /model/parse`` the way Rasa 3.6 does (or fails the ways a real server fails);
the fallback is a recording fake, so each test sees exactly when RasaNLU gave up on Rasa.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from nlu.rasa_backend import RasaNLU
from nlu.types import Entity, Parse, UnitRef

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
LOGGER = "nlu.rasa_backend"


class FakeRasa:
    """A threaded HTTP server whose next answers the test sets: status, body, delay."""

    def __init__(self) -> None:
        self.status = 200
        self.body: bytes = b""
        self.delay = 0.0
        self.requests: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, intent: str, confidence: float, *runners_up: tuple[str, float]) -> None:
        """Answer like Rasa: the chosen intent plus the classifier's ranking."""
        ranking = [{"name": intent, "confidence": confidence}]
        ranking += [{"name": name, "confidence": conf} for name, conf in runners_up]
        self.reply({"text": "", "intent": ranking[0], "entities": [], "intent_ranking": ranking})

    def reply(self, body: Any, status: int = 200) -> None:
        self.status = status
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the real server and httpx do

            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                length = int(self.headers.get("Content-Length", 0))
                fake.requests.append({"path": self.path, "json": json.loads(self.rfile.read(length))})
                time.sleep(fake.delay)
                try:
                    self.send_response(fake.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(fake.body)))
                    self.end_headers()
                    self.wfile.write(fake.body)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def __enter__(self) -> FakeRasa:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class RecordingFallback:
    """The backend RasaNLU falls back on; its answers are recognisable."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def parse(self, text: str, now: datetime | None = None) -> Parse:
        self.calls.append(text)
        return Parse(text, "human_handoff", 0.123)


def no_entities(text: str, now: datetime | None) -> tuple[Entity, ...]:
    return ()


@pytest.fixture
def rasa() -> Iterator[FakeRasa]:
    with FakeRasa() as fake:
        yield fake


@pytest.fixture
def fallback() -> RecordingFallback:
    return RecordingFallback()


@pytest.fixture
def backend(rasa: FakeRasa, fallback: RecordingFallback) -> Iterator[RasaNLU]:
    with RasaNLU(rasa.url, fallback=fallback, timeout=0.5, extract=no_entities) as nlu:
        yield nlu


def closed_port() -> int:
    """A loopback port nobody listens on: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- mapping ---------------------------------------------------------------------------------------


def test_maps_intent_and_confidence(rasa: FakeRasa, backend: RasaNLU, fallback: RecordingFallback) -> None:
    rasa.answer("repair", 0.93, ("complaint", 0.05))
    parse = backend.parse("厨房水管漏水了", NOW)
    assert (parse.text, parse.intent, parse.confidence) == ("厨房水管漏水了", "repair", 0.93)
    assert backend.name == "rasa"
    assert fallback.calls == []


def test_posts_the_text_as_written_to_model_parse(rasa: FakeRasa, backend: RasaNLU) -> None:
    rasa.answer("repair", 0.9)
    backend.parse("  廚房水管\n\n漏水了  ", NOW)  # Rasa learnt from the YAML as written: no t2s
    assert rasa.requests == [{"path": "/model/parse", "json": {"text": "廚房水管 漏水了"}}]


def test_long_text_is_capped(rasa: FakeRasa, backend: RasaNLU) -> None:
    rasa.answer("repair", 0.9)
    backend.parse("厨房漏水" * 1000, NOW)
    assert len(rasa.requests[0]["json"]["text"]) == 200


def test_nlu_fallback_is_out_of_scope(rasa: FakeRasa, backend: RasaNLU, fallback: RecordingFallback) -> None:
    rasa.answer("nlu_fallback", 0.3, ("repair", 0.21), ("enquiry", 0.2))
    parse = backend.parse("火星上有生命吗", NOW)
    assert (parse.intent, parse.confidence) == ("out_of_scope", 0.3)
    assert fallback.calls == []


def test_confidence_is_clamped(rasa: FakeRasa, backend: RasaNLU) -> None:
    rasa.answer("greet", 1.0000002)
    assert backend.parse("你好", NOW).confidence == 1.0


def test_bad_runner_up_does_not_spoil_the_answer(rasa: FakeRasa, backend: RasaNLU) -> None:
    rasa.reply(
        {
            "intent": {"name": "thanks", "confidence": 0.8},
            "intent_ranking": [{"name": "thanks", "confidence": 0.8}, {"name": "chitchat/x"}, "junk"],
        }
    )
    assert backend.parse("谢谢", NOW).intent == "thanks"


def test_entities_come_from_the_rule_extractors(rasa: FakeRasa, fallback: RecordingFallback) -> None:
    rasa.answer("repair", 0.9)
    with RasaNLU(rasa.url, fallback=fallback) as nlu:  # the default extractor: nlu.entities.extract
        parse = nlu.parse("3栋2单元1502厨房漏水", NOW)
    assert parse.value("unit") == UnitRef(3, 2, "1502")
    assert parse.value("category") == "water"


def test_extractor_failure_keeps_the_intent(rasa: FakeRasa, fallback: RecordingFallback) -> None:
    def broken(text: str, now: datetime | None) -> tuple[Entity, ...]:
        raise RuntimeError("bug")

    rasa.answer("repair", 0.9)
    with RasaNLU(rasa.url, fallback=fallback, extract=broken) as nlu:
        parse = nlu.parse("厨房漏水", NOW)
    assert (parse.intent, parse.entities) == ("repair", ())


# --- the emergency rules ---------------------------------------------------------------------------


def test_live_emergency_cue_overrides_rasa(rasa: FakeRasa, backend: RasaNLU) -> None:
    rasa.answer("repair", 0.7, ("emergency", 0.2))
    parse = backend.parse("电梯里有人被困住了，快来", NOW)
    assert (parse.intent, parse.confidence) == ("emergency", 0.95)


def test_defused_cue_cannot_yield_emergency(rasa: FakeRasa, backend: RasaNLU) -> None:
    rasa.answer("emergency", 0.6, ("suggestion", 0.3), ("enquiry", 0.1))
    parse = backend.parse("如果着火了应该从哪里走", NOW)
    assert (parse.intent, parse.confidence) == ("suggestion", 0.3)


def test_everyday_fault_cannot_yield_emergency(rasa: FakeRasa, backend: RasaNLU) -> None:
    rasa.answer("emergency", 0.5, ("repair", 0.4), ("complaint", 0.1))
    parse = backend.parse("家里突然停电了", NOW)  # a power cut at home is an urgent repair
    assert (parse.intent, parse.confidence) == ("repair", 0.4)


# --- falling back ----------------------------------------------------------------------------------


def test_empty_text_goes_straight_to_the_fallback(
    rasa: FakeRasa, backend: RasaNLU, fallback: RecordingFallback
) -> None:
    for text in ("", "   ", "\x00"):
        assert backend.parse(text, NOW).intent == "human_handoff"
    assert rasa.requests == []
    assert fallback.calls == ["", "   ", "\x00"]


def test_connection_refused_falls_back(fallback: RecordingFallback) -> None:
    with RasaNLU(f"http://127.0.0.1:{closed_port()}", fallback=fallback, extract=no_entities) as nlu:
        parse = nlu.parse("厨房漏水", NOW)
        assert not nlu.available
    assert (parse.intent, parse.confidence) == ("human_handoff", 0.123)
    assert fallback.calls == ["厨房漏水"]


def test_timeout_falls_back_in_time(rasa: FakeRasa, fallback: RecordingFallback) -> None:
    rasa.answer("repair", 0.9)
    rasa.delay = 2.0
    with RasaNLU(rasa.url, fallback=fallback, timeout=0.2, extract=no_entities) as nlu:
        started = time.monotonic()
        parse = nlu.parse("厨房漏水", NOW)
        elapsed = time.monotonic() - started
    assert parse.intent == "human_handoff"
    assert elapsed < 1.5


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, b'{"error": "boom"}'),
        (409, b'{"message": "model not ready"}'),
        (200, b"<html>not json</html>"),
        (200, b"\xff\xfe garbage"),
        (200, b"[1, 2, 3]"),
        (200, b"{}"),
        (200, b'{"intent": null}'),
        (200, b'{"intent": {"name": "repair"}}'),
        (200, b'{"intent": {"name": "repair", "confidence": "high"}}'),
        (200, b'{"intent": {"name": "repair", "confidence": NaN}}'),
        (200, b'{"intent": {"name": "order_pizza", "confidence": 0.9}}'),
    ],
)
def test_unusable_answers_fall_back(
    rasa: FakeRasa, backend: RasaNLU, fallback: RecordingFallback, status: int, body: bytes
) -> None:
    rasa.reply(body, status)
    assert backend.parse("厨房漏水", NOW).intent == "human_handoff"
    assert fallback.calls == ["厨房漏水"]


def test_outage_is_logged_once_and_recovery_once(
    rasa: FakeRasa, backend: RasaNLU, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    rasa.reply(b"oops", 500)
    for _ in range(5):
        backend.parse("厨房漏水", NOW)
    outage = [r for r in caplog.records if "unusable" in r.getMessage()]
    assert len(outage) == 1
    assert outage[0].levelno == logging.WARNING
    assert "recording backend answers" in outage[0].getMessage()

    rasa.answer("repair", 0.9)
    for _ in range(3):
        assert backend.parse("厨房漏水", NOW).intent == "repair"
    assert backend.available
    assert sum("answers again" in r.getMessage() for r in caplog.records) == 1

    rasa.reply(b"oops", 500)  # a second outage is news again
    backend.parse("厨房漏水", NOW)
    assert sum("unusable" in r.getMessage() for r in caplog.records) == 2


def test_connection_refused_is_logged_once(
    fallback: RecordingFallback, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    with RasaNLU(f"http://127.0.0.1:{closed_port()}", fallback=fallback, extract=no_entities) as nlu:
        for _ in range(4):
            nlu.parse("厨房漏水", NOW)
    assert len(fallback.calls) == 4
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
