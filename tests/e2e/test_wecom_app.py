"""The WeCom app over real HTTP: callbacks encrypted and signed as WeCom posts them (URL check,
forged signatures, replays, stale timestamps), staff known by userid, the commands and card buttons
running the service layer, and the sender (group posts, duty cards, card updates, the shared token,
frequency errors backed off) against a fake WeCom API."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.app import App
from bot.desk import accounts, links
from data.clock import FixedClock
from data.db import transaction
from data.models import Compound, OutboxMessage, Staff, Ticket, TicketEvent
from tests.e2e.conftest import STAFF_CHAT, Propbot, RunningClock, channel_settings, start_propbot
from tests.e2e.desk_support import DeskClient, add_login
from tests.e2e.test_staff_group import press as tg_press
from tests.e2e.test_wechat import Resident
from tests.fakes import wecom_api
from tests.fakes.serve import served
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.wechat_api import Callbacks as WxCallbacks
from tests.fakes.wechat_api import FakeWeChat
from tests.fakes.wecom_api import CHAT, DUTY, Callbacks, FakeWeCom, card_event_xml, text_xml

WANG = DUTY  # 王师傅's userid
LEAD = "zhaozhuguan"  # 赵主管
OUTSIDER = "liuqiang_other"  # staff of another compound
STRANGER = "nobody123"  # in the corp, not registered staff
OPENID = "oABCD1234resident_li_ming_0001"
_MSG_IDS = itertools.count(7000000000000000001)
UPDATE = "message/update_template_card"


@pytest.fixture
def fake_wecom() -> Iterator[FakeWeCom]:
    with served(FakeWeCom()) as fake:
        yield fake


@pytest.fixture
def wecom_options() -> dict[str, Any]:
    """More settings for the server (a test parametrizes this to change them)."""
    return {}


@pytest.fixture
def wc(
    db_url: str,
    clock: FixedClock,
    embedded_nlu: Any,
    fake_telegram: FakeTelegram,
    fake_wechat: FakeWeChat,
    fake_wecom: FakeWeCom,
    wecom_options: dict[str, Any],
) -> Iterator[Propbot]:
    settings = channel_settings(
        db_url,
        fake_telegram.url,  # type: ignore[attr-defined]
        fake_wechat.url,  # type: ignore[attr-defined]
        wecom_corp_id=wecom_api.CORP_ID,
        wecom_agent_id=wecom_api.AGENT_ID,
        wecom_app_secret=wecom_api.SECRET,
        wecom_app_token=wecom_api.TOKEN,
        wecom_app_aes_key=wecom_api.AES_KEY,
        wecom_app_api_url=f"{fake_wecom.url}/cgi-bin/",
        wecom_app_chats=f'{{"sunshine": {{"chat": "{CHAT}", "duty": "{DUTY}"}}}}',
        **{k: ("https://desk.example.com" if v == "PLACEHOLDER" else v) for k, v in wecom_options.items()},
    )
    app = App(settings, RunningClock(clock.now()))
    app.__dict__["nlu"] = embedded_nlu
    _link_staff(app)
    for running in start_propbot(app, fake_telegram, fake_wechat):
        running.web.state.wecom_fake = fake_wecom
        yield running
    app.close()


def _link_staff(app: App) -> None:
    app.prepare_store()
    with transaction(app.sessions) as session:
        for name, user in (("王师傅", WANG), ("赵主管", LEAD)):
            session.scalars(select(Staff).where(Staff.name == name)).one().wecom_user_id = user
        other = Compound(code="riverside", name="江畔花园", duty_phone="", office_phone="")
        session.add(Staff(compound=other, name="刘强", role="technician", wecom_user_id=OUTSIDER))


class WeCom:
    """WeCom posting the app's callbacks to propbot."""

    def __init__(self, propbot: Propbot, fake: FakeWeCom) -> None:
        self.propbot, self.fake, self.callbacks = propbot, fake, Callbacks()

    def now(self) -> int:
        return int(self.propbot.app.clock.now().timestamp())

    def post(self, xml: str, **options: Any) -> httpx.Response:
        path, body = self.callbacks.build(xml, timestamp=options.pop("timestamp", self.now()), **options)
        return self.propbot.http.post(path, content=body, headers={"Content-Type": "text/xml"})

    def say(self, user: str, text: str) -> httpx.Response:
        return self.post(text_xml(user, text, self.now(), next(_MSG_IDS)))

    def press(self, user: str, key: str, code: str = "") -> httpx.Response:
        code = code or f"rc-{next(_MSG_IDS)}"
        return self.post(card_event_xml(user, key, self.now(), "propbot-1", code))

    def answer(self, user: str, before: int = 0) -> str:
        """The app's next text message to ``user`` after the first ``before``."""
        return str(self.fake.wait_for(lambda: self.fake.texts_to(user)[before:])[0])


