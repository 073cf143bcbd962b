"""Quiet hours (免打扰): when a non-urgent message to a resident may go."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from data.clock import local
from data.settings import CompoundSettings


def next_allowed(settings: CompoundSettings, at: datetime) -> datetime:
    """``at`` itself outside quiet hours, else the moment the (possibly chained) quiet hours end."""
    moment = local(at)
    for _ in range(len(settings.quiet_hours) + 1):  # overlapping windows chain; each step ends one
        if not settings.in_quiet_hours(moment.time()):
            return moment
        moment = _window_end(settings, moment)
    return moment  # quiet all day by mistake: go at the last end rather than never


def _window_end(settings: CompoundSettings, moment: datetime) -> datetime:
    ends = []
    for start, end in settings.quiet_hours:
        begin, finish = time.fromisoformat(start), time.fromisoformat(end)
        if not _inside(moment.time(), begin, finish):
            continue
        candidate = moment.replace(hour=finish.hour, minute=finish.minute, second=0, microsecond=0)
        if candidate <= moment:
            candidate += timedelta(days=1)  # the window wraps midnight
        ends.append(candidate)
    return max(ends) if ends else moment


def _inside(at: time, begin: time, finish: time) -> bool:
    if begin <= finish:
        return begin <= at < finish
    return at >= begin or at < finish
