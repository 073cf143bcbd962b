"""WeChat Official Account (公众号) for residents, with wechatpy.

Callbacks: the signature is checked before anything else, then the timestamp (within five minutes
of the clock); with an AES key only safe-mode requests with a valid ``msg_signature`` are taken
(plaintext only with ``WECHAT_ALLOW_PLAINTEXT``). The body is size-limited and refused if it has a DTD
or entities (defusedxml); every field must be one plain text element, numbers must be numbers, and the
query's ``openid`` must be the sender. Each (timestamp, nonce) is remembered in the store for the
window: the same pair with another body is a replay and refused (see ``CallbackGuard``). The engine's
replies go back as the passive reply when they are ready within WeChat's 5-second limit; otherwise
WeChat gets "success" at once and the replies follow as customer-service messages through the outbox.
Retries are de-duplicated by MsgId (events by sender + time + event).

Proactive messages (``WeChatSender``): customer-service messages inside the 48-hour window after the
resident last wrote, template messages outside it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from xml.etree.ElementTree import ParseError

import requests
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_xml
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from wechatpy.crypto import WeChatCrypto
from wechatpy.events import EVENT_TYPES
from wechatpy.exceptions import (
    InvalidAppIdException,
    InvalidSignatureException,
    WeChatClientException,
)
from wechatpy.messages import MESSAGE_TYPES, BaseMessage, UnknownMessage
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

from bot.channels.base import Outlet, Wiring
from bot.channels.web import client_of, read_limited
from bot.channels.wechat_token import DbTokenStorage, SharedTokenClient
from bot.intake import Intake
from bot.outbound import OutboundMessage, PermanentFailure, TemporaryFailure
from bot.settings import Settings
from data.clock import Clock, local
from data.db import Sessions, reading, unit_of_work
from flows.dialog.turn import Inbound, Reply
from flows.domain.outbox import reply_key

log = logging.getLogger(__name__)

CHANNEL = "wechat"
MAX_BODY = 64 * 1024  # a WeChat callback is well under 2 KB
MAX_REPLY_BYTES = 2048  # passive and customer-service text limit
REPLY_TIMEOUT = 4.5  # seconds; WeChat gives up (and retries) at 5
WINDOW = timedelta(hours=48) - timedelta(minutes=10)  # the customer-service window, with a margin
EMPTY = "success"  # WeChat's "no passive reply, do not retry"
REPLAY_WINDOW = 300  # seconds: a callback's timestamp must be this close to the clock
MAX_NONCE = 64  # WeChat's nonces are about ten digits
MAX_OPENID = 64  # openids are 28 characters; ids made from one (events: openid:time:event) fit 128
NUMBERS: dict[str, type[int] | type[float]] = {  # fields wechatpy converts; anything else is text
    "CreateTime": int,
    "MsgId": int,
    "MsgDataId": int,
    "Location_X": float,
    "Location_Y": float,
    "Scale": float,
    "Latitude": float,
    "Longitude": float,
    "Precision": float,
}

UNSUPPORTED = (
    "抱歉，目前只能处理文字、图片、语音和位置消息。请用文字描述您的问题，也可以直接发照片。"
    "紧急情况请直接拨打物业24小时值班电话。"
)
NO_RECOGNITION = "抱歉，这条语音没能识别出文字，请您改用文字描述一下，谢谢！"
MENU = {  # custom-menu CLICK keys; any other key is taken as the words themselves
    "REPAIR": "我要报修",
    "COMPLAINT": "我要投诉",
    "FEE": "查询物业费",
    "BOOKING": "预约服务",
    "STATUS": "查询进度",
    "HUMAN": "转人工",
    "HELP": "帮助",
    "BIND": "绑定",
}
IGNORED_EVENTS = frozenset(
    {"unsubscribe", "view", "location", "templatesendjobfinish", "masssendjobfinish", "view_miniprogram"}
)


class BadCallback(ValueError):
    """The body is not a callback we accept; the message says why (logged, 400). It names fields,
    never their values: those are openids and residents' words."""


