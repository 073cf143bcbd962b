"""WeChat over real HTTP, signed as WeChat signs and (in safe mode) AES-encrypted as WeChat encrypts:
verification, forged signatures, retries by MsgId, message types, events, hostile bodies, the
5-second limit, and the proactive sender (48-hour window, templates, one shared access token)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest

from bot.app import App
from bot.channels.wechat import Templates, WeChatSender, render
from bot.channels.wechat_token import DbTokenStorage, SharedTokenClient
from bot.outbound import OutboundMessage, PermanentFailure
from data.db import transaction
from data.models import CallbackNonce, ChannelAccount, Ticket
from flows.dialog.turn import Button, Reply
from tests.e2e.conftest import Propbot, server_log, start_propbot
from tests.fakes import wechat_api
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.wechat_api import ACCOUNT, Callbacks, FakeWeChat, message_xml, signature

OPENID = "oABCD1234resident_li_ming_0001"


@pytest.fixture(params=["plain", "aes"])
def wx(request: pytest.FixtureRequest, propbot: Propbot) -> Callbacks:
    """Both modes, for what depends on the protocol (signatures, bodies, retries). In plain mode
    (明文模式) the server has no AES key, as the Official Account has no EncodingAESKey."""
    if request.param == "plain":
        propbot.web.state.channels["wechat"].inbound.crypto = None
    return Callbacks(aes=request.param == "aes")


@pytest.fixture
def wx_aes() -> Callbacks:
    """Safe mode only, for behaviour that does not depend on it (as production runs)."""
    return Callbacks(aes=True)


class Resident:
    """One WeChat user talking to the Official Account."""

    def __init__(self, propbot: Propbot, wx: Callbacks, openid: str = OPENID) -> None:
        self.propbot, self.wx, self.openid = propbot, wx, openid
        self.msg_id = 24000000000000000

    def created(self) -> int:
        return int(self.propbot.app.clock.now().timestamp())

    def post(self, xml: str) -> tuple[int, dict[str, Any] | None]:
        response = self.propbot.wx_post(self.wx, xml)
        if response.status_code != 200:
            return response.status_code, None
        return 200, self.wx.open_reply(response.text)

    def say(self, text: str, msg_id: int | None = None) -> str:
        reply = self.send("text", msg_id, Content=text)
        assert reply["ToUserName"] == self.openid and reply["FromUserName"] == ACCOUNT
        return str(reply["Content"])

    def send(self, kind: str, msg_id: int | None = None, **fields: Any) -> dict[str, Any]:
        """A message of ``kind`` (text, image, voice, location), numbered unless ``msg_id`` is given."""
        if msg_id is None:
            self.msg_id += 1
            msg_id = self.msg_id
        status, reply = self.post(message_xml(self.openid, kind, self.created(), msg_id, **fields))
        assert status == 200 and reply is not None
        return reply

    def event(self, event: str, **fields: Any) -> str | None:
        status, reply = self.post(message_xml(self.openid, "event", self.created(), Event=event, **fields))
        assert status == 200
        return None if reply is None else str(reply["Content"])


def test_server_verification_echoes_only_when_signed_and_fresh(propbot: Propbot) -> None:
    query = {"timestamp": str(propbot.wx_now()), "nonce": "abc", "echostr": "echo-5678"}
    good = signature(wechat_api.TOKEN, query["timestamp"], query["nonce"])
    assert propbot.http.get("/wechat", params={**query, "signature": good}).text == "echo-5678"
    assert propbot.http.get("/wechat", params={**query, "signature": "f" * 40}).status_code == 403
    stale = str(propbot.wx_now() - 301)  # signed correctly, but six minutes old
    signed = {**query, "timestamp": stale, "signature": signature(wechat_api.TOKEN, stale, "abc")}
    assert propbot.http.get("/wechat", params=signed).status_code == 403


def test_forged_signatures_are_refused_and_write_nothing(propbot: Propbot, wx: Callbacks) -> None:
    before = propbot.footprint()
    xml = message_xml(OPENID, "text", 1795413600, 1, Content="厨房水管漏水了")
    assert propbot.wx_post(wx, xml, forged=True).status_code == 403
    if wx.aes:  # a valid outer signature but a msg_signature that does not match the ciphertext
        path, body = propbot.wx_build(wx, xml)
        tampered = path.replace("msg_signature=", "msg_signature=0")
        assert propbot.http.post(tampered, content=body).status_code == 403
    assert propbot.footprint() == before


def test_the_same_msgid_three_times_is_one_ticket_and_three_identical_answers(
    propbot: Propbot, wx: Callbacks
) -> None:
    propbot.bind("wechat", OPENID, "李明")
    li = Resident(propbot, wx)
    assert "什么时候上门" in li.say("厨房水管漏水了")
    assert "请您核对报修信息" in li.say("尽快")
    answers = [li.say("确认", msg_id=99887766) for _ in range(3)]
    assert answers[0] == answers[1] == answers[2]
    assert "已为您登记报修" in answers[0]
    assert propbot.count(Ticket) == 1


def test_choices_are_tappable_links_that_send_the_value() -> None:
    text = render(Reply("请选择", (Button("确认"), Button("明天上午", "时段 2026-11-24T09:00:00+08:00"))))
    assert '<a href="weixin://bizmsgmenu?msgmenucontent=确认&msgmenuid=1">确认</a>' in text
    assert "msgmenucontent=时段 2026-11-24T09:00:00+08:00&msgmenuid=2" in text


def test_subscribe_welcomes_and_asks_to_bind_then_a_code_binds(propbot: Propbot, wx_aes: Callbacks) -> None:
    li = Resident(propbot, wx_aes, "oNEWFOLLOWER00000000000000001")
    welcome = li.event("subscribe")
    assert welcome is not None and "欢迎使用阳光花园物业服务" in welcome and "绑定码" in welcome
    assert "绑定成功" in li.say("SUN777")
    with propbot.app.sessions() as session:
        account = session.query(ChannelAccount).filter_by(channel="wechat", external_id=li.openid).one()
        assert account.resident is not None and account.resident.name == "赵强"


def test_qr_scene_with_a_binding_code_binds_on_follow(propbot: Propbot, wx_aes: Callbacks) -> None:
    li = Resident(propbot, wx_aes, "oQRFOLLOWER000000000000000001")
    assert "绑定成功" in (li.event("subscribe", EventKey="qrscene_SUN888", Ticket="t") or "")


def test_voice_image_location_and_menu_clicks(propbot: Propbot, wx_aes: Callbacks) -> None:
    propbot.bind("wechat", OPENID, "李明")
    li = Resident(propbot, wx_aes)
    picture = propbot.wechat.add_picture("leak", b"\xff\xd8\xff\xe0 a jpeg")  # served on localhost
    reply = li.send("image", PicUrl=picture, MediaId="media-1")
    assert "照片收到了" in reply["Content"]
    reply = li.send("voice", MediaId="v1", Format="amr", Recognition="卫生间水管漏水了")
    assert "什么时候上门" in reply["Content"]
    li.say("尽快")
    li.say("确认")
    [ticket] = propbot.tickets()
    assert ticket.photos == [picture] and "卫生间" in ticket.description
    status = li.event("CLICK", EventKey="STATUS")
    assert status is not None and ticket.number in status
    assert "没能识别" in li.send("voice", MediaId="v2", Format="amr")["Content"]
    reply = li.send("location", Location_X="30.27", Location_Y="120.15", Scale="15", Label="阳光花园")
    assert reply["Content"]


@pytest.mark.parametrize("kind", ["video", "shortvideo", "link", "file"])
def test_unknown_types_get_a_polite_reply_and_write_nothing(
    propbot: Propbot, wx_aes: Callbacks, kind: str
) -> None:
    before = propbot.footprint()
    fields = {"link": {"Title": "看看", "Url": "http://example.com"}}.get(kind, {"MediaId": "m"})
    status, reply = Resident(propbot, wx_aes).post(message_xml(OPENID, kind, 1795413600, 42, **fields))
    assert status == 200 and reply is not None
    assert reply["Content"].startswith("抱歉，目前只能处理文字、图片、语音和位置")
    assert propbot.footprint() == before


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]>
<xml><ToUserName>gh</ToUserName><FromUserName>oX</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&d;</Content><MsgId>1</MsgId></xml>"""
EXTERNAL_ENTITY = """<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<xml><FromUserName>oX</FromUserName><CreateTime>1</CreateTime><MsgType>text</MsgType><Content>&x;</Content></xml>"""


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("<xml><MsgType>text</MsgType><Content>半截", 400),
        (BILLION_LAUGHS, 400),
        (EXTERNAL_ENTITY, 400),
        ("<xml><FromUserName>oX</FromUserName><CreateTime>1</CreateTime><Content>hi</Content></xml>", 400),
        ("<xml><ToUserName>gh</ToUserName><CreateTime>1</CreateTime><MsgType>text</MsgType></xml>", 400),
        (
            "<xml><FromUserName>oX</FromUserName><CreateTime>soon</CreateTime><MsgType>text</MsgType></xml>",
            400,
        ),
        ("not xml at all", 400),
        ("<xml>" + "<Content>长</Content>" * 8000 + "</xml>", 413),
    ],
    ids=[
        "truncated",
        "billion-laughs",
        "external-entity",
        "no-msgtype",
        "no-sender",
        "bad-time",
        "not-xml",
        "oversized",
    ],
)
def test_hostile_or_broken_bodies_get_a_clear_error(
    propbot: Propbot, wx: Callbacks, body: str, status: int
) -> None:
    before = propbot.footprint()
    response = propbot.wx_post(wx, body)
    assert response.status_code == status
    assert "Traceback" not in response.text and response.text in ("bad request", "body too large")
    assert propbot.footprint() == before


