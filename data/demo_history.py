"""Six months of the demo compound's past, so every report has substance (``propbot demo``).

Repairs, complaints, bookings and emergencies with their timelines (claimed, on site, done, late,
reopened, cancelled), satisfaction callbacks by chat and by phone, and bills paid on time, late,
after a reminder, or still owed. Deterministic for a given ``now``; nothing is dated after ``now``,
and nothing happens on ``now``'s own day (the day's ticket numbers start at 0001).

The named residents' flats (``demo.NAMED_RESIDENTS``) keep no history: the console demos and their
tests see those flats as they were. Tickets still open are in-home tickets, so a resident reporting
a common-area fault today is never merged into an old one.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from data.clock import SHANGHAI, local
from data.kinds import EventKind, TicketKind, TicketStatus
from data.models import Bill, OutboxMessage, Resident, Staff, Ticket, TicketEvent, Unit
from data.scheduling import Callback
from data.settings import DEFAULTS
from data.store import STAFF_RECIPIENT, Store, workdays_after

HISTORY_DAYS = 182
# Tickets a day, on average, by kind: a compound of 432 flats.
DAILY = {
    TicketKind.REPAIR: 1.6,
    TicketKind.COMPLAINT: 0.35,
    TicketKind.BOOKING: 0.7,
    TicketKind.EMERGENCY: 0.07,
}

REPAIRS: dict[str, tuple[tuple[str, str, str], ...]] = {
    # category -> (description, area, location)
    "water": (
        ("厨房水管漏水", "in_home", "厨房"),
        ("卫生间水龙头关不紧，一直滴水", "in_home", "卫生间"),
        ("热水器进水管接头渗水", "in_home", "阳台"),
    ),
    "drain": (("马桶堵了", "in_home", "卫生间"), ("厨房下水道堵塞，水下不去", "in_home", "厨房")),
    "electric": (("客厅插座没电", "in_home", "客厅"), ("家里总是跳闸", "in_home", "")),
    "lighting": (("楼道灯不亮", "common", "楼道"), ("地下车库B2的灯坏了几盏", "common", "地下车库B2")),
    "door_lock": (("单元门禁刷卡开不了", "common", "单元门"), ("入户门锁芯卡住了", "in_home", "入户门")),
    "lift": (("电梯运行有异响", "common", "电梯"), ("电梯按钮失灵", "common", "电梯")),
    "wall": (("卫生间墙面渗水发霉", "in_home", "卫生间"), ("外墙瓷砖有脱落", "common", "外墙")),
    "appliance": (("空调不制冷", "in_home", "卧室"), ("热水器打不着火", "in_home", "厨房")),
    "other": (("阳台晾衣架坏了", "in_home", "阳台"), ("信报箱门掉了", "common", "一楼大堂")),
}
REPAIR_WEIGHTS = {
    "water": 22,
    "drain": 14,
    "electric": 12,
    "lighting": 12,
    "door_lock": 10,
    "lift": 7,
    "wall": 8,
    "appliance": 9,
    "other": 6,
}
COMPLAINTS: dict[str, tuple[tuple[str, str], ...]] = {
    # topic -> (description, location)
    "noise": (("楼上装修太吵，中午也在打电钻", ""), ("晚上广场舞音响声音太大", "中心广场")),
    "parking": (("消防通道有车乱停", "消防通道"), ("我的车位被别人占了", "地下车库")),
    "pets": (("小区里遛狗不牵绳", "中心花园"), ("楼道里有狗屎没人清理", "楼道")),
    "rubbish": (("垃圾站很臭，几天没清运", "垃圾站"),),
    "cleaning": (("楼道好几天没打扫了", "楼道"),),
    "staff": (("保安态度很差", "北门"), ("客服电话一直没人接", "")),
    "security": (("晚上有陌生人在楼里转", "楼道"),),
    "construction": (("顶楼有人私搭乱建", "顶楼"),),
    "repair_quality": (("上次修的水管又漏了", "厨房"),),
}
COMPLAINT_WEIGHTS = {
    "noise": 26,
    "parking": 20,
    "pets": 12,
    "rubbish": 10,
    "cleaning": 10,
    "staff": 8,
    "security": 6,
    "construction": 4,
    "repair_quality": 4,
}
BOOKINGS: dict[str, str] = {
    "cleaning": "家政保洁，全屋打扫",
    "laundry": "洗衣，两件大衣",
    "appliance_install": "安装空调",
    "moving": "搬家，预约货梯",
    "elderly_check": "老人健康检查",
}
BOOKING_WEIGHTS = {"cleaning": 40, "laundry": 25, "appliance_install": 15, "moving": 12, "elderly_check": 8}
EMERGENCIES = (
    ("water", "水管爆了，家里水漫出来了", "in_home", "厨房"),
    ("lift", "电梯困人了，有人关在里面", "common", "电梯"),
    ("gas", "厨房有很浓的煤气味", "in_home", "厨房"),
    ("electric", "配电箱冒烟了", "in_home", "门厅"),
)
SLOTS = ((9, 11), (14, 16), (16, 18))
COMMENTS = {
    5: ("师傅很细心", "很快就修好了", ""),
    4: ("还可以", ""),
    3: ("来得有点慢", ""),
    2: ("没彻底修好",),
    1: ("态度不好，还没修好",),
}
SCORES = (5, 4, 3, 2, 1)
SCORE_WEIGHTS = (58, 30, 8, 2.5, 1.5)


@dataclass
class _Story:
    """One ticket's past, in order; turned into rows once numbered."""

    kind: str
    category: str
    description: str
    area: str | None
    location: str
    unit: Unit
    resident: Resident | None
    created_at: datetime
    priority: str = "normal"
    preferred: tuple[datetime, datetime] | None = None
    events: list[tuple[datetime, str, str, str]] = field(default_factory=list)  # at, actor, kind, note
    assignee: Staff | None = None
    status: str = TicketStatus.RECEIVED
    done_at: datetime | None = None
    closed_at: datetime | None = None
    rounds: list[dict[str, Any]] = field(default_factory=list)  # Callback fields


