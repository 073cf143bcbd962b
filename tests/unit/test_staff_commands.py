"""Reading staff commands and phone numbers (no I/O): what staff type becomes the structured
callback or notice request, and bad input is refused with a reason rather than guessed at."""

from __future__ import annotations

from datetime import datetime

import pytest

from data.clock import SHANGHAI
from flows.intents.contact import PhoneError, check_phone
from flows.jobs.broadcasts import UnitRange
from flows.services.staff_commands import Command, CommandError, parse_callback, parse_command, parse_notice

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI)  # Monday
NUMBER = "BX-20261123-0001"


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


# -- commands ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/huifang BX-1 5", Command("huifang", "huifang", "BX-1 5", addressed=False)),
        ("/HuiFang@Sunshine_PM_Bot  BX-1 5 ", Command("huifang", "huifang", "BX-1 5", addressed=True)),
        ("/callback x", Command("huifang", "callback", "x", addressed=False)),
        ("/notice\n3栋 停水", Command("notice", "notice", "3栋 停水", addressed=False)),
        ("/help", Command("help", "help", "", addressed=False)),
        ("/foo@sunshine_pm_bot", Command("", "foo", "", addressed=True)),
        ("/foo", Command("", "foo", "", addressed=False)),
    ],
)
def test_commands_with_or_without_the_bots_name(text: str, expected: Command) -> None:
    assert parse_command(text, "sunshine_pm_bot") == expected


@pytest.mark.parametrize("text", ["/help@other_bot", "你好 /help", "/", "/help@", "/帮助", "//help"])
def test_not_a_command_for_this_bot(text: str) -> None:
    assert parse_command(text, "sunshine_pm_bot") is None


def test_a_named_command_cannot_be_ours_before_the_bot_knows_its_name() -> None:
    assert parse_command("/help@sunshine_pm_bot", None) is None
    assert parse_command("/help", None) == Command("help", "help", "", addressed=False)


# -- /huifang -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "solved", "score", "parts", "comment"),
    [
        (f"{NUMBER} 5 已解决 师傅很负责", True, 5, {}, "师傅很负责"),
        (
            f"{NUMBER} 已解决 5 态度5 质量4 效率5 师傅很负责",
            True,
            5,
            {"attitude": 5, "quality": 4, "speed": 5},
            "师傅很负责",
        ),
        (f"{NUMBER} 5分已解决师傅等了30分钟", True, 5, {}, "师傅等了30分钟"),  # 30分钟 is no score
        (f"{NUMBER} 已解决 3号楼师傅等了2 天 4分", True, 4, {}, "3号楼师傅等了2 天"),  # marked beats bare
        (f"{NUMBER} 总分:3 服务态度：2", None, 3, {"attitude": 2}, ""),
        (f"{NUMBER} 没解决 还在滴水", False, None, {}, "还在滴水"),  # unsolved needs no score
        (f"{NUMBER} 还没有解决，２分", False, 2, {}, ""),  # full-width digits
        ("bx202611230001 5", None, 5, {}, ""),
    ],
)
def test_callback_results(
    args: str, solved: bool | None, score: int | None, parts: dict[str, int], comment: str
) -> None:
    result = parse_callback(args)
    assert (result.number, result.solved, result.score, result.parts, result.comment) == (
        NUMBER,
        solved,
        score,
        parts,
        comment,
    )


def test_the_card_replied_to_gives_the_number() -> None:
    assert parse_callback("5 已解决", card_ticket=NUMBER).number == NUMBER
    assert parse_callback("TS-20261123-0002 5", card_ticket=NUMBER).number == "TS-20261123-0002"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ("5 已解决", "请写上工单号"),
        (f"{NUMBER} 已解决 师傅很好", "请给出满意度总分"),
        (f"{NUMBER} 6", "总分应为 1-5 分，收到 6"),
        (f"{NUMBER} 5 态度0", "态度应为 1-5 分，收到 0"),
        ("", "请写上工单号"),
    ],
)
def test_callback_refusals_say_why_and_how(args: str, reason: str) -> None:
    with pytest.raises(CommandError) as refused:
        parse_callback(args)
    assert reason in str(refused.value) and "用法：/huifang" in str(refused.value)