class SlowEngine:
    """The real engine, made slower than WeChat's patience."""

    def __init__(self, engine: Any, delay: float) -> None:
        self.engine, self.delay = engine, delay
        self.finished = threading.Event()

    def handle(self, inbound: Any) -> Any:
        time.sleep(self.delay)
        try:
            return self.engine.handle(inbound)
        finally:
            self.finished.set()


def test_a_slow_answer_is_success_now_and_a_customer_service_message_later(
    propbot: Propbot, wx_aes: Callbacks
) -> None:
    channel = propbot.web.state.channels["wechat"].inbound
    channel.reply_timeout = 0.3
    slow = SlowEngine(propbot.app.engine, 2.0)
    propbot.app.__dict__["engine"] = slow
    li = Resident(propbot, wx_aes)
    status, reply = li.post(message_xml(OPENID, "text", li.created(), 555, Content="物业电话多少"))
    assert status == 200 and reply is None  # "success": WeChat will not retry
    assert not slow.finished.is_set()  # answered without waiting for the engine
    [late] = propbot.wechat.wait_for(lambda: propbot.wechat.custom_texts(OPENID))
    assert "0571-88881234" in late
    status, reply = li.post(message_xml(OPENID, "text", li.created(), 555, Content="物业电话多少"))
    assert status == 200 and reply is None  # a retry after the late answer: nothing twice
    time.sleep(0.3)
    assert len(propbot.wechat.custom_texts(OPENID)) == 1


