"""Broadcasts (通知) and care messages (亲情服务).

``create_notice`` is what the CLI (``propbot broadcast``) and the staff group call: a notice to a
building, a range of units or everyone. Outages carry the restoration time; pest control goes out a
day ahead, events a week ahead; festival greetings only to residents who opted in ("订阅节日问候").
One outbox row per chat account, keyed ``notice:<id>:<account>``, so nothing goes twice and a
cancelled notice takes back what has not gone yet.

``answer_outage``: after an outage notice, "怎么停水了?" from those buildings gets the notice, not a
new repair ticket. ``sweep``: birthday greetings (opted in) and a welcome within three days of moving in.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from data.clock import local
from data.models import ChannelAccount, Compound, Unit
from data.scheduling import Notice, Subscription
from data.store import Store
from flows.dialog.turn import Turn
from flows.domain.errors import ActionError
from flows.domain.outbox import enqueue_once, taken
from flows.domain.quiet import next_allowed
from flows.domain.tickets import format_time
from flows.intents.contact import office, office_details
from flows.jobs.sweeps import Action

KINDS = ("outage", "pest", "event", "greeting", "general")
UTILITIES = {
    "water": ("停水", "供水", "请提前做好储水准备。"),
    "power": ("停电", "供电", "停电期间电梯将暂停运行，请提前做好准备，注意安全。"),
    "gas": ("停气", "供气", "请关闭家中燃气阀门，恢复供气后如有异常请及时联系我们。"),
}
ASKING = {
    "water": re.compile(r"停水|没水|没有水|断水|不来水|没来水|水停了|水怎么停|水压.*低|来水"),
    "power": re.compile(r"停电|没电|没有电|断电|电停了|来电"),
    "gas": re.compile(r"停气|没气|没有气|断气|没燃气|燃气.*停|天然气.*停|来气"),
}
AHEAD = {"pest": timedelta(days=1), "event": timedelta(days=7)}  # notice this long before it starts
OUTAGE_LEAD = timedelta(hours=2)  # questions this long before the outage already get the notice
OUTAGE_TAIL = timedelta(hours=3)  # ... and this long after the announced restoration
GREETINGS = "greetings"
WELCOME_DAYS = 3


class NoticeError(ActionError):
    """A notice that cannot be sent as asked (shown to staff as is)."""


@dataclass(frozen=True)
class UnitRange:
    """Building, optional 单元, and an inclusive room range ("1501" to "1802")."""

    building: int
    unit_no: int | None
    first: str
    last: str

    @classmethod
    def parse(cls, raw: str) -> UnitRange:
        """``3-2-1501:1802``, ``3-1501:1802`` (no 单元), or a single ``3-2-1502``."""
        match = re.fullmatch(r"(\d+)-(?:(\d+)-)?(\d+)(?::(\d+))?", raw.strip())
        if match is None:
            raise NoticeError(f"单元范围格式不对：{raw}（例：3-2-1501:1802）")
        building, unit_no, first, last = match.groups()
        return cls(int(building), int(unit_no) if unit_no else None, first, last or first)

    def contains(self, building: int, unit_no: int | None, room: str) -> bool:
        if building != self.building or self.unit_no is not None and unit_no != self.unit_no:
            return False
        return _room_key(self.first) <= _room_key(room) <= _room_key(self.last)

    @property
    def label(self) -> str:
        unit = f"{self.unit_no}单元" if self.unit_no is not None else ""
        rooms = self.first if self.first == self.last else f"{self.first}-{self.last}"
        return f"{self.building}栋{unit}{rooms}"


@dataclass(frozen=True)
class NoticeRequest:
    kind: str  # outage | pest | event | greeting | general
    text: str  # what staff wrote: the reason, the details, the greeting
    title: str = ""
    utility: str | None = None  # outages: water | power | gas
    buildings: tuple[int, ...] = ()
    units: tuple[UnitRange, ...] = ()
    starts_at: datetime | None = None
    ends_at: datetime | None = None  # outages: the restoration time
    send_at: datetime | None = None  # default: now, or a day / a week ahead of pest control / events
    urgent: bool = False  # goes out even in quiet hours (an outage happening now)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def everyone(self) -> bool:
        return not self.buildings and not self.units

    def audience(self) -> dict[str, object]:
        return {
            "buildings": list(self.buildings),
            "units": [[u.building, u.unit_no, u.first, u.last] for u in self.units],
        }


# -- creating --------------------------------------------------------------------------------------
def create_notice(
    store: Store, compound: Compound, request: NoticeRequest, now: datetime, actor: str
) -> Notice:
    """Record the notice and put one message per recipient account in the outbox."""
    _validate(request)
    title, text = compose(compound, request)
    send_at = _send_at(request, now)
    notice = Notice(
        compound_id=compound.id,
        kind=request.kind,
        utility=request.utility,
        title=title,
        text=text,
        audience=request.audience(),
        starts_at=request.starts_at,
        ends_at=request.ends_at,
        send_at=send_at,
        urgent=request.urgent,
        created_at=now,
        created_by=actor,
        recipients=0,
    )
    store.schedules.add_notice(notice)
    accounts = audience_accounts(store, compound, notice)
    due = send_at if request.urgent else next_allowed(store.settings(compound), send_at)
    kind = "greeting" if request.kind == "greeting" else "notice"
    fields = {
        "title": title,
        "time": format_time(request.starts_at) if request.starts_at else "",
        "where": where_words(request),
    }
    for account in accounts:
        enqueue_once(
            store,
            f"notice:{notice.id}:{account.id}",
            account.channel,
            account.external_id,
            kind,
            text,
            now,
            due_at=due,
            urgent=request.urgent,
            payload={"notice": notice.id, "template": "notice", "fields": fields},
        )
    notice.recipients = len(accounts)
    return notice


def _validate(request: NoticeRequest) -> None:
    if request.kind not in KINDS:
        raise NoticeError(f"通知类型应为 {'/'.join(KINDS)}，不是 {request.kind}")
    if request.kind == "outage" and request.utility not in UTILITIES:
        raise NoticeError("停水停电通知需要说明是 water（水）、power（电）还是 gas（燃气）")
    if request.kind in ("outage", "pest", "event") and request.starts_at is None:
        raise NoticeError("请给出开始时间")
    if request.starts_at and request.ends_at and request.ends_at <= request.starts_at:
        raise NoticeError("结束（恢复）时间应晚于开始时间")
    if not request.text.strip() and request.kind in ("greeting", "general"):
        raise NoticeError("通知内容不能为空")


def _send_at(request: NoticeRequest, now: datetime) -> datetime:
    if request.send_at is not None:
        return max(request.send_at, now)
    ahead = AHEAD.get(request.kind)
    if ahead is not None and request.starts_at is not None:
        return max(request.starts_at - ahead, now)
    return now


def compose(compound: Compound, request: NoticeRequest) -> tuple[str, str]:
    """The title and the words residents get."""
    where = where_words(request)
    start = format_time(request.starts_at) if request.starts_at else ""
    phone = f"如有疑问请致电{office(compound)}。"
    if request.kind == "outage":
        stop, supply, advice = UTILITIES[request.utility or "water"]
        back = (
            f"预计 {format_time(request.ends_at)} 恢复{supply}"
            if request.ends_at
            else f"恢复{supply}时间另行通知"
        )
        reason = f"因{request.text.strip()}，" if request.text.strip() else ""
        title = request.title or f"{stop}通知"
        return title, (
            f"【{title}】尊敬的业主/住户：{reason}{where}将于 {start} 起{stop}，{back}。{advice}"
            f"不便之处请您见谅，感谢您的理解与支持！{phone}"
        )
    if request.kind == "pest":
        title = request.title or "消杀通知"
        what = request.text.strip() or "除四害消杀作业"
        return title, (
            f"【{title}】尊敬的业主/住户：定于 {start} 在{where}进行{what}。届时请关好门窗，照看好"
            f"儿童和宠物，避免接触药物。不便之处请您见谅。{phone}"
        )
    if request.kind == "event":
        title = request.title or "社区活动"
        return title, f"【活动通知】{title}：{start}，{request.text.strip()}。欢迎您和家人参加！{phone}"
    title = request.title or ("节日问候" if request.kind == "greeting" else "通知")
    return title, f"【{title}】{request.text.strip()}"


def where_words(request: NoticeRequest) -> str:
    if request.everyone:
        return "本小区"
    parts = [f"{b}栋" for b in request.buildings] + [u.label for u in request.units]
    return "、".join(parts)


def audience_accounts(store: Store, compound: Compound, notice: Notice) -> list[ChannelAccount]:
    """Bound chat accounts in the notice's buildings / unit ranges (greetings: opted-in only)."""
    buildings = set(notice.audience.get("buildings") or [])
    ranges = [UnitRange(b, u, first, last) for b, u, first, last in notice.audience.get("units") or []]
    addressees = store.schedules.addressees(
        compound.id,
        buildings if buildings and not ranges else None,
        GREETINGS if notice.kind == "greeting" else None,
    )
    return [a.account for a in addressees if _reaches(buildings, ranges, a.building, a.unit_no, a.room)]


