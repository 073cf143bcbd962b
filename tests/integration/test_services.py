"""The service layer's handlers on both databases: the state each one changes, the events it records,
the messages it queues, and what it refuses (another compound's staff, a done ticket claimed again).

Each test works in one session that is rolled back, as a caller's transaction would be when a
handler refuses: the handlers commit nothing themselves.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from bot.app import App
from data.clock import FixedClock
from data.models import Bill, Compound, OutboxMessage, Staff, Ticket
from data.scheduling import Callback, Notice, PaymentReminder
from data.store import Store
from flows import services
from flows.domain.errors import ActionError, NotAllowed, NotFound
from flows.domain.tickets import NewTicket, TicketError, open_ticket
from flows.jobs.broadcasts import NoticeRequest
from flows.services import OFFICE, SCHEDULER, Actor, Rating


@pytest.fixture
def store(app: App) -> Iterator[Store]:
    session = app.sessions()
    try:
        yield Store(session)
    finally:
        session.rollback()
        session.close()


def staff(store: Store, name: str) -> Actor:
    member = store.staff_member(name)
    assert member is not None
    return Actor.of(member)


def repair(store: Store, clock: FixedClock, photos: tuple[str, ...] = ()) -> Ticket:
    """李明's leak (3栋2单元1502), as the repair flow opens it."""
    account = store.account("console", "demo")
    new = NewTicket("repair", "厨房水管漏水", category="water", area="in_home", photos=photos)
    return open_ticket(store, store.compound(), account, new, clock.now(), "resident:1")


def rows(store: Store, ticket: Ticket | None = None, channel: str | None = None) -> list[OutboxMessage]:
    store.session.flush()
    query = select(OutboxMessage).order_by(OutboxMessage.id)
    if ticket is not None:
        query = query.where(OutboxMessage.ticket_id == ticket.id)
    if channel is not None:
        query = query.where(OutboxMessage.channel == channel)
    return list(store.session.scalars(query))


def kinds(ticket: Ticket) -> list[str]:
    return [e.kind for e in ticket.events]


def outsider(store: Store) -> Actor:
    """A technician of another compound."""
    other = Compound(code="other", name="明月小区", duty_phone="1", office_phone="2")
    member = Staff(compound=other, name="外来师傅", role="technician", active=True)
    store.session.add_all([other, member])
    store.session.flush()
    return Actor.of(member)


# -- claim, assign, reassign ----------------------------------------------------------------------
def test_claim_dispatches_records_and_tells_the_resident(store: Store, clock: FixedClock) -> None:
    ticket = repair(store, clock)
    wang = staff(store, "王师傅")
    result = services.claim(store, wang, ticket, clock.now())
    assert (ticket.status, ticket.assignee_id) == ("dispatched", wang.staff.id if wang.staff else None)
    assert ticket.events[-1].kind == "dispatched" and ticket.events[-1].actor == wang.tag
    assert result.status == "已由 王师傅 接单" and "接单成功" in result.text
    [told] = [r for r in rows(store, ticket) if r.kind == "dispatched"]
    assert told.channel == "console" and told.text == result.resident and "王师傅" in told.text


def test_a_second_claim_changes_nothing_or_is_refused(store: Store, clock: FixedClock) -> None:
    ticket = repair(store, clock)
    services.claim(store, staff(store, "王师傅"), ticket, clock.now())
    before = (kinds(ticket), len(rows(store, ticket)))
    again = services.claim(store, staff(store, "王师傅"), ticket, clock.now())
    assert again.status is None and again.text == "您已经接了这个单"
    with pytest.raises(NotAllowed, match="王师傅 接单"):
        services.claim(store, staff(store, "张师傅"), ticket, clock.now())
    assert (kinds(ticket), len(rows(store, ticket))) == before


def test_a_done_ticket_cannot_be_claimed_again(store: Store, clock: FixedClock) -> None:
    ticket = repair(store, clock)
    services.claim(store, staff(store, "王师傅"), ticket, clock.now())
    services.done(store, staff(store, "王师傅"), ticket, clock.now())
    with pytest.raises(TicketError, match="已完成"):
        services.claim(store, staff(store, "张师傅"), ticket, clock.now())
    assert ticket.status == "done" and ticket.assignee is not None and ticket.assignee.name == "王师傅"


