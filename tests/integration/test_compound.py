"""A compound created by ``propbot import`` has no phones, hours or address: ``propbot compound``
shows and sets them (phones checked), residents get polite answers meanwhile (never an empty number,
an emergency still gets the public emergency numbers), and ``propbot serve`` warns at start."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.app import App
from bot.cli import main
from bot.cli.serve import warn_missing_contacts
from bot.settings import Settings
from data.clock import FixedClock
from data.db import transaction
from data.models import Compound, OutboxMessage, Ticket
from tests.conftest import Chat

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def imported(
    empty_db_url: str, clock: FixedClock, embedded_nlu: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[App]:
    """An empty store into which the office imported its flats: the compound 翠湖苑, nothing else."""
    monkeypatch.setenv("DATABASE_URL", empty_db_url)
    monkeypatch.delenv("PROPBOT_CONFIG", raising=False)
    assert main(["import", "units", str(SAMPLES / "units.csv"), "--compound", "翠湖苑"]) == 0
    application = App(replace(Settings(), database_url=empty_db_url), clock)
    application.__dict__["nlu"] = embedded_nlu
    yield application
    application.close()


def compound_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["compound", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def shown(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, _ = compound_cli(capsys, "show", "--json")
    assert code == 0
    return dict(json.loads(out))


def kinds(app: App) -> list[str]:
    with app.sessions() as session:
        return [t.kind for t in session.scalars(select(Ticket).order_by(Ticket.id)).unique()]


# -- the command ----------------------------------------------------------------------------------------
def test_show_then_set_with_phones_checked(imported: App, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = compound_cli(capsys, "show")
    assert code == 0
    assert "小区名称：翠湖苑" in out and "24小时值班电话：（未设置）" in out
    assert "紧急情况的回复里将没有值班电话" in out and "propbot compound set --duty-phone ..." in out

    code, _, err = compound_cli(capsys, "set", "--duty-phone", "12345", "--office-hours", "每天 9:00-17:00")
    assert code == 2 and "24小时值班电话：“12345”不是有效的电话号码" in err
    assert shown(capsys)["office_hours"] == "每天 08:30-18:00"  # nothing of a refused set is stored

    code, out, _ = compound_cli(
        capsys,
        "set",
        "--duty-phone",
        "0571 8888 0000",
        "--office-phone",
        "(0571)88881234-801",
        "--office-hours",
        "每天 9:00-17:00",
        "--office-address",
        "南门物业服务中心",
        "--name",
        "翠湖苑二期",
    )
    assert code == 0 and "24小时值班电话：0571-88880000" in out
    assert shown(capsys) == {
        "code": "翠湖苑",
        "name": "翠湖苑二期",
        "duty_phone": "0571-88880000",
        "office_phone": "0571-88881234转801",
        "office_hours": "每天 9:00-17:00",
        "office_address": "南门物业服务中心",
        "payment_methods": "",
        "missing": ["缴费方式"],
    }
    code, _, err = compound_cli(capsys, "set")
    assert code == 2 and "nothing to set" in err


def test_several_compounds_need_naming(imported: App, capsys: pytest.CaptureFixture[str]) -> None:
    with transaction(imported.sessions) as session:
        session.add(Compound(code="lake", name="湖畔居", duty_phone="", office_phone="", settings={}))
    code, _, err = compound_cli(capsys, "show")
    assert code == 2 and "库中有多个小区（翠湖苑、湖畔居）" in err
    assert compound_cli(capsys, "set", "--compound", "lake", "--duty-phone", "13800138000")[0] == 0
    code, out, _ = compound_cli(capsys, "show", "--compound", "湖畔居", "--json")
    assert json.loads(out)["duty_phone"] == "13800138000"
    code, out, _ = compound_cli(capsys, "show", "--compound", "翠湖苑", "--json")
    assert json.loads(out)["duty_phone"] == ""


# -- what residents are told meanwhile --------------------------------------------------------------------
def test_an_emergency_without_a_duty_phone_still_gets_help(
    imported: App, capsys: pytest.CaptureFixture[str]
) -> None:
    reply = Chat(imported, "stranger").say("电梯里困人了 快来")
    assert "值班电话" not in reply and "：。" not in reply
    assert "119" in reply and "120" in reply and "110" in reply and "按电梯内的警铃" in reply
    assert kinds(imported) == ["emergency"]
    with imported.sessions() as session:
        [page] = session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "staff"))
        assert page.urgent  # the duty staff are paged all the same

    compound_cli(capsys, "set", "--duty-phone", "0571-88880000")
    reply = Chat(imported, "neighbour").say("救命 厨房着火了")
    assert "24小时值班电话：0571-88880000，请立即拨打。" in reply


def test_enquiries_help_and_handoff_never_show_an_empty_number(
    imported: App, capsys: pytest.CaptureFixture[str]
) -> None:
    chat = Chat(imported, "stranger")
    asked = chat.say("物业电话是多少")
    assert "您的问题我已经记下了" in asked and "最晚" in asked and "电话：" not in asked
    assert kinds(imported) == ["enquiry"]  # a promised reply, a task for the front desk
    assert "值班电话" not in chat.say("帮助")
    handoff = chat.say("转人工")
    assert "值班电话" not in handoff and "紧急情况请直接告诉我" in handoff

    compound_cli(capsys, "set", "--office-phone", "0571-88881234")
    answer = chat.say("物业电话是多少")
    assert answer == "物业服务中心电话：0571-88881234。"  # the duty phone left out, not shown empty
    assert kinds(imported) == ["enquiry", "handoff"]


# -- the warning at start ---------------------------------------------------------------------------------
def test_serve_warns_at_start_when_the_duty_phone_is_empty(imported: App) -> None:
    if not imported.settings.database_url.startswith("sqlite"):
        pytest.skip("the start-up check is the same on PostgreSQL; one server start is enough")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WECHAT_", "WECOM_"))}
    env["DATABASE_URL"] = imported.settings.database_url
    server = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from bot.cli import main; sys.exit(main())",
            "serve",
            "--port",
            "0",
        ],
        cwd=ROOT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        deadline, lines = time.monotonic() + 60, []
        while time.monotonic() < deadline:
            line = server.stderr.readline()
            lines.append(line)
            if "duty phone" in line or not line or "startup complete" in line:
                break
        assert "WARNING bot.cli.serve: compound 翠湖苑 has no 24-hour duty phone" in lines[-1], lines
        assert "propbot compound set --duty-phone" in lines[-1]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_no_warning_for_a_compound_with_its_duty_phone(app: App, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.cli.serve"):
        warn_missing_contacts(app)  # the demo compound has every phone
    assert caplog.records == []


def test_a_failed_binding_points_to_the_office_without_an_empty_number(imported: App) -> None:
    chat = Chat(imported, "stranger")
    chat.say("查物业费")  # unbound: asked to bind first
    replies = [chat.say(f"WRONG{attempt}") for attempt in range(5)]
    assert all(reply.endswith("如有疑问请致电物业服务中心。") for reply in replies[:-1])
    assert "尝试次数过多" in replies[-1] and "值班电话" not in replies[-1]
    assert "紧急情况请直接告诉我" in replies[-1]