def load_history(store: Store, compound_id: int, skip: set[int], now: datetime) -> int:
    """Add the compound's past to the store, leaving the units ``skip`` (ids) alone; the number of
    tickets. Units, residents, staff and bills must be in the store (flushed) already."""
    rng = random.Random(20260601)
    end = local(now).replace(hour=0, minute=0, second=0, microsecond=0)  # today has no history
    residents = store.session.scalars(select(Resident).order_by(Resident.id)).unique().all()
    reporters = [r for r in residents if r.unit_id not in skip]
    staff = store.session.scalars(
        select(Staff).where(Staff.compound_id == compound_id).order_by(Staff.id)
    ).all()
    stories = _stories(rng, reporters, staff, end - timedelta(days=HISTORY_DAYS), end, now)
    for story in sorted(stories, key=lambda s: s.created_at):
        _add_ticket(store, story)
    _pay_bills(store, skip, now, rng)
    store.session.flush()
    return len(stories)


# -- tickets --------------------------------------------------------------------------------------------
def _stories(
    rng: random.Random,
    reporters: Sequence[Resident],
    staff: Sequence[Staff],
    start: datetime,
    end: datetime,
    now: datetime,
) -> list[_Story]:
    people = _Team(staff)
    stories: list[_Story] = []
    day = start
    while day < end:
        for kind, rate in DAILY.items():
            for _ in range(_poisson(rng, rate * (1.3 if day.weekday() >= 5 else 1.0))):
                at = day + timedelta(minutes=rng.randint(7 * 60, 21 * 60 + 30))
                resident = rng.choice(reporters)
                story = _BUILDERS[kind](rng, resident, at, people)
                _live(rng, story, people, now)
                stories.append(story)
        day += timedelta(days=1)
    return stories


def _poisson(rng: random.Random, rate: float) -> int:
    """A Poisson count (Knuth): how many tickets come in on one day."""
    limit, count, product = pow(2.718281828, -rate), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class _Team:
    def __init__(self, staff: Sequence[Staff]) -> None:
        self.staff = list(staff)
        self.desk = next(s for s in staff if s.role == "front_desk")
        self.lead = next(s for s in staff if s.role == "lead")

    def for_skill(self, skill: str) -> Staff:
        found = [s for s in self.staff if skill in (s.skills or [])]
        return found[0] if found else self.desk


def _repair(rng: random.Random, resident: Resident, at: datetime, team: _Team) -> _Story:
    category = rng.choices(list(REPAIR_WEIGHTS), list(REPAIR_WEIGHTS.values()))[0]
    description, area, location = rng.choice(REPAIRS[category])
    if area == "common":
        location = f"{resident.unit.building.number}栋{location}"
    story = _Story(TicketKind.REPAIR, category, description, area, location, resident.unit, resident, at)
    story.priority = "urgent" if category in DEFAULTS.urgent_categories else "normal"
    if story.priority == "normal" and rng.random() < 0.6:  # a visit agreed for a later day
        first, last = rng.choice(SLOTS)
        day = local(at).date() + timedelta(days=rng.randint(1, 2))
        story.preferred = (_at(day, first), _at(day, last))
    return story


