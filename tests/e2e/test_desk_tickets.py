"""The desk's inbox, ticket page and actions over real HTTP, on SQLite and PostgreSQL: filters, the
timeline and photos, claim / assign / done / reopen / close, and a reply that reaches the
resident's Telegram chat through the outbox and the dispatcher (and the resident's answer back)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.desk.qr import qr_png
from data.db import transaction
from data.models import OutboxMessage
from data.store import Store
from flows.domain.tickets import NewTicket, open_ticket
from tests.e2e.conftest import STAFF_CHAT, Propbot
from tests.e2e.desk_support import DeskClient, add_login, bind, open_repair, ticket_state

RESIDENT = 610001  # 李明's Telegram chat


@pytest.fixture
def clerk(desk: Propbot) -> Iterator[DeskClient]:
    add_login(desk.app, "张丽")
    client = DeskClient.at(desk.url)
    assert client.login("张丽").status_code == 303
    yield client
    client.close()


def numbers(page: str) -> list[str]:
    return re.findall(r'href="/desk/tickets/([A-Z]{2}-\d{8}-\d{4})"', page)


def flash(client: DeskClient, path: str) -> str:
    found = re.search(r'<p class="flash[^"]*" role="status">([^<]*)</p>', client.http.get(path).text)
    return found.group(1) if found else ""


def seed(desk: Propbot) -> dict[str, str]:
    """A repair in 3栋 (李明's), a complaint about a common area reported from 2栋, a late repair in
    5栋 and a closed one: name -> number."""
    app = desk.app
    bind(app, "telegram", str(RESIDENT), "李明")
    made = {"repair": open_repair(app, ("telegram", str(RESIDENT)))}
    with transaction(app.sessions) as session:
        store = Store(session)
        compound, now = store.compound(), app.clock.now()
        complaint = NewTicket(kind="complaint", description="楼道堆满杂物", area="common", location="北门")
        made["complaint"] = open_ticket(store, compound, None, complaint, now, "resident").number
        late = open_ticket(
            store, compound, None, NewTicket(kind="repair", description="电梯异响"), now, "system"
        )
        five = store.find_unit(5, 1, "801")
        assert five is not None
        late.unit_id, late.arrive_by = five.id, now - timedelta(hours=1)
        made["late"] = late.number
        done = open_ticket(
            store, compound, None, NewTicket(kind="repair", description="灯不亮"), now, "system"
        )
        done.status = "closed"
        made["closed"] = done.number
    return made


def test_the_inbox_filters_by_status_kind_building_and_lateness(desk: Propbot, clerk: DeskClient) -> None:
    made = seed(desk)
    assert set(numbers(clerk.http.get("/desk/tickets").text)) == {
        made["repair"],
        made["complaint"],
        made["late"],
    }
    everything = numbers(clerk.http.get("/desk/tickets?status=all").text)
    assert made["closed"] in everything and len(everything) == 4
    assert numbers(clerk.http.get("/desk/tickets?status=closed").text) == [made["closed"]]
    assert numbers(clerk.http.get("/desk/tickets?kind=complaint").text) == [made["complaint"]]
    assert numbers(clerk.http.get("/desk/tickets?building=3").text) == [made["repair"]]
    assert numbers(clerk.http.get("/desk/tickets?building=5").text) == [made["late"]]
    late = clerk.http.get("/desk/tickets?late=1")
    assert numbers(late.text) == [made["late"]] and "超时" in late.text
    assert numbers(clerk.http.get("/desk/tickets?kind=complaint&building=3").text) == []
    assert "没有符合条件的工单" in clerk.http.get("/desk/tickets?status=done").text


def test_the_ticket_page_shows_the_timeline_and_the_photos(desk: Propbot, clerk: DeskClient) -> None:
    picture = qr_png("photo")
    desk.telegram.files["AgAC-leak"] = picture
    number = open_repair(desk.app, description="卫生间漏水，见照片")
    with transaction(desk.app.sessions) as session:
        ticket = Store(session).tickets.by_number(number)
        assert ticket is not None
        ticket.photos = ["telegram:AgAC-leak", "telegram:AgAC-gone"]
    assert clerk.post(f"/desk/tickets/{number}/claim").status_code == 303
    page = clerk.http.get(f"/desk/tickets/{number}")
    assert page.status_code == 200
    assert "卫生间漏水，见照片" in page.text and "3栋2单元1502" in page.text
    timeline = page.text[page.text.index("时间线") :]
    assert timeline.index("受理") < timeline.index("派工") and "张丽" in timeline
    assert f'src="/desk/tickets/{number}/photos/0"' in page.text
    photo = clerk.http.get(f"/desk/tickets/{number}/photos/0")
    assert photo.status_code == 200 and photo.headers["content-type"] == "image/png"
    assert photo.content == picture
    assert clerk.http.get(f"/desk/tickets/{number}/photos/1").status_code in (404, 502)  # not on Telegram
    assert clerk.http.get(f"/desk/tickets/{number}/photos/2").status_code == 404
    assert clerk.http.get("/desk/tickets/BX-20000101-0001").status_code == 404


def test_claim_assign_done_reopen_close(desk: Propbot, clerk: DeskClient) -> None:
    number = open_repair(desk.app)
    page = f"/desk/tickets/{number}"
    assert clerk.post(f"{page}/claim", page=page).status_code == 303
    assert flash(clerk, page) == "接单成功，已通知居民"
    assert ticket_state(desk.app, number)[:2] == ("dispatched", "张丽")
    with desk.app.sessions() as session:
        told = session.scalars(select(OutboxMessage.text).where(OutboxMessage.kind == "dispatched")).all()
    assert any("已由 张丽 接单" in t for t in told)  # the resident is told, as from the group's button
    clerk.post(f"{page}/claim", page=page)  # the service layer's claim: one's own again changes nothing
    assert flash(clerk, page) == "您已经接了这个单"
    assert ticket_state(desk.app, number)[2] == ["received", "dispatched"]

    add_login(desk.app, "刘芳")
    other = DeskClient.at(desk.url)
    other.login("刘芳")
    other.post(f"{page}/claim", page=page)
    assert "已由 张丽 接单" in flash(other, page)  # refused: reassign instead
    assert ticket_state(desk.app, number)[1] == "张丽"

    staff = re.findall(r'<option value="(\d+)">张师傅', clerk.http.get(page).text)
    assert clerk.post(f"{page}/assign", {"staff": staff[0]}, page=page).status_code == 303
    assert flash(clerk, page) == f"{number} 已派给 张师傅（已派工），已通知居民。"  # as `propbot tickets`
    assert ticket_state(desk.app, number)[:2] == ("dispatched", "张师傅")
    assert clerk.post(f"{page}/done", page=page).status_code == 303
    assert flash(clerk, page) == f"{number} 已完成，已请居民确认。"
    assert ticket_state(desk.app, number)[0] == "done"
    assert clerk.post(f"{page}/reopen", {"text": "居民说还在漏"}, page=page).status_code == 303
    assert ticket_state(desk.app, number)[0] == "dispatched"
    assert clerk.post(f"{page}/close", {"text": "电话确认已修好"}, page=page).status_code == 303
    status, _, kinds = ticket_state(desk.app, number)
    assert status == "closed"
    assert kinds == ["received", "dispatched", "reassigned", "done", "reopened", "closed"]
    clerk.post(f"{page}/close", page=page)
    assert "已经关闭" in flash(clerk, page)  # a refused step says why and changes nothing
    assert ticket_state(desk.app, number)[2] == kinds
    timeline = clerk.http.get(page).text
    assert "电话确认已修好" in timeline and "居民说还在漏" in timeline
    assert clerk.post(f"{page}/explode", page=page).status_code == 404


def test_a_reply_reaches_the_residents_chat_and_the_answer_comes_back(
    desk: Propbot, clerk: DeskClient
) -> None:
    bind(desk.app, "telegram", str(RESIDENT), "李明")
    number = open_repair(desk.app, ("telegram", str(RESIDENT)))
    page = f"/desk/tickets/{number}"
    text = "师傅下午三点前到，请家里留人。有事打我 13912345678"
    assert clerk.post(f"{page}/reply", {"text": text}, page=page).status_code == 303
    sent = desk.telegram.wait_for(lambda: [t for t in desk.telegram.texts_to(RESIDENT) if number in t])
    assert sent[0].startswith(f"【物业工作人员 张丽】关于您的工单 {number}：")
    assert "师傅下午三点前到" in sent[0] and "13912345678" not in sent[0]  # contacts masked

    answers = desk.tg_say(RESIDENT, "好的，我在家")
    assert any("转达给张丽" in a for a in answers)
    back = desk.telegram.wait_for(
        lambda: [t for t in desk.telegram.texts_to(STAFF_CHAT) if "【居民回复】" in t]
    )
    assert back == [f"【居民回复】{number}：好的，我在家"]
    timeline = clerk.http.get(page).text
    assert "回复居民" in timeline and "居民回复" in timeline and "好的，我在家" in timeline

    clerk.post(f"{page}/reply", {"text": "   "}, page=page)
    assert "请写上要回复居民的话" in flash(clerk, page)
