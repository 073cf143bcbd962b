"""Hooks that claim a resident's message before intent routing (``PRE_ROUTES``), on every channel:
one-time binding codes, answers to a staff member's relayed question, callback answers, "已缴费",
"发工资后再提醒我", "怎么停水了?" during an outage, greeting opt-ins.

Order matters: the most specific first. A binding code is unmistakable. A staff question was asked by
a person who waits for this very answer, and it is pending for one message only, so it goes before
the callback answers, which would otherwise read "3" or "满意" or "好了" meant for staff as a score or a
confirmation (their buttons carry a ticket number, and the relay leaves those alone). Each hook
returns False for anything that is not its business, so the message goes on to the NLU as usual.
"""

from __future__ import annotations

from collections.abc import Callable

from flows.dialog.engine import INTERRUPTS, PRE_ROUTES
from flows.dialog.turn import Turn
from flows.domain import relay
from flows.intents import bind_code
from flows.jobs import broadcasts, callbacks, reminders

HOOKS: tuple[Callable[[Turn], bool], ...] = (
    bind_code.bind_by_code,
    relay.relay_from_resident,
    callbacks.answer_confirmation,
    callbacks.answer_score,
    reminders.answer_paid,
    reminders.answer_snooze,
    broadcasts.answer_outage,
    broadcasts.answer_subscription,
)

# In the middle of a dialog only a staff question newer than the dialog's own claims the message.
IN_DIALOG: tuple[Callable[[Turn], bool], ...] = (relay.relay_from_resident,)


def install(
    routes: list[Callable[[Turn], bool]] = PRE_ROUTES, interrupts: list[Callable[[Turn], bool]] = INTERRUPTS
) -> None:
    """Register the hooks once, in order (idempotent: the composition root may call it for every app)."""
    for hooks, installed in ((HOOKS, routes), (IN_DIALOG, interrupts)):
        for hook in hooks:
            if hook not in installed:
                installed.append(hook)
