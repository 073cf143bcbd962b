"""``propbot tickets``: the front desk works tickets from the terminal, on SQLite and PostgreSQL.

Tickets are opened through ``flows.domain.tickets.open_ticket`` at the fixture's time; the commands run
through ``bot.cli.main`` against the same database (``DATABASE_URL``), as the office would run them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import App
from bot.cli import main
from bot.settings import Settings
from data.clock import FixedClock
from data.db import transaction
from data.models import OutboxMessage, Staff, Ticket
from data.store import Store
from flows.domain.tickets import NewTicket, open_ticket

REPAIR = "BX-20261123-0001"
COMPLAINT = "TS-20261123-0001"


@pytest.fixture
def front_desk(db_url: str, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    """The demo store with a repair from 李明 (3栋2单元1502) and a common-area complaint; CLI on it."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("PROPBOT_CONFIG", raising=False)
    app = App(replace(Settings(), database_url=db_url), clock)
    with transaction(app.sessions) as session:
        store = Store(session)
        account = store.account("console", "demo")
        repair = NewTicket(
            kind="repair",
            description="厨房水管漏水",
            category="water",
            area="in_home",
            contact_phone="13800138000",
        )
        opened = open_ticket(
            store, store.compound(), account, repair, clock.now(), f"resident:{account.resident_id}"
        )
        assert opened.number == REPAIR
        complaint = NewTicket(
            kind="complaint",
            description="楼道堆满杂物",
            category="cleaning",
            area="common",
            location="5栋1单元楼道",
        )
        open_ticket(
            store, store.compound(), account, complaint, clock.now(), f"resident:{account.resident_id}"
        )
    yield app
    app.close()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["tickets", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ticket(app: App, number: str) -> Ticket:
    with app.sessions() as session:
        found = Store(session).tickets.by_number(number)
        assert found is not None
        _ = [e.kind for e in found.events]  # load before the session closes
        return found


def outbox(app: App, number: str) -> list[tuple[str, str, str, str]]:
    """(channel, recipient, kind, text) of the ticket's outbox rows, oldest first."""
    with app.sessions() as session:
        found = Store(session).tickets.by_number(number)
        assert found is not None
        rows = session.scalars(
            select(OutboxMessage).where(OutboxMessage.ticket_id == found.id).order_by(OutboxMessage.id)
        )
        return [(m.channel, m.recipient, m.kind, m.text) for m in rows]


def staff_id(app: App, name: str) -> int:
    with app.sessions() as session:
        return session.scalars(select(Staff.id).where(Staff.name == name)).one()


# -- list and show ----------
def test_list_json_has_every_field(front_desk: App, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list", "--json")
    assert code == 0
    listed = {t["number"]: t for t in json.loads(out)}
    assert set(listed) == {REPAIR, COMPLAINT}
    repair: dict[str, Any] = listed[REPAIR]
    assert {
        k: repair[k] for k in ("kind", "kind_name", "status", "status_name", "priority", "category", "area")
    } == {
        "kind": "repair",
        "kind_name": "报修",
        "status": "received",
        "status_name": "已受理",
        "priority": "urgent",
        "category": "water",
        "area": "in_home",  # water is urgent by default
    }
    assert (repair["unit"], repair["location"], repair["contact_phone"]) == (
        "3栋2单元1502",
        "",
        "13800138000",
    )
    assert (repair["assignee"], repair["assignee_id"], repair["events"]) == (None, None, 1)
    assert repair["created_at"] == "2026-11-23T10:00:00+08:00"
    assert repair["arrive_by"] == "2026-11-23T10:15:00+08:00"  # urgent: 15 minutes
    assert repair["fix_by"] == "2026-11-23T12:15:00+08:00"  # ordinary repair: 2 hours after
    assert repair["reply_by"] is None and repair["done_at"] is None and repair["closed_at"] is None
    complaint = listed[COMPLAINT]
    assert (complaint["unit"], complaint["location"], complaint["area"]) == (None, "5栋1单元楼道", "common")
    assert complaint["reply_by"] == "2026-11-27T10:00:00+08:00"  # 4 working days


def test_list_filters_by_status_and_kind(front_desk: App, capsys: pytest.CaptureFixture[str]) -> None:
    def numbers(*argv: str) -> list[str]:
        code, out, _ = run(capsys, "list", "--json", *argv)
        assert code == 0
        return [t["number"] for t in json.loads(out)]

    assert numbers("--kind", "repair") == [REPAIR]
    assert sorted(numbers("--status", "open")) == [REPAIR, COMPLAINT]
    assert numbers("--status", "closed") == []
    assert numbers("--status", "received", "--kind", "complaint") == [COMPLAINT]


def test_list_table(front_desk: App, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == [
        "编号",
        "类型",
        "状态",
        "位置",
        "类别",
        "负责人",
        "受理时间",
        "时限",
    ]
    row = next(line for line in lines if line.startswith(REPAIR))
    for cell in ("报修!", "已受理", "3栋2单元1502（户内）", "water", "2026-11-23 10:00", "到场 11-23 10:15"):
        assert cell in row


def test_show_prints_fields_and_timeline(front_desk: App, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "assign", REPAIR, "王师傅")[0] == 0
    code, out, _ = run(capsys, "show", REPAIR.lower())  # numbers are matched case-blind
    lines = out.splitlines()
    assert code == 0 and lines[0] == f"{REPAIR}  报修 · 已派工"
    assert (
        "位置：3栋2单元1502（户内）" in lines and "负责人：王师傅" in lines and "内容：厨房水管漏水" in lines
    )
    timeline = lines[lines.index("时间线：") + 1 :]
    assert timeline[0] == "  2026-11-23 10:00  受理  李明  厨房水管漏水"
    assert timeline[1].endswith("  派工  staff:cli  王师傅") and len(timeline) == 2

    code, out, _ = run(capsys, "show", REPAIR, "--json")
    shown = json.loads(out)
    assert (shown["status"], shown["assignee"], shown["events"]) == ("dispatched", "王师傅", 2)
    assert [(e["kind"], e["actor_name"]) for e in shown["timeline"]] == [
        ("received", "李明"),
        ("dispatched", "staff:cli"),
    ]
    assert shown["timeline"][0]["actor"] == f"resident:{shown['resident_id']}"
    assert shown["timeline"][1]["data"] == {"staff_id": staff_id(front_desk, "王师傅")}


# -- actions ----------
def test_assign_done_reopen_close(front_desk: App, capsys: pytest.CaptureFixture[str]) -> None:
    wang = staff_id(front_desk, "王师傅")
    code, out, _ = run(capsys, "assign", REPAIR, "王师傅")
    assert (code, out.strip()) == (0, f"{REPAIR} 已派给 王师傅（已派工），已通知居民。")
    after = ticket(front_desk, REPAIR)
    assert (after.status, after.assignee_id) == ("dispatched", wang)
    resident_news = [m for m in outbox(front_desk, REPAIR) if m[0] == "console"]
    assert resident_news[-1][:3] == ("console", "demo", "dispatched") and "王师傅" in resident_news[-1][3]

    zhang = staff_id(front_desk, "张师傅")
    assert run(capsys, "assign", REPAIR, str(zhang))[0] == 0  # by id: a reassignment
    assert ticket(front_desk, REPAIR).assignee_id == zhang

    code, out, _ = run(capsys, "done", REPAIR, "--note", "换了角阀", "--as", "张师傅")
    assert (code, out.strip()) == (0, f"{REPAIR} 已完成，已请居民确认。")
    after = ticket(front_desk, REPAIR)
    assert after.status == "done" and after.done_at is not None
    assert (after.events[-1].kind, after.events[-1].actor, after.events[-1].note) == (
        "done",
        f"staff:{zhang}",
        "换了角阀",
    )
    assert outbox(front_desk, REPAIR)[-1][:3] == ("console", "demo", "done")

    code, out, _ = run(capsys, "reopen", REPAIR, "--reason", "还在滴水")
    assert (code, out.strip()) == (0, f"{REPAIR} 已重新打开（已派工，由 张师傅 跟进），已通知员工群。")
    after = ticket(front_desk, REPAIR)
    assert (after.status, after.done_at, after.events[-1].kind, after.events[-1].note) == (
        "dispatched",
        None,
        "reopened",
        "还在滴水",
    )
    staff_news = outbox(front_desk, REPAIR)[-1]
    assert staff_news[:3] == ("staff", "staff", "reopened") and "还在滴水" in staff_news[3]

    assert run(capsys, "close", REPAIR)[0] == 0
    after = ticket(front_desk, REPAIR)
    assert after.status == "closed" and after.closed_at is not None
    assert [e.kind for e in after.events] == [
        "received",
        "dispatched",
        "reassigned",
        "done",
        "reopened",
        "closed",
    ]
    assert [e.actor for e in after.events][1:] == [
        "staff:cli",
        "staff:cli",
        f"staff:{zhang}",
        "staff:cli",
        "staff:cli",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show", "BX-20991231-0001"], "错误：找不到工单 BX-20991231-0001"),
        (["assign", "BX-20991231-0001", "王师傅"], "错误：找不到工单 BX-20991231-0001"),
        (["assign", REPAIR, "无名氏"], "错误：找不到在职员工“无名氏”（请用姓名或编号）"),
        (["done", REPAIR, "--as", "9999"], "错误：找不到在职员工“9999”（请用姓名或编号）"),
        (["reopen", REPAIR], f"错误：{REPAIR} 还在处理中（已受理），无需重新打开"),
    ],
)
def test_errors_exit_1_with_a_message_and_change_nothing(
    front_desk: App, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    before = (
        ticket(front_desk, REPAIR).status,
        len(ticket(front_desk, REPAIR).events),
        len(outbox(front_desk, REPAIR)),
    )
    code, out, err = run(capsys, *argv)
    assert (code, out, err.strip()) == (1, "", message)
    after = ticket(front_desk, REPAIR)
    assert (after.status, len(after.events), len(outbox(front_desk, REPAIR))) == before


def test_steps_that_do_not_apply_to_a_closed_ticket(
    front_desk: App, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "close", REPAIR)[0] == 0
    for argv, message in (
        (["done", REPAIR], f"错误：{REPAIR} 当前状态为“已关闭”，不能进行此操作"),
        (["assign", REPAIR, "王师傅"], f"错误：{REPAIR} 当前状态为“已关闭”，不能进行此操作"),
        (["close", REPAIR], f"错误：{REPAIR} 已经关闭"),
    ):
        code, _, err = run(capsys, *argv)
        assert (code, err.strip()) == (1, message)
    assert [e.kind for e in ticket(front_desk, REPAIR).events] == ["received", "closed"]
    assert run(capsys, "reopen", REPAIR)[0] == 0  # closed tickets can still be reopened
    assert ticket(front_desk, REPAIR).status == "received"  # nobody was assigned yet


def test_escalate_and_cancel_from_the_terminal(front_desk: App, capsys: pytest.CaptureFixture[str]) -> None:
    """The same handlers as the group's 升级 button: the lead first, then the director."""
    assert run(capsys, "escalate", REPAIR)[1].strip() == "已升级至 赵主管"
    assert run(capsys, "escalate", REPAIR, "--as", "王师傅")[1].strip() == "已升级至 孙主任"
    escalated = [(e.actor, e.note) for e in ticket(front_desk, REPAIR).events if e.kind == "escalated"]
    assert escalated == [
        ("staff:cli", "升级至 赵主管"),
        (f"staff:{staff_id(front_desk, '王师傅')}", "升级至 孙主任"),
    ]
    cards = [m for m in outbox(front_desk, REPAIR) if m[2] == "escalation"]
    assert len(cards) == 2 and "升级人：管理处" in cards[0][3] and "升级人：王师傅" in cards[1][3]

    code, out, _ = run(capsys, "cancel", REPAIR, "--reason", "居民电话说已自行修好")
    assert (code, out.strip()) == (0, f"{REPAIR} 已取消。")
    assert ticket(front_desk, REPAIR).status == "cancelled"
    told = [m for m in outbox(front_desk, REPAIR) if m[2] == "cancelled"]
    assert {m[0] for m in told} == {"console", "staff"} and all("已自行修好" in m[3] for m in told)
    code, _, err = run(capsys, "escalate", REPAIR)
    assert (code, err.strip()) == (1, f"错误：{REPAIR} 已结束，无需升级")
