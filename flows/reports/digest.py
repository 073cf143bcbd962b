"""The staff digests: the week's figures to the staff group, the month's to the manager.

A sweep (``flows.jobs.sweeps``, job ``digests``): on the compound's ``digest_weekday`` at
``digest_hour`` the staff group gets the seven days before in a few lines with one chart (tickets per
day); on ``digest_monthly_day`` at ``digest_monthly_hour`` the manager (staff of
``digest_manager_roles`` with a Telegram account, else the staff group naming them) gets last month
with the collection chart. A digest missed by more than ``digest_catchup_h`` is skipped, not sent
late. The dedupe key names the compound and the period (``digest:weekly:<compound>:<day>``), so two
servers or a second run send it once.

The chart travels in the outbox row as a ``data:image/png;base64,...`` photo reference: the row is
complete in itself, whichever server sends it; the Telegram senders upload it (sendPhoto with the
text as caption) and the WeCom robot sends it as an image message after the text.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from data.clock import SHANGHAI, local
from data.models import Compound
from data.settings import CompoundSettings
from data.store import Store
from flows.domain.outbox import enqueue_once, staff_once, taken
from flows.intents.complaint import TOPIC_NAMES
from flows.jobs.sweeps import Action
from flows.reports import report
from flows.reports.kpi import Period, Ratio
from flows.reports.report import KIND_LABELS, Report, money, percent

JOB = "digests"
KIND = "digest"
PNG_URI = "data:image/png;base64,"


@dataclass(frozen=True)
class Plan:
    """One digest that is due: what period, for whom, under which key."""

    scope: str  # weekly | monthly
    compound: Compound
    period: Period
    key: str


def sweep(store: Store, now: datetime) -> list[Action]:
    plans = [
        plan for compound in store.units.compounds() for plan in _due(compound, store.settings(compound), now)
    ]
    done = taken(store, [plan.key for plan in plans])
    return [_action(store, plan, now) for plan in plans if plan.key not in done]


def _due(compound: Compound, settings: CompoundSettings, now: datetime) -> list[Plan]:
    today = local(now).date()
    window = timedelta(hours=settings.digest_catchup_h)
    plans = []
    if 1 <= settings.digest_weekday <= 7:
        day = today - timedelta(days=(today.isoweekday() - settings.digest_weekday) % 7)
        if _at(day, settings.digest_hour) <= now < _at(day, settings.digest_hour) + window:
            period = Period(day - timedelta(days=7), day - timedelta(days=1))
            plans.append(Plan("weekly", compound, period, f"digest:weekly:{compound.id}:{day:%Y%m%d}"))
    if 1 <= settings.digest_monthly_day <= 28:
        day = today.replace(day=settings.digest_monthly_day)
        if _at(day, settings.digest_monthly_hour) <= now < _at(day, settings.digest_monthly_hour) + window:
            period = Period.month_before(day)
            plans.append(
                Plan("monthly", compound, period, f"digest:monthly:{compound.id}:{period.first:%Y%m}")
            )
    return plans


def _at(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), tzinfo=SHANGHAI)


def _action(store: Store, plan: Plan, now: datetime) -> Action:
    def apply() -> None:
        found = report.build(store, plan.period, now, plan.compound.id)
        if plan.scope == "weekly":
            send_weekly(store, plan, found, now)
        else:
            send_monthly(store, plan, found, now)

    what = "周报" if plan.scope == "weekly" else "月报"
    summary = f"{plan.compound.name} {plan.period.label} {what}"
    return Action(JOB, f"{plan.scope}_digest", plan.key, summary, apply)


def send_weekly(store: Store, plan: Plan, found: Report, now: datetime) -> None:
    from flows.reports import charts  # matplotlib only when a digest is drawn, not on every sweep

    text = digest_text(found, "本周服务周报")
    staff_once(store, plan.key, KIND, text, now, payload=_photo(found, charts.daily_tickets))


def send_monthly(store: Store, plan: Plan, found: Report, now: datetime) -> None:
    """To each manager on Telegram; to the staff group, naming them, when none is."""
    from flows.reports import charts

    settings = store.settings(plan.compound)
    managers = [
        person
        for role in settings.digest_manager_roles
        for person in store.staff_by_role(plan.compound.id, role)
    ]
    payload = _photo(found, charts.collection_by_building)
    text = digest_text(found, "月度服务报告")
    reachable = [person for person in managers if person.telegram_user_id]
    for index, person in enumerate(reachable):
        key = plan.key if index == 0 else f"{plan.key}:staff{person.id}"  # the first one marks it sent
        chat = str(person.telegram_user_id)
        enqueue_once(store, key, "telegram", chat, KIND, text, now, payload=payload)
    if not reachable:
        names = "、".join(person.name for person in managers) or "管理处主任"
        staff_once(store, plan.key, KIND, f"{text}\n（请转 {names}）", now, payload=payload)


def _photo(found: Report, draw: Callable[[Report], bytes]) -> dict[str, list[str]]:
    return {"photos": [PNG_URI + base64.b64encode(draw(found)).decode()]}


def digest_text(found: Report, title: str) -> str:
    """A few lines: the counts, the time limits, the callbacks, the money (when bills fell due)."""
    kpis = found.kpis
    rates = kpis.rates
    made = kpis.counts
    counts = "、".join(f"{name} {made[kind]}" for kind, name in KIND_LABELS.items() if made[kind])
    lines = [
        f"【{title}】{found.compound} {found.period.label}",
        f"新增工单 {sum(kpis.counts.values())} 件" + (f"（{counts}）" if counts else ""),
        f"按时到场 {_ratio(rates['on_time_arrival_rate'])}，按时完成 {_ratio(rates['on_time_fix_rate'])}，"
        f"返修 {_ratio(rates['reopen_rate'])}",
        f"回访率 {_ratio(rates['callback_rate'])}，满意率 {_ratio(rates['satisfaction_rate'])}",
    ]
    topics = found.complaint_topics.most_common(3)
    if topics:
        lines.append("投诉：" + "、".join(f"{TOPIC_NAMES.get(k, k)} {n}" for k, n in topics))
    paid, billed = kpis.collection
    if billed:
        owed = billed - kpis.collected_to_date
        lines.append(
            f"收费率 {percent(kpis.collection_rate)}（实收 {money(paid)} / 应收 {money(billed)} 元），"
            f"至今未缴 {money(owed)} 元"
        )
    if kpis.median_close_hours is not None:
        lines.append(f"关单时长中位数 {kpis.median_close_hours:g} 小时")
    return "\n".join(lines)


def _ratio(ratio: Ratio) -> str:
    if ratio.denominator == 0:
        return "—"
    return f"{percent(ratio.value)}（{ratio.numerator}/{ratio.denominator}）"
