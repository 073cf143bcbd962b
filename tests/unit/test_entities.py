"""Entity extraction: exact values against a fixed ``now`` (Monday 2026-11-23 10:00, Asia/Shanghai)."""

from __future__ import annotations

import time as clock
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from nlu.entities import MAX_CHARS, extract
from nlu.normalize import normalize
from nlu.types import Period, TimeSpan, UnitRef

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=SH)  # a Monday


def at(month: int, day: int, hour: int = 0, minute: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SH)


def point(month: int, day: int, hour: int, minute: int = 0) -> TimeSpan:
    return TimeSpan(at(month, day, hour, minute), at(month, day, hour, minute))


def span(month: int, day: int, first: int, last: int) -> TimeSpan:
    end = at(month, day, 23, 59) if last == 24 else at(month, day, last)
    return TimeSpan(at(month, day, first), end)


def whole_day(month: int, day: int, year: int = 2026) -> TimeSpan:
    return TimeSpan(at(month, day, year=year), at(month, day, 23, 59, year=year))


def values(text: str, type_: str, now: datetime = NOW) -> list[Any]:
    return [e.value for e in extract(text, now) if e.type == type_]


# --- unit -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3栋2单元1502", UnitRef(3, 2, "1502")),
        ("3号楼2单元1502", UnitRef(3, 2, "1502")),
        ("3幢2单元1502室", UnitRef(3, 2, "1502")),
        ("我住3-2-1502", UnitRef(3, 2, "1502")),
        ("3栋1502", UnitRef(3, None, "1502")),
        ("三号楼二单元一五零二", UnitRef(3, 2, "1502")),
        ("十二栋一单元三零一", UnitRef(12, 1, "301")),
        ("3#2-1502", UnitRef(3, 2, "1502")),
        ("3栋 2单元 1502 厨房漏水", UnitRef(3, 2, "1502")),
        ("３號樓２單元１５０２室", UnitRef(3, 2, "1502")),
        ("15栋3单元0802", UnitRef(15, 3, "0802")),
        ("5栋二单元602房", UnitRef(5, 2, "602")),
    ],
)
def test_unit(text: str, expected: UnitRef) -> None:
    assert values(text, "unit") == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "13800138000",  # a phone number
        "电话138-0013-8000",
        "2026年的物业费",  # a year
        "2026-11-23上门",  # a date
        "3楼漏水",  # a floor, not a building
        "3栋电梯坏了",  # a building without a room
        "房间有1502平方",
    ],
)
def test_not_a_unit(text: str) -> None:
    assert values(text, "unit") == []


def test_unit_offsets_point_into_normalised_text() -> None:
    text = "您好，３棟２單元１５０２漏水"
    [unit] = [e for e in extract(text, NOW) if e.type == "unit"]
    assert normalize(text)[unit.start : unit.end] == unit.text == "3栋2单元1502"


# --- phone ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("电话13800138000", ["13800138000"]),
        ("138 0013 8000", ["13800138000"]),
        ("138-0013-8000", ["13800138000"]),
        ("+86 13800138000", ["13800138000"]),
        ("+8613912345678", ["13912345678"]),
        ("打021-12345678", ["021-12345678"]),
        ("0755-87654321找我", ["0755-87654321"]),
        ("(010)62345678", ["010-62345678"]),
        ("１３８００１３８０００", ["13800138000"]),
        ("3栋2单元1502 电话 15912345678", ["15912345678"]),
    ],
)
def test_phone(text: str, expected: list[str]) -> None:
    assert values(text, "phone") == expected


@pytest.mark.parametrize(
    "text",
    ["1380013800012345", "12345678901", "订单号213800138000", "3栋2单元1502", "10800138000"],
)
def test_not_a_phone(text: str) -> None:
    assert values(text, "phone") == []


