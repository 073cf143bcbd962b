"""Staff <-> resident relay: a staff member answers a ticket card, the resident's next message goes back.

Neither side ever sees the other's phone number or chat account: messages are addressed by ticket
number, contact details typed into them are masked, and the staff member is named by name only.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from data.models import Staff, Ticket
from data.store import STAFF_RECIPIENT, Store
from flows.tickets import notify_resident
from flows.turn import Turn

RELAY_WINDOW = timedelta(hours=24)  # after that a resident's message is a new conversation again
MASK = "[联系方式已隐藏]"
CONTACTS = re.compile(
    r"(?<![\d])(?:\+?86[\s-]?)?1[3-9]\d(?:[\s-]?\d){8}(?!\d)"  # mobile, also written 138 0013 8000
    r"|(?<![\d])0\d{2,3}[\s-]?\d{7,8}(?!\d)"  # landline with area code
    r"|(?<![A-Za-z0-9_@])@[A-Za-z][A-Za-z0-9_]{3,31}"  # Telegram @username
    r"|(?<![A-Za-z0-9_-])o[A-Za-z0-9_-]{20,40}(?![A-Za-z0-9_-])"  # WeChat openid (o6_bmjrPTlm6_...)
)


def mask_contacts(text: str) -> str:
    return CONTACTS.sub(MASK, text)


def relay_to_resident(
    store: Store, ticket: Ticket, staff: Staff, text: str, card: int | None, now: datetime
) -> None:
    """Send a staff member's words to the resident and wait for the answer (for ``card``)."""
    notify_resident(
        store,
        ticket,
        now,
        "relay",
        f"【物业工作人员 {staff.name}】关于您的工单 {ticket.number}：\n{mask_contacts(text)[:1000]}\n"
        "（直接回复即可转达给工作人员）",
    )
    ticket.details = {**ticket.details, "relay": {"card": card, "staff": staff.name, "at": now.isoformat()}}
    store.add_event(ticket, now, f"staff:{staff.id}", "relay_out", mask_contacts(text)[:500])


def relay_from_resident(turn: Turn) -> bool:
    """PRE_ROUTES hook: the resident's answer to a staff question goes back to the card it came from."""
    ticket = _awaiting_answer(turn)
    if ticket is None or not (turn.text or turn.inbound.photos):
        return False
    relay = ticket.details["relay"]
    text = mask_contacts(turn.text)[:1000] or f"（发来 {len(turn.inbound.photos)} 张照片）"
    if turn.inbound.photos:
        ticket.photos = [*ticket.photos, *turn.inbound.photos]
    turn.store.enqueue(
        "staff",
        STAFF_RECIPIENT,
        "relay",
        f"【居民回复】{ticket.number}：{text}",
        turn.now,
        payload={"ticket": ticket.number, "reply_to": relay.get("card")},
        ticket=ticket,
    )
    ticket.details = {**ticket.details, "relay": None}
    turn.store.add_event(ticket, turn.now, turn.actor, "relay_in", text[:500])
    turn.say(f"好的，已将您的回复转达给{relay.get('staff') or '工作人员'}，请稍候。")
    return True


def _awaiting_answer(turn: Turn) -> Ticket | None:
    since = turn.now - RELAY_WINDOW
    for ticket in turn.store.recent_tickets_of_account(turn.account, since):
        relay = (ticket.details or {}).get("relay")
        if relay and datetime.fromisoformat(relay["at"]) >= since:
            return ticket
    return None
