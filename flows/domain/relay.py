"""Staff <-> resident relay: a staff member answers a ticket card, the resident's next message goes back.

Neither side ever sees the other's phone number or chat account: messages are addressed by ticket
number, contact details typed into them are masked, and the staff member is named by name only.

Which question does the resident's next message answer? The most recent one. A staff question
relayed after the resident's dialog (报修, 投诉, 预约) last asked something takes the message, and the
dialog asks its question again afterwards (``Engine`` runs this hook in the middle of a dialog too);
a staff question older than the dialog's question leaves the message to the dialog. A resident who
answers a message explicitly (Telegram's "reply", a button) means that message, whatever came later.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from data.kinds import EventKind
from data.models import Staff, Ticket
from data.store import STAFF_RECIPIENT, Store
from flows.dialog.turn import ASKED_AT, Turn
from flows.domain.tickets import notify_resident
from flows.intents.booking import SLOT_PREFIX
from flows.intents.status import TICKET_NUMBER

RELAY_WINDOW = timedelta(hours=24)  # after that a resident's message is a new conversation again
MASK = "[联系方式已隐藏]"
CONTACTS = re.compile(
    r"(?<![\d])(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d){8}(?!\d)"  # mobile, also written 138 0013 8000
    r"|(?<![\d])0\d{2,3}[\s-]?\d{7,8}(?!\d)"  # landline with area code
    r"|(?<![A-Za-z0-9_@])@[A-Za-z][A-Za-z0-9_]{3,31}"  # Telegram @username
    r"|(?<![A-Za-z0-9_-])o[A-Za-z0-9_-]{20,40}(?![A-Za-z0-9_-])"  # WeChat openid (o6_bmjrPTlm6_...)
)
HEAD = "【物业工作人员 {name}】关于您的工单 {number}："
RELAYED = re.compile(r"^【物业工作人员 [^】]*】关于您的工单 ([A-Z]{2}-\d{8}-\d{4})：")


def mask_contacts(text: str) -> str:
    return CONTACTS.sub(MASK, text)


def relay_to_resident(
    store: Store, ticket: Ticket, staff: Staff, text: str, card: int | None, now: datetime
) -> None:
    """Send a staff member's words to the resident and wait for the answer (for ``card``)."""
    told = notify_resident(
        store,
        ticket,
        now,
        "relay",
        HEAD.format(name=staff.name, number=ticket.number)
        + f"\n{mask_contacts(text)[:1000]}\n（直接回复即可转达给工作人员）",
    )
    ticket.details = {**ticket.details, "relay": {"card": card, "staff": staff.name, "at": now.isoformat()}}
    for account in told:  # the reporter, or every account of the household when none reported it
        account.awaiting_relay = ticket.number
    store.tickets.add_event(ticket, now, f"staff:{staff.id}", EventKind.RELAY_OUT, mask_contacts(text)[:500])


def relay_from_resident(turn: Turn) -> bool:
    """Hook, before intent routing and in the middle of a dialog: the resident's answer to a staff
    question goes back to the card it came from."""
    if not (turn.text or turn.inbound.photos):
        return False
    ticket = _replied_to(turn) if turn.inbound.reply_to else _awaiting_answer(turn)
    if ticket is None:
        return False
    _send_back(turn, ticket)
    return True


def _replied_to(turn: Turn) -> Ticket | None:
    """The ticket of the relayed message the resident replied to; None for a reply to anything else."""
    found = RELAYED.match(turn.inbound.reply_to)
    if found is None:
        return None
    ticket = turn.store.tickets.by_number(found.group(1))
    return ticket if ticket is not None and _household(turn, ticket) else None


def _awaiting_answer(turn: Turn) -> Ticket | None:
    """The ticket whose staff question this message answers: the most recent question asked."""
    number = turn.account.awaiting_relay
    if number is None:
        return None  # the usual case: no look-up at all
    ticket = turn.store.tickets.by_number(number)
    relay = _pending(ticket, turn.now) if ticket is not None and _household(turn, ticket) else None
    if ticket is None or relay is None:
        turn.account.awaiting_relay = None  # answered from another account of the household, or stale
        return None
    asked = turn.state.get(ASKED_AT)
    if asked and datetime.fromisoformat(asked) >= datetime.fromisoformat(relay["at"]):
        return None  # the dialog asked since: the message answers the dialog
    if turn.text.startswith(SLOT_PREFIX) or TICKET_NUMBER.search(turn.text):
        return None  # a button's value (a booking slot, a callback answer): it answers that message
    return ticket


def _pending(ticket: Ticket, now: datetime) -> dict[str, Any] | None:
    """The ticket's staff question, while it waits for an answer."""
    relay: dict[str, Any] | None = (ticket.details or {}).get("relay")
    if not relay or relay.get("answered_at") or datetime.fromisoformat(relay["at"]) < now - RELAY_WINDOW:
        return None
    return relay


def _household(turn: Turn, ticket: Ticket) -> bool:
    resident = turn.resident
    return ticket.account_id == turn.account.id or (
        resident is not None and ticket.unit_id is not None and ticket.unit_id == resident.unit_id
    )


def _send_back(turn: Turn, ticket: Ticket) -> None:
    relay = (ticket.details or {}).get("relay") or {}
    text = mask_contacts(turn.text)[:1000] or f"（发来 {len(turn.inbound.photos)} 张照片）"
    if turn.inbound.photos:
        ticket.photos = [*ticket.photos, *turn.inbound.photos]
    turn.store.enqueue(
        "staff",
        STAFF_RECIPIENT,
        "relay",
        f"【居民回复】{ticket.number}：{text}",
        turn.now,
        payload={"ticket": ticket.number, "reply_to": relay.get("card"), "photos": [*turn.inbound.photos]},
        ticket=ticket,
    )
    answered = bool(turn.text)  # photos alone keep the question open: WeChat sends one image a message
    if relay and answered:  # kept (card, staff) for a later reply to the same message
        ticket.details = {**ticket.details, "relay": {**relay, "answered_at": turn.now.isoformat()}}
    if answered and turn.account.awaiting_relay == ticket.number:
        turn.account.awaiting_relay = None
    turn.store.tickets.add_event(ticket, turn.now, turn.actor, EventKind.RELAY_IN, text[:500])
    turn.say(f"好的，已将您的回复转达给{relay.get('staff') or '工作人员'}，请稍候。")
