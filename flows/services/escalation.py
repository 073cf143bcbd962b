"""The escalation chain: who is paged next, and when. The one place for it.

Up the chain: the team lead(s) (班组长), then the office director (管理处主任). A role nobody holds
pages the next one up; with nobody at all, the message names the role.

* **A person presses 升级** (``escalate``): the first escalation pages the lead, every later one the
  director (escalations by the time limits count too).
* **The time limits** (``late_stages``, run by ``flows.jobs.time_limits``): for each deadline of an open
  ticket (arrive on site while not yet in progress, fix, reply to complaints and enquiries)::

      deadline - warn         -> 【即将超时】 to the assignee
      deadline                -> 【超时升级】 to the lead(s)
      deadline + director     -> 【超时督办】 to the director

  A ticket nobody claimed pages the lead after ``unclaimed_urgent_min`` (emergencies, urgent repairs)
  or ``unclaimed_normal_min``, and the director at three times that. Only the highest stage reached
  counts: a sweep that runs late does not warn after the breach. ``escalate_late`` sends one stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from data.kinds import BEFORE_VISIT, OPEN_STATUSES, EventKind, TicketKind, TicketStatus
from data.models import Ticket
from data.settings import CompoundSettings
from data.store import Store
from flows.domain.outbox import staff_once
from flows.domain.tickets import TicketError, format_time, notify_staff, staff_card
from flows.jobs.sweeps import ticket_event
from flows.services.base import Actor, Result, require_compound

CHAIN = ("lead", "director")  # who is paged, in order
TITLES = {"lead": "班组长", "director": "管理处主任"}
UNCLAIMED_DIRECTOR_FACTOR = 3
WHAT = {"arrive": "到场时限", "fix": "完成时限", "reply": "答复时限", "claim": "接单"}
LEVEL_WORDS = {
    "warn": "即将超时，提醒负责人",
    "lead": "已超时，升级至班组长",
    "director": "严重超时，升级至主任",
}


# -- who --------------------------------------------------------------------------------------------
def paged(store: Store, compound_id: int, role: str) -> str:
    """The names a role pages: its people, else the next role up the chain, else the role's title."""
    for up in CHAIN[CHAIN.index(role) :]:
        people = store.staff_by_role(compound_id, up)
        if people:
            return "、".join(p.name for p in people)
    return TITLES[role]


def chain_names(store: Store, compound_id: int) -> dict[str, str]:
    """``paged`` for every role of the chain (a sweep looks them up once per compound)."""
    return {role: paged(store, compound_id, role) for role in CHAIN}


def next_role(ticket: Ticket) -> str:
    """The role a person's 升级 pages: the lead first, the director after."""
    level = sum(1 for e in ticket.events if e.kind == EventKind.ESCALATED)
    return CHAIN[min(level, len(CHAIN) - 1)]


def escalate(store: Store, actor: Actor, ticket: Ticket, now: datetime) -> Result:
    """One step up the chain, by a person: an event and a card (with the photos) for the next role."""
    require_compound(actor, ticket.compound_id, ticket.number)
    if ticket.status not in OPEN_STATUSES:
        raise TicketError(f"{ticket.number} 已结束，无需升级")
    role = next_role(ticket)
    names = paged(store, ticket.compound_id, role)
    store.tickets.add_event(ticket, now, actor.tag, EventKind.ESCALATED, f"升级至 {names}", {"role": role})
    card = staff_card(ticket, f"升级·请{names}跟进") + f"\n升级人：{actor.name}"
    notify_staff(store, ticket, now, "escalation", card, photos=ticket.photos)  # new eyes see the photos
    return Result(f"已升级至 {names}", status=f"已由 {actor.name} 升级至 {names}")


# -- when -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    """One step of the time limits that is due: which deadline, which level, and the deadline."""

    what: str  # arrive | fix | reply | claim
    level: str  # warn | lead | director
    deadline: datetime

    def key(self, ticket: Ticket) -> str:
        """Each step once; the deadline is in it, so a rescheduled visit is watched afresh."""
        return f"sla:{ticket.id}:{self.what}:{self.level}:{self.deadline:%Y%m%d%H%M}"

    @property
    def summary(self) -> str:
        return f"{WHAT[self.what]} {LEVEL_WORDS[self.level]}"


