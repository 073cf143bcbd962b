"""Time limits (时限): the sweep that finds late tickets and pages the escalation chain.

Which stage is due when, who it pages and what it says live in ``flows.services.escalation`` (the
escalation chain, shared with the staff group's 升级 button); this sweep finds the open tickets
with a deadline inside the warning horizon or waiting to be claimed, leaves out the stages already
sent (their dedupe keys, looked up in bulk) and turns each remaining one into an ``Action``.
"""

from __future__ import annotations

from datetime import datetime

from data.models import Compound, Ticket
from data.settings import CompoundSettings
from data.store import Store
from flows.domain.outbox import taken
from flows.jobs.sweeps import Action
from flows.services import SCHEDULER, Stage, chain_names, escalate_late, late_stages
from flows.services.escalation import unclaimed_since, warn_horizon


def sweep(store: Store, now: datetime) -> list[Action]:
    actions: list[Action] = []
    for compound in store.units.compounds():
        settings = store.settings(compound)
        candidates = _candidates(store, compound, settings, now)
        stages = [(ticket, stage) for ticket in candidates for stage in late_stages(ticket, settings, now)]
        done = taken(store, [stage.key(ticket) for ticket, stage in stages])
        names = chain_names(store, compound.id)
        actions += [
            _action(store, ticket, stage, names, now)
            for ticket, stage in stages
            if stage.key(ticket) not in done
        ]
    return actions


def _candidates(store: Store, compound: Compound, settings: CompoundSettings, now: datetime) -> list[Ticket]:
    """Open tickets with a deadline inside the warning horizon, or waiting to be claimed."""
    return store.schedules.tickets_near_deadline(
        compound.id, warn_horizon(settings, now), unclaimed_since(settings, now)
    )


def _action(store: Store, ticket: Ticket, stage: Stage, names: dict[str, str], now: datetime) -> Action:
    def apply() -> None:
        escalate_late(store, SCHEDULER, ticket, stage, names, now)

    summary = f"{ticket.number} {stage.summary}"
    return Action(
        "time_limits", f"sla_{stage.level}", stage.key(ticket), summary, apply, ticket=ticket.number
    )