def _reaches(
    buildings: set[int], ranges: Sequence[UnitRange], building: int, unit_no: int | None, room: str
) -> bool:
    if not buildings and not ranges:
        return True
    return building in buildings or any(r.contains(building, unit_no, room) for r in ranges)


def cancel_notice(store: Store, notice_id: int, now: datetime, actor: str) -> int:
    """Cancel a notice; the number of messages taken back (those not sent yet)."""
    notice = store.schedules.notice(notice_id)
    if notice is None:
        raise NoticeError(f"没有编号为 {notice_id} 的通知")
    notice.cancelled_at = now
    return store.schedules.take_back_notice(notice_id, f"通知已由 {actor} 取消")


def notices(store: Store, compound: Compound, limit: int = 20) -> Sequence[Notice]:
    return store.schedules.notices(compound.id, limit)


# -- answers from residents --------------------------------------------------------------------------
def answer_outage(turn: Turn) -> bool:
    """ "怎么停水了?" during an announced outage: the notice, not a repair ticket."""
    asked = [utility for utility, pattern in ASKING.items() if pattern.search(turn.text)]
    if not asked or len(turn.text) > 60:
        return False
    notice = active_outage(turn.store, turn.compound, asked, turn.unit, turn.now)
    if notice is None:
        return False
    stop, supply, _ = UTILITIES[notice.utility or "water"]
    back = (
        f"预计 {format_time(notice.ends_at)} 恢复{supply}"
        if notice.ends_at
        else f"恢复{supply}时间会另行通知"
    )
    turn.say(f"您好，这是小区计划内的{stop}，{back}，不便之处请您见谅。\n通知原文：{notice.text}")
    turn.say(
        "如果您家的情况和通知不一样（比如通知范围外、或已过恢复时间仍未恢复），请直接告诉我，"
        "我马上安排师傅查看。",
        "我要报修",
    )
    return True


