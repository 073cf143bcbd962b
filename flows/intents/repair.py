"""报修: where (in the home or a common area), what is broken, when to come, how to reach the resident."""

from __future__ import annotations

import re
from datetime import timedelta

from data.kinds import TicketKind, TicketStatus
from data.models import Ticket
from flows.dialog import slots as s
from flows.dialog.form import Form, Slot, Values
from flows.dialog.spec import Aside, FlowSpec
from flows.dialog.turn import Turn
from flows.domain.tickets import NewTicket, format_time, merge_repeat, open_ticket
from nlu.types import FAULT_CATEGORIES

IN_HOME_WORDS = (
    "家", "户内", "屋里", "室内", "房间", "厨房", "卫生间", "厕所", "客厅", "卧室", "阳台", "屋企",
    "洗手间", "浴室", "书房", "冷气机",
)  # fmt: skip
COMMON_WORDS = ("公共", "楼道", "电梯", "车库", "大堂", "小区", "门口", "楼下", "走廊", "天台", "花园")
_BUILDING = re.compile(r"\d{1,2}\s*[栋号幢座]")
# Places that exist in every building: without a building number nobody knows where to go.
NEEDS_BUILDING = ("楼道", "电梯", "楼梯", "单元门", "走廊", "天台", "楼顶", "消防通道", "过道")


def _spot_area(turn: Turn, values: Values) -> str | None:
    area = turn.parse.value("area")
    return area if area in ("in_home", "common") else None


def _answer_area(turn: Turn, values: Values) -> str | None:
    found = _spot_area(turn, values)
    if found:
        return found
    if any(word in turn.text for word in COMMON_WORDS):
        return "common"
    if any(word in turn.text for word in IN_HOME_WORDS):
        return "in_home"
    return None


def _spot_place(turn: Turn, values: Values) -> str | None:
    """The common place as written ("3栋2单元5楼楼道", "3栋楼下"), else the place the NLU names."""
    named = s.find_place(turn.text)
    if named is not None:
        return named
    place = turn.parse.value("common_area")
    if not isinstance(place, str):
        return None
    building = _BUILDING.search(turn.text)
    if building is None:
        return None if place in NEEDS_BUILDING else place
    end = turn.text.find(place, building.start())
    return turn.text[building.start() : end + len(place)] if end >= 0 else f"{building.group()}{place}"


def _is_common(turn: Turn, values: Values) -> bool:
    return values.get("area") == "common"


def _is_in_home(turn: Turn, values: Values) -> bool:
    return values.get("area") == "in_home"


AREA = Slot(
    "area",
    "区域",
    lambda turn, values: (
        "请问是您家里（户内）的问题，还是楼道、电梯、车库等公共区域的问题？",
        ("家里", "公共区域"),
    ),
    _answer_area,
    spot=_spot_area,
    glean=lambda turn, values: "in_home" if any(w in turn.text for w in IN_HOME_WORDS) else None,
    show=lambda area: {"in_home": "户内", "common": "公共区域"}.get(area, area),
)
UNIT = Slot(
    "unit",
    "房屋",
    lambda turn, values: ("请问是哪个房屋？请告诉我楼栋、单元和房号，比如“3栋2单元1502”。", ()),
    s.spot_unit,
    spot=s.spot_unit,
    check=s.check_own_unit,
    show=lambda raw: raw["label"],
    needed=_is_in_home,
)
PLACE = Slot(
    "place",
    "位置",
    lambda turn, values: ("请问具体在哪个位置？比如“3栋2单元电梯”“地下车库B区”。", ()),
    s.answer_place,
    spot=_spot_place,
    needed=_is_common,
    free_text=True,
    aliases=("地点", "地方"),
    vague_question="大概在哪一栋楼附近？知道楼号就行，比如“3栋楼下”。实在不清楚也没关系，再回复“不清楚”，师傅到现场找。",
    default=lambda turn, values: "不清楚（现场确认）",
)


def _answer_description(turn: Turn, values: Values) -> str | None:
    text = s.answer_text(turn, values)
    if text is not None:
        _note_category(turn, values)
    return text


def _note_category(turn: Turn, values: Values) -> None:
    found = turn.parse.value("category")
    if found in FAULT_CATEGORIES:
        values["category"] = found


# How a fault shows, for messages whose only fault keyword is a place (电梯坏了, 楼道灯不亮).
SYMPTOM = re.compile(
    r"坏|不亮|失灵|故障|没反应|不动|不转|不工作|不能用|用不了|不好用|异响|卡住|卡了|漏|破|松了|掉了|闪"
)


def _glean_description(turn: Turn, values: Values) -> str | None:
    """The message says what is wrong while answering where ("卧室的灯不亮了"), not only a place
    ("3栋2单元电梯": 电梯 names the lift as a place, so it needs a symptom too)."""
    places = {(e.start, e.end) for e in turn.parse.entities if e.type in ("area", "common_area")}
    faults = [e for e in turn.parse.all("category") if (e.start, e.end) not in places]
    if not faults and SYMPTOM.search(turn.text) is None:
        return None
    return _answer_description(turn, values)


DESCRIPTION = Slot(
    "description",
    "问题",
    lambda turn, values: ("请您简单描述一下问题：什么坏了、现在是什么情况？", ()),
    _answer_description,
    glean=_glean_description,
    free_text=True,
    aliases=("内容", "情况"),
)
VISIT = Slot(
    "visit",
    "上门时间",
    s.visit_time_question,
    s.answer_time,
    spot=s.spot_visit_time,
    check=s.check_future,
    show=s.show_span,
    needed=_is_in_home,
    aliases=("时间",),
    vague_question="没关系。您看是尽快安排师傅上门，还是约个您家里有人的时间？比如“明天上午”。",
    default=s.asap,
)


