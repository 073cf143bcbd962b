"""Residents' photos reach the staff, over real HTTP against the fake Telegram and WeChat servers: a
card's photos follow it as a reply (re-sent by Telegram file id, or fetched from WeChat and uploaded),
ten to an album; a photo that cannot be fetched is named, never holding up its card; photos answering
a staff question go back to the card; the WeCom robot gets each photo as an image, or a note."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from bot.app import App
from bot.channels.photos import PhotoFetcher
from bot.channels.staff_group import TelegramStaffSender
from bot.channels.telegram import make_bot
from bot.channels.wechat_token import DbTokenStorage, SharedTokenClient
from bot.channels.wecom import WeComRobotSender
from bot.dispatcher import Dispatcher
from data.clock import FixedClock
from data.models import OutboxMessage
from flows.domain.tickets import STAFF_BUTTONS
from tests.e2e.conftest import (
    STAFF_CHAT,
    WANG,
    Propbot,
    RunningClock,
    channel_settings,
    start_propbot,
)
from tests.fakes import wechat_api
from tests.fakes.telegram_api import BOT_USER, Call, FakeTelegram, photo_caption, photo_items
from tests.fakes.wechat_api import ROBOT_KEY, Callbacks, FakeWeChat, message_xml
from tests.integration.outbox_helpers import dispatcher, enqueue, outbox

NUMBER = "BX-20261123-0001"
RESIDENT = 5550002  # 李明's Telegram chat
OPENID = "oABCD1234resident_li_ming_0001"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(range(256)) * 4
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(255, -1, -1)) * 4
GIF = b"GIF89a" + b"\x01" * 64


def jpeg(tag: int) -> bytes:
    return JPEG + bytes([tag]) * 16


# -- the senders on the test's clock ----------------------------------------------------------------
@dataclass
class Staff:
    telegram: TelegramStaffSender
    robot: WeComRobotSender


@pytest.fixture
async def staff(app: App, fake_telegram: FakeTelegram, fake_wechat: FakeWeChat) -> AsyncIterator[Staff]:
    settings = channel_settings(app.settings.database_url, fake_telegram.url, fake_wechat.url)  # type: ignore[attr-defined]
    bot = make_bot(settings)
    await bot.initialize()
    wechat = SharedTokenClient(
        wechat_api.APP_ID,
        wechat_api.APP_SECRET,
        DbTokenStorage(app.sessions, app.clock),
        settings.wechat_api_url,
    )
    photos = PhotoFetcher(bot, wechat)
    robot = WeComRobotSender(f"{fake_wechat.url}/cgi-bin/webhook/send", ROBOT_KEY, photos=photos)  # type: ignore[attr-defined]
    yield Staff(TelegramStaffSender(bot, str(STAFF_CHAT), photos), robot)
    await robot.aclose()
    await photos.aclose()
    await bot.shutdown()


def card(app: App, photos: list[str]) -> int:
    """A new-ticket card naming ``photos``, as ``flows.domain.tickets.notify_staff`` writes it."""
    payload = {"ticket": NUMBER, "buttons": STAFF_BUTTONS, "photos": photos}
    [row] = enqueue(app, 1, "staff", "staff", "new_ticket", payload=payload)
    return row


async def drain(run: Dispatcher, clock: FixedClock, rounds: int = 8) -> None:
    """Dispatch until nothing is left, moving the clock past back-offs and rate limits."""
    for _ in range(rounds):
        await run.run_once()
        clock.advance(seconds=60)


def the_card(fake: FakeTelegram) -> Call:
    [sent] = [c for c in fake.sent_to(STAFF_CHAT) if c.params["text"].startswith("消息")]
    return sent


async def test_a_card_is_followed_by_its_photos_ten_to_an_album(
    app: App, clock: FixedClock, staff: Staff, fake_telegram: FakeTelegram
) -> None:
    refs = [f"telegram:AgAC-{i:02d}" for i in range(11)]
    card(app, refs)
    await drain(dispatcher(app, clock, {"staff": staff.telegram}), clock)
    sent = the_card(fake_telegram)
    assert sent.params["reply_markup"]["inline_keyboard"], "the card keeps its buttons"
    first, second = fake_telegram.photos_to(STAFF_CHAT)
    assert (first.method, second.method) == ("sendMediaGroup", "sendPhoto")
    assert photo_items(first) + photo_items(second) == [r.removeprefix("telegram:") for r in refs]
    assert [photo_caption(first), photo_caption(second)] == [
        f"{NUMBER} 的照片（1/2）",
        f"{NUMBER} 的照片（2/2）",
    ]
    for album in (first, second):
        assert album.params["reply_parameters"]["message_id"] == sent.result["message_id"]
    assert fake_telegram.calls("getFile") == [], "Telegram's own photos are re-sent by id, not downloaded"
    assert {r.status for r in outbox(app)} == {"sent"} and len(outbox(app)) == 3


async def test_wechat_photos_are_fetched_and_uploaded_and_a_lost_one_is_named(
    app: App, clock: FixedClock, staff: Staff, fake_telegram: FakeTelegram, fake_wechat: FakeWeChat
) -> None:
    fake_wechat.media["media-1"] = jpeg(1)
    picture = fake_wechat.add_picture("leak2", PNG)
    lost = f"{fake_wechat.url}/mmbiz_jpg/expired"  # type: ignore[attr-defined]
    card(app, ["wechat-media:media-1", picture, lost])
    await drain(dispatcher(app, clock, {"staff": staff.telegram}), clock)
    [album] = fake_telegram.photos_to(STAFF_CHAT)
    assert photo_items(album) == [jpeg(1), PNG]
    assert photo_caption(album) == f"{NUMBER} 的照片（1 张照片未能转发，见工单）"
    assert album.params["reply_parameters"]["message_id"] == the_card(fake_telegram).result["message_id"]


async def test_a_busy_picture_host_is_tried_again(
    app: App, clock: FixedClock, staff: Staff, fake_telegram: FakeTelegram, fake_wechat: FakeWeChat
) -> None:
    card(app, [fake_wechat.add_picture("slow", jpeg(2))])
    fake_wechat.picture_failures[:] = [503]
    await drain(dispatcher(app, clock, {"staff": staff.telegram}), clock)
    [photo] = fake_telegram.photos_to(STAFF_CHAT)
    assert photo_items(photo) == [jpeg(2)] and photo_caption(photo) == f"{NUMBER} 的照片"
    assert [r.attempts for r in outbox(app)] == [1, 2]


async def test_a_picture_host_that_stays_down_is_given_up_on_and_named(
    app: App, clock: FixedClock, staff: Staff, fake_telegram: FakeTelegram, fake_wechat: FakeWeChat
) -> None:
    card(app, [fake_wechat.add_picture("down", jpeg(3))])
    fake_wechat.picture_failures[:] = [502] * 5
    await drain(dispatcher(app, clock, {"staff": staff.telegram}), clock)
    assert fake_telegram.photos_to(STAFF_CHAT) == []
    note = fake_telegram.texts_to(STAFF_CHAT)[-1]
    assert note == f"{NUMBER} 的照片（1 张照片未能转发，见工单）"
    assert [(r.status, r.attempts) for r in outbox(app)] == [("sent", 1), ("sent", 3)]


async def test_telegram_refusing_the_album_leaves_a_note(
    app: App, clock: FixedClock, staff: Staff, fake_telegram: FakeTelegram
) -> None:
    card(app, ["telegram:AgAC-gone-1", "telegram:AgAC-gone-2"])
    fake_telegram.fail_next("sendMediaGroup", 400, "Bad Request: wrong file identifier/HTTP URL specified")
    await drain(dispatcher(app, clock, {"staff": staff.telegram}), clock)
    sent = the_card(fake_telegram)
    note = fake_telegram.sent_to(STAFF_CHAT)[-1]
    assert note.params["text"] == f"{NUMBER} 的照片（2 张照片未能转发，见工单）"
    assert note.params["reply_parameters"]["message_id"] == sent.result["message_id"]
    assert {r.status for r in outbox(app)} == {"sent"}


async def test_the_wecom_robot_gets_each_photo_as_an_image_or_a_note(
    app: App,
    clock: FixedClock,
    staff: Staff,
    fake_telegram: FakeTelegram,
    fake_wechat: FakeWeChat,
) -> None:
    fake_telegram.files["AgAC-tg"] = jpeg(4)  # a Telegram resident's photo: via getFile
    fake_wechat.media["media-gif"] = GIF
    big = fake_wechat.add_picture("big", JPEG * (2 * 1024 * 1024 // len(JPEG) + 1))
    refs = ["telegram:AgAC-tg", fake_wechat.add_picture("png", PNG), "wechat-media:media-gif", big]
    card(app, refs)
    senders: dict[str, Any] = {"staff": staff.robot, "wecom": staff.robot}
    await drain(dispatcher(app, clock, senders, shared={"wecom": "staff"}), clock)
    posted = [c.body["msgtype"] for c in fake_wechat.calls("webhook/send")]
    assert posted == ["markdown", "image", "image", "markdown", "markdown"]
    assert fake_wechat.robot_images() == [jpeg(4), PNG]  # md5 and size checked by the fake robot
    notes = fake_wechat.robot_texts()[1:]
    assert "照片 3/4" in notes[0] and "JPG/PNG" in notes[0]
    assert "照片 4/4" in notes[1] and "超过 2 MB" in notes[1]
    rows = outbox(app)
    assert [r.channel for r in rows] == ["staff", "wecom", "wecom", "wecom", "wecom"]
    assert {r.status for r in rows} == {"sent"}


# -- the whole server ------------------------------------------------------------------------------
def report_with_photo(propbot: Propbot, file_id: str = "AgAC-leak") -> Call:
    """李明 reports a leak on Telegram with a photo; the card in the staff group."""
    propbot.bind("telegram", str(RESIDENT), "李明")
    sizes = [
        {"file_id": f"{file_id}-small", "file_unique_id": "u1", "width": 90, "height": 60},
        {"file_id": file_id, "file_unique_id": "u2", "width": 1280, "height": 960},
    ]
    assert (
        propbot.post_update(
            propbot.updates.message(RESIDENT, photo=sizes, caption="卫生间天花板漏水")
        ).status_code
        == 200
    )
    propbot.tg_press(RESIDENT, "尽快")
    assert "已为您登记报修" in propbot.tg_press(RESIDENT, "确认")[0]
    return propbot.telegram.wait_for(lambda: propbot.telegram.sent_to(STAFF_CHAT))[0]


def test_a_telegram_residents_photo_follows_the_card_as_a_reply(propbot: Propbot) -> None:
    card_sent = report_with_photo(propbot)
    [ticket] = propbot.tickets()
    assert (
        card_sent.params["text"].startswith(f"【新报修】{ticket.number}")
        and "照片：1 张" in card_sent.params["text"]
    )
    [photo] = propbot.telegram.wait_for(lambda: propbot.telegram.photos_to(STAFF_CHAT))
    assert photo.method == "sendPhoto" and photo.params["photo"] == "AgAC-leak"
    assert photo.params["reply_parameters"]["message_id"] == card_sent.result["message_id"]
    assert ticket.number in photo_caption(photo)


def test_a_staff_reply_to_an_albums_later_photo_is_not_lost_silently(propbot: Propbot) -> None:
    """Telegram shows an album's caption (with the ticket number) on its first photo only."""
    card_sent = report_with_photo(propbot)
    propbot.telegram.wait_for(lambda: propbot.telegram.photos_to(STAFF_CHAT))
    later_photo = {
        "message_id": card_sent.result["message_id"] + 2,
        "date": 1795413600,
        "from": BOT_USER,
        "chat": {"id": STAFF_CHAT, "type": "supergroup"},
        "media_group_id": "13579",
        "photo": [{"file_id": "AgAC-second", "file_unique_id": "u9", "width": 1280, "height": 960}],
    }
    to_resident = len(propbot.telegram.texts_to(RESIDENT))
    reply = propbot.updates.message(
        STAFF_CHAT,
        chat_type="supergroup",
        user_id=WANG,
        text="这里是哪个房间？",
        reply_to_message=later_photo,
    )
    assert propbot.post_update(reply).status_code == 200
    [answer] = [c for c in propbot.telegram.sent_to(STAFF_CHAT) if "没有转达" in c.params["text"]]
    assert answer.params["reply_parameters"]["message_id"] == reply["message"]["message_id"]
    assert "回复工单卡片" in answer.params["text"]
    assert len(propbot.telegram.texts_to(RESIDENT)) == to_resident, "nothing went to the resident"


