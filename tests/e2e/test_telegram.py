"""Telegram residents over real HTTP: webhook secret, dialog with inline keyboards, photos, commands,
bad and unknown input, re-delivered updates, replies that cannot be sent right away."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import pytest

from bot.channels.telegram import SECRET_HEADER
from data.models import ChannelAccount, InboundMessage, OutboxMessage, Ticket
from tests.e2e.conftest import SECRET, STAFF_CHAT, Propbot, server_log
from tests.fakes.telegram_api import Updates

CHAT = 5550001  # a resident's private chat (= their Telegram user id)


def test_wrong_or_missing_secret_is_refused_and_writes_nothing(propbot: Propbot) -> None:
    before = propbot.footprint()
    update = propbot.updates.text(CHAT, "厨房水管漏水了")
    assert propbot.post_update(update, secret="guess").status_code == 403
    assert propbot.post_update(update, secret=None).status_code == 403
    assert propbot.footprint() == before
    assert propbot.telegram.calls("sendMessage") == []


def test_repair_with_inline_keyboards_reaches_the_staff_group(propbot: Propbot) -> None:
    propbot.bind("telegram", str(CHAT), "李明")
    asked = propbot.tg_say(CHAT, "厨房水管漏水了")
    assert "什么时候上门" in asked[0]
    markup = propbot.telegram.sent_to(CHAT)[-1].params["reply_markup"]
    choices = [b["callback_data"] for row in markup["inline_keyboard"] for b in row]
    assert "尽快" in choices
    summary = propbot.tg_press(CHAT, "尽快")
    assert "请您核对报修信息" in summary[0]
    answered = propbot.telegram.calls("answerCallbackQuery")
    assert answered, "the button press must be answered (stops the spinner)"
    done = propbot.tg_press(CHAT, "确认")
    assert "已为您登记报修" in done[0]
    [ticket] = propbot.tickets()
    card = propbot.telegram.wait_for(lambda: propbot.telegram.sent_to(STAFF_CHAT))[0]
    assert card.params["text"].startswith(f"【新报修】{ticket.number}")
    buttons = [b["callback_data"] for row in card.params["reply_markup"]["inline_keyboard"] for b in row]
    assert buttons == [f"{action}:{ticket.number}" for action in ("claim", "done", "escalate", "reassign")]


def test_photo_is_attached_to_the_ticket_largest_size(propbot: Propbot) -> None:
    propbot.bind("telegram", str(CHAT), "李明")
    sizes = [
        {"file_id": "small-id", "file_unique_id": "u1", "width": 90, "height": 60},
        {"file_id": "large-id", "file_unique_id": "u3", "width": 1280, "height": 960},
        {"file_id": "medium-id", "file_unique_id": "u2", "width": 320, "height": 240},
    ]
    update = propbot.updates.message(CHAT, photo=sizes, caption="卫生间天花板漏水")
    assert propbot.post_update(update).status_code == 200
    propbot.tg_press(CHAT, "尽快")
    propbot.tg_press(CHAT, "确认")
    [ticket] = propbot.tickets()
    assert ticket.photos == ["telegram:large-id"]


def test_location_becomes_text(propbot: Propbot) -> None:
    update = propbot.updates.message(CHAT, location={"latitude": 30.274085, "longitude": 120.15507})
    assert propbot.post_update(update).status_code == 200
    with propbot.app.sessions() as session:
        [record] = session.query(InboundMessage).all()
    assert record.external_id == str(CHAT)
    assert propbot.telegram.texts_to(CHAT), "a location gets an answer"


@pytest.mark.parametrize(
    "content",
    [
        {
            "sticker": {
                "file_id": "s",
                "file_unique_id": "s",
                "width": 512,
                "height": 512,
                "is_animated": False,
                "is_video": False,
                "type": "regular",
            }
        },
        {"document": {"file_id": "d", "file_unique_id": "d", "file_name": "合同.pdf"}},
        {"video": {"file_id": "v", "file_unique_id": "v", "width": 640, "height": 480, "duration": 3}},
    ],
    ids=["sticker", "document", "video"],
)
def test_unknown_message_types_get_a_polite_reply_and_write_nothing(propbot: Propbot, content: dict) -> None:
    before = propbot.footprint()
    assert propbot.post_update(propbot.updates.message(CHAT, **content)).status_code == 200
    [reply] = propbot.telegram.texts_to(CHAT)
    assert reply.startswith("抱歉，目前只能处理文字、图片和位置")
    assert propbot.footprint() == before


def test_start_deep_link_binds_then_status_and_help(propbot: Propbot) -> None:
    replies = propbot.tg_say(CHAT, "/start SUN888")
    assert "绑定成功" in replies[0] and "2栋2单元801" in replies[0]
    with propbot.app.sessions() as session:
        account = session.query(ChannelAccount).filter_by(channel="telegram", external_id=str(CHAT)).one()
        assert account.resident is not None and account.resident.name == "吴磊"
    assert "最近没有需要处理的工单" in propbot.tg_say(CHAT, "/status")[0]
    assert propbot.tg_say(CHAT, "/help")[0].startswith("我可以帮您")


def test_unknown_chats_are_ignored_with_a_log_line(
    propbot: Propbot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot")
    before = propbot.footprint()
    group = propbot.updates.text(-100999, "大家好", chat_type="supergroup", user_id=CHAT)
    post = {
        "update_id": 900001,
        "channel_post": {
            "message_id": 1,
            "date": 1795413600,
            "text": "公告",
            "chat": {"id": -100888, "type": "channel", "title": "频道"},
        },
    }
    assert propbot.post_update(group).status_code == 200
    assert propbot.post_update(post).status_code == 200
    assert propbot.telegram.calls("sendMessage") == []
    assert propbot.footprint() == before
    assert "ignoring update" in caplog.text


def test_a_redelivered_update_creates_nothing_twice(propbot: Propbot) -> None:
    propbot.bind("telegram", str(CHAT), "李明")
    propbot.tg_say(CHAT, "厨房水管漏水了")
    propbot.tg_press(CHAT, "尽快")
    confirm = propbot.updates.callback(CHAT, "确认")
    for _ in range(3):
        assert propbot.post_update(confirm).status_code == 200
    texts = propbot.telegram.texts_to(CHAT)[-3:]
    assert len(set(texts)) == 1 and "已为您登记报修" in texts[0]
    assert propbot.count(Ticket) == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{not json", 400), (b'{"message": {}}', 400), (b"[1, 2]", 400), (b"x" * (2 << 20), 413)],
    ids=["malformed", "no-update-id", "not-an-object", "oversized"],
)
def test_bad_bodies_get_a_clear_error(propbot: Propbot, body: bytes, status: int) -> None:
    before = propbot.footprint()
    response = propbot.http.post(
        "/telegram",
        content=body,
        headers={
            "X-Telegram-Bot-Api-Secret-Token": "webhook-secret-4f2a",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == status
    assert "Traceback" not in response.text
    assert propbot.footprint() == before


def test_the_last_reply_goes_back_in_the_webhook_answer_with_its_keyboard(propbot: Propbot) -> None:
    propbot.bind("telegram", str(CHAT), "李明")
    answer = post_raw(propbot, propbot.updates.text(CHAT, "厨房水管漏水了")).json()
    assert answer["method"] == "sendMessage" and answer["chat_id"] == CHAT
    assert "什么时候上门" in answer["text"]
    choices = [b["callback_data"] for row in answer["reply_markup"]["inline_keyboard"] for b in row]
    assert "尽快" in choices
    assert propbot.telegram.calls("sendMessage") == [], "Telegram sends it: no Bot API call of ours"


def test_earlier_replies_are_sent_before_the_answer_carries_the_last(propbot: Propbot) -> None:
    propbot.bind("telegram", str(CHAT), "李明")
    propbot.tg_say(CHAT, "厨房水管漏水了")  # a repair form is open: a fee query gets two replies
    before = len(propbot.telegram.texts_to(CHAT))
    answer = post_raw(propbot, propbot.updates.text(CHAT, "我家物业费还欠多少")).json()
    [sent] = propbot.telegram.texts_to(CHAT)[before:]
    assert "物业费：998.40" in sent  # the question answered, then the form's question again
    assert "回到刚才的报修" in answer["text"]


def test_replies_telegram_refuses_for_now_go_out_later_through_the_outbox_in_order(propbot: Propbot) -> None:
    propbot.bind("telegram", str(CHAT), "李明")
    propbot.tg_say(CHAT, "厨房水管漏水了")
    before = len(propbot.telegram.texts_to(CHAT))
    propbot.telegram.fail_next("sendMessage", 502, "Bad Gateway")
    response = propbot.post_update(propbot.updates.text(CHAT, "我家物业费还欠多少"))
    assert response.status_code == 200 and "method" not in response.json(), "the answer carries nothing"
    propbot.telegram.wait_for(lambda: len(propbot.telegram.texts_to(CHAT)) >= before + 2)
    delivered = propbot.telegram.texts_to(CHAT)[before:]
    assert len(delivered) == 2 and "物业费：998.40" in delivered[0] and "回到刚才的报修" in delivered[1]
    with propbot.app.sessions() as session:
        rows = session.query(OutboxMessage).filter_by(channel="telegram").order_by(OutboxMessage.id).all()
    assert [row.kind for row in rows] == ["reply", "reply"]
    propbot.telegram.wait_for(lambda: propbot.count(OutboxMessage, OutboxMessage.status == "sent") == 2)


def post_raw(propbot: Propbot, update: dict[str, object]) -> httpx.Response:
    """Post an update without Telegram executing the webhook's answer, to look at the answer."""
    response = propbot.http.post("/telegram", json=update, headers={SECRET_HEADER: SECRET})
    assert response.status_code == 200
    return response


