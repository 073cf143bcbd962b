"""The staff group on Telegram: a card per new ticket or escalation, buttons to work it, replies relayed.

Buttons: 认领 (claim), 完成 (done), 升级 (escalate), 转派 (reassign: a second keyboard of technicians).
Only registered staff (``Staff.telegram_user_id``) may press or relay; others get a polite alert.
A staff member's Telegram reply to a card reaches the resident through the bot; the resident's
answer comes back as a reply to that card. The resident is only ever named by ticket number.
Commands typed in the group (/huifang, /notice, /help) are in their own section below.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from telegram import Bot, CallbackQuery, InlineKeyboardMarkup, Message, ReplyParameters, Update
from telegram.error import BadRequest, TelegramError

from bot.app import App
from bot.channels.photos import PhotoFetcher, TelegramAlbums, album_follow_ups, fits_album, photo_refs
from bot.channels.telegram import buttons_of, failure, keyboard, send_text
from bot.intake import Intake
from bot.outbound import FollowUp, OutboundMessage, Receipt
from data.db import unit_of_work
from data.models import Staff, Ticket
from data.store import Store
from flows import services
from flows.dialog.turn import Button
from flows.domain import relay
from flows.domain.errors import ActionError
from flows.domain.tickets import STAFF_BUTTONS
from flows.services import Actor, Result, staff_commands
from flows.services.cards import CARD_STATE, show_state

log = logging.getLogger(__name__)

CHANNEL = "staff"
NUMBER = re.compile(r"\b[A-Z]{2}-\d{8}-\d{4}\b")
NOT_STAFF = "抱歉，只有登记在册的物业工作人员才能操作工单。如需开通，请联系管理处。"
NOT_STAFF_COMMAND = "抱歉，只有登记在册的物业工作人员才能使用员工群命令。如需开通，请联系管理处。"
ALL = [Button(label, value) for label, value in STAFF_BUTTONS]
AFTER_CLAIM = [b for b in ALL if b.value != "claim"]
BACK = Button("返回", "back")
NOT_RELAYED_PHOTO = "这张照片上没有工单号，没有转达。请回复工单卡片，或相册里带单号的第一张照片。"


def card_keyboard(number: str, buttons: list[Button]) -> InlineKeyboardMarkup | None:
    # the reassign choices carry complete data ("to:NUMBER:STAFF_ID"); the rest get the number added
    return keyboard(buttons, data=lambda b: b.value if ":" in b.value else f"{b.value}:{number}")


class TelegramStaffSender:
    """Outbox rows for the staff group: cards with the ticket buttons, relays as replies to cards;
    a row's photos as an album (``bot.channels.photos``)."""

    channel = CHANNEL

    def __init__(self, bot: Bot, chat_id: str, photos: PhotoFetcher | None = None) -> None:
        self.bot = bot
        self.chat_id = chat_id
        self.albums = TelegramAlbums(bot, photos or PhotoFetcher(bot))

    async def send(self, message: OutboundMessage) -> list[FollowUp | Receipt] | None:
        if message.kind == CARD_STATE:
            await self._edit_card(message)
            return None
        try:
            if fits_album(message):  # a resident's photos with a few words: one album, words as caption
                await self.albums.send(self.chat_id, message)
                return None
            sent = await self._text(message)
        except TelegramError as exc:
            raise failure(exc) from exc
        # the card stays one message with its buttons; its photos follow as a reply to it
        photos = album_follow_ups(message, sent.message_id) if photo_refs(message.payload) else []
        return [*photos, Receipt(str(sent.message_id))]

    async def _edit_card(self, message: OutboundMessage) -> None:
        """The ticket was worked in another staff channel: its last card here shows it."""
        edit = message.payload.get("edit")
        if message.payload.get("origin") == CHANNEL or not isinstance(edit, dict):
            return  # done here (the press edited the card), or no card of it here
        number = str(message.payload["ticket"])
        text = f"{edit['text']}\n· {message.payload['status']}"
        markup = card_keyboard(number, list(buttons_of(message.payload)))
        try:
            await self.bot.edit_message_text(
                text, chat_id=self.chat_id, message_id=int(edit["message_id"]), reply_markup=markup
            )
        except BadRequest as exc:  # "message is not modified", or too old to edit
            log.info("staff group: card of %s not edited: %s", number, exc)
        except TelegramError as exc:
            raise failure(exc) from exc

    async def _text(self, message: OutboundMessage) -> Message:
        number = str(message.payload.get("ticket") or "")
        markup = card_keyboard(number, list(buttons_of(message.payload))) if number else None
        extra = {}
        if message.payload.get("reply_to"):
            extra["reply_parameters"] = ReplyParameters(
                int(message.payload["reply_to"]), allow_sending_without_reply=True
            )
        return await send_text(self.bot, self.chat_id, message.text, markup, **extra)


