"""``DialogsRepository`` in memory: the processed message ids and their replies in a dict."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from data.models import InboundMessage
from data.repositories.dialogs import DialogsRepository


class MemoryDialogs:
    def __init__(self) -> None:
        self.messages: dict[tuple[str, str], InboundMessage] = {}

    def claim_inbound(self, channel: str, message_id: str, external_id: str, now: datetime) -> bool:
        """``Store.claim_inbound`` in memory: record a message id; False if it was seen before."""
        key = (channel, message_id)
        if key in self.messages:
            return False
        self.messages[key] = InboundMessage(
            id=len(self.messages) + 1,
            channel=channel,
            message_id=message_id,
            external_id=external_id,
            received_at=now,
            replies=[],
        )
        return True

    def recorded_replies(self, channel: str, message_id: str) -> list[Any]:
        message = self.messages.get((channel, message_id))
        return list(message.replies) if message is not None else []

    def record_replies(self, channel: str, message_id: str, replies: list[Any]) -> None:
        message = self.messages.get((channel, message_id))
        if message is not None:  # like the SQL UPDATE: an id never claimed keeps nothing
            message.replies = list(replies)


if TYPE_CHECKING:  # mypy holds the memory repository to its protocol
    _dialogs: DialogsRepository = MemoryDialogs()
