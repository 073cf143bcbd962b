"""A fake WeCom (企业微信) app API (``gettoken``, ``message/send``, ``appchat/send``,
``message/update_template_card``) answering like the real one, errcodes included, with failure
injection. ``message/send`` gives a template card a ``response_code`` (one update of it), answers
40008 to template cards when ``templates`` is off (an account that takes none), and holds each member
to ``PER_MEMBER`` messages a minute (the real API drops the rest silently; this one answers 45009,
so a test sees any send past the limit). Plus a helper that builds callbacks signed and
AES-encrypted as WeCom posts them (wechatpy's enterprise crypto)."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import xmltodict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from wechatpy.enterprise.crypto import WeChatCrypto

from tests.fakes.serve import FakeServer

CORP_ID = "ww1234567890abcdef"
AGENT_ID = 1000002
SECRET = "wecom-app-secret-abc"
TOKEN = "propbot-wecom-token"
AES_KEY = "ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkj"  # 43 characters, as WeCom issues them
CHAT = "wrkSFfCgAAsunshine"  # the compound's app group chat (appchat/create)
DUTY = "wangshifu"  # the duty member's userid
PATHS = ("gettoken", "message/send", "appchat/send", "message/update_template_card")
PER_MEMBER = 30  # messages a minute from one app to one member (docs: 访问频率限制)


@dataclass(frozen=True)
class ApiCall:
    path: str  # "message/send", ...
    body: dict[str, Any]


class FakeWeCom(FakeServer):
    name = "WeCom"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[ApiCall] = []
        self._errors: dict[str, list[int]] = {}
        self.tokens: list[str] = []
        self.codes_used: set[str] = set()  # response codes spent: each updates its card once
        self.templates = True  # False: template cards refused (40008), as where they are not allowed
        self.per_member = PER_MEMBER
        self._sent_at: dict[str, list[float]] = {}  # member -> times of messages in the last minute
        self._codes = itertools.count(1)
        self.app = Starlette(
            routes=[
                Route("/cgi-bin/gettoken", self._token, methods=["GET"]),
                *(Route(f"/cgi-bin/{p}", self._api, methods=["POST"]) for p in PATHS[1:]),
            ]
        )

    def calls(self, path: str) -> list[ApiCall]:
        with self._lock:
            return [c for c in self._calls if c.path == path]

    def fail_next(self, path: str, errcode: int, times: int = 1) -> None:
        with self._lock:
            self._errors.setdefault(path, []).extend([errcode] * times)

    def revoke_tokens(self) -> None:
        with self._lock:
            self.tokens = [f"{t}-revoked" for t in self.tokens]

    def texts_to(self, user: str) -> list[str]:
        return [
            c.body["text"]["content"]
            for c in self.calls("message/send")
            if c.body.get("touser") == user and c.body.get("msgtype") == "text"
        ]

    def cards_to(self, user: str) -> list[dict[str, Any]]:
        return [
            c.body["template_card"]
            for c in self.calls("message/send")
            if c.body.get("touser") == user and c.body.get("msgtype") == "template_card"
        ]

    def textcards_to(self, user: str) -> list[dict[str, Any]]:
        return [
            c.body["textcard"]
            for c in self.calls("message/send")
            if c.body.get("touser") == user and c.body.get("msgtype") == "textcard"
        ]

    def group_posts(self, chat: str = CHAT) -> list[str]:
        return [c.body["markdown"]["content"] for c in self.calls("appchat/send") if c.body["chatid"] == chat]

    def _error(self, path: str) -> int | None:
        errors = self._errors.get(path)
        return errors.pop(0) if errors else None

    async def _token(self, request: Request) -> JSONResponse:
        query = request.query_params
        with self._lock:
            errcode = self._error("gettoken")
            if errcode is None and (query.get("corpid") != CORP_ID or query.get("corpsecret") != SECRET):
                errcode = 40001
            if errcode is None:
                token = f"WECOM_TOKEN_{len(self.tokens) + 1}"
                self.tokens.append(token)
                self._calls.append(ApiCall("gettoken", {}))
        if errcode is not None:
            return JSONResponse({"errcode": errcode, "errmsg": f"error {errcode}"})
        return JSONResponse({"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": 7200})

    async def _api(self, request: Request) -> JSONResponse:
        path = request.url.path.removeprefix("/cgi-bin/")
        body = await request.json()
        with self._lock:
            if request.query_params.get("access_token") not in self.tokens:
                return JSONResponse({"errcode": 40014, "errmsg": "invalid access_token"})
            errcode = self._error(path) or _refusal(path, body, self.codes_used) or self._limits(path, body)
            answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "msgid": f"msg{len(self._calls) + 1}"}
            if errcode is None:
                self._calls.append(ApiCall(path, body))
                if path == "message/update_template_card":
                    self.codes_used.add(body["response_code"])
                if body.get("msgtype") == "template_card":
                    answer["response_code"] = f"SENT-CODE-{next(self._codes)}"
        if errcode is not None:
            return JSONResponse({"errcode": errcode, "errmsg": f"error {errcode}"})
        return JSONResponse(answer)

    def _limits(self, path: str, body: dict[str, Any]) -> int | None:
        """Template cards where none are allowed; a member's messages past the minute's limit."""
        if path != "message/send":
            return None
        if body.get("msgtype") == "template_card" and not self.templates:
            return 40008
        now = time.monotonic()
        sent = [t for t in self._sent_at.get(body["touser"], []) if now - t < 60]
        if len(sent) >= self.per_member:
            return 45009
        self._sent_at[body["touser"]] = [*sent, now]
        return None


def _refusal(path: str, body: dict[str, Any], used: set[str]) -> int | None:
    """WeCom's answer to a malformed request, as the real API checks it."""
    if path == "message/send":
        if body.get("agentid") != AGENT_ID or not body.get("touser"):
            return 40056 if body.get("agentid") != AGENT_ID else 40031
        if body.get("msgtype") == "textcard":
            card = body["textcard"]
            if not card.get("title") or not card.get("description") or not card.get("url"):
                return 40058
            if len(card["title"].encode()) > 128 or len(card["description"].encode()) > 512:
                return 40058
        if body.get("msgtype") == "template_card":
            card = body["template_card"]
            if card.get("card_type") != "button_interaction" or not card.get("task_id"):
                return 40058
            if not 1 <= len(card.get("button_list", [])) <= 6:
                return 40058
    if path == "appchat/send" and (body.get("chatid") != CHAT or body.get("msgtype") != "markdown"):
        return 86003 if body.get("chatid") != CHAT else 40008
    if path == "message/update_template_card":
        code = body.get("response_code")
        if body.get("agentid") != AGENT_ID or not code or code in used:
            return 40058
    return None


