"""Time limits (时限): warn before a breach, escalate after it, chase unclaimed tickets.

For each open ticket and each of its deadlines (arrive on site while not yet in progress, fix,
reply for complaints and enquiries):

    deadline - warn         -> 【即将超时】 naming the assignee
    deadline                -> 【超时升级】 naming the team lead(s)
    deadline + director     -> 【超时督办】 naming the office director

Unclaimed tickets (nobody dispatched) escalate after ``unclaimed_urgent_min`` (emergencies, urgent
repairs) or ``unclaimed_normal_min``, and to the director at three times that. Only the highest
stage reached is sent: a sweep that runs late does not post a warning after the breach. Keys carry
the deadline, so a rescheduled visit is watched afresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select

from data.models import Compound, Ticket
from data.settings import CompoundSettings
from data.store import OPEN_STATUSES, Store
from flows.outbox import staff_once, taken
from flows.sweeps import Action, ticket_event
from flows.tickets import format_time, staff_card

WHAT = {"arrive": "到场时限", "fix": "完成时限", "reply": "答复时限", "claim": "接单"}
UNCLAIMED_DIRECTOR_FACTOR = 3


@dataclass(frozen=True)
class Stage:
    what: str  # arrive | fix | reply | claim
    level: str  # warn | lead | director
    deadline: datetime

    def key(self, ticket: Ticket) -> str:
        return f"sla:{ticket.id}:{self.what}:{self.level}:{self.deadline:%Y%m%d%H%M}"


def sweep(store: Store, now: datetime) -> list[Action]:
    actions: list[Action] = []
    for compound in store.session.scalars(select(Compound).order_by(Compound.id)):
        settings = store.settings(compound)
        candidates = _candidates(store, compound, settings, now)
        stages = [(ticket, stage) for ticket in candidates for stage in _stages(ticket, settings, now)]
        done = taken(store.session, [stage.key(ticket) for ticket, stage in stages])
        bosses = _bosses(store, compound)
        actions += [
            _action(store, ticket, stage, bosses, now)
            for ticket, stage in stages
            if stage.key(ticket) not in done
        ]
    return actions


def _candidates(store: Store, compound: Compound, settings: CompoundSettings, now: datetime) -> list[Ticket]:
    """Open tickets with a deadline inside the warning horizon, or waiting to be claimed."""
    horizon = now + timedelta(hours=max(settings.reply_warn_h, 1), minutes=settings.fix_warn_min)
    soonest_claim = now - timedelta(minutes=min(settings.unclaimed_urgent_min, settings.unclaimed_normal_min))
    return list(
        store.session.scalars(
            select(Ticket)
            .where(
                Ticket.compound_id == compound.id,
                Ticket.status.in_(OPEN_STATUSES),
                or_(
                    Ticket.arrive_by <= horizon,
                    Ticket.fix_by <= horizon,
                    Ticket.reply_by <= horizon,
                    (Ticket.assignee_id.is_(None)) & (Ticket.created_at <= soonest_claim),
                ),
            )
            .order_by(Ticket.id)
        ).unique()
    )


def _stages(ticket: Ticket, settings: CompoundSettings, now: datetime) -> list[Stage]:
    found = []
    deadlines = []
    if ticket.arrive_by is not None and ticket.status in ("received", "dispatched"):
        deadlines.append(("arrive", ticket.arrive_by, timedelta(minutes=settings.arrive_warn_min)))
    if ticket.fix_by is not None:
        deadlines.append(("fix", ticket.fix_by, timedelta(minutes=settings.fix_warn_min)))
    if ticket.reply_by is not None:
        deadlines.append(("reply", ticket.reply_by, timedelta(hours=settings.reply_warn_h)))
    director = timedelta(minutes=settings.director_after_min)
    for what, deadline, warn in deadlines:
        level = _level(now, deadline - warn, deadline, deadline + director)
        if level == "warn" and ticket.assignee_id is None:
            continue  # nobody to warn: the unclaimed chase covers it
        if level is not None:
            found.append(Stage(what, level, deadline))
    claim = _unclaimed(ticket, settings, now)
    if claim is not None:
        found.append(claim)
    return found


def _unclaimed(ticket: Ticket, settings: CompoundSettings, now: datetime) -> Stage | None:
    if ticket.assignee_id is not None or ticket.status != "received":
        return None
    urgent = ticket.priority == "urgent" or ticket.kind == "emergency"
    wait = timedelta(minutes=settings.unclaimed_urgent_min if urgent else settings.unclaimed_normal_min)
    level = _level(now, None, ticket.created_at + wait, ticket.created_at + wait * UNCLAIMED_DIRECTOR_FACTOR)
    return Stage("claim", level, ticket.created_at + wait) if level is not None else None


def _level(now: datetime, warn: datetime | None, lead: datetime, director: datetime) -> str | None:
    if now >= director:
        return "director"
    if now >= lead:
        return "lead"
    if warn is not None and now >= warn:
        return "warn"
    return None


def _bosses(store: Store, compound: Compound) -> dict[str, str]:
    names = {}
    for role in ("lead", "director"):
        people = store.staff_by_role(compound.id, role)
        names[role] = "、".join(p.name for p in people) or ("班组长" if role == "lead" else "管理处主任")
    return names


def _action(store: Store, ticket: Ticket, stage: Stage, bosses: dict[str, str], now: datetime) -> Action:
    text = _text(ticket, stage, bosses, now)
    key = stage.key(ticket)

    def apply() -> None:
        staff_once(
            store.session,
            key,
            f"sla_{stage.level}",
            text,
            now,
            ticket_id=ticket.id,
            urgent=ticket.priority == "urgent",
            payload=_payload(ticket, stage),
            checked=True,  # looked up in bulk by ``sweep``
        )
        kind = "sla_warning" if stage.level == "warn" else "escalated"
        ticket_event(
            store,
            ticket,
            now,
            kind,
            text.split("\n")[0][:200],
            {"what": stage.what, "level": stage.level, "deadline": stage.deadline.isoformat()},
        )

    summary = f"{ticket.number} {WHAT[stage.what]} {LEVEL_WORDS[stage.level]}"
    return Action("time_limits", f"sla_{stage.level}", key, summary, apply, ticket=ticket.number)


def _payload(ticket: Ticket, stage: Stage) -> dict[str, Any]:
    """The photos go again with the stages that carry the whole card (to someone new to it)."""
    carries_card = stage.what == "claim" or stage.level == "lead"
    if carries_card and ticket.photos:
        return {"ticket": ticket.number, "photos": list(ticket.photos)}
    return {"ticket": ticket.number}


LEVEL_WORDS = {
    "warn": "即将超时，提醒负责人",
    "lead": "已超时，升级至班组长",
    "director": "严重超时，升级至主任",
}


def _text(ticket: Ticket, stage: Stage, bosses: dict[str, str], now: datetime) -> str:
    who = ticket.assignee.name if ticket.assignee is not None else "（未认领）"
    what, when = WHAT[stage.what], format_time(stage.deadline)
    if stage.what == "claim":
        waited = int((now - ticket.created_at).total_seconds() // 60)
        boss = bosses["director"] if stage.level == "director" else bosses["lead"]
        head = f"【无人认领】{ticket.number} 已等待 {waited} 分钟无人接单，请 {boss} 立即安排。"
        return head + "\n" + staff_card(ticket, "待认领")
    if stage.level == "warn":
        left = max(int((stage.deadline - now).total_seconds() // 60), 0)
        return f"【即将超时】{ticket.number} {what} {when}，还剩 {left} 分钟，请 {who} 抓紧处理。"
    if stage.level == "lead":
        return (
            f"【超时升级】{ticket.number} 已超过{what}（{when}），负责人：{who}。"
            f"请 {bosses['lead']} 跟进处理。\n" + staff_card(ticket, "超时")
        )
    late = int((now - stage.deadline).total_seconds() // 60)
    return (
        f"【超时督办】{ticket.number} 超过{what} {late} 分钟仍未完成，负责人：{who}，"
        f"班组长：{bosses['lead']}。请 {bosses['director']} 督办。"
    )
