"""回访: confirm the fix, ask satisfaction after ``callback_after_h``, reopen when not satisfied.

* ``mark_done`` asks "解决了吗?" with two buttons; ``answer_confirmation`` takes the answer
  ("解决了 BX-20261123-0001" from the button, or plain "解决了"/"没解决"). "没解决" reopens the ticket
  to the same technician and tells the staff group.
* ``sweep`` sends the satisfaction callback (overall 1-5, optionally attitude/quality/speed and a
  comment) ``callback_after_h`` after done, and turns an unanswered one into a callback task for staff
  after ``callback_answer_h``. A ticket nobody can be reached for becomes that task at once.
* ``answer_score`` records the answer; a score of ``reopen_score_max`` or less reopens the ticket,
  a better one closes it. ``record_callback`` is the same for a phone callback made by staff.
* ``report`` gives the callback rate and satisfaction for management.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from data.kinds import EventKind, TicketKind, TicketStatus
from data.models import ChannelAccount, Compound, Ticket
from data.scheduling import Callback
from data.settings import CompoundSettings
from data.store import Store
from flows.dialog.turn import Button, Turn
from flows.domain.outbox import enqueue_once, staff_once
from flows.domain.quiet import next_allowed
from flows.domain.tickets import TicketError, close, format_time, reopen
from flows.jobs.sweeps import Action, ticket_event

TICKET = r"([A-Za-z]{2}-?\d{8}-?\d{4})"
UNSOLVED = frozenset({"没解决", "没有解决", "未解决", "还没好", "没修好", "还是不行"})
SCORE_WORDS = {
    "非常满意": 5,
    "很满意": 5,
    "满意": 4,
    "一般": 3,
    "还行": 3,
    "不满意": 2,
    "很不满意": 1,
    "非常不满意": 1,
}
PARTS = {
    "attitude": re.compile(r"(?:服务)?态度\s*[:：]?\s*([1-5])"),
    "quality": re.compile(r"(?:服务)?质量\s*[:：]?\s*([1-5])"),
    "speed": re.compile(r"(?:服务)?(?:效率|速度)\s*[:：]?\s*([1-5])"),
}
SCORE_BUTTONS = (("5 非常满意", 5), ("4 满意", 4), ("3 一般", 3), ("2 不满意", 2), ("1 很不满意", 1))
ANSWER_WINDOW = timedelta(days=7)  # a late answer still counts, up to a week after asking


# -- the sweep -------------------------------------------------------------------------------------
def sweep(store: Store, now: datetime) -> list[Action]:
    actions: list[Action] = []
    for compound in store.units.compounds():
        settings = store.settings(compound)
        actions += _ask_actions(store, compound, settings, now)
        actions += _task_actions(store, compound, settings, now)
    return actions


def _ask_actions(store: Store, compound: Compound, settings: CompoundSettings, now: datetime) -> list[Action]:
    done_by = now - timedelta(hours=settings.callback_after_h)
    tickets = store.schedules.tickets_to_call_back(compound.id, settings.callback_kinds, done_by)
    return [_ask(store, compound, settings, ticket, now) for ticket in tickets]


def _ask(
    store: Store, compound: Compound, settings: CompoundSettings, ticket: Ticket, now: datetime
) -> Action:
    accounts = ticket_accounts(store, ticket)
    key = f"callback:{ticket.id}:{ticket.done_at:%Y%m%d%H%M%S}"

    def apply() -> None:
        callback = callback_round(store, ticket)
        if callback.status != "open":
            return
        if not accounts:
            _make_task(store, callback, now, "居民没有可联系的线上账号")
            return
        text = _question(compound, ticket)
        buttons = [[label, f"评分{score} {ticket.number}"] for label, score in SCORE_BUTTONS]
        for account in accounts:
            enqueue_once(
                store,
                f"{key}:{account.id}",
                account.channel,
                account.external_id,
                "callback",
                text,
                now,
                due_at=next_allowed(settings, now),
                payload={
                    "ticket": ticket.number,
                    "buttons": buttons,
                    "template": "callback",
                    "fields": {"ticket": ticket.number, "kind": TicketKind.name_of(ticket.kind, "")},
                },
                ticket_id=ticket.id,
            )
        callback.status, callback.asked_at, callback.account_id = "asked", now, accounts[0].id
        ticket_event(store, ticket, now, "callback", "已发送满意度回访")

    who = f"{len(accounts)} 个账号" if accounts else "无线上账号，转员工电话回访"
    return Action(
        "callbacks", "ask_callback", key, f"{ticket.number} 满意度回访（{who}）", apply, ticket=ticket.number
    )


def _question(compound: Compound, ticket: Ticket) -> str:
    what = f"{TicketKind.name_of(ticket.kind, '工单')}（{ticket.number}：{ticket.description[:20]}）"
    return (
        f"您好，我是{compound.name}物业客服。您的{what}已于 {format_time(ticket.done_at)} 处理完成，"
        "想回访一下：问题是否彻底解决了？请您为本次服务打分（1-5 分，5 分为非常满意）。\n"
        "也欢迎对服务态度、质量、效率分别打分或留言，例如“5分 态度5 质量5 效率4 师傅很细心”。"
        "您的意见对我们很重要，谢谢！"
    )


def _task_actions(
    store: Store, compound: Compound, settings: CompoundSettings, now: datetime
) -> list[Action]:
    stale = store.schedules.unanswered_callbacks(
        compound.id, now - timedelta(hours=settings.callback_answer_h)
    )
    actions = []
    for callback in stale:

        def apply(callback: Callback = callback) -> None:
            if callback.status == "asked":
                _make_task(store, callback, now, f"居民 {settings.callback_answer_h} 小时未回复满意度回访")

        actions.append(
            Action(
                "callbacks",
                "callback_task",
                f"callback_task:{callback.id}",
                f"{callback.ticket.number} 回访无回复，转员工电话回访",
                apply,
                ticket=callback.ticket.number,
            )
        )
    return actions


def _make_task(store: Store, callback: Callback, now: datetime, why: str) -> None:
    ticket = callback.ticket
    callback.status, callback.task_at = "staff_task", now
    ticket_event(store, ticket, now, EventKind.CALLBACK_TASK, why)
    staff_once(
        store,
        f"callback_task:{callback.id}",
        "callback_task",
        f"【回访任务】{ticket.number}（{_place(ticket)}）{why}，请电话回访：问题是否解决、满意度 1-5 分，"
        f"并在群里记录结果：/huifang {ticket.number} 已解决 5 师傅很负责",
        now,
        ticket_id=ticket.id,
    )


# -- answers from residents --------------------------------------------------------------------------
CONFIRM = re.compile(
    rf"^(?:问题)?(?:已经|已)?(解决了|解决|已解决|好了|修好了|没解决|没有解决|未解决|还没好|没修好|还是不行)\s*{TICKET}?$"
)


def answer_confirmation(turn: Turn) -> bool:
    """ "解决了" / "没解决", with or without the ticket number."""
    match = CONFIRM.match(_plain(turn.text))
    if match is None:
        return False
    ticket = _ticket_for(turn, match.group(2), ("done",), turn.settings.confirm_window_days)
    if ticket is None:
        return bool(match.group(2)) and _unknown_ticket(turn, match.group(2))
    callback = callback_round(turn.store, ticket)
    callback.confirmed_at = turn.now
    if match.group(1) in UNSOLVED:
        callback.confirmed, callback.status = "unsolved", "reopened"
        _reopen(turn, ticket, "居民反馈问题没有解决")
        return True
    callback.confirmed = "solved"
    turn.store.tickets.add_event(ticket, turn.now, turn.actor, EventKind.CONFIRMED, "居民确认已解决")
    turn.say(f"好的，感谢您的确认！{ticket.number} 已记录为已解决。之后如再有问题，随时告诉我。")
    return True


SCORE_BUTTON = re.compile(rf"^评分\s*([1-5])\s*{TICKET}?$")


def answer_score(turn: Turn) -> bool:
    """A satisfaction answer: the button ("评分5 BX-..."), "5分", "满意", "态度5 质量4 ..."."""
    text = _plain(turn.text)
    button = SCORE_BUTTON.match(text)
    number = button.group(2) if button else None
    score = int(button.group(1)) if button else _score_in(text)
    parts = {name: int(m.group(1)) for name, pattern in PARTS.items() if (m := pattern.search(text))}
    if score is None and not parts:
        return False  # no score in it: not worth a look for an open callback
    callback = _open_callback(turn, number)
    if callback is None:
        return bool(number) and _unknown_ticket(turn, number or "")
    if score is None and not (parts and callback.score is not None):
        return False  # not an answer to the callback: let the conversation handle it
    comment = "" if button else _comment(text)
    record_callback(
        turn.store, callback.ticket, turn.now, turn.actor, score=score, comment=comment, via="chat", **parts
    )
    _thank(turn, callback, score)
    return True


def record_callback(
    store: Store,
    ticket: Ticket,
    now: datetime,
    actor: str,
    *,
    score: int | None = None,
    attitude: int | None = None,
    quality: int | None = None,
    speed: int | None = None,
    comment: str = "",
    via: str = "phone",
) -> Callback:
    """Record a callback answer (by chat, or a phone call made by staff); a low score reopens."""
    callback = callback_round(store, ticket)
    for name, value in (("score", score), ("attitude", attitude), ("quality", quality), ("speed", speed)):
        if value is not None:
            if not 1 <= value <= 5:
                raise TicketError(f"评分应为 1-5 分，收到 {value}")
            setattr(callback, name, value)
    if comment:
        callback.comment = (callback.comment + "\n" + comment).strip()[:1000]
    callback.via = callback.via or via
    if score is None:
        return callback  # details added to an earlier answer
    callback.answered_at = now
    settings = store.settings(store.compound(ticket.compound_id))
    store.tickets.add_event(
        ticket,
        now,
        actor,
        "callback",
        f"满意度 {score} 分" + (f"：{comment[:100]}" if comment else ""),
        {"score": score, "attitude": attitude, "quality": quality, "speed": speed},
    )
    if score <= settings.reopen_score_max and ticket.status in (TicketStatus.DONE, TicketStatus.CLOSED):
        callback.status = "reopened"
        reopen(
            store, ticket, now, actor, f"回访不满意（{score} 分）" + (f"：{comment[:100]}" if comment else "")
        )
    else:
        callback.status = "answered"
        if ticket.status == TicketStatus.DONE:
            close(store, ticket, now, actor, "回访完成")
    return callback


def _thank(turn: Turn, callback: Callback, score: int | None) -> None:
    ticket = callback.ticket
    if callback.status == "reopened" and score is not None:
        who = f"{ticket.assignee.name}会" if ticket.assignee else "我们会尽快安排师傅"
        turn.say(
            f"非常抱歉没能让您满意，对不起！已为您重新打开 {ticket.number}，{who}再次跟进处理，"
            "直到您满意为止。主管也会关注此事。"
        )
        return
    if score is None:
        turn.say("好的，已记录您对服务态度、质量、效率的评价，谢谢您！")
        return
    ask_more = (
        ""
        if callback.attitude is not None
        else "如方便，也可以对服务态度、质量、效率分别打分，例如“态度5 质量5 效率4”。"
    )
    turn.say(f"感谢您的评价（{score} 分）！{ask_more}")


def _reopen(turn: Turn, ticket: Ticket, reason: str) -> None:
    reopen(turn.store, ticket, turn.now, turn.actor, reason)
    who = f"{ticket.assignee.name}会再次上门处理" if ticket.assignee else "我们会尽快安排师傅再次处理"
    turn.say(f"对不起，让您久等了！已为您重新打开 {ticket.number}，{who}，直到问题解决为止。")


def _unknown_ticket(turn: Turn, number: str) -> bool:
    turn.say(f"没有查到您家待确认的工单 {number.upper()}，请核对单号。", Button("查询进度", "我的报修进度"))
    return True


# -- look-ups ----------------------------------------------------------------------------------------
def callback_round(store: Store, ticket: Ticket) -> Callback:
    """The callback for the ticket's current "done" (created on first use)."""
    done_at = ticket.done_at or ticket.closed_at or ticket.updated_at  # done_at is cleared on reopen
    found = store.schedules.callback_round(ticket.id, done_at)
    if found is None:
        found = Callback(
            ticket=ticket,
            ticket_id=ticket.id,
            compound_id=ticket.compound_id,
            done_at=done_at,
            status="open",
            comment="",
            via="",
        )
        store.schedules.add_callback(found)
    return found


