"""Recording a callback's answer (回访) taken by staff on the phone: solved or not, the scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from data.kinds import EventKind, TicketStatus
from data.models import Ticket
from data.store import Store
from flows.domain.errors import ActionError
from flows.domain.tickets import reopen
from flows.jobs.callbacks import callback_round, record_callback
from flows.services.base import Actor, Result, require_compound

PART_WORDS = {"attitude": "态度", "quality": "质量", "speed": "效率"}


@dataclass(frozen=True)
class Rating:
    """What the resident said: solved or not (None: not said, the score decides, as in the chat
    callback), the overall score 1-5, the part scores (attitude / quality / speed), a comment."""

    solved: bool | None = None
    score: int | None = None
    parts: dict[str, int] = field(default_factory=dict)
    comment: str = ""
    via: str = "phone"


def record_rating(store: Store, actor: Actor, ticket: Ticket, rating: Rating, now: datetime) -> Result:
    """Record the answer on the ticket's current callback round. A good score closes a done ticket;
    unsolved, or a score of ``reopen_score_max`` or less, reopens it to its technician."""
    require_compound(actor, ticket.compound_id, ticket.number)
    if ticket.status not in (TicketStatus.DONE, TicketStatus.CLOSED):
        state = TicketStatus.name_of(ticket.status)
        raise ActionError(f"{ticket.number} 还在处理中（{state}），完成后再回访。")
    if rating.solved is False:
        return _unsolved(store, actor, ticket, rating, now)
    callback = record_callback(
        store,
        ticket,
        now,
        actor.tag,
        score=rating.score,
        comment=rating.comment,
        via=rating.via,
        **rating.parts,
    )
    if rating.solved:
        callback.confirmed, callback.confirmed_at = "solved", now
    head = f"已记录 {ticket.number} 的电话回访：{summary(rating)}。"
    if callback.status == "reopened":
        return Result(head + f"满意度低，工单已重新打开，{_who(ticket)}跟进，直到业主满意为止。")
    return Result(head + ("工单已关闭，谢谢！" if ticket.status == TicketStatus.CLOSED else ""))


def _unsolved(store: Store, actor: Actor, ticket: Ticket, rating: Rating, now: datetime) -> Result:
    """Not solved: recorded on this round (before reopening starts a new one), then reopened."""
    callback = callback_round(store, ticket)
    record_callback(store, ticket, now, actor.tag, comment=rating.comment, via=rating.via, **rating.parts)
    callback.score = rating.score if rating.score is not None else callback.score
    callback.confirmed, callback.confirmed_at, callback.answered_at = "unsolved", now, now
    callback.status = "reopened"
    said = summary(rating)
    data = {"solved": False, "score": rating.score, **rating.parts}
    store.tickets.add_event(ticket, now, actor.tag, EventKind.CALLBACK, f"电话回访：{said}", data)
    reopen(store, ticket, now, actor.tag, f"电话回访：{said}")
    return Result(
        f"已记录 {ticket.number} 的电话回访：{said}。工单已重新打开，{_who(ticket)}跟进，直到问题解决为止。"
    )


def summary(rating: Rating) -> str:
    """已解决，满意度 5 分，态度5 质量4，留言：…"""
    words = [{True: "已解决", False: "未解决", None: ""}[rating.solved]]
    if rating.score is not None:
        words.append(f"满意度 {rating.score} 分")
    if rating.parts:
        words.append(" ".join(f"{PART_WORDS[k]}{v}" for k, v in rating.parts.items()))
    if rating.comment:
        words.append(f"留言：{rating.comment[:100]}")
    return "，".join(w for w in words if w)


def _who(ticket: Ticket) -> str:
    return f"请 {ticket.assignee.name} " if ticket.assignee is not None else "请尽快认领并"
