"""The staff group over real HTTP: cards, who may press, claim/done/escalate/reassign, the relay
between a staff member and the resident (no phone numbers, no account ids), the WeCom robot."""

from __future__ import annotations

import re
from typing import Any

import pytest

from bot.channels.wecom import WeComRobotSender
from bot.outbound import OutboundMessage, PermanentFailure, TemporaryFailure
from data.models import Ticket, TicketEvent
from tests.e2e.conftest import LEAD, STAFF_CHAT, WANG, ZHANG, Propbot
from tests.fakes.telegram_api import Call
from tests.fakes.wechat_api import ROBOT_KEY, FakeWeChat

RESIDENT = 5550002
RESIDENT_PHONE = "13800138000"  # 李明's phone on file
WANG_PHONE = "13900139001"  # 王师傅's phone on file
STRANGER = 123456789  # in the group, not registered staff


def open_repair(propbot: Propbot) -> tuple[Ticket, Call]:
    """李明 reports a leak on Telegram; the ticket and its card in the staff group."""
    propbot.bind("telegram", str(RESIDENT), "李明")
    propbot.tg_say(RESIDENT, "厨房水管漏水了")
    propbot.tg_press(RESIDENT, "尽快")
    propbot.tg_press(RESIDENT, "确认")
    [ticket] = propbot.tickets()
    card = propbot.telegram.wait_for(lambda: propbot.telegram.sent_to(STAFF_CHAT))[0]
    return ticket, card


def press(propbot: Propbot, card: Call | dict[str, Any], data: str, user_id: int) -> dict[str, Any]:
    """Press a card's button as ``user_id``; the callback answer the bot gave."""
    message = card.message if isinstance(card, Call) else card
    update = propbot.updates.callback(
        STAFF_CHAT, data, user_id=user_id, message=message, chat_type="supergroup"
    )
    before = len(propbot.telegram.calls("answerCallbackQuery"))
    assert propbot.post_update(update).status_code == 200
    return propbot.telegram.calls("answerCallbackQuery")[before].params


def edits(propbot: Propbot) -> list[dict[str, Any]]:
    return [c.params for c in propbot.telegram.calls("editMessageText")]


def events(propbot: Propbot, kind: str) -> list[TicketEvent]:
    with propbot.app.sessions() as session:
        return list(session.query(TicketEvent).filter_by(kind=kind))


def test_a_stranger_cannot_press_and_nothing_changes(propbot: Propbot) -> None:
    ticket, card = open_repair(propbot)
    answer = press(propbot, card, f"claim:{ticket.number}", STRANGER)
    assert answer["show_alert"] in (True, "true")
    assert "只有登记在册的物业工作人员" in answer["text"]
    assert edits(propbot) == []
    [after] = propbot.tickets()
    assert after.assignee_id is None and after.status == "received"
    assert events(propbot, "dispatched") == []


def test_claim_edits_the_card_and_tells_the_resident(propbot: Propbot) -> None:
    ticket, card = open_repair(propbot)
    answer = press(propbot, card, f"claim:{ticket.number}", WANG)
    assert "接单成功" in answer["text"]
    [edit] = edits(propbot)
    assert int(edit["message_id"]) == card.result["message_id"]
    assert edit["text"].startswith(card.params["text"]) and "已由 王师傅 接单" in edit["text"]
    left = [b["callback_data"] for row in edit["reply_markup"]["inline_keyboard"] for b in row]
    assert f"claim:{ticket.number}" not in left and f"done:{ticket.number}" in left
    told = propbot.telegram.wait_for(lambda: [t for t in propbot.telegram.texts_to(RESIDENT) if "接单" in t])
    assert f"（{ticket.number}）已由 王师傅 接单，预计" in told[0]
    [after] = propbot.tickets()
    assert after.status == "dispatched" and after.assignee is not None and after.assignee.name == "王师傅"


def test_a_redelivered_press_counts_once_and_a_second_claimant_is_told(propbot: Propbot) -> None:
    ticket, card = open_repair(propbot)
    update = propbot.updates.callback(
        STAFF_CHAT, f"claim:{ticket.number}", user_id=WANG, message=card.message, chat_type="supergroup"
    )
    for _ in range(2):
        propbot.post_update(update)
    assert len(events(propbot, "dispatched")) == 1
    answer = press(propbot, card, f"claim:{ticket.number}", ZHANG)
    assert answer["show_alert"] in (True, "true") and "王师傅" in answer["text"]


