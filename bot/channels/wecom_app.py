"""The WeCom (企业微信) self-built app: the staff channel both ways for WeChat-centred compounds.

Inbound, ``/wecom``: WeCom signs and AES-encrypts every callback (wechatpy's enterprise crypto).
GET is the URL check (the ``echostr`` decrypted and echoed); a POST is refused unless its
``msg_signature`` holds, its timestamp is within five minutes of the clock and its (timestamp, nonce)
pair was not seen before with another body (as ``/wechat``). Messages are done once per MsgId
(events: sender, time, event and key) through the store. Staff are known by their userid
(``Staff.wecom_user_id``, ``propbot staff link NAME --wecom USERID``); anyone else gets a polite
refusal. Text commands (认领 / 完成 / 升级 / 转派 / 回复 单号 …) and the card buttons
(``template_card_event``, ``claim:BX-…``; 转派's choices ``to:BX-…:STAFF_ID``) run the service
layer's handlers, as the Telegram staff group's buttons do. What a step did shows on every card:
the pressed one, the duty card (the code ``message/send`` gave it) and, through one ``card_state``
staff row (``flows.services.cards``), the Telegram group's.

Outbound, ``WeComAppSender``: a member of the staff fan-out that turns each ``staff`` row into the
app's own ``wecom_app`` rows — a markdown post to the compound's app group chat (``appchat/send``)
and, for a ticket card, an interactive ``template_card`` to the compound's duty member
(``message/send``) — so each is paced and retried on its own and a WeCom refusal never drops a row
or holds up Telegram. The app's access token is shared by every process (``wechat_token``);
frequency answers (45009, 45033, 45047, -1) are temporary failures, retried later; each member is
paced below WeCom's silent per-member limits by the dispatcher (``bot.ratelimit.WECOM_MEMBER``).
Where template cards are not allowed (WECOM_APP_CARDS=textcard, or WeCom refusing one) the duty
card is a ``textcard`` with a signed, expiring link to the ticket on the desk (``bot.desk.links``).

App group chats (``appchat``) take no template cards and deliver nothing back to the app: the buttons
live on the duty member's card, and staff type commands to the app itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import requests
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route as HttpRoute
from wechatpy.enterprise import WeChatClient as EnterpriseClient
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.enterprise.exceptions import InvalidCorpIdException
from wechatpy.exceptions import InvalidSignatureException, WeChatClientException

from bot.app import App
from bot.channels.base import STAFF, Outlet, Wiring
from bot.channels.web import client_of, read_limited
from bot.channels.wechat import BadCallback, CallbackGuard, cut, read_fields
from bot.channels.wechat_token import DbTokenStorage, SharedToken
from bot.desk.links import DeskLinks
from bot.intake import Intake
from bot.outbound import FollowUp, OutboundMessage, PermanentFailure, TemporaryFailure
from bot.settings import Settings, SettingsError
from data.clock import Clock
from data.db import Sessions, reading, unit_of_work
from data.models import Staff, Ticket
from data.store import Store
from flows import services
from flows.domain import relay
from flows.domain.errors import ActionError, NotFound
from flows.services import Actor, Result
from flows.services.cards import CARD_STATE, show_state
from flows.services.staff_commands import TICKET

log = logging.getLogger(__name__)

CHANNEL = "wecom_app"
MAX_BODY = 64 * 1024
MAX_USERID = 64
MAX_TEXT_BYTES = 2048  # text and markdown content limit
FREQUENCY = {45009, 45033, 45047, -1}  # API / per-user / per-app frequency, busy: later
FREQUENCY_PAUSE = 60.0  # seconds: WeCom's frequency limits are per minute
TEMPLATE_REFUSED = {40008, 48002}  # template_card not taken (message type / API not allowed): textcard
CARD_CODE_HOURS = 72  # a card's response_code updates it once within this (update_template_card)
MAX_CHOICES = 6  # buttons a button_interaction card holds
ACTIONS = {
    "认领": "claim",
    "接单": "claim",
    "完成": "done",
    "升级": "escalate",
    "转派": "reassign",
    "回复": "reply",
}
BUTTONS = [("认领", "claim"), ("完成", "done"), ("升级", "escalate"), ("转派", "reassign")]
PRESSES = frozenset({"claim", "done", "escalate", "reassign", "to"})  # "to:NUMBER:STAFF_ID": a choice
COMMAND = re.compile(r"^\s*(认领|接单|完成|升级|转派|回复)\s*(.*)$", re.DOTALL)
NOT_STAFF = "抱歉，只有登记在册的物业工作人员才能通过本应用处理工单。如需开通，请联系管理处。"
HELP = (
    "可用命令（发送给本应用）：\n"
    "认领 BX-20261203-0001\n完成 BX-20261203-0001\n升级 BX-20261203-0001\n"
    "转派 BX-20261203-0001 张三 —— 交给另一位师傅（不写姓名：列出可选的人）\n"
    "回复 BX-20261203-0001 内容 —— 转达给居民\n工单卡片上的按钮也可以直接操作。"
)
HINT = "在应用中发送：认领 {n} / 完成 {n} / 升级 {n} / 转派 {n} 姓名 / 回复 {n} 内容"


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
@dataclass(frozen=True)
class CardStyle:
    """How duty cards go: template cards with buttons, or ``textcard`` s linking to the desk."""

    textcards: bool = False  # WECOM_APP_CARDS=textcard
    links: DeskLinks | None = None  # DESK_URL set: the ticket's page on the desk, signed
    clock: Clock | None = None  # the links' expiry


def card_style(app: App) -> CardStyle:
    settings = app.settings
    if settings.wecom_app_cards not in ("template", "textcard"):
        raise SettingsError("WECOM_APP_CARDS must be template or textcard")
    links = None
    if settings.desk_url:
        links = DeskLinks(app.sessions, settings.desk_secret, settings.desk_url, settings.desk_link_hours)
    return CardStyle(settings.wecom_app_cards == "textcard", links, app.clock)


class WeComAppSender:
    """``staff`` rows become ``wecom_app`` rows (group post, duty card); those are sent here.

    A duty card's ``response_code`` (message/send's answer) is kept with the token store for
    ``CARD_CODE_HOURS``: a ticket claimed by a typed command or in the Telegram group updates the card
    with it (once, as WeCom allows)."""

    channel = CHANNEL

    def __init__(
        self,
        client: WeComTokenClient,
        agent_id: int,
        routes: dict[str, Route],
        sessions: Sessions,
        style: CardStyle | None = None,
    ) -> None:
        self.client = client
        self.agent_id = agent_id
        self.routes = routes
        self.sessions = sessions
        self.style = style or CardStyle()
        self.textcards = self.style.textcards  # turned on when WeCom refuses a template card

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
        if message.kind == CARD_STATE:
            return self._plan_state(message, route, number)
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

    @staticmethod
    def _plan_state(message: OutboundMessage, route: Route, number: str) -> list[FollowUp]:
        """A ticket worked in another staff channel (the Telegram group): the group chat is told and
        the duty card shows it; worked here, the app has done both already."""
        if message.payload.get("origin") == CHANNEL:
            return []
        status = str(message.payload.get("status") or "")
        payload = {"card": number, "replace_name": status[:20]}
        follow = [FollowUp(CHANNEL, "card_update", status, payload, tag="wecom_app:card_update")]
        if route.chat:
            payload = {"chat": route.chat, "ticket": number}
            follow.append(FollowUp(CHANNEL, "group", message.text, payload, tag="wecom_app:group"))
        return follow

    def _compound_code(self, ticket_id: int | None) -> str | None:
        if ticket_id is None:
            return None
        with reading(self.sessions) as store:
            return store.views.compound_code_of_ticket(ticket_id)

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
            self._duty_card(message)
        elif message.kind == "choices":
            self._choices(message)
        elif message.kind == "card_update":
            self._update(message)
        else:  # a reply to a staff member's command
            self._text(payload.get("user") or message.recipient, message.text)

    def _text(self, user: str, text: str) -> None:
        for piece in cut(text, MAX_TEXT_BYTES):
            _call(self.client.message.send_text, self.agent_id, user, piece)

    def _duty_card(self, message: OutboundMessage) -> None:
        number, user = str(message.payload["ticket"]), str(message.payload["user"])
        buttons = [(label, f"{key}:{number}") for label, key in BUTTONS]
        sent = self._template(message, buttons)
        if sent is None:
            self._textcard(message, user, number)
            return
        code = sent.get("response_code")
        if code:  # one update of this card later, from a typed command or the Telegram group
            record = json.dumps({"user": user, "code": code})
            self.client.session.set(card_key(number), record, ttl=CARD_CODE_HOURS * 3600)

    def _choices(self, message: OutboundMessage) -> None:
        """The people a ticket can be handed to, as buttons (转派); as words where cards are not taken."""
        buttons = [(str(label), str(key)) for label, key in message.payload["buttons"]]
        if self._template(message, buttons) is None:
            self._text(str(message.payload["user"]), message.payload.get("fallback") or message.text)

    def _template(self, message: OutboundMessage, buttons: list[tuple[str, str]]) -> dict[str, Any] | None:
        """message/send's answer for a button card; None where template cards are not taken (the
        setting, or WeCom's refusal: then textcards from now on, and said so in the log)."""
        if self.textcards:
            return None
        msg = _card(message, buttons)
        try:
            sent: dict[str, Any] = self.client.message.send(self.agent_id, message.payload["user"], msg=msg)
        except requests.RequestException as exc:
            raise TemporaryFailure(f"WeCom API unreachable: {exc}") from exc
        except WeChatClientException as exc:
            if exc.errcode is None or int(exc.errcode) not in TEMPLATE_REFUSED:
                raise failure(exc) from exc
            log.warning("WeCom refused a template card (errcode %s): textcards from now on", exc.errcode)
            self.textcards = True
            return None
        return sent

    def _textcard(self, message: OutboundMessage, user: str, number: str) -> None:
        """A ``textcard`` opening the ticket's page on the desk (a signed, expiring link); without
        DESK_URL, the card's words with the commands to type."""
        links, clock = self.style.links, self.style.clock
        if links is None or clock is None:
            self._text(user, f"{message.text}\n{HINT.format(n=number)}")
            return
        first, _, rest = message.text.partition("\n")
        card = {
            "title": clip(first, 128),
            "description": clip(f"{rest or first}\n{HINT.format(n=number)}", 512),
            "url": links.for_ticket(number, clock.now()),
            "btntxt": "详情",
        }
        _call(self.client.message.send, self.agent_id, user, msg={"msgtype": "textcard", "textcard": card})

    def _update(self, message: OutboundMessage) -> None:
        """A card's button shows what happened: the pressed card's code, or the duty card's kept
        one (used up: WeCom takes each code once)."""
        payload = message.payload
        user, code = payload.get("user"), payload.get("response_code")
        key = card_key(str(payload.get("card") or ""))
        if not code:
            kept = self.client.session.get(key)
            if not kept:
                log.info("WeCom card of %s not updated: no card code left", payload.get("card"))
                return
            card = json.loads(kept)
            user, code = card["user"], card["code"]
        body = {
            "userids": [user],
            "agentid": self.agent_id,
            "response_code": code,
            "button": {"replace_name": payload["replace_name"]},
        }
        try:
            _call(self.client.post, "message/update_template_card", data=body)
        except PermanentFailure as exc:  # a spent or expired code: the card stays as it is
            log.warning("WeCom card of %s not updated: %s", payload.get("card") or "a ticket", exc)
        if not payload.get("response_code"):
            self.client.session.delete(key)