def test_one_resident_on_wechat_and_telegram_shares_tickets_and_bills(
    propbot: Propbot, wx_aes: Callbacks
) -> None:
    propbot.bind("wechat", OPENID, "李明")
    propbot.bind("telegram", "5550003", "王芳")  # family member of the same unit
    li = Resident(propbot, wx_aes)
    li.say("厨房水管漏水了")
    li.say("尽快")
    li.say("确认")
    [ticket] = propbot.tickets()
    assert ticket.number in propbot.tg_say(5550003, "我家报的修什么时候来")[0]
    on_wechat, on_telegram = li.say("物业费还欠多少"), propbot.tg_say(5550003, "物业费还欠多少")[0]
    assert on_wechat == on_telegram and "2026" in on_wechat


# -- the proactive sender -------------------------------------------------------------------------------
TEMPLATES = Templates.parse(
    '{"default": {"template_id": "TPL-1", "url": "https://example.com/t", '
    '"fields": {"thing1": "{first_line}", "character_string2": "{ticket}", "time3": "{time}", '
    '"thing4": {"value": "{rest}", "max": 8}}}}'
)


def sender(
    app: App, fake: FakeWeChat, templates: Templates = TEMPLATES, owner: str | None = None
) -> WeChatSender:
    storage = DbTokenStorage(app.sessions, app.clock, owner)
    client = SharedTokenClient(wechat_api.APP_ID, wechat_api.APP_SECRET, storage, f"{fake.url}/cgi-bin/")  # type: ignore[attr-defined]
    return WeChatSender(client, app.sessions, app.clock, templates)


