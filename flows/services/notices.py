"""Notices to residents (通知): send one, take one back."""

from __future__ import annotations

from datetime import datetime

from data.models import Compound
from data.store import Store
from flows.domain.errors import NotFound
from flows.domain.quiet import next_allowed
from flows.domain.tickets import format_time
from flows.jobs import broadcasts
from flows.jobs.broadcasts import NoticeRequest, where_words
from flows.services.base import Actor, Result, require_compound


def send_notice(
    store: Store, actor: Actor, compound: Compound, request: NoticeRequest, now: datetime
) -> Result:
    """Queue the notice, one message per bound account of its audience (``flows.jobs.broadcasts``).
    Buildings the compound does not have are refused rather than sent to nobody."""
    require_compound(actor, compound.id, compound.name)
    _check_buildings(store, compound, request)
    notice = broadcasts.create_notice(store, compound, request, now, actor.tag)
    due = notice.send_at if request.urgent else next_allowed(store.settings(compound), notice.send_at)
    when = f"将于 {format_time(due)} 发送" if due > now else "立即发送"
    lines = [
        f"通知 #{notice.id}（{notice.title}）已排入发送队列：{where_words(request)}，"
        f"共 {notice.recipients} 个住户账号，{when}。"
    ]
    if notice.recipients == 0:
        lines.append("注意：这些住户还没有人绑定微信或 Telegram，这条通知不会发到任何人。")
    elif request.kind == "greeting":
        lines.append("节日问候只发给订阅了问候的住户。")
    lines += [f"内容：{notice.text}", f"如需撤回：/notice cancel {notice.id}"]
    return Result("\n".join(lines), notice=notice)


def cancel_notice(store: Store, actor: Actor, compound: Compound, notice_id: int, now: datetime) -> Result:
    """Take a notice back: what has not gone yet stays unsent; what has gone cannot be recalled."""
    require_compound(actor, compound.id, compound.name)
    notice = store.schedules.notice(notice_id)
    if notice is None or notice.compound_id != compound.id:
        raise NotFound(f"没有编号为 {notice_id} 的通知。")
    if notice.cancelled_at is not None:
        return Result(f"通知 #{notice.id} 已经撤回过了。", notice=notice)
    taken_back = broadcasts.cancel_notice(store, notice.id, now, actor.tag)
    gone = notice.recipients - taken_back
    text = f"通知 #{notice.id} 已撤回：收回未发送的消息 {taken_back} 条" + (
        f"，其余 {gone} 条已发出，无法收回。" if gone > 0 else "。"
    )
    return Result(text, notice=notice)


def _check_buildings(store: Store, compound: Compound, request: NoticeRequest) -> None:
    named = set(request.buildings) | {u.building for u in request.units}
    unknown = sorted(named - store.units.building_numbers(compound.id))
    if unknown:
        raise NotFound(f"本小区没有 {'、'.join(f'{n}栋' for n in unknown)}，请核对。")