def test_replies_still_waiting_are_superseded_by_a_newer_answer(propbot: Propbot) -> None:
    """Telegram refuses for a while: a turn's replies wait in the outbox. The resident writes again
    and gets a fresh answer; the old replies are never delivered after it (superseded)."""
    propbot.bind("telegram", str(CHAT), "李明")
    propbot.tg_say(CHAT, "厨房水管漏水了")
    before = len(propbot.telegram.texts_to(CHAT))
    propbot.telegram.fail_next("sendMessage", 502, "Bad Gateway", times=2)  # inline, then the retry
    propbot.post_update(propbot.updates.text(CHAT, "我家物业费还欠多少"))
    waiting = OutboxMessage.status == "pending", OutboxMessage.attempts == 1
    propbot.telegram.wait_for(lambda: propbot.count(OutboxMessage, *waiting) == 1)  # backing off
    fresh = propbot.tg_say(CHAT, "算了")
    assert fresh and "物业费：998.40" not in fresh[0] and "已为您取消报修" in fresh[0]
    with propbot.app.sessions() as session:
        rows = session.query(OutboxMessage).filter_by(channel="telegram", kind="reply").all()
    assert [r.status for r in rows] == ["superseded", "superseded"]
    assert all("newer message" in (r.last_error or "") for r in rows)
    time.sleep(6)  # past the retry's backoff (5 s): still nothing stale
    assert propbot.telegram.texts_to(CHAT)[before:] == fresh