class WrongSender(ValueError):
    """The query's ``openid`` is missing or is not the body's ``FromUserName`` (403)."""


# -- converting callbacks ---------------------------------------------------------------------------
def to_inbound(message: BaseMessage, now: datetime) -> Inbound | Reply | None:
    """An ``Inbound`` for the engine, a canned ``Reply`` (unsupported types), or None (ignore)."""
    sender = message.source
    if not sender:
        raise BadCallback("FromUserName missing")
    kind = message.type
    if kind == "event":
        return _event(message, sender, now)
    msg_id = _message_id(message)
    if kind == "text":
        return Inbound(CHANNEL, sender, message.content or "", now, msg_id)
    if kind == "image":
        reference = message.image or f"wechat-media:{message.media_id}"
        return Inbound(CHANNEL, sender, "", now, msg_id, photos=(reference,))
    if kind == "voice":
        words = (message.recognition or "").strip()
        return Inbound(CHANNEL, sender, words, now, msg_id) if words else Reply(NO_RECOGNITION)
    if kind == "location":
        place = f"位置：{message.location_x},{message.location_y}" + (
            f" {message.label}" if message.label else ""
        )
        return Inbound(CHANNEL, sender, place, now, msg_id)
    log.info("wechat: unsupported message type %r", kind)
    return Reply(UNSUPPORTED)  # video, shortvideo, link, file, mini programs, ...


def _event(message: BaseMessage, sender: str, now: datetime) -> Inbound | None:
    event = (message.event or "").lower()
    msg_id = f"{sender}:{message.time}:{event}"
    if event == "subscribe":
        return Inbound(CHANNEL, sender, "绑定", now, msg_id)  # welcome + binding prompt (or a greeting)
    if event in ("subscribe_scan", "scan"):
        scene = str(message.scene_id or "").strip()  # a QR code carrying a binding code
        return Inbound(CHANNEL, sender, scene or "绑定", now, msg_id)
    if event == "click":
        key = str(message.key or "").strip()
        return Inbound(CHANNEL, sender, MENU.get(key.upper(), key), now, msg_id) if key else None
    if event not in IGNORED_EVENTS:
        log.info("wechat: ignoring event %r", event)
    return None


def _message_id(message: BaseMessage) -> str:
    msg_id = message._data.get("MsgId")
    return str(msg_id) if msg_id else f"{message.source}:{message._data.get('CreateTime', '')}"


def render(reply: Reply) -> str:
    """Text with the choices as tappable links: a tap sends the choice's value as the next message."""
    if not reply.buttons:
        return reply.text
    links = "  ".join(
        f'<a href="weixin://bizmsgmenu?msgmenucontent={html.escape(b.value)}&msgmenuid={i}">{html.escape(b.label)}</a>'
        for i, b in enumerate(reply.buttons, start=1)
    )
    return f"{reply.text}\n{links}"


