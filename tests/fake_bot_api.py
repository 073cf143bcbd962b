"""A fake Telegram Bot API on 127.0.0.1 for the dispatcher's tests and benchmark.

It speaks enough of the real protocol for ``sendMessage`` (python-telegram-bot can parse its
answers) and enforces Telegram's published limits the way a bucket would: 30 messages a second
overall (bursts up to 30), one a second per chat, 20 a minute per group. A breach is answered with
429 and ``retry_after``, as Telegram does. It can also be told to fail the first N requests with a
5xx, or to answer garbage.

``BotApiSender`` is a plain ``Sender`` posting to it with httpx, for tests that need real HTTP
without depending on the Telegram channel module.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.outbound import OutboundMessage, PermanentFailure, TemporaryFailure


@dataclass
class _Bucket:
    capacity: float
    rate: float  # tokens per second
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> bool:
        if self.tokens < 0:
            self.tokens, self.at = self.capacity, now
        self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1.0 - 1e-6:
            self.tokens -= 1.0
            return True
        return False


@dataclass
class FakeBotApi:
    overall_per_s: float = 30.0
    chat_per_s: float = 1.0
    group_per_min: float = 20.0
    fail_first: int = 0  # answer this many requests with ``fail_status``
    fail_status: int = 502
    garbage_first: int = 0  # then this many with a 200 that is not JSON
    blocked: set[str] = field(default_factory=set)  # chats that blocked the bot (403)
    received: list[dict[str, Any]] = field(default_factory=list)
    rejected_429: int = 0
    rejected_by: dict[str, int] = field(default_factory=dict)  # "chat" | "group" | "overall"
    requests: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._overall = _Bucket(self.overall_per_s, self.overall_per_s)
        self._chats: dict[str, _Bucket] = {}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # -- the API --------------------------------------------------------------------------------
    async def _send_message(self, request: Request) -> Response:
        body = _body(await request.body(), request.headers.get("content-type", ""))
        chat = str(body.get("chat_id"))
        with self._lock:
            self.requests += 1
            if self.fail_first > 0:
                self.fail_first -= 1
                return PlainTextResponse("Bad Gateway", status_code=self.fail_status)
            if self.garbage_first > 0:
                self.garbage_first -= 1
                return PlainTextResponse("<html>oops</html>", status_code=200)
            if chat in self.blocked:
                return _error(403, "Forbidden: bot was blocked by the user")
            if not self._allowed(chat, time.monotonic()):
                self.rejected_429 += 1
                return _error(429, "Too Many Requests: retry after 1", {"retry_after": 1})
            self.received.append({"chat_id": chat, "text": body.get("text", ""), "at": time.monotonic()})
            message_id = len(self.received)
        return JSONResponse(
            {
                "ok": True,
                "result": {
                    "message_id": message_id,
                    "date": int(time.time()),
                    "text": body.get("text", ""),
                    "chat": {
                        "id": int(chat) if chat.lstrip("-").isdigit() else 0,
                        "type": "group" if chat.startswith("-") else "private",
                    },
                },
            }
        )

    def _allowed(self, chat: str, now: float) -> bool:
        bucket = self._chats.get(chat)
        if bucket is None:
            per_s = self.group_per_min / 60 if chat.startswith("-") else self.chat_per_s
            bucket = self._chats[chat] = _Bucket(1.0, per_s * 1.05)  # 5% slack for HTTP jitter
        if not bucket.take(now):
            self._reject("group" if chat.startswith("-") else "chat")
            return False
        if not self._overall.take(now):
            bucket.tokens += 1.0  # not sent: give the chat its token back
            self._reject("overall")
            return False
        return True

    def _reject(self, why: str) -> None:
        self.rejected_by[why] = self.rejected_by.get(why, 0) + 1

    async def _get_me(self, request: Request) -> Response:
        return JSONResponse(
            {
                "ok": True,
                "result": {"id": 1, "is_bot": True, "first_name": "propbot", "username": "propbot_test_bot"},
            }
        )

    # -- life -----------------------------------------------------------------------------------
    def start(self) -> str:
        app = Starlette(
            routes=[
                Route("/bot{token}/sendMessage", self._send_message, methods=["POST"]),
                Route("/bot{token}/getMe", self._get_me, methods=["GET", "POST"]),
            ]
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("fake Bot API did not start")
            time.sleep(0.01)
        self.base_url = f"http://127.0.0.1:{port}/bot"
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def texts_by_chat(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for item in self.received:
            found.setdefault(item["chat_id"], []).append(item["text"])
        return found


def _body(raw: bytes, content_type: str) -> dict[str, Any]:
    """JSON (httpx senders) or a urlencoded form (python-telegram-bot), without python-multipart."""
    if content_type.startswith("application/json"):
        return dict(json.loads(raw or b"{}"))
    return {k: v[0] for k, v in parse_qs(raw.decode()).items()}


def _error(code: int, description: str, parameters: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"ok": False, "error_code": code, "description": description}
    if parameters:
        body["parameters"] = parameters
    return JSONResponse(body, status_code=code)


class BotApiSender:
    """``sendMessage`` over httpx, errors mapped as the Telegram channel maps them."""

    def __init__(self, base_url: str, token: str = "TEST", channel: str = "telegram") -> None:
        self.channel = channel
        self.url = f"{base_url}{token}/sendMessage"
        self.client = httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=64))

    async def send(self, message: OutboundMessage) -> None:
        try:
            response = await self.client.post(
                self.url, json={"chat_id": message.recipient, "text": message.text}
            )
        except httpx.HTTPError as exc:
            raise TemporaryFailure(f"network: {exc}") from exc
        if response.status_code >= 500:
            raise TemporaryFailure(f"HTTP {response.status_code}")
        body = response.json()  # garbage raises: the dispatcher treats it as temporary
        if body.get("ok"):
            return
        if response.status_code == 429:
            raise TemporaryFailure(
                body.get("description", "429"), body.get("parameters", {}).get("retry_after")
            )
        raise PermanentFailure(body.get("description", f"HTTP {response.status_code}"))

    async def aclose(self) -> None:
        await self.client.aclose()


def run(coro: Any) -> Any:
    """Run ``coro`` on a fresh event loop (for threads that have none)."""
    return asyncio.run(coro)