def test_an_escalation_card_brings_the_photos_again(propbot: Propbot) -> None:
    card_sent = report_with_photo(propbot)
    [ticket] = propbot.tickets()
    propbot.telegram.wait_for(lambda: propbot.telegram.photos_to(STAFF_CHAT))
    update = propbot.updates.callback(
        STAFF_CHAT,
        f"escalate:{ticket.number}",
        user_id=WANG,
        message=card_sent.message,
        chat_type="supergroup",
    )
    assert propbot.post_update(update).status_code == 200
    escalation = propbot.telegram.wait_for(
        lambda: [c for c in propbot.telegram.sent_to(STAFF_CHAT) if c.params["text"].startswith("【升级")]
    )[0]
    first, again = propbot.telegram.wait_for(
        lambda: propbot.telegram.photos_to(STAFF_CHAT)[1:] and propbot.telegram.photos_to(STAFF_CHAT)
    )
    assert again.params["photo"] == "AgAC-leak"
    assert again.params["reply_parameters"]["message_id"] == escalation.result["message_id"]


def wechat_post(propbot: Propbot, wx: Callbacks, msg_id: int, msg_type: str, **fields: Any) -> str:
    created = int(propbot.app.clock.now().timestamp())
    response = propbot.wx_post(wx, message_xml(OPENID, msg_type, created, msg_id, **fields))
    reply = wx.open_reply(response.text)
    assert response.status_code == 200 and reply is not None
    return str(reply["Content"])


