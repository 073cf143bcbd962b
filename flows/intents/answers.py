"""Single-turn answers: greetings, help, enquiries, suggestions, praise, 转人工, out of scope."""

from __future__ import annotations

from data.kinds import TicketKind
from data.models import Ticket
from flows.dialog.spec import Aside, FlowSpec
from flows.dialog.turn import Turn
from flows.domain.tickets import NewTicket, format_time, open_ticket
from flows.intents.contact import emergency_hint

MENU = ("我要报修", "我要投诉", "查询物业费", "预约服务", "查询进度", "转人工")
HELP_WORDS = frozenset(
    {"帮助", "help", "/help", "菜单", "功能", "?", "？", "你能做什么", "你会什么", "怎么用"}
)

# (words asked about, facts of the compound that answer them: (label, attribute)).
ENQUIRY_TOPICS: tuple[tuple[tuple[str, ...], tuple[tuple[str, str], ...]], ...] = (
    (
        ("电话", "联系方式", "号码", "怎么联系"),
        (("物业服务中心电话", "office_phone"), ("24小时值班电话", "duty_phone")),
    ),
    (("几点", "上班", "下班", "时间", "营业", "开门", "办公"), (("物业服务中心办公时间", "office_hours"),)),
    (("地址", "在哪", "位置", "怎么走"), (("物业服务中心地址", "office_address"),)),
    (("缴费", "交费", "付款"), (("缴费方式", "payment_methods"),)),
)


def greet(turn: Turn) -> None:
    name = f"{turn.resident.name}您好" if turn.resident is not None else "您好"
    turn.say(
        f"{name}！我是{turn.compound.name}物业的智能客服，可以帮您报修、投诉、查询缴费、预约服务、查询进度。"
        "请问有什么可以帮您？",
        *MENU,
    )


def help_text(turn: Turn) -> None:
    duty = (turn.compound.duty_phone or "").strip()
    call = f"，或拨打24小时值班电话 {duty}" if duty else ""  # no empty number before it is set
    turn.say(
        "我可以帮您：\n"
        "· 报修：比如“厨房水管漏水了”\n"
        "· 投诉：比如“楼上装修太吵了”\n"
        "· 查询缴费：比如“我家物业费还欠多少”\n"
        "· 预约服务：比如“周六想约个保洁”\n"
        "· 查询进度：比如“我报的修什么时候来”\n"
        "· 转人工：回复“转人工”\n"
        f"紧急情况（着火、燃气泄漏、被困电梯、水管爆裂）请直接告诉我{call}。",
        *MENU,
    )


def thanks(turn: Turn) -> None:
    turn.say("不客气，这是我们应该做的！还有其他需要随时找我。")


def goodbye(turn: Turn) -> None:
    turn.say("好的，祝您生活愉快！有需要随时找我。")


def acknowledge(turn: Turn) -> None:
    turn.say("好的。请问还有什么可以帮您？", *MENU)


def out_of_scope(turn: Turn) -> None:
    turn.say(
        "抱歉，这个问题我暂时回答不了。我可以帮您报修、投诉、查询缴费、预约服务、查询进度；"
        "需要人工服务请回复“转人工”。",
        *MENU,
    )


def enquiry(turn: Turn) -> None:
    asked = [facts for words, facts in ENQUIRY_TOPICS if any(w in turn.text for w in words)]
    known = [answer for facts in asked if (answer := _answer(turn, facts))]
    if asked and len(known) == len(asked):
        turn.say("\n".join(known))
        return
    # Cannot answer (all of it) now: promise a reply time, which becomes a follow-up task for the front
    # desk. Facts the office has not entered yet (an imported compound) are asked the same way.
    ticket = _record(turn, TicketKind.ENQUIRY)
    promise = (
        f"您的问题我已经记下了（单号 {ticket.number}），需要向同事确认后答复您，"
        f"最晚 {format_time(ticket.reply_by)} 前给您回复。"
    )
    turn.say("\n".join([*known, promise]))


def _answer(turn: Turn, facts: tuple[tuple[str, str], ...]) -> str:
    """The facts on file for one topic; "" when none is."""
    found = [(label, str(getattr(turn.compound, name) or "").strip()) for label, name in facts]
    parts = [f"{label}：{value}" for label, value in found if value]
    return "；".join(parts) + "。" if parts else ""


def suggestion(turn: Turn) -> None:
    ticket = _record(turn, TicketKind.SUGGESTION)
    turn.say(f"谢谢您的宝贵建议！已经记录（单号 {ticket.number}），我们会认真研究，有结果会告诉您。")


def praise(turn: Turn) -> None:
    _record(turn, TicketKind.PRAISE)
    turn.say("非常感谢您的肯定！我们会把您的表扬转达给相关同事，继续努力为您做好服务。")


def handoff(turn: Turn, unfinished: str = "") -> None:
    """转人工; ``unfinished``: what a form left open had collected, so nobody asks it all again."""
    ticket = _record(turn, TicketKind.HANDOFF, f"{turn.text}\n{unfinished}" if unfinished else turn.text)
    turn.say(
        f"好的，已为您转接人工客服（单号 {ticket.number}），工作人员会尽快在这里回复您。"
        + (f"办公时间：{hours}。" if (hours := (turn.compound.office_hours or "").strip()) else "")
        + emergency_hint(turn.compound)
    )


def _record(turn: Turn, kind: TicketKind, description: str = "") -> Ticket:
    return open_ticket(
        turn.store,
        turn.compound,
        turn.account,
        NewTicket(
            kind=kind, description=description or turn.text, location=turn.unit.label if turn.unit else ""
        ),
        turn.now,
        turn.actor,
    )


SPECS = (
    FlowSpec("enquiry", answer=enquiry, aside=Aside.QUESTION, ticket=TicketKind.ENQUIRY),
    FlowSpec("human_handoff", answer=handoff, aside=Aside.HANDOFF, ticket=TicketKind.HANDOFF),
    FlowSpec("suggestion", answer=suggestion, ticket=TicketKind.SUGGESTION),
    FlowSpec("praise", answer=praise, ticket=TicketKind.PRAISE),
    FlowSpec("greet", answer=greet, small_talk=True),
    FlowSpec("thanks", answer=thanks, small_talk=True),
    FlowSpec("goodbye", answer=goodbye, small_talk=True),
    FlowSpec("affirm", answer=acknowledge, small_talk=True),
    FlowSpec("deny", answer=acknowledge, small_talk=True),
    FlowSpec("cancel", answer=acknowledge, small_talk=True),
    FlowSpec("out_of_scope", answer=out_of_scope, small_talk=True),
)
