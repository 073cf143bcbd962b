"""The conversation engine: one inbound message in, replies out, state and tickets in the store.

Each message is one transaction: the processed message id, the dialog state, tickets, events and
outbox rows land together or not at all. A retried message id gets the recorded replies again.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from data.db import Sessions, once_more_if_disconnected, unit_of_work
from data.models import ChannelAccount, Compound, Conversation
from data.store import Store
from flows.dialog import change, clarify, drafts, split
from flows.dialog.form import SKIP_WORDS, Form
from flows.dialog.registry import FLOWS, by_title, spec
from flows.dialog.spec import Aside, Flow
from flows.dialog.turn import ASKED_AT, Button, Inbound, Reply, Turn
from flows.domain.outbox import reply_key
from flows.intents import answers, binding
from flows.intents.booking import SLOT_PREFIX
from flows.intents.emergency import handle_emergency
from flows.intents.status import TICKET_NUMBER
from nlu.types import NLUBackend, Parse

log = logging.getLogger(__name__)

CANCEL_WORDS = frozenset(
    {"取消", "算了", "不用了", "不要了", "不报了", "不约了", "先不了", "不需要了", "不弄了", "退出"}
)
CANCEL_LEAD = re.compile(
    r"^(?:(?:哎|唉|那|那就|还是)?\s*(?:算了|不用了|不要了|不报了|不修了|不约了)[\s，,。！!]*)+"
)
OWN_WAY = re.compile(r"自己(?:找人|来|修|弄|处理|搞)|找外面|不麻烦")
SWITCH_CONFIDENCE = 0.75
# A message shaped as a question ("电话多少啊", "几点下班？") asks it, at a lower confidence.
QUESTION_SHAPE = re.compile(r"[?？]|吗|多少|几点|几号|哪里|哪儿|在哪|怎么|什么时候|是什么|有没有|能不能")
QUESTION_CONFIDENCE = 0.55  # a clear new request in the middle of a form starts that request instead
APOLOGY = "抱歉，系统开小差了，您的消息没有处理成功，请稍后再发一次。紧急情况请直接拨打物业24小时值班电话。"
HOLDING_PHOTOS = "photos"
RULE_CONFIDENCE = 0.95
OFFERED = "offered"  # state key: the labels and values of the buttons the dialog's last replies offered
SWITCH = "switch"  # state key: a new ticket-type request waiting while the resident picks what goes first

# Hooks that may claim a message before intent routing (callback answers, notice look-ups, ...):
# each returns True when it handled the message. Later features register here.
PRE_ROUTES: list[Callable[[Turn], bool]] = []
# Hooks that may claim a message even in the middle of a dialog (a staff question newer than the
# dialog's own); the dialog then asks its question again. Registered by flows.dialog.hooks.
INTERRUPTS: list[Callable[[Turn], bool]] = []


class Engine:
    def __init__(self, sessions: Sessions, nlu: NLUBackend) -> None:
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
        with unit_of_work(self.sessions) as store:
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
                store.dialogs.record_replies(
                    inbound.channel, inbound.message_id, [r.to_json() for r in turn.replies]
                )
            return turn.replies

    @staticmethod
    def _replies_for_retry(store: Store, channel: str, message_id: str) -> list[Reply]:
        """A retry gets the recorded replies, or nothing when they already went out late (outbox)."""
        if store.has_outbox(reply_key(channel, message_id, "late")):
            return []
        return [Reply.from_json(r) for r in store.dialogs.recorded_replies(channel, message_id)]

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
        draft = state.pop(drafts.DRAFT, None)
        return Turn(
            store,
            inbound,
            parse,
            account,
            compound,
            store.settings(compound),
            state,
            next_flow=conversation.flow,
            draft=draft if isinstance(draft, dict) else None,
        )

    @staticmethod
    def _compound(store: Store, compound_id: int | None) -> Compound:
        return store.compound(compound_id)

    @staticmethod
    def _save(store: Store, conversation: Conversation, turn: Turn) -> None:
        state = {**turn.state, OFFERED: _offered(turn.replies)} if turn.next_flow else {}
        if turn.draft is not None:
            state[drafts.DRAFT] = turn.draft
        store.save_dialog(
            turn.account, conversation, turn.next_flow, state, turn.now, turn.inbound.received_at
        )

    # -- routing ---------------------------------------------------------------------------------
    def _route(self, turn: Turn) -> None:
        drafts.expire(turn)
        if turn.next_flow == drafts.OFFER and self._answer_offer(turn):
            return
        self._route_message(turn)
        drafts.offer(turn)

    def _answer_offer(self, turn: Turn) -> bool:
        """The answer to "您刚才的报修还没提交，要继续吗？"; False when it is a message of its own."""
        choice, turn.next_flow = drafts.answer(turn), None
        turn.state.clear()
        draft = turn.draft
        if choice is None or draft is None:
            return False
        turn.draft = None
        if choice == "drop":
            turn.say(f"好的，刚才的{draft.get('title', '事项')}就不办了。还有其他需要随时告诉我。")
            return True
        self._resume_draft(turn, draft)
        return True

    @staticmethod
    def _draft_intent(turn: Turn) -> str:
        draft = turn.draft or {}
        titled = by_title(str(draft.get("title", "")))
        return str(draft.get("flow") or (titled.name if titled is not None else ""))

    def _resume_draft(self, turn: Turn, draft: dict[str, Any]) -> None:
        flow = FLOWS.get(str(draft.get("flow", "")))
        if flow is not None:
            turn.state.update(draft.get("state") or {})
            turn.stay(flow.name)
            flow.ask_again(turn, hint=f"好的，我们接着办{spec(flow.name).title}：")
            return
        first = self._as_if_said(turn, str(draft.get("text", "")), draft.get("photos") or ())
        self._start(first)
        turn.state, turn.next_flow, turn.draft = first.state, first.next_flow, first.draft

    def _route_message(self, turn: Turn) -> None:
        previous, turn.next_flow = turn.next_flow, None
        if previous == drafts.OFFER:
            previous = None
        if previous is None and turn.draft is not None and drafts.asks_back(turn, self._draft_intent(turn)):
            draft, turn.draft = turn.draft, None
            self._resume_draft(turn, draft)
            return
        active = FLOWS.get(previous or "")
        if active is not None and self._left_idle(turn, active):
            drafts.keep_form(turn, active.name, spec(active.name).title)
            turn.state.clear()
            active = None
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
        title = spec(flow.name).title
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
        kept = spec(active.name if active is not None else None)
        if active is not None and kept.keeps_draft:
            drafts.keep_form(turn, active.name, kept.title, offered=True)  # not now: danger first
        turn.finish()
        handle_emergency(turn)
        if kept.keeps_draft:
            turn.say(f"您刚才的{kept.title}帮您存着，紧急情况处理好后回复“继续”就可以接着办。")

    @staticmethod
    def _carry_on(turn: Turn, flow: Flow) -> None:
        """After an interruption the dialog goes on where it was: its question again."""
        kept = spec(flow.name)
        flow.ask_again(turn, hint=f"您的{kept.title}还没有提交，我们接着来：" if kept.keeps_draft else "")

    def _continue(self, turn: Turn, flow: Flow) -> None:
        if flow.name == change.NAME and flow.resume(turn):  # its own 取消 / 不取消 buttons come first
            return
        if self._is_cancel(turn, flow):
            turn.finish()
            title = spec(flow.name).title
            turn.say(
                f"好的，已为您取消{title}。还有其他需要随时告诉我。" if title else "好的，那就先不改了。"
            )
            return
        if SWITCH in turn.state and self._answer_switch(turn, flow):
            return
        kind = self._new_request(turn, flow)
        if kind is not None:
            self._take_new_request(turn, flow, kind)
            return
        if flow.resume(turn):
            if (
                flow.name == binding.FLOW.name
                and turn.next_flow is None
                and turn.account.resident_id is not None
            ):
                self._continue_pending(turn)
            return
        if self._is_new_request(turn, flow):
            self._take_new_request(turn, flow, spec(turn.parse.intent).aside)
            return
        flow.ask_again(turn)

    @staticmethod
    def _left_idle(turn: Turn, flow: Flow) -> bool:
        """A form not answered for ``FORM_IDLE`` whose question the message does not answer."""
        asked = turn.state.get(ASKED_AT)
        if not asked or turn.now - datetime.fromisoformat(str(asked)) < drafts.FORM_IDLE:
            return False
        return spec(flow.name).keeps_draft and not flow.takes(turn, spec(turn.parse.intent))

    @staticmethod
    def _new_request(turn: Turn, flow: Flow) -> Aside | None:
        """What the message is when it is not an answer but another request (``FlowSpec.aside``)."""
        intent = turn.parse.intent
        asked = spec(intent)
        kind = asked.aside
        asks = kind == Aside.QUESTION and QUESTION_SHAPE.search(turn.text) is not None
        needed = QUESTION_CONFIDENCE if asks else SWITCH_CONFIDENCE
        if flow.name == binding.FLOW.name or intent == flow.name or turn.parse.confidence < needed:
            return None
        if kind is None or flow.takes(turn, asked):
            return None
        return kind

    def _take_new_request(self, turn: Turn, flow: Flow, kind: Aside | None) -> None:
        if kind == Aside.QUESTION:
            self._answer_aside(turn, flow)
        elif kind == Aside.HANDOFF:
            unfinished = _unfinished(turn, flow)
            turn.finish()
            answers.handoff(turn, unfinished)
        elif kind == Aside.TICKET:
            self._ask_which_first(turn, flow)
        else:
            note = f"（您刚才的{spec(flow.name).title}还没有提交，先为您处理这个问题。）"
            turn.finish()
            self._start(turn)
            turn.replies.insert(0, Reply(note))

    @staticmethod
    def _answer_aside(turn: Turn, flow: Flow) -> None:
        """A question in the middle of a form: answered now, then the form asks its question again."""
        title = spec(flow.name).title
        own = turn.parse.intent == "status_query" and title and title in turn.text
        if own and TICKET_NUMBER.search(turn.text) is None and not _has_open(turn, flow.name):
            # "那刚才投诉的事呢" with no complaint on file: this very form
            flow.ask_again(turn, hint=f"您的{title}还没有提交，我们接着来：")
            return
        saved = copy.deepcopy(turn.state)
        _answer(turn, turn.parse.intent)
        turn.state.clear()
        turn.state.update(saved)
        turn.stay(flow.name)
        flow.ask_again(turn, hint=f"回到刚才的{title}：" if title else "")

    @staticmethod
    def _ask_which_first(turn: Turn, flow: Flow) -> None:
        """Another ticket-type request during a form: which goes first? The other one is kept."""
        old, new = spec(flow.name).title, spec(turn.parse.intent).title
        turn.state[SWITCH] = {"text": turn.text, "photos": list(turn.inbound.photos), "title": new}
        turn.say(
            f"您刚才的{old}还没有提交。要先把{old}办完，还是先办{new}？另一件我帮您记着，办完接着办。",
            Button(f"先办完{old}"),
            Button(f"先办{new}"),
        )
        turn.stay(flow.name)

    def _answer_switch(self, turn: Turn, flow: Flow) -> bool:
        """The answer to "which goes first?"; False when it picks nothing (a message of its own)."""
        asked = turn.state.pop(SWITCH)
        old, new = spec(flow.name).title, str(asked.get("title", ""))
        text = turn.text.strip("。.！!~ ")
        if text == f"先办{new}" or (new in text and old not in text):
            drafts.keep_form(turn, flow.name, old)
            turn.finish()
            first = self._as_if_said(turn, str(asked.get("text", "")), asked.get("photos") or ())
            self._start(first)
            turn.state, turn.next_flow = first.state, first.next_flow
            turn.replies.insert(0, Reply(f"好的，先办{new}，您的{old}帮您存着，稍后接着办。"))
            return True
        if text == f"先办完{old}" or old in text or text in drafts.GO_ON_WORDS:
            drafts.keep_request(turn, str(asked.get("text", "")), list(asked.get("photos") or ()), new)
            flow.ask_again(turn, hint=f"好的，先把{old}办完，{new}稍后接着办。")
            return True
        return False

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
        lead = CANCEL_LEAD.match(text)
        if lead is not None and (len(text) - lead.end() <= 4 or OWN_WAY.search(text, lead.end())):
            return True  # "算了算了 我自己找人修吧"
        return turn.parse.intent == "cancel" and turn.parse.confidence >= 0.7 and text not in SKIP_WORDS

    @staticmethod
    def _is_new_request(turn: Turn, flow: Flow) -> bool:
        parse, asked = turn.parse, spec(turn.parse.intent)
        return (
            asked.starts
            and not asked.small_talk
            and parse.intent != flow.name
            and parse.confidence >= SWITCH_CONFIDENCE
            and (flow.name != binding.FLOW.name or not asked.needs_binding)
        )

    def _start(self, turn: Turn, *, clarified: bool = False) -> None:
        intent = turn.parse.intent
        if turn.text.lower() in answers.HELP_WORDS:
            answers.help_text(turn)
            return
        if not clarified and (several := split.split(turn.text, lambda text: self.nlu.parse(text, turn.now))):
            self._start_several(turn, several)
            return
        if not clarified and (choices := clarify.options(turn.parse)):
            clarify.ask(turn, choices)
            return
        if spec(intent).needs_binding and turn.account.resident_id is None:
            binding.FLOW.start(turn)
            return
        if change.wanted(turn) is not None:  # "改到周日", "那个报修取消吧": what exists, not a new one
            change.FLOW.start(turn)
            return
        flow = spec(intent).flow
        if flow is not None:
            flow.start(turn)
            return
        _answer(turn, intent)

    def _start_several(self, turn: Turn, requests: list[split.Request]) -> None:
        """Questions answered first, then the first ticket-type request started; a further one kept."""
        questions = [r for r in requests if spec(r.intent).aside == Aside.QUESTION]
        tickets = [r for r in requests if spec(r.intent).aside == Aside.TICKET]
        turn.say(f"您说了{len(requests)}件事，我一件一件帮您办。")
        for request in questions:
            _answer(self._as_if_said(turn, request.text, ()), request.intent)
        if not tickets:
            return
        first = self._as_if_said(turn, tickets[0].text, turn.inbound.photos)
        if questions:
            turn.say(f"另外，您说的“{tickets[0].text[:30]}”，我来帮您办{spec(tickets[0].intent).title}：")
        self._start(first, clarified=True)
        turn.state, turn.next_flow = first.state, first.next_flow
        for later in tickets[1:2]:
            drafts.keep_request(turn, later.text, [], spec(later.intent).title)


def _answer(turn: Turn, intent: str) -> None:
    """The single-turn answer of ``intent`` (out of scope for an intent with none)."""
    (spec(intent).answer or answers.out_of_scope)(turn)


def _has_open(turn: Turn, name: str) -> bool:
    kind = spec(name).ticket
    return (
        turn.unit is not None
        and kind is not None
        and bool(turn.store.tickets.open_of_unit(turn.unit.id, kind=kind))
    )


def _unfinished(turn: Turn, flow: Flow) -> str:
    """What an unfinished form had collected, for the person who takes over."""
    if not isinstance(flow, Form):
        return ""
    return flow.details(turn, turn.state.get("values", {}))


def _offered(replies: list[Reply]) -> list[str]:
    return sorted(
        {text for reply in replies for button in reply.buttons for text in (button.label, button.value)}
    )
