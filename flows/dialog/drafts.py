"""Requests set aside: a form left unfinished for another request, or the second request of a message.

A draft is kept with the chat's dialog state even when no dialog is active. When the resident is done
with what they turned to, the draft is offered once ("您刚才的报修还没提交，要继续吗？"); it expires
after ``DRAFT_TTL`` and the resident is told so at their next message. Two kinds:

* ``{"flow": "repair", "state": {...}}``: a form where it was, resumed with its question again;
* ``{"text": "周六想约个保洁", "photos": [...]}``: a request not started yet, started as if said now.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from flows.dialog.turn import Button, Turn
from flows.domain.tickets import format_time

DRAFT = "draft"  # conversation state key
OFFER = "draft_offer"  # the pseudo-flow that takes the answer to "要继续吗？"
DRAFT_TTL = timedelta(hours=24)
FORM_IDLE = timedelta(hours=12)  # a form not answered for this long is set aside by a new request
GO_ON_WORDS = frozenset({"继续", "要", "要的", "好", "好的", "可以", "嗯", "是", "是的", "对", "行", "ok"})
DROP_WORDS = frozenset({"不用了", "不要了", "算了", "不用", "不要", "取消", "不了", "不继续"})


def keep_form(turn: Turn, flow: str, title: str, *, offered: bool = False) -> None:
    """Set the active form aside, where it is (``offered``: the resident was told how to go on)."""
    state = {k: v for k, v in turn.state.items() if k not in (DRAFT,)}
    turn.draft = {"flow": flow, "state": state, "title": title, "saved_at": turn.now.isoformat()}
    if offered:
        turn.draft["offered"] = True


def keep_request(turn: Turn, text: str, photos: list[str], title: str) -> None:
    """Keep a request not started yet ("周六想约个保洁" said during a repair)."""
    turn.draft = {"text": text, "photos": photos, "title": title, "saved_at": turn.now.isoformat()}


def saved_at(draft: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(draft["saved_at"]))


def expire(turn: Turn) -> None:
    """Drop a draft older than ``DRAFT_TTL``, telling the resident."""
    draft = turn.draft
    if draft is None or turn.now - saved_at(draft) < DRAFT_TTL:
        return
    turn.draft = None
    turn.say(
        f"您在 {format_time(saved_at(draft))} 没有提交的{draft.get('title', '事项')}已经超过24小时，"
        "已自动作废；如仍需要，请重新告诉我。"
    )


def offer(turn: Turn) -> None:
    """Offer the draft once the resident is done with what they turned to (no dialog active)."""
    draft = turn.draft
    if draft is None or turn.next_flow is not None or draft.get("offered"):
        return
    draft["offered"] = True
    title = draft.get("title", "事项")
    if "flow" in draft:
        turn.say(f"您刚才的{title}还没有提交，要继续吗？", Button(f"继续{title}", "继续"), "不用了")
    else:
        said = str(draft.get("text", ""))[:30]
        turn.say(f"您刚才还说了“{said}”，现在帮您办{title}吗？", Button(f"办{title}", "继续"), "不用了")
    turn.stay(OFFER)


# "继续", "刚才阳台那个还要修", "接着刚才的报修": the resident goes back to what was set aside.
_BACK = re.compile(r"^继续|接着|刚才|刚刚|之前那个|还没(?:报|办|弄)完")


def asks_back(turn: Turn, intent: str) -> bool:
    """Whether the message goes back to the draft: "继续", or "刚才…" in the draft's own intent."""
    text = turn.text.strip("。.！!~ ")
    if text in ("继续", f"继续{(turn.draft or {}).get('title', '')}"):
        return True
    if _BACK.search(text) is None or turn.parse.intent == "emergency":
        return False
    return turn.parse.intent in (intent, "affirm") and len(text) <= 20 or _echoes(text, _said(turn.draft))


def _said(draft: dict[str, Any] | None) -> str:
    """What the resident said in the draft (its description, or the request itself)."""
    if draft is None:
        return ""
    values = (draft.get("state") or {}).get("values") or {}
    return str(values.get("description") or draft.get("text") or "")


def _echoes(text: str, said: str) -> bool:
    """ "刚才阳台那个还要修" names 阳台 from "我家阳台的下水道堵了": two characters in a row in common."""
    pairs = {text[i : i + 2] for i in range(len(text) - 1)} - {"刚才", "那个", "还要", "我家", "一下"}
    return any(pair in said for pair in pairs if all("\u4e00" <= ch <= "\u9fff" for ch in pair))


def answer(turn: Turn) -> str | None:
    """The answer to the offer: "go_on", "drop", or None (a message of its own; the draft is kept)."""
    text = turn.text.strip("。.！!~ ").lower()
    title = str((turn.draft or {}).get("title", ""))
    if text in GO_ON_WORDS or (title and text in (f"继续{title}", f"办{title}")):
        return "go_on"
    if text in DROP_WORDS or turn.parse.intent in ("deny", "cancel") and len(text) <= 6:
        return "drop"
    return None