# --- datetime ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("今天", whole_day(11, 23)),
        ("明天", whole_day(11, 24)),
        ("后天", whole_day(11, 25)),
        ("大后天", whole_day(11, 26)),
        ("聽日得唔得", whole_day(11, 24)),
        ("周六", whole_day(11, 28)),
        ("星期六", whole_day(11, 28)),
        ("礼拜六", whole_day(11, 28)),
        ("这周六", whole_day(11, 28)),
        ("下周一", whole_day(11, 30)),
        ("下个星期三", whole_day(12, 2)),
        ("周一", whole_day(11, 23)),  # today is Monday
        ("星期天", whole_day(11, 29)),
        ("12月3号", whole_day(12, 3)),
        ("12月3日", whole_day(12, 3)),
        ("十二月三号", whole_day(12, 3)),
        ("3号", whole_day(12, 3)),  # the 3rd has passed this month
        ("25号", whole_day(11, 25)),
        ("2026-12-05", whole_day(12, 5)),
        ("1月5号", whole_day(1, 5, year=2027)),
        ("上午", span(11, 23, 8, 12)),
        ("中午", span(11, 23, 12, 14)),
        ("下午", span(11, 23, 14, 18)),
        ("晚上", span(11, 23, 18, 21)),
        ("傍晚", span(11, 23, 17, 19)),
        ("早上", span(11, 24, 7, 9)),  # this morning is over
        ("明天上午", span(11, 24, 8, 12)),
        ("周六的下午", span(11, 28, 14, 18)),
        ("今晚", span(11, 23, 18, 21)),
        ("三点", point(11, 23, 15)),
        ("3点", point(11, 23, 15)),
        ("下午三点", point(11, 23, 15)),
        ("下午两点", point(11, 23, 14)),
        ("两点", point(11, 23, 14)),
        ("9点半", point(11, 24, 9, 30)),  # 09:30 has passed today
        ("9:30", point(11, 24, 9, 30)),
        ("十点一刻", point(11, 23, 10, 15)),
        ("11点", point(11, 23, 11)),
        ("晚上8点", point(11, 23, 20)),
        ("今晚8点", point(11, 23, 20)),
        ("中午12点", point(11, 23, 12)),
        ("中午1点", point(11, 23, 13)),
        ("一点半", point(11, 23, 13, 30)),
        ("明天下午三点", point(11, 24, 15)),
        ("下周一下午两点", point(11, 30, 14)),
        ("12月3号上午10点", point(12, 3, 10)),
        ("明天9:30", point(11, 24, 9, 30)),
        ("十点十分", point(11, 23, 10, 10)),
        ("下午2点到4点", TimeSpan(at(11, 23, 14), at(11, 23, 16))),
        ("2-4点", TimeSpan(at(11, 23, 14), at(11, 23, 16))),
        ("明天上午9点到11点", TimeSpan(at(11, 24, 9), at(11, 24, 11))),
        ("现在", TimeSpan(NOW, NOW)),
        ("马上", TimeSpan(NOW, NOW)),
        ("尽快", TimeSpan(NOW, NOW)),
        ("一小时后", point(11, 23, 11)),
        ("半小时后", point(11, 23, 10, 30)),
        ("一个半小时后", point(11, 23, 11, 30)),
        ("20分钟后", point(11, 23, 10, 20)),
        ("两小时内", TimeSpan(NOW, at(11, 23, 12))),
        ("3天后", whole_day(11, 26)),
        ("周末", TimeSpan(at(11, 28), at(11, 29, 23, 59))),
        ("下周", TimeSpan(at(11, 30), at(12, 6, 23, 59))),
        ("这周", TimeSpan(at(11, 23), at(11, 29, 23, 59))),
        ("周一到周五", TimeSpan(at(11, 23), at(11, 27, 23, 59))),
        ("10号到15号", TimeSpan(at(12, 10), at(12, 15, 23, 59))),
        ("下周一到周三", TimeSpan(at(11, 30), at(12, 2, 23, 59))),
        ("周一上午到周三下午", TimeSpan(at(11, 23, 8), at(11, 25, 18))),
        ("下午三点以后", TimeSpan(at(11, 23, 15), at(11, 23, 18))),
        ("三点以后", TimeSpan(at(11, 23, 15), at(11, 23, 21))),
        ("今天下午5点前", TimeSpan(NOW, at(11, 23, 17))),
        ("明天中午12点之前", TimeSpan(at(11, 24, 8), at(11, 24, 12))),
        ("晚上十二点", point(11, 24, 0)),
        ("凌晨两点", point(11, 24, 2)),  # 02:00 today has passed
        ("十二点半", point(11, 23, 12, 30)),
        ("九点零五", point(11, 24, 9, 5)),
        ("三点十五分", point(11, 23, 15, 15)),
        ("周三三点", point(11, 25, 15)),
        ("星期日早上9點", point(11, 29, 9)),
        ("2026年12月3号下午2点", point(12, 3, 14)),
        ("聽朝", span(11, 24, 7, 9)),
        ("礼拜天下昼", span(11, 29, 14, 18)),
        ("昨晚开始漏水", span(11, 22, 18, 21)),
        ("晚上好吵", span(11, 23, 18, 21)),
        ("下午3:30", point(11, 23, 15, 30)),
        ("明天10:00-12:00", TimeSpan(at(11, 24, 10), at(11, 24, 12))),
        ("明早八点", point(11, 24, 8)),
        # a date glued to its clock time keeps its date
        ("11月25日9:00", point(11, 25, 9)),
        ("12月5日15:00", point(12, 5, 15)),
        ("11月25号9点", point(11, 25, 9)),
        ("24号14点", point(11, 24, 14)),
        ("11月24日14:00-16:00", TimeSpan(at(11, 24, 14), at(11, 24, 16))),
        # month.day, month/day and a month with a bare day
        ("11.24", whole_day(11, 24)),
        ("11/24", whole_day(11, 24)),
        ("12.5号", whole_day(12, 5)),
        ("11.24上午", span(11, 24, 8, 12)),
        ("11.25 9:00", point(11, 25, 9)),
        ("11月24", whole_day(11, 24)),
        ("11月25 9点来", point(11, 25, 9)),
        # a dotted clock time after a date or a part of day
        ("明天9.30", point(11, 24, 9, 30)),
        ("下午3.30", point(11, 23, 15, 30)),
        # a recent past date stays in the past; only a long-gone one rolls on
        ("11月20日", whole_day(11, 20)),
        ("11月20日报的修", whole_day(11, 20)),
        ("9月30号", whole_day(9, 30)),
        ("9月1号", whole_day(9, 1, year=2027)),
        ("20号", whole_day(11, 20)),
        ("下个月25号", whole_day(12, 25)),
        # the date as the bot writes it, with its weekday
        ("11月25日(周三) 09:00", point(11, 25, 9)),
        ("24号周二下午", span(11, 24, 14, 18)),
        ("1.5小时后", point(11, 23, 11, 30)),
        # the ways residents write it that already worked
        ("24号上午", span(11, 24, 8, 12)),
        ("下周三下午3点", point(12, 2, 15)),
        ("明早8点", point(11, 24, 8)),
        ("周六10点半", point(11, 28, 10, 30)),
        ("今晚7点后", TimeSpan(at(11, 23, 19), at(11, 23, 21))),
    ],
)
def test_datetime(text: str, expected: TimeSpan) -> None:
    assert values(text, "datetime") == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the second expression takes the date, week or part of day it leaves out from the first
        ("明天上午或者下午", [span(11, 24, 8, 12), span(11, 24, 14, 18)]),
        ("下周三或周四", [whole_day(12, 2), whole_day(12, 3)]),
        ("晚上7点或8点", [point(11, 23, 19), point(11, 23, 20)]),
        ("明天或后天", [whole_day(11, 24), whole_day(11, 25)]),
        ("明天上午，电话13800138000，后天也行", [span(11, 24, 8, 12), whole_day(11, 25)]),
    ],
)
def test_several_datetimes(text: str, expected: list[TimeSpan]) -> None:
    assert values(text, "datetime") == expected


