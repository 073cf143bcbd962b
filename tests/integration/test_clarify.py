"""When the NLU is unsure the bot asks one question with buttons, and the chosen request starts
with the resident's first message (flows/dialog/clarify.py), on SQLite and PostgreSQL.

The NLU is the real embedded model with a few messages scripted to the uncertain parses under test,
so each test shows one band of confidence whatever the model of the day thinks of the wording."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import select

from bot.app import App
from data.models import OutboxMessage, Ticket
from nlu.types import NLUBackend, Parse
from tests.conftest import Chat

# One breath, no pause: said with a pause, the two clauses are two requests (flows/dialog/split.py).
STORY = "上个月开始楼上每天半夜都有咚咚的声音我家卫生间顶上也有一块湿的"
DANGER = "楼道里有股怪怪的味道 不知道是什么"
# (intent, confidence, ranking) the scripted NLU answers for these messages.
SCRIPT: dict[str, tuple[str, float, tuple[tuple[str, float], ...]]] = {
    STORY: ("complaint", 0.41, (("complaint", 0.41), ("repair", 0.37), ("enquiry", 0.08))),
    "那个事情怎么说": ("out_of_scope", 0.3, (("status_query", 0.22), ("complaint", 0.2), ("enquiry", 0.1))),
    DANGER: ("emergency", 0.42, (("emergency", 0.42), ("repair", 0.3), ("complaint", 0.1))),
}


class ScriptedNLU:
    """The real backend, except for the scripted messages' intent, confidence and ranking."""

    name = "scripted"

    def __init__(self, real: NLUBackend) -> None:
        self.real = real

    def parse(self, text: str, now: datetime | None = None) -> Parse:
        parse = self.real.parse(text, now)
        if text not in SCRIPT:
            return parse
        intent, confidence, ranking = SCRIPT[text]
        return dataclasses.replace(parse, intent=intent, confidence=confidence, ranking=ranking)


@pytest.fixture
def scripted(app: App) -> Iterator[Chat]:
    app.__dict__["nlu"] = ScriptedNLU(app.nlu)
    app.__dict__.pop("engine", None)  # built again with the scripted NLU
    yield Chat(app)


def tickets(app: App) -> list[Ticket]:
    with app.sessions() as session:
        return list(session.scalars(select(Ticket).order_by(Ticket.id)).all())


def staff_pages(app: App) -> list[OutboxMessage]:
    with app.sessions() as session:
        return list(session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "staff")).all())


def test_a_close_call_asks_which_and_the_choice_keeps_the_story(scripted: Chat, app: App) -> None:
    question = scripted.say(STORY)
    assert "投诉" in question and "报修" in question and question.rstrip().endswith("？")
    assert scripted.last_buttons == ["我要投诉", "我要报修", "都不是"]
    assert tickets(app) == []
    after = scripted.press("我要报修")
    # The repair form starts from the first message: the damp patch is the description already.
    assert "户内" in after or "什么时候上门" in after or "核对" in after
    assert "请问是什么问题" not in after
    scripted.say("家里")
    scripted.say("明天上午")
    summary = scripted.last[-1]
    assert "卫生间顶上也有一块湿的" in summary


def test_a_typed_choice_counts_like_the_button(scripted: Chat) -> None:
    scripted.say(STORY)
    reply = scripted.say("投诉")
    assert "在哪里发生" in reply  # the complaint form, with what happened taken from the story


def test_none_of_them_gets_the_menu_and_opens_nothing(scripted: Chat, app: App) -> None:
    scripted.say("那个事情怎么说")
    assert scripted.last_buttons == ["查询进度", "我要投诉", "都不是"]
    reply = scripted.press("都不是")
    assert "具体需要什么帮助" in reply and "我要报修" in scripted.last_buttons
    assert tickets(app) == []


def test_another_message_instead_of_a_choice_is_understood_on_its_own(scripted: Chat, app: App) -> None:
    scripted.say(STORY)
    reply = scripted.say("我家物业费还欠多少")
    assert "元" in reply  # the fee answer, not the story's complaint
    assert tickets(app) == []


def test_a_weak_emergency_guess_gives_the_phone_and_asks_before_paging(scripted: Chat, app: App) -> None:
    question = scripted.say(DANGER)
    assert "0571-88880000" in question and "119" in question  # the number comes at once, either way
    assert scripted.last_buttons == ["有危险，马上派人", "没有危险"]
    assert tickets(app) == [] and staff_pages(app) == []
    paged = scripted.press("有危险，马上派人")
    assert "【紧急】" in paged
    [ticket] = tickets(app)
    assert ticket.kind == "emergency" and ticket.description == DANGER
    [page] = staff_pages(app)
    assert page.urgent


def test_no_danger_goes_on_with_the_next_guess(scripted: Chat, app: App) -> None:
    scripted.say(DANGER)
    reply = scripted.press("没有危险")
    assert "【紧急】" not in reply and staff_pages(app) == []
    assert "核对" in reply or "哪个位置" in reply or "户内" in reply  # the repair form, from the message


def test_a_weak_emergency_guess_inside_a_form_returns_to_the_form(scripted: Chat, app: App) -> None:
    assert "什么时候上门" in scripted.say("卧室的灯不亮了")
    scripted.say(DANGER)
    assert scripted.last_buttons == ["有危险，马上派人", "没有危险"]
    back = scripted.press("没有危险")
    assert "什么时候上门" in back  # the repair's question again
    scripted.say("明天上午")
    assert "卧室的灯不亮了" in scripted.last[-1]
    assert staff_pages(app) == []


def test_rules_still_page_at_once_while_a_question_is_open(scripted: Chat, app: App) -> None:
    scripted.say(STORY)
    reply = scripted.say("等一下 厨房着火了 好大的烟")
    assert "【紧急】" in reply
    [ticket] = tickets(app)
    assert ticket.kind == "emergency"
