"""Who acts and what an action returns: the two types every handler shares."""

from __future__ import annotations

from dataclasses import dataclass

from data.models import Staff
from data.scheduling import Notice
from flows.domain.errors import NotAllowed


@dataclass(frozen=True)
class Actor:
    """Who does it. ``tag`` is recorded on events (``staff:3``, ``staff:cli``, ``system``), ``name``
    goes into the words (王师傅, 管理处). A staff member acts in their own compound only; the office
    (``propbot tickets``, ``propbot broadcast``) and the scheduler act in any."""

    tag: str
    name: str
    staff: Staff | None = None

    @classmethod
    def of(cls, staff: Staff) -> Actor:
        return cls(f"staff:{staff.id}", staff.name, staff)

    @classmethod
    def office(cls, tag: str = "staff:cli") -> Actor:
        return cls(tag, "管理处")


OFFICE = Actor.office()
SCHEDULER = Actor("system", "系统")


@dataclass(frozen=True)
class Result:
    """What an action did, in words. ``text``: for whoever acted (a button's answer, the CLI's line,
    the desk's notice). ``status``: a line for the ticket's card in the staff group; None when nothing
    changed. ``resident``: what the resident was told (already in the outbox), if anything.
    ``notice``: the notice an action on notices created or changed."""

    text: str
    status: str | None = None
    resident: str | None = None
    notice: Notice | None = None


def require_compound(actor: Actor, compound_id: int, what: str) -> None:
    """A staff member may act in their own compound only."""
    if actor.staff is not None and actor.staff.compound_id != compound_id:
        raise NotAllowed(f"{actor.name} 不是这个小区的员工，不能处理{what}。")


def require_staff(actor: Actor, action: str) -> Staff:
    """The staff member acting; the office and the scheduler cannot, say, claim a ticket."""
    if actor.staff is None:
        raise NotAllowed(f"{action}需要以员工身份操作。")
    return actor.staff
