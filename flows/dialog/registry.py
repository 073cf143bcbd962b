"""Every intent the bot serves, one spec each (declared in the intent's own module).

Adding an intent: write its module with a ``SPEC`` (see ``flows/dialog/spec.py``) and list it here.
"""

from __future__ import annotations

from flows.dialog import change
from flows.dialog.spec import Aside, Flow, FlowSpec
from flows.intents import answers, binding, booking, complaint, emergency, fee_query, repair, status

SPECS: tuple[FlowSpec, ...] = (
    repair.SPEC,
    complaint.SPEC,
    booking.SPEC,
    fee_query.SPEC,
    status.SPEC,
    emergency.SPEC,
    binding.SPEC,
    change.SPEC,
    *answers.SPECS,
)
_BY_NAME = {spec.name: spec for spec in SPECS}
FLOWS: dict[str, Flow] = {spec.name: spec.flow for spec in SPECS if spec.flow is not None}
QUESTIONS = frozenset(spec.name for spec in SPECS if spec.aside == Aside.QUESTION)
TICKETS = frozenset(spec.name for spec in SPECS if spec.aside == Aside.TICKET)


def spec(name: str | None) -> FlowSpec:
    """The spec of an intent or dialog; one that does nothing for a name no spec has."""
    return _BY_NAME.get(name or "") or FlowSpec(name or "")


def by_title(title: str) -> FlowSpec | None:
    """The dialog a title names (a draft kept with its title only)."""
    return next((s for s in SPECS if s.title and s.title == title), None)
