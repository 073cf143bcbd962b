"""Telegram for residents: python-telegram-bot as the transport only (dialog state lives in the store).

Updates arrive by webhook (``/telegram``, secret-token header checked) or by polling; each becomes a
channel-neutral ``Inbound`` and the engine's replies go back with inline keyboards for the choices.
A webhook's last reply goes back in the webhook's answer, which Telegram executes as a Bot API call
("making requests when getting updates"): one request fewer per message, the largest share of the
server's work for a Telegram message. The price: Telegram does not say whether that call succeeded,
so a refused one is not retried through the outbox (docs/channels.md).
Updates from the staff group are handed to ``StaffGroup``; anything else (channels, other groups) is
ignored with a log line. ptb's ``Update.de_json`` does not check types (a text that is an object, a
chat id of letters go through and fail later, in the engine or the database), so the update's JSON is
checked first against the fields we read (``check_update``): a wrong type is a 400 naming the field.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import warnings
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import (
    Bot,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import BadRequest, ChatMigrated, Forbidden, RetryAfter, TelegramError
from telegram.ext import Updater
from telegram.request import HTTPXRequest

from bot.channels.base import STAFF, Outlet, Wiring
from bot.channels.photos import PhotoFetcher, TelegramAlbums, fits_album
from bot.channels.web import client_of, read_limited
from bot.intake import Intake
from bot.outbound import OutboundMessage, PermanentFailure, Receipt, TemporaryFailure
from bot.settings import Settings
from data.db import unit_of_work
from data.store import storable_text
from flows.dialog.turn import Button, Inbound, Reply

if TYPE_CHECKING:
    from bot.channels.staff_group import StaffGroup

log = logging.getLogger(__name__)

CHANNEL = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1 << 20  # Telegram updates are a few KB; anything near this is not Telegram
MAX_TEXT = 4096  # Bot API limit per message
MAX_CALLBACK_DATA = 64  # bytes, Bot API limit
COMMANDS = {"/status": "查询进度", "/help": "帮助"}
UNSUPPORTED = (
    "抱歉，目前只能处理文字、图片和位置信息。请用文字描述您的问题，也可以直接发照片。"
    "紧急情况请直接拨打物业24小时值班电话。"
)
UPDATE_TYPES = ["message", "callback_query"]


def make_bot(settings: Settings) -> Bot:
    """A Bot aimed at ``settings.telegram_api_url`` (the real API, or a test's fake server)."""
    base = settings.telegram_api_url
    file_base = base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base
    request = HTTPXRequest(connection_pool_size=64, read_timeout=10, write_timeout=10, connect_timeout=5)
    return Bot(settings.telegram_token, base_url=base, base_file_url=file_base, request=request)


def keyboard(buttons: Sequence[Button], data: Any = None) -> InlineKeyboardMarkup | None:
    """Inline buttons, two to a row (three when short); ``data(button)`` makes the callback data."""
    rows: list[list[InlineKeyboardButton]] = []
    width = 3 if all(len(b.label) <= 4 for b in buttons) else 2
    for button in buttons:
        value = data(button) if data else button.value
        if len(value.encode()) > MAX_CALLBACK_DATA:
            value = button.label  # typing the label does the same in the flows
        if len(value.encode()) > MAX_CALLBACK_DATA:
            continue
        if not rows or len(rows[-1]) >= width:
            rows.append([])
        rows[-1].append(InlineKeyboardButton(button.label, callback_data=value))
    return InlineKeyboardMarkup(rows) if rows else None


def buttons_of(payload: dict[str, Any]) -> tuple[Button, ...]:
    return tuple(Button(label, value) for label, value in payload.get("buttons") or ())


def failure(exc: TelegramError) -> TemporaryFailure | PermanentFailure:
    """Map a Bot API error to the dispatcher's vocabulary."""
    if isinstance(exc, RetryAfter):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return TemporaryFailure(f"Telegram flood control: {exc}", retry_after=seconds)
    if isinstance(exc, Forbidden | BadRequest | ChatMigrated):
        return PermanentFailure(f"Telegram refused: {exc}")  # blocked, chat not found, ...
    return TemporaryFailure(f"Telegram unreachable: {exc}")  # timeouts, 5xx, network


def split_text(text: str) -> list[str]:
    return [text[i : i + MAX_TEXT] for i in range(0, len(text), MAX_TEXT)] or [""]


class TelegramSender:
    """Outbox rows for Telegram chats (residents; a manager's digest): text plus the row's buttons,
    or a digest's chart with its text as the caption."""

    channel = CHANNEL

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self._albums: TelegramAlbums | None = None

    async def send(self, message: OutboundMessage) -> list[Receipt]:
        if message.kind == "digest" and fits_album(message):
            if self._albums is None:
                self._albums = TelegramAlbums(self.bot, PhotoFetcher(self.bot))
            try:
                await self._albums.send(message.recipient, message)
            except TelegramError as exc:
                raise failure(exc) from exc
            return []
        try:
            sent = await send_text(
                self.bot, message.recipient, message.text, keyboard(buttons_of(message.payload))
            )
        except TelegramError as exc:
            raise failure(exc) from exc
        return [Receipt(str(sent.message_id))]


async def send_text(
    bot: Bot, chat_id: int | str, text: str, markup: InlineKeyboardMarkup | None = None, **extra: Any
) -> Message:
    """Send ``text`` (split at the API limit; the keyboard goes with the last part)."""
    parts = split_text(text)
    sent: Message | None = None
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        sent = await bot.send_message(chat_id, part, reply_markup=markup if last else None, **extra)
    assert sent is not None
    return sent


class TelegramChannel:
    def __init__(self, settings: Settings, intake: Intake, bot: Bot, staff: StaffGroup | None = None) -> None:
        self.settings = settings
        self.intake = intake
        self.bot = bot
        self.staff = staff
        self.secret = settings.telegram_webhook_secret
        self._updater: Updater | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle -----------------------------------------------------------------------------
    async def start(self, polling: bool) -> None:
        await self.bot.initialize()  # getMe: the bot's own id, to recognise replies to its cards
        if not self.secret:
            log.warning("TELEGRAM_WEBHOOK_SECRET is not set: /telegram refuses every update")
        if polling:
            await self._start_polling()

    async def stop(self) -> None:
        if self._updater is not None:
            await self._updater.stop()
            await self._updater.shutdown()
        if self._consumer is not None:
            self._consumer.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.bot.shutdown()

    async def _start_polling(self) -> None:
        """Long polling through ptb's Updater (network retries, offsets); we consume its queue."""
        await self.bot.delete_webhook()
        queue: asyncio.Queue[object] = asyncio.Queue()
        self._updater = Updater(self.bot, queue)
        await self._updater.initialize()
        await self._updater.start_polling(allowed_updates=UPDATE_TYPES, timeout=timedelta(seconds=25))
        self._consumer = asyncio.create_task(self._consume(queue))
        log.info("Telegram polling started")

    async def _consume(self, queue: asyncio.Queue[object]) -> None:
        while True:
            update = await queue.get()
            if isinstance(update, Update) and _checked(update):
                # one task per update; the chat lock is taken in order, so replies stay in order
                task = asyncio.create_task(self.process(update))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    # -- webhook -------------------------------------------------------------------------------
    async def webhook(self, request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not self.secret or not hmac.compare_digest(given.encode(), self.secret.encode()):
            log.warning("telegram webhook: wrong or missing secret token from %s", client_of(request))
            self.intake.metrics.rejected.labels(CHANNEL, "secret").inc()
            return JSONResponse({"error": "forbidden"}, status_code=403)
        body = await read_limited(request, MAX_BODY)
        if body is None:
            self.intake.metrics.rejected.labels(CHANNEL, "too_large").inc()
            return JSONResponse({"error": "body too large"}, status_code=413)
        update = parse_update(body, self.bot)
        if update is None:
            self.intake.metrics.rejected.labels(CHANNEL, "malformed").inc()
            return JSONResponse({"error": "not a Telegram update"}, status_code=400)
        answer = await self.process(update, hand_back=True)
        return JSONResponse(answer or {"ok": True})

    # -- routing -------------------------------------------------------------------------------
    async def process(self, update: Update, hand_back: bool = False) -> dict[str, Any] | None:
        """Handle one update; never raises (a failure is logged, the update dropped). With
        ``hand_back`` the last reply is returned as a webhook answer instead of sent (see ``reply``)."""
        try:
            return await self._route(update, hand_back)
        except Exception:
            log.exception("telegram update %s failed", update.update_id)
            return None

    async def _route(self, update: Update, hand_back: bool) -> dict[str, Any] | None:
        chat = update.effective_chat
        if chat is None or (update.message is None and update.callback_query is None):
            log.info("telegram: ignoring update %s (%s)", update.update_id, _kind(update))
            return None
        if self.staff is not None and str(chat.id) == self.staff.chat_id:
            await self.staff.process(update)
            return None
        if chat.type != "private":
            log.info("telegram: ignoring update %s from %s chat %s", update.update_id, chat.type, chat.id)
            return None
        if update.callback_query is not None:
            return await self._callback(update.callback_query, hand_back)
        assert update.message is not None
        return await self._message(update.message, hand_back)

    async def _message(self, message: Message, hand_back: bool) -> dict[str, Any] | None:
        inbound = to_inbound(message, self.intake.app.clock.now())
        async with self.intake.chat(CHANNEL, str(message.chat_id)):
            if inbound is None:
                log.info("telegram: unsupported message type from chat %s", message.chat_id)
                replies = [Reply(UNSUPPORTED)]
            else:
                replies = await self.intake.handle(inbound)
            return await self.reply(message.chat_id, replies, hand_back)

    async def _callback(self, query: CallbackQuery, hand_back: bool) -> dict[str, Any] | None:
        # Stop the button's spinner whatever happens next; the Bot API round trip runs beside the
        # turn instead of before it (a button press answered a round trip sooner, under load tens of ms).
        answering = asyncio.create_task(_answer_query(query))
        try:
            return await self._pressed(query, hand_back)
        finally:
            await answering

    async def _pressed(self, query: CallbackQuery, hand_back: bool) -> dict[str, Any] | None:
        chat_id = query.message.chat.id if query.message else int(query.from_user.id)
        inbound = Inbound(
            CHANNEL,
            str(chat_id),
            query.data or "",
            self.intake.app.clock.now(),
            message_id=f"cb:{query.id}",
            display_name=query.from_user.full_name,
            reply_to=_text_of(query.message),  # a button answers the message it is on
        )
        async with self.intake.chat(CHANNEL, str(chat_id)):
            replies = await self.intake.handle(inbound)
            return await self.reply(chat_id, replies, hand_back)

    async def reply(
        self, chat_id: int, replies: Sequence[Reply], hand_back: bool = False
    ) -> dict[str, Any] | None:
        """Send replies in order; what cannot be sent now goes to the outbox for a retry. With
        ``hand_back`` the last reply (if it fits one message) is not sent but returned as a webhook
        answer; the ones before it are sent first, so the order holds."""
        handed = replies[-1] if hand_back and replies and len(replies[-1].text) <= MAX_TEXT else None
        for index, reply in enumerate(replies[:-1] if handed else replies):
            try:
                await send_text(self.bot, chat_id, reply.text, keyboard(reply.buttons))
            except TelegramError as exc:
                problem = failure(exc)
                if isinstance(problem, PermanentFailure):
                    log.warning("telegram: reply to chat %s refused: %s", chat_id, exc)
                    return None
                log.warning("telegram: reply to chat %s deferred to the outbox: %s", chat_id, exc)
                await self.intake.run(self._defer, str(chat_id), list(replies[index:]))
                return None
        return None if handed is None else webhook_answer(chat_id, handed)

    def _defer(self, chat_id: str, replies: list[Reply]) -> None:
        now = self.intake.app.clock.now()
        with unit_of_work(self.intake.app.sessions) as store:
            for reply in replies:
                store.enqueue(CHANNEL, chat_id, "reply", reply.text, now, payload=reply.to_json())


async def _answer_query(query: CallbackQuery) -> None:
    try:
        await query.answer()
    except TelegramError as exc:
        log.info("telegram: could not answer callback query: %s", exc)


# -- reading updates ---------------------------------------------------------------------------------
class BadUpdate(ValueError):
    """The update's JSON does not have the Bot API's shape; the message names the field, never its
    value (texts, names and chat ids are residents' data)."""


Schema = dict[str, Any]  # field -> type, nested Schema, or [Schema] for a list of objects
NUMBER = (int, float)
USER: Schema = {"id": int, "is_bot": bool, "first_name": str, "last_name": str, "username": str}
CHAT: Schema = {"id": int, "type": str, "title": str, "first_name": str, "last_name": str, "username": str}
PHOTO: Schema = {"file_id": str, "file_unique_id": str, "width": int, "height": int, "file_size": int}
LOCATION: Schema = {"latitude": NUMBER, "longitude": NUMBER}
QUOTED: Schema = {  # a replied-to message (Telegram does not nest a reply inside it)
    "message_id": int,
    "date": int,
    "chat": CHAT,
    "from": USER,
    "text": str,
    "caption": str,
    "photo": [PHOTO],
    "media_group_id": str,
}
MESSAGE: Schema = {**QUOTED, "location": LOCATION, "reply_to_message": QUOTED}
CALLBACK: Schema = {"id": str, "from": USER, "data": str, "chat_instance": str, "message": QUOTED}
UPDATE: Schema = {
    "update_id": int,
    "message": MESSAGE,
    "edited_message": MESSAGE,
    "channel_post": MESSAGE,
    "edited_channel_post": MESSAGE,
    "callback_query": CALLBACK,
}
REQUIRED = {  # per schema: fields that must be there
    id(UPDATE): ("update_id",),
    id(MESSAGE): ("message_id", "chat"),
    id(QUOTED): ("message_id", "chat"),
    id(CHAT): ("id", "type"),
    id(USER): ("id",),
    id(PHOTO): ("file_id", "width", "height"),
    id(LOCATION): ("latitude", "longitude"),
    id(CALLBACK): ("id", "from"),
}
KIND_NAMES = {
    int: "an integer of at most 52 bits",
    bool: "true or false",
    str: "a string",
    NUMBER: "a number",
}
# The Bot API's ids "have at most 52 significant bits" (so a double holds them); a larger one is not
# Telegram's, and Python would carry it on to the store and the answer as a bignum.
MAX_ID = 1 << 52


def check_update(data: object) -> None:
    """Raise ``BadUpdate`` unless ``data`` is an update whose fields we read have the Bot API's
    types (other fields are left to ptb)."""
    _check(data, UPDATE, "update")


def _check(value: object, schema: Schema, path: str) -> None:
    if not isinstance(value, dict):
        raise BadUpdate(f"{path}: expected an object")
    for name in REQUIRED.get(id(schema), ()):
        if name not in value:
            raise BadUpdate(f"{path}.{name}: missing")
    for name, kind in schema.items():
        if name not in value:
            continue
        field, where = value[name], f"{path}.{name}"
        if isinstance(kind, dict):
            _check(field, kind, where)
        elif isinstance(kind, list):
            if not isinstance(field, list):
                raise BadUpdate(f"{where}: expected a list")
            for index, item in enumerate(field):
                _check(item, kind[0], f"{where}[{index}]")
        elif not _is(field, kind):
            raise BadUpdate(f"{where}: expected {KIND_NAMES[kind]}")


def _is(value: object, kind: Any) -> bool:
    if isinstance(value, bool):  # JSON's true is not a number here, though Python's bool is an int
        return kind is bool
    if kind is int and isinstance(value, int):
        return -MAX_ID < value < MAX_ID
    if kind is NUMBER and isinstance(value, int):  # other integers: 64-bit, as the Bot API sends them
        return -(2**63) <= value < 2**63
    return isinstance(value, kind)


def parse_update(body: bytes, bot: Bot) -> Update | None:
    """The webhook's body as an ``Update``, or None (logged in one line, naming the field)."""
    try:
        data = storable(json.loads(body))
        check_update(data)
        return Update.de_json(data, bot)
    except BadUpdate as exc:
        log.warning("telegram webhook: malformed update (%s)", exc)
    except ValueError as exc:  # not JSON, not UTF-8
        log.warning("telegram webhook: malformed update (not JSON: %s)", type(exc).__name__)
    except Exception as exc:  # ptb raises KeyError/TypeError on other odd fields
        log.warning("telegram webhook: malformed update (%s in ptb)", type(exc).__name__)
    return None


def storable(data: Any) -> Any:
    """Every string in decoded JSON made storable (``storable_text``): a ``\\u0000`` or a lone
    ``\\ud800`` escape is valid JSON, and texts, names and file ids reach the database. A loop, not
    recursion: the JSON may be nested as deep as the parser allows."""
    if isinstance(data, str):
        return storable_text(data)
    stack = [data] if isinstance(data, dict | list) else []
    while stack:
        node = stack.pop()
        for key, value in list(node.items() if isinstance(node, dict) else enumerate(node)):
            if isinstance(value, str):
                node[key] = storable_text(value)
            elif isinstance(value, dict | list):
                stack.append(value)
    return data


def _checked(update: Update) -> bool:
    """A polled update (ptb made it from Telegram's answer) through the same checks."""
    try:
        check_update(update.to_dict())
    except BadUpdate as exc:
        log.warning("telegram polling: malformed update dropped (%s)", exc)
        return False
    return True


def webhook_answer(chat_id: int, reply: Reply) -> dict[str, Any]:
    """``reply`` as a sendMessage call in a webhook's answer (the Bot API's JSON form)."""
    answer: dict[str, Any] = {"method": "sendMessage", "chat_id": chat_id, "text": reply.text}
    markup = keyboard(reply.buttons)
    if markup is not None:
        answer["reply_markup"] = markup.to_dict()
    return answer


def to_inbound(message: Message, now: datetime) -> Inbound | None:
    """A resident's Telegram message as an ``Inbound``; None for types we cannot handle."""
    chat = str(message.chat_id)
    text, photos = "", tuple[str, ...]()
    if message.text:
        text = command_text(message.text)
    elif message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        text, photos = message.caption or "", (f"telegram:{largest.file_id}",)
    elif message.location:
        text = f"位置：{message.location.latitude:.6f},{message.location.longitude:.6f}"
    else:
        return None
    name = message.from_user.full_name if message.from_user else ""
    message_id = f"{chat}:{message.message_id}"
    return Inbound(
        CHANNEL, chat, text, now, message_id, photos, display_name=name, reply_to=_replied_to(message)
    )


def _replied_to(message: Message) -> str:
    """The text of our message the resident used "reply" on (in a private chat the only bot is us)."""
    original = message.reply_to_message
    if original is None or original.from_user is None or not original.from_user.is_bot:
        return ""
    return _text_of(original)


def _text_of(message: object) -> str:
    # an inaccessible (too old) message has neither text nor caption
    return str(getattr(message, "text", None) or getattr(message, "caption", None) or "")


def command_text(text: str) -> str:
    """``/start CODE`` binds with the code, ``/start`` greets, ``/status`` and ``/help`` are words."""
    if not text.startswith("/"):
        return text
    head, _, rest = text.partition(" ")
    command = head.split("@", 1)[0].lower()
    if command == "/start":
        return rest.strip() or "你好"
    return COMMANDS.get(command, text)


def _kind(update: Update) -> str:
    for name in ("edited_message", "channel_post", "edited_channel_post", "my_chat_member", "chat_member"):
        if getattr(update, name, None) is not None:
            return name
    return "unknown"


# -- as a registered channel ---------------------------------------------------------------------------
class Telegram:
    """Telegram in the registry: ``/telegram`` (residents and the staff group), the residents' sender
    and, with a staff group, its sender. Up once the Bot API answered ``getMe``."""

    name = CHANNEL

    def __init__(self, inbound: TelegramChannel, outlets: list[Outlet], polling: bool) -> None:
        self.inbound = inbound
        self._outlets = outlets
        self.polling = polling

    def routes(self) -> Sequence[Route]:
        return [Route("/telegram", self.inbound.webhook, methods=["POST"])]

    def outlets(self) -> Sequence[Outlet]:
        return self._outlets

    async def start(self) -> None:
        await self.inbound.start(self.polling)

    async def close(self) -> None:
        await self.inbound.stop()


def build(wiring: Wiring) -> Telegram | None:
    from bot.channels.staff_group import StaffGroup, TelegramStaffSender  # it imports us

    settings = wiring.app.settings
    if not settings.telegram_enabled:
        return None
    bot = make_bot(settings)
    if wiring.photos is not None:
        wiring.photos.bot = bot  # residents' photos by Telegram file id, for the staff channels
    outlets = [Outlet(CHANNEL, TelegramSender(bot))]
    group = None
    if settings.telegram_staff_chat_id:
        group = StaffGroup(wiring.intake, bot, settings.telegram_staff_chat_id)
        staff = TelegramStaffSender(bot, settings.telegram_staff_chat_id, wiring.photos)
        outlets.append(Outlet(STAFF, staff))
    return Telegram(TelegramChannel(settings, wiring.intake, bot, group), outlets, wiring.polling)