def test_saturday_on_a_saturday_is_today() -> None:
    saturday = datetime(2026, 11, 28, 9, 0, tzinfo=SH)
    assert values("周六", "datetime", saturday) == [whole_day(11, 28)]
    assert values("下周六", "datetime", saturday) == [whole_day(12, 5)]


def test_a_recent_date_across_new_year_is_last_year() -> None:
    january = datetime(2027, 1, 3, 10, 0, tzinfo=SH)
    assert values("12月30日", "datetime", january) == [whole_day(12, 30, year=2026)]
    assert values("2月3号", "datetime", january) == [whole_day(2, 3, year=2027)]


def test_naive_now_is_shanghai_and_aware_now_is_converted() -> None:
    naive = datetime(2026, 11, 23, 10, 0)
    utc = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    assert values("明天", "datetime", naive) == values("明天", "datetime", utc) == [whole_day(11, 24)]


def test_default_now_is_current_shanghai_time() -> None:
    [found] = values("现在", "datetime", None)  # type: ignore[arg-type]
    assert abs(found.start - datetime.now(SH)) < timedelta(seconds=5)
    assert found.start.utcoffset() == timedelta(hours=8)


@pytest.mark.parametrize(
    "text",
    [
        "快一点",
        "便宜一点",
        "查一下",
        "我有两点建议",
        "几点来",
        "24小时",
        "3号楼",
        "三号门",
        "早点来",
        "太晚了",
        "一下",
        "两三点",  # not 23:00
        "1502点",
        "25:00",
        "2月30号",
        "早上好",
        "晚上好，我家停电了",
        "下午好!",
        "等了3天了",
        # decimals are amounts, not month.day
        "2.6元",
        "3.5米",
        "2.5 kg",
        "1.5倍",
        "12.5号楼",
        "单价2.6",
        "面积大概3.5",
        "物业费交了11.24",
        "13.45",
        "2.50",
        "v1.2",
        "1.2.3",
        "3号101",  # a room, not the 3rd
        "1月2月的物业费",  # a period
        "31号",  # November has no 31st
        "1.5天后",
    ],
)
def test_not_a_datetime(text: str) -> None:
    assert values(text, "datetime") == []