def test_a_wechat_residents_picture_is_uploaded_to_the_staff_group(propbot: Propbot) -> None:
    wx = Callbacks(aes=True)
    propbot.bind("wechat", OPENID, "李明")
    picture = propbot.wechat.add_picture("ceiling", jpeg(5))
    assert "照片收到了" in wechat_post(propbot, wx, 1, "image", PicUrl=picture, MediaId="media-5")
    wechat_post(propbot, wx, 2, "text", Content="卫生间天花板漏水了")
    wechat_post(propbot, wx, 3, "text", Content="尽快")
    assert "已为您登记报修" in wechat_post(propbot, wx, 4, "text", Content="确认")
    card_sent = propbot.telegram.wait_for(lambda: propbot.telegram.sent_to(STAFF_CHAT))[0]
    [photo] = propbot.telegram.wait_for(lambda: propbot.telegram.photos_to(STAFF_CHAT))
    assert photo_items(photo) == [jpeg(5)], "fetched from the PicUrl and uploaded"
    assert photo.params["reply_parameters"]["message_id"] == card_sent.result["message_id"]


def test_photos_answering_a_staff_question_go_back_to_the_card(propbot: Propbot) -> None:
    """WeChat sends one image a message: each goes back, and the words after them too."""
    wx = Callbacks(aes=True)
    propbot.bind("wechat", OPENID, "李明")
    wechat_post(propbot, wx, 1, "text", Content="厨房水管漏水了")
    wechat_post(propbot, wx, 2, "text", Content="尽快")
    wechat_post(propbot, wx, 3, "text", Content="确认")
    [ticket] = propbot.tickets()
    card_sent = propbot.telegram.wait_for(lambda: propbot.telegram.sent_to(STAFF_CHAT))[0]
    question = propbot.updates.message(
        STAFF_CHAT,
        chat_type="supergroup",
        user_id=WANG,
        text="麻烦拍一下漏水的地方",
        reply_to_message=card_sent.message,
    )
    assert propbot.post_update(question).status_code == 200
    propbot.wechat.wait_for(lambda: [t for t in propbot.wechat.custom_texts(OPENID) if "物业工作人员" in t])
    first, second = propbot.wechat.add_picture("a", jpeg(6)), propbot.wechat.add_picture("b", jpeg(7))
    assert "已将您的回复转达" in wechat_post(propbot, wx, 4, "image", PicUrl=first, MediaId="m6")
    assert "已将您的回复转达" in wechat_post(propbot, wx, 5, "image", PicUrl=second, MediaId="m7")
    assert "已将您的回复转达" in wechat_post(propbot, wx, 6, "text", Content="就是水槽下面")
    photos = propbot.telegram.wait_for(
        lambda: propbot.telegram.photos_to(STAFF_CHAT)[1:] and propbot.telegram.photos_to(STAFF_CHAT)
    )
    assert [photo_items(p) for p in photos] == [[jpeg(6)], [jpeg(7)]]
    assert {photo_caption(p) for p in photos} == {f"【居民回复】{ticket.number}：（发来 1 张照片）"}
    assert {p.params["reply_parameters"]["message_id"] for p in photos} == {card_sent.result["message_id"]}
    words = propbot.telegram.wait_for(
        lambda: [c for c in propbot.telegram.sent_to(STAFF_CHAT) if "就是水槽下面" in c.params["text"]]
    )
    assert words[0].params["reply_parameters"]["message_id"] == card_sent.result["message_id"]


