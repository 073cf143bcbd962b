"""``propbot staff link NAME --wecom USERID``: the WeCom userid the app knows a staff member by."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest
from sqlalchemy import select

from bot.app import App
from bot.cli import main
from bot.settings import Settings
from data.clock import FixedClock
from data.models import Staff


@pytest.fixture
def app(db_url: str, clock: FixedClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("PROPBOT_CONFIG", raising=False)
    application = App(replace(Settings(), database_url=db_url), clock)
    yield application
    application.close()


def link(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["staff", "link", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def wecom_of(app: App, name: str) -> str | None:
    with app.sessions() as session:
        return session.scalars(select(Staff.wecom_user_id).where(Staff.name == name)).one()


def test_link_sets_changes_and_clears_the_userid(app: App, capsys: pytest.CaptureFixture[str]) -> None:
    done = (0, "已将 王师傅 绑定到企业微信账号 wangshifu\n", "")
    assert link(capsys, "王师傅", "--wecom", "wangshifu") == done
    assert wecom_of(app, "王师傅") == "wangshifu"
    assert link(capsys, "王师傅", "--wecom", "wang2")[0] == 0
    assert wecom_of(app, "王师傅") == "wang2"
    assert link(capsys, "王师傅", "--wecom", "")[1] == "已解除 王师傅 的企业微信绑定\n"
    assert wecom_of(app, "王师傅") is None


def test_one_userid_is_one_staff_member_and_unknown_names_are_refused(
    app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    assert link(capsys, "王师傅", "--wecom", "wangshifu")[0] == 0
    code, _, err = link(capsys, "张师傅", "--wecom", "wangshifu")
    assert code == 1 and "已绑定给 王师傅" in err
    assert wecom_of(app, "张师傅") is None
    code, _, err = link(capsys, "无此人", "--wecom", "x1")
    assert code == 1 and "没有在岗员工 无此人" in err
    code, _, err = link(capsys, "张师傅", "--wecom", "has space")
    assert code == 1 and wecom_of(app, "张师傅") is None
