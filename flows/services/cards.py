"""One state on every staff card: a ticket worked in one staff channel shows on the others' cards.

The channel where a staff member acted updates its own card (a Telegram press edits the message,
a WeCom press updates its template card); ``show_state`` queues one ``staff`` row (kind
``card_state``) that every other staff channel applies to its card of the ticket — the Telegram
group edits its last card (``edit``: that card's message id and words), the WeCom app updates the
duty member's template card. ``origin`` names the channel that acted, which skips the row.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from data.kinds import OPEN_STATUSES
from data.models import Ticket
from data.store import STAFF_RECIPIENT, Store
from flows.domain.tickets import STAFF_BUTTONS

CARD_STATE = "card_state"


def show_state(store: Store, ticket: Ticket, status: str, origin: str, key: str, now: datetime) -> None:
    """Queue ``status`` for the ticket's cards in the staff channels but ``origin``; ``key``: the
    action's dedupe key (the same press or message twice queues one row)."""
    payload: dict[str, Any] = {"ticket": ticket.number, "status": status, "origin": origin}
    payload["buttons"] = card_buttons(ticket)
    card = next(
        (c for c in store.outbox.staff_cards(ticket.id, STAFF_RECIPIENT) if c.payload.get("buttons")), None
    )
    if card is not None:  # the staff group's last card, as it was sent
        payload["edit"] = {"message_id": card.sent_ref, "text": card.text}
    text = f"【{ticket.number}】{status}"
    store.enqueue(
        "staff", STAFF_RECIPIENT, CARD_STATE, text, now, payload=payload, ticket=ticket, dedupe_key=key[:128]
    )


def card_buttons(ticket: Ticket) -> list[list[str]]:
    """The buttons a card of the ticket offers now: all while unclaimed, no 认领 once someone has
    it, none once it is done or closed."""
    if ticket.status not in OPEN_STATUSES:
        return []
    if ticket.assignee_id is not None:
        return [b for b in STAFF_BUTTONS if b[1] != "claim"]
    return [list(b) for b in STAFF_BUTTONS]
