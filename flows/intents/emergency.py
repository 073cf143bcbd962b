"""紧急: no dialog. The duty phone at once, an urgent ticket, the duty staff paged."""

from __future__ import annotations

from datetime import timedelta

from data.kinds import EventKind, TicketKind
from data.models import Ticket
from flows.dialog.spec import FlowSpec
from flows.dialog.turn import Turn
from flows.domain.tickets import NewTicket, merge_repeat, notify_staff, open_ticket
from flows.intents.contact import emergency_call
from nlu.emergency import find_cues
from nlu.entities import extract
from nlu.normalize import normalize

# What to do first, by what the message mentions; first match wins.
ADVICE: tuple[tuple[tuple[str, ...], str], ...] = (
    (("火", "烟", "烧"), "如有明火请立即拨打 119，用湿毛巾捂住口鼻，走楼梯撤离，不要乘坐电梯。"),
    (("煤气", "燃气", "天然气"), "请不要开关任何电器、不要点火，立即开窗通风，关闭燃气总阀，尽快离开房间。"),
    (
        ("困", "关在电梯", "电梯里出不来", "卡在电梯"),
        "请保持冷静，按电梯内的警铃或对讲，不要强行扒门，救援人员马上就到。",
    ),
    (
        ("晕", "昏迷", "受伤", "急救", "不省人事", "流血"),
        "请立即拨打 120 急救电话，我们的值班人员也会马上赶到协助。",
    ),
    (("小偷", "撬", "盗", "抢"), "请注意自身安全，不要与对方正面冲突，立即拨打 110 报警。"),
    (("水", "淹", "爆"), "请先关闭家中总水阀，切断相关电源，把贵重物品移到高处，注意防滑。"),
)
REPEAT_WINDOW = timedelta(minutes=30)
# Hazards that are one matter when reported together (the smoke of a fire is that fire).
SAME_HAZARD = {"smoke": "fire"}
GENERIC = frozenset({"help", "unknown"})  # 救命, or a classifier's emergency: no hazard named
UNKNOWN_PLACE = "未绑定房屋，需电话确认位置"
# An emergency this recent, reported before binding, gets the flat once the account binds.
LOCATE_WITHIN = timedelta(hours=6)


def handle_emergency(turn: Turn) -> None:
    call = emergency_call(turn.compound)  # the duty phone; without one, never an empty number
    advice = next((tip for words, tip in ADVICE if any(w in turn.text for w in words)), "")
    turn.say(f"【紧急】请您注意安全！我们已通知值班人员马上处理。\n{call}\n{advice}".strip())
    earlier = _open_emergency(turn)
    if earlier is not None:
        merge_repeat(turn.store, earlier, turn.text, turn.now, turn.actor, turn.inbound.photos)
        return
    where = turn.unit.label if turn.unit is not None else UNKNOWN_PLACE
    open_ticket(
        turn.store,
        turn.compound,
        turn.account,
        NewTicket(
            kind=TicketKind.EMERGENCY,
            description=turn.text,
            category=turn.parse.value("category"),
            area=turn.parse.value("area"),
            location=where,
            contact_phone=turn.resident.phone if turn.resident is not None else turn.parse.value("phone"),
            photos=turn.inbound.photos,
            urgent=True,
        ),
        turn.now,
        turn.actor,
    )


def _open_emergency(turn: Turn) -> Ticket | None:
    """The same emergency reported again by this account in the last half hour: add to it and page
    again, no new ticket. Only the same hazard at the same place is the same emergency: a gas leak at
    home while a stairwell burns is a second emergency with its own ticket, time limit and page."""
    hazard, place = hazards(turn.text), place_of(turn.text)
    for earlier in turn.store.tickets.recent_open_of_account(
        turn.account.id, TicketKind.EMERGENCY, turn.now - REPEAT_WINDOW
    ):
        if _same_hazard(hazard, hazards(earlier.description)) and place in (
            None,
            place_of(earlier.description),
        ):
            return earlier
    return None


def hazards(text: str) -> frozenset[str]:
    """The kinds of danger a report names (fire, gas, lift, flood, ...), or {"unknown"}."""
    kinds = {SAME_HAZARD.get(cue.kind, cue.kind) for cue in find_cues(normalize(text)) if not cue.defused}
    return frozenset(kinds) or frozenset({"unknown"})


def place_of(text: str) -> str | None:
    """Where a report puts the danger: a common area it names, a flat it names, "home" for 家里,
    else None (not said)."""
    for entity in extract(text):
        if entity.type == "common_area":
            return str(entity.value)
        if entity.type == "unit":
            return str(entity.value.label())
        if entity.type == "area" and entity.value == "in_home":
            return "home"
    return None


def _same_hazard(new: frozenset[str], earlier: frozenset[str]) -> bool:
    """A report that names no hazard ("快来人啊") adds to the last one; named hazards must meet."""
    return bool(new & earlier) or new <= GENERIC or earlier <= GENERIC


def locate_after_binding(turn: Turn) -> None:
    """The account has just bound: its emergencies reported unbound get the flat, and staff are told."""
    unit = turn.unit
    if unit is None:
        return
    recent = turn.store.tickets.recent_open_of_account(
        turn.account.id, TicketKind.EMERGENCY, turn.now - LOCATE_WITHIN
    )
    for ticket in recent:
        if ticket.unit_id is not None or ticket.location != UNKNOWN_PLACE:
            continue
        ticket.unit_id, ticket.location, ticket.updated_at = unit.id, unit.label, turn.now
        turn.store.tickets.add_event(ticket, turn.now, turn.actor, EventKind.LOCATED, unit.label)
        notify_staff(
            turn.store,
            ticket,
            turn.now,
            "located",
            f"【位置确认】{ticket.number} 报告人已绑定房屋：{unit.label}",
        )


# No dialog and no binding: danger first, whoever asks (``locate_after_binding`` adds the flat later).
SPEC = FlowSpec("emergency", answer=handle_emergency, ticket=TicketKind.EMERGENCY)
