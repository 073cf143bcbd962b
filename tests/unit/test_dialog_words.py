"""The words that steer a dialog, with no database: places cut out of sentences, payment disputes,
binding codes in a sentence, several requests in one message."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flows.dialog.slots import find_place
from flows.dialog.split import split
from flows.intents.binding import code_in
from flows.intents.fee_query import is_payment_dispute
from nlu.types import Parse

PLACES = [
    ("明天上午10点来3栋楼下修一下路灯", "3栋楼下"),
    ("地下车库B2的灯不亮", "地下车库B2"),
    ("就是楼上1602 每天晚上十一点多", "楼上1602"),
    ("北门保安态度很差", "北门"),
    ("3栋2单元5楼楼道的灯", "3栋2单元5楼楼道"),
    ("5栋的电梯坏了", "5栋的电梯"),
    ("12栋旁边的垃圾桶好臭", "12栋旁边"),
]


@pytest.mark.parametrize(("text", "place"), PLACES)
def test_the_place_is_cut_out_of_the_sentence(text: str, place: str) -> None:
    assert find_place(text) == place


@pytest.mark.parametrize("text", ["3栋2单元1502", "厨房水管漏水了", "我家物业费还欠多少", "2026年11月"])
def test_no_place_where_none_is_named(text: str) -> None:
    assert find_place(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "我上礼拜就在公众号交了啊 怎么还显示没交",
        "交了怎么还显示欠费",
        "已经缴过了为什么还发提醒",
        "点解交咗仲话我欠费",
    ],
)
def test_payment_disputes_in_any_wording(text: str) -> None:
    assert is_payment_dispute(text)


@pytest.mark.parametrize("text", ["物业费交了吗", "怎么交物业费", "上个月交了物业费", "还欠多少钱"])
def test_questions_about_paying_are_no_dispute(text: str) -> None:
    assert not is_payment_dispute(text)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("SUN888", "SUN888"),
        ("绑定 SUN888", "SUN888"),
        ("我的绑定码是sun888", "sun888"),
        ("码：ab12cd", "ab12cd"),
    ],
)
def test_a_binding_code_alone_or_in_a_sentence(text: str, code: str) -> None:
    assert code_in(text) == code


@pytest.mark.parametrize("text", ["你好", "我要绑定房屋", "绑定码在哪里拿"])
def test_no_code_in_ordinary_words(text: str) -> None:
    assert code_in(text) is None


def scripted(intents: dict[str, tuple[str, float]]) -> Callable[[str], Parse]:
    """A parse function that knows the clauses of the test by heart."""

    def parse(text: str) -> Parse:
        intent, confidence = intents.get(text, ("out_of_scope", 0.3))
        return Parse(text, intent, confidence)

    return parse


def test_a_repair_and_a_fee_question_are_two_requests() -> None:
    parse = scripted({"厨房水管漏了": ("repair", 0.98), "顺便问下我家物业费还欠多少": ("fee_query", 0.99)})
    found = split("厨房水管漏了，顺便问下我家物业费还欠多少", parse)
    assert [(r.text, r.intent) for r in found] == [
        ("厨房水管漏了", "repair"),
        ("顺便问下我家物业费还欠多少", "fee_query"),
    ]


def test_a_fault_told_with_its_grievance_stays_one_request() -> None:
    parse = scripted({"楼道灯坏了一个月": ("repair", 0.95), "物业也不管": ("complaint", 0.9)})
    assert split("楼道灯坏了一个月，物业也不管", parse) == []


def test_clauses_that_ask_nothing_go_with_the_request_they_follow() -> None:
    parse = scripted({"我家厨房水管漏了": ("repair", 0.97), "物业几点下班": ("enquiry", 0.99)})
    found = split("我家厨房水管漏了，地上都是水，物业几点下班", parse)
    assert [(r.text, r.intent) for r in found] == [
        ("我家厨房水管漏了，地上都是水", "repair"),
        ("物业几点下班", "enquiry"),
    ]


def test_one_request_is_not_split() -> None:
    parse = scripted({"厨房水管漏了": ("repair", 0.98), "快来人": ("repair", 0.9)})
    assert split("厨房水管漏了，快来人", parse) == []