# --- fee item and period ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("物业费交了吗", ["management"]),
        ("管理费多少", ["management"]),
        ("停车费", ["parking"]),
        ("车位费怎么算", ["parking"]),
        ("水费", ["water"]),
        ("电费太贵", ["electricity"]),
        ("水电费", ["water", "electricity"]),
        ("公摊怎么这么多", ["shared"]),
        ("公共水电", ["shared"]),
        ("装修垃圾清运费", ["decoration_waste"]),
        ("垃圾清运", ["decoration_waste"]),
        ("维修费", ["repair"]),
        ("物業費", ["management"]),
    ],
)
def test_fee_item(text: str, expected: list[str]) -> None:
    assert values(text, "fee_item") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("上个月", Period("2026-10", "2026-10")),
        ("这个月", Period("2026-11", "2026-11")),
        ("本月", Period("2026-11", "2026-11")),
        ("今年", Period("2026-01", "2026-12")),
        ("去年", Period("2025-01", "2025-12")),
        ("今年上半年", Period("2026-01", "2026-06")),
        ("今年下半年", Period("2026-07", "2026-12")),
        ("3月", Period("2026-03", "2026-03")),
        ("三月份", Period("2026-03", "2026-03")),
        ("12月的水费", Period("2025-12", "2025-12")),  # December has not begun: last year's
        ("2026年3月", Period("2026-03", "2026-03")),
        ("2025年的物业费", Period("2025-01", "2025-12")),
        ("1到3月", Period("2026-01", "2026-03")),
        ("一到三月", Period("2026-01", "2026-03")),
        ("1月到3月", Period("2026-01", "2026-03")),
        ("一季度", Period("2026-01", "2026-03")),
        ("第四季度", Period("2026-10", "2026-12")),
        ("去年12月", Period("2025-12", "2025-12")),
        ("近三个月", Period("2026-09", "2026-11")),
        ("上季度", Period("2026-07", "2026-09")),
    ],
)
def test_period(text: str, expected: Period) -> None:
    assert values(text, "period") == [expected]