def card_key(number: str) -> str:
    return f"wecom_card:{number}"


def _card(message: OutboundMessage, buttons: list[tuple[str, str]]) -> dict[str, Any]:
    """A ``button_interaction`` card: the first line as title, the rest as the text, the buttons."""
    number = str(message.payload["ticket"])
    first, _, rest = message.text.partition("\n")
    card = {
        "card_type": "button_interaction",
        "main_title": {"title": first[:26], "desc": number},
        "sub_title_text": (rest or first)[:112],
        "task_id": str(message.payload["task_id"])[:128],
        "button_list": [
            {"text": label[:10], "style": 1 if n == 0 else 2, "key": key}
            for n, (label, key) in enumerate(buttons)
        ],
    }
    return {"msgtype": "template_card", "template_card": card}


def clip(text: str, limit: int) -> str:
    """``text`` within ``limit`` UTF-8 bytes (WeCom counts bytes)."""
    raw = text.encode()
    return text if len(raw) <= limit else raw[: limit - 3].decode(errors="ignore") + "…"


def markdown(text: str) -> str:
    first, _, rest = text.partition("\n")
    return clip(f"**{first}**" + (f"\n{rest}" if rest else ""), MAX_TEXT_BYTES)


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
        kind = fields.get("MsgType") or ""
        if not kind or (kind.lower() == "event" and not fields.get("Event")):
            raise BadCallback("MsgType or Event missing")  # wechatpy's parser fails on these (fuzzing)
        try:
            message = parse_message(plain)
        except (KeyError, AttributeError, TypeError, ValueError) as exc:
            raise BadCallback(f"not a WeCom message: {type(exc).__name__}") from exc
        return to_arrival(message, fields)

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
        with unit_of_work(self.intake.app.sessions) as store:
            if not store.claim_inbound(CHANNEL, arrival.msg_id, arrival.user, now):
                return  # WeCom's retry: done once, answered once
            staff = store.staff_by_wecom(arrival.user)
            if staff is None:
                log.info("wecom app: %s from an unregistered userid refused", arrival.action)
                self._reply(store, arrival, NOT_STAFF, now)
                return
            try:
                with store.savepoint():  # a refused step leaves nothing behind
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
        ticket = store.tickets.by_number(number)
        if ticket is None or ticket.compound_id != staff.compound_id:  # another compound's: not shown
            raise NotFound(f"没有找到工单 {number}，请核对单号。")
        words = arrival.rest[found.end() :].strip()
        if arrival.action == "reply":
            return self._relay(store, staff, ticket, words, now)
        if arrival.action in ("reassign", "to"):
            result = self._reassign(store, staff, ticket, arrival, words, now)
            if isinstance(result, str):
                return result  # the choices went as a card
        else:
            handler = {"claim": services.claim, "done": services.done, "escalate": services.escalate}
            result = handler[str(arrival.action)](store, Actor.of(staff), ticket, now)
        if result.status is not None:
            self._show(store, staff, ticket, result.status, arrival, now)
        return result.text

    def _show(
        self, store: Store, staff: Staff, ticket: Ticket, status: str, arrival: Arrival, now: datetime
    ) -> None:
        """What happened, everywhere staff look: the app group chat, the card pressed and the duty
        card (its kept code, when it was not the one pressed), the other staff channels' cards."""
        self._tell_group(store, staff, ticket, f"【{ticket.number}】{status}", arrival, now)
        if arrival.response_code:
            self._update_card(store, arrival, ticket, status, now, {"user": arrival.user})
        if not arrival.response_code or arrival.action == "to":  # typed, or the choices card
            self._update_card(store, arrival, ticket, status, now, {"card": ticket.number}, "duty")
        show_state(store, ticket, status, CHANNEL, f"{CHANNEL}:{arrival.msg_id}:state", now)

    def _reassign(
        self, store: Store, staff: Staff, ticket: Ticket, arrival: Arrival, words: str, now: datetime
    ) -> Result | str:
        """转派: to the person chosen on the choices card (``to``) or named after the number; with
        no name, the choices as a card."""
        actor = Actor.of(staff)
        if arrival.action == "to":
            target = words.lstrip(":")  # a staff id: the choices card's keys carry nothing else
            chosen = store.staff_member(target) if target.isascii() and target.isdigit() else None
            if chosen is None:
                raise NotFound("这位同事已不在岗，请重新选择。")
            return services.reassign(store, actor, ticket, chosen, now)
        if words:
            return services.reassign(store, actor, ticket, self._named(store, ticket, words), now)
        return self._offer_choices(store, ticket, arrival, now)

    @staticmethod
    def _named(store: Store, ticket: Ticket, name: str) -> Staff:
        """The person named: one of the ticket's choices, its own assignee (the handler says it is
        theirs already) or someone of another compound (the handler refuses); else who there is."""
        choices = services.reassign_choices(store, ticket)
        for person in [*choices, *([ticket.assignee] if ticket.assignee else [])]:
            if person.name == name:
                return person
        found = store.staff_member(name) if not name.isdigit() else None
        if found is not None:
            return found
        names = "、".join(p.name for p in choices) or "（没有其他师傅）"
        raise NotFound(f"没有叫“{name[:20]}”的员工，请核对姓名。可转派给：{names}")

    @staticmethod
    def _offer_choices(store: Store, ticket: Ticket, arrival: Arrival, now: datetime) -> str:
        choices = services.reassign_choices(store, ticket)
        if not choices:
            raise ActionError(f"{ticket.number} 没有其他可转派的师傅。")
        names = "、".join(p.name for p in choices)
        typed = f"发送：转派 {ticket.number} 姓名（可选：{names}）"
        buttons = [[p.name, f"to:{ticket.number}:{p.id}"] for p in choices[:MAX_CHOICES]]
        task = hashlib.sha256(arrival.msg_id.encode()).hexdigest()[:32]
        payload = {
            "user": arrival.user,
            "ticket": ticket.number,
            "task_id": f"propbot-to-{task}",
            "buttons": buttons,
            "fallback": typed,
        }
        key = f"{CHANNEL}:{arrival.msg_id}:choices"[:128]
        text = f"转派 {ticket.number}\n请选择交给哪位师傅"
        store.enqueue(
            CHANNEL, arrival.user, "choices", text, now, payload=payload, ticket=ticket, dedupe_key=key
        )
        more = "" if len(choices) <= MAX_CHOICES else f"\n卡片上只列出前 {MAX_CHOICES} 位；其他人请{typed}"
        return f"请在卡片上选择转派给谁，或{typed}{more}"

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
    def _update_card(
        store: Store,
        arrival: Arrival,
        ticket: Ticket,
        status: str,
        now: datetime,
        card: dict[str, str],
        which: str = "pressed",
    ) -> None:
        """``card``: the pressed card (its user; the callback's code) or the duty card (its number:
        the sender has its code)."""
        payload = {**card, "replace_name": status[:20]}
        if which == "pressed":
            payload["response_code"] = arrival.response_code
        key = f"{CHANNEL}:{arrival.msg_id}:{which}"[:128]
        recipient = card.get("user") or ticket.number
        store.enqueue(
            CHANNEL, recipient, "card_update", status, now, payload=payload, ticket=ticket, dedupe_key=key
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
        if action not in PRESSES:
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


# -- as a registered channel ---------------------------------------------------------------------------
class WeComApp:
    """The self-built app in the registry: ``/wecom``, and with its secret and agent id a member of
    the staff group whose staff rows become its own rows (it never fails the fan-out). Nothing to
    start: WeCom calls us."""

    name = "wecom"  # its /healthz name

    def __init__(self, inbound: WeComAppChannel, sender: WeComAppSender | None) -> None:
        self.inbound = inbound
        self.sender = sender

    def routes(self) -> Sequence[HttpRoute]:
        return [
            HttpRoute("/wecom", self.inbound.verify, methods=["GET"]),
            HttpRoute("/wecom", self.inbound.callback, methods=["POST"]),
        ]

    def outlets(self) -> Sequence[Outlet]:
        if self.sender is None:
            return ()
        return [Outlet(STAFF, self.sender), Outlet(CHANNEL, self.sender)]

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


def build(wiring: Wiring) -> WeComApp | None:
    app, settings = wiring.app, wiring.app.settings
    if not settings.wecom_app_enabled:
        return None
    routes = parse_routes(settings.wecom_app_chats)
    sender = None
    if settings.wecom_app_secret and settings.wecom_agent_id:
        storage = DbTokenStorage(app.sessions, app.clock)
        client = WeComTokenClient(
            settings.wecom_corp_id, settings.wecom_app_secret, storage, settings.wecom_app_api_url
        )
        sender = WeComAppSender(client, settings.wecom_agent_id, routes, app.sessions, card_style(app))
    else:
        log.warning("WECOM_APP_SECRET or WECOM_AGENT_ID not set: the WeCom app takes commands, sends nothing")
    return WeComApp(WeComAppChannel(settings, wiring.intake, routes), sender)