def active_outage(
    store: Store, compound: Compound, utilities: Sequence[str], unit: Unit | None, now: datetime
) -> Notice | None:
    candidates = store.schedules.outages(compound.id, utilities, now + OUTAGE_LEAD, now)
    for notice in candidates:
        over = notice.ends_at is not None and now > notice.ends_at + OUTAGE_TAIL
        if not over and _notice_covers(notice, unit):
            return notice
    return None


def _notice_covers(notice: Notice, unit: Unit | None) -> bool:
    buildings = set(notice.audience.get("buildings") or [])
    ranges = [UnitRange(b, u, first, last) for b, u, first, last in notice.audience.get("units") or []]
    if not buildings and not ranges:
        return True
    if unit is None:
        return False  # an unbound account: we do not know where they live
    return _reaches(buildings, ranges, unit.building.number, unit.unit_no, unit.room)


SUBSCRIBE = re.compile(r"^(?:我要|我想)?(?:订阅|开通|接收|要)(?:节日)?(?:问候|祝福)")
UNSUBSCRIBE = re.compile(r"^(?:退订|取消订阅|取消|不要|不用|别再?发?)(?:节日)?(?:问候|祝福)|^退订$")


def answer_subscription(turn: Turn) -> bool:
    text = turn.text.strip(" 。.!！")
    schedules = turn.store.schedules
    if UNSUBSCRIBE.match(text):
        found = schedules.subscription(turn.account.id, GREETINGS)
        if found is not None:
            schedules.remove_subscription(found)
        turn.say("好的，已为您取消节日问候。缴费、维修等服务消息不受影响。")
        return True
    if SUBSCRIBE.match(text):
        if schedules.subscription(turn.account.id, GREETINGS) is None:
            schedules.add_subscription(
                Subscription(account_id=turn.account.id, topic=GREETINGS, created_at=turn.now)
            )
        turn.say("好的，已为您开通节日问候，逢年过节我们会给您送上祝福。回复“退订节日问候”可随时取消。")
        return True
    return False


