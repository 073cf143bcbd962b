"""The WeCom (企业微信) self-built app: the staff channel both ways for WeChat-centred compounds.

Inbound, ``/wecom``: WeCom signs and AES-encrypts every callback (wechatpy's enterprise crypto).
GET is the URL check (the ``echostr`` decrypted and echoed); a POST is refused unless its
``msg_signature`` holds, its timestamp is within five minutes of the clock and its (timestamp, nonce)
pair was not seen before with another body (as ``/wechat``). Messages are done once per MsgId
(events: sender, time, event and key) through the store. Staff are known by their userid
(``Staff.wecom_user_id``, ``propbot staff link NAME --wecom USERID``); anyone else gets a polite
refusal. Text commands (认领 / 完成 / 升级 / 回复 单号 …) and the card buttons (``template_card_event``,
``claim:BX-…``) run the service layer's handlers, as the Telegram staff group's buttons do.

Outbound, ``WeComAppSender``: a member of the staff fan-out that turns each ``staff`` row into the
app's own ``wecom_app`` rows — a markdown post to the compound's app group chat (``appchat/send``)
and, for a ticket card, an interactive ``template_card`` to the compound's duty member
(``message/send``) — so each is paced and retried on its own and a WeCom refusal never drops a row
or holds up Telegram. The app's access token is shared by every process (``wechat_token``);
frequency answers (45009, 45033, 45047, -1) are temporary failures, retried later.

App group chats (``appchat``) take no template cards and deliver nothing back to the app: the buttons
live on the duty member's card, and staff type commands to the app itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from wechatpy.enterprise import WeChatClient as EnterpriseClient
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException, WeChatClientException

from bot.channels.web import client_of, read_limited
from bot.channels.wechat import BadCallback, CallbackGuard, cut, read_fields
from bot.channels.wechat_token import SharedToken
from bot.intake import Intake
from bot.outbound import FollowUp, OutboundMessage, PermanentFailure, TemporaryFailure
from bot.settings import Settings, SettingsError
from data.db import transaction
from data.models import Compound, Staff, Ticket
from data.store import Store
from flows import relay, services
from flows.errors import ActionError, NotFound
from flows.services import Actor
from flows.staff_commands import TICKET

log = logging.getLogger(__name__)

CHANNEL = "wecom_app"
MAX_BODY = 64 * 1024
MAX_USERID = 64
MAX_TEXT_BYTES = 2048  # text and markdown content limit
FREQUENCY = {45009, 45033, 45047, -1}  # API / per-user / per-app frequency, busy: later
FREQUENCY_PAUSE = 60.0  # seconds: WeCom's frequency limits are per minute
ACTIONS = {"认领": "claim", "接单": "claim", "完成": "done", "升级": "escalate", "回复": "reply"}
BUTTONS = [("认领", "claim"), ("完成", "done"), ("升级", "escalate")]
COMMAND = re.compile(r"^\s*(认领|接单|完成|升级|回复)\s*(.*)$", re.DOTALL)
NOT_STAFF = "抱歉，只有登记在册的物业工作人员才能通过本应用处理工单。如需开通，请联系管理处。"
HELP = (
    "可用命令（发送给本应用）：\n"
    "认领 BX-20261203-0001\n完成 BX-20261203-0001\n升级 BX-20261203-0001\n"
    "回复 BX-20261203-0001 内容 —— 转达给居民\n工单卡片上的按钮也可以直接操作。"
)
HINT = "在应用中发送：认领 {n} / 完成 {n} / 升级 {n} / 回复 {n} 内容"


# -- where a compound's staff are -------------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    """A compound's app group chat (``appchat/create``'s chatid) and its duty member's userid."""

    chat: str = ""
    duty: str = ""