def warn_horizon(settings: CompoundSettings, now: datetime) -> datetime:
    """Deadlines before this may have a stage due (the sweep looks no further)."""
    return now + timedelta(hours=max(settings.reply_warn_h, 1), minutes=settings.fix_warn_min)


def unclaimed_since(settings: CompoundSettings, now: datetime) -> datetime:
    """Tickets unclaimed since before this may have a stage due."""
    return now - timedelta(minutes=min(settings.unclaimed_urgent_min, settings.unclaimed_normal_min))


def late_stages(ticket: Ticket, settings: CompoundSettings, now: datetime) -> list[Stage]:
    """The highest stage reached for each deadline of the ticket, and for its claim."""
    found = []
    deadlines = []
    if ticket.arrive_by is not None and ticket.status in BEFORE_VISIT:
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
    if ticket.assignee_id is not None or ticket.status != TicketStatus.RECEIVED:
        return None
    urgent = ticket.priority == "urgent" or ticket.kind == TicketKind.EMERGENCY
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


def escalate_late(
    store: Store, actor: Actor, ticket: Ticket, stage: Stage, names: dict[str, str], now: datetime
) -> Result:
    """Send one stage of the time limits (``late_stages``) to the staff group, once: its dedupe key
    was looked up by the sweep (``checked``). ``names``: ``chain_names`` of the ticket's compound."""
    text = _late_text(ticket, stage, names, now)
    staff_once(
        store,
        stage.key(ticket),
        f"sla_{stage.level}",
        text,
        now,
        ticket_id=ticket.id,
        urgent=ticket.priority == "urgent",
        payload=_payload(ticket, stage),
        checked=True,
    )
    kind = EventKind.SLA_WARNING if stage.level == "warn" else EventKind.ESCALATED
    data = {"what": stage.what, "level": stage.level, "deadline": stage.deadline.isoformat()}
    ticket_event(store, ticket, now, kind, text.split("\n")[0][:200], data, actor=actor.tag)
    return Result(text)


def _payload(ticket: Ticket, stage: Stage) -> dict[str, Any]:
    """The photos go again with the stages that carry the whole card (to someone new to it)."""
    carries_card = stage.what == "claim" or stage.level == "lead"
    if carries_card and ticket.photos:
        return {"ticket": ticket.number, "photos": list(ticket.photos)}
    return {"ticket": ticket.number}


def _late_text(ticket: Ticket, stage: Stage, names: dict[str, str], now: datetime) -> str:
    who = ticket.assignee.name if ticket.assignee is not None else "（未认领）"
    what, when = WHAT[stage.what], format_time(stage.deadline)
    if stage.what == "claim":
        waited = int((now - ticket.created_at).total_seconds() // 60)
        boss = names["director"] if stage.level == "director" else names["lead"]
        head = f"【无人认领】{ticket.number} 已等待 {waited} 分钟无人接单，请 {boss} 立即安排。"
        return head + "\n" + staff_card(ticket, "待认领")
    if stage.level == "warn":
        left = max(int((stage.deadline - now).total_seconds() // 60), 0)
        return f"【即将超时】{ticket.number} {what} {when}，还剩 {left} 分钟，请 {who} 抓紧处理。"
    if stage.level == "lead":
        return (
            f"【超时升级】{ticket.number} 已超过{what}（{when}），负责人：{who}。"
            f"请 {names['lead']} 跟进处理。\n" + staff_card(ticket, "超时")
        )
    late = int((now - stage.deadline).total_seconds() // 60)
    return (
        f"【超时督办】{ticket.number} 超过{what} {late} 分钟仍未完成，负责人：{who}，"
        f"班组长：{names['lead']}。请 {names['director']} 督办。"
    )
