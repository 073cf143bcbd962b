"""A fake WeChat API (``/cgi-bin/token``, customer-service and template messages, temporary media
downloads) and WeCom group robot (``/cgi-bin/webhook/send``, markdown and images), answering like the
real ones, errcodes included; a picture host for ``PicUrl``s; plus a helper that builds signed (and
AES-encrypted) callbacks the way WeChat posts them."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import re
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import xmltodict
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from wechatpy.crypto import WeChatCrypto

from tests.fakes.serve import FakeServer

APP_ID = "wx1234567890abcdef"
APP_SECRET = "test-app-secret"
TOKEN = "propbot-wechat-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as WeChat issues them
ACCOUNT = "gh_sunshine_pm"  # the Official Account's own id (ToUserName)
ROBOT_KEY = "robot-key-123"
ROBOT_IMAGE_MAX = 2 << 20  # the robot's limit for an image, before base64


@dataclass(frozen=True)
class ApiCall:
    path: str
    query: dict[str, str]
    body: dict[str, Any]


class FakeWeChat(FakeServer):
    name = "WeChat"

    def __init__(self, token_delay: float = 0.0) -> None:
        self._lock = threading.Lock()
        self._calls: list[ApiCall] = []
        self._errors: dict[str, list[int]] = {}
        self._client_ids: set[tuple[Any, Any]] = set()  # (touser, client_msg_id) of template messages
        self.tokens: list[str] = []  # every token issued, in order
        self.revoked: set[str] = set()
        self.token_delay = token_delay
        self.app = Starlette(
            routes=[
                Route("/cgi-bin/token", self._token, methods=["GET"]),
                Route("/cgi-bin/message/custom/send", self._send, methods=["POST"]),
                Route("/cgi-bin/message/template/send", self._send, methods=["POST"]),
                Route("/cgi-bin/webhook/send", self._robot, methods=["POST"]),
                Route("/cgi-bin/media/get", self._media, methods=["GET"]),
                Route("/mmbiz_jpg/{name}", self._picture, methods=["GET"]),
            ]
        )
        self.media: dict[str, bytes] = {}  # media_id -> bytes, for /cgi-bin/media/get
        self.pictures: dict[str, bytes] = {}  # name -> bytes, for PicUrls
        self.picture_failures: list[int] = []  # HTTP statuses for the next picture requests

    # -- photos --------------------------------------------------------------------------------------
    def add_picture(self, name: str, data: bytes) -> str:
        """Host ``data`` as a resident's picture; its PicUrl."""
        self.pictures[name] = data
        return f"{self.url}/mmbiz_jpg/{name}"

    def robot_images(self) -> list[bytes]:
        """The images the robot posted, decoded."""
        return [
            base64.b64decode(c.body["image"]["base64"])
            for c in self.calls("webhook/send")
            if c.body.get("msgtype") == "image"
        ]

    def robot_texts(self) -> list[str]:
        return [
            c.body["markdown"]["content"]
            for c in self.calls("webhook/send")
            if c.body.get("msgtype") == "markdown"
        ]

    async def _media(self, request: Request) -> Response:
        given = request.query_params.get("access_token")
        with self._lock:
            valid = given in self.tokens and given not in self.revoked
            data = self.media.get(request.query_params.get("media_id", ""))
            if valid:
                self._calls.append(ApiCall(request.url.path, dict(request.query_params), {}))
        if not valid:
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
        if data is None:
            return JSONResponse({"errcode": 40007, "errmsg": "invalid media_id"})
        return Response(data, media_type="image/jpeg")

    async def _picture(self, request: Request) -> Response:
        with self._lock:
            status = self.picture_failures.pop(0) if self.picture_failures else None
            data = self.pictures.get(request.path_params["name"])
            self._calls.append(ApiCall(request.url.path, {}, {}))
        if status is not None:
            return Response(b"busy", status_code=status)
        if data is None:
            return Response(b"not found", status_code=404)
        return Response(data, media_type="image/jpeg")

    def calls(self, path: str) -> list[ApiCall]:
        with self._lock:
            return [c for c in self._calls if c.path.endswith(path)]

    def custom_texts(self, openid: str) -> list[str]:
        return [
            c.body["text"]["content"]
            for c in self.calls("custom/send")
            if c.body.get("touser") == openid and c.body.get("msgtype") == "text"
        ]

    def revoke_tokens(self) -> None:
        """Every token issued so far stops working (as after a fetch elsewhere, or a reset)."""
        with self._lock:
            self.revoked.update(self.tokens)

    def fail_next(self, path: str, errcode: int, times: int = 1) -> None:
        with self._lock:
            self._errors.setdefault(path, []).extend([errcode] * times)

    async def _token(self, request: Request) -> JSONResponse:
        query = request.query_params
        if query.get("appid") != APP_ID or query.get("secret") != APP_SECRET:
            return JSONResponse({"errcode": 40125, "errmsg": "invalid appsecret"})
        await asyncio.sleep(self.token_delay)
        with self._lock:
            token = f"ACCESS_TOKEN_{len(self.tokens) + 1}"
            self.tokens.append(token)
        return JSONResponse({"access_token": token, "expires_in": 7200})

    async def _send(self, request: Request) -> JSONResponse:
        path = request.url.path
        body = await request.json()
        with self._lock:
            given = request.query_params.get("access_token")
            valid = given in self.tokens and given not in self.revoked
            errors = self._errors.get(path.rsplit("/", 2)[-2] + "/" + path.rsplit("/", 1)[-1])
            errcode = errors.pop(0) if errors and valid else None
            key = (body.get("touser"), body.get("client_msg_id"))
            repeat = path.endswith("template/send") and key[1] is not None and key in self._client_ids
            if valid and errcode is None and not repeat:  # a repeated client_msg_id is not sent again
                self._calls.append(ApiCall(path, dict(request.query_params), body))
                if key[1] is not None:
                    self._client_ids.add(key)
        if not valid:
            return JSONResponse({"errcode": 40001, "errmsg": "invalid credential, access_token is invalid"})
        if errcode is not None:
            return JSONResponse({"errcode": errcode, "errmsg": f"error {errcode}"})
        return JSONResponse({"errcode": 0, "errmsg": "ok", "msgid": len(self._calls)})

    async def _robot(self, request: Request) -> JSONResponse:
        body = await request.json()
        if request.query_params.get("key") != ROBOT_KEY:
            return JSONResponse({"errcode": 93000, "errmsg": "invalid webhook url"})
        refused = _bad_image(body)
        if refused is not None:
            return JSONResponse(refused)
        with self._lock:
            errors = self._errors.get("webhook/send")
            errcode = errors.pop(0) if errors else None
            if errcode is None:
                self._calls.append(ApiCall(request.url.path, dict(request.query_params), body))
        if errcode is not None:
            return JSONResponse({"errcode": errcode, "errmsg": "api freq out of limit"})
        return JSONResponse({"errcode": 0, "errmsg": "ok"})