def cut(text: str, limit: int = MAX_REPLY_BYTES) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-8 bytes."""
    if len(text.encode()) <= limit:
        return [text]
    pieces, start, size = [], 0, 0
    for index, char in enumerate(text):
        width = len(char.encode())
        if size + width > limit:
            pieces.append(text[start:index])
            start, size = index, 0
        size += width
    return [*pieces, text[start:]]


def pack(replies: Sequence[Reply]) -> tuple[str, list[str]]:
    """The passive reply (one text, at most 2048 bytes) and what does not fit, for the outbox."""
    pieces = [piece for reply in replies for piece in cut(render(reply))]
    passive, rest = "", list(pieces)
    while rest:
        candidate = f"{passive}\n\n{rest[0]}" if passive else rest[0]
        if len(candidate.encode()) > MAX_REPLY_BYTES:
            break
        passive = candidate
        rest.pop(0)
    return passive, rest


# -- the callback endpoint --------------------------------------------------------------------------
class CallbackGuard:
    """The replay defence ``/wechat`` and ``/wecom`` share: a signed timestamp within
    ``REPLAY_WINDOW`` of the clock, and each (timestamp, nonce) pair taken with one body only.

    WeChat's plaintext ``signature`` covers only token, timestamp and nonce, not the body, so a signed
    query seen in any log could carry a body of the attacker's choosing: a second body under the
    same pair is refused. The very same body again is let through, because WeChat and WeCom retry a
    callback they got no answer for within 5 s (up to three times) and a retry must still get the
    recorded answer (the MsgId claim answers it and creates nothing). What this leaves open: an
    exact copy of a request, within the five minutes, gets the same answer as the original. In
    safe mode that answer is encrypted; in plain mode it is readable by whoever holds the request,
    which is why plaintext is refused once an AES key is set (docs/channels.md).
    Pairs are kept for twice the window (shared by every server process): a pair cannot pass the
    timestamp check after that."""

    def __init__(self, channel: str, sessions: Sessions) -> None:
        self.channel = channel
        self.sessions = sessions
        self._purged_at: datetime | None = None

    @staticmethod
    def fresh(query: Mapping[str, str], now: datetime) -> bool:
        """The query's timestamp is a number within ``REPLAY_WINDOW`` of ``now``; its nonce usable."""
        stamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12) or not 0 < len(nonce) <= MAX_NONCE:
            return False
        return abs(now.timestamp() - int(stamp)) <= REPLAY_WINDOW

    def remember(self, timestamp: str, nonce: str, body: bytes, now: datetime) -> bool:
        """Record the pair with a hash of the body; False if it came before with another body."""
        digest = hashlib.sha256(body).hexdigest()
        with unit_of_work(self.sessions) as store:
            if self._purged_at is None or (now - self._purged_at).total_seconds() > REPLAY_WINDOW:
                store.purge_callbacks(now - timedelta(seconds=2 * REPLAY_WINDOW))
                self._purged_at = now
            return store.claim_callback(self.channel, timestamp, nonce, digest, now)


@dataclass
class _Pending:
    gave_up: bool = False  # the HTTP answer went out without the replies