def test_done_asks_the_resident_to_confirm(propbot: Propbot) -> None:
    ticket, card = open_repair(propbot)
    press(propbot, card, f"claim:{ticket.number}", WANG)
    press(propbot, card, f"done:{ticket.number}", WANG)
    assert "已由 王师傅 完成" in edits(propbot)[-1]["text"]
    asked = propbot.telegram.wait_for(
        lambda: [c for c in propbot.telegram.sent_to(RESIDENT) if "已处理完成" in c.params["text"]]
    )
    labels = [b["text"] for row in asked[0].params["reply_markup"]["inline_keyboard"] for b in row]
    assert labels == ["解决了", "没解决"]
    assert propbot.tickets()[0].status == "done"


def test_escalate_goes_to_the_lead_then_the_director(propbot: Propbot) -> None:
    ticket, card = open_repair(propbot)
    assert "赵主管" in press(propbot, card, f"escalate:{ticket.number}", WANG)["text"]
    assert "孙主任" in press(propbot, card, f"escalate:{ticket.number}", LEAD)["text"]
    assert [e.note for e in events(propbot, "escalated")] == ["升级至 赵主管", "升级至 孙主任"]
    cards = propbot.telegram.wait_for(
        lambda: [t for t in propbot.telegram.texts_to(STAFF_CHAT) if t.startswith("【升级")][1:] or None
    )
    assert "孙主任" in cards[0]


def test_reassign_offers_technicians_and_tells_the_resident(propbot: Propbot) -> None:
    ticket, card = open_repair(propbot)
    press(propbot, card, f"claim:{ticket.number}", WANG)
    press(propbot, card, f"reassign:{ticket.number}", WANG)
    choices = {
        b["text"]: b["callback_data"]
        for row in edits(propbot)[-1]["reply_markup"]["inline_keyboard"]
        for b in row
    }
    assert "王师傅" not in choices and "张师傅" in choices and "返回" in choices
    press(propbot, card, choices["张师傅"], WANG)
    assert "已由 王师傅 转派给 张师傅" in edits(propbot)[-1]["text"]
    propbot.telegram.wait_for(
        lambda: [t for t in propbot.telegram.texts_to(RESIDENT) if "已由 张师傅 接单" in t]
    )
    assert propbot.tickets()[0].assignee.name == "张师傅"  # type: ignore[union-attr]


def reply_to(propbot: Propbot, card: Call, text: str, user_id: int) -> None:
    update = propbot.updates.message(
        STAFF_CHAT, chat_type="supergroup", user_id=user_id, text=text, reply_to_message=card.message
    )
    assert propbot.post_update(update).status_code == 200


def test_staff_relay_never_exposes_phone_numbers_or_accounts(propbot: Propbot) -> None:
    ticket, card = open_repair(propbot)
    reply_to(propbot, card, f"您好，我是维修师傅，下午方便吗？有事打我 {WANG_PHONE}", WANG)
    relayed = propbot.telegram.wait_for(
        lambda: [t for t in propbot.telegram.texts_to(RESIDENT) if "物业工作人员" in t]
    )[0]
    assert "王师傅" in relayed and "下午方便吗" in relayed
    assert WANG_PHONE not in relayed and str(WANG) not in relayed

    propbot.tg_say(
        RESIDENT,
        f"下午三点后都在，直接打我电话 {RESIDENT_PHONE[:3]} {RESIDENT_PHONE[3:7]} {RESIDENT_PHONE[7:]}",
    )
    back = propbot.telegram.wait_for(
        lambda: [c for c in propbot.telegram.sent_to(STAFF_CHAT) if "【居民回复】" in c.params["text"]]
    )[0]
    assert back.params["text"].startswith(f"【居民回复】{ticket.number}：下午三点后都在")
    assert back.params["reply_parameters"]["message_id"] == card.result["message_id"]
    group_text = "\n".join(propbot.telegram.texts_to(STAFF_CHAT))
    digits = re.sub(r"\D", "", group_text)
    assert RESIDENT_PHONE not in digits and str(RESIDENT) not in digits
    resident_text = "\n".join(propbot.telegram.texts_to(RESIDENT))
    assert WANG_PHONE not in re.sub(r"\D", "", resident_text) and str(WANG) not in resident_text
    assert len(events(propbot, "relay_out")) == len(events(propbot, "relay_in")) == 1


