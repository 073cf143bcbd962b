"""What a flow sees of one message: the inbound message, its parse, the store, and where replies go."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from data.models import ChannelAccount, Compound, Resident, Unit
from data.settings import CompoundSettings
from data.store import Store
from nlu.types import Parse

MAX_TEXT = 2000  # longer messages are kept in full only up to here
ASKED_AT = "asked_at"  # state key: when the active dialog last asked the resident something


@dataclass(frozen=True)
class Button:
    """A choice offered with a reply; pressing it sends ``value`` back as if typed."""

    label: str
    value: str = ""

    def __post_init__(self) -> None:
        if not self.value:
            object.__setattr__(self, "value", self.label)


@dataclass(frozen=True)
class Reply:
    text: str
    buttons: tuple[Button, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "buttons": [[b.label, b.value] for b in self.buttons]}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Reply:
        return cls(raw["text"], tuple(Button(label, value) for label, value in raw.get("buttons", ())))


@dataclass(frozen=True)
class Inbound:
    """A resident's message, channel-neutral."""

    channel: str
    external_id: str
    text: str
    received_at: datetime
    message_id: str | None = None  # for de-duplicating channel retries
    photos: tuple[str, ...] = ()  # references the channel can resolve (file ids, media ids, URLs)
    display_name: str = ""
    # The text of our own message this one answers explicitly (Telegram's "reply", or the message
    # whose button was pressed); empty when the channel cannot say.
    reply_to: str = ""

    @property
    def clean_text(self) -> str:
        return self.text.strip()[:MAX_TEXT]


@dataclass
class Turn:
    """One message being handled inside one transaction."""

    store: Store
    inbound: Inbound
    parse: Parse
    account: ChannelAccount
    compound: Compound
    settings: CompoundSettings
    state: dict[str, Any]
    replies: list[Reply] = field(default_factory=list)
    next_flow: str | None = None  # the flow that takes the next message, None when done
    # A request set aside for later (a form left for another, or a second request): flows.dialog.drafts.
    draft: dict[str, Any] | None = None

    @property
    def now(self) -> datetime:
        return self.inbound.received_at

    @property
    def text(self) -> str:
        return self.inbound.clean_text

    @property
    def resident(self) -> Resident | None:
        return self.account.resident

    @property
    def unit(self) -> Unit | None:
        return self.resident.unit if self.resident is not None else None

    @property
    def actor(self) -> str:
        if self.resident is not None:
            return f"resident:{self.resident.id}"
        return f"{self.account.channel}:{self.account.external_id}"

    def say(self, text: str, *buttons: Button | str) -> None:
        self.replies.append(Reply(text, tuple(b if isinstance(b, Button) else Button(b) for b in buttons)))

    def stay(self, flow: str) -> None:
        """Keep ``flow`` active for the next message, which answers what it asked just now."""
        self.next_flow = flow
        self.state[ASKED_AT] = self.now.isoformat()  # whose question is newer: see flows.domain.relay

    def finish(self) -> None:
        self.next_flow = None
        self.state.clear()