# -- the care sweep ------------------------------------------------------------------------------------
def sweep(store: Store, now: datetime) -> list[Action]:
    """Birthday greetings (opted in, from 09:00) and the welcome for new residents."""
    actions: list[Action] = []
    for compound in store.units.compounds():
        settings = store.settings(compound)
        actions += _welcomes(store, compound, now)
        if local(now).hour >= 9 and not settings.in_quiet_hours(local(now).time()):
            actions += _birthdays(store, compound, now)
    return actions


def _welcomes(store: Store, compound: Compound, now: datetime) -> list[Action]:
    today = local(now).date()
    rows = store.schedules.residents_moved_in(compound.id, today - timedelta(days=WELCOME_DAYS), today)
    keys = [f"welcome:{account.id}" for account, _ in rows]
    done = taken(store, keys)
    settings = store.settings(compound)
    actions = []
    for (account, resident), key in zip(rows, keys, strict=True):
        if key in done:
            continue
        text = (
            f"{resident.name}您好，欢迎入住{compound.name}！我是物业客服，报修、投诉、缴费查询、预约服务都可以"
            f"直接发消息给我。{office_details(compound)}"
        )

        def apply(account: ChannelAccount = account, key: str = key, text: str = text) -> None:
            enqueue_once(
                store,
                key,
                account.channel,
                account.external_id,
                "welcome",
                text,
                now,
                due_at=next_allowed(settings, now),
            )

        actions.append(
            Action(
                "notices",
                "welcome",
                key,
                f"欢迎新住户 {resident.unit.label}",
                apply,
                unit=resident.unit.label,
            )
        )
    return actions


def _born_on(birthday: date | None, day: date) -> bool:
    return birthday is not None and (birthday.month, birthday.day) == (day.month, day.day)


def _birthdays(store: Store, compound: Compound, now: datetime) -> list[Action]:
    today = local(now).date()
    rows = store.schedules.subscribers_with_birthday(compound.id, GREETINGS)
    born_today = [(a, r) for a, r in rows if _born_on(r.birthday, today)]
    keys = [f"birthday:{account.id}:{today.year}" for account, _ in born_today]
    done = taken(store, keys)
    actions = []
    for (account, resident), key in zip(born_today, keys, strict=True):
        if key in done:
            continue
        text = (
            f"{resident.name}您好！今天是您的生日，{compound.name}物业全体员工祝您生日快乐，"
            "身体健康，万事如意！"
        )

        def apply(account: ChannelAccount = account, key: str = key, text: str = text) -> None:
            enqueue_once(store, key, account.channel, account.external_id, "greeting", text, now)

        actions.append(
            Action(
                "notices", "birthday", key, f"生日祝福 {resident.unit.label}", apply, unit=resident.unit.label
            )
        )
    return actions


def _room_key(room: str) -> tuple[int, str]:
    digits = re.sub(r"\D", "", room)
    return (int(digits) if digits else 0, room)