# -- callbacks as WeCom posts them ------------------------------------------------------------------
_NONCES = itertools.count(1)


class Callbacks:
    """Encrypts and signs callback bodies as WeCom does (msg_signature over the ciphertext)."""

    def __init__(self, token: str = TOKEN) -> None:
        self.crypto = WeChatCrypto(token, AES_KEY, CORP_ID)

    def build(
        self, xml: str, timestamp: int | None = None, nonce: str | None = None, forged: bool = False
    ) -> tuple[str, bytes]:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = f"q{next(_NONCES)}" if nonce is None else nonce
        body = self.crypto.encrypt_message(xml, nonce, stamp)
        signature = xmltodict.parse(body)["xml"]["MsgSignature"]
        if forged:
            signature = "0" * 40
        query = urlencode({"msg_signature": signature, "timestamp": stamp, "nonce": nonce})
        return f"/wecom?{query}", body.encode()

    def verification(self, echo: str, timestamp: int, forged: bool = False) -> dict[str, str]:
        """The GET query of WeCom's URL check: ``echostr`` encrypted, signed."""
        nonce = f"v{next(_NONCES)}"
        outer = xmltodict.parse(self.crypto.encrypt_message(echo, nonce, str(timestamp)))["xml"]
        signature = "0" * 40 if forged else outer["MsgSignature"]
        echostr = outer["Encrypt"]
        return {"msg_signature": signature, "timestamp": str(timestamp), "nonce": nonce, "echostr": echostr}


def text_xml(user: str, text: str, created: int, msg_id: int) -> str:
    return _xml(user, created, MsgType="text", Content=text, MsgId=msg_id)


def card_event_xml(user: str, key: str, created: int, task_id: str, code: str) -> str:
    return _xml(
        user,
        created,
        MsgType="event",
        Event="template_card_event",
        EventKey=key,
        TaskId=task_id,
        CardType="button_interaction",
        ResponseCode=code,
    )


def _xml(user: str, created: int, **fields: Any) -> str:
    data = {"ToUserName": CORP_ID, "FromUserName": user, "CreateTime": created, **fields, "AgentID": AGENT_ID}
    return xmltodict.unparse({"xml": data}, full_document=False)
