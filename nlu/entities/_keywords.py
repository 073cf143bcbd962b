"""Keyword entities: fee_item, service, category (what is broken), area and common_area.

One pre-compiled alternation of every keyword, longest first, scanned once; each keyword maps to the
entities it implies (电梯 -> category lift, area common, common_area 电梯). A few keywords are vetoed by
the character before them (楼下水管 is 楼下 + 水管, not 下水 "drain").
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from nlu.types import Entity

Implied = tuple[tuple[str, str], ...]


def _common(place: str, category: str | None = None) -> Implied:
    implied = (("area", "common"), ("common_area", place))
    return ((("category", category),) if category else ()) + implied


def _each(words: str, implied: Implied) -> dict[str, Implied]:
    return dict.fromkeys(words.split(), implied)


_IN_HOME: Implied = (("area", "in_home"),)

_FEE_ITEMS: dict[str, Implied] = {
    **_each("物业费 物业管理费 管理费", (("fee_item", "management"),)),
    **_each("停车费 车位费 停车管理费 车位管理费", (("fee_item", "parking"),)),
    "水费": (("fee_item", "water"),),
    "电费": (("fee_item", "electricity"),),
    "水电费": (("fee_item", "water"), ("fee_item", "electricity")),
    **_each("公摊 公摊费 公共水电 公共水电费 公区水电 公共能耗", (("fee_item", "shared"),)),
    **_each("装修垃圾清运费 垃圾清运费 垃圾清运 装修垃圾 建筑垃圾清运", (("fee_item", "decoration_waste"),)),
    **_each("维修费 修理费 维修费用", (("fee_item", "repair"),)),
}

_APPLIANCES = ("空调", "冷气", "热水器", "油烟机", "洗衣机", "净水器", "电视", "燃气灶", "家电", "浴霸")
_INSTALL: Implied = (("service", "appliance_install"),)

_SERVICES: dict[str, Implied] = {
    **_each("保洁 家政 打扫 清洁 清洗 大扫除 钟点工 擦玻璃 开荒 除螨", (("service", "cleaning"),)),
    **_each("洗衣 干洗 收衣服 洗衣服 送洗 洗被子", (("service", "laundry"),)),
    **{f"{verb}{item}": _INSTALL for verb in ("安装", "装", "装个", "装台") for item in _APPLIANCES},
    **{f"{item}安装": _INSTALL for item in _APPLIANCES},
    **_each(
        "装修申请 申请装修 装修报备 办理装修 装修手续 我要装修 要装修 准备装修"
        " 打算装修 装修许可 装修登记 装修审批",
        (("service", "decoration"),),
    ),
    **_each("搬家 搬场 搬屋 搬进来 搬出去 搬走 搬入 搬出 货梯", (("service", "moving"),)),
    **_each("车位 租车位 停车位 月租车位 买车位", (("service", "parking_space"),)),
    **_each("宠物寄养 寄养", (("service", "pet_boarding"),)),
    **_each("体检 老人健康 健康检查 量血压 测血压 义诊 上门体检", (("service", "elderly_check"),)),
    **_each("活动 报名 社区活动", (("service", "event"),)),
}

_CATEGORIES: dict[str, Implied] = {
    **_each(
        "漏水 水管 水龙头 龙头 没水 停水 冇水 无水 水压 爆管 水表 自来水 断水 滴水 冒水 水管爆",
        (("category", "water"),),
    ),
    **_each(
        "堵 下水道 马桶 地漏 反水 返水 排水 下水 污水 化粪池 反味 返味",
        (("category", "drain"),),
    ),
    **_each(
        "停电 跳闸 没电 冇电 插座 漏电 断电 电闸 电表 短路 电线 开关 空开",
        (("category", "electric"),),
    ),
    **_each("灯 不亮 灯泡 灯管", (("category", "lighting"),)),
    **_each(
        "门锁 门禁 打不开门 开不了门 门打不开 门开不了 进不了门 钥匙 锁 锁芯 指纹锁 密码锁 门卡 对讲 门铃"
        " 防盗门 入户门 门把手 门关不上 门关不严 关不上门",
        (("category", "door_lock"),),
    ),
    **_each("电梯 扶梯", (("category", "lift"),)),
    **_each(
        "墙 裂缝 开裂 裂了 渗水 脱落 天花板 瓷砖 掉皮 空鼓 发霉 墙皮 吊顶 掉灰 起皮 防水",
        (("category", "wall"),),
    ),
    **_each("燃气 煤气 天然气 液化气 漏气", (("category", "gas"),)),
    **_each(
        "空调 冷气 热水器 油烟机 抽油烟机 洗衣机 浴霸 燃气灶 冰箱 排气扇 新风",
        (("category", "appliance"),),
    ),
}

_AREAS: dict[str, Implied] = {
    **_each(
        "家里 我家 家中 我们家 屋里 屋内 室内 户内 厨房 卫生间 厕所 洗手间"
        " 浴室 客厅 卧室 主卧 次卧 书房 阳台 房间 家里面",
        _IN_HOME,
    ),
    "电梯": _common("电梯", "lift"),
    "电梯间": _common("电梯", "lift"),
    "电梯厅": _common("电梯", "lift"),
    **_each("楼道 走廊 过道 楼梯间", _common("楼道")),
    "楼梯": _common("楼梯"),
    **_each("大堂 大厅 一楼大厅", _common("大堂")),
    **_each("车库 地库 地下车库 停车场 地下停车场", _common("车库")),
    **_each("小区门口 小区大门 大门口 大门", _common("小区门口")),
    **_each("花园 绿化 绿化带 草坪 绿地", _common("花园")),
    **_each("楼顶 天台", _common("天台")),
    **_each("垃圾房 垃圾站 垃圾桶", _common("垃圾房")),
    "消防通道": _common("消防通道"),
    "路灯": _common("路灯", "lighting"),
    "单元门": _common("单元门", "door_lock"),
    "楼道灯": _common("楼道", "lighting"),
    "外墙": _common("外墙", "wall"),
    "地下室": _common("地下室"),
    "围墙": _common("围墙", "wall"),
    **_each("健身器材 健身区 健身房", _common("健身区")),
    **_each("儿童乐园 游乐场 儿童游乐场 游乐区 儿童游乐区", _common("游乐场")),
    "篮球场": _common("篮球场"),
    "快递柜": _common("快递柜"),
    **_each("道闸 车闸 门岗", _common("门岗")),
    **_each("公共区域 公区 公共部位", (("area", "common"),)),
}

_TABLE: dict[str, Implied] = {**_CATEGORIES, **_AREAS, **_SERVICES, **_FEE_ITEMS}
# Overlapping tables: the more specific reading wins (车位费 is a fee, not the service 车位).
_TABLE["车位费"] = _FEE_ITEMS["车位费"]
_TABLE["货梯"] = _SERVICES["货梯"]
_TABLE["抽油烟机"] = _CATEGORIES["抽油烟机"]

# Keyword -> characters that, just before it, mean it is not this keyword.
_VETO_BEFORE = {"下水": "楼", "大门": "家户", "灯": "红绿"}
# Keyword -> characters that, just after it, mean it is not this keyword (洗衣机 is an appliance).
# 墙上插座 is a socket on the wall, not a wall fault (墙上有裂缝 still finds 裂缝).
_VETO_AFTER = {"洗衣": "机", "堵": "车", "墙": "上边角"}

_KEYWORDS = re.compile("|".join(re.escape(k) for k in sorted(_TABLE, key=len, reverse=True)))


def _vetoed(text: str, start: int, end: int, keyword: str) -> bool:
    before = _VETO_BEFORE.get(keyword, "")
    if before and start > 0 and text[start - 1] in before:
        return True
    after = _VETO_AFTER.get(keyword, "")
    return bool(after) and end < len(text) and text[end] in after


def find_keywords(text: str) -> Iterator[Entity]:
    """Every keyword entity, first mention of each (type, value) only."""
    seen: set[tuple[str, str]] = set()
    pos = 0
    while (m := _KEYWORDS.search(text, pos)) is not None:
        keyword = m[0]
        if _vetoed(text, m.start(), m.end(), keyword):
            pos = m.start() + 1  # try a shorter keyword starting inside this one
            continue
        pos = m.end()
        for type_, value in _TABLE[keyword]:
            if (type_, value) not in seen:
                seen.add((type_, value))
                yield Entity(type_, value, keyword, m.start(), m.end())