@pytest.fixture
def wecom(wc: Propbot, fake_wecom: FakeWeCom) -> WeCom:
    return WeCom(wc, fake_wecom)


def wechat_repair(wc: Propbot, cards: bool = True) -> Ticket:
    """李明 reports a leak on WeChat (safe mode): the ticket."""
    wc.bind("wechat", OPENID, "李明")
    li = Resident(wc, WxCallbacks(aes=True))
    li.say("厨房水管漏水了")
    li.say("尽快")
    li.say("确认")
    [ticket] = wc.tickets()
    fake = wc.web.state.wecom_fake
    if cards:
        fake.wait_for(lambda: fake.cards_to(DUTY))  # the staff row has become the app's rows
    return ticket


def ticket_now(wc: Propbot, number: str) -> Ticket:
    with wc.app.sessions() as session:
        found = session.scalars(select(Ticket).where(Ticket.number == number)).unique().one()
        session.expunge_all()
        return found


# -- the callback URL -----------------------------------------------------------------------------
def test_url_verification_echoes_the_decrypted_echostr_only_when_signed_and_fresh(
    wc: Propbot, wecom: WeCom
) -> None:
    query = wecom.callbacks.verification("echo-8832", wecom.now())
    assert wc.http.get("/wecom", params=query).text == "echo-8832"
    forged = wecom.callbacks.verification("echo-8832", wecom.now(), forged=True)
    assert wc.http.get("/wecom", params=forged).status_code == 403
    stale = wecom.callbacks.verification("echo-8832", wecom.now() - 301)
    assert wc.http.get("/wecom", params=stale).status_code == 403


def test_forged_stale_and_replayed_callbacks_are_refused_and_change_nothing(
    wc: Propbot, wecom: WeCom
) -> None:
    ticket = wechat_repair(wc)
    claim = text_xml(WANG, f"认领 {ticket.number}", wecom.now(), 1)
    before = wc.footprint()
    assert wecom.post(claim, forged=True).status_code == 403
    assert wecom.post(claim, timestamp=wecom.now() - 301).status_code == 403
    assert wecom.post(claim, timestamp=wecom.now() + 301).status_code == 403
    other = Callbacks(token="not-the-token")  # encrypted with our key, signed without our token
    path, body = other.build(claim, timestamp=wecom.now())
    assert wc.http.post(path, content=body).status_code == 403
    assert wc.footprint() == before
    # a seen (timestamp, nonce) with another body: a replay; the same body again is WeCom's retry
    stamp = wecom.now()
    assert wecom.post(text_xml(WANG, "帮助", stamp, 2), nonce="fixed-1", timestamp=stamp).status_code == 200
    replay = text_xml(WANG, f"认领 {ticket.number}", stamp, 3)
    assert wecom.post(replay, nonce="fixed-1", timestamp=stamp).status_code == 403
    assert ticket_now(wc, ticket.number).assignee_id is None


def test_a_callback_without_its_type_or_event_is_refused_not_a_crash(wc: Propbot, wecom: WeCom) -> None:
    """Found by the fuzz tier: wechatpy's parser fails on these; they are 400s that change nothing."""
    before = wc.footprint()
    no_type = f"<xml><ToUserName>{wecom_api.CORP_ID}</ToUserName><FromUserName>{WANG}</FromUserName></xml>"
    assert wecom.post(no_type).status_code == 400
    no_event = card_event_xml(WANG, "claim:BX-20261123-0001", wecom.now(), "t", "c").replace(
        "<Event>template_card_event</Event>", "<Event></Event>"
    )
    assert wecom.post(no_event).status_code == 400
    assert wc.footprint() == before