class WeChatChannel:
    def __init__(self, settings: Settings, intake: Intake) -> None:
        self.settings = settings
        self.intake = intake
        self.token = settings.wechat_token
        self.crypto = (
            WeChatCrypto(settings.wechat_token, settings.wechat_aes_key, settings.wechat_app_id)
            if settings.wechat_aes_key
            else None
        )
        self.allow_plaintext = settings.wechat_allow_plaintext
        if self.crypto is not None and self.allow_plaintext:
            log.warning(
                "WECHAT_ALLOW_PLAINTEXT is on: plaintext callbacks are taken although WECHAT_AES_KEY is"
                " set (their bodies are not signed); turn it off once WeChat is in safe mode"
            )
        self.reply_timeout = REPLY_TIMEOUT
        self._late: set[asyncio.Task[Any]] = set()
        self.guard = CallbackGuard(CHANNEL, intake.app.sessions)

    async def verify(self, request: Request) -> Response:
        """GET: WeChat's server-configuration check, echo ``echostr`` if the signature holds."""
        if not self._signed(request):
            return self._refuse(request, "signature", 403)
        if not self.guard.fresh(request.query_params, self.intake.app.clock.now()):
            return self._refuse(request, "stale", 403)
        return PlainTextResponse(request.query_params.get("echostr", ""))

    async def callback(self, request: Request) -> Response:
        if not self._signed(request):
            return self._refuse(request, "signature", 403)
        if not self.guard.fresh(request.query_params, self.intake.app.clock.now()):
            return self._refuse(request, "stale", 403)
        query = request.query_params
        encrypted = query.get("encrypt_type", "").lower() == "aes"
        if self.crypto is not None and not encrypted and not self.allow_plaintext:
            # with an AES key the mode is ours to say, not the query's: no downgrade to plaintext
            return self._refuse(request, "plaintext", 403)
        body = await read_limited(request, MAX_BODY)
        if body is None:
            return self._refuse(request, "too_large", 413)
        try:
            message = self._parse(body, request, encrypted)
            _check_sender(query.get("openid"), message.source)
            arrived = to_inbound(message, self.intake.app.clock.now())
        except InvalidSignatureException:
            return self._refuse(request, "msg_signature", 403)
        except WrongSender as exc:
            return self._refuse(request, "openid", 403, str(exc))
        except BadCallback as exc:
            return self._refuse(request, "malformed", 400, str(exc))
        if not await self.intake.run(
            self.guard.remember, query["timestamp"], query["nonce"], body, self.intake.app.clock.now()
        ):
            return self._refuse(request, "replay", 403, "timestamp and nonce seen with another body")
        if arrived is None:
            return PlainTextResponse(EMPTY)
        if isinstance(arrived, Reply):
            return self._passive(message, [arrived], request, encrypted)
        replies = await self._answer(arrived)
        if replies is None:
            return PlainTextResponse(EMPTY)
        passive, overflow = pack(replies)
        if overflow:
            await self.intake.run(self._enqueue, arrived, overflow, "more")
        return (
            self._passive(message, [Reply(passive)], request, encrypted)
            if passive
            else PlainTextResponse(EMPTY)
        )

    def _signed(self, request: Request) -> bool:
        query = request.query_params
        try:
            check_signature(
                self.token, query.get("signature", ""), query.get("timestamp", ""), query.get("nonce", "")
            )
        except InvalidSignatureException:
            return False
        return True

    def _parse(self, body: bytes, request: Request, encrypted: bool) -> BaseMessage:
        fields = read_fields(body)
        if encrypted:
            if self.crypto is None:
                raise BadCallback("AES message but WECHAT_AES_KEY is not set")
            if not fields.get("Encrypt"):
                raise BadCallback("Encrypt missing")
            query = request.query_params
            try:
                body = self.crypto.decrypt_message(
                    body, query.get("msg_signature", ""), query.get("timestamp", ""), query.get("nonce", "")
                ).encode()
            except InvalidSignatureException:
                raise
            except (InvalidAppIdException, KeyError, TypeError, ValueError) as exc:
                raise BadCallback(f"cannot decrypt: {type(exc).__name__}") from exc
            fields = read_fields(body)
        return typed_message(fields)

    def _refuse(self, request: Request, reason: str, status: int, detail: str = "") -> Response:
        log.warning(
            "wechat callback refused (%s%s) from %s",
            reason,
            f": {detail}" if detail else "",
            client_of(request),
        )
        self.intake.metrics.rejected.labels(CHANNEL, reason).inc()
        return PlainTextResponse(
            {403: "forbidden", 413: "body too large"}.get(status, "bad request"), status_code=status
        )

    def _passive(
        self, message: BaseMessage, replies: list[Reply], request: Request, encrypted: bool
    ) -> Response:
        text, _ = pack(replies)
        xml = TextReply(source=message.target, target=message.source, content=text).render()
        if encrypted and self.crypto is not None:
            query = request.query_params
            xml = self.crypto.encrypt_message(xml, query.get("nonce", ""), query.get("timestamp") or None)
        return Response(xml, media_type="application/xml")

    # -- answering inside the 5-second limit ------------------------------------------------------
    async def _answer(self, inbound: Inbound) -> list[Reply] | None:
        """The replies within the time limit, or None: answered later through the outbox."""
        pending = _Pending()
        task = asyncio.create_task(self._process(inbound, pending))
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.reply_timeout)
        except TimeoutError:
            if task.done() and not task.cancelled():
                return task.result()
            pending.gave_up = True  # the task has not passed its check yet: it will enqueue
            self.intake.metrics.deferred.inc()
            self._late.add(task)
            task.add_done_callback(self._late.discard)
            log.info("wechat: message %s answered late through the outbox", inbound.message_id)
            return None

    async def _process(self, inbound: Inbound, pending: _Pending) -> list[Reply]:
        async with self.intake.chat(CHANNEL, inbound.external_id):
            replies = await self.intake.handle(inbound)  # a retry answered late gets [] (engine)
            if pending.gave_up:
                await self.intake.run(self._enqueue, inbound, [render(r) for r in replies], "late")
            return replies

    def _enqueue(self, inbound: Inbound, texts: list[str], tag: str) -> None:
        """Customer-service messages for what the passive reply could not carry (once per message)."""
        now = self.intake.app.clock.now()
        with unit_of_work(self.intake.app.sessions) as store:
            for index, text in enumerate(texts):
                key = reply_key(CHANNEL, str(inbound.message_id), tag, index)
                if not store.has_outbox(key):
                    store.enqueue(CHANNEL, inbound.external_id, "reply", text, now, dedupe_key=key)

    async def stop(self) -> None:
        """Let late answers finish and reach the outbox before the server goes."""
        if self._late:
            await asyncio.gather(*self._late, return_exceptions=True)