def _complaint(rng: random.Random, resident: Resident, at: datetime, team: _Team) -> _Story:
    topic = rng.choices(list(COMPLAINT_WEIGHTS), list(COMPLAINT_WEIGHTS.values()))[0]
    description, location = rng.choice(COMPLAINTS[topic])
    return _Story(TicketKind.COMPLAINT, topic, description, None, location, resident.unit, resident, at)


def _booking(rng: random.Random, resident: Resident, at: datetime, team: _Team) -> _Story:
    service = rng.choices(list(BOOKING_WEIGHTS), list(BOOKING_WEIGHTS.values()))[0]
    first, last = rng.choice(SLOTS)
    day = local(at).date() + timedelta(days=rng.randint(1, 5))
    story = _Story(TicketKind.BOOKING, service, BOOKINGS[service], None, "", resident.unit, resident, at)
    story.preferred = (_at(day, first), _at(day, last))
    return story


def _emergency(rng: random.Random, resident: Resident, at: datetime, team: _Team) -> _Story:
    category, description, area, location = rng.choice(EMERGENCIES)
    if area == "common":
        location = f"{resident.unit.building.number}栋{location}"
    story = _Story(TicketKind.EMERGENCY, category, description, area, location, resident.unit, resident, at)
    story.priority = "urgent"
    return story


_BUILDERS = {
    TicketKind.REPAIR: _repair,
    TicketKind.COMPLAINT: _complaint,
    TicketKind.BOOKING: _booking,
    TicketKind.EMERGENCY: _emergency,
}


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=SHANGHAI)


def _live(rng: random.Random, story: _Story, team: _Team, now: datetime) -> None:
    """What happened to the ticket, step by step, up to ``now``."""
    resident = f"resident:{story.resident.id}" if story.resident is not None else "system"
    story.events.append((story.created_at, resident, EventKind.RECEIVED, story.description))
    if rng.random() < (0.08 if story.kind == TicketKind.BOOKING else 0.03):
        _step(
            story,
            story.created_at + timedelta(hours=rng.uniform(0.5, 20)),
            resident,
            EventKind.CANCELLED,
            "居民取消",
            now,
        )
        return
    worker = team.lead if story.kind == TicketKind.COMPLAINT else team.for_skill(story.category)
    if story.kind == TicketKind.BOOKING:
        worker = team.for_skill(story.category) if story.category in ("cleaning", "laundry") else team.desk
    claim = story.created_at + timedelta(minutes=_claim_minutes(rng, story))
    if not _step(story, claim, f"staff:{worker.id}", EventKind.DISPATCHED, worker.name, now):
        return
    story.assignee = worker
    _work(rng, story, worker, claim, now)


def _claim_minutes(rng: random.Random, story: _Story) -> float:
    if story.priority == "urgent" or story.kind == TicketKind.EMERGENCY:
        return rng.uniform(1, 4) if rng.random() < 0.9 else rng.uniform(6, 15)
    return rng.uniform(3, 25) if rng.random() < 0.85 else rng.uniform(35, 180)


def _work(rng: random.Random, story: _Story, worker: Staff, claim: datetime, now: datetime) -> None:
    actor = f"staff:{worker.id}"
    if story.kind == TicketKind.COMPLAINT:  # looked into and answered within the four working days, mostly
        reply_by = workdays_after(story.created_at, DEFAULTS.complaint_reply_workdays)
        done = story.created_at + (reply_by - story.created_at) * rng.uniform(
            0.2, 0.9 if rng.random() < 0.88 else 1.4
        )
        if _step(story, done, actor, EventKind.DONE, "已与相关住户沟通处理", now):
            _callback(rng, story, team_actor=actor, now=now)
        return
    if story.kind == TicketKind.BOOKING:
        assert story.preferred is not None
        done = story.preferred[1] - timedelta(minutes=rng.randint(0, 40))
        _step(story, done, actor, EventKind.DONE, "服务完成", now)
        return
    deadline = _arrive_by(story)
    late = rng.random() < (0.07 if story.kind == TicketKind.EMERGENCY else 0.13)
    margin = timedelta(minutes=rng.uniform(5, 90)) if late else -timedelta(minutes=rng.uniform(0, 12))
    arrive = (
        max(claim + timedelta(minutes=rng.uniform(5, 10)), deadline + margin) if late else deadline + margin
    )
    arrive = max(arrive, claim + timedelta(minutes=3))
    if not _step(story, arrive, actor, EventKind.ARRIVED, "师傅到场", now):
        return
    pace = rng.random()
    if pace < 0.04:  # waiting for a part: days
        hours = rng.uniform(48, 220)
    else:
        hours = rng.uniform(2.2, 30) if pace < 0.18 else rng.uniform(0.3, 1.8)
    if _step(story, arrive + timedelta(hours=hours), actor, EventKind.DONE, "维修完成", now):
        _callback(rng, story, team_actor=actor, now=now)


