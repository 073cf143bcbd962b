"""缴费查询: answered from the bills on record for the resident's own unit only."""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal

from data.models import Bill
from flows.dialog.slots import named_unit, spot_unit
from flows.dialog.spec import Aside, FlowSpec
from flows.dialog.turn import Turn
from flows.intents.contact import office, payment
from nlu.normalize import to_simplified
from nlu.types import Period

FEE_NAMES = {
    "management": "物业费",
    "parking": "停车费",
    "water": "水费",
    "electricity": "电费",
    "shared": "公摊水电",
    "decoration_waste": "装修垃圾清运费",
    "repair": "维修费",
}
HOW_TO_PAY = (
    "怎么交",
    "怎么缴",
    "如何交",
    "如何缴",
    "在哪交",
    "在哪缴",
    "缴费方式",
    "交费方式",
    "怎么付",
    "哪里交",
)
# A payment dispute in any wording: paid (交了, 已经缴过, 付过的) and yet shown or chased as owing.
PAID_SAID = re.compile(r"(?:交|缴|付)(?:过|了|完|咗|的)|已经?(?:交|缴|付)|(?:交|缴|付)(?:钱|费)了")
# Sure it was paid: "明明交过了", "不可能 九月份的交过了", "早就交了".
PAID_FOR_SURE = re.compile(
    r"(?:明明|早就|早都|肯定|确实|真的)(?:已经)?(?:交|缴|付)|不可能.{0,12}(?:交|缴|付)(?:过|了)"
)
STILL_OWED = re.compile(
    r"(?:怎么|为什么|为啥|咋|怎会|点解|还|仲|仍|依然|又|竟然).{0,8}(?:显示|欠|没交|未交|没缴|未缴|催|提醒|通知|要交|让交)"
)
WHY = ("单价", "怎么算", "为什么这么贵", "这么贵", "标准", "收费依据", "多少钱一平")


def is_payment_dispute(text: str) -> bool:
    """ "我上礼拜就在公众号交了啊 怎么还显示没交": paid, and still shown as owing."""
    text = to_simplified(text)
    if PAID_FOR_SURE.search(text):
        return True
    said = PAID_SAID.search(text)
    return said is not None and STILL_OWED.search(text, said.start()) is not None


def answer_fee_query(turn: Turn) -> None:
    unit = turn.unit
    if unit is None:  # the engine binds first; this is a guard for direct callers
        turn.say("为保护业主信息，查询费用前需要先绑定房屋。")
        return
    asked = spot_unit(turn, {})
    if asked is not None and named_unit(turn, asked) != unit:
        turn.say(f"为保护业主隐私，只能查询您绑定的房屋（{unit.label}）的费用，请您谅解。")
        return
    text = turn.text
    if any(word in text for word in HOW_TO_PAY):
        turn.say(f"缴费方式：{payment(turn.compound)}。如有疑问请致电{office(turn.compound)}。")
        return
    if any(word in text for word in WHY):
        area = unit.area_m2 or Decimal(0)
        rate = turn.settings.management_fee_per_m2
        turn.say(
            f"物业费按建筑面积计收：{rate} 元/平方米/月。您家 {unit.label} 面积 {area} 平方米，"
            f"每月物业费 {(area * rate).quantize(Decimal('0.01'))} 元。"
            "这种情况，公司的收费标准是经物价部门备案的，"
            "如您还有疑问，欢迎到物业服务中心查看收费公示。"
        )
        return
    turn.say(_bill_summary(turn, turn.store.units.bills(unit.id)))
    if turn.resident is not None and turn.resident.role == "tenant":
        turn.say("温馨提示：按规定物业费由业主承担；如您与业主约定由您缴纳，也可以直接缴费。")


def _bill_summary(turn: Turn, bills: list[Bill]) -> str:
    item = turn.parse.value("fee_item")
    period = turn.parse.value("period")
    chosen = [b for b in bills if (item is None or b.item == item) and _in_period(b, period)]
    label = (FEE_NAMES.get(item, "") if item else "") or "费用"
    where = turn.unit.label if turn.unit is not None else ""
    if not chosen:
        return f"没有查到{where}{_period_words(period)}的{label}账单。如有疑问请致电{office(turn.compound)}。"
    owed = [b for b in chosen if b.outstanding > 0]
    if not owed:
        last = max(chosen, key=lambda b: b.period)
        return (
            f"您家 {where}{_period_words(period)}的{label}都已缴清，谢谢您的支持！"
            f"最近一期（{last.period}）已于 {last.paid_at:%Y-%m-%d} 缴纳。"
            if last.paid_at
            else f"您家 {where}{_period_words(period)}的{label}都已缴清，谢谢您的支持！"
        )
    return _arrears_text(turn, where, owed) + _others_owed(bills, chosen)


def _others_owed(bills: list[Bill], chosen: list[Bill]) -> str:
    """Asked about one item: say what else is owed, so a later full list does not surprise."""
    others = [b for b in bills if b.outstanding > 0 and b not in chosen]
    if not others:
        return ""
    names = "、".join(dict.fromkeys(FEE_NAMES.get(b.item, b.item) for b in others))
    total = sum((b.outstanding for b in others), Decimal(0))
    grand = total + sum((b.outstanding for b in chosen), Decimal(0))
    return f"\n（以上只是您问的这一项。另有{names}待缴 {total} 元，全部待缴合计 {grand} 元。）"


def _arrears_text(turn: Turn, where: str, owed: list[Bill]) -> str:
    by_item: dict[str, list[Bill]] = defaultdict(list)
    for bill in owed:
        by_item[bill.item].append(bill)
    lines = [f"您好，您家 {where} 目前待缴费用如下："]
    for item, rows in by_item.items():
        months = "、".join(b.period for b in rows)
        total = sum((b.outstanding for b in rows), Decimal(0))
        lines.append(f"· {FEE_NAMES.get(item, item)}：{total} 元（{months}）")
    grand = sum((b.outstanding for b in owed), Decimal(0))
    earliest = min(b.due_date for b in owed)
    lines.append(f"合计 {grand} 元，最早一笔应于 {earliest:%Y-%m-%d} 前缴纳。")
    lines.append(
        f"缴费方式：{turn.compound.payment_methods}。如已缴费，可能还在入账中，请回复“已缴费”，我们帮您核对。"
    )
    return "\n".join(lines)


def _in_period(bill: Bill, period: object) -> bool:
    return not isinstance(period, Period) or period.contains(bill.period)


def _period_words(period: object) -> str:
    if not isinstance(period, Period):
        return ""
    return f" {period.first}" if period.first == period.last else f" {period.first} 至 {period.last}"


def answer_fees(turn: Turn) -> None:
    """A payment dispute in any wording ("交了怎么还显示欠费") starts the payment check; else the bills."""
    from flows.jobs.reminders import answer_paid  # reminders reads this module's fee names: import when used

    if not answer_paid(turn):
        answer_fee_query(turn)


SPEC = FlowSpec("fee_query", answer=answer_fees, needs_binding=True, aside=Aside.QUESTION, topic="fee_item")