def test_staff_of_another_compound_may_not_touch_the_ticket(store: Store, clock: FixedClock) -> None:
    ticket = repair(store, clock)
    stranger = outsider(store)
    now = clock.now()
    for act in (
        lambda: services.claim(store, stranger, ticket, now),
        lambda: services.done(store, stranger, ticket, now),
        lambda: services.escalate(store, stranger, ticket, now),
        lambda: services.close(store, stranger, ticket, now),
    ):
        with pytest.raises(NotAllowed, match="不是这个小区的员工"):
            act()
    assert stranger.staff is not None
    with pytest.raises(NotAllowed, match="外来师傅 不是这个小区的员工"):
        services.assign(store, OFFICE, ticket, stranger.staff, now)
    assert (ticket.status, kinds(ticket)) == ("received", ["received"])


def test_the_office_assigns_but_cannot_claim(store: Store, clock: FixedClock) -> None:
    ticket = repair(store, clock)
    with pytest.raises(NotAllowed, match="员工身份"):
        services.claim(store, OFFICE, ticket, clock.now())
    zhang = store.staff_member("张师傅")
    assert zhang is not None
    result = services.assign(store, OFFICE, ticket, zhang, clock.now())
    assert result.text == f"{ticket.number} 已派给 张师傅（已派工），已通知居民。"
    assert ticket.events[-1].actor == "staff:cli" and result.status == "已由 管理处 派给 张师傅"


def test_reassign_offers_the_others_and_records_a_reassignment(store: Store, clock: FixedClock) -> None:
    ticket = repair(store, clock)
    services.claim(store, staff(store, "王师傅"), ticket, clock.now())
    choices = services.reassign_choices(store, ticket)
    assert [s.name for s in choices] == ["张师傅", "刘师傅"]
    result = services.reassign(store, staff(store, "王师傅"), ticket, choices[0], clock.now())
    assert ticket.assignee is not None and ticket.assignee.name == "张师傅"
    assert ticket.events[-1].kind == "reassigned" and result.status == "已由 王师傅 转派给 张师傅"
    assert "张师傅" in (result.resident or "")
    with pytest.raises(ActionError, match="已经由 张师傅 负责"):
        services.reassign(store, OFFICE, ticket, choices[0], clock.now())


# -- done, reopen, close, cancel ----------------------------------------------------------------
def test_done_asks_the_resident_and_reopen_goes_back_to_the_technician(
    store: Store, clock: FixedClock
) -> None:
    ticket = repair(store, clock)
    wang = staff(store, "王师傅")
    services.claim(store, wang, ticket, clock.now())
    with pytest.raises(TicketError, match="无需重新打开"):
        services.reopen(store, OFFICE, ticket, clock.now())
    done = services.done(store, wang, ticket, clock.now(), "换了阀门")
    assert ticket.status == "done" and ticket.done_at == clock.now()
    asked = [r for r in rows(store, ticket) if r.kind == "done"]
    assert len(asked) == 1 and asked[0].payload["buttons"][0] == ["解决了", f"解决了 {ticket.number}"]
    assert done.resident == asked[0].text and done.status == "已由 王师傅 完成"
    reopened = services.reopen(store, OFFICE, ticket, clock.now(), "还在滴水")
    assert ticket.status == "dispatched" and ticket.done_at is None
    assert "由 王师傅 跟进" in reopened.text
    assert any(r.channel == "staff" and "【重新打开】" in r.text for r in rows(store, ticket))


def test_close_twice_is_refused_and_cancel_tells_both_sides(store: Store, clock: FixedClock) -> None:
    first, second = repair(store, clock), repair(store, clock)
    services.close(store, OFFICE, first, clock.now())
    with pytest.raises(TicketError, match="已经关闭"):
        services.close(store, OFFICE, first, clock.now())
    result = services.cancel(store, OFFICE, second, clock.now(), "居民电话说不用修了")
    assert second.status == "cancelled" and second.events[-1].note == "居民电话说不用修了"
    texts = {r.channel: r.text for r in rows(store, second) if r.kind == "cancelled"}
    assert "居民电话说不用修了" in texts["staff"] and texts["console"] == result.resident
    with pytest.raises(TicketError):
        services.cancel(store, OFFICE, second, clock.now())