def _bad_image(body: dict[str, Any]) -> dict[str, Any] | None:
    """The robot's refusal of an image message (wrong md5, too large), or None."""
    if body.get("msgtype") != "image":
        return None
    image = body.get("image") or {}
    data = base64.b64decode(image.get("base64", ""))
    if hashlib.md5(data).hexdigest() != image.get("md5"):
        return {"errcode": 301019, "errmsg": "media md5 not match"}
    if len(data) > ROBOT_IMAGE_MAX:
        return {"errcode": 40009, "errmsg": "invalid image size"}
    return None


# -- callbacks as WeChat posts them ---------------------------------------------------------------------
def signature(token: str, *parts: str) -> str:
    return hashlib.sha1("".join(sorted([token, *parts])).encode()).hexdigest()


def message_xml(openid: str, msg_type: str, created: int, msg_id: int | None = None, **fields: Any) -> str:
    data: dict[str, Any] = {
        "ToUserName": ACCOUNT,
        "FromUserName": openid,
        "CreateTime": created,
        "MsgType": msg_type,
        **fields,
    }
    if msg_id is not None:
        data["MsgId"] = msg_id
    return xmltodict.unparse({"xml": data}, full_document=False)


_NONCES = itertools.count(1)  # one sequence for all: two builders never reuse a (timestamp, nonce)


class Callbacks:
    """Signs (and in safe mode encrypts) callback bodies; decrypts the passive replies."""

    def __init__(self, aes: bool, token: str = TOKEN) -> None:
        self.aes = aes
        self.token = token
        self.crypto = WeChatCrypto(token, AES_KEY, APP_ID)

    def query(
        self, timestamp: str, nonce: str, body: str = "", forged: bool = False, openid: str = ""
    ) -> str:
        params = {
            "signature": signature(self.token, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
        }
        if openid:
            params["openid"] = openid  # WeChat sends the sender's openid with every message
        if forged:
            params["signature"] = "0" * 40
        if self.aes:
            encrypt = xmltodict.parse(body)["xml"]["Encrypt"]
            params.update(encrypt_type="aes", msg_signature=signature(self.token, timestamp, nonce, encrypt))
        return urlencode(params)

    def build(
        self,
        xml: str,
        forged: bool = False,
        timestamp: int | None = None,
        openid: str | None = None,
        nonce: str | None = None,
    ) -> tuple[str, bytes]:
        """The ``/wechat?...`` path with its query and the body, as WeChat would post ``xml`` at
        ``timestamp`` (the server's clock; default the system's); ``openid`` defaults to the body's
        ``FromUserName`` ("" leaves it out); ``nonce`` defaults to a new one."""
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        nonce = f"n{next(_NONCES)}" if nonce is None else nonce
        body = self.crypto.encrypt_message(xml, nonce, stamp) if self.aes else xml
        sender = sender_of(xml) if openid is None else openid
        return f"/wechat?{self.query(stamp, nonce, body, forged, sender)}", body.encode()

    def open_reply(self, response_text: str) -> dict[str, Any] | None:
        """The passive reply's fields (decrypted in safe mode); None for "success"/empty."""
        if response_text in ("", "success"):
            return None
        if self.aes:
            outer = xmltodict.parse(response_text)["xml"]
            response_text = self.crypto.decrypt_message(
                response_text, outer["MsgSignature"], outer["TimeStamp"], outer["Nonce"]
            )
        return dict(xmltodict.parse(response_text)["xml"])


def sender_of(xml: str) -> str:
    """The first ``FromUserName`` of a callback body, "" if it has none (hostile bodies too)."""
    found = re.search(r"<FromUserName>([^<]*)</FromUserName>", xml)
    return found.group(1) if found else ""