@dataclass
class Outcome:
    """What a button press did: the callback answer, a line for the card, and its new keyboard."""

    answer: str
    alert: bool = False
    status: str | None = None
    buttons: list[Button] | None = None  # None: leave the keyboard as it is


def _outcome(result: Result, buttons: list[Button] | None) -> Outcome:
    """A handler's result on the card: its words, and ``buttons`` if the ticket changed."""
    if result.status is None:
        return Outcome(result.text)
    return Outcome(result.text, status=result.status, buttons=buttons)


class StaffGroup:
    def __init__(self, intake: Intake, bot: Bot, chat_id: str) -> None:
        self.intake = intake
        self.bot = bot
        self.chat_id = chat_id

    @property
    def app(self) -> App:
        return self.intake.app

    async def process(self, update: Update) -> None:
        if update.callback_query is not None:
            await self._press(update.callback_query)
        elif update.message is not None and not await self._command(update.message):
            await self._message(update.message)

    # -- buttons ---------------------------------------------------------------------------------
    async def _press(self, query: CallbackQuery) -> None:
        action, _, rest = (query.data or "").partition(":")
        number, _, target = rest.partition(":")
        outcome = await self.intake.run(
            self._act, action, number, target, str(query.from_user.id), query.id, self.app.clock.now()
        )
        await self._answer(query, outcome)
        card = query.message
        if not isinstance(card, Message) or (outcome.status is None and outcome.buttons is None):
            return  # nothing to change, or the card is too old for Telegram to show us
        text = f"{card.text or ''}\n· {outcome.status}" if outcome.status else card.text or ""
        markup = card.reply_markup if outcome.buttons is None else card_keyboard(number, outcome.buttons)
        try:
            await self.bot.edit_message_text(
                text, chat_id=card.chat.id, message_id=card.message_id, reply_markup=markup
            )
        except BadRequest as exc:  # "message is not modified", or too old to edit
            log.info("staff group: card not edited: %s", exc)

    async def _answer(self, query: CallbackQuery, outcome: Outcome) -> None:
        try:
            await query.answer(outcome.answer, show_alert=outcome.alert)
        except TelegramError as exc:
            log.info("staff group: could not answer callback query: %s", exc)

    def _act(
        self, action: str, number: str, target: str, user_id: str, query_id: str, now: datetime
    ) -> Outcome:
        with unit_of_work(self.app.sessions) as store:
            staff = store.staff_by_telegram(user_id)
            if staff is None:
                log.info("staff group: button %s pressed by unregistered user", action)
                return Outcome(NOT_STAFF, alert=True)
            ticket = store.tickets.by_number(number)
            if ticket is None:
                return Outcome(f"没有找到工单 {number}", alert=True)
            if not store.claim_inbound(CHANNEL, f"cb:{query_id}", user_id, now):
                return Outcome("已处理")  # Telegram re-delivered the same press
            try:
                outcome = self._do(store, action, ticket, staff, target, now)
            except ActionError as exc:
                return Outcome(str(exc), alert=True)
            if outcome.status is not None:  # the other staff channels' cards show it too
                show_state(store, ticket, outcome.status, CHANNEL, f"{CHANNEL}:cb:{query_id}:state", now)
            return outcome

    def _do(
        self, store: Store, action: str, ticket: Ticket, staff: Staff, target: str, now: datetime
    ) -> Outcome:
        """A button, done by the service layer; the card's new keyboard is the channel's business."""
        actor = Actor.of(staff)
        if action == "claim":
            return _outcome(services.claim(store, actor, ticket, now), AFTER_CLAIM)
        if action == "done":
            return _outcome(services.done(store, actor, ticket, now), [])
        if action == "escalate":
            return _outcome(services.escalate(store, actor, ticket, now), None)
        if action == "reassign":
            return self._choices(store, ticket)
        if action == "to":
            chosen = store.staff_member(target)
            if chosen is None:
                return Outcome("这位同事已不在岗，请重新选择", alert=True)
            return _outcome(services.reassign(store, actor, ticket, chosen, now), AFTER_CLAIM)
        if action == "back":
            return Outcome("", buttons=AFTER_CLAIM if ticket.assignee_id else ALL)
        return Outcome("这个按钮已失效", alert=True)

    @staticmethod
    def _choices(store: Store, ticket: Ticket) -> Outcome:
        people = services.reassign_choices(store, ticket)
        if not people:
            return Outcome("没有其他可转派的师傅", alert=True)
        buttons = [Button(s.name, f"to:{ticket.number}:{s.id}") for s in people] + [BACK]
        return Outcome("请选择转派给哪位师傅", buttons=buttons)

    # -- replies to cards: relay to the resident -------------------------------------------------
    async def _message(self, message: Message) -> None:
        original = message.reply_to_message
        if original is None or original.from_user is None or original.from_user.id != self.bot.id:
            return  # ordinary group chatter
        found = NUMBER.search(original.text or original.caption or "")
        if not message.text or message.from_user is None:
            return
        if found is None:
            if original.photo:  # an album's later photo: only the first carries the ticket number
                await self._confirm(message, NOT_RELAYED_PHOTO)
            return
        note = await self.intake.run(
            self._relay,
            found.group(),
            str(message.from_user.id),
            message.text,
            original.message_id,
            f"{message.chat_id}:{message.message_id}",
            self.app.clock.now(),
        )
        if note:
            await self._confirm(message, note)

    async def _confirm(self, message: Message, note: str) -> None:
        """Answer a staff member's reply in the group, under it."""
        try:
            await self.bot.send_message(
                message.chat_id, note, reply_parameters=ReplyParameters(message.message_id)
            )
        except TelegramError as exc:
            log.info("staff group: could not answer a reply: %s", exc)

    def _relay(self, number: str, user_id: str, text: str, card: int, message_id: str, now: datetime) -> str:
        with unit_of_work(self.app.sessions) as store:
            staff = store.staff_by_telegram(user_id)
            if staff is None:
                return "抱歉，只有登记在册的工作人员的回复才会转达给居民。"
            ticket = store.tickets.by_number(number)
            if ticket is None or (ticket.account_id is None and ticket.unit_id is None):
                return f"工单 {number} 没有可联系的居民账号，请电话联系。"
            if not store.claim_inbound(CHANNEL, message_id, user_id, now):
                return ""
            relay.relay_to_resident(store, ticket, staff, text, card, now)
            return f"已转达给居民（{number}），居民的回复会出现在这张卡片下。"

    # -- commands typed in the group: /huifang, /notice, /help (flows/services/staff_commands.py) ------------
    async def _command(self, message: Message) -> bool:
        """Answer a command; False when the message is not one (chatter, or a reply to relay)."""
        if not (message.text or "").startswith("/") or message.from_user is None:
            return False
        command = staff_commands.parse_command(message.text or "", self._username())
        if command is None or not (command.name or command.addressed):
            return True  # another bot's command: not ours to answer, and never relayed to a resident
        reply = await self.intake.run(
            self._run_command,
            command,
            str(message.from_user.id),
            f"{message.chat_id}:{message.message_id}",
            self._card_ticket(message),
            self.app.clock.now(),
        )
        if reply:
            try:
                await send_text(
                    self.bot,
                    message.chat_id,
                    reply,
                    None,
                    reply_parameters=ReplyParameters(message.message_id, allow_sending_without_reply=True),
                )
            except TelegramError as exc:
                log.info("staff group: could not answer a command: %s", exc)
        return True

    def _run_command(
        self, command: staff_commands.Command, user_id: str, message_id: str, card: str | None, now: datetime
    ) -> str:
        try:
            with unit_of_work(self.app.sessions) as store:
                staff = store.staff_by_telegram(user_id)
                if staff is None:
                    log.info("staff group: /%s from an unregistered user", command.typed)
                    return NOT_STAFF_COMMAND
                if not store.claim_inbound(CHANNEL, message_id, user_id, now):
                    return ""  # Telegram re-delivered the message: done once, answered once
                return staff_commands.run(store, staff, command, now, card)
        except ActionError as exc:  # rolled back: nothing half-done stays
            return str(exc)

    def _username(self) -> str | None:
        try:
            return self.bot.username
        except RuntimeError:  # not initialised (no getMe yet): "/cmd@Name" cannot be ours
            return None

    def _card_ticket(self, message: Message) -> str | None:
        """The ticket of the bot's card this command replies to (then the number may be left out)."""
        card = message.reply_to_message
        if card is None or card.from_user is None or card.from_user.id != self.bot.id:
            return None
        found = NUMBER.search(card.text or card.caption or "")
        return found.group() if found else None
