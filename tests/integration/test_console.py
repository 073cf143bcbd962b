"""``propbot chat``, the console channel, as a fresh process: the composition root (bot/app.py) alone
must give it everything the web server's channels have (binding codes, the staff relay, ...)."""

from __future__ import annotations

import os
import subprocess
import sys

from sqlalchemy import select

from data.db import make_engine, make_session_factory
from data.models import ChannelAccount

NOW = "2026-11-23T10:00:00+08:00"


def console(db_url: str, account: str, *lines: str) -> str:
    """Pipe ``lines`` through ``propbot chat --as account`` in its own process; what it printed."""
    env = {**os.environ, "DATABASE_URL": db_url, "PROPBOT_NLU": "embedded"}
    env.pop("PROPBOT_CONFIG", None)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from bot.cli import main; sys.exit(main())",
            "chat",
            "--as",
            account,
            "--now",
            NOW,
        ],
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return done.stdout


def resident_of(db_url: str, account: str) -> str | None:
    engine = make_engine(db_url)
    try:
        with make_session_factory(engine)() as session:
            found = session.scalars(select(ChannelAccount).where(ChannelAccount.external_id == account)).one()
            return found.resident.name if found.resident else None
    finally:
        engine.dispose()


def test_console_chat_binds_by_typing_the_one_time_code(db_url: str) -> None:
    printed = console(db_url, "guest", "SUN888")
    assert "绑定成功" in printed and "2栋2单元801" in printed
    assert resident_of(db_url, "guest") == "吴磊"


def test_after_binding_by_code_a_repair_request_starts_the_repair_form(db_url: str) -> None:
    printed = console(db_url, "guest", "SUN888", "我要报修")  # "我要报修" is also the menu's button
    assert "绑定成功" in printed
    assert "家里（户内）的问题，还是楼道" in printed and "工单" not in printed.split("我要报修", 1)[1]
