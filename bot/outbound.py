"""What the outbox dispatcher hands to a channel, and how a channel says it failed.

Senders are the channel adapters' outbound half (Telegram chats, the Telegram staff group, the
WeCom robot, WeChat, the console). The dispatcher owns retries, rate limits and bookkeeping;
a sender only sends one message or raises one of the errors below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class OutboundMessage:
    """A snapshot of one outbox row, detached from any database session."""

    id: int
    channel: str  # telegram | wechat | console | staff | wecom
    recipient: str  # chat id / openid / console account, or "staff"
    kind: str
    text: str
    payload: dict[str, Any] = field(default_factory=dict)  # buttons, ticket number, template fields
    urgent: bool = False
    ticket_id: int | None = None
    attempts: int = 1  # this claim's number: 1 on the first try


@dataclass(frozen=True)
class FollowUp:
    """An outbox row a delivery asks for, such as a card's photos as a reply to the card just sent.

    The dispatcher adds it in the transaction that marks the delivered row sent, so it exists exactly
    when its source row is recorded as sent: never lost, never added twice."""

    channel: str
    kind: str
    text: str
    payload: dict[str, Any] = field(default_factory=dict)
    tag: str = ""  # unique among one row's follow-ups (part of the new row's dedupe key)


@dataclass(frozen=True)
class Receipt:
    """The channel's id of the message just delivered (Telegram's ``message_id``), returned among a
    sender's follow-ups; the dispatcher records it with the row (``outbox.sent_ref``)."""

    ref: str


class TemporaryFailure(Exception):
    """Try again later (429, 5xx, network). ``retry_after`` in seconds when the peer said so."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class PermanentFailure(Exception):
    """Will never succeed (bot blocked, user not subscribed, chat not found): record and tell staff."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Sender(Protocol):
    channel: str

    async def send(self, message: OutboundMessage) -> Sequence[FollowUp | Receipt] | None:
        """Deliver ``message`` or raise ``TemporaryFailure`` / ``PermanentFailure``; what it returns
        are rows to add once the delivery is recorded (usually nothing) and, when the channel gives
        one, a ``Receipt`` naming the delivered message."""
        ...
