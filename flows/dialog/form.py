"""A small slot-filling form: ask for what is missing, validate each answer, confirm, submit.

Slot values live in the conversation state as JSON, so a form survives a restart and any process
can take the next message. A message may answer the question asked, correct any earlier answer
("时间改成明天上午"), or both.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flows.dialog.turn import Button, Turn

if TYPE_CHECKING:
    from flows.dialog.spec import FlowSpec

Values = dict[str, Any]
Question = tuple[str, tuple[Button | str, ...]]

CONFIRM_WORDS = frozenset(
    {"确认", "确定", "提交", "是", "是的", "对", "对的", "好", "好的", "可以", "没问题", "ok", "嗯"}
    | {"得", "好嘅", "係", "系", "冇问题", "行", "中", "要得", "对头"}  # Cantonese and dialects
)
CHANGE_WORDS = frozenset({"修改", "改", "改一下", "不对", "有误", "要改"})
SKIP_WORDS = frozenset(
    {"没有", "无", "没", "不清楚", "不知道", "跳过", "不记得", "没有了", "都行", "随便", "略"}
    | {"冇", "冇啊", "冇呀", "冇了", "唔记得", "唔知", "无所谓", "没啥", "没什么"}
)
SKIPPED = "—"
# Answers that leave the choice to us ("随便", "都行", "嗯" to a list of times) or do not know yet.
AGREE_WORDS = frozenset(
    {"随便", "都行", "都可以", "无所谓", "你们定", "你定", "看着办", "你们安排", "听你们的"}
)
UNSURE_WORDS = frozenset({"不知道", "不清楚", "不确定", "说不好", "看情况", "再说", "不好说", "唔知"})
# "时间改成周日下午": the message corrects an earlier answer and does not answer the question asked.
CORRECTION = re.compile(r"(?:改|换|调)(?:成|到|为|在)|(?:改|换)(?:个|一下)?时间|改一下")


# "地点是楼上1602", "时间改成周日", "问题：卫生间洗手池漏水": a slot named by its label, then the new value.
LABEL_CORRECTION = "{label}(?:不对|错了)?[，,\\s]*(?:应该)?(?:是|改成|改为|换成|为|：|:)\\s*(?P<value>.+)"


REPLACEMENT = re.compile(
    r"不是(?P<old>[^，,。！!？?\s]{1,12})[，,\s]*(?:而)?(?:是|在)(?P<new>[^。！!？?]{1,40})"
)


def is_correction(text: str) -> bool:
    return CORRECTION.search(text) is not None


# An answer to a typed question says little else: "周六上午吧" does, "楼上半夜一直在拖椅子 吵得没法睡"
# (a time of day inside a complaint) does not.
SHORT_ANSWER = 5


def _words_beyond_entities(turn: Turn) -> int:
    text = turn.text
    for entity in turn.parse.entities:
        text = text.replace(entity.text, "")
    return len(re.findall(r"[\w\u4e00-\u9fff]", text))


def _one_word(text: str) -> str:
    """ "随便 都行 你们安排" is one answer said three ways: the word they agree on, else the text."""
    words = [w for w in re.split(r"[\s，,。.！!~、]+", text.lower()) if w]
    if len(words) > 1 and set(words) <= AGREE_WORDS | UNSURE_WORDS | CONFIRM_WORDS:
        for vocabulary in (AGREE_WORDS, UNSURE_WORDS, CONFIRM_WORDS):
            if found := [w for w in words if w in vocabulary]:
                return found[0]
    return text.strip("。.！!~ ，,").lower()


def _label_correction(form: Form, text: str) -> tuple[Slot, str] | None:
    """The slot a correction names by its label (or a short name of it) and the value said for it."""
    for slot in form.slots:
        for label in {slot.label, *slot.aliases}:
            found = re.match(LABEL_CORRECTION.format(label=re.escape(label)), text)
            if found and meaningful_value(found.group("value")):
                return slot, found.group("value").strip("。.！!~ ")
    return None


def meaningful_value(text: str) -> bool:
    return len(re.findall(r"[\w\u4e00-\u9fff]", text)) >= 1


@dataclass(frozen=True)
class Narrowed:
    """An answer that narrows a slot down without filling it (a day named without a time).

    The slot stays open; ``hint`` (JSON) is kept in the state for the slot's question to offer the
    choices left, and ``note`` (if any) is said first ("这个时段约满了")."""

    hint: dict[str, Any]
    note: str = ""


def narrowed(turn: Turn, slot: str) -> dict[str, Any] | None:
    """The hint of the last ``Narrowed`` answer for ``slot``, while the slot is still open."""
    hints: dict[str, Any] = turn.state.get("narrowed") or {}
    return hints.get(slot)


def _nothing(turn: Turn, values: Values) -> Any:
    return None


def _always(turn: Turn, values: Values) -> bool:
    return True


def _valid(turn: Turn, values: Values, value: Any) -> str | None:
    return None


@dataclass(frozen=True)
class Slot:
    name: str
    label: str  # shown in the summary and in the "which to change" menu
    question: Callable[[Turn, Values], Question]
    answer: Callable[
        [Turn, Values], Any
    ]  # value (or Narrowed) from a reply to the question; None: not understood
    spot: Callable[[Turn, Values], Any] = _nothing  # value (or Narrowed) from entities in any message
    # A value a message clearly holds while it answers another question (a repair's description in
    # "卧室的灯不亮了" said for the area); fills the slot only while it is empty, never corrects it.
    glean: Callable[[Turn, Values], Any] = _nothing
    check: Callable[[Turn, Values, Any], str | None] = _valid  # a polite error, or None
    show: Callable[[Any], str] = str
    needed: Callable[[Turn, Values], bool] = _always
    skippable: bool = False
    # Free text takes any words, so whether a message answers it depends on what the message is
    # about: only messages the NLU reads as one of these intents (or as small talk) do.
    free_text: bool = False
    takes_intents: frozenset[str] = frozenset({"repair", "complaint"})
    aliases: tuple[str, ...] = ()  # other names residents use for it in a correction (地点 for 位置)
    shape: re.Pattern[str] | None = (
        None  # free text of this shape answers, whatever the NLU says ("三四天了")
    )
    # A vague answer (随便, 不知道) is asked about once, specifically (``vague_question``); the next
    # vague answer, or one that leaves the choice to us, settles on ``default`` and says so.
    vague_question: str = ""
    default: Callable[[Turn, Values], Any] = _nothing


class Form:
    """Subclasses name their slots and say what to do with the filled values."""

    name: str = ""
    title: str = ""  # 报修, 投诉, 预约
    slots: tuple[Slot, ...] = ()
    key_slots: frozenset[str] = frozenset()  # once these are known, ``ready`` runs (before more questions)

    # -- hooks -------------------------------------------------------------------------------
    def prefill(self, turn: Turn, values: Values) -> None:
        """Defaults before anything is asked (the phone on file, the bound unit, ...)."""

    def ready(self, turn: Turn, values: Values) -> bool:
        """Called once the key slots are known; False ends the form (e.g. merged as a repeat)."""
        return True

    def submit(self, turn: Turn, values: Values) -> None:
        raise NotImplementedError

    # -- protocol used by the engine -----------------------------------------------------------
    def start(self, turn: Turn) -> None:
        values: Values = {}
        self.prefill(turn, values)
        held = turn.state.pop("held_photos", [])
        turn.state.update(values={}, asking=None, narrowed={}, photos=[*held, *turn.inbound.photos])
        turn.state["said"] = turn.text[:300]  # the first message, for a person taking over
        tried: Values = {}
        for slot in self.slots:
            tried[slot.name] = slot.spot(turn, values)
            self._accept(turn, values, slot, tried[slot.name])
        self._fill_empty(turn, values, tried)
        turn.state["values"] = values
        self._advance(turn, values)

    def resume(self, turn: Turn) -> bool:
        """Handle a message while this form is active; False if it made no sense here."""
        values: Values = turn.state.setdefault("values", {})
        turn.state.setdefault("photos", []).extend(turn.inbound.photos)
        asking = turn.state.get("asking")
        if asking == "confirm":
            return self._on_confirm(turn, values)
        if asking == "which":
            return self._on_which(turn, values)
        slot = self._slot(asking)
        if slot is None:
            self._advance(turn, values)
            return True
        understood = self._on_answer(turn, values, slot)
        if not understood and not turn.inbound.photos:
            return False
        self._advance(turn, values)
        return True

    def ask_again(self, turn: Turn, hint: str = "抱歉，我没太明白。") -> None:
        """Repeat the pending question, after ``hint``."""
        values: Values = turn.state.get("values", {})
        slot = self._slot(turn.state.get("asking"))
        if slot is None:
            self._advance(turn, values, hint=hint)
            return
        text, buttons = slot.question(turn, values)
        turn.say(hint + text, *buttons)
        turn.stay(self.name)

    def takes(self, turn: Turn, asked: FlowSpec) -> bool:
        """Whether the message, which asks for ``asked``, answers the pending question: a time for a
        time, a place for a place, a yes for the summary. "周六想约个保洁" holds a time but names a
        service (the booking's topic), so it is a new request, not the visit time."""
        intent = asked.name
        values: Values = turn.state.get("values", {})
        asking = turn.state.get("asking")
        if asking in ("confirm", "which"):
            return self._answers_summary(turn, values)
        slot = self._slot(asking)
        if slot is None:
            return True
        if slot.free_text:
            shaped = slot.shape is not None and slot.shape.search(turn.text) is not None
            return shaped or intent == self.name or intent in slot.takes_intents
        return (
            slot.answer(turn, values) is not None
            and not asked.names_topic(turn.parse)
            and _words_beyond_entities(turn) <= SHORT_ANSWER
        )

    def details(self, turn: Turn, values: Values) -> str:
        """What the form has collected so far, one line (for a person taking over)."""
        shown = [
            f"{slot.label}：{slot.show(values[slot.name]) if values[slot.name] != SKIPPED else '无'}"
            for slot in self.slots
            if slot.name in values and slot.needed(turn, values)
        ]
        said = str(turn.state.get("said") or "")
        first = f"；居民原话：{said}" if said and said not in "；".join(shown) else ""
        return f"未提交的{self.title}（{'；'.join(shown)}{first}）" if shown or first else ""

    def _answers_summary(self, turn: Turn, values: Values) -> bool:
        text = turn.text.strip("。.！!~ ").lower()
        if text in CONFIRM_WORDS | CHANGE_WORDS or is_correction(text) or _label_correction(self, text):
            return True
        return any(slot.spot(turn, values) not in (None, values.get(slot.name)) for slot in self.slots)

    # -- internals -------------------------------------------------------------------------------
    def _slot(self, name: str | None) -> Slot | None:
        return next((s for s in self.slots if s.name == name), None)

    def _on_answer(self, turn: Turn, values: Values, slot: Slot) -> bool:
        tried: Values = {}
        corrected = self._spot_all(turn, values, skip=slot.name, tried=tried)
        if not corrected and (REPLACEMENT.search(turn.text) or _label_correction(self, turn.text)):
            return self._correct_in_words(turn, values, add=False)  # the question is asked again
        if slot.skippable and turn.text.strip("。.！!~ ").lower() in SKIP_WORDS | CONFIRM_WORDS:
            values[slot.name] = SKIPPED
            return True
        if corrected and is_correction(turn.text):
            return True  # the message was about an earlier answer; the question is asked again
        if not corrected and self._on_vague(turn, values, slot):
            return True
        value = slot.answer(turn, values)
        if value is None:
            return corrected
        self._accept(turn, values, slot, value)
        self._fill_empty(turn, values, tried, skip=slot.name)  # what else it says, as a first message
        return True

    def _on_vague(self, turn: Turn, values: Values, slot: Slot) -> bool:
        """随便 / 不知道 / 嗯 where a choice is asked: ask once, specifically, then settle and say so."""
        text = _one_word(turn.text)
        offers_choices = bool(slot.question(turn, values)[1])  # "嗯" to a list of times: the first
        agrees = offers_choices and (
            text in AGREE_WORDS or (text in CONFIRM_WORDS and slot.default is not _nothing)
        )
        if not (agrees or text in UNSURE_WORDS) or (not slot.vague_question and slot.default is _nothing):
            return False
        asked: dict[str, bool] = turn.state.setdefault("vague", {})
        settles = agrees or asked.get(slot.name) or not slot.vague_question
        settled = slot.default(turn, values) if settles else None
        if settled is not None and self._accept(turn, values, slot, settled):
            turn.say(f"好的，{slot.label}先按“{slot.show(settled)}”给您登记，不合适可以随时告诉我改。")
            return True
        if slot.vague_question and not asked.get(slot.name):
            asked[slot.name] = True
            return True
        return False

    def _accept(self, turn: Turn, values: Values, slot: Slot, value: Any) -> bool:
        if value is None:
            return False
        hints: dict[str, Any] = turn.state.setdefault("narrowed", {})
        if isinstance(value, Narrowed):
            values.pop(slot.name, None)
            hints[slot.name] = value.hint
            if value.note:
                turn.say(value.note)
            return True
        error = slot.check(turn, values, value)
        if error is not None:
            turn.say(error)
            return False
        values[slot.name] = value
        hints.pop(slot.name, None)
        return True

    def _spot_all(
        self, turn: Turn, values: Values, skip: str | None = None, tried: Values | None = None
    ) -> bool:
        """Take corrections from entities in the message; True if any slot changed. ``tried`` gets
        each slot's spotted value."""
        changed = False
        for slot in self.slots:
            if slot.name == skip:
                continue
            value = slot.spot(turn, values)
            if tried is not None:
                tried[slot.name] = value
            if isinstance(value, Narrowed) and value.hint == narrowed(turn, slot.name):
                continue
            if value is not None and value != values.get(slot.name):
                changed = self._accept(turn, values, slot, value) or changed
        return changed

    def _fill_empty(self, turn: Turn, values: Values, tried: Values, skip: str | None = None) -> None:
        """Fill the empty slots the message also answers: spotted again if that gives something new
        now (a booking's time needs the service named with it), else gleaned. ``tried``: what each
        slot's spot gave before, already accepted or refused (said once)."""
        for slot in self.slots:
            if slot.name == skip or slot.name in values or not slot.needed(turn, values):
                continue
            value = slot.spot(turn, values)
            if value is None or value == tried.get(slot.name):
                value = slot.glean(turn, values)
            self._accept(turn, values, slot, value)

    def _missing(self, turn: Turn, values: Values) -> Slot | None:
        return next((s for s in self.slots if s.needed(turn, values) and s.name not in values), None)

    def _advance(self, turn: Turn, values: Values, hint: str = "") -> None:
        turn.stay(self.name)
        slot = self._missing(turn, values)
        if not self._check_ready(turn, values, complete=slot is None):
            turn.finish()
            return
        if slot is not None:
            turn.state["asking"] = slot.name
            text, buttons = slot.question(turn, values)
            if slot.vague_question and (turn.state.get("vague") or {}).get(slot.name):
                text = slot.vague_question  # asked once more, specifically, with the same choices
            turn.say(hint + text, *buttons)
            return
        turn.state["asking"] = "confirm"
        turn.say(hint + self.summary(turn, values), "确认", "修改", "取消")

    def _check_ready(self, turn: Turn, values: Values, complete: bool) -> bool:
        """Run ``ready`` once, as soon as the key slots (or all slots) are filled."""
        if turn.state.get("checked"):
            return True
        keys_known = all(k in values for k in self.key_slots if self._slot_needed(turn, values, k))
        if not (complete or (self.key_slots and keys_known)):
            return True
        turn.state["checked"] = True
        return self.ready(turn, values)

    def _slot_needed(self, turn: Turn, values: Values, name: str) -> bool:
        slot = self._slot(name)
        return slot is not None and slot.needed(turn, values)

    def summary(self, turn: Turn, values: Values) -> str:
        lines = [f"请您核对{self.title}信息："]
        for slot in self.slots:
            if slot.needed(turn, values) and slot.name in values:
                lines.append(
                    f"{slot.label}：{slot.show(values[slot.name]) if values[slot.name] != SKIPPED else '无'}"
                )
        if turn.state.get("photos"):
            lines.append(f"照片：{len(turn.state['photos'])} 张")
        lines.append("信息无误请回复“确认”，需要修改请回复“修改”，不需要了可以回复“取消”。")
        return "\n".join(lines)

    def _on_confirm(self, turn: Turn, values: Values) -> bool:
        text = turn.text.strip("。.！!~ ").lower()
        if self._spot_all(turn, values) or self._correct_in_words(turn, values):
            self._advance(turn, values, hint=self._changed_hint(turn, values))
            return True
        if text in CONFIRM_WORDS or (turn.parse.intent == "affirm" and text not in CHANGE_WORDS):
            self.submit(turn, values)
            turn.finish()
            return True
        if text in CHANGE_WORDS or turn.parse.intent == "deny":
            self._ask_which(turn, values)
            return True
        if turn.inbound.photos:
            self._advance(turn, values, hint="照片已收到。")
            return True
        return False

    def _ask_which(self, turn: Turn, values: Values) -> None:
        turn.state["asking"] = "which"
        choices = [s.label for s in self.slots if s.needed(turn, values) and s.name in values]
        turn.say("请问您要修改哪一项？也可以直接告诉我正确的内容。", *choices)
        turn.stay(self.name)

    def _on_which(self, turn: Turn, values: Values) -> bool:
        chosen = next((s for s in self.slots if s.label == turn.text or s.name == turn.text), None)
        if chosen is not None:
            values.pop(chosen.name, None)
            self._advance(turn, values)
            return True
        if self._spot_all(turn, values) or self._correct_in_words(turn, values):
            self._advance(turn, values, hint=self._changed_hint(turn, values))
            return True
        return False

    def _correct_in_words(self, turn: Turn, values: Values, *, add: bool = True) -> bool:
        """Corrections no entity shows: "地点是楼上1602", "不是厨房 是卫生间的洗手池", or details
        added at the summary ("就是楼上1602 每天晚上十一点多") for what was skipped. True if any changed."""
        text = turn.text.strip("。.！!~ ")
        named = _label_correction(self, text)
        if named is not None:
            slot, value = named
            return self._accept(turn, values, slot, value if slot.free_text else slot.spot(turn, values))
        swapped = REPLACEMENT.search(text)
        if swapped is not None:
            return self._replace_words(values, swapped.group("old"), swapped.group("new"))
        for slot in self.slots if add else ():  # "希望你们上去说说他": the whole message is a wish
            said = slot.glean(turn, values) if slot.free_text else None
            if isinstance(said, str) and len(said) >= 0.6 * len(text) and said != values.get(slot.name):
                return self._accept(turn, values, slot, said)
        changed = False
        for slot in self.slots if add else ():
            if values.get(slot.name, SKIPPED) == SKIPPED and slot.needed(turn, values):
                changed = self._accept(turn, values, slot, slot.glean(turn, values)) or changed
        return changed

    def _replace_words(self, values: Values, old: str, new: str) -> bool:
        """不是厨房 是卫生间: the words replaced wherever an answer in words holds them."""
        old, new = old.strip("，, 的"), new.strip("，, ")
        changed = False
        for slot in self.slots:
            value = values.get(slot.name)
            if slot.free_text and isinstance(value, str) and old and old in value:
                values[slot.name] = value.replace(old, new, 1)
                changed = True
        return changed

    def _changed_hint(self, turn: Turn, values: Values) -> str:
        """After a correction: 已为您修改 only if nothing is left to ask (a named day still needs a time)."""
        return "好的，已为您修改。" if self._missing(turn, values) is None else ""
