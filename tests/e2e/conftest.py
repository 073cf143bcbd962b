"""The propbot server under real uvicorn on a loopback port, with fake Telegram and WeChat servers.

``propbot`` gives a running server on SQLite and on PostgreSQL (the ``db_url`` fixture), the staff
group on Telegram, WeChat in plain or safe mode, and helpers to post updates and callbacks to it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.server import create_app
from bot.settings import Settings
from data.clock import FixedClock
from data.db import transaction
from data.models import ChannelAccount, InboundMessage, OutboxMessage, Resident, Ticket
from data.store import Store
from tests.fakes import telegram_api, wechat_api
from tests.fakes.serve import ServerThread, served
from tests.fakes.telegram_api import FakeTelegram, Updates
from tests.fakes.wechat_api import Callbacks, FakeWeChat

SECRET = "webhook-secret-4f2a"
STAFF_CHAT = -1001234567890
WANG, ZHANG, LEAD = 900002, 900003, 900006  # demo staff Telegram ids: 王师傅, 张师傅, 赵主管


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    with served(FakeTelegram()) as fake:
        yield fake


@pytest.fixture
def fake_wechat() -> Iterator[FakeWeChat]:
    with served(FakeWeChat()) as fake:
        yield fake


def channel_settings(db_url: str, telegram_url: str, wechat_url: str, **extra: Any) -> Settings:
    return replace(
        Settings(),
        database_url=db_url,
        telegram_token=telegram_api.TOKEN,
        telegram_webhook_secret=SECRET,
        telegram_staff_chat_id=str(STAFF_CHAT),
        telegram_api_url=f"{telegram_url}/bot",
        wechat_app_id=wechat_api.APP_ID,
        wechat_app_secret=wechat_api.APP_SECRET,
        wechat_token=wechat_api.TOKEN,
        wechat_aes_key=wechat_api.AES_KEY,
        wechat_api_url=f"{wechat_url}/cgi-bin/",
        **extra,
    )


@dataclass
class Propbot:
    """A running server and what tests need around it."""

    url: str
    app: App
    web: Any
    telegram: FakeTelegram
    wechat: FakeWeChat
    http: httpx.Client
    updates: Updates

    # -- Telegram --------------------------------------------------------------------------------
    def post_update(self, update: dict[str, Any], secret: str | None = SECRET) -> httpx.Response:
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
        response = self.http.post("/telegram", json=update, headers=headers)
        self.telegram.execute_webhook_answer(response)  # Telegram sends the reply the answer carries
        return response

    def tg_say(self, chat_id: int, text: str) -> list[str]:
        """Post a resident's message; the texts the bot sent back for it."""
        before = len(self.telegram.sent_to(chat_id))
        assert self.post_update(self.updates.text(chat_id, text)).status_code == 200
        return [c.params["text"] for c in self.telegram.sent_to(chat_id)[before:]]

    def tg_press(self, chat_id: int, data: str) -> list[str]:
        before = len(self.telegram.sent_to(chat_id))
        assert self.post_update(self.updates.callback(chat_id, data)).status_code == 200
        return [c.params["text"] for c in self.telegram.sent_to(chat_id)[before:]]

    # -- WeChat ----------------------------------------------------------------------------------
    def wx_build(self, callbacks: Callbacks, xml: str, **options: Any) -> tuple[str, bytes]:
        """A callback signed at the server's time (its clock), as WeChat would post it now."""
        return callbacks.build(xml, timestamp=self.wx_now(), **options)

    def wx_now(self) -> int:
        return int(self.app.clock.now().timestamp())

    def wx_post(self, callbacks: Callbacks, xml: str, forged: bool = False, **options: Any) -> httpx.Response:
        return self.wx_send(*self.wx_build(callbacks, xml, forged=forged, **options))

    def wx_send(self, path: str, body: bytes) -> httpx.Response:
        return self.http.post(path, content=body, headers={"Content-Type": "text/xml"})

    # -- the store -------------------------------------------------------------------------------
    def bind(self, channel: str, external_id: str, resident_name: str) -> None:
        with transaction(self.app.sessions) as session:
            store = Store(session)
            resident = session.scalars(select(Resident).where(Resident.name == resident_name)).one()
            account = store.account(channel, external_id)
            store.bind(account, resident, self.app.clock.now())

    def count(self, model: type[Any], *where: Any) -> int:
        with self.app.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)

    def tickets(self) -> list[Ticket]:
        with self.app.sessions() as session:
            return list(session.scalars(select(Ticket).order_by(Ticket.id)).unique())

    def footprint(self) -> tuple[int, int, int, int]:
        """Rows a message could leave behind: processed ids, tickets, outbox rows, accounts."""
        return (
            self.count(InboundMessage),
            self.count(Ticket),
            self.count(OutboxMessage),
            self.count(ChannelAccount),
        )


def start_propbot(
    app: App, fake_telegram: FakeTelegram, fake_wechat: FakeWeChat, **options: Any
) -> Iterator[Propbot]:
    web = create_app(app, dispatch_idle=0.05, **options)
    with ServerThread(web) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        yield Propbot(server.url, app, web, fake_telegram, fake_wechat, http, Updates())


class RunningClock:
    """Starts at the tests' NOW and runs with real time: a live server's rate limits and deferrals
    (the dispatcher's) need time to pass, and the demo data needs the day to be NOW's."""

    def __init__(self, start: datetime) -> None:
        self.start, self.started = start, time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.started)


@pytest.fixture
def server_app(
    db_url: str, clock: FixedClock, embedded_nlu: Any, fake_telegram: FakeTelegram, fake_wechat: FakeWeChat
) -> Iterator[App]:
    settings = channel_settings(db_url, fake_telegram.url, fake_wechat.url)  # type: ignore[attr-defined]
    application = App(settings, RunningClock(clock.now()))
    application.__dict__["nlu"] = embedded_nlu
    yield application
    application.close()


@pytest.fixture
def propbot(server_app: App, fake_telegram: FakeTelegram, fake_wechat: FakeWeChat) -> Iterator[Propbot]:
    yield from start_propbot(server_app, fake_telegram, fake_wechat)


def server_log(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """What the server logged: the records less the tests' own HTTP client's request lines."""
    return [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]


# -- the web front desk (tests/e2e/test_desk_*.py) ---------------------------------------------------
DESK_SETTINGS: dict[str, Any] = {"desk_lockout_attempts": 3, "desk_lockout_window_min": 10}


@pytest.fixture
def desk_options() -> dict[str, Any]:
    """Settings the desk's server starts with (a test overrides the fixture to change them)."""
    return dict(DESK_SETTINGS)


@pytest.fixture
def desk_app(
    db_url: str,
    clock: FixedClock,
    embedded_nlu: Any,
    fake_telegram: FakeTelegram,
    fake_wechat: FakeWeChat,
    desk_options: dict[str, Any],
) -> Iterator[App]:
    from tests.e2e.desk_support import JumpingClock

    settings = channel_settings(db_url, fake_telegram.url, fake_wechat.url, **desk_options)  # type: ignore[attr-defined]
    application = App(settings, JumpingClock(clock.now()))
    application.__dict__["nlu"] = embedded_nlu
    yield application
    application.close()


@pytest.fixture
def desk(desk_app: App, fake_telegram: FakeTelegram, fake_wechat: FakeWeChat) -> Iterator[Propbot]:
    yield from start_propbot(desk_app, fake_telegram, fake_wechat)