def last_seen(app: App, openid: str, ago: timedelta) -> None:
    with transaction(app.sessions) as session:
        session.add(
            ChannelAccount(channel="wechat", external_id=openid, last_inbound_at=app.clock.now() - ago)
        )


def notice(text: str, kind: str = "dispatched", buttons: list[list[str]] | None = None) -> OutboundMessage:
    payload = {"ticket": "BX-20261123-0001", "buttons": buttons or []}
    return OutboundMessage(1, "wechat", OPENID, kind, text, payload)


@pytest.fixture
def wechat_app(server_app: App) -> App:
    server_app.prepare_store()
    return server_app


async def test_inside_48_hours_a_customer_service_message(wechat_app: App, fake_wechat: FakeWeChat) -> None:
    last_seen(wechat_app, OPENID, timedelta(hours=47))
    await sender(wechat_app, fake_wechat).send(
        notice("已由 王师傅 接单", buttons=[["解决了", "解决了 BX-1"]])
    )
    [call] = fake_wechat.calls("custom/send")
    assert call.body["touser"] == OPENID and call.body["text"]["content"].startswith("已由 王师傅 接单")
    assert "msgmenucontent=解决了 BX-1" in call.body["text"]["content"]
    assert fake_wechat.calls("template/send") == []


async def test_outside_48_hours_a_template_with_fields_cut(wechat_app: App, fake_wechat: FakeWeChat) -> None:
    last_seen(wechat_app, OPENID, timedelta(hours=49))
    text = (
        "您的报修（BX-20261123-0001）已由 王师傅 接单，预计 11月23日(周一) 10:15 前上门。\n"
        "请保持电话畅通，谢谢您的配合"
    )
    await sender(wechat_app, fake_wechat).send(notice(text))
    assert fake_wechat.calls("custom/send") == []
    [call] = fake_wechat.calls("template/send")
    data = call.body["data"]
    assert call.body["template_id"] == "TPL-1" and call.body["touser"] == OPENID
    assert len(data["thing1"]["value"]) == 20 and data["thing1"]["value"].endswith("…")
    assert data["character_string2"]["value"] == "BX-20261123-0001"
    assert data["thing4"]["value"] == "请保持电话畅通…"
    assert data["time3"]["value"] == "2026-11-23 10:00"
    assert call.body["url"] == "https://example.com/t"


async def test_a_template_sent_again_after_a_crash_reaches_the_resident_once(
    wechat_app: App, fake_wechat: FakeWeChat
) -> None:
    """The row's id goes as ``client_msg_id``: the resend of a row whose mark was lost (killed
    between WeChat's answer and the mark) is dropped by WeChat, not delivered twice."""
    last_seen(wechat_app, OPENID, timedelta(hours=49))
    row = notice("您的报修（BX-20261123-0001）已完工，请确认")
    await sender(wechat_app, fake_wechat).send(row)
    await sender(wechat_app, fake_wechat).send(row)  # the same row, from the next process
    [call] = fake_wechat.calls("template/send")
    assert call.body["client_msg_id"] == f"propbot-outbox-{row.id}"