# -- typed fields (issue 15 item 3) -----------------------------------------------------------------------
PHONE = "13800138000"


def _shapes() -> dict[str, dict[str, Any]]:
    """Updates that parse as JSON but not as the Bot API's types, by what is wrong."""
    updates = Updates()
    text = updates.text(CHAT, f"厨房漏水 电话{PHONE}")
    message = text["message"]
    without_chat = {k: v for k, v in message.items() if k != "chat"}
    return {
        "text-an-object": {**text, "message": {**message, "text": {"bold": f"电话{PHONE}"}}},
        "text-a-number": {**text, "message": {**message, "text": 13800138000}},
        "message-a-list": {**text, "message": [message]},
        "huge-chat-id": {**text, "message": {**message, "chat": {"id": 10**30, "type": "private"}}},
        "chat-id-past-52-bits": {**text, "message": {**message, "chat": {"id": 2**53, "type": "private"}}},
        "chat-id-a-string": {**text, "message": {**message, "chat": {"id": str(CHAT), "type": "private"}}},
        "sender-id-a-bool": {**text, "message": {**message, "from": {"id": True, "first_name": "李"}}},
        "no-chat": {**text, "message": without_chat},
        "no-update-id": {"message": message},
        "callback-data-a-number": updates.callback(CHAT, "x") | {"callback_query": {"id": "q", "data": 1}},
        "photo-not-a-list": updates.message(CHAT, photo={"file_id": "f", "width": 1, "height": 1}),
    }


SHAPES = _shapes()


@pytest.mark.parametrize("name", list(SHAPES))
def test_a_field_of_the_wrong_type_is_400_with_one_log_line_and_no_personal_data(
    propbot: Propbot, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    propbot.bind("telegram", str(CHAT), "李明")
    before = propbot.footprint()
    caplog.set_level(logging.INFO)
    caplog.clear()
    response = propbot.http.post("/telegram", json=SHAPES[name], headers={SECRET_HEADER: SECRET})
    assert response.status_code == 400 and response.json() == {"error": "not a Telegram update"}
    [line] = server_log(caplog)
    assert line.name == "bot.channels.telegram" and "malformed update" in line.getMessage()
    assert line.exc_info is None and "Traceback" not in caplog.text
    text = line.getMessage()
    for secret in (str(CHAT), PHONE, "厨房", "李"):
        assert secret not in text
    assert propbot.footprint() == before
    assert propbot.telegram.calls("sendMessage") == []
