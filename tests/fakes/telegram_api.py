"""A fake Telegram Bot API: ``/bot<token>/<method>`` with the real request and response shapes.

It keeps every call (method and decoded parameters), numbers messages per chat, serves queued
updates to ``getUpdates``, and fails on demand (``fail_next``) with the Bot API's error answers.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

BOT_ID = 777000111
TOKEN = f"{BOT_ID}:TEST-token"
BOT_USER = {"id": BOT_ID, "is_bot": True, "first_name": "阳光花园物业", "username": "sunshine_pm_bot"}


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]
    result: Any = None  # what the fake answered (the sent Message for sendMessage)

    @property
    def message(self) -> dict[str, Any]:
        """The sent message as a later update would carry it (for a callback or a reply)."""
        return dict(self.result)


class FakeTelegram:
    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self._lock = threading.Lock()
        self._calls: list[Call] = []
        self._next_id: dict[str, int] = {}
        self._failures: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self._updates: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"])])

    # -- what tests use ----------------------------------------------------------------------------
    def calls(self, method: str | None = None) -> list[Call]:
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def sent_to(self, chat_id: int | str) -> list[Call]:
        """Messages delivered to ``chat_id`` (refused attempts left out)."""
        return [
            c
            for c in self.calls("sendMessage")
            if str(c.params.get("chat_id")) == str(chat_id) and not _refused(c)
        ]

    def texts_to(self, chat_id: int | str) -> list[str]:
        return [c.params["text"] for c in self.sent_to(chat_id)]

    def wait_for(self, predicate: Any, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = predicate()
            if found:
                return found
            time.sleep(0.02)
        raise AssertionError("the fake Telegram server never saw what the test waited for")

    def fail_next(
        self, method: str, status: int, description: str, retry_after: int | None = None, times: int = 1
    ) -> None:
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        with self._lock:
            self._failures.setdefault(method, []).extend([(status, body)] * times)

    def queue_update(self, update: dict[str, Any]) -> None:
        with self._lock:
            self._updates.append(update)

    # -- the endpoint ---------------------------------------------------------------------------------
    async def _endpoint(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return JSONResponse(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401
            )
        method = request.path_params["method"]
        params = await _params(request)
        with self._lock:
            failures = self._failures.get(method)
            failure = failures.pop(0) if failures else None
        if failure is not None:
            self._record(Call(method, params, failure[1]))
            return JSONResponse(failure[1], status_code=failure[0])
        if method == "getUpdates":
            return await self._get_updates(params)
        result = self._result(method, params)
        self._record(Call(method, params, result))
        return JSONResponse({"ok": True, "result": result})

    def _record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    async def _get_updates(self, params: dict[str, Any]) -> JSONResponse:
        offset = int(params.get("offset") or 0)
        for _ in range(20):
            with self._lock:
                ready = [u for u in self._updates if u["update_id"] >= offset]
            if ready:
                return JSONResponse({"ok": True, "result": ready})
            await asyncio.sleep(0.05)
        return JSONResponse({"ok": True, "result": []})

    def _result(self, method: str, params: dict[str, Any]) -> Any:
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
            with self._lock:
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


def _refused(call: Call) -> bool:
    return isinstance(call.result, dict) and call.result.get("ok") is False


async def _params(request: Request) -> dict[str, Any]:
    """ptb sends url-encoded form fields (complex values as JSON strings); accept JSON bodies too."""
    body = await request.body()
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