def ticket_accounts(store: Store, ticket: Ticket) -> list[ChannelAccount]:
    """Who to ask: the reporting account, else the unit's accounts (household members)."""
    return store.tickets.accounts_to_tell(ticket)


def _ticket_for(turn: Turn, number: str | None, statuses: Sequence[str], days: int) -> Ticket | None:
    if number:
        ticket = turn.store.tickets.by_number(_normal(number))
        return ticket if ticket is not None and _mine(turn, ticket) and ticket.status in statuses else None
    since = turn.now - timedelta(days=days)
    candidates = [t for t in _my_tickets(turn, since) if t.status in statuses]
    return candidates[0] if candidates else None


def _open_callback(turn: Turn, number: str | None) -> Callback | None:
    """The callback this message answers: asked (or turned into a staff task) recently, or just
    answered (for details sent afterwards)."""
    statuses = ("asked", "staff_task", "answered", "reopened")
    wanted = _normal(number) if number else None
    for callback in turn.store.schedules.callbacks_to_answer(statuses, turn.now - ANSWER_WINDOW, wanted, 20):
        if not _mine(turn, callback.ticket):
            continue
        if callback.status in ("answered", "reopened") and not number:
            recent = callback.answered_at is not None and turn.now - callback.answered_at < timedelta(days=1)
            return callback if recent else None
        return callback
    return None