# -- the escalation chain ---------------------------------------------------------------------------
def test_escalate_pages_the_lead_then_the_director_with_the_photos(store: Store, clock: FixedClock) -> None:
    ticket = repair(store, clock, photos=("tg:photo1",))
    wang = staff(store, "王师傅")
    first = services.escalate(store, wang, ticket, clock.now())
    second = services.escalate(store, wang, ticket, clock.now())
    assert (first.text, second.text) == ("已升级至 赵主管", "已升级至 孙主任")
    assert [e.data["role"] for e in ticket.events if e.kind == "escalated"] == ["lead", "director"]
    cards = [r for r in rows(store, ticket, "staff") if r.kind == "escalation"]
    assert len(cards) == 2 and all(c.payload["photos"] == ["tg:photo1"] for c in cards)
    assert "升级人：王师傅" in cards[0].text and "请赵主管跟进" in cards[0].text


def test_a_role_nobody_holds_pages_the_next_one_up(store: Store, clock: FixedClock) -> None:
    ticket = repair(store, clock)
    lead, director = store.staff_member("赵主管"), store.staff_member("孙主任")
    assert lead is not None and director is not None
    lead.active = False
    store.session.flush()
    assert services.paged(store, ticket.compound_id, "lead") == "孙主任"
    director.active = False
    store.session.flush()
    assert services.chain_names(store, ticket.compound_id) == {"lead": "班组长", "director": "管理处主任"}


def test_the_time_limits_and_the_button_climb_the_same_chain(store: Store, clock: FixedClock) -> None:
    ticket = repair(store, clock)
    settings = store.settings(store.compound())
    services.claim(store, staff(store, "王师傅"), ticket, clock.now())
    assert services.late_stages(ticket, settings, clock.now()) == []
    late = clock.now() + timedelta(minutes=settings.arrive_urgent_min)  # water: an urgent repair
    [stage] = services.late_stages(ticket, settings, late)
    assert (stage.what, stage.level) == ("arrive", "lead")
    names = services.chain_names(store, ticket.compound_id)
    paged = services.escalate_late(store, SCHEDULER, ticket, stage, names, late)
    assert paged.text.startswith(f"【超时升级】{ticket.number}") and "请 赵主管 跟进处理" in paged.text
    [row] = [r for r in rows(store, ticket, "staff") if r.kind == "sla_lead"]
    assert row.dedupe_key == stage.key(ticket)
    store.session.expire(ticket, ["events"])
    assert [(e.kind, e.actor) for e in ticket.events][-1] == ("escalated", "system")
    assert services.escalate(store, OFFICE, ticket, late).text == "已升级至 孙主任"  # the lead was paged


def test_a_finished_ticket_is_not_escalated(store: Store, clock: FixedClock) -> None:
    ticket = repair(store, clock)
    services.close(store, OFFICE, ticket, clock.now())
    with pytest.raises(TicketError, match="无需升级"):
        services.escalate(store, OFFICE, ticket, clock.now())
    assert "escalated" not in kinds(ticket)


# -- callbacks ---------------------------------------------------------------------------------------
def _done(store: Store, clock: FixedClock) -> Ticket:
    ticket = repair(store, clock)
    services.claim(store, staff(store, "王师傅"), ticket, clock.now())
    services.done(store, staff(store, "王师傅"), ticket, clock.now())
    return ticket


def test_a_good_rating_closes_and_a_bad_one_reopens(store: Store, clock: FixedClock) -> None:
    good, bad = _done(store, clock), _done(store, clock)
    lead = staff(store, "赵主管")
    result = services.record_rating(store, lead, good, Rating(True, 5, {"attitude": 5}, "很好"), clock.now())
    assert good.status == "closed" and result.text.endswith("工单已关闭，谢谢！")
    callback = store.session.scalars(select(Callback).where(Callback.ticket_id == good.id)).one()
    assert (callback.score, callback.attitude, callback.via, callback.confirmed) == (5, 5, "phone", "solved")
    low = services.record_rating(store, lead, bad, Rating(None, 1, comment="太慢"), clock.now())
    assert bad.status == "dispatched" and "重新打开" in low.text and "王师傅" in low.text
    assert kinds(bad)[-2:] == ["callback", "reopened"]


