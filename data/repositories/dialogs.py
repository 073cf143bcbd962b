"""Dialogs: what a chat said and was answered (processed message ids and their replies)."""

from __future__ import annotations

from typing import Any, Protocol

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from data.models import InboundMessage


class DialogsRepository(Protocol):
    def recorded_replies(self, channel: str, message_id: str) -> list[Any]:
        """The replies recorded for a message id (empty while its first delivery is still running)."""
        ...

    def record_replies(self, channel: str, message_id: str, replies: list[Any]) -> None:
        """Keep the replies to a claimed message id, for its retries."""
        ...


class SqlDialogs:
    def __init__(self, session: Session) -> None:
        self.session = session

    def recorded_replies(self, channel: str, message_id: str) -> list[Any]:
        replies = self.session.scalars(
            select(InboundMessage.replies).where(
                InboundMessage.channel == channel, InboundMessage.message_id == message_id
            )
        ).first()
        return list(replies or [])

    def record_replies(self, channel: str, message_id: str, replies: list[Any]) -> None:
        # Core, not the ORM: no loaded object mirrors the row (the hot path of every turn)
        self.session.connection().execute(
            _RECORD_REPLIES, {"b_channel": channel, "b_message_id": message_id, "replies": replies}
        )


_RECORD_REPLIES = (  # built once: constructing it costs about as much as running it
    update(InboundMessage)
    .where(
        InboundMessage.channel == bindparam("b_channel"),
        InboundMessage.message_id == bindparam("b_message_id"),
    )
    .values(replies=bindparam("replies", type_=InboundMessage.__table__.c.replies.type))
)
