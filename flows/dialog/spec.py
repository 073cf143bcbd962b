"""What the engine knows about an intent, in one place: ``FlowSpec``.

Each intent's module declares its spec next to the code it names (``flows/intents/repair.py`` declares
``SPEC``); ``flows/dialog/registry.py`` lists them all, and the engine and the splitter read only the
registry. A spec either runs a dialog of several turns (``flow``) or answers at once (``answer``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from data.kinds import TicketKind
from flows.dialog.form import Form, Slot
from flows.dialog.turn import Turn
from nlu.types import Parse


class Flow(Protocol):
    """A dialog of several turns; its state lives in ``turn.state`` between messages."""

    name: str

    def start(self, turn: Turn) -> None: ...

    def resume(self, turn: Turn) -> bool: ...

    def takes(self, turn: Turn, asked: FlowSpec) -> bool:
        """Whether the message, which asks for ``asked``, answers the question pending."""
        ...

    def ask_again(self, turn: Turn, hint: str = ...) -> None: ...


class Aside(StrEnum):
    """What a confident message of this intent is in the middle of another dialog."""

    QUESTION = "question"  # answered at once, then the dialog asks its question again
    TICKET = "ticket"  # another request: which goes first? the other one is kept
    HANDOFF = "handoff"  # a person takes over, with what the dialog had collected


@dataclass(frozen=True)
class FlowSpec:
    name: str  # the NLU intent it serves, or the dialog's own name (binding, change)
    flow: Flow | None = None
    answer: Callable[[Turn], None] | None = None
    title: str = ""  # how the bot names the request to the resident: 报修
    needs_binding: bool = False  # a resident's own unit: asked to bind first
    keeps_draft: bool = False  # an unfinished dialog is kept (drafts.py) when something comes first
    aside: Aside | None = None
    topic: str | None = None  # the entity that names its topic (a fault, a service, a fee item)
    ticket: TicketKind | None = None  # the kind of ticket it files (its number prefix, time limits)
    small_talk: bool = False  # greetings, yes, no: never a new request in the middle of a dialog

    @property
    def slots(self) -> tuple[Slot, ...]:
        """What the dialog asks for, in order (a form's slots; none for other dialogs)."""
        return self.flow.slots if isinstance(self.flow, Form) else ()

    @property
    def starts(self) -> bool:
        return self.flow is not None or self.answer is not None

    def names_topic(self, parse: Parse) -> bool:
        """Whether the message names this intent's topic ("周六想约个保洁": a service)."""
        return self.topic is not None and parse.first(self.topic) is not None