def _my_tickets(turn: Turn, since: datetime) -> list[Ticket]:
    unit_id = turn.unit.id if turn.unit is not None else None
    return turn.store.tickets.of_account_or_unit(turn.account.id, unit_id, since)


def _mine(turn: Turn, ticket: Ticket) -> bool:
    if ticket.account_id == turn.account.id:
        return True
    return turn.unit is not None and (
        ticket.unit_id == turn.unit.id or ticket.details.get("reporter_unit_id") == turn.unit.id
    )


WORD_SCORE = re.compile("^(" + "|".join(sorted(SCORE_WORDS, key=len, reverse=True)) + ")(?!度)")
BARE_SCORE = re.compile(r"^([1-5])(?:\s*(?:分|星))?(?=$|[\s,，。.!！;；])")  # not "3楼漏水"


def _score_in(text: str) -> int | None:
    word = WORD_SCORE.match(text)
    if word is not None:
        return SCORE_WORDS[word.group(1)]
    match = BARE_SCORE.match(text)
    return int(match.group(1)) if match else None


def _comment(text: str) -> str:
    rest = WORD_SCORE.sub("", BARE_SCORE.sub("", text, count=1).strip(), count=1)
    for pattern in PARTS.values():
        rest = pattern.sub("", rest)
    return rest.strip(" ，,。.!！;；")


