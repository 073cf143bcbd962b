"""The scheduler's answers that claim a resident's message before intent routing (``PRE_ROUTES``):
callback answers, "已缴费", "发工资后再提醒我", "怎么停水了?" during an outage, greeting opt-ins.

Order matters: the most specific first. Each hook returns False for anything that is not its
business, so the message goes on to the NLU as usual.
"""

from __future__ import annotations

from collections.abc import Callable

from flows import broadcasts, callbacks, reminders
from flows.engine import PRE_ROUTES
from flows.turn import Turn

HOOKS: tuple[Callable[[Turn], bool], ...] = (
    callbacks.answer_confirmation,
    callbacks.answer_score,
    reminders.answer_paid,
    reminders.answer_snooze,
    broadcasts.answer_outage,
    broadcasts.answer_subscription,
)


def install(routes: list[Callable[[Turn], bool]] = PRE_ROUTES) -> None:
    """Register the hooks once (idempotent: the composition root may call it for every app)."""
    for hook in HOOKS:
        if hook not in routes:
            routes.append(hook)
