"""A fake Telegram Bot API: ``/bot<token>/<method>`` with the real request and response shapes.

It keeps every call (method and decoded parameters), numbers messages per chat, serves queued
updates to ``getUpdates``, and fails on demand (``fail_next``, ``garbage_next``, ``blocked``) with
the Bot API's error answers. Given ``Limits`` it enforces Telegram's published send limits the way
a bucket would (30 messages a second overall, one a second per chat, 20 a minute per group) and
answers a breach with 429 and ``retry_after``, as Telegram does.

``BotApiSender`` is a plain ``Sender`` posting to it with httpx, for tests that need real HTTP
without depending on the Telegram channel module.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.outbound import OutboundMessage, PermanentFailure, TemporaryFailure
from tests.fakes.serve import FakeServer

BOT_ID = 777000111
TOKEN = f"{BOT_ID}:TEST-token"
BOT_USER = {"id": BOT_ID, "is_bot": True, "first_name": "阳光花园物业", "username": "sunshine_pm_bot"}
GARBAGE = "<html>oops</html>"


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]
    result: Any = None  # what the fake answered (the sent Message for sendMessage, else the error)
    ok: bool = True
    at: float = field(default_factory=time.monotonic)

    @property
    def message(self) -> dict[str, Any]:
        """The sent message as a later update would carry it (for a callback or a reply)."""
        return dict(self.result)


@dataclass(frozen=True)
class Limits:
    overall_per_s: float = 30.0
    chat_per_s: float = 1.0
    group_per_min: float = 20.0


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


class FakeTelegram(FakeServer):
    name = "Telegram"

    def __init__(self, token: str = TOKEN, limits: Limits | None = None) -> None:
        self.token = token
        self.limits = limits
        self.blocked: set[str] = set()  # chats that blocked the bot (403 on send*)
        self.rejected_by: dict[str, int] = {}  # 429s by bucket: "chat" | "group" | "overall"
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._next_id: dict[str, int] = {}
        self._failures: dict[str, list[tuple[int, Any]]] = {}
        self._updates: list[dict[str, Any]] = []
        self._overall = _Bucket(limits.overall_per_s, limits.overall_per_s) if limits else None
        self._chats: dict[str, _Bucket] = {}
        self.app = Starlette(routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])])
        # photos: see "Photos" at the end of the module
        self.files: dict[str, bytes] = {}  # file_id -> bytes, for getFile and the file server
        self.app.router.routes.append(Route("/file/bot{token}/{path:path}", partial(_file, self)))

    # -- what tests use ----------------------------------------------------------------------------
    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def sent(self) -> list[Call]:
        """Delivered messages, in order (refused attempts left out)."""
        return [c for c in self.calls("sendMessage") if c.ok]

    def sent_to(self, chat_id: int | str) -> list[Call]:
        """Messages delivered to ``chat_id``."""
        return [c for c in self.sent() if str(c.params.get("chat_id")) == str(chat_id)]

    def texts_to(self, chat_id: int | str) -> list[str]:
        return [c.params["text"] for c in self.sent_to(chat_id)]

    def fail_next(
        self, method: str, status: int, description: str, retry_after: int | None = None, times: int = 1
    ) -> None:
        self._fail(method, status, _error(status, description, retry_after), times)

    def garbage_next(self, method: str, times: int = 1) -> None:
        """Answer 200 with a body that is not JSON (a proxy's error page)."""
        self._fail(method, 200, GARBAGE, times)

    def execute_webhook_answer(self, response: httpx.Response) -> None:
        """Run the Bot API call a webhook's answer carries, as Telegram does after a delivery
        ("making requests when getting updates"): recorded like any call, its result goes nowhere."""
        if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
            return
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("method"), str):
            self._answer(body["method"], {key: value for key, value in body.items() if key != "method"})

    def queue_update(self, update: dict[str, Any]) -> None:
        with self._lock:
            self._updates.append(update)

    # -- the endpoint ---------------------------------------------------------------------------------
    def _fail(self, method: str, status: int, body: Any, times: int) -> None:
        with self._lock:
            self._failures.setdefault(method, []).extend([(status, body)] * times)

    async def _endpoint(self, request: Request) -> Response:
        if request.path_params["token"] != self.token:
            return JSONResponse(_error(401, "Unauthorized"), status_code=401)
        method = request.path_params["method"]
        params = await _params(request)
        answer = self._answer(method, params)
        if answer is None:
            return await self._get_updates(params)
        status, body = answer
        if isinstance(body, str):
            return PlainTextResponse(body, status_code=status)
        return JSONResponse(body, status_code=status)

    def _answer(self, method: str, params: dict[str, Any]) -> tuple[int, Any] | None:
        """Status and body, recorded as a call; None for a getUpdates to serve."""
        with self._lock:  # one lock: buckets, message ids and the record move together
            refusal = self._refusal(method, params)
            if refusal is None and method == "getUpdates":
                return None
            if refusal is None:
                result = self._result(method, params)
                self._calls.append(Call(method, params, result))
                return 200, {"ok": True, "result": result}
            self._calls.append(Call(method, params, refusal[1], ok=False))
            return refusal

    def _refusal(self, method: str, params: dict[str, Any]) -> tuple[int, Any] | None:
        """The scripted or rule-made refusal of this call, if any."""
        failures = self._failures.get(method)
        if failures:
            return failures.pop(0)
        if not method.startswith("send"):
            return None
        chat = str(params.get("chat_id"))
        if chat in self.blocked:
            return 403, _error(403, "Forbidden: bot was blocked by the user")
        if self.limits and not self._allowed(chat, time.monotonic()):
            return 429, _error(429, "Too Many Requests: retry after 1", retry_after=1)
        return None

    def _allowed(self, chat: str, now: float) -> bool:
        assert self.limits and self._overall
        group = chat.startswith("-")
        bucket = self._chats.get(chat)
        if bucket is None:
            per_s = self.limits.group_per_min / 60 if group else self.limits.chat_per_s
            bucket = self._chats[chat] = _Bucket(1.0, per_s * 1.05)  # 5% slack for HTTP jitter
        if not bucket.take(now):
            self._reject("group" if group else "chat")
            return False
        if not self._overall.take(now):
            bucket.tokens += 1.0  # not sent: give the chat its token back
            self._reject("overall")
            return False
        return True

    def _reject(self, why: str) -> None:
        self.rejected_by[why] = self.rejected_by.get(why, 0) + 1

    async def _get_updates(self, params: dict[str, Any]) -> JSONResponse:
        offset = int(params.get("offset") or 0)
        for _ in range(20):
            with self._lock:
                ready = [u for u in self._updates if u["update_id"] >= offset]
            if ready:
                return JSONResponse({"ok": True, "result": ready})
            await asyncio.sleep(0.05)
        return JSONResponse({"ok": True, "result": []})

    def photos_to(self, chat_id: int | str) -> list[Call]:
        """sendPhoto and sendMediaGroup calls delivered to ``chat_id`` (see ``photo_items``)."""
        return [
            c
            for c in self.calls()
            if c.method in PHOTO_METHODS and c.ok and str(c.params.get("chat_id")) == str(chat_id)
        ]

    def _result(self, method: str, params: dict[str, Any]) -> Any:
        if method in PHOTO_METHODS or method == "getFile":
            return _photo_result(self, method, params)
        if method == "getMe":
            return {
                **BOT_USER,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            }
        if method in ("sendMessage", "editMessageText"):
            return self._message(method, params)
        return True  # answerCallbackQuery, setWebhook, deleteWebhook, editMessageReplyMarkup, ...

    def _message(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        chat_id = str(params["chat_id"])
        if method == "sendMessage":
            self._next_id[chat_id] = message_id = self._next_id.get(chat_id, 0) + 1
        else:
            message_id = int(params["message_id"])
        chat_type = "supergroup" if chat_id.startswith("-") else "private"
        message = {
            "message_id": message_id,
            "date": int(time.time()),
            "from": BOT_USER,
            "chat": {"id": int(chat_id), "type": chat_type},
            "text": params.get("text", ""),
        }
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        return message


def _error(status: int, description: str, retry_after: int | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return body


async def _params(request: Request) -> dict[str, Any]:
    """ptb sends url-encoded form fields (complex values as JSON strings); accept JSON bodies too."""
    body = await request.body()
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        return _multipart(body, request.headers["content-type"])  # uploads: see "Photos" below
    if request.headers.get("content-type", "").startswith("application/json"):
        return json.loads(body) if body else {}
    params: dict[str, Any] = dict(request.query_params)
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        params[key] = _decode(value)
    return params


def _decode(value: str) -> Any:
    if value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


# -- building updates as Telegram sends them ----------------------------------------------------------
class Updates:
    """Numbered updates from residents and staff, shaped like the Bot API's."""

    def __init__(self) -> None:
        self._update_id = 500000
        self._message_id: dict[int, int] = {}

    def _ids(self, chat_id: int) -> tuple[int, int]:
        self._update_id += 1
        self._message_id[chat_id] = self._message_id.get(chat_id, 1000) + 1
        return self._update_id, self._message_id[chat_id]

    @staticmethod
    def user(user_id: int, name: str = "居民") -> dict[str, Any]:
        return {"id": user_id, "is_bot": False, "first_name": name}

    def message(
        self, chat_id: int, *, user_id: int | None = None, chat_type: str = "private", **content: Any
    ) -> dict[str, Any]:
        update_id, message_id = self._ids(chat_id)
        chat = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = "居民"
        else:
            chat["title"] = "物业员工群"
        message = {
            "message_id": message_id,
            "date": 1795413600,
            "chat": chat,
            "from": self.user(user_id or chat_id),
            **content,
        }
        return {"update_id": update_id, "message": message}

    def text(self, chat_id: int, text: str, **extra: Any) -> dict[str, Any]:
        return self.message(chat_id, text=text, **extra)

    def callback(
        self,
        chat_id: int,
        data: str,
        *,
        user_id: int | None = None,
        message: dict[str, Any] | None = None,
        chat_type: str = "private",
    ) -> dict[str, Any]:
        self._update_id += 1
        origin = message or {
            "message_id": 1,
            "date": 1795413600,
            "from": BOT_USER,
            "text": "…",
            "chat": {"id": chat_id, "type": chat_type},
        }
        query = {
            "id": f"cq{self._update_id}",
            "from": self.user(user_id or chat_id),
            "chat_instance": "ci",
            "data": data,
            "message": origin,
        }
        return {"update_id": self._update_id, "callback_query": query}


class BotApiSender:
    """``sendMessage`` over httpx, errors mapped as the Telegram channel maps them."""

    def __init__(self, base_url: str, token: str = TOKEN, channel: str = "telegram") -> None:
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


# -- Photos: sendPhoto, sendMediaGroup, getFile and the file server ------------------------------------
PHOTO_METHODS = ("sendPhoto", "sendMediaGroup")


def photo_items(call: Call) -> list[str | bytes]:
    """What a photo call sent, in order: file ids (re-sent) and bytes (uploaded)."""
    if call.method == "sendPhoto":
        return [call.params["photo"]]
    return [item["media"] for item in call.params["media"]]


def photo_caption(call: Call) -> str:
    if call.method == "sendPhoto":
        return str(call.params.get("caption") or "")
    return str(call.params["media"][0].get("caption") or "")


def _photo_result(fake: FakeTelegram, method: str, params: dict[str, Any]) -> Any:
    """The sent messages (under the fake's lock), or getFile's File for a known file id."""
    if method == "getFile":
        file_id = str(params["file_id"])
        size = len(fake.files.get(file_id, b""))
        path = f"photos/{file_id}.jpg"
        return {"file_id": file_id, "file_unique_id": file_id[-16:], "file_size": size, "file_path": path}
    if method == "sendPhoto":
        return _photo_message(fake, params, params["photo"], params.get("caption"))
    return [_photo_message(fake, params, m["media"], m.get("caption")) for m in params["media"]]


def _photo_message(fake: FakeTelegram, params: dict[str, Any], item: Any, caption: Any) -> dict[str, Any]:
    chat_id = str(params["chat_id"])
    fake._next_id[chat_id] = message_id = fake._next_id.get(chat_id, 0) + 1
    file_id = item if isinstance(item, str) else f"upload-{hashlib.md5(item).hexdigest()[:16]}"
    message: dict[str, Any] = {
        "message_id": message_id,
        "date": int(time.time()),
        "from": BOT_USER,
        "chat": {"id": int(chat_id), "type": "supergroup" if chat_id.startswith("-") else "private"},
        "photo": [{"file_id": file_id, "file_unique_id": file_id[-16:], "width": 1280, "height": 960}],
    }
    if caption:
        message["caption"] = caption
    return message


async def _file(fake: FakeTelegram, request: Request) -> Response:
    """``/file/bot<token>/photos/<file_id>.jpg``: the bytes ``getFile`` pointed at."""
    name = request.path_params["path"].rsplit("/", 1)[-1].removesuffix(".jpg")
    data = fake.files.get(name)
    if request.path_params["token"] != fake.token or data is None:
        return PlainTextResponse("Not Found", status_code=404)
    return Response(data, media_type="image/jpeg")


def _multipart(body: bytes, content_type: str) -> dict[str, Any]:
    """Form fields (JSON decoded) and uploaded files (bytes); ``attach://name`` resolved to the bytes."""
    parsed = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    params: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    for part in parsed.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes)
        if part.get_filename() is not None:
            files[name] = data
        else:
            params[name] = _decode(data.decode())
    for name, data in files.items():
        params.setdefault(name, data)
    for item in params.get("media") or ():
        if isinstance(item, dict) and str(item.get("media", "")).startswith("attach://"):
            item["media"] = files[item["media"].removeprefix("attach://")]
    return params