def test_period_across_new_year() -> None:
    january = datetime(2027, 1, 10, 9, 0, tzinfo=SH)
    assert values("上个月", "period", january) == [Period("2026-12", "2026-12")]


@pytest.mark.parametrize("text", ["12月3号", "三个月没交了", "13月", "查一下"])
def test_not_a_period(text: str) -> None:
    assert values(text, "period") == []


# --- service ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("预约保洁", "cleaning"),
        ("找个家政", "cleaning"),
        ("上门打扫", "cleaning"),
        ("清洁", "cleaning"),
        ("洗衣", "laundry"),
        ("干洗", "laundry"),
        ("收衣服", "laundry"),
        ("安装空调", "appliance_install"),
        ("装热水器", "appliance_install"),
        ("家电安装", "appliance_install"),
        ("装修申请", "decoration"),
        ("我要装修", "decoration"),
        ("搬家", "moving"),
        ("预约货梯", "moving"),
        ("车位", "parking_space"),
        ("租车位", "parking_space"),
        ("宠物寄养", "pet_boarding"),
        ("体检", "elderly_check"),
        ("老人健康", "elderly_check"),
        ("活动", "event"),
        ("报名", "event"),
        ("我想預約搬屋", "moving"),
        ("聽日下晝約個師傅裝冷氣", "appliance_install"),
        ("地毯清洗", "cleaning"),
    ],
)
def test_service(text: str, expected: str) -> None:
    assert values(text, "service") == [expected]


# --- category, area, common_area --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("漏水了", ["water"]),
        ("水龙头坏了", ["water"]),
        ("家里没水", ["water"]),
        ("停水了", ["water"]),
        ("冇水", ["water"]),
        ("楼下水管爆了", ["water"]),
        ("下水道堵了", ["drain"]),
        ("马桶", ["drain"]),
        ("地漏反水", ["drain"]),
        ("停电了", ["electric"]),
        ("跳闸", ["electric"]),
        ("插座没电", ["electric"]),
        ("楼道灯不亮", ["lighting"]),
        ("路灯坏了", ["lighting"]),
        ("门锁坏了", ["door_lock"]),
        ("门禁刷不开", ["door_lock"]),
        ("打不开门", ["door_lock"]),
        ("电梯坏了", ["lift"]),
        ("墙上有裂缝", ["wall"]),
        ("天花板渗水", ["wall"]),
        ("燃气", ["gas"]),
        ("有煤气味", ["gas"]),
        ("空调不制冷", ["appliance"]),
        ("热水器坏了", ["appliance"]),
        ("洗衣机坏了", ["appliance"]),
        ("厨房水龙头漏水", ["water"]),
        ("围墙倒了", ["wall"]),
        ("墙上插座松了", ["electric"]),
        ("防盗门关不严", ["door_lock"]),
        ("聽日下晝約個師傅裝冷氣", []),  # an installation, not a fault
        ("垃圾房有气味", []),
        ("你好", []),
    ],
)
def test_category(text: str, expected: list[str]) -> None:
    assert values(text, "category") == expected