def _arrive_by(story: _Story) -> datetime:
    """As ``flows.domain.tickets`` sets it: within the minutes of the priority, or the agreed window."""
    minutes = DEFAULTS.arrive_urgent_min if story.priority == "urgent" else DEFAULTS.arrive_normal_min
    arrive = story.created_at + timedelta(minutes=minutes)
    if story.kind == TicketKind.REPAIR and story.preferred and story.preferred[0] > arrive:
        arrive = max(story.preferred[1], story.preferred[0] + timedelta(minutes=DEFAULTS.arrive_normal_min))
    return arrive


def _callback(rng: random.Random, story: _Story, team_actor: str, now: datetime) -> None:
    """The satisfaction callback after the work, by chat or by phone; a low score reopens."""
    assert story.done_at is not None
    done = story.done_at
    asked = done + timedelta(hours=DEFAULTS.callback_after_h, minutes=rng.randint(0, 10))
    if asked > now:
        return  # not yet due: the scheduler asks
    round_: dict[str, Any] = {"done_at": done, "asked_at": asked, "status": "asked", "via": ""}
    story.rounds.append(round_)
    story.events.append((asked, "system", EventKind.CALLBACK, "已发送满意度回访"))
    answer = rng.random()
    if answer < 0.72:
        answered, via = asked + timedelta(hours=rng.uniform(0.2, 20)), "chat"
    else:
        task = asked + timedelta(hours=DEFAULTS.callback_answer_h)
        if task > now:
            return
        round_.update(status="staff_task", task_at=task)
        story.events.append((task, "system", EventKind.CALLBACK_TASK, "居民 24 小时未回复满意度回访"))
        if answer > 0.93:
            return  # nobody called back yet: the task is still open
        answered, via = task + timedelta(hours=rng.uniform(1, 30)), "phone"
    if answered > now:
        return
    score = rng.choices(SCORES, SCORE_WEIGHTS)[0]
    comment = rng.choice(COMMENTS[score])
    actor = "system" if via == "phone" else (f"resident:{story.resident.id}" if story.resident else "system")
    round_.update(answered_at=answered, score=score, via=via, comment=comment)
    for part in ("attitude", "quality", "speed"):
        round_[part] = max(1, min(5, score + rng.choice((-1, 0, 0, 0, 1)))) if rng.random() < 0.5 else None
    story.events.append(
        (answered, actor, EventKind.CALLBACK, f"满意度 {score} 分" + (f"：{comment}" if comment else ""))
    )
    if score <= DEFAULTS.reopen_score_max:
        round_["status"] = "reopened"
        _reopen_and_redo(rng, story, answered, team_actor, now)
        return
    round_["status"] = "answered"
    story.status, story.closed_at = TicketStatus.CLOSED, answered
    story.events.append((answered, actor, EventKind.CLOSED, "回访完成"))


def _reopen_and_redo(rng: random.Random, story: _Story, at: datetime, actor: str, now: datetime) -> None:
    story.status, story.done_at = TicketStatus.DISPATCHED, None
    story.events.append((at, "system", EventKind.REOPENED, "回访不满意"))
    if _step(story, at + timedelta(hours=rng.uniform(3, 48)), actor, EventKind.DONE, "返修完成", now):
        _callback(rng, story, actor, now)


def _step(story: _Story, at: datetime, actor: str, kind: str, note: str, now: datetime) -> bool:
    """Record a step if it happened before ``now``; False if it is still to come."""
    if at >= now:
        return False
    story.events.append((at, actor, kind, note))
    if kind in (EventKind.DISPATCHED, EventKind.ARRIVED):
        story.status = TicketStatus.DISPATCHED if kind == EventKind.DISPATCHED else TicketStatus.IN_PROGRESS
    elif kind == EventKind.DONE:
        story.status, story.done_at = TicketStatus.DONE, at
    elif kind == EventKind.CANCELLED:
        story.status, story.closed_at = TicketStatus.CANCELLED, at
    return True