@pytest.fixture
def propbot_and_robot(
    db_url: str, clock: FixedClock, embedded_nlu: Any, fake_telegram: FakeTelegram, fake_wechat: FakeWeChat
) -> Iterator[Propbot]:
    settings = channel_settings(
        db_url,
        fake_telegram.url,  # type: ignore[attr-defined]
        fake_wechat.url,  # type: ignore[attr-defined]
        wecom_robot_key=ROBOT_KEY,
        wecom_api_url=f"{fake_wechat.url}/cgi-bin/webhook/send",  # type: ignore[attr-defined]
    )
    application = App(settings, RunningClock(clock.now()))
    application.__dict__["nlu"] = embedded_nlu
    try:
        yield from start_propbot(application, fake_telegram, fake_wechat)
    finally:
        application.close()


def test_with_a_wecom_robot_too_the_photos_reach_both(propbot_and_robot: Propbot) -> None:
    propbot = propbot_and_robot
    propbot.telegram.files["AgAC-leak"] = jpeg(8)
    report_with_photo(propbot)
    [photo] = propbot.telegram.wait_for(lambda: propbot.telegram.photos_to(STAFF_CHAT))
    assert photo.params["photo"] == "AgAC-leak"
    assert propbot.wechat.wait_for(propbot.wechat.robot_images) == [jpeg(8)]
    assert propbot.wechat.robot_texts()[0].startswith("**【新报修】")
    with propbot.app.sessions() as session:
        kinds = sorted(
            (r.channel, r.kind)
            for r in session.query(OutboxMessage).filter(OutboxMessage.recipient == "staff")
        )
    assert kinds == [("staff", "new_ticket"), ("staff", "photos"), ("wecom", "photo")]