def parse_routes(raw: str) -> dict[str, Route]:
    """WECOM_APP_CHATS: ``{"sunshine": {"chat": "wrkSFfCgAAxxx", "duty": "wangshifu"}}``; the key
    ``"*"`` serves compounds not named and rows without a ticket."""
    if not raw.strip():
        return {}
    try:
        found = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"WECOM_APP_CHATS is not JSON: {exc}") from exc
    if not isinstance(found, dict):
        raise SettingsError("WECOM_APP_CHATS must map compound codes to {chat, duty}")
    routes = {}
    for code, spec in found.items():
        if isinstance(spec, str):
            spec = {"chat": spec}
        if not isinstance(spec, dict) or not all(isinstance(v, str) for v in spec.values()):
            raise SettingsError(f'WECOM_APP_CHATS[{code!r}] must be {{"chat": ..., "duty": ...}}')
        routes[str(code)] = Route(spec.get("chat", ""), spec.get("duty", ""))
    return routes


def route_for(routes: dict[str, Route], code: str | None) -> Route | None:
    if code is not None and code in routes:
        return routes[code]
    return routes.get("*")


# -- the access token, shared by every process ------------------------------------------------------
class WeComTokenClient(SharedToken, EnterpriseClient):
    """wechatpy's enterprise client with the shared token."""

    def _refresh(self) -> dict[str, Any]:
        log.info("fetching a WeCom app access token")
        fetched: dict[str, Any] = self._fetch_access_token(
            url=self.API_BASE_URL + "gettoken", params={"corpid": self.corp_id, "corpsecret": self.secret}
        )
        return fetched


# -- outbound ---------------------------------------------------------------------------------------
class WeComAppSender:
    """``staff`` rows become ``wecom_app`` rows (group post, duty card); those are sent here."""

    channel = CHANNEL

    def __init__(
        self,
        client: WeComTokenClient,
        agent_id: int,
        routes: dict[str, Route],
        sessions: sessionmaker[Session],
    ) -> None:
        self.client = client
        self.agent_id = agent_id
        self.routes = routes
        self.sessions = sessions

    async def send(self, message: OutboundMessage) -> list[FollowUp] | None:
        if message.channel != CHANNEL:  # a staff row: what the app should send for it
            return await asyncio.to_thread(self._plan, message)
        await asyncio.to_thread(self._deliver, message)
        return None

    def _plan(self, message: OutboundMessage) -> list[FollowUp]:
        route = route_for(self.routes, self._compound_code(message.ticket_id))
        if route is None:
            return []  # another compound's staff: not on this app
        number = str(message.payload.get("ticket") or "")
        card = bool(number and message.payload.get("buttons"))
        text = f"{message.text}\n> {HINT.format(n=number)}" if card else message.text
        follow = []
        if route.chat:
            payload = {"chat": route.chat, "ticket": number}
            follow.append(FollowUp(CHANNEL, "group", text, payload, tag="wecom_app:group"))
        if card and route.duty:
            payload = {"user": route.duty, "ticket": number, "task_id": f"propbot-{message.id}"}
            follow.append(FollowUp(CHANNEL, "card", message.text, payload, tag="wecom_app:card"))
        return follow

    def _compound_code(self, ticket_id: int | None) -> str | None:
        if ticket_id is None:
            return None
        with self.sessions() as session:
            code: str | None = session.scalar(
                select(Compound.code)
                .join(Ticket, Ticket.compound_id == Compound.id)
                .where(Ticket.id == ticket_id)
            )
            return code

    def _deliver(self, message: OutboundMessage) -> None:
        payload = message.payload
        if message.kind == "group":
            body = {"chatid": payload.get("chat") or message.recipient, "msgtype": "markdown"}
            _call(
                self.client.post,
                "appchat/send",
                data={**body, "markdown": {"content": markdown(message.text)}},
            )
        elif message.kind == "card":
            _call(self.client.message.send, self.agent_id, payload["user"], msg=self._card(message))
        elif message.kind == "card_update":
            body = {
                "userids": [payload["user"]],
                "agentid": self.agent_id,
                "response_code": payload["response_code"],
                "button": {"replace_name": payload["replace_name"]},
            }
            _call(self.client.post, "message/update_template_card", data=body)
        else:  # a reply to a staff member's command
            user = payload.get("user") or message.recipient
            for piece in cut(message.text, MAX_TEXT_BYTES):
                _call(self.client.message.send_text, self.agent_id, user, piece)

    @staticmethod
    def _card(message: OutboundMessage) -> dict[str, Any]:
        """A ``button_interaction`` card: the first line as title, the rest as the text, three buttons."""
        number = str(message.payload["ticket"])
        first, _, rest = message.text.partition("\n")
        card = {
            "card_type": "button_interaction",
            "main_title": {"title": first[:26], "desc": number},
            "sub_title_text": (rest or first)[:112],
            "task_id": str(message.payload["task_id"])[:128],
            "button_list": [
                {"text": label, "style": 1 if key == "claim" else 2, "key": f"{key}:{number}"}
                for label, key in BUTTONS
            ],
        }
        return {"msgtype": "template_card", "template_card": card}