# -- /notice ------------------------------------------------------------------------------------------
def test_outage_for_a_building_with_its_restoration_time() -> None:
    request = parse_notice("3栋 明天9:00-12:00停水 因水箱清洗", NOW)
    assert (request.kind, request.utility, request.buildings, request.text) == (
        "outage",
        "water",
        (3,),
        "水箱清洗",
    )
    assert (request.starts_at, request.ends_at, request.urgent) == (at(24, 9), at(24, 12), False)


def test_a_date_glued_to_its_clock_time_is_kept() -> None:
    request = parse_notice("3、5栋 11月25日9:00-17:00 停电 线路检修", NOW)
    assert (request.utility, request.buildings, request.starts_at, request.ends_at) == (
        "power",
        (3, 5),
        at(25, 9),
        at(25, 17),
    )


def test_a_dotted_date_is_a_date() -> None:
    request = parse_notice("3栋 11.25 9:00-12:00 停水", NOW)
    assert (request.utility, request.starts_at, request.ends_at) == ("water", at(25, 9), at(25, 12))


def test_audiences_as_in_the_cli() -> None:
    ranged = parse_notice("紧急 3-2-1501:1802 5-1-302 现在起停水 管道抢修", NOW)
    assert ranged.units == (UnitRange(3, 2, "1501", "1802"), UnitRange(5, 1, "302", "302"))
    assert ranged.urgent and ranged.starts_at == NOW and ranged.ends_at is None and ranged.text == "管道抢修"
    assert parse_notice("全体 明天上午电梯维保", NOW).everyone


def test_pest_event_greeting_and_plain_notices() -> None:
    pest = parse_notice("全体 11月28日 9:00 消杀 公共区域除四害", NOW)
    assert (pest.kind, pest.starts_at, pest.text) == ("pest", at(28, 9), "公共区域除四害")
    event = parse_notice("全体 12月5日 15:00 活动 业主恳谈会 会所二楼", NOW)
    assert (event.kind, event.title, event.text, event.starts_at) == (
        "event",
        "业主恳谈会",
        "会所二楼",
        at(5, 15, month=12),
    )
    greeting = parse_notice("全体 问候 中秋快乐，阖家幸福", NOW)
    assert (greeting.kind, greeting.text) == ("greeting", "中秋快乐，阖家幸福")
    plain = parse_notice("5栋 明天停电梯维保，请走楼梯", NOW)  # 停电梯 is no power cut; no time needed
    assert (plain.kind, plain.text, plain.starts_at) == ("general", "明天停电梯维保，请走楼梯", None)


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ("明天9:00 停水", "请先写发给谁"),
        ("3栋", "请写上通知内容"),
        ("全体 3栋 明天9:00 停水", "只能选一种"),
        ("3栋 停水 水管抢修", "请写上时间"),
        ("3栋 明天停水", "请写明几点开始"),
        ("3栋 13.24 9:00 停水", "没看懂"),
        ("3栋 11月31日 9:00 停水", "没看懂"),  # a date the parser cannot read is not silently today
        ("3栋 11月20日 9:00 停水", "已经过去了"),  # a recent date stays in the past
        ("3栋 2027年11月20日 9:00 停水", "太远了"),
        ("3栋 今天8:00-9:00 停水", "已经过去了"),
        ("3-2-1501:abc 明天9:00 停水", "单元范围格式不对"),
    ],
)
def test_notice_refusals(args: str, reason: str) -> None:
    with pytest.raises(CommandError, match=reason):
        parse_notice(args, NOW)


# -- phone numbers ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        ("0571-88880000", "0571-88880000"),
        ("(0571) 8888 0000", "0571-88880000"),
        ("010-12345678", "010-12345678"),  # 3-digit area code
        ("+86 138 0013 8000", "13800138000"),
        ("400 123 4567", "400-123-4567"),
        ("0571-88880000-801", "0571-88880000转801"),
        ("0571-88880000 转 801", "0571-88880000转801"),
        ("88880000", "88880000"),  # a local number without the area code
    ],
)
def test_phone_numbers_are_stored_in_one_form(raw: str, stored: str) -> None:
    assert check_phone(raw) == stored


@pytest.mark.parametrize("raw", ["", "110", "12345", "138001380001", "0571-8888", "13800138000转1", "tel"])
def test_what_no_one_could_dial_is_refused(raw: str) -> None:
    with pytest.raises(PhoneError, match="不是有效的电话号码"):
        check_phone(raw)