@pytest.mark.parametrize(
    ("text", "area", "place"),
    [
        ("电梯坏了", "common", "电梯"),
        ("楼道灯不亮", "common", "楼道"),
        ("大堂很脏", "common", "大堂"),
        ("车库漏水", "common", "车库"),
        ("停车场", "common", "车库"),
        ("小区门口", "common", "小区门口"),
        ("大门", "common", "小区门口"),
        ("花园", "common", "花园"),
        ("楼顶", "common", "天台"),
        ("天台", "common", "天台"),
        ("垃圾房", "common", "垃圾房"),
        ("消防通道堵了", "common", "消防通道"),
        ("路灯", "common", "路灯"),
        ("单元门", "common", "单元门"),
        ("家里漏水", "in_home", None),
        ("我家", "in_home", None),
        ("厨房", "in_home", None),
        ("卫生间", "in_home", None),
        ("厕所", "in_home", None),
        ("客厅", "in_home", None),
        ("卧室", "in_home", None),
        ("阳台", "in_home", None),
        ("室内", "in_home", None),
    ],
)
def test_area(text: str, area: str, place: str | None) -> None:
    assert values(text, "area") == [area]
    assert values(text, "common_area") == ([place] if place else [])


# --- whole messages ---------------------------------------------------------------------------------


def test_full_repair_message() -> None:
    text = "你好，3栋2单元1502厨房水管漏水了，明天下午三点能来吗？电话13800138000"
    found = {(e.type, e.value) for e in extract(text, NOW)}
    assert found == {
        ("unit", UnitRef(3, 2, "1502")),
        ("area", "in_home"),
        ("category", "water"),
        ("datetime", point(11, 24, 15)),
        ("phone", "13800138000"),
    }


def test_entities_are_in_text_order_with_normalised_offsets() -> None:
    text = "幾時來修？３棟２單元１５０２電梯壞咗，聽日下午兩點"
    norm = normalize(text)
    found = extract(text, NOW)
    assert [e.start for e in found] == sorted(e.start for e in found)
    for entity in found:
        assert norm[entity.start : entity.end] == entity.text
    assert {e.type for e in found} == {"unit", "category", "area", "common_area", "datetime"}
    assert values(text, "datetime") == [point(11, 24, 14)]


# --- numerals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", 12),
        ("十二", 12),
        ("两", 2),
        ("二十三", 23),
        ("一五零二", 1502),
        ("三零一", 301),
        ("一下", None),
        ("", None),
    ],
)
def test_to_int(text: str, expected: int | None) -> None:
    from nlu.entities._numbers import to_int

    assert to_int(text) == expected


# --- normaliser fast path ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "幾時來修？聽日得唔得",
        "電梯壞咗",
        "沈默是金",
        "乾乾淨淨的房間",
        "一目瞭然",
        "你好，3栋2单元1502",
        "我家冇水",
    ],
)
def test_to_simplified_matches_opencc(text: str) -> None:
    import opencc

    from nlu.normalize import to_simplified

    assert to_simplified(text) == opencc.OpenCC("t2s").convert(text)


# --- bad input --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "😀😀😀",
        "\x00\x01\x02\x7f",
        "'; DROP TABLE tickets; --",
        "SELECT * FROM users WHERE 1=1",
        "1234567890" * 20,
        "??!!。。。",
        "\u200b\ufeff",
    ],
)
def test_bad_input_is_harmless(text: str) -> None:
    assert extract(text, NOW) == ()


def test_not_a_string_returns_nothing() -> None:
    assert extract(None, NOW) == ()  # type: ignore[arg-type]
    assert extract("3栋2单元1502".encode(), NOW) == ()  # type: ignore[arg-type]


def test_long_text_is_capped_and_fast() -> None:
    text = "电梯坏了" + "啊" * 10_000 + "13800138000"
    started = clock.perf_counter()
    found = extract(text, NOW)
    assert clock.perf_counter() - started < 0.1
    assert [e.type for e in found] == ["category", "area", "common_area"]
    assert all(e.end <= MAX_CHARS for e in found)


def test_long_digit_run_is_nothing() -> None:
    assert extract("9" * 10_000, NOW) == ()