def _add_ticket(store: Store, story: _Story) -> None:
    if (
        story.status not in (TicketStatus.DONE, TicketStatus.CLOSED, TicketStatus.CANCELLED)
        and story.area == "common"
    ):
        story.area = "in_home"  # nothing open in a common area: today's reports would merge into it
        story.location = ""
    ticket = Ticket(
        number=store.tickets.next_number(story.kind, story.created_at),
        compound_id=story.unit.building.compound_id,
        unit_id=story.unit.id if story.area != "common" else None,
        resident_id=story.resident.id if story.resident is not None else None,
        kind=story.kind,
        category=story.category,
        area=story.area,
        location=story.location,
        description=story.description,
        preferred_start=story.preferred[0] if story.preferred else None,
        preferred_end=story.preferred[1] if story.preferred else None,
        contact_phone=story.resident.phone if story.resident is not None else None,
        details={"reporter_unit_id": story.unit.id} if story.area == "common" else {},
        priority=story.priority,
        status=story.status,
        assignee_id=story.assignee.id if story.assignee is not None else None,
        created_at=story.created_at,
        updated_at=max(at for at, *_ in story.events),
        done_at=story.done_at,
        closed_at=story.closed_at,
    )
    if story.kind in (TicketKind.REPAIR, TicketKind.EMERGENCY):
        ticket.arrive_by = _arrive_by(story)
        ticket.fix_by = ticket.arrive_by + timedelta(hours=DEFAULTS.fix_ordinary_h)
    elif story.kind == TicketKind.COMPLAINT:
        ticket.reply_by = workdays_after(story.created_at, DEFAULTS.complaint_reply_workdays)
    store.tickets.add(ticket)
    store.session.add_all(
        TicketEvent(ticket_id=ticket.id, at=at, actor=actor, kind=kind, note=note, data={})
        for at, actor, kind, note in sorted(story.events, key=lambda e: e[0])
    )
    store.session.add_all(
        Callback(ticket_id=ticket.id, compound_id=ticket.compound_id, **{"comment": "", **fields})
        for fields in story.rounds
    )


# -- bills ----------------------------------------------------------------------------------------------
def _pay_bills(store: Store, skip: set[int], now: datetime, rng: random.Random) -> None:
    """When the paid bills were paid: mostly before the due date, some late, some only after the
    butler's reminder call (recorded as the arrears sweep records it)."""
    by_unit: dict[int, list[Bill]] = {}
    paid = select(Bill).where(Bill.paid_at.is_not(None)).order_by(Bill.unit_id, Bill.period, Bill.item)
    for bill in store.session.scalars(paid).unique():
        if bill.unit_id not in skip:
            by_unit.setdefault(bill.unit_id, []).append(bill)
    for bills in by_unit.values():
        habit = rng.choices(("on_time", "late", "reminded"), (78, 14, 8))[0]
        for period in sorted({b.period for b in bills}):
            month = [b for b in bills if b.period == period]
            _pay_month(store, month, habit if rng.random() < 0.8 else "on_time", now, rng)


def _pay_month(store: Store, bills: list[Bill], habit: str, now: datetime, rng: random.Random) -> None:
    due = bills[0].due_date
    if habit == "on_time":
        paid = _at(due - timedelta(days=rng.randint(0, 17)), rng.randint(8, 21))
    elif habit == "late":
        paid = _at(due + timedelta(days=rng.randint(1, DEFAULTS.arrears_first_days - 1)), rng.randint(8, 21))
    else:
        call = _at(due + timedelta(days=DEFAULTS.arrears_first_days), 10)
        paid = call + timedelta(days=rng.randint(1, 12), hours=rng.randint(0, 8))
        if call < now:
            _reminder_call(store, bills[0].unit, due, call)
    if paid >= now:
        paid = _at(due - timedelta(days=2), 10)  # the rest of the story has not happened yet
    for bill in bills:
        bill.paid_at = paid


def _reminder_call(store: Store, unit: Unit, since: date, at: datetime) -> None:
    """The butler's call task the arrears sweep writes for a unit nobody can reach online."""
    store.session.add(
        OutboxMessage(
            created_at=at,
            due_at=at,
            channel="staff",
            recipient=STAFF_RECIPIENT,
            kind="arrears_call",
            text=f"【催缴电话】{unit.label} 物业费等逾期未缴，请管家电话提醒。",
            payload={"unit_id": unit.id},
            dedupe_key=f"arrears:{unit.id}:{since:%Y%m%d}:3",
            status="sent",
            attempts=1,
            sent_at=at,
        )
    )
