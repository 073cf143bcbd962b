"""Broadcasts on both databases: who gets a notice, when, outage questions answered with the notice,
opt-in greetings, cancelling, and the CLI."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.app import App
from bot.cli import main
from data.clock import SHANGHAI, FixedClock
from data.db import transaction
from data.models import Ticket
from data.store import Store
from flows.jobs.broadcasts import NoticeError, NoticeRequest, UnitRange, cancel_notice, create_notice
from tests.conftest import NOW, Chat
from tests.integration.outbox_helpers import outbox, run_sweeps

TOMORROW_9 = datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)


def _notify(app: App, request: NoticeRequest) -> int:
    with transaction(app.sessions) as session:
        store = Store(session)
        return create_notice(store, store.compound(), request, app.clock.now(), "staff:1").id


def _recipients(app: App, kind: str = "notice") -> list[str]:
    return sorted(r.recipient for r in outbox(app, "console") if r.kind == kind)


def _water_outage(buildings: tuple[int, ...] = (3,)) -> NoticeRequest:
    return NoticeRequest(
        "outage",
        "二次供水水箱清洗",
        utility="water",
        buildings=buildings,
        starts_at=NOW,
        ends_at=NOW + timedelta(hours=6),
    )


def test_outage_notice_reaches_the_building_only_with_restoration_time(app: App) -> None:
    _notify(app, _water_outage())
    assert _recipients(app) == ["demo", "family"]  # 3栋; 周阿姨 in 1栋 is not told
    text = outbox(app, "console")[0].text
    assert "停水" in text and "恢复供水" in text and "16:00" in text and "不便之处请您见谅" in text


def test_unit_range_and_everyone(app: App) -> None:
    _notify(app, NoticeRequest("general", "电梯年检", units=(UnitRange.parse("3-2-1501:1502"),)))
    assert _recipients(app) == ["demo", "family"]
    _notify(app, NoticeRequest("general", "楼道清洁"))
    assert _recipients(app).count("elder") == 1 and _recipients(app).count("tenant") == 1
    assert UnitRange.parse("5-1-301:302").contains(5, 1, "302")
    assert not UnitRange.parse("5-1-301:302").contains(5, 1, "1302")
    with pytest.raises(NoticeError):
        UnitRange.parse("三栋")


def test_pest_control_a_day_ahead_and_events_a_week_ahead(app: App) -> None:
    start = datetime(2026, 11, 28, 9, 0, tzinfo=SHANGHAI)
    _notify(app, NoticeRequest("pest", "", starts_at=start))
    _notify(
        app,
        NoticeRequest("event", "地点：会所二楼", title="业主恳谈会", starts_at=start + timedelta(days=10)),
    )
    rows = outbox(app, "console")
    pest = [r for r in rows if "消杀" in r.text]
    event = [r for r in rows if "恳谈会" in r.text]
    assert pest and all(r.due_at == start - timedelta(days=1) for r in pest)
    assert event and all(r.due_at == start + timedelta(days=3) for r in event)
    assert "关好门窗" in pest[0].text


def test_quiet_hours_push_a_notice_to_the_morning_unless_urgent(app: App, clock: FixedClock) -> None:
    clock.set(datetime(2026, 11, 23, 22, 0, tzinfo=SHANGHAI))
    _notify(app, NoticeRequest("general", "明早九点消防演练", buildings=(1,)))
    _notify(
        app,
        NoticeRequest(
            "outage", "水管爆裂抢修", utility="water", buildings=(1,), starts_at=clock.now(), urgent=True
        ),
    )
    normal, urgent = outbox(app, "console")
    assert normal.due_at == datetime(2026, 11, 24, 8, 0, tzinfo=SHANGHAI)
    assert urgent.due_at == clock.now() and urgent.urgent


def test_outage_question_gets_the_notice_not_a_ticket(app: App) -> None:
    _notify(app, _water_outage())
    reply = Chat(app, "demo").say("怎么停水了?")
    assert "计划内的停水" in reply and "恢复供水" in reply
    with app.sessions() as session:
        assert Store(session).count(Ticket) == 0
    elder = Chat(app, "elder").say("怎么停水了?")  # 1栋: not in the notice
    assert "计划内的停水" not in elder


def test_outage_question_after_restoration_is_a_repair_again(app: App, clock: FixedClock) -> None:
    _notify(app, _water_outage())
    clock.advance(hours=10)  # restored at +6 h, plus the 3 h grace
    assert "计划内的停水" not in Chat(app, "demo").say("怎么停水了?")


def test_greetings_only_to_those_who_opted_in(app: App) -> None:
    assert "已为您开通节日问候" in Chat(app, "elder").say("订阅节日问候")
    _notify(app, NoticeRequest("greeting", "中秋快乐，阖家幸福！", title="中秋节快乐"))
    assert _recipients(app, "greeting") == ["elder"]
    assert "已为您取消" in Chat(app, "elder").say("退订节日问候")
    _notify(app, NoticeRequest("greeting", "重阳节快乐！"))
    assert _recipients(app, "greeting") == ["elder"]


def test_cancel_takes_back_what_has_not_gone(app: App) -> None:
    notice = _notify(app, NoticeRequest("pest", "", buildings=(3,), starts_at=NOW + timedelta(days=3)))
    with transaction(app.sessions) as session:
        assert cancel_notice(Store(session), notice, NOW, "staff:1") == 2
    assert {r.status for r in outbox(app, "console")} == {"cancelled"}


def test_bad_requests_are_refused(app: App) -> None:
    with pytest.raises(NoticeError):
        _notify(app, NoticeRequest("outage", "检修", starts_at=NOW))  # which utility?
    with pytest.raises(NoticeError):
        _notify(
            app,
            NoticeRequest("outage", "检修", utility="water", starts_at=NOW, ends_at=NOW - timedelta(hours=1)),
        )


def test_welcome_and_birthday(app: App, clock: FixedClock) -> None:
    with transaction(app.sessions) as session:
        store = Store(session)
        elder = store.account("console", "elder").resident
        assert elder is not None
        elder.moved_in = NOW.date() - timedelta(days=1)
        elder.birthday = NOW.date().replace(year=1950)
    Chat(app, "elder").say("订阅节日问候")
    run_sweeps(app, "notices")
    run_sweeps(app, "notices")
    kinds = sorted(r.kind for r in outbox(app, "console") if r.recipient == "elder")
    assert kinds == ["greeting", "welcome"]


def test_broadcast_cli(
    app: App, db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    code = main(
        [
            "broadcast",
            "--kind",
            "outage",
            "--utility",
            "power",
            "--building",
            "3",
            "--start",
            "2026-11-24T09:00",
            "--end",
            "2026-11-24T12:00",
            "--text",
            "配电房检修",
            "--now",
            NOW.isoformat(),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "2 个账号" in out and "停电" in out
    assert main(["broadcast", "--kind", "general", "--text", "x", "--now", NOW.isoformat()]) == 2  # who?
    assert main(["broadcast", "--list"]) == 0 and "#1 outage" in capsys.readouterr().out
    assert main(["broadcast", "--cancel", "1"]) == 0
    assert "收回未发送的消息 2 条" in capsys.readouterr().out
