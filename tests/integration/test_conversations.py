"""Whole conversations through the engine, on SQLite and PostgreSQL, against the demo compound."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.app import App
from data.db import transaction
from data.models import ChannelAccount, Conversation, OutboxMessage, Ticket
from data.store import Store
from flows.domain.tickets import NewTicket, open_ticket
from tests.conftest import NOW, Chat


def tickets(app: App) -> list[Ticket]:
    with app.sessions() as session:
        query = select(Ticket).options(selectinload(Ticket.events)).order_by(Ticket.id)
        return list(session.scalars(query).unique().all())


def staff_messages(app: App) -> list[OutboxMessage]:
    with app.sessions() as session:
        return list(session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "staff")).all())


def test_repair_happy_path_creates_the_right_ticket(chat: Chat, app: App) -> None:
    assert "什么时候上门" in chat.say("厨房水管漏水了")
    summary = chat.say("明天上午")
    assert "3栋2单元1502" in summary and "厨房水管漏水了" in summary and "138****8000" in summary
    done = chat.say("确认")
    assert "BX-20261123-0001" in done
    [ticket] = tickets(app)
    assert (ticket.kind, ticket.category, ticket.area, ticket.status) == (
        "repair",
        "water",
        "in_home",
        "received",
    )
    assert ticket.location == "3栋2单元1502" and ticket.contact_phone == "13800138000"
    assert ticket.preferred_start == NOW.replace(hour=8) + timedelta(days=1)
    assert ticket.priority == "urgent"  # water is urgent by the compound's settings
    assert [e.kind for e in ticket.events] == ["received"]
    [card] = staff_messages(app)
    assert "BX-20261123-0001" in card.text and "13800138000" not in card.text  # no phone in the group


def test_common_area_repair_asks_where_and_not_when(chat: Chat, app: App) -> None:
    assert "哪个位置" in chat.say("楼道的灯坏了")  # which building's hallway?
    summary = chat.say("3栋2单元5楼楼道")
    assert "位置：3栋2单元5楼楼道" in summary and "上门时间" not in summary
    assert "BX-" in chat.say("确认")
    [ticket] = tickets(app)
    assert ticket.area == "common" and ticket.unit_id is None and ticket.preferred_start is None
    assert ticket.location == "3栋2单元5楼楼道" and ticket.category == "lighting"


def test_common_area_repair_with_the_place_in_the_first_message(chat: Chat, app: App) -> None:
    summary = chat.say("5栋的电梯坏了")
    assert "位置：5栋的电梯" in summary and "核对" in summary


def test_correction_at_confirmation_changes_the_detail(chat: Chat, app: App) -> None:
    chat.say("卫生间马桶堵了")
    chat.say("明天上午")
    again = chat.say("时间改成后天下午")
    assert "已为您修改" in again and "11月25日" in again
    chat.say("确认")
    [ticket] = tickets(app)
    assert ticket.preferred_start == NOW.replace(hour=14) + timedelta(days=2)


def test_change_menu_reasks_the_chosen_detail(chat: Chat, app: App) -> None:
    chat.say("卧室的灯不亮了")
    chat.say("今天下午")
    assert "修改哪一项" in chat.say("修改")
    assert "上门时间" in chat.last_buttons
    assert "什么时候上门" in chat.say("上门时间")
    assert "核对" in chat.say("明天下午三点")
    chat.say("确认")
    [ticket] = tickets(app)
    assert ticket.preferred_start == NOW.replace(hour=15) + timedelta(days=1)


def test_cancel_at_any_step_leaves_nothing(chat: Chat, app: App) -> None:
    chat.say("厨房水管漏水了")
    assert "取消" in chat.say("算了")
    assert tickets(app) == []
    with app.sessions() as session:
        conversation = session.scalars(select(Conversation)).one()
        assert conversation.flow is None and conversation.state == {}


def test_emergency_interrupts_a_form(chat: Chat, app: App) -> None:
    chat.say("周六想约个保洁")
    reply = chat.say("救命 家里着火了 好大的烟")
    assert "0571-88880000" in reply and "119" in reply and "预约帮您存着" in reply
    [ticket] = tickets(app)
    assert (
        ticket.kind == "emergency"
        and ticket.priority == "urgent"
        and ticket.arrive_by == NOW + timedelta(minutes=15)
    )
    [page] = staff_messages(app)
    assert page.urgent and "紧急" in page.text
    assert "请问有什么可以帮您" in chat.say("你好")  # the booking waits as a draft, not in the way
    assert "接着办预约" in chat.say("继续") and "11月28日(周六)" in chat.last_buttons[0] + chat.last[-1]


def test_pressing_an_offered_button_is_never_a_classifier_emergency(chat: Chat, app: App) -> None:
    # "家里" alone reads like an emergency to the classifier; as the area button it is an answer.
    assert "家里（户内）的问题" in chat.say("灯坏了")
    assert "什么时候上门" in chat.press("家里")
    assert tickets(app) == [] and staff_messages(app) == []
    assert "值班电话" in chat.say("家里着火了 好大的烟")  # the rules still interrupt the form


def test_a_power_cut_at_home_is_an_urgent_repair_not_an_emergency(chat: Chat, app: App) -> None:
    assert "什么时候上门" in chat.say("家里突然停电了")  # the repair dialog, not the duty phone
    assert "上门时间：尽快" in chat.say("尽快")
    assert "15 分钟内" in chat.say("确认")
    [ticket] = tickets(app)
    assert (ticket.kind, ticket.category, ticket.priority) == ("repair", "electric", "urgent")
    assert ticket.arrive_by == NOW + timedelta(minutes=15)


def test_second_report_of_the_same_problem_is_merged(chat: Chat, app: App) -> None:
    chat.say("厨房水管漏水了")
    chat.say("尽快")
    chat.say("确认")
    reply = chat.say("我家厨房水管还在漏水")
    assert "之前已经报过了" in reply and "BX-20261123-0001" in reply
    [ticket] = tickets(app)
    assert ticket.repeat_count == 1 and [e.kind for e in ticket.events] == ["received", "merged"]
    assert [m.kind for m in staff_messages(app)] == ["new_ticket", "repeat"]


def test_family_member_sees_the_households_tickets(app: App) -> None:
    owner, family = Chat(app, "demo"), Chat(app, "family")
    owner.say("客厅插座没电了")
    owner.say("明天上午")
    owner.say("确认")
    assert "BX-20261123-0001" in family.say("我家报修的进度怎么样了")


def test_complaint_collects_and_promises_a_reply_date(chat: Chat, app: App) -> None:
    reply = chat.say("我要投诉楼上每天晚上装修声音太吵了")
    assert "哪里发生" in reply
    assert "怎么处理" in chat.say("3栋2单元1602")  # 每天晚上 was said already: not asked again
    summary = chat.say("尽快制止")
    assert "投诉内容" in summary and "时间：每天晚上" in summary
    done = chat.say("确认")
    assert "TS-20261123-0001" in done and "11月27日" in done  # 4 working days after Monday
    [ticket] = tickets(app)
    assert ticket.kind == "complaint" and ticket.category == "noise"
    assert ticket.details["wish"] == "尽快制止"


def test_a_complaint_said_in_full_asks_nothing_twice(chat: Chat, app: App) -> None:
    summary = chat.say("投诉5栋楼下每天晚上十点广场舞太吵了，希望物业管一管")
    assert "地点：5栋楼下" in summary and "时间：每天晚上十点" in summary
    assert "您的诉求：希望物业管一管" in summary
    assert "TS-20261123-0001" in chat.say("确认")


def test_a_repair_described_while_answering_where_is_not_asked_again(chat: Chat, app: App) -> None:
    assert "家里" in chat.say("我要报修")
    assert "什么时候上门" in chat.say("卧室的灯不亮了")  # the area and the problem at once
    summary = chat.say("明天上午")
    assert "问题：卧室的灯不亮了" in summary


def test_booking_offers_free_slots_and_books_one(chat: Chat, app: App) -> None:
    assert "什么时间" in chat.say("想约个保洁")
    assert chat.last_buttons[:2] == ["11月23日(周一) 14:00-16:00", "11月23日(周一) 16:00-18:00"]
    assert "要求" in chat.press("11月23日(周一) 16:00-18:00")
    summary = chat.say("三室两厅 重点打扫厨房")
    assert "家政保洁" in summary and "11月23日(周一) 16:00-18:00" in summary
    assert "YY-20261123-0001" in chat.say("确认")
    [ticket] = tickets(app)
    assert ticket.kind == "booking" and ticket.category == "cleaning"
    assert ticket.preferred_start == NOW.replace(hour=16)
    assert ticket.details["requirements"] == "三室两厅 重点打扫厨房"


SATURDAY = NOW.replace(day=28)  # 11月28日(周六)
SATURDAY_WINDOWS = ["上午 09:00-11:00", "下午 14:00-16:00", "下午 16:00-18:00"]


def book_out(app: App, day: datetime, hours: tuple[int, ...] = (9, 14, 16)) -> None:
    """Fill the cleaning windows starting at ``hours`` on ``day`` (two bookings each: the capacity)."""
    with transaction(app.sessions) as session:
        store = Store(session)
        for hour in hours:
            start = day.replace(hour=hour)
            for _ in range(2):
                booking = NewTicket(
                    "booking",
                    "预约家政保洁",
                    "cleaning",
                    "in_home",
                    preferred_start=start,
                    preferred_end=start + timedelta(hours=2),
                )
                open_ticket(store, store.compound(), None, booking, NOW, "test")


def test_booking_a_named_day_offers_that_days_windows(chat: Chat, app: App) -> None:
    reply = chat.say("周六想约个保洁")
    assert "11月28日(周六)有这几个时间可以" in reply and "要求" not in reply
    assert chat.last_buttons == SATURDAY_WINDOWS
    assert "要求" in chat.press("下午 14:00-16:00")
    assert "预约时间：11月28日(周六) 14:00-16:00" in chat.say("没有")


def test_booking_a_day_with_a_time_picks_the_window_directly(chat: Chat) -> None:
    assert "要求" in chat.say("周六上午想约个保洁")
    assert "预约时间：11月28日(周六) 09:00-11:00" in chat.say("没有")


def test_booking_a_time_of_day_after_a_named_day_is_on_that_day(chat: Chat) -> None:
    chat.say("明天想约个保洁")
    assert chat.last_buttons == SATURDAY_WINDOWS  # the same three windows, on Tuesday
    assert "要求" in chat.say("下午")  # Tuesday afternoon, not this (Monday) afternoon
    assert "预约时间：11月24日(周二) 14:00-16:00" in chat.say("没有")


def test_booking_a_day_before_the_service_is_known_is_kept(chat: Chat) -> None:
    chat.say("我想周六预约一下")
    assert "11月28日(周六)有这几个时间可以" in chat.say("家政保洁")


def test_booking_a_full_day_offers_the_nearest_days_with_room(chat: Chat, app: App) -> None:
    book_out(app, SATURDAY)
    reply = chat.say("周六想约个保洁")
    assert "11月28日(周六)已经没有空的时段了" in reply
    assert "11月27日(周五)、11月29日(周日)" in reply
    assert all("周五" in b or "周日" in b for b in chat.last_buttons) and len(chat.last_buttons) == 6
    assert "要求" in chat.press("11月29日(周日) 09:00-11:00")
    assert "预约时间：11月29日(周日) 09:00-11:00" in chat.say("没有")


def test_booking_with_no_room_that_week_promises_no_waiting_list(chat: Chat, app: App) -> None:
    for day in range(13):  # today (Monday) to the Saturday after next
        book_out(app, NOW + timedelta(days=day), hours=(14, 16) if day == 0 else (9, 14, 16))
    reply = chat.say("周六想约个保洁")
    assert "前后一周的服务时段都约满了" in reply and "候补" not in reply
    assert chat.last_buttons == ["转人工"]


def test_booking_a_full_window_offers_the_rest_of_that_day(app: App) -> None:
    book_out(app, SATURDAY, hours=(9,))
    chat = Chat(app, "tenant")
    reply = chat.say("周六上午九点约保洁")
    assert "约满" in reply and "11月28日(周六)有这几个时间可以" in reply
    assert chat.last_buttons == SATURDAY_WINDOWS[1:]


def test_booking_a_time_outside_the_windows_offers_that_days_windows(chat: Chat) -> None:
    reply = chat.say("周六晚上八点约保洁")
    assert "不在服务时段内" in reply and chat.last_buttons == SATURDAY_WINDOWS


def test_booking_time_corrections_at_the_summary(chat: Chat, app: App) -> None:
    chat.say("周六上午想约个保洁")
    chat.say("没有")
    summary = chat.say("时间改成周日下午")
    assert "已为您修改" in summary and "预约时间：11月29日(周日) 14:00-16:00" in summary
    offer = chat.say("时间改成周五")  # a day only: its windows are offered, nothing is changed yet
    assert "11月27日(周五)有这几个时间可以" in offer and "已为您修改" not in offer
    summary = chat.press("下午 16:00-18:00")
    assert "预约时间：11月27日(周五) 16:00-18:00" in summary and "具体要求：无" in summary
    assert "YY-20261123-0001" in chat.say("确认")
    [ticket] = tickets(app)
    assert ticket.preferred_start == NOW.replace(day=27, hour=16)


def test_booking_a_correction_is_not_taken_as_the_requirements(chat: Chat) -> None:
    chat.say("周六上午想约个保洁")
    assert "要求" in chat.say("时间改成周日下午")  # asked again, not filled in with the correction
    summary = chat.say("下午来之前先打个电话")  # a time in the requirements does not move the booking
    assert "预约时间：11月29日(周日) 14:00-16:00" in summary
    assert "具体要求：下午来之前先打个电话" in summary


def test_laundry_return_date_does_not_move_the_pickup(chat: Chat) -> None:
    chat.say("明天想约洗衣")
    chat.press("上午 09:00-11:00")
    chat.say("后天")
    summary = chat.say("没有")
    assert "预约时间：11月24日(周二) 09:00-11:00" in summary and "送回日期：11月25日(周三)" in summary


def test_fee_query_answers_from_the_bills(chat: Chat) -> None:
    reply = chat.say("我家物业费还欠多少")
    assert "物业费：998.40 元" in reply and "2026-09" in reply and "缴费方式" in reply
    assert "· 停车费" not in reply  # the item asked about is listed; the others are named in one line
    assert "另有停车费、水费待缴 1018.50 元，全部待缴合计 2016.90 元" in reply
    everything = chat.say("我家还欠多少钱")
    assert "停车费" in everything and "合计" in everything


def test_fee_query_for_a_paid_up_unit(app: App) -> None:
    reply = Chat(app, "tenant").say("我的水费交了吗")
    assert "缴清" in reply
    assert "业主承担" not in reply or "租" not in reply


def test_another_units_bills_are_refused(chat: Chat) -> None:
    reply = chat.say("帮我查下5栋1单元302的物业费")
    assert "只能查询您绑定的房屋" in reply and "998" not in reply and "合计" not in reply


def test_status_query_lists_this_units_tickets_only(app: App) -> None:
    owner = Chat(app, "demo")
    owner.say("客厅插座没电了")
    owner.say("明天上午")
    owner.say("确认")
    assert "没有需要处理的工单" in Chat(app, "tenant").say("我报的修什么时候来")
    assert "没有查到您家的工单" in Chat(app, "tenant").say("查一下 BX-20261123-0001 的进度")
    reply = owner.say("我报的修什么时候来")
    assert "BX-20261123-0001" in reply and "已受理" in reply


def test_unbound_account_binds_with_a_code_and_carries_on(app: App) -> None:
    guest = Chat(app, "guest")
    assert "绑定" in guest.say("我家物业费还欠多少")
    assert "无效" in guest.say("WRONG1")
    reply = guest.say("SUN888")
    assert "绑定成功" in reply and "2栋2单元801" in reply and "继续处理" in reply
    with app.sessions() as session:
        account = session.scalars(select(ChannelAccount).where(ChannelAccount.external_id == "guest")).one()
        assert account.resident is not None and account.resident.name == "吴磊"


def test_a_repair_asked_for_before_binding_goes_on_as_a_repair_after_it(app: App) -> None:
    guest = Chat(app, "guest")
    assert "绑定" in guest.say("我要报修")
    reply = guest.say("SUN888")
    assert "绑定成功" in reply and "继续处理" in reply
    assert "家里（户内）的问题" in guest.last[-1] and "工单" not in guest.last[-1]  # not a status answer
    assert "描述一下问题" in guest.say("户内")  # the repair form goes on


def test_binding_by_unit_and_phone_and_wrong_phone(app: App) -> None:
    stranger = Chat(app, "stranger")
    stranger.say("我要报修")
    assert "不一致" in stranger.say("2栋2单元801 13900000000")
    assert "没有找到" in stranger.say("9栋1单元101 13800138005")
    assert "绑定成功" in stranger.say("2栋2单元801 13800138005")


def test_binding_locks_after_too_many_attempts(app: App) -> None:
    stranger = Chat(app, "stranger")
    stranger.say("查物业费")
    for attempt in range(4):
        stranger.say(f"WRONG{attempt}")
    assert "尝试次数过多" in stranger.say("WRONG9")
    assert "尝试次数过多" in stranger.say("查物业费") or "绑定" in stranger.last[0]
    stranger.say("SUN888")  # even the right code no longer works online
    assert "绑定成功" not in "\n".join(stranger.last)


def test_unbound_emergency_still_gets_the_duty_phone(app: App) -> None:
    reply = Chat(app, "stranger").say("电梯里困人了 快来")
    assert "0571-88880000" in reply
    [ticket] = tickets(app)
    assert ticket.kind == "emergency" and "未绑定" in ticket.location


def test_handoff_enquiry_and_small_talk(chat: Chat, app: App) -> None:
    assert "转接人工" in chat.say("转人工")
    assert "0571-88881234" in chat.say("物业电话是多少")
    assert "不客气" in chat.say("谢谢")
    assert [t.kind for t in tickets(app)] == ["handoff"]


def test_the_same_message_id_twice_gets_the_same_answer_and_creates_nothing(chat: Chat, app: App) -> None:
    chat.say("救命 厨房着火了", message_id="wx-1")
    first = chat.last
    chat.say("救命 厨房着火了", message_id="wx-1")
    assert chat.last == first
    assert len(tickets(app)) == 1


def test_bad_input_gets_a_polite_specific_reply(chat: Chat, app: App) -> None:
    for text in ("", "   ", "\x00\x07", "😀😀😀", "'; DROP TABLE tickets; --", "x" * 10_000):
        reply = chat.say(text)
        assert reply and "系统开小差" not in reply, text
    chat.say("厨房水管漏水了")
    past = chat.say("昨天上午")
    assert "已经过去了" in past
    chat.say("取消")
    assert tickets(app) == []


def test_a_ten_thousand_character_description_is_kept_short(chat: Chat, app: App) -> None:
    chat.say("厨房水管漏水了" + "很严重" * 3000)
    chat.say("尽快")
    chat.say("确认")
    [ticket] = tickets(app)
    assert 0 < len(ticket.description) <= 2000


def test_photos_before_words_are_kept_for_the_repair(chat: Chat, app: App) -> None:
    assert "照片收到了" in chat.say("", photos=("photo-1",))
    chat.say("卫生间天花板在渗水", photos=("photo-2",))
    chat.say("尽快")
    chat.say("确认")
    [ticket] = tickets(app)
    assert ticket.photos == ["photo-1", "photo-2"]


def test_different_emergencies_from_one_account_are_tickets_of_their_own(chat: Chat, app: App) -> None:
    reports = [
        "电梯卡在8楼了 我妈还在里面出不来",
        "楼道里着火了 全是烟",
        "家里燃气味好大",
        "我爸突然晕倒了 叫不醒",
        "卫生间水管爆了 水喷得到处都是",
    ]
    for report in reports:
        assert "【紧急】" in chat.say(report)
    found = tickets(app)
    assert [t.kind for t in found] == ["emergency"] * 5
    assert all(t.repeat_count == 0 for t in found)
    pages = [m for m in staff_messages(app) if m.urgent]
    assert len(pages) == 5 and not any("催办" in m.text for m in pages)


def test_the_same_emergency_again_is_a_reminder_on_its_ticket(chat: Chat, app: App) -> None:
    chat.say("楼道里着火了 全是烟")
    chat.say("楼道的火越来越大了 快来人")
    chat.say("救命啊 快来人")  # names no hazard: the same matter
    [ticket] = tickets(app)
    assert ticket.repeat_count == 2
    assert sum("催办" in m.text for m in staff_messages(app)) == 2


def test_a_gas_leak_at_home_is_not_merged_into_a_stairwell_fire(chat: Chat, app: App) -> None:
    chat.say("楼道里着火了 全是烟")
    chat.say("家里也有很大的燃气味")
    fire, gas = tickets(app)
    assert (fire.repeat_count, gas.repeat_count) == (0, 0) and gas.priority == "urgent"