def test_unsolved_reopens_whatever_the_score_and_open_tickets_wait(store: Store, clock: FixedClock) -> None:
    ticket = _done(store, clock)
    lead = staff(store, "赵主管")
    result = services.record_rating(store, lead, ticket, Rating(False, 4, comment="还在滴水"), clock.now())
    assert ticket.status == "dispatched" and "未解决，满意度 4 分，留言：还在滴水" in result.text
    with pytest.raises(ActionError, match="还在处理中"):
        services.record_rating(store, lead, ticket, Rating(True, 5), clock.now())


# -- notices -----------------------------------------------------------------------------------------
def test_send_and_take_back_a_notice(store: Store, clock: FixedClock) -> None:
    compound = store.compound()
    request = NoticeRequest(kind="general", text="电梯今天下午维保", buildings=(3,))
    sent = services.send_notice(store, OFFICE, compound, request, clock.now())
    assert sent.notice is not None and sent.notice.created_by == "staff:cli"
    queued = [r for r in rows(store) if r.kind == "notice"]
    assert len(queued) == sent.notice.recipients > 0
    assert f"共 {sent.notice.recipients} 个住户账号" in sent.text
    back = services.cancel_notice(store, OFFICE, compound, sent.notice.id, clock.now())
    assert back.text.startswith(f"通知 #{sent.notice.id} 已撤回：收回未发送的消息 {len(queued)} 条")
    assert {r.status for r in rows(store) if r.kind == "notice"} == {"cancelled"}
    again = services.cancel_notice(store, OFFICE, compound, sent.notice.id, clock.now())
    assert again.text.endswith("已经撤回过了。")


def test_a_notice_to_a_building_that_does_not_exist_is_refused(store: Store, clock: FixedClock) -> None:
    request = NoticeRequest(kind="general", text="停车场清洗", buildings=(9,))
    with pytest.raises(NotFound, match="本小区没有 9栋"):
        services.send_notice(store, OFFICE, store.compound(), request, clock.now())
    with pytest.raises(NotFound, match="没有编号为 77 的通知"):
        services.cancel_notice(store, OFFICE, store.compound(), 77, clock.now())
    assert store.count(Notice) == 0


# -- fees --------------------------------------------------------------------------------------------
def test_mark_paid_settles_the_bills_asked_for(store: Store, clock: FixedClock) -> None:
    unit = store.find_unit(3, 2, "1502")  # three months owed in the demo
    assert unit is not None
    owed = [b for b in store.units.bills(unit.id) if b.outstanding > 0]
    first = min(b.period for b in owed)
    part = services.mark_paid(store, OFFICE, unit, clock.now(), period=first)
    assert part.text.startswith("3栋2单元1502 已登记缴费") and "仍待缴" in part.text
    assert all(b.paid_at == clock.now() and b.outstanding == 0 for b in owed if b.period == first)
    rest = services.mark_paid(store, OFFICE, unit, clock.now())
    assert rest.text.endswith("已全部缴清，缴费提醒随之结束。")
    assert all(b.outstanding == 0 for b in store.session.scalars(select(Bill).where(Bill.unit_id == unit.id)))
    with pytest.raises(ActionError, match="没有符合条件的待缴费用"):
        services.mark_paid(store, OFFICE, unit, clock.now())


def test_snooze_holds_the_reminders_until_the_day(store: Store, clock: FixedClock) -> None:
    unit = store.find_unit(3, 2, "1502")
    assert unit is not None
    result = services.snooze(store, staff(store, "小李"), unit, date(2026, 12, 15), clock.now())
    assert result.text == "3栋2单元1502 的缴费提醒暂停到 12月15日。"
    store.session.flush()
    state = store.session.scalars(select(PaymentReminder).where(PaymentReminder.unit_id == unit.id)).one()
    assert state.snoozed_until == date(2026, 12, 15)
    with pytest.raises(ActionError, match="应晚于今天"):
        services.snooze(store, OFFICE, unit, date(2026, 11, 23), clock.now())
    with pytest.raises(NotAllowed):
        services.snooze(store, outsider(store), unit, date(2026, 12, 15), clock.now())
