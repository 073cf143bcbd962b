"""Outbox rows that must exist at most once: the sweeps' and the dispatcher's idempotence.

A dedupe key names the business fact ("the 48-hour callback for BX-...-0001 to account 12"), so a
sweep run twice, two processes sweeping at once, or a retried request find the key taken and add
nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from data.models import OutboxMessage
from data.store import STAFF_RECIPIENT, outbox_row


def reply_key(channel: str, message_id: str, tag: str, index: int = 0) -> str:
    """The dedupe key of an outbox row carrying part of the answer to one inbound message: ``late``
    when the channel gave up waiting for the engine, ``more`` for what did not fit the reply."""
    return f"{channel}:{message_id}:{tag}:{index}"


def taken(session: Session, keys: list[str]) -> set[str]:
    """Which of ``keys`` already have an outbox row."""
    found: set[str] = set()
    for start in range(0, len(keys), 500):  # keep IN lists a sane size
        chunk = keys[start : start + 500]
        found.update(
            session.scalars(select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(chunk)))
        )
    return found


def enqueue_once(
    session: Session,
    dedupe_key: str,
    channel: str,
    recipient: str,
    kind: str,
    text: str,
    now: datetime,
    *,
    due_at: datetime | None = None,
    payload: dict[str, Any] | None = None,
    urgent: bool = False,
    ticket_id: int | None = None,
    checked: bool = False,
) -> bool:
    """Add the row unless ``dedupe_key`` exists; True if it was added.

    ``checked``: the caller looked the key up already (``taken``, in bulk, under the sweep's lock),
    so the row is just added; the unique constraint still stands behind it."""
    if not checked and taken(session, [dedupe_key]):
        return False
    row = outbox_row(
        channel,
        recipient,
        kind,
        text,
        now,
        due_at=due_at,
        payload=payload,
        urgent=urgent,
        ticket_id=ticket_id,
        dedupe_key=dedupe_key,
    )
    if checked:
        session.add(row)
        return True
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # another process added it between our look and our insert
        return False
    return True


def staff_once(
    session: Session,
    dedupe_key: str,
    kind: str,
    text: str,
    now: datetime,
    *,
    ticket_id: int | None = None,
    urgent: bool = False,
    payload: dict[str, Any] | None = None,
    checked: bool = False,
) -> bool:
    """A staff-group message that exists at most once per ``dedupe_key``."""
    return enqueue_once(
        session,
        dedupe_key,
        "staff",
        STAFF_RECIPIENT,
        kind,
        text,
        now,
        ticket_id=ticket_id,
        urgent=urgent,
        payload=payload,
        checked=checked,
    )
