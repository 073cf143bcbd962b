"""The service layer: one handler per thing staff or the office do, whoever asks.

The staff group (``bot/channels/staff_group.py``, ``flows/services/staff_commands.py``), ``propbot tickets``
and ``propbot broadcast``, the scheduler's sweeps (``flows/jobs/time_limits.py``) and the web desk call
these and nothing below them. Every handler has the same shape::

    handler(store, actor, <ticket | unit | compound>, ..., now) -> Result

* ``store``: the caller's transaction (``data.store.Store``); the handler commits nothing, so a
  refused step leaves no event or message behind when the caller rolls back.
* ``actor``: an ``Actor`` — ``Actor.of(staff)``, ``OFFICE`` (``Actor.office(tag)``) or ``SCHEDULER``.
  A staff member acts in their own compound only.
* ``now``: the injected clock's time.
* returns a ``Result``: ``text`` for whoever acted, ``status`` for the ticket's card in the staff
  group, ``resident`` for what the resident was told (already in the outbox).
* raises ``flows.domain.errors.ActionError`` (``NotFound``, ``NotAllowed``; ``TicketError``,
  ``NoticeError``) with a Chinese message to show as it is.

Handlers: tickets ``claim``, ``assign``, ``reassign`` (``reassign_choices``), ``done``, ``escalate``,
``reopen``, ``close``, ``cancel``; callbacks ``record_rating``; notices ``send_notice``,
``cancel_notice``; fees ``mark_paid``, ``snooze``; the time limits ``escalate_late`` (one stage of
``late_stages``). The escalation chain — who is paged next, and when — is ``escalation``.
"""

from __future__ import annotations

from flows.domain.errors import ActionError, NotAllowed, NotFound
from flows.services.base import OFFICE, SCHEDULER, Actor, Result
from flows.services.escalation import (
    Stage,
    chain_names,
    escalate,
    escalate_late,
    late_stages,
    next_role,
    paged,
)
from flows.services.notices import cancel_notice, send_notice
from flows.services.payments import mark_paid, snooze
from flows.services.rating import Rating, record_rating
from flows.services.work import assign, cancel, claim, close, done, reassign, reassign_choices, reopen

__all__ = [
    "OFFICE",
    "SCHEDULER",
    "ActionError",
    "Actor",
    "NotAllowed",
    "NotFound",
    "Rating",
    "Result",
    "Stage",
    "assign",
    "cancel",
    "cancel_notice",
    "chain_names",
    "claim",
    "close",
    "done",
    "escalate",
    "escalate_late",
    "late_stages",
    "mark_paid",
    "next_role",
    "paged",
    "reassign",
    "reassign_choices",
    "record_rating",
    "reopen",
    "send_notice",
    "snooze",
]
