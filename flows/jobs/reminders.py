"""Bill notices and arrears reminders (催缴): factual, polite, lawful, and gentle.

* ``billing_sweep``: on the compound's billing day at ``billing_hour`` (monthly, or in the
  ``billing_months`` when billing twice a year), each unit with unpaid bills of that period gets
  its bill: items, amounts, due date, how to pay. A missed run catches up for ``billing_catchup_days``.
* ``arrears_sweep``: once a bill is ``arrears_first_days`` overdue the unit gets a reminder; a second
  one ``arrears_second_days`` later; then, ``arrears_call_days`` later, a call task for the butler
  (管家) in the staff group. A unit nobody can be reached for online goes straight to the call task.
  The formal written demand after that is offline and not the bot's business.
* Messages never threaten: no word of cutting water, power, gas or heating, of courts or lawyers
  (``FORBIDDEN`` is checked by the tests on every text this module writes).
* "已缴费" makes a reconciliation task for finance and pauses reminders while they check;
  "发工资后再提醒我", "下周再提醒我", "12号再提醒我" snooze to that date.
* Quiet hours: every message is due no earlier than the end of them.
* Bills with a negative or missing amount are left out and reported to staff once.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from data.clock import local
from data.models import Bill, ChannelAccount, Compound
from data.scheduling import PaymentReminder
from data.settings import CompoundSettings
from data.store import Store
from flows.dialog.turn import Turn
from flows.domain.outbox import enqueue_once, staff_once, taken
from flows.domain.quiet import next_allowed
from flows.intents.contact import office, payment
from flows.intents.fee_query import FEE_NAMES, is_payment_dispute
from flows.jobs.sweeps import Action
from nlu.types import TimeSpan

FORBIDDEN = (
    "停水",
    "停电",
    "断水",
    "断电",
    "停气",
    "断气",
    "停暖",
    "断暖",
    "起诉",
    "法院",
    "律师",
    "诉讼",
    "强制",
    "征信",
    "黑名单",
    "后果自负",
    "限期",
)
PAYDAY_WORDS = ("发工资", "发薪", "工资", "开工资", "领工资")
CN_DIGITS = {
    "一": 1,
    "两": 2,
    "二": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}


# -- bill notices --------------------------------------------------------------------------------------
def billing_sweep(store: Store, now: datetime) -> list[Action]:
    actions: list[Action] = []
    for compound in store.units.compounds():
        settings = store.settings(compound)
        actions += _bad_bill_actions(store, compound, now)
        moment = billing_moment(settings, now)
        if moment is None:
            continue
        period = f"{moment:%Y-%m}"
        owed = outstanding(store, compound, period=period)
        accounts = store.units.accounts_by_unit(owed)
        keys = {u: [f"bill:{u}:{period}:{a.id}" for a in accounts.get(u, [])] for u in owed}
        done = taken(store, [k for ks in keys.values() for k in ks])
        for unit_id, bills in owed.items():
            todo = [
                (a, k) for a, k in zip(accounts.get(unit_id, []), keys[unit_id], strict=True) if k not in done
            ]
            if todo:
                actions.append(_bill_notice(store, compound, settings, bills, todo, period, now))
    return actions


def billing_moment(settings: CompoundSettings, now: datetime) -> datetime | None:
    """The latest billing moment at or before ``now``, if it is recent enough to act on."""
    at = local(now)
    months = range(1, 13) if settings.billing_mode != "semiannual" else settings.billing_months
    for back in range(0, 13):
        year, month = at.year, at.month - back
        while month < 1:
            year, month = year - 1, month + 12
        if month not in months:
            continue
        day = min(settings.billing_day, _days_in(year, month))
        moment = at.replace(
            year=year, month=month, day=day, hour=settings.billing_hour, minute=0, second=0, microsecond=0
        )
        if moment > at:
            continue
        return moment if at - moment <= timedelta(days=settings.billing_catchup_days) else None
    return None


def _bill_notice(
    store: Store,
    compound: Compound,
    settings: CompoundSettings,
    bills: list[Bill],
    todo: list[tuple[ChannelAccount, str]],
    period: str,
    now: datetime,
) -> Action:
    unit = bills[0].unit
    total = sum((b.outstanding for b in bills), Decimal(0))
    due = min(b.due_date for b in bills)
    lines = [f"您好！{unit.label} {period} 账单已出："]
    lines += [f"· {FEE_NAMES.get(b.item, b.item)}：{b.outstanding} 元" for b in bills]
    lines.append(f"合计 {total} 元，请于 {due:%Y年%m月%d日} 前缴纳。")
    lines.append(_how_to_pay(compound))
    lines.append("如已缴费请忽略本消息，谢谢您的支持！")
    text = "\n".join(lines)
    fields = {
        "unit": unit.label,
        "period": period,
        "amount": f"{total} 元",
        "due": f"{due:%Y-%m-%d}",
        "items": "、".join(FEE_NAMES.get(b.item, b.item) for b in bills),
    }

    def apply() -> None:
        for account, key in todo:
            enqueue_once(
                store,
                key,
                account.channel,
                account.external_id,
                "bill_notice",
                text,
                now,
                due_at=next_allowed(settings, now),
                payload={"template": "bill_notice", "fields": fields},
                checked=True,  # looked up in bulk by ``billing_sweep``
            )

    return Action(
        "billing",
        "bill_notice",
        todo[0][1],
        f"{unit.label} {period} 账单通知 {total} 元",
        apply,
        unit=unit.label,
    )


# -- arrears -----------------------------------------------------------------------------------------
@dataclass
class _Case:
    unit_id: int
    since: date  # oldest unpaid due date
    state: PaymentReminder | None


def arrears_sweep(store: Store, now: datetime) -> list[Action]:
    actions: list[Action] = []
    today = local(now).date()
    for compound in store.units.compounds():
        settings = store.settings(compound)
        cases = _cases(store, compound, today)
        due_cases = [(c, step) for c in cases if (step := _next_step(c, settings, now, today)) is not None]
        owed = outstanding(store, compound, units=[c.unit_id for c, _ in due_cases], before=today)
        accounts = store.units.accounts_by_unit(owed)
        for case, step in due_cases:
            if case.unit_id in owed:
                actions.append(
                    _arrears_action(
                        store,
                        compound,
                        settings,
                        case,
                        step,
                        owed[case.unit_id],
                        accounts.get(case.unit_id, []),
                        now,
                    )
                )
        actions += _reset_actions(store, compound, now)
    return actions


def _cases(store: Store, compound: Compound, today: date) -> list[_Case]:
    overdue = store.units.overdue_since(compound.id, today)
    states = store.schedules.reminder_states(overdue)
    return [_Case(unit_id, since, states.get(unit_id)) for unit_id, since in overdue.items()]


def _next_step(case: _Case, settings: CompoundSettings, now: datetime, today: date) -> int | None:
    """1 first reminder, 2 second, 3 call task; None when nothing is due."""
    state = case.state
    if state is not None and state.since < case.since:
        state = None  # the arrears of the last round were paid: this is a new round
    if state is not None and state.snoozed_until is not None and today < state.snoozed_until:
        return None
    if (
        state is not None
        and state.paid_claimed_at is not None
        and now - state.paid_claimed_at < timedelta(days=settings.paid_claim_hold_days)
    ):
        return None
    stage = state.stage if state is not None else 0
    if stage >= 3:
        return None
    woken = (
        state is not None
        and state.snoozed_until is not None
        and (state.last_at is None or local(state.last_at).date() < state.snoozed_until)
    )
    if stage == 0:
        ready = today >= case.since + timedelta(days=settings.arrears_first_days)
    else:
        gap = settings.arrears_second_days if stage == 1 else settings.arrears_call_days
        ready = state is not None and state.last_at is not None and now >= state.last_at + timedelta(days=gap)
    return stage + 1 if ready or woken else None


def _arrears_action(
    store: Store,
    compound: Compound,
    settings: CompoundSettings,
    case: _Case,
    step: int,
    bills: list[Bill],
    accounts: list[ChannelAccount],
    now: datetime,
) -> Action:
    unit = bills[0].unit
    since = case.since
    total = sum((b.outstanding for b in bills), Decimal(0))
    call = step == 3 or not accounts
    key = f"arrears:{unit.id}:{since:%Y%m%d}:{3 if call else step}"
    text = (
        arrears_call_text(unit.label, bills, total, bool(accounts))
        if call
        else arrears_text(compound, unit.label, bills, total, second=step == 2)
    )

    def apply() -> None:
        state = reminder_state(store, unit.id, since, now)
        if call:
            staff_once(store, key, "arrears_call", text, now)
        else:
            fields = {
                "unit": unit.label,
                "amount": f"{total} 元",
                "items": items_line(bills),
                "remark": _how_to_pay(compound),
            }
            for account in accounts:
                enqueue_once(
                    store,
                    f"{key}:{account.id}",
                    account.channel,
                    account.external_id,
                    "reminder",
                    text,
                    now,
                    due_at=next_allowed(settings, now),
                    payload={"template": "arrears", "fields": fields},
                )
        state.stage, state.last_at, state.updated_at = 3 if call else step, now, now
        state.snoozed_until = None

    words = {1: "第一次缴费提醒", 2: "第二次缴费提醒", 3: "转管家电话沟通"}[3 if call else step]
    if call and step < 3:
        words += "（无线上联系方式）"
    return Action(
        "arrears",
        "arrears_call" if call else "reminder",
        key,
        f"{unit.label} 待缴 {total} 元：{words}",
        apply,
        unit=unit.label,
    )


def arrears_text(compound: Compound, label: str, bills: Sequence[Bill], total: Decimal, second: bool) -> str:
    head = "您好，再次温馨提示" if second else "您好，温馨提示"
    lines = [f"{head}：{label} 以下费用尚未缴纳："]
    lines += _item_lines(bills)
    lines.append(f"合计 {total} 元。")
    lines.append(_how_to_pay(compound))
    lines.append(
        "如您已缴费，请回复“已缴费”，我们请财务帮您核对；如需晚些缴纳，可以回复“发工资后再提醒我”。"
        "感谢您的理解与支持！"
    )
    return "\n".join(lines)


def arrears_call_text(label: str, bills: Sequence[Bill], total: Decimal, reachable: bool) -> str:
    why = "两次线上提醒后仍有待缴费用" if reachable else "没有可联系的线上账号，无法发送缴费提醒"
    return (
        f"【催缴沟通】{label} {why}，合计 {total} 元（{items_line(bills)}）。"
        "请管家电话联系，礼貌说明并了解是否有困难，沟通结果请记录。"
    )


def _reset_actions(store: Store, compound: Compound, now: datetime) -> list[Action]:
    """Units that paid everything: their reminder state goes, so the next arrears start afresh."""
    actions = []
    for state in store.schedules.settled_reminder_states(compound.id):

        def apply(state: PaymentReminder = state) -> None:
            store.schedules.remove_reminder_state(state)

        actions.append(
            Action(
                "arrears",
                "cleared",
                f"cleared:{state.unit_id}:{state.since:%Y%m%d}",
                f"{state.unit.label} 已缴清，结束提醒",
                apply,
                unit=state.unit.label,
            )
        )
    return actions


# -- bad data ----------------------------------------------------------------------------------------
def _bad_bill_actions(store: Store, compound: Compound, now: datetime) -> list[Action]:
    bad = store.units.bad_bills(compound.id)
    done = taken(store, [f"bad_bill:{b.id}" for b in bad])
    actions = []
    for bill in bad:
        key = f"bad_bill:{bill.id}"
        if key in done:
            continue
        text = (
            f"【账单异常】{bill.unit.label} {FEE_NAMES.get(bill.item, bill.item)} {bill.period} 金额为 "
            f"{bill.amount if bill.amount is not None else '空'}，已跳过，不发送缴费通知和提醒，请财务核对。"
        )

        def apply(key: str = key, text: str = text) -> None:
            staff_once(store, key, "bad_bill", text, now)

        actions.append(Action("billing", "bad_bill", key, text, apply, unit=bill.unit.label))
    return actions


# -- answers from residents --------------------------------------------------------------------------
def answer_paid(turn: Turn) -> bool:
    """ "已缴费": a reconciliation task for finance; reminders pause while they check."""
    text = turn.text.strip(" 。.!！~～")
    if turn.unit is None or not (_says_paid(text) or is_payment_dispute(text)):
        return False
    unit = turn.unit
    owed = outstanding(turn.store, None, units=[unit.id]).get(unit.id, [])
    if not owed:
        turn.say(f"查询到您家 {unit.label} 目前没有待缴费用，谢谢您的支持！")
        return True
    total = sum((b.outstanding for b in owed), Decimal(0))
    staff_once(
        turn.store,
        f"paid_claim:{unit.id}:{local(turn.now):%Y%m%d}",
        "reconcile",
        f"【缴费核对】{unit.label} 居民反映已缴费，系统显示仍待缴 {total} 元（{items_line(owed)}）。"
        "请财务核对入账，核对结果请告知居民。",
        turn.now,
    )
    state = reminder_state(turn.store, unit.id, min(b.due_date for b in owed), turn.now)
    state.paid_claimed_at = turn.now
    turn.say(
        "收到，谢谢您！已请财务同事核对入账情况，核对期间不会再给您发缴费提醒。"
        f"如有疑问可致电{office(turn.compound)}。"
    )
    return True


PAID = re.compile(
    r"^(?:我|我们|我家)?都?(?:已经|已|早就|早|刚刚|刚|昨天|今天)?(?:缴|交|付)(?:过|完|了)?(?:费|款|钱)?(?:了|啦|的)?$"
)
PERFECTIVE = re.compile(r"已|过|完|了|啦|早|刚")  # "缴费" alone asks how to pay; "已缴费" says it is done


def _says_paid(text: str) -> bool:
    return len(text) <= 12 and PAID.match(text) is not None and PERFECTIVE.search(text) is not None


SNOOZE = re.compile(r"(?:再|在)(?:提醒|通知|发|说|催)")


def answer_snooze(turn: Turn) -> bool:
    """ "发工资后再提醒我" and the like, while the unit has unpaid bills."""
    text = turn.text
    if not SNOOZE.search(text) or turn.unit is None:
        return False
    owed = outstanding(turn.store, None, units=[turn.unit.id]).get(turn.unit.id, [])
    if not owed:
        return False  # not about bills: let the conversation handle it
    until = snooze_date(text, turn.now, turn.settings, turn.parse.value("datetime"))
    snooze_reminders(turn.store, turn.unit.id, owed, until, turn.now)
    turn.say(f"好的，没问题！我们会在 {until.month}月{until.day}日 再提醒您。感谢您的理解与支持！")
    return True


def snooze_reminders(store: Store, unit_id: int, owed: Sequence[Bill], until: date, now: datetime) -> None:
    """No reminder for the unit's arrears (``owed``) before ``until``."""
    state = reminder_state(store, unit_id, min(b.due_date for b in owed), now)
    state.snoozed_until = until
    state.updated_at = now