def read_fields(body: bytes) -> dict[str, str | None]:
    """The callback's fields: each child of ``<xml>`` one plain text element (None when empty).

    DTDs, entities and malformed XML are refused first (defusedxml). Then every field must appear
    once, without attributes or elements inside it: xmltodict (wechatpy's parser) would turn those into
    lists and dicts, which reached the engine and the database."""
    try:
        root = safe_xml(body, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise BadCallback(f"forbidden XML construct: {type(exc).__name__}") from exc
    except (ParseError, ValueError, TypeError) as exc:
        raise BadCallback(f"malformed XML: {exc}") from exc
    if root.tag != "xml" or root.attrib:
        raise BadCallback("the root element is not a plain <xml>")
    fields: dict[str, str | None] = {}
    for child in root:
        name = _name(child.tag)
        if name in fields:
            raise BadCallback(f"{name} repeated")
        if len(child) or child.attrib:
            raise BadCallback(f"{name} is not plain text (nested element or attribute)")
        fields[name] = (child.text or "").strip() or None
    return fields


def typed_message(fields: dict[str, str | None]) -> BaseMessage:
    """A wechatpy message from checked fields (wechatpy's ``parse_message`` without its parser)."""
    kind = (fields.get("MsgType") or "").lower()
    if not kind:
        raise BadCallback("MsgType missing")
    sender = fields.get("FromUserName")
    if not sender:
        raise BadCallback("FromUserName missing")
    if len(sender) > MAX_OPENID:
        raise BadCallback("FromUserName too long for an openid")
    if not fields.get("ToUserName"):  # the passive reply comes from it: without it, no valid reply
        raise BadCallback("ToUserName missing")
    if fields.get("CreateTime") is None:
        raise BadCallback("CreateTime missing")
    for name, number in NUMBERS.items():
        value = fields.get(name)
        if value is not None and not _is_number(value, number):
            raise BadCallback(f"{name} is not a number")
    if kind != "event":
        return MESSAGE_TYPES.get(kind, UnknownMessage)(fields)
    data = dict(fields)
    event = (data.get("Event") or "").lower()
    key = data.get("EventKey") or ""
    if event == "subscribe" and key.startswith(("scanbarcode|", "scanimage|")):
        event = data["Event"] = "subscribe_scan_product"
    elif event == "subscribe" and key.startswith("qrscene_"):
        event = data["Event"] = "subscribe_scan"
        data["EventKey"] = key[len("qrscene_") :]
    return EVENT_TYPES.get(event, UnknownMessage)(data)


def _is_number(value: str, kind: type[int] | type[float]) -> bool:
    if kind is int:
        return value.isascii() and value.isdigit() and len(value) <= 20
    try:
        return math.isfinite(float(value))
    except ValueError:
        return False


def _name(tag: object) -> str:
    """A field's name for a log line (an attacker chooses it: cut short)."""
    name = str(tag)
    return name if len(name) <= 40 else name[:40] + "…"


def _check_sender(openid: str | None, sender: str) -> None:
    """WeChat puts the sender's openid in the query of every message and event callback: a body
    naming another sender is a forgery. The query is not signed beyond timestamp and nonce either, so
    this is a second line behind the (timestamp, nonce) record, not a signature: a body swapped under
    a logged URL must also name the same resident, and a URL without openid is not WeChat's."""
    if not openid:
        raise WrongSender("openid missing from the query")
    if not hmac.compare_digest(openid.encode(), sender.encode()):
        raise WrongSender("openid is not the sender (FromUserName)")


# -- proactive messages -----------------------------------------------------------------------------
FIELD_LIMITS = {  # characters per template field type (WeChat's rules for template data)
    "thing": 20,
    "character_string": 32,
    "number": 32,
    "letter": 32,
    "symbol": 5,
    "phrase": 5,
    "name": 10,
    "phone_number": 17,
    "car_number": 8,
    "amount": 11,
    "time": 30,
    "date": 30,
}
DEFAULT_LIMIT = 200  # older templates' first/keywordN/remark
TRANSIENT = {-1, 40001, 42001, 45009, 45011}  # busy, stale token, API quota: try again later
OUT_OF_WINDOW = {45015, 45047}  # past the 48 h window / too many messages in it: use a template


@dataclass(frozen=True)
class Templates:
    """Template messages per outbox kind (``default`` for the rest), from WECHAT_TEMPLATES (JSON):
    ``{"dispatched": {"template_id": "...", "url": "", "fields": {"thing1": "{text}", "character_string2":
    "{ticket}", "time3": "{time}"}}}``; a field may be ``{"value": "...", "max": 20}``."""

    specs: dict[str, dict[str, Any]]

    @classmethod
    def parse(cls, raw: str) -> Templates:
        if not raw.strip():
            return cls({})
        specs = json.loads(raw)
        if not isinstance(specs, dict) or not all(
            isinstance(s, dict) and s.get("template_id") for s in specs.values()
        ):
            raise ValueError("WECHAT_TEMPLATES must map outbox kinds to objects with a template_id")
        return cls(specs)

    def for_kind(self, kind: str) -> dict[str, Any] | None:
        return self.specs.get(kind) or self.specs.get("default")

    def data(
        self, spec: dict[str, Any], message: OutboundMessage, now: datetime
    ) -> dict[str, dict[str, str]]:
        first, _, rest = message.text.partition("\n")
        values = {
            "text": message.text,
            "first_line": first,
            "rest": rest,
            "kind": message.kind,
            "ticket": str(message.payload.get("ticket") or ""),
            "time": f"{local(now):%Y-%m-%d %H:%M}",
            **{k: str(v) for k, v in message.payload.items() if isinstance(v, str | int | float)},
        }
        filled = {}
        for name, field in spec.get("fields", {}).items():
            template, limit = (
                (field.get("value", ""), field.get("max")) if isinstance(field, dict) else (field, None)
            )
            value = str(template).format_map(_Blank(values))
            filled[name] = {"value": shorten(value, limit or _limit(name))}
        return filled


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def _limit(field: str) -> int:
    kind = field.rstrip("0123456789")
    return FIELD_LIMITS.get(kind, DEFAULT_LIMIT)


def shorten(value: str, limit: int) -> str:
    value = " ".join(value.split())  # template fields are one line
    return value if len(value) <= limit else value[: max(limit - 1, 1)] + "…"


class WeChatSender:
    channel = CHANNEL

    def __init__(
        self, client: SharedTokenClient, sessions: Sessions, clock: Clock, templates: Templates
    ) -> None:
        self.client = client
        self.sessions = sessions
        self.clock = clock
        self.templates = templates

    async def send(self, message: OutboundMessage) -> None:
        await asyncio.to_thread(self._send, message)

    def _send(self, message: OutboundMessage) -> None:
        window = message.payload.get("cs_window_open")  # the dispatcher looks it up when it claims
        if window if window is not None else self._in_window(message.recipient):
            try:
                self._custom(message)
                return
            except WeChatClientException as exc:
                if exc.errcode not in OUT_OF_WINDOW:
                    raise _failure(exc) from exc
        self._template(message)

    def _custom(self, message: OutboundMessage) -> None:
        buttons = tuple(
            Reply.from_json({"text": "", "buttons": message.payload.get("buttons") or []}).buttons
        )
        for piece in cut(render(Reply(message.text, buttons))):
            _call(self.client.message.send_text, message.recipient, piece)

    def _template(self, message: OutboundMessage) -> None:
        spec = self.templates.for_kind(message.kind)
        if spec is None:
            raise PermanentFailure(
                "outside the 48-hour window and no template message configured (WECHAT_TEMPLATES)"
            )
        body: dict[str, Any] = {
            "touser": message.recipient,
            "template_id": spec["template_id"],
            "data": self.templates.data(spec, message, self.clock.now()),
            # WeChat sends one message per (openid, client_msg_id) within 10 minutes: a row sent again
            # after a crash between the send and its mark does not reach the resident twice
            "client_msg_id": f"propbot-outbox-{message.id}",
        }
        if spec.get("url"):
            body["url"] = spec["url"]
        try:
            _call(self.client.post, "message/template/send", data=body)
        except WeChatClientException as exc:
            raise _failure(exc) from exc

    def _in_window(self, openid: str) -> bool:
        with reading(self.sessions) as store:
            last = store.accounts.last_inbound(CHANNEL, openid)
        return last is not None and last >= self.clock.now() - WINDOW


def _call(method: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return method(*args, **kwargs)
    except requests.RequestException as exc:
        raise TemporaryFailure(f"WeChat API unreachable: {exc}") from exc


def _failure(exc: WeChatClientException) -> TemporaryFailure | PermanentFailure:
    reason = f"WeChat errcode {exc.errcode}: {exc.errmsg}"
    if exc.errcode is None or exc.errcode in TRANSIENT:
        return TemporaryFailure(reason, retry_after=3600 if exc.errcode == 45009 else None)
    return PermanentFailure(reason)  # not following, invalid openid, blocked, template rejected


# -- as a registered channel ---------------------------------------------------------------------------
class WeChat:
    """The Official Account in the registry: ``/wechat``, and with the app secret its sender (without
    one WeChat answers only passively). Nothing to start: WeChat calls us."""

    name = CHANNEL

    def __init__(self, inbound: WeChatChannel, outlets: list[Outlet]) -> None:
        self.inbound = inbound
        self._outlets = outlets

    def routes(self) -> Sequence[Route]:
        return [
            Route("/wechat", self.inbound.verify, methods=["GET"]),
            Route("/wechat", self.inbound.callback, methods=["POST"]),
        ]

    def outlets(self) -> Sequence[Outlet]:
        return self._outlets

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self.inbound.stop()


def build(wiring: Wiring) -> WeChat | None:
    app, settings = wiring.app, wiring.app.settings
    if not settings.wechat_enabled:
        return None
    outlets = []
    if settings.wechat_app_secret:
        storage = DbTokenStorage(app.sessions, app.clock)
        client = SharedTokenClient(
            settings.wechat_app_id, settings.wechat_app_secret, storage, settings.wechat_api_url
        )
        if wiring.photos is not None:
            wiring.photos.wechat = client  # residents' photos by media id, for the staff channels
        templates = Templates.parse(settings.wechat_templates)
        outlets.append(Outlet(CHANNEL, WeChatSender(client, app.sessions, app.clock, templates)))
    else:
        log.warning("WECHAT_APP_SECRET not set: WeChat replies only as passive replies, nothing proactive")
    return WeChat(WeChatChannel(settings, wiring.intake), outlets)