async def test_wechat_says_window_closed_so_a_template_instead(
    wechat_app: App, fake_wechat: FakeWeChat
) -> None:
    last_seen(wechat_app, OPENID, timedelta(hours=1))
    fake_wechat.fail_next("custom/send", 45015)
    await sender(wechat_app, fake_wechat).send(notice("通知"))
    assert len(fake_wechat.calls("template/send")) == 1


async def test_outside_the_window_without_a_template_fails_for_good(
    wechat_app: App, fake_wechat: FakeWeChat
) -> None:
    last_seen(wechat_app, OPENID, timedelta(days=3))
    with pytest.raises(PermanentFailure, match="48-hour"):
        await sender(wechat_app, fake_wechat, Templates.parse("")).send(notice("通知"))
    fake_wechat.fail_next("custom/send", 43004)  # not following any more
    last_seen(wechat_app, "oOTHER", timedelta(hours=1))
    with pytest.raises(PermanentFailure, match="43004"):
        await sender(wechat_app, fake_wechat).send(OutboundMessage(2, "wechat", "oOTHER", "notice", "x"))


def test_the_access_token_is_fetched_once_for_all_processes(wechat_app: App) -> None:
    from tests.fakes.serve import served

    with served(FakeWeChat(token_delay=0.3)) as fake:
        senders = [sender(wechat_app, fake, owner=f"process-{i}") for i in range(4)]
        last_seen(wechat_app, OPENID, timedelta(hours=1))
        threads = [
            threading.Thread(target=s._send, args=(notice(f"消息{i}"),)) for i, s in enumerate(senders)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert fake.tokens == ["ACCESS_TOKEN_1"]
        assert len(fake.calls("custom/send")) == 4
        # WeChat rejects the stored token (40001): one refresh, shared, and the message still goes out
        fake.revoke_tokens()
        asyncio.run(senders[0].send(notice("再来一条")))
        asyncio.run(senders[1].send(notice("又一条")))
        assert fake.tokens == ["ACCESS_TOKEN_1", "ACCESS_TOKEN_2"]
        assert len(fake.calls("custom/send")) == 6


# -- replays, forgeries and downgrades (issue 15 items 1 and 2) -------------------------------------------
def nonces(propbot: Propbot) -> int:
    return propbot.count(CallbackNonce)


@pytest.mark.parametrize("offset", [-301, 301, -10 * 86400], ids=["stale", "future", "ten-days-old"])
def test_a_timestamp_over_five_minutes_off_is_refused_and_stores_nothing(
    propbot: Propbot, wx: Callbacks, offset: int
) -> None:
    before, seen = propbot.footprint(), nonces(propbot)
    xml = message_xml(OPENID, "text", propbot.wx_now(), 31, Content="厨房水管漏水了")
    path, body = wx.build(xml, timestamp=propbot.wx_now() + offset)  # correctly signed, only old
    assert propbot.wx_send(path, body).status_code == 403
    assert propbot.footprint() == before and nonces(propbot) == seen


def test_a_timestamp_inside_the_window_is_taken(propbot: Propbot, wx: Callbacks) -> None:
    xml = message_xml(OPENID, "text", propbot.wx_now(), 32, Content="物业电话多少")
    path, body = wx.build(xml, timestamp=propbot.wx_now() - 280)  # a slow proxy, a skewed clock
    response = propbot.wx_send(path, body)
    assert response.status_code == 200
    reply = wx.open_reply(response.text)
    assert reply is not None and "0571-88881234" in reply["Content"]


def test_a_timestamp_and_nonce_reused_with_another_body_is_a_replay(propbot: Propbot, wx: Callbacks) -> None:
    """Someone holding a signed URL (a proxy or access log) sends their own body under it."""
    propbot.bind("wechat", OPENID, "李明")
    stamp = propbot.wx_now()
    original = message_xml(OPENID, "text", stamp, 41, Content="物业电话多少")
    assert propbot.wx_send(*wx.build(original, timestamp=stamp, nonce="4711")).status_code == 200
    before = propbot.footprint()
    forged = message_xml(OPENID, "text", stamp, 42, Content="我家物业费还欠多少")
    response = propbot.wx_send(*wx.build(forged, timestamp=stamp, nonce="4711"))
    assert response.status_code == 403
    assert "物业费" not in response.text and "2026" not in response.text
    assert propbot.footprint() == before


def test_a_retry_with_the_very_same_body_gets_the_same_answer_and_creates_nothing(
    propbot: Propbot, wx: Callbacks
) -> None:
    """WeChat retries a callback it got no answer for; the pair is the same and so is the body."""
    propbot.bind("wechat", OPENID, "李明")
    li = Resident(propbot, wx)
    li.say("厨房水管漏水了")
    li.say("尽快")
    path, body = propbot.wx_build(wx, message_xml(OPENID, "text", li.created(), 43, Content="确认"))
    first, again = propbot.wx_send(path, body), propbot.wx_send(path, body)
    assert first.status_code == again.status_code == 200
    assert wx.open_reply(first.text) == wx.open_reply(again.text)
    assert propbot.count(Ticket) == 1


def test_the_nonce_record_is_shared_by_every_server_process(
    propbot: Propbot, server_app: App, fake_telegram: FakeTelegram, fake_wechat: FakeWeChat, wx: Callbacks
) -> None:
    """A second server on the same database (another worker, another host) refuses the replay."""
    other = App(server_app.settings, server_app.clock)
    other.__dict__["nlu"] = server_app.nlu
    try:
        for second in start_propbot(other, fake_telegram, fake_wechat):
            crypto = propbot.web.state.channels["wechat"].inbound.crypto
            second.web.state.channels["wechat"].inbound.crypto = crypto
            stamp = propbot.wx_now()
            original = message_xml(OPENID, "text", stamp, 51, Content="物业电话多少")
            assert propbot.wx_send(*wx.build(original, timestamp=stamp, nonce="5150")).status_code == 200
            before = propbot.footprint()
            forged = message_xml(OPENID, "text", stamp, 52, Content="我家物业费还欠多少")
            assert second.wx_send(*wx.build(forged, timestamp=stamp, nonce="5150")).status_code == 403
            assert propbot.footprint() == before
    finally:
        other.close()


@pytest.mark.parametrize("openid", ["oSOMEONE_ELSE_00000000000000001", ""], ids=["another", "missing"])
def test_the_query_openid_must_be_the_sender(propbot: Propbot, wx: Callbacks, openid: str) -> None:
    propbot.bind("wechat", OPENID, "李明")
    before, seen = propbot.footprint(), nonces(propbot)
    xml = message_xml(OPENID, "text", propbot.wx_now(), 61, Content="我家物业费还欠多少")
    response = propbot.wx_send(*propbot.wx_build(wx, xml, openid=openid))
    assert response.status_code == 403 and "2026" not in response.text
    assert propbot.footprint() == before and nonces(propbot) == seen


@pytest.mark.parametrize("mode", ["", "raw"], ids=["no-encrypt-type", "raw"])
def test_with_an_aes_key_plaintext_is_refused(propbot: Propbot, mode: str) -> None:
    """The query cannot switch safe mode off: the server has the key, so it wants ciphertext."""
    propbot.bind("wechat", OPENID, "李明")
    before, seen = propbot.footprint(), nonces(propbot)
    xml = message_xml(OPENID, "text", propbot.wx_now(), 71, Content="我家物业费还欠多少")
    path, body = propbot.wx_build(Callbacks(aes=False), xml)
    response = propbot.wx_send(path + (f"&encrypt_type={mode}" if mode else ""), body)
    assert response.status_code == 403 and "2026" not in response.text
    assert propbot.footprint() == before and nonces(propbot) == seen


def test_plaintext_with_an_aes_key_only_when_allowed_and_then_with_a_warning(
    server_app: App, fake_telegram: FakeTelegram, fake_wechat: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.channels.wechat")
    server_app.settings = replace(server_app.settings, wechat_allow_plaintext=True)
    for propbot in start_propbot(server_app, fake_telegram, fake_wechat):
        [warning] = [r for r in caplog.records if "WECHAT_ALLOW_PLAINTEXT" in r.getMessage()]
        assert warning.levelno == logging.WARNING
        xml = message_xml(OPENID, "text", propbot.wx_now(), 81, Content="物业电话多少")
        response = propbot.wx_post(Callbacks(aes=False), xml)
        assert response.status_code == 200 and "0571-88881234" in response.text
        assert propbot.wx_post(Callbacks(aes=True), xml.replace("81", "82")).status_code == 200


def test_no_plaintext_warning_when_plaintext_is_refused(
    server_app: App, fake_telegram: FakeTelegram, fake_wechat: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.channels.wechat")
    for _ in start_propbot(server_app, fake_telegram, fake_wechat):
        assert "WECHAT_ALLOW_PLAINTEXT" not in caplog.text


def _with_msg_signature(path: str, value: str | None) -> str:
    """``path`` with its msg_signature replaced by ``value`` (None: left out)."""
    parts = urlsplit(path)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "msg_signature"]
    if value is not None:
        query.append(("msg_signature", value))
    return f"{parts.path}?{urlencode(query)}"


@pytest.mark.parametrize("given", ["0" * 40, "", None], ids=["wrong", "empty", "missing"])
def test_a_bad_msg_signature_is_refused_and_stores_nothing(
    propbot: Propbot, wx_aes: Callbacks, given: str | None
) -> None:
    """The outer signature holds (it covers only token, timestamp, nonce); msg_signature, which
    covers the ciphertext, does not."""
    propbot.bind("wechat", OPENID, "李明")
    before, seen = propbot.footprint(), nonces(propbot)
    xml = message_xml(OPENID, "text", propbot.wx_now(), 91, Content="我家物业费还欠多少")
    path, body = propbot.wx_build(wx_aes, xml)
    assert propbot.wx_send(_with_msg_signature(path, given), body).status_code == 403
    assert propbot.footprint() == before and nonces(propbot) == seen
    assert propbot.wx_send(path, body).status_code == 200  # the same request, correctly signed


# -- typed fields (issue 15 item 3) -----------------------------------------------------------------------
PHONE = "13800138000"
TEXT = message_xml(OPENID, "text", 1795413600, 24000000000000777, Content=f"厨房漏水 电话{PHONE}")
OTHER = "oOTHER_RESIDENT_0000000000000002"


@pytest.mark.parametrize(
    "body",
    [
        TEXT.replace(f"电话{PHONE}", f"<b>电话{PHONE}</b>"),
        TEXT.replace("</FromUserName>", f"</FromUserName><FromUserName>{OTHER}</FromUserName>"),
        TEXT.replace("<Content>", '<Content lang="zh">'),
        TEXT.replace("24000000000000777", "9" * 30),
        TEXT.replace("<CreateTime>1795413600</CreateTime>", ""),
        TEXT.replace("<MsgType>text</MsgType>", "<MsgType><text/></MsgType>"),
        TEXT.replace("<xml>", '<xml from="x">'),
    ],
    ids=[
        "nested-in-content",
        "repeated-sender",
        "attribute",
        "huge-msgid",
        "no-createtime",
        "nested-msgtype",
        "root-attribute",
    ],
)
def test_a_field_of_the_wrong_shape_is_400_with_one_log_line_and_no_personal_data(
    propbot: Propbot, wx: Callbacks, caplog: pytest.LogCaptureFixture, body: str
) -> None:
    propbot.bind("wechat", OPENID, "李明")
    before, seen = propbot.footprint(), nonces(propbot)
    caplog.set_level(logging.INFO)
    caplog.clear()
    response = propbot.wx_post(wx, body)
    assert response.status_code == 400 and response.text == "bad request"
    [line] = server_log(caplog)
    assert line.name == "bot.channels.wechat" and "refused (malformed" in line.getMessage()
    assert line.exc_info is None and "Traceback" not in caplog.text
    text = line.getMessage()
    for secret in (OPENID, OTHER, PHONE, "厨房"):
        assert secret not in text
    assert propbot.footprint() == before and nonces(propbot) == seen