class RepairForm(Form):
    name = "repair"
    title = "报修"
    slots = (AREA, UNIT, PLACE, DESCRIPTION, VISIT, s.phone_slot())
    key_slots = frozenset({"area", "unit", "place", "description"})  # enough to spot a repeat

    def prefill(self, turn: Turn, values: Values) -> None:
        if turn.resident is not None and turn.resident.phone:
            values["phone"] = turn.resident.phone
        own = s.own_unit_value(turn)
        if own is not None:
            values["unit"] = own
        if turn.parse.value("category") or s.meaningful(turn.text, minimum=5):
            values["description"] = turn.text
            _note_category(turn, values)

    def ready(self, turn: Turn, values: Values) -> bool:
        """A repeat of an open problem is merged into its ticket instead of opening another."""
        repeat = self._open_duplicate(turn, values)
        if repeat is None:
            return True
        merge_repeat(
            turn.store,
            repeat,
            values["description"],
            turn.now,
            turn.actor,
            tuple(turn.state.get("photos", ())),
        )
        who = f"，{repeat.assignee.name}负责" if repeat.assignee else ""
        status = TicketStatus.name_of(repeat.status)
        turn.say(
            f"您好，这个问题您之前已经报过了（单号 {repeat.number}，{status}{who}），"
            "我们没有重复登记，已经把您的情况补充到原工单，并再次提醒工作人员尽快处理。让您久等了，非常抱歉！"
        )
        return False

    def _open_duplicate(self, turn: Turn, values: Values) -> Ticket | None:
        category = _category(turn, values)
        if category == "other" or turn.unit is None:
            return None
        since = turn.now - timedelta(days=turn.settings.duplicate_window_days)
        if values.get("area") == "in_home":
            candidates = turn.store.tickets.open_of_unit(
                turn.unit.id, kind=TicketKind.REPAIR, category=category, since=since
            )
            said = str(values.get("description", ""))
            return next(
                (t for t in candidates if t.area == "in_home" and _same_thing(said, t.description)), None
            )
        return turn.store.tickets.open_common_repair(
            turn.compound.id, category, values.get("place", ""), since
        )

    def submit(self, turn: Turn, values: Values) -> None:
        start, end = s.span_from_json(values["visit"]) if "visit" in values else (None, None)
        asap = bool(values.get("visit", {}).get("asap"))
        common = values["area"] == "common"
        ticket = open_ticket(
            turn.store,
            turn.compound,
            turn.account,
            NewTicket(
                kind=TicketKind.REPAIR,
                description=values["description"],
                category=_category(turn, values),
                area=values["area"],
                location=values["place"] if common else values["unit"]["label"],
                preferred_start=None if asap else start,
                preferred_end=None if asap else end,
                contact_phone=values.get("phone"),
                photos=tuple(turn.state.get("photos", ())),
                details={"asap": asap} if asap else {},
            ),
            turn.now,
            turn.actor,
        )
        turn.say(_promise(turn, ticket, asap))


SPEC = FlowSpec(
    "repair",
    flow=RepairForm(),
    title=RepairForm.title,
    needs_binding=True,
    keeps_draft=True,
    aside=Aside.TICKET,
    topic="category",
    ticket=TicketKind.REPAIR,
)


# Things of one category that are not one another: the water heater is no repeat of the air-con.
THINGS = (
    "空调", "冷气", "热水器", "冰箱", "洗衣机", "油烟机", "燃气灶", "煤气灶", "电视", "地暖", "暖气",
    "净水器",
    "马桶", "水槽", "地漏", "洗手池", "面盆", "浴缸", "花洒", "水龙头", "门锁", "门禁", "窗户", "插座", "灯",
)  # fmt: skip


def _same_thing(said: str, before: str) -> bool:
    """Whether two reports of one category name the same thing (or do not say which)."""
    now, then = {t for t in THINGS if t in said}, {t for t in THINGS if t in before}
    return not now or not then or bool(now & then)


def _category(turn: Turn, values: Values) -> str:
    return str(values.get("category", "other"))


def _promise(turn: Turn, ticket: Ticket, asap: bool) -> str:
    """Only times the compound's settings guarantee (no empty promises)."""
    lines = [f"好的，已为您登记报修，单号 {ticket.number}。"]
    if ticket.area == "common":
        lines.append("公共区域的问题我们会尽快安排工作人员处理，谢谢您的反馈！")
    elif ticket.priority == "urgent" and (asap or ticket.preferred_start is None):
        lines.append(
            f"水电气类问题属于紧急维修，"
            f"我们会在 {turn.settings.arrive_urgent_min} 分钟内安排师傅与您联系上门。"
        )
    elif ticket.preferred_start is not None:
        lines.append(
            f"我们会按您约定的时间安排师傅上门（最晚 {format_time(ticket.arrive_by)} 前到），"
            "出发前师傅会先联系您。"
        )
    else:
        lines.append(f"我们会在 {turn.settings.arrive_normal_min} 分钟内安排师傅与您联系。")
    lines.append("有进展会第一时间通知您，您也可以随时问我“我的报修怎么样了”。")
    return "\n".join(lines)