def test_the_relay_answers_only_once(propbot: Propbot) -> None:
    ticket, card = open_repair(propbot)
    reply_to(propbot, card, "请问几点有人在家？", WANG)
    propbot.telegram.wait_for(lambda: [t for t in propbot.telegram.texts_to(RESIDENT) if "物业工作人员" in t])
    assert "已将您的回复转达" in propbot.tg_say(RESIDENT, "下午都在")[0]
    assert "已将您的回复转达" not in "".join(propbot.tg_say(RESIDENT, "你好"))


def test_a_reply_to_the_relayed_message_reaches_staff_even_in_the_middle_of_a_form(propbot: Propbot) -> None:
    ticket, card = open_repair(propbot)
    reply_to(propbot, card, "请问几点有人在家？", WANG)
    relayed = propbot.telegram.wait_for(
        lambda: [c for c in propbot.telegram.sent_to(RESIDENT) if "物业工作人员" in c.params["text"]]
    )[0]
    assert "已将您的回复转达" in propbot.tg_say(RESIDENT, "下午都在")[0]
    assert "什么时候上门" in propbot.tg_say(RESIDENT, "卧室的灯不亮了")[-1]  # a newer question

    update = propbot.updates.text(RESIDENT, "还有 门铃坏了请敲门", reply_to_message=relayed.message)
    before = len(propbot.telegram.sent_to(RESIDENT))
    assert propbot.post_update(update).status_code == 200
    texts = [c.params["text"] for c in propbot.telegram.sent_to(RESIDENT)[before:]]
    assert "已将您的回复转达给王师傅" in texts[0] and "什么时候上门" in texts[-1]
    back = propbot.telegram.wait_for(
        lambda: [c for c in propbot.telegram.sent_to(STAFF_CHAT) if "门铃坏了" in c.params["text"]]
    )[0]
    assert back.params["text"] == f"【居民回复】{ticket.number}：还有 门铃坏了请敲门"
    assert back.params["reply_parameters"]["message_id"] == card.result["message_id"]
    assert "核对" in propbot.tg_press(RESIDENT, "尽快")[0]  # a button answers the form it is on


def test_a_stranger_replying_to_a_card_reaches_nobody(propbot: Propbot) -> None:
    ticket, card = open_repair(propbot)
    before = len(propbot.telegram.texts_to(RESIDENT))
    reply_to(propbot, card, "我是业主朋友，电话多少？", STRANGER)
    assert "只有登记在册的工作人员" in propbot.telegram.texts_to(STAFF_CHAT)[-1]
    assert len(propbot.telegram.texts_to(RESIDENT)) == before
    assert events(propbot, "relay_out") == []


# -- the WeCom group robot ----------------------------------------------------------------------------
def _card(text: str) -> OutboundMessage:
    return OutboundMessage(1, "staff", "staff", "new_ticket", text, {"ticket": "BX-20261123-0001"})


async def test_wecom_robot_posts_markdown_with_its_key(fake_wechat: FakeWeChat) -> None:
    robot = WeComRobotSender(f"{fake_wechat.url}/cgi-bin/webhook/send", ROBOT_KEY)  # type: ignore[attr-defined]
    try:
        await robot.send(_card("【新报修】BX-20261123-0001\n位置：3栋2单元1502"))
        [call] = fake_wechat.calls("webhook/send")
        assert call.query["key"] == ROBOT_KEY
        assert call.body == {
            "msgtype": "markdown",
            "markdown": {"content": "**【新报修】BX-20261123-0001**\n位置：3栋2单元1502"},
        }
        fake_wechat.fail_next("webhook/send", 45009)
        with pytest.raises(TemporaryFailure) as limited:
            await robot.send(_card("第二条"))
        assert limited.value.retry_after == 60
    finally:
        await robot.aclose()


async def test_wecom_robot_with_a_wrong_key_fails_for_good(fake_wechat: FakeWeChat) -> None:
    robot = WeComRobotSender(f"{fake_wechat.url}/cgi-bin/webhook/send", "wrong")  # type: ignore[attr-defined]
    try:
        with pytest.raises(PermanentFailure, match="93000"):
            await robot.send(_card("x"))
    finally:
        await robot.aclose()
