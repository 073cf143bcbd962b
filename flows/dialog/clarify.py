"""When the NLU is unsure: one question with buttons instead of a wrong guess.

- Two requests close together, or the best guess under the answer band: "请问您是要报修，还是投诉？".
  A wrong guess would start the wrong form and file the resident's story under it.
- An emergency guessed by the classifier alone with little confidence (no rule fired): paging the
  duty staff on a guess would cry wolf, yet a missed emergency is worse, so the question itself
  carries the duty phone and the public emergency numbers, and "有危险" pages at once.

The first message is kept in the dialog state; the chosen button starts that request with it, so
nothing the resident wrote is lost and nothing is asked twice.
"""

from __future__ import annotations

from typing import Any

from flows.dialog.turn import Button, Turn
from flows.intents.contact import PUBLIC_EMERGENCY, emergency_call
from nlu.types import Parse

CLARIFY = "clarify"  # the dialog's name while the question is open
ANSWER_BAND = 0.55  # a best guess below this, with a close second, is asked about
CLOSE = 0.2  # "close": the second guess within this of the first
FALLBACK_SHARE = 0.35  # below the NLU threshold, the two best main guesses together at least this
EMERGENCY_SURE = 0.6  # a classifier's emergency at or above this pages without asking

# What each request is called on a button, and the words that choose it when typed.
CHOICES: dict[str, tuple[str, tuple[str, ...]]] = {
    "emergency": ("有危险，马上派人", ("有危险", "危险", "有", "是", "是的", "对", "快", "快来", "紧急")),
    "repair": ("我要报修", ("报修", "修", "维修")),
    "complaint": ("我要投诉", ("投诉", "反映")),
    "fee_query": ("查询物业费", ("缴费", "费", "账单", "欠")),
    "booking": ("预约服务", ("预约", "约")),
    "status_query": ("查询进度", ("进度", "催")),
    "enquiry": ("咨询问题", ("咨询", "问问", "问")),
}
NONE_OF_THEM = "都不是"
NO_DANGER = ("没有危险", ("没有危险", "没危险", "不危险", "没有", "没", "不是", "不用"))
QUESTION = "请问您是要{first}，还是{second}？"
DANGER_QUESTION = (
    "请问现在有没有危险（着火、冒烟、燃气味、有人被困或受伤、大量进水）？\n{call}\n"
    "有危险请点“有危险，马上派人”，我们立即通知值班人员。"
)
WORDS = {
    "repair": "报修",
    "complaint": "投诉",
    "fee_query": "查询缴费",
    "booking": "预约服务",
    "status_query": "查询进度",
    "enquiry": "咨询",
}


def options(parse: Parse) -> tuple[str, ...]:
    """The requests to ask about, best first, or () when the parse is clear enough to act on."""
    if parse.intent == "emergency":
        if parse.confidence >= EMERGENCY_SURE:
            return ()
        others = [intent for intent, _ in parse.ranking if intent in WORDS]
        return ("emergency", *others[:1])
    ranked = [(intent, p) for intent, p in parse.ranking if intent in WORDS]
    if len(ranked) < 2:
        return ()
    (first, p1), (second, p2) = ranked[:2]
    fell_back = parse.intent == "out_of_scope" and parse.ranking[0][0] != "out_of_scope"
    if fell_back and p1 + p2 >= FALLBACK_SHARE:
        return (first, second)
    if parse.intent == first and p1 < ANSWER_BAND and p1 - p2 < CLOSE:
        return (first, second)
    return ()


def ask(turn: Turn, choices: tuple[str, ...], resume: dict[str, Any] | None = None) -> None:
    """Ask which of ``choices`` the resident means; ``resume`` is a dialog to go back to if none."""
    question: dict[str, Any] = {
        "text": turn.text,
        "photos": list(turn.inbound.photos),
        "options": list(choices),
    }
    if resume is not None:
        question["resume"] = resume
    turn.state.clear()
    turn.state[CLARIFY] = question
    turn.stay(CLARIFY)
    if choices[0] == "emergency":
        buttons = [Button(CHOICES["emergency"][0]), Button(NO_DANGER[0])]
        call = emergency_call(turn.compound)
        call += "" if PUBLIC_EMERGENCY in call else PUBLIC_EMERGENCY
        turn.say(DANGER_QUESTION.format(call=call), *buttons)
        return
    first, second = (WORDS[c] for c in choices[:2])
    turn.say(
        QUESTION.format(first=first, second=second), *(Button(CHOICES[c][0]) for c in choices), NONE_OF_THEM
    )


def question(turn: Turn) -> dict[str, Any]:
    """The open question: the first message (text, photos), the options, a dialog to resume."""
    found = turn.state.get(CLARIFY)
    return found if isinstance(found, dict) else {}


def chosen(turn: Turn) -> str | None:
    """The request the answer picks; "none" for 都不是 or no danger; None when it picks nothing
    (a new message, to be understood on its own)."""
    offered = [str(c) for c in question(turn).get("options", ()) if c in CHOICES]
    text = turn.text.strip("。.！!~ ")
    if not offered or not text:
        return None
    if offered[0] == "emergency":
        if text == CHOICES["emergency"][0] or text in CHOICES["emergency"][1]:
            return "emergency"
        return "none" if text == NO_DANGER[0] or text in NO_DANGER[1] else None
    if text == NONE_OF_THEM:
        return "none"
    for choice in offered:
        label, words = CHOICES[choice]
        if text == label or (len(text) <= 6 and any(word in text for word in words)):
            return choice
    return None
