"""Outbox rows that must exist at most once: the sweeps' and the dispatcher's idempotence.

A dedupe key names the business fact ("the 48-hour callback for BX-...-0001 to account 12"), so a
sweep run twice, two processes sweeping at once, or a retried request find the key taken and add
nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from data.repositories.outbox import outbox_row
from data.store import STAFF_RECIPIENT, Store


def reply_key(channel: str, message_id: str, tag: str, index: int = 0) -> str:
    """The dedupe key of an outbox row carrying part of the answer to one inbound message: ``late``
    when the channel gave up waiting for the engine, ``more`` for what did not fit the reply."""
    return f"{channel}:{message_id}:{tag}:{index}"


def taken(store: Store, keys: list[str]) -> set[str]:
    """Which of ``keys`` already have an outbox row."""
    return store.outbox.taken(keys)


def enqueue_once(
    store: Store,
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
    return store.outbox.add_once(row, checked)


def staff_once(
    store: Store,
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
        store,
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
