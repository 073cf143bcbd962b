"""Binding codes from the office, on SQLite and PostgreSQL: ``propbot codes issue|list|revoke``, and a
guest binding with them through the engine: once, before expiry, unless revoked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.app import App
from bot.cli import main
from bot.desk.qr import qr_png
from data.clock import FixedClock, local
from data.db import transaction
from data.models import BindingCode
from data.store import Store
from flows.domain import binding_codes
from flows.domain.binding_codes import ALPHABET, LENGTH, CodeError
from tests.conftest import Chat


@pytest.fixture
def cli(app: App, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.setenv("DATABASE_URL", app.settings.database_url)
    monkeypatch.delenv("PROPBOT_CONFIG", raising=False)
    monkeypatch.delenv("TELEGRAM_BOT_USERNAME", raising=False)
    yield app


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["codes", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def issue(app: App, address: str = "3-2-1502", minutes: float = 60 * 24 * 7) -> str:
    with transaction(app.sessions) as session:
        store = Store(session)
        resident = binding_codes.resident_for(store, binding_codes.find_unit(store, address))
        return binding_codes.issue(
            store, resident, app.clock.now(), "staff:cli", timedelta(minutes=minutes)
        ).code


def test_issue_prints_the_line_and_writes_the_qr(
    cli: App, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    png = tmp_path / "1502.png"
    code, out, _ = run(capsys, "issue", "--unit", "3-2-1502", "--expires", "7d", "--qr", str(png), "--json")
    assert code == 0
    row = json.loads(out)
    assert len(row["code"]) == LENGTH and set(row["code"]) <= set(ALPHABET)
    assert (row["unit"], row["resident"], row["state"]) == ("3栋2单元1502", "李明", "issued")
    created, expires = (datetime.fromisoformat(row[k]) for k in ("created_at", "expires_at"))
    assert expires - created == timedelta(days=7)  # the command runs on the system clock
    assert row["line"] == (
        f"3栋2单元1502 李明 绑定码：{row['code']}（仅限使用一次，{local(expires):%Y-%m-%d %H:%M} 前有效）"
    )
    assert png.read_bytes() == qr_png(row["code"]) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    code, out, _ = run(capsys, "list", "--unit", "3-2-1502", "--json")
    assert [r["code"] for r in json.loads(out)] == [row["code"]]
    code, out, _ = run(
        capsys, "issue", "--unit", "3-2-1502", "--resident", "王芳", "--expires", "12h", "--json"
    )
    assert code == 0 and json.loads(out)["resident"] == "王芳"


def test_the_qr_holds_the_telegram_deep_link_when_the_bot_is_named(
    cli: App, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_USERNAME", "@SunshineBot")
    png = tmp_path / "qr.png"
    code, out, _ = run(capsys, "issue", "--unit", "3-2-1502", "--qr", str(png), "--json")
    assert code == 0
    assert png.read_bytes() == qr_png(f"https://t.me/SunshineBot?start={json.loads(out)['code']}")


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["issue", "--unit", "3-2-9999"], "没有找到房屋 3-2-9999"),
        (["issue", "--unit", "三栋"], "房号写成 楼栋-单元-房号"),
        (["issue", "--unit", "3-2-1502", "--expires", "soon"], "有效期写成 7d"),
        (["issue", "--unit", "3-2-1502", "--resident", "路人甲"], "没有住户“路人甲”"),
        (["revoke", "NOPE2345"], "没有绑定码 NOPE2345"),
    ],
)
def test_bad_requests_say_why(
    cli: App, capsys: pytest.CaptureFixture[str], argv: list[str], error: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code == 1 and error in err
    with cli.sessions() as session:
        assert Store(session).count(BindingCode) == 2  # the demo's two, nothing added


def test_a_code_binds_once(cli: App, capsys: pytest.CaptureFixture[str]) -> None:
    code = issue(cli)
    guest, second = Chat(cli, "guest"), Chat(cli, "stranger")
    assert "绑定成功" in guest.say(code.lower()) and "3栋2单元1502" in guest.last[0]
    assert "绑定成功" not in second.say(f"绑定码 {code}")
    assert "已经使用过了" in second.last[0]
    _, out, _ = run(capsys, "list", "--state", "used", "--json")
    assert [r["code"] for r in json.loads(out)] == [code]
    _, _, err = run(capsys, "revoke", code)
    assert "已使用，无需作废" in err


def test_an_expired_code_does_not_bind(
    cli: App, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    code = issue(cli, minutes=30)
    clock.advance(minutes=31)
    guest = Chat(cli, "guest")
    assert "绑定成功" not in guest.say(f"绑定码 {code}") and "已过期" in guest.last[0]
    with cli.sessions() as session:
        assert Store(session).redeem_binding_code(code, clock.now()) is None
    _, out, _ = run(capsys, "list", "--state", "expired", "--json")  # the CLI's own clock: later still
    assert code in [r["code"] for r in json.loads(out)]


def test_a_revoked_code_does_not_bind(
    cli: App, clock: FixedClock, capsys: pytest.CaptureFixture[str]
) -> None:
    code = json.loads(run(capsys, "issue", "--unit", "3-2-1502", "--expires", "90d", "--json")[1])["code"]
    assert run(capsys, "revoke", code.lower())[0] == 0  # the command's clock is the system's
    guest = Chat(cli, "guest")
    assert "绑定成功" not in guest.say(code)
    with transaction(cli.sessions) as session:
        store = Store(session)
        assert store.redeem_binding_code(code, clock.now()) is None
        assert store.session.get(BindingCode, code).used_at is None  # type: ignore[union-attr]
        with pytest.raises(CodeError, match="已作废"):
            binding_codes.revoke(store, code, clock.now())


def test_the_demo_codes_never_expire(cli: App, clock: FixedClock) -> None:
    clock.advance(days=400)
    assert "绑定成功" in Chat(cli, "guest").say("SUN888")