def snooze_date(text: str, now: datetime, settings: CompoundSettings, span: object = None) -> date:
    """The day a snoozed reminder comes back, at most ``snooze_max_days`` away."""
    today = local(now).date()
    found = _snooze_words(text, today, settings) or _span_date(span, today) or today + timedelta(days=7)
    return min(max(found, today + timedelta(days=1)), today + timedelta(days=settings.snooze_max_days))


def _snooze_words(text: str, today: date, settings: CompoundSettings) -> date | None:
    if any(word in text for word in PAYDAY_WORDS):
        return _next_day_of_month(today, settings.payday + 1)
    if "下周" in text or "下星期" in text or "下礼拜" in text:
        return today + timedelta(days=7 - today.weekday())
    if "下个月" in text or "下月" in text:
        return _next_day_of_month(today, 1)
    if "月底" in text:
        last = today.replace(day=_days_in(today.year, today.month))
        return last if last > today else _next_day_of_month(today, 28)
    days = re.search(
        r"(\d+|[一两二三四五六七八九十])\s*天(?:以?后|之后)|过(\d+|[一两二三四五六七八九十])天", text
    )
    if days:
        raw = days.group(1) or days.group(2)
        count = int(raw) if raw.isdigit() else CN_DIGITS[raw]  # "99999999天以后" must not overflow the date:
        return today + timedelta(days=min(count, settings.snooze_max_days + 1))  # snooze_date caps it
    if "过几天" in text or "过两天" in text:
        return today + timedelta(days=3)
    day = re.search(r"(\d{1,2})\s*[号日]", text)
    if day and 1 <= int(day.group(1)) <= 31:
        return _next_day_of_month(today, int(day.group(1)))
    return None


