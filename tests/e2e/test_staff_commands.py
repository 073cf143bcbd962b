"""Commands typed in the staff group, over real HTTP against the fake Telegram server: /huifang
records a phone callback (and reopens when the resident is not satisfied), /notice sends a notice
and says to how many, /help; only registered staff, once per message, ``/cmd@ThisBot`` understood."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from data.models import OutboxMessage, Staff, Ticket, TicketEvent
from data.scheduling import Callback, Notice
from tests.e2e.conftest import STAFF_CHAT, WANG, Propbot
from tests.e2e.test_staff_group import RESIDENT, STRANGER, open_repair, press
from tests.fakes.telegram_api import BOT_USER, Call

BOT = BOT_USER["username"]


def command(propbot: Propbot, text: str, user_id: int = WANG, **extra: Any) -> list[str]:
    """Type ``text`` in the staff group; what the bot answered to it (replies to that message; cards
    the dispatcher sends meanwhile are left out)."""
    update = propbot.updates.message(STAFF_CHAT, chat_type="supergroup", user_id=user_id, text=text, **extra)
    assert propbot.post_update(update).status_code == 200
    message_id = update["message"]["message_id"]
    return [
        c.params["text"]
        for c in propbot.telegram.sent_to(STAFF_CHAT)
        if (c.params.get("reply_parameters") or {}).get("message_id") == message_id
    ]


def done_repair(propbot: Propbot) -> tuple[Ticket, Call]:
    ticket, card = open_repair(propbot)
    press(propbot, card, f"claim:{ticket.number}", WANG)
    press(propbot, card, f"done:{ticket.number}", WANG)
    return ticket, card


def callback_of(propbot: Propbot, ticket: Ticket) -> Callback:
    with propbot.app.sessions() as session:
        return session.scalars(select(Callback).where(Callback.ticket_id == ticket.id)).one()


def ticket_now(propbot: Propbot, ticket: Ticket) -> Ticket:
    with propbot.app.sessions() as session:
        found = session.get(Ticket, ticket.id)
        assert found is not None
        _ = found.assignee
        return found


def events(propbot: Propbot, ticket: Ticket, kind: str) -> list[TicketEvent]:
    with propbot.app.sessions() as session:
        return list(session.scalars(select(TicketEvent).filter_by(ticket_id=ticket.id, kind=kind)))


def wang_actor(propbot: Propbot) -> str:
    with propbot.app.sessions() as session:
        wang = session.scalars(select(Staff).where(Staff.telegram_user_id == str(WANG))).one()
        return f"staff:{wang.id}"


# -- /huifang ---------------------------------------------------------------------------------------
def test_huifang_records_a_satisfied_phone_callback_and_closes(propbot: Propbot) -> None:
    ticket, _ = done_repair(propbot)
    [answer] = command(propbot, f"/huifang@{BOT} {ticket.number} 已解决 5 态度5 质量4 效率5 师傅很负责")
    assert (
        answer.startswith(f"已记录 {ticket.number} 的电话回访：已解决，满意度 5 分")
        and "工单已关闭" in answer
    )
    callback = callback_of(propbot, ticket)
    assert (callback.via, callback.confirmed, callback.status) == ("phone", "solved", "answered")
    assert (callback.score, callback.attitude, callback.quality, callback.speed) == (5, 5, 4, 5)
    assert callback.comment == "师傅很负责"
    assert ticket_now(propbot, ticket).status == "closed"
    [event] = events(propbot, ticket, "callback")
    assert event.actor == wang_actor(propbot) and "5 分" in event.note


def test_a_low_score_reopens_to_the_same_technician(propbot: Propbot) -> None:
    ticket, _ = done_repair(propbot)
    [answer] = command(propbot, f"/huifang {ticket.number} 2分 师傅来得太晚")
    assert "重新打开" in answer and "王师傅" in answer
    after = ticket_now(propbot, ticket)
    assert after.status == "dispatched" and after.assignee is not None and after.assignee.name == "王师傅"
    callback = callback_of(propbot, ticket)
    assert (callback.status, callback.score, callback.comment) == ("reopened", 2, "师傅来得太晚")
    assert [e.note for e in events(propbot, ticket, "reopened")] == ["回访不满意（2 分）：师傅来得太晚"]
    propbot.telegram.wait_for(
        lambda: [
            t for t in propbot.telegram.texts_to(STAFF_CHAT) if t.startswith(f"【重新打开】{ticket.number}")
        ]
    )


def test_unsolved_as_a_reply_to_the_card_reopens_and_is_not_relayed(propbot: Propbot) -> None:
    ticket, card = done_repair(propbot)
    told_before = len(propbot.telegram.texts_to(RESIDENT))
    [answer] = command(propbot, "/huifang 没解决 4 还在滴水", reply_to_message=card.message)
    assert answer.startswith(f"已记录 {ticket.number} 的电话回访：未解决，满意度 4 分，留言：还在滴水")
    assert ticket_now(propbot, ticket).status == "dispatched"  # unsolved reopens whatever the score
    callback = callback_of(propbot, ticket)
    assert (callback.confirmed, callback.status, callback.score) == ("unsolved", "reopened", 4)
    assert events(propbot, ticket, "relay_out") == []
    assert not [t for t in propbot.telegram.texts_to(RESIDENT)[told_before:] if "huifang" in t]


def test_huifang_refuses_strangers_bad_input_and_open_tickets(propbot: Propbot) -> None:
    ticket, card = open_repair(propbot)
    [stranger] = command(propbot, f"/huifang {ticket.number} 5 已解决", user_id=STRANGER)
    assert "只有登记在册的物业工作人员" in stranger
    [open_one] = command(propbot, f"/huifang {ticket.number} 5 已解决")
    assert "还在处理中（已受理）" in open_one
    [no_number] = command(propbot, "/huifang 5 已解决")
    assert "请写上工单号" in no_number and "用法：/huifang" in no_number
    [no_score] = command(propbot, f"/huifang {ticket.number} 已解决")
    assert "请给出满意度总分" in no_score
    [too_high] = command(propbot, f"/huifang {ticket.number} 9")
    assert "1-5 分" in too_high
    [unknown] = command(propbot, "/huifang BX-20200101-0009 5")
    assert "没有找到工单 BX-20200101-0009" in unknown
    assert ticket_now(propbot, ticket).status == "received"
    assert propbot.count(Callback) == 0 and events(propbot, ticket, "callback") == []


def test_a_redelivered_command_counts_once(propbot: Propbot) -> None:
    ticket, _ = done_repair(propbot)
    update = propbot.updates.message(
        STAFF_CHAT, chat_type="supergroup", user_id=WANG, text=f"/huifang {ticket.number} 1 很不满意"
    )
    before = len(propbot.telegram.sent_to(STAFF_CHAT))
    for _ in range(2):
        assert propbot.post_update(update).status_code == 200
    answers = [t for t in propbot.telegram.texts_to(STAFF_CHAT)[before:] if t.startswith("已记录")]
    assert len(answers) == 1
    assert len(events(propbot, ticket, "callback")) == len(events(propbot, ticket, "reopened")) == 1


# -- /notice ------------------------------------------------------------------------------------------
def notice_rows(propbot: Propbot, notice_id: int) -> list[OutboxMessage]:
    with propbot.app.sessions() as session:
        query = select(OutboxMessage).where(OutboxMessage.dedupe_key.like(f"notice:{notice_id}:%"))
        return list(session.scalars(query))


def test_notice_reaches_the_building_and_says_how_many(propbot: Propbot) -> None:
    propbot.bind("telegram", str(RESIDENT), "李明")  # 3栋2单元1502, with the demo's two console accounts
    [answer] = command(propbot, "/notice 3栋 明天9:00-12:00 停水 二次供水水箱清洗")
    with propbot.app.sessions() as session:
        notice = session.scalars(select(Notice)).one()
    assert (notice.kind, notice.utility, notice.audience["buildings"]) == ("outage", "water", [3])
    assert notice.recipients == len(notice_rows(propbot, notice.id)) == 3
    assert answer.startswith(f"通知 #{notice.id}（停水通知）已排入发送队列：3栋，共 3 个住户账号，立即发送。")
    assert (
        f"/notice cancel {notice.id}" in answer
        and "因二次供水水箱清洗，3栋将于 11月24日(周二) 09:00 起停水" in answer
    )
    told = propbot.telegram.wait_for(
        lambda: [t for t in propbot.telegram.texts_to(RESIDENT) if "停水通知" in t]
    )
    assert told == [notice.text] and "预计 11月24日(周二) 12:00 恢复供水" in told[0]

    [cancelled] = command(propbot, f"/notice cancel {notice.id}")
    assert cancelled.startswith(f"通知 #{notice.id} 已撤回")
    [listed] = command(propbot, "/notice list")
    assert f"#{notice.id} 停水通知" in listed and "已撤回" in listed


def test_notice_usage_unknown_buildings_other_bots_and_strangers(propbot: Propbot) -> None:
    [usage] = command(propbot, "/notice 明天停水")
    assert "请先写发给谁" in usage and "用法：/notice" in usage
    [no_time] = command(propbot, "/notice 3栋 停水 水管抢修")
    assert "请写上时间" in no_time
    [no_such] = command(propbot, "/notice 9栋 明天9:00-12:00 停水")
    assert "本小区没有 9栋" in no_such
    assert command(propbot, "/notice@another_bot 全体 明天消防演练") == []
    [stranger] = command(propbot, "/notice 全体 明天消防演练", user_id=STRANGER)
    assert "只有登记在册的物业工作人员" in stranger
    assert propbot.count(Notice) == 0


def test_help_lists_the_commands_and_unknown_commands_point_to_it(propbot: Propbot) -> None:
    for text in ("/help", f"/help@{BOT}"):
        [help_text] = command(propbot, text)
        assert "/huifang 单号" in help_text and "/notice 对象 时间 内容" in help_text
        assert "总分 ≤2 分会重新打开" in help_text
    [unknown] = command(propbot, f"/foo@{BOT}")
    assert "没有 /foo 这个命令" in unknown and "/help" in unknown
    assert command(propbot, "/foo") == []  # maybe another bot's: left alone