def _plain(text: str) -> str:
    return text.strip().strip("。.!！~～ ").replace("：", ":")


def _normal(number: str) -> str:
    digits = re.sub(r"[^0-9A-Za-z]", "", number).upper()
    return f"{digits[:2]}-{digits[2:10]}-{digits[10:]}"


def _place(ticket: Ticket) -> str:
    return ticket.unit.label if ticket.unit is not None else (ticket.location or "公共区域")


# -- reports -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CallbackReport:
    finished: int  # jobs done in the period (each done of a reopened ticket counts)
    called_back: int  # asked by chat or handed to staff for a phone callback
    answered: int
    satisfied: int  # scores 4 and 5
    mean_score: float | None
    mean_attitude: float | None
    mean_quality: float | None
    mean_speed: float | None
    reopened: int

    @property
    def callback_rate(self) -> float | None:
        return self.called_back / self.finished if self.finished else None

    @property
    def satisfaction(self) -> float | None:
        return self.satisfied / self.answered if self.answered else None


def report(store: Store, since: datetime, until: datetime, compound_id: int | None = None) -> CallbackReport:
    """Callback rate and satisfaction for jobs done in [since, until)."""
    compound = store.compound(compound_id)
    kinds = store.settings(compound).callback_kinds
    rounds = store.schedules.callbacks_of_period(compound.id, since, until)
    seen = {(c.ticket_id, c.done_at) for c in rounds}
    done = store.schedules.tickets_done_between(compound.id, kinds, since, until)
    pending = [t for t in done if (t.id, t.done_at) not in seen]
    scored = [c for c in rounds if c.score is not None]

    def mean(values: list[int | None]) -> float | None:
        found = [v for v in values if v is not None]
        return round(sum(found) / len(found), 2) if found else None

    return CallbackReport(
        finished=len(rounds) + len(pending),
        called_back=sum(c.asked_at is not None or c.task_at is not None or c.via == "phone" for c in rounds),
        answered=len(scored),
        satisfied=sum((c.score or 0) >= 4 for c in scored),
        mean_score=mean([c.score for c in scored]),
        mean_attitude=mean([c.attitude for c in scored]),
        mean_quality=mean([c.quality for c in scored]),
        mean_speed=mean([c.speed for c in scored]),
        reopened=sum(c.status == "reopened" for c in rounds),
    )
