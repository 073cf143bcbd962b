"""The conversation engine: one inbound message in, replies out, state and tickets in the store.

Each message is one transaction: the processed message id, the dialog state, tickets, events and
outbox rows land together or not at all. A retried message id gets the recorded replies again.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable
from typing import Any, Protocol

from sqlalchemy.orm import Session, sessionmaker

from data.db import once_more_if_disconnected, transaction
from data.models import ChannelAccount, Compound, Conversation
from data.store import Store
from flows import answers, clarify
from flows.binding import BindingFlow
from flows.booking import SLOT_PREFIX, BookingForm
from flows.complaint import ComplaintForm
from flows.emergency import handle_emergency
from flows.fee_query import answer_fee_query
from flows.form import SKIP_WORDS
from flows.outbox import reply_key
from flows.repair import RepairForm
from flows.status import TICKET_NUMBER, answer_status
from flows.turn import Inbound, Reply, Turn
from nlu.types import NLUBackend, Parse

log = logging.getLogger(__name__)

CANCEL_WORDS = frozenset(
    {"取消", "算了", "不用了", "不要了", "不报了", "不约了", "先不了", "不需要了", "不弄了", "退出"}
)
SWITCH_CONFIDENCE = 0.75  # a clear new request in the middle of a form starts that request instead
APOLOGY = "抱歉，系统开小差了，您的消息没有处理成功，请稍后再发一次。紧急情况请直接拨打物业24小时值班电话。"
HOLDING_PHOTOS = "photos"
RULE_CONFIDENCE = 0.95
OFFERED = "offered"  # state key: the labels and values of the buttons the dialog's last replies offered
NEEDS_BINDING = frozenset({"repair", "complaint", "booking", "fee_query", "status_query"})


class Flow(Protocol):
    name: str

    def start(self, turn: Turn) -> None: ...

    def resume(self, turn: Turn) -> bool: ...

    def ask_again(self, turn: Turn, hint: str = ...) -> None: ...


FLOWS: dict[str, Flow] = {
    flow.name: flow for flow in (RepairForm(), ComplaintForm(), BookingForm(), BindingFlow())
}
TITLES = {"repair": "报修", "complaint": "投诉", "booking": "预约", "binding": "绑定"}

ANSWERS: dict[str, Callable[[Turn], None]] = {
    "fee_query": answer_fee_query,
    "status_query": answer_status,
    "emergency": handle_emergency,
    "human_handoff": answers.handoff,
    "enquiry": answers.enquiry,
    "suggestion": answers.suggestion,
    "praise": answers.praise,
    "greet": answers.greet,
    "thanks": answers.thanks,
    "goodbye": answers.goodbye,
    "affirm": answers.acknowledge,
    "deny": answers.acknowledge,
    "cancel": answers.acknowledge,
    "out_of_scope": answers.out_of_scope,
}

# Hooks that may claim a message before intent routing (callback answers, notice look-ups, ...):
# each returns True when it handled the message. Later features register here.
PRE_ROUTES: list[Callable[[Turn], bool]] = []
# Hooks that may claim a message even in the middle of a dialog (a staff question newer than the
# dialog's own); the dialog then asks its question again. Registered by flows.hooks.
INTERRUPTS: list[Callable[[Turn], bool]] = []


class Engine:
    def __init__(self, sessions: sessionmaker[Session], nlu: NLUBackend) -> None:
        self.sessions = sessions
        self.nlu = nlu

    def handle(self, inbound: Inbound) -> list[Reply]:
        """Replies to ``inbound``. Never raises: a failure rolls back and apologises."""
        try:
            return once_more_if_disconnected(lambda: self._handle(inbound))
        except Exception:
            log.exception(
                "message %s from %s:%s failed", inbound.message_id, inbound.channel, inbound.external_id
            )
            return [Reply(APOLOGY)]

    def _handle(self, inbound: Inbound) -> list[Reply]:
        parse = self.nlu.parse(inbound.clean_text, inbound.received_at)
        with transaction(self.sessions) as session:
            store = Store(session)
            if inbound.message_id and not store.claim_inbound(
                inbound.channel, inbound.message_id, inbound.external_id, inbound.received_at
            ):
                return self._replies_for_retry(store, inbound.channel, inbound.message_id)
            account, conversation = store.chat(
                inbound.channel, inbound.external_id, inbound.received_at, inbound.display_name
            )
            # this turn's answer is the chat's latest: older replies still waiting are obsolete
            store.supersede_replies(inbound.channel, inbound.external_id, inbound.received_at)
            turn = self._turn(store, inbound, parse, account, conversation)
            self._route(turn)
            self._save(store, conversation, turn)
            if inbound.message_id:
                store.record_replies(inbound.channel, inbound.message_id, [r.to_json() for r in turn.replies])
            return turn.replies

    @staticmethod
    def _replies_for_retry(store: Store, channel: str, message_id: str) -> list[Reply]:
        """A retry gets the recorded replies, or nothing when they already went out late (outbox)."""
        if store.has_outbox(reply_key(channel, message_id, "late")):
            return []
        return [Reply.from_json(r) for r in store.recorded_replies(channel, message_id)]

    def _turn(
        self,
        store: Store,
        inbound: Inbound,
        parse: Parse,
        account: ChannelAccount,
        conversation: Conversation,
    ) -> Turn:
        compound = self._compound(
            store, account.resident.unit.building.compound_id if account.resident else None
        )
        # A deep copy: editing the loaded JSON in place would hide the change from SQLAlchemy.
        state = copy.deepcopy(conversation.state or {})
        return Turn(
            store,
            inbound,
            parse,
            account,
            compound,
            store.settings(compound),
            state,
            next_flow=conversation.flow,
        )

    @staticmethod
    def _compound(store: Store, compound_id: int | None) -> Compound:
        return store.compound(compound_id)

    @staticmethod
    def _save(store: Store, conversation: Conversation, turn: Turn) -> None:
        state = {**turn.state, OFFERED: _offered(turn.replies)} if turn.next_flow else {}
        store.save_dialog(
            turn.account, conversation, turn.next_flow, state, turn.now, turn.inbound.received_at
        )

    # -- routing ---------------------------------------------------------------------------------
    def _route(self, turn: Turn) -> None:
        previous, turn.next_flow = turn.next_flow, None
        active = FLOWS.get(previous or "")
        if not turn.text and not turn.inbound.photos:
            turn.next_flow = previous  # nothing said: keep whatever was going on
            turn.say("您好，请问有什么可以帮您？", *answers.MENU)
            return
        if not turn.text and active is None:
            if not any(hook(turn) for hook in PRE_ROUTES):  # e.g. photos answering a staff question
                self._hold_photos(turn)
            return
        if previous == clarify.CLARIFY and self._answer_clarifying(turn):
            return
        if self._is_emergency(turn):
            if clarify.options(turn.parse):
                resume = (
                    {"flow": previous, "state": copy.deepcopy(turn.state)} if active is not None else None
                )
                clarify.ask(turn, clarify.options(turn.parse), resume)
                return
            self._interrupt_for_emergency(turn, active)
            return
        if active is not None:
            if any(hook(turn) for hook in INTERRUPTS):
                self._carry_on(turn, active)
                return
            self._continue(turn, active)
            return
        if any(hook(turn) for hook in PRE_ROUTES):
            return
        self._start(turn)

    def _answer_clarifying(self, turn: Turn) -> bool:
        """The answer to "报修还是投诉？": start the chosen request with the first message. False
        when the message chooses nothing: it is then understood as a message of its own."""
        choice, asked = clarify.chosen(turn), clarify.question(turn)
        turn.state.clear()
        if choice is None:
            return False
        first = self._as_if_said(turn, str(asked.get("text", "")), asked.get("photos") or ())
        if choice == "emergency":
            self._interrupt_for_emergency(first, None)
        elif choice != "none":
            first.parse = dataclasses.replace(first.parse, intent=choice, confidence=1.0)
            self._start(first, clarified=True)
        elif asked.get("resume"):
            self._resume_after_clarifying(first, asked["resume"])
        elif len(asked.get("options", ())) > 1 and asked["options"][0] == "emergency":
            first.parse = dataclasses.replace(first.parse, intent=asked["options"][1], confidence=1.0)
            self._start(first, clarified=True)
        else:
            turn.say("好的，请问您具体需要什么帮助？可以直接描述情况，或选择下面的服务。", *answers.MENU)
        turn.replies, turn.state, turn.next_flow = first.replies, first.state, first.next_flow
        return True

    def _as_if_said(self, turn: Turn, text: str, photos: Any) -> Turn:
        """The same turn, carrying the message the question was about instead of the answer."""
        inbound = dataclasses.replace(turn.inbound, text=text, photos=tuple(photos))
        return dataclasses.replace(turn, inbound=inbound, parse=self.nlu.parse(text, turn.now))

    def _resume_after_clarifying(self, turn: Turn, resume: dict[str, Any]) -> None:
        """No danger after all: back to the dialog that was open, where it was. The message was no
        answer to its question (it read like an emergency); the resident may raise it afterwards."""
        flow = FLOWS.get(str(resume.get("flow") or ""))
        if flow is None:
            self._start(turn, clarified=True)
            return
        turn.state.update(resume.get("state") or {})
        turn.stay(flow.name)
        title = TITLES.get(flow.name, "")
        turn.say(f"好的，没有危险就好。“{turn.text[:30]}”这件事可以在{title}提交后再告诉我。")
        self._carry_on(turn, flow)

    @staticmethod
    def _is_emergency(turn: Turn) -> bool:
        """Button values (the choices just offered, ticket numbers, booking slots) look odd to the
        classifier ("家里" alone reads like an emergency): for them only the emergency rules count
        (they answer with confidence >= RULE_CONFIDENCE)."""
        if turn.parse.intent != "emergency":
            return False
        is_button = (
            turn.text in turn.state.get(OFFERED, ())
            or turn.text.startswith(SLOT_PREFIX)
            or TICKET_NUMBER.search(turn.text) is not None
        )
        return not is_button or turn.parse.confidence >= RULE_CONFIDENCE

    @staticmethod
    def _hold_photos(turn: Turn) -> None:
        """Photos before any words: keep them for the request the next message starts."""
        turn.state["held_photos"] = [*turn.state.get("held_photos", []), *turn.inbound.photos]
        turn.stay(HOLDING_PHOTOS)
        turn.say("照片收到了。请问是要报修还是投诉？请简单描述一下情况。", "我要报修", "我要投诉")

    def _interrupt_for_emergency(self, turn: Turn, active: Flow | None) -> None:
        turn.finish()
        handle_emergency(turn)
        if active is not None and active.name in TITLES and active.name != "binding":
            turn.say(f"您刚才的{TITLES[active.name]}还没有提交，紧急情况处理好后可以再告诉我。")

    @staticmethod
    def _carry_on(turn: Turn, flow: Flow) -> None:
        """After an interruption the dialog goes on where it was: its question again."""
        title = TITLES.get(flow.name) if flow.name != "binding" else None
        flow.ask_again(turn, hint=f"您的{title}还没有提交，我们接着来：" if title else "")

    def _continue(self, turn: Turn, flow: Flow) -> None:
        if self._is_cancel(turn, flow):
            turn.finish()
            turn.say(f"好的，已为您取消{TITLES.get(flow.name, '')}。还有其他需要随时告诉我。")
            return
        if flow.resume(turn):
            if flow.name == "binding" and turn.next_flow is None and turn.account.resident_id is not None:
                self._continue_pending(turn)
            return
        if self._is_new_request(turn, flow):
            note = f"（您刚才的{TITLES.get(flow.name, '')}还没有提交，先为您处理这个问题。）"
            turn.finish()
            self._start(turn)
            turn.replies.insert(0, Reply(note))
            return
        flow.ask_again(turn)

    def _continue_pending(self, turn: Turn) -> None:
        """After binding, carry on with what the resident first asked for."""
        pending = str(turn.state.pop("pending", "") or "")
        turn.state.clear()
        if not pending or pending == turn.text:
            answers.greet(turn)
            return
        turn.parse = self.nlu.parse(pending, turn.now)
        turn.inbound = Inbound(
            turn.inbound.channel,
            turn.inbound.external_id,
            pending,
            turn.now,
            photos=turn.inbound.photos,
            display_name=turn.inbound.display_name,
        )
        if turn.parse.intent in ("greet", "out_of_scope", "affirm", "deny", "cancel"):
            answers.greet(turn)
            return
        turn.say(f"我们继续处理您刚才说的：“{pending[:50]}”")
        self._start(turn)

    @staticmethod
    def _is_cancel(turn: Turn, flow: Flow) -> bool:
        text = turn.text.strip("。.！!~ ")
        if text in CANCEL_WORDS:
            return True
        return turn.parse.intent == "cancel" and turn.parse.confidence >= 0.7 and text not in SKIP_WORDS

    @staticmethod
    def _is_new_request(turn: Turn, flow: Flow) -> bool:
        parse = turn.parse
        startable = set(FLOWS) | set(ANSWERS)
        small_talk = {"affirm", "deny", "cancel", "out_of_scope", "greet", "thanks", "goodbye"}
        return (
            parse.intent in startable - small_talk
            and parse.intent != flow.name
            and parse.confidence >= SWITCH_CONFIDENCE
            and (flow.name != "binding" or parse.intent not in NEEDS_BINDING)
        )

    def _start(self, turn: Turn, *, clarified: bool = False) -> None:
        intent = turn.parse.intent
        if turn.text.lower() in answers.HELP_WORDS:
            answers.help_text(turn)
            return
        if not clarified and (choices := clarify.options(turn.parse)):
            clarify.ask(turn, choices)
            return
        if intent in NEEDS_BINDING and turn.account.resident_id is None:
            FLOWS["binding"].start(turn)
            return
        flow = FLOWS.get(intent)
        if flow is not None:
            flow.start(turn)
            return
        ANSWERS.get(intent, answers.out_of_scope)(turn)


def _offered(replies: list[Reply]) -> list[str]:
    return sorted(
        {text for reply in replies for button in reply.buttons for text in (button.label, button.value)}
    )