def markdown(text: str) -> str:
    first, _, rest = text.partition("\n")
    body = f"**{first}**" + (f"\n{rest}" if rest else "")
    raw = body.encode()
    return body if len(raw) <= MAX_TEXT_BYTES else raw[: MAX_TEXT_BYTES - 3].decode(errors="ignore") + "…"


def _call(method: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return method(*args, **kwargs)
    except requests.RequestException as exc:
        raise TemporaryFailure(f"WeCom API unreachable: {exc}") from exc
    except WeChatClientException as exc:
        raise failure(exc) from exc


def failure(exc: WeChatClientException) -> TemporaryFailure | PermanentFailure:
    reason = f"WeCom errcode {exc.errcode}: {exc.errmsg}"
    if exc.errcode is None:  # HTTP trouble on the token fetch
        return TemporaryFailure(reason)
    if int(exc.errcode) in FREQUENCY:
        return TemporaryFailure(reason, retry_after=FREQUENCY_PAUSE if exc.errcode != -1 else None)
    return PermanentFailure(reason)  # not in the app's visible range, chat gone, card rejected


# -- inbound ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arrival:
    """One callback, read: who, its dedupe id, the command (action and the rest) or None."""

    user: str
    msg_id: str
    action: str | None  # claim | done | escalate | reply | help; None: ignore
    rest: str = ""  # the ticket number and, for 回复, the words
    response_code: str = ""  # a card button's: one update of that card


class WeComAppChannel:
    def __init__(self, settings: Settings, intake: Intake, routes: dict[str, Route]) -> None:
        self.intake = intake
        self.corp_id = settings.wecom_corp_id
        self.agent_id = settings.wecom_agent_id
        self.crypto = WeChatCrypto(
            settings.wecom_app_token, settings.wecom_app_aes_key, settings.wecom_corp_id
        )
        self.routes = routes
        self.guard = CallbackGuard(CHANNEL, intake.app.sessions)

    async def verify(self, request: Request) -> Response:
        """GET: WeCom's check of the callback URL; the decrypted ``echostr`` if signed and fresh."""
        query = request.query_params
        if not self.guard.fresh(request.query_params, self.intake.app.clock.now()):
            return self._refuse(request, "stale", 403)
        try:
            echo = self.crypto.check_signature(
                query.get("msg_signature", ""), query["timestamp"], query["nonce"], query.get("echostr", "")
            )
        except InvalidSignatureException:
            return self._refuse(request, "msg_signature", 403)
        except (InvalidCorpIdException, KeyError, TypeError, ValueError) as exc:
            return self._refuse(request, "malformed", 400, f"echostr: {type(exc).__name__}")
        return PlainTextResponse(str(echo))

    async def callback(self, request: Request) -> Response:
        if not self.guard.fresh(request.query_params, self.intake.app.clock.now()):
            return self._refuse(request, "stale", 403)
        body = await read_limited(request, MAX_BODY)
        if body is None:
            return self._refuse(request, "too_large", 413)
        query = request.query_params
        try:
            arrival = self._read(body, query.get("msg_signature", ""), query["timestamp"], query["nonce"])
        except InvalidSignatureException:
            return self._refuse(request, "msg_signature", 403)
        except BadCallback as exc:
            return self._refuse(request, "malformed", 400, str(exc))
        if not await self.intake.run(
            self.guard.remember, query["timestamp"], query["nonce"], body, self.intake.app.clock.now()
        ):
            return self._refuse(request, "replay", 403, "timestamp and nonce seen with another body")
        if arrival.action is not None:
            await self.intake.run(self._handle, arrival, self.intake.app.clock.now())
        return PlainTextResponse("")  # no passive reply: answers go through the outbox

    def _read(self, body: bytes, signature: str, timestamp: str, nonce: str) -> Arrival:
        outer = read_fields(body)  # defusedxml: no DTD, no entities, flat
        if not outer.get("Encrypt"):
            raise BadCallback("Encrypt missing")
        try:
            plain = self.crypto.decrypt_message({"Encrypt": outer["Encrypt"]}, signature, timestamp, nonce)
        except InvalidSignatureException:
            raise
        except (InvalidCorpIdException, KeyError, TypeError, ValueError) as exc:
            raise BadCallback(f"cannot decrypt: {type(exc).__name__}") from exc
        fields = read_fields(plain.encode())
        if fields.get("ToUserName") != self.corp_id:
            raise BadCallback("ToUserName is not our corp id")
        agent = fields.get("AgentID")
        if self.agent_id and agent is not None and agent != str(self.agent_id):
            raise BadCallback("AgentID is not our app")
        for name in ("CreateTime", "MsgId", "AgentID"):
            value = fields.get(name)
            if value is not None and not (value.isascii() and value.isdigit() and len(value) <= 20):
                raise BadCallback(f"{name} is not a number")
        return to_arrival(parse_message(plain), fields)

    def _refuse(self, request: Request, reason: str, status: int, detail: str = "") -> Response:
        log.warning(
            "wecom callback refused (%s%s) from %s",
            reason,
            f": {detail}" if detail else "",
            client_of(request),
        )
        self.intake.metrics.rejected.labels(CHANNEL, reason).inc()
        return PlainTextResponse(
            {403: "forbidden", 413: "body too large"}.get(status, "bad request"), status_code=status
        )

    # -- doing it -------------------------------------------------------------------------------------
    def _handle(self, arrival: Arrival, now: datetime) -> None:
        with transaction(self.intake.app.sessions) as session:
            store = Store(session)
            if not store.claim_inbound(CHANNEL, arrival.msg_id, arrival.user, now):
                return  # WeCom's retry: done once, answered once
            staff = store.staff_by_wecom(arrival.user)
            if staff is None:
                log.info("wecom app: %s from an unregistered userid refused", arrival.action)
                self._reply(store, arrival, NOT_STAFF, now)
                return
            try:
                with session.begin_nested():  # a refused step leaves nothing behind
                    answer = self._act(store, staff, arrival, now)
            except ActionError as exc:
                answer = str(exc)
            self._reply(store, arrival, answer, now)

    def _act(self, store: Store, staff: Staff, arrival: Arrival, now: datetime) -> str:
        if arrival.action == "help":
            return HELP
        found = TICKET.search(arrival.rest)
        if found is None:
            return "请写上工单号，例如：认领 BX-20261203-0001\n\n" + HELP
        number = "-".join(found.groups()).upper()
        ticket = store.ticket(number)
        if ticket is None or ticket.compound_id != staff.compound_id:  # another compound's: not shown
            raise NotFound(f"没有找到工单 {number}，请核对单号。")
        if arrival.action == "reply":
            return self._relay(store, staff, ticket, arrival.rest[found.end() :].strip(), now)
        handler = {"claim": services.claim, "done": services.done, "escalate": services.escalate}
        result = handler[str(arrival.action)](store, Actor.of(staff), ticket, now)
        if result.status is not None:
            self._tell_group(store, staff, ticket, f"【{number}】{result.status}", arrival, now)
            if arrival.response_code:  # the card pressed shows what happened on its button
                self._update_card(store, arrival, ticket, result.status, now)
        return result.text

    @staticmethod
    def _relay(store: Store, staff: Staff, ticket: Ticket, words: str, now: datetime) -> str:
        if not words:
            raise ActionError(f"请写上要转达的话，例如：回复 {ticket.number} 师傅下午两点上门")
        if ticket.account_id is None and ticket.unit_id is None:
            return f"工单 {ticket.number} 没有可联系的居民账号，请电话联系。"
        relay.relay_to_resident(store, ticket, staff, words, None, now)
        return f"已转达给居民（{ticket.number}），居民的回复会发到员工群。"

    def _tell_group(
        self, store: Store, staff: Staff, ticket: Ticket, text: str, arrival: Arrival, now: datetime
    ) -> None:
        route = route_for(self.routes, staff.compound.code)
        if route is None or not route.chat:
            return
        payload = {"chat": route.chat, "ticket": ticket.number}
        key = f"{CHANNEL}:{arrival.msg_id}:group"[:128]
        store.enqueue(CHANNEL, route.chat, "group", text, now, payload=payload, ticket=ticket, dedupe_key=key)

    @staticmethod
    def _update_card(store: Store, arrival: Arrival, ticket: Ticket, status: str, now: datetime) -> None:
        payload = {"user": arrival.user, "response_code": arrival.response_code, "replace_name": status[:20]}
        key = f"{CHANNEL}:{arrival.msg_id}:card"[:128]
        store.enqueue(
            CHANNEL, arrival.user, "card_update", status, now, payload=payload, ticket=ticket, dedupe_key=key
        )

    @staticmethod
    def _reply(store: Store, arrival: Arrival, text: str, now: datetime) -> None:
        if not text:
            return
        key = f"{CHANNEL}:{arrival.msg_id}:reply"[:128]
        store.enqueue(
            CHANNEL, arrival.user, "reply", text, now, payload={"user": arrival.user}, dedupe_key=key
        )


def to_arrival(message: Any, fields: dict[str, str | None]) -> Arrival:
    """A wechatpy enterprise message (``parse_message``) as a command, or an Arrival to ignore."""
    user = str(message.source or "")
    if not user or len(user) > MAX_USERID:
        raise BadCallback("FromUserName missing or too long for a userid")
    created = fields.get("CreateTime") or ""
    if message.type == "text":
        msg_id = str(fields.get("MsgId") or f"{user}:{created}")
        return _command(user, msg_id, str(message.content or ""))
    event = (fields.get("Event") or "").lower()
    key = fields.get("EventKey") or ""
    msg_id = f"{user}:{created}:{event}:{key}"[:128]
    if event == "template_card_event":
        action, _, number = key.partition(":")
        if action not in ("claim", "done", "escalate"):
            return Arrival(user, msg_id, None)
        return Arrival(user, msg_id, action, number, fields.get("ResponseCode") or "")
    if message.type == "event":
        return Arrival(user, msg_id, None)  # entering the app, menu views, ...
    return Arrival(user, f"{user}:{created}:{message.type}", "help")  # a photo, a voice message: say how


def _command(user: str, msg_id: str, text: str) -> Arrival:
    found = COMMAND.match(text)
    if found is None:
        return Arrival(user, msg_id, "help")
    return Arrival(user, msg_id, ACTIONS[found.group(1)], found.group(2).strip())