def _span_date(span: object, today: date) -> date | None:
    if isinstance(span, TimeSpan):
        found = local(span.start).date()
        return found if found > today else None
    return None


# -- shared look-ups -----------------------------------------------------------------------------------
def outstanding(
    store: Store,
    compound: Compound | None,
    *,
    period: str | None = None,
    units: Iterable[int] | None = None,
    before: date | None = None,
) -> dict[int, list[Bill]]:
    """Unpaid bills with a positive amount, by unit (oldest first)."""
    compound_id = compound.id if compound is not None else None
    return store.units.unpaid_bills(compound_id, period=period, units=units, due_before=before)


def reminder_state(store: Store, unit_id: int, since: date, now: datetime) -> PaymentReminder:
    state = store.schedules.reminder_state(unit_id)
    if state is None:
        state = PaymentReminder(unit_id=unit_id, stage=0, since=since, updated_at=now)
        store.schedules.add_reminder_state(state)
    elif state.since < since:  # last round's arrears were paid: start again
        state.stage, state.since, state.last_at = 0, since, None
        state.snoozed_until = state.paid_claimed_at = None
    state.updated_at = now
    return state


def _item_lines(bills: Sequence[Bill]) -> list[str]:
    by_item: dict[str, list[Bill]] = defaultdict(list)
    for bill in bills:
        by_item[bill.item].append(bill)
    return [
        f"· {FEE_NAMES.get(item, item)}：{'、'.join(b.period for b in rows)}，共 "
        f"{sum((b.outstanding for b in rows), Decimal(0))} 元"
        for item, rows in by_item.items()
    ]


def items_line(bills: Sequence[Bill]) -> str:
    return "；".join(line.lstrip("· ") for line in _item_lines(bills))


def _how_to_pay(compound: Compound) -> str:
    return f"缴费方式：{payment(compound)}。如有疑问请咨询{office(compound)}" + (
        f"（{hours}）。" if (hours := (compound.office_hours or "").strip()) else "。"
    )


def _days_in(year: int, month: int) -> int:
    following = date(year + month // 12, month % 12 + 1, 1)
    return (following - timedelta(days=1)).day


def _next_day_of_month(today: date, day: int) -> date:
    """The next date (after today) falling on ``day`` of a month (clamped to short months)."""
    year, month = today.year, today.month
    for _ in range(3):
        candidate = date(year, month, min(day, _days_in(year, month)))
        if candidate > today:
            return candidate
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return today + timedelta(days=30)
