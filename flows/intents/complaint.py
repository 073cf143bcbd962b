"""投诉: what happened, where, when, and what the resident would like done."""

from __future__ import annotations

import re

from data.clock import local
from data.kinds import TicketKind
from flows.dialog import slots as s
from flows.dialog.form import SKIPPED, Form, Slot, Values
from flows.dialog.spec import Aside, FlowSpec
from flows.dialog.turn import Turn
from flows.domain.tickets import NewTicket, format_time, open_ticket
from flows.intents.repair import _spot_place
from nlu.types import TimeSpan

NOISE_WORDS = (
    "噪音", "吵", "声音", "半夜", "装修", "广场舞", "音响", "震天", "蹦迪", "跳绳", "咚咚",
    "拖椅子", "嘈", "电钻", "砸墙",
)  # fmt: skip
# Topic by keyword, first match wins; management counts complaints by these.
TOPICS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("staff", ("态度", "服务差", "不理人", "骂", "凶", "客服", "保安", "管家")),
    ("noise", NOISE_WORDS),
    ("construction", ("违建", "私搭", "乱搭", "违章", "搭建", "封阳台")),
    ("parking", ("停车", "车位", "乱停", "堵车", "占道", "停在", "消防通道", "挡住出口")),
    ("pets", ("狗", "猫", "宠物", "狗屎", "遛狗")),
    ("rubbish", ("垃圾", "臭", "异味")),
    ("cleaning", ("卫生", "保洁", "打扫", "脏", "清洁")),
    ("security", ("安全", "陌生人", "门禁", "偷", "监控")),
    ("repair_quality", ("修", "维修", "师傅", "没修好")),
)
_OPENERS = ("投诉", "我要投诉", "我想投诉", "投诉一下", "我要反映", "反映")


TOPIC_NAMES = {
    "staff": "服务态度",
    "noise": "噪音",
    "construction": "私搭乱建",
    "parking": "停车",
    "pets": "宠物",
    "rubbish": "垃圾",
    "cleaning": "环境卫生",
    "security": "安全",
    "repair_quality": "维修质量",
    "other": "其他",
}


def topic_of(text: str) -> str:
    return next((topic for topic, words in TOPICS if any(w in text for w in words)), "other")


def _dated(turn: Turn) -> str | None:
    """The day (and time) named: 昨晚十点 -> 11月22日(周日) 22:00. A time of day alone (每天晚上十点)
    names no day, and resolving it would turn a recurring nuisance into one date."""
    entity = turn.parse.first("datetime")
    if entity is None or not isinstance(entity.value, TimeSpan) or not s.names_a_date(entity.text):
        return None
    span = entity.value
    if s.whole_days(span) and local(span.start).date() == local(span.end).date():
        return format_time(span.start).split(" ")[0]  # 上周六: the day, not 00:00-23:59
    return s.show_span(s.span_to_json(span))


def _answer_when(turn: Turn, values: Values) -> str | None:
    return _dated(turn) or s.answer_text(turn, values)


# How often, just before a time of day: 每天晚上, 经常半夜.
_RECURRING = re.compile(r"(?:每天|每晚|天天|每个?周末|每周[一二三四五六日天]|经常|总是|老是)$")


def _glean_when(turn: Turn, values: Values) -> str | None:
    """When, from a message about something else: a day, or a time of day said with how often."""
    entity = turn.parse.first("datetime")
    if entity is None:
        return None
    at = turn.text.find(entity.text)
    often = _RECURRING.search(turn.text[:at]) if at > 0 else None
    return _dated(turn) or (often.group() + entity.text if often else None)


def _glean_place(turn: Turn, values: Values) -> str | None:
    return s.find_place(turn.text)


# What the resident wants, said with the complaint: 希望 anywhere, 请/麻烦/要求 opening a clause.
_WISH = re.compile(
    r"(希望[^，。！？,.!?；;\s]{2,}|(?<![^，。！？,.!?；;\s])(?:请(?!问)|麻烦|要求)[^，。！？,.!?；;\s]{2,})"
)


def _glean_wish(turn: Turn, values: Values) -> str | None:
    found = _WISH.search(turn.text)
    return found.group(1) if found else None


# How long it has gone on, as an answer to "什么时候": 三四天了, 好几天了, 一个多月了, 很久了.
HOW_LONG = re.compile(
    r"^\s*(?:大概|差不多|都|有|快)?\s*(?:[一二两三四五六七八九十几半\d]+|好几|很多|十几)\s*(?:个多?|多个?)?"
    r"(?:天|周|星期|礼拜|月|年|小时|钟头)|很久|好久|一直"
)


class ComplaintForm(Form):
    name = "complaint"
    title = "投诉"
    slots = (
        Slot(
            "description",
            "投诉内容",
            lambda turn, values: ("请您具体说一说遇到了什么情况，我们一定认真处理。", ()),
            s.answer_text,
            free_text=True,
            aliases=("内容", "情况"),
        ),
        Slot(
            "place",
            "地点",
            lambda turn, values: (
                "请问是在哪里发生的？比如“5栋楼下”“地下车库”。不清楚可以回复“不清楚”。",
                ("不清楚",),
            ),
            s.answer_place,
            spot=_spot_place,
            glean=_glean_place,
            skippable=True,
            free_text=True,
            aliases=("位置", "地方"),
        ),
        Slot(
            "when",
            "时间",
            lambda turn, values: ("大概是什么时候的事情？比如“昨晚十点多”“每天早上”。", ("不记得",)),
            _answer_when,
            glean=_glean_when,
            skippable=True,
            free_text=True,
            shape=HOW_LONG,
        ),
        Slot(
            "wish",
            "您的诉求",
            lambda turn, values: (
                "您希望我们怎么处理？比如“尽快制止”“给个说法”。没有特别要求可以回复“没有”。",
                ("没有",),
            ),
            s.answer_text,
            glean=_glean_wish,
            skippable=True,
            free_text=True,
            aliases=("诉求", "要求"),
        ),
    )

    def prefill(self, turn: Turn, values: Values) -> None:
        text = turn.text
        for opener in _OPENERS:
            text = text.removeprefix(opener)
        if s.meaningful(text, minimum=5):
            values["description"] = turn.text

    def submit(self, turn: Turn, values: Values) -> None:
        detail = {k: values[k] for k in ("when", "wish") if values.get(k) not in (None, SKIPPED)}
        place = values.get("place")
        ticket = open_ticket(
            turn.store,
            turn.compound,
            turn.account,
            NewTicket(
                kind=TicketKind.COMPLAINT,
                description=values["description"],
                category=topic_of(values["description"]),
                location=place if place and place != SKIPPED else "",
                photos=tuple(turn.state.get("photos", ())),
                details=detail,
            ),
            turn.now,
            turn.actor,
        )
        turn.say(
            f"非常抱歉给您带来了不便！您的投诉已登记，单号 {ticket.number}。\n"
            f"我们今天就会安排人员调查核实，并在 {format_time(ticket.reply_by)} 前给您答复。"
            "处理过程中有任何情况，您都可以随时找我。"
        )


SPEC = FlowSpec(
    "complaint",
    flow=ComplaintForm(),
    title=ComplaintForm.title,
    needs_binding=True,
    keeps_draft=True,
    aside=Aside.TICKET,
    ticket=TicketKind.COMPLAINT,
)