def test_a_retried_message_is_done_and_answered_once(wc: Propbot, wecom: WeCom) -> None:
    ticket = wechat_repair(wc)
    xml = text_xml(WANG, f"认领 {ticket.number}", wecom.now(), 42)
    for _ in range(3):  # WeCom retries a callback it got no answer for in 5 s, same MsgId
        assert wecom.post(xml).status_code == 200
    assert "接单成功" in wecom.answer(WANG)
    with wc.app.sessions() as session:
        dispatched = session.scalars(select(TicketEvent).where(TicketEvent.kind == "dispatched")).all()
        replies = session.scalars(
            select(OutboxMessage).where(OutboxMessage.channel == "wecom_app", OutboxMessage.kind == "reply")
        ).all()
    assert len(dispatched) == 1 and len(replies) == 1


# -- who may act -----------------------------------------------------------------------------------
def test_an_unknown_userid_is_refused_politely_and_logged_without_its_id(
    wc: Propbot, wecom: WeCom, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.channels.wecom_app")
    ticket = wechat_repair(wc)
    assert wecom.say(STRANGER, f"认领 {ticket.number}").status_code == 200
    assert "只有登记在册的物业工作人员" in wecom.answer(STRANGER)
    assert ticket_now(wc, ticket.number).assignee_id is None
    refused = [r.getMessage() for r in caplog.records if "unregistered userid" in r.getMessage()]
    assert len(refused) == 1 and STRANGER not in refused[0]


def test_another_compounds_member_cannot_act_on_the_ticket(wc: Propbot, wecom: WeCom) -> None:
    ticket = wechat_repair(wc)
    for command in (f"认领 {ticket.number}", f"完成 {ticket.number}", f"回复 {ticket.number} 你好"):
        wecom.say(OUTSIDER, command)
    wecom.press(OUTSIDER, f"escalate:{ticket.number}")
    texts = wecom.fake.wait_for(lambda: (t := wecom.fake.texts_to(OUTSIDER)) and len(t) >= 4 and t)
    assert all(f"没有找到工单 {ticket.number}" in t for t in texts)
    after = ticket_now(wc, ticket.number)
    assert after.assignee_id is None and after.status == "received"
    assert wc.wechat.custom_texts(OPENID)[-1:] != ["你好"]
    assert not [t for t in wc.wechat.custom_texts(OPENID) if "物业工作人员" in t]


# -- the cards and commands ------------------------------------------------------------------------
def test_a_new_ticket_reaches_the_group_chat_and_the_duty_members_card(wc: Propbot, wecom: WeCom) -> None:
    ticket = wechat_repair(wc)
    [post] = wecom.fake.wait_for(lambda: wecom.fake.group_posts())
    assert ticket.number in post and f"认领 {ticket.number}" in post
    [card] = wecom.fake.wait_for(lambda: wecom.fake.cards_to(DUTY))
    assert card["card_type"] == "button_interaction" and card["main_title"]["desc"] == ticket.number
    keys = [b["key"] for b in card["button_list"]]
    assert keys == [f"{key}:{ticket.number}" for key in ("claim", "done", "escalate", "reassign")]
    assert [b["text"] for b in card["button_list"]] == ["认领", "完成", "升级", "转派"]


def test_the_claim_button_claims_updates_the_card_and_tells_the_resident(wc: Propbot, wecom: WeCom) -> None:
    ticket = wechat_repair(wc)
    wecom.fake.wait_for(lambda: wecom.fake.cards_to(DUTY))
    assert wecom.press(WANG, f"claim:{ticket.number}", code="RESPONSE-1").status_code == 200
    assert "接单成功" in wecom.answer(WANG)
    [update] = wecom.fake.wait_for(lambda: wecom.fake.calls("message/update_template_card"))
    assert update.body["response_code"] == "RESPONSE-1" and update.body["userids"] == [WANG]
    assert update.body["button"]["replace_name"] == "已由 王师傅 接单"
    wecom.fake.wait_for(lambda: [p for p in wecom.fake.group_posts() if "已由 王师傅 接单" in p])
    told = wc.wechat.wait_for(lambda: [t for t in wc.wechat.custom_texts(OPENID) if "接单" in t])
    assert f"（{ticket.number}）已由 王师傅 接单" in told[0]
    after = ticket_now(wc, ticket.number)
    assert after.status == "dispatched" and after.assignee_id is not None


def test_text_commands_claim_reply_escalate_and_finish(wc: Propbot, wecom: WeCom) -> None:
    ticket = wechat_repair(wc)
    number = ticket.number
    wecom.say(WANG, f"认领 {number.lower()}")  # typed in lower case: still the ticket
    assert "接单成功" in wecom.answer(WANG)
    wecom.say(WANG, f"回复 {number} 我下午两点上门，电话 13900139001")
    assert "已转达给居民" in wecom.answer(WANG, 1)
    relayed = wc.wechat.wait_for(lambda: [t for t in wc.wechat.custom_texts(OPENID) if "我下午两点上门" in t])
    assert "13900139001" not in relayed[0] and "【物业工作人员 王师傅】" in relayed[0]
    li = Resident(wc, WxCallbacks(aes=True))
    li.msg_id += 100  # past the MsgIds of the report
    assert "已将您的回复转达给王师傅" in li.say("好的，我在家")  # back to the group chat
    wecom.fake.wait_for(lambda: [p for p in wecom.fake.group_posts() if "好的，我在家" in p])
    wecom.say(WANG, f"升级 {number}")
    assert "赵主管" in wecom.answer(WANG, 2)
    wecom.say(WANG, f"完成 {number}")
    wecom.answer(WANG, 3)
    assert ticket_now(wc, number).status == "done"
    wc.wechat.wait_for(lambda: [t for t in wc.wechat.custom_texts(OPENID) if "解决了吗" in t])


def test_a_refused_step_says_why_and_leaves_nothing(wc: Propbot, wecom: WeCom) -> None:
    ticket = wechat_repair(wc)
    wecom.say(WANG, f"认领 {ticket.number}")
    wecom.answer(WANG)
    wecom.say(LEAD, f"认领 {ticket.number}")  # someone else's open ticket
    assert "已由 王师傅 接单" in wecom.answer(LEAD)
    wecom.say(WANG, "认领")
    assert "请写上工单号" in wecom.answer(WANG, 1)
    wecom.say(WANG, "你好")
    assert "可用命令" in wecom.answer(WANG, 2)
    assert ticket_now(wc, ticket.number).assignee is not None


# -- the sender ------------------------------------------------------------------------------------
@pytest.mark.parametrize("errcode", [45009, 45033, 45047, -1])
def test_frequency_errors_are_backed_off_not_dropped(wc: Propbot, wecom: WeCom, errcode: int) -> None:
    wecom.fake.fail_next("appchat/send", errcode)
    ticket = wechat_repair(wc, cards=False)

    def waiting() -> list[OutboxMessage]:
        with wc.app.sessions() as session:
            return list(
                session.scalars(
                    select(OutboxMessage).where(
                        OutboxMessage.channel == "wecom_app",
                        OutboxMessage.kind == "group",
                        OutboxMessage.status == "pending",
                        OutboxMessage.last_error.is_not(None),
                    )
                )
            )

    [row] = wecom.fake.wait_for(waiting)
    assert row.status == "pending" and f"errcode {errcode}" in (row.last_error or "")
    assert row.payload["ticket"] == ticket.number
    if errcode != -1:  # a frequency limit is per minute: not before it is over
        assert (row.due_at - wc.app.clock.now()).total_seconds() > 50
    else:  # busy: the usual back-off, and the duty card (its own row) goes meanwhile
        assert wecom.fake.wait_for(lambda: wecom.fake.cards_to(DUTY))
    assert wecom.fake.group_posts() == []
    assert len(wecom.fake.calls("gettoken")) == 1  # one token for every send


def test_a_revoked_token_is_fetched_again_once(wc: Propbot, wecom: WeCom) -> None:
    wecom.say(WANG, "帮助")
    wecom.answer(WANG)
    wecom.fake.revoke_tokens()
    wecom.say(WANG, "帮助")
    wecom.answer(WANG, 1)
    assert len(wecom.fake.calls("gettoken")) == 2


# -- 转派 ------------------------------------------------------------------------------------------
def staff_id(wc: Propbot, name: str) -> int:
    with wc.app.sessions() as session:
        return session.scalars(select(Staff.id).where(Staff.name == name)).one()


def test_the_reassign_button_offers_the_technicians_and_a_choice_hands_over(
    wc: Propbot, wecom: WeCom
) -> None:
    """The duty member hands an unclaimed ticket on from the card (a claimed card's buttons show
    who has it and take no more presses: WeCom greys them; then 转派 is typed)."""
    ticket = wechat_repair(wc)
    number = ticket.number
    wecom.press(WANG, f"reassign:{number}", code="RC-DUTY")
    assert "请在卡片上选择转派给谁" in wecom.answer(WANG)
    choices = wecom.fake.wait_for(lambda: wecom.fake.cards_to(WANG)[1:])[0]  # after the duty card
    buttons = {b["text"]: b["key"] for b in choices["button_list"]}
    names = ("王师傅", "张师傅", "刘师傅")  # the compound's technicians
    assert buttons == {name: f"to:{number}:{staff_id(wc, name)}" for name in names}
    assert choices["main_title"]["desc"] == number
    wecom.press(WANG, buttons["张师傅"], code="RC-CHOICE")
    assert wecom.answer(WANG, 1) == "已转派给 张师傅"
    after = ticket_now(wc, number)
    assert after.assignee is not None and after.assignee.name == "张师傅"
    updates = wecom.fake.wait_for(
        lambda: (u := wecom.fake.calls("message/update_template_card")) and len(u) >= 2 and u
    )
    names = {u.body["response_code"]: u.body["button"]["replace_name"] for u in updates}
    assert names["RC-CHOICE"] == "已由 王师傅 转派给 张师傅"  # the choices card
    assert names["SENT-CODE-1"] == "已由 王师傅 转派给 张师傅"  # and the duty card
    wecom.fake.wait_for(lambda: [p for p in wecom.fake.group_posts() if "转派给 张师傅" in p])
    wc.wechat.wait_for(lambda: [t for t in wc.wechat.custom_texts(OPENID) if "张师傅" in t])


def test_a_typed_reassign_names_the_person_and_refusals_say_why(wc: Propbot, wecom: WeCom) -> None:
    ticket = wechat_repair(wc)
    number = ticket.number
    wecom.say(WANG, f"认领 {number}")
    wecom.answer(WANG)
    wecom.say(WANG, f"转派 {number} 李四")  # nobody of that name
    assert "没有叫“李四”的员工" in (told := wecom.answer(WANG, 1)) and "张师傅、刘师傅" in told
    wecom.say(WANG, f"转派 {number} 刘强")  # another compound's
    assert "刘强 不是这个小区的员工" in wecom.answer(WANG, 2)
    wecom.say(WANG, f"转派 {number} 王师傅")  # the one who has it
    assert "已经由 王师傅 负责" in wecom.answer(WANG, 3)
    assert ticket_now(wc, number).assignee_id == staff_id(wc, "王师傅")  # nothing changed meanwhile
    wecom.say(WANG, f"转派 {number.lower()} 刘师傅")
    assert wecom.answer(WANG, 4) == "已转派给 刘师傅"
    assert ticket_now(wc, number).assignee_id == staff_id(wc, "刘师傅")
    wecom.say(LEAD, f"转派 {number}")  # no name: the choices
    assert "请在卡片上选择转派给谁" in wecom.answer(LEAD)
    [choices] = wecom.fake.wait_for(lambda: wecom.fake.cards_to(LEAD))
    assert [b["text"] for b in choices["button_list"]] == ["王师傅", "张师傅"]


def test_an_outsider_cannot_reassign_by_button_or_choice(wc: Propbot, wecom: WeCom) -> None:
    ticket = wechat_repair(wc)
    wecom.press(OUTSIDER, f"to:{ticket.number}:{staff_id(wc, '张师傅')}")
    assert f"没有找到工单 {ticket.number}" in wecom.answer(OUTSIDER)
    outsider = staff_id(wc, "刘强")
    wecom.press(WANG, f"to:{ticket.number}:{outsider}")  # a choice of another compound's member
    assert "刘强 不是这个小区的员工" in wecom.answer(WANG)
    assert ticket_now(wc, ticket.number).assignee_id is None


# -- one state on every card -----------------------------------------------------------------------
def test_a_typed_claim_updates_the_duty_card_and_the_telegram_groups_card(wc: Propbot, wecom: WeCom) -> None:
    ticket = wechat_repair(wc)
    [telegram_card] = wc.telegram.wait_for(lambda: wc.telegram.sent_to(STAFF_CHAT))
    wecom.say(WANG, f"认领 {ticket.number}")
    assert "接单成功" in wecom.answer(WANG)
    [update] = wecom.fake.wait_for(lambda: wecom.fake.calls("message/update_template_card"))
    assert update.body["response_code"] == "SENT-CODE-1"  # the code message/send gave the duty card
    assert update.body["userids"] == [DUTY] and update.body["button"]["replace_name"] == "已由 王师傅 接单"
    [edit] = wc.telegram.wait_for(lambda: wc.telegram.calls("editMessageText"))
    assert int(edit.params["message_id"]) == telegram_card.result["message_id"]
    assert edit.params["text"].endswith("\n· 已由 王师傅 接单")
    labels = [b["text"] for row in edit.params["reply_markup"]["inline_keyboard"] for b in row]
    assert "认领" not in labels and "完成" in labels
    wecom.say(WANG, f"完成 {ticket.number}")  # the duty card's code is spent: only Telegram's card
    wecom.answer(WANG, 1)
    edits = wc.telegram.wait_for(lambda: (e := wc.telegram.calls("editMessageText")) and len(e) >= 2 and e)
    assert edits[1].params["text"].endswith("\n· 已由 王师傅 完成") and not edits[1].params.get(
        "reply_markup"
    )
    assert len(wecom.fake.calls("message/update_template_card")) == 1


def test_a_claim_in_the_telegram_group_shows_on_the_wecom_card(wc: Propbot, wecom: WeCom) -> None:
    ticket = wechat_repair(wc)
    [card] = wc.telegram.wait_for(lambda: wc.telegram.sent_to(STAFF_CHAT))
    tg_press(wc, card, f"claim:{ticket.number}", user_id=900002)  # 王师傅 in the Telegram group
    [update] = wecom.fake.wait_for(lambda: wecom.fake.calls("message/update_template_card"))
    assert (
        update.body["response_code"] == "SENT-CODE-1"
        and update.body["button"]["replace_name"] == "已由 王师傅 接单"
    )
    wecom.fake.wait_for(lambda: [p for p in wecom.fake.group_posts() if "已由 王师傅 接单" in p])
    assert len(wc.telegram.calls("editMessageText")) == 1  # the press's own edit, not a second one


# -- textcards: accounts that take no template cards -----------------------------------------------
def desk_link(wc: Propbot, wecom: WeCom) -> str:
    [card] = wecom.fake.wait_for(lambda: wecom.fake.textcards_to(DUTY))
    return str(card["url"])


@pytest.mark.parametrize("wecom_options", [{"wecom_app_cards": "textcard", "desk_url": "PLACEHOLDER"}])
def test_textcards_link_to_the_desk_through_a_signed_expiring_link(
    wc: Propbot, wecom: WeCom, wecom_options: dict[str, Any]
) -> None:
    ticket = wechat_repair(wc, cards=False)
    [card] = wecom.fake.wait_for(lambda: wecom.fake.textcards_to(DUTY))
    assert wecom.fake.cards_to(DUTY) == []  # the setting: no template card tried
    assert ticket.number in card["description"] and f"认领 {ticket.number}" in card["description"]
    url = httpx.URL(card["url"])
    assert url.path == f"/desk/go/{ticket.number}" and str(url).startswith("https://desk.example.com/")
    link = f"{url.path}?{url.query.decode()}"
    browser = DeskClient.at(wc.url)
    to_ticket = browser.http.get(link)
    assert to_ticket.status_code == 303 and to_ticket.headers["location"] == f"/desk/tickets/{ticket.number}"
    to_login = browser.http.get(to_ticket.headers["location"])  # no session: the login first
    assert to_login.status_code == 303 and to_login.headers["location"].startswith("/desk/login?next=")
    add_login(wc.app, "王师傅")  # the duty member needs a desk login of their own (a clerk)
    assert browser.login("王师傅", next=f"/desk/tickets/{ticket.number}").status_code == 303
    assert ticket.number in browser.http.get(browser.http.get(link).headers["location"]).text
    exp, sig = url.params["exp"], url.params["sig"]
    other = ticket.number[:-1] + ("2" if ticket.number[-1] != "2" else "3")
    for forged in (
        f"/desk/go/{other}?exp={exp}&sig={sig}",  # another ticket under this signature
        f"/desk/go/{ticket.number}?exp={int(exp) + 86400}&sig={sig}",  # a longer life
        f"/desk/go/{ticket.number}?exp={exp}&sig={'0' * 64}",
        f"/desk/go/{ticket.number}?exp={exp}",
    ):
        refused = browser.http.get(forged)
        assert refused.status_code == 403 and "链接" in refused.text, forged
    key = accounts.signing_key(wc.app.sessions, wc.app.settings.desk_secret)
    past = wc.app.clock.now() - timedelta(minutes=1)
    expired = browser.http.get(links.path(key, ticket.number, past))
    assert expired.status_code == 403 and "链接已过期" in expired.text


@pytest.mark.parametrize("wecom_options", [{"desk_url": "PLACEHOLDER"}])
def test_a_refused_template_card_falls_back_to_a_textcard_from_then_on(
    wc: Propbot, wecom: WeCom, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="bot.channels.wecom_app")
    wecom.fake.templates = False  # the account takes no template cards: 40008
    ticket = wechat_repair(wc, cards=False)
    [card] = wecom.fake.wait_for(lambda: wecom.fake.textcards_to(DUTY))
    assert card["title"] and ticket.number in card["description"]
    assert "/desk/go/" in card["url"]
    assert any("textcards from now on" in r.getMessage() for r in caplog.records)
    wecom.say(WANG, f"转派 {ticket.number}")  # the choices as words, not a card
    assert "张师傅" in wecom.answer(WANG)
    assert any(
        "转派" in t and "刘师傅" in t for t in wecom.fake.wait_for(lambda: wecom.fake.texts_to(WANG)[1:])
    )
    assert wecom.fake.cards_to(WANG) == []


# -- a member's send limit -------------------------------------------------------------------------
def test_a_members_frequency_answer_holds_the_rest_back_nothing_dropped(wc: Propbot, wecom: WeCom) -> None:
    wecom.fake.per_member = 5  # a stricter account: the sixth message in a minute is refused (45009)
    for n in range(8):
        assert wecom.say(WANG, f"帮助{n}").status_code == 200

    def rows() -> list[OutboxMessage]:
        with wc.app.sessions() as session:
            return list(
                session.scalars(
                    select(OutboxMessage).where(
                        OutboxMessage.channel == "wecom_app", OutboxMessage.kind == "reply"
                    )
                )
            )

    wecom.fake.wait_for(lambda: [r for r in rows() if "45009" in (r.last_error or "")])
    found = rows()
    assert len(found) == 8 and len(wecom.fake.texts_to(WANG)) == 5
    waiting = [r for r in found if r.status == "pending"]
    assert len(waiting) == 3 and not [r for r in found if r.status == "failed"]
    [refused] = [r for r in found if r.last_error]
    assert (refused.due_at - wc.app.clock.now()).total_seconds() > 50  # after the minute is over
