"""The one server: health, metrics, channels off without configuration, Telegram polling, lifespan."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from bot.app import App
from bot.server import create_app
from bot.settings import Settings
from data.clock import FixedClock
from data.models import OutboxMessage
from tests.e2e.conftest import Propbot, start_propbot
from tests.fakes.serve import ServerThread
from tests.fakes.telegram_api import FakeTelegram, Updates
from tests.fakes.wechat_api import Callbacks, FakeWeChat, message_xml


def metric(page: str, name: str, labels: str = "") -> float:
    found = re.search(rf"^{re.escape(name + labels)} (\S+)$", page, re.M)
    assert found, f"{name}{labels} missing from /metrics"
    return float(found.group(1))


def test_healthz_reports_the_database_and_channels(propbot: Propbot) -> None:
    response = propbot.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "channels": ["telegram", "wechat"]}


async def test_healthz_without_a_database_is_503_not_a_stack_trace(clock: FixedClock) -> None:
    app = App(replace(Settings(), database_url="postgresql://nobody@127.0.0.1:1/none"), clock)
    transport = httpx.ASGITransport(app=create_app(app))  # no lifespan: the database is never reached
    async with httpx.AsyncClient(transport=transport, base_url="http://propbot") as client:
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "unreachable"}


def test_channels_without_configuration_are_off(db_url: str, clock: FixedClock, embedded_nlu: Any) -> None:
    app = App(replace(Settings(), database_url=db_url), clock)
    app.__dict__["nlu"] = embedded_nlu
    with ServerThread(create_app(app)) as server:
        assert httpx.post(f"{server.url}/telegram", json={"update_id": 1}).status_code == 404
        assert httpx.post(f"{server.url}/wechat", content=b"<xml/>").status_code == 404
        assert httpx.get(f"{server.url}/healthz").json()["channels"] == []
    app.close()


@pytest.fixture
def quiet_propbot(server_app: App, fake_telegram: FakeTelegram, fake_wechat: FakeWeChat) -> Iterator[Propbot]:
    """A server whose dispatcher is off, so outbox rows stay put."""
    yield from start_propbot(server_app, fake_telegram, fake_wechat, dispatch=False)


def test_metrics_count_messages_replies_latency_and_backlog(quiet_propbot: Propbot) -> None:
    propbot = quiet_propbot
    propbot.bind("telegram", "5550009", "李明")
    propbot.tg_say(5550009, "厨房水管漏水了")
    propbot.tg_press(5550009, "尽快")
    propbot.tg_press(5550009, "确认")  # a ticket: one card for the staff group waits in the outbox
    wx = Callbacks(aes=True)
    propbot.wx_post(wx, message_xml("oMETRICS000000000000000000001", "text", 1795413600, 7, Content="你好"))
    propbot.wx_post(wx, "<xml>broken", forged=False)
    page = propbot.http.get("/metrics").text
    assert metric(page, "propbot_messages_in_total", '{channel="telegram"}') == 3
    assert metric(page, "propbot_messages_in_total", '{channel="wechat"}') == 1
    assert metric(page, "propbot_replies_total", '{channel="telegram"}') >= 3
    assert metric(page, "propbot_handling_seconds_count", '{channel="telegram"}') == 3
    assert metric(page, "propbot_requests_rejected_total", '{channel="wechat",reason="malformed"}') == 1
    assert metric(page, "propbot_outbox_backlog") == propbot.count(OutboxMessage) == 1


def test_polling_mode_takes_updates_without_a_webhook(
    server_app: App, fake_telegram: FakeTelegram, fake_wechat: FakeWeChat
) -> None:
    updates = Updates()
    fake_telegram.queue_update(updates.text(5550010, "/help"))
    for _ in start_propbot(server_app, fake_telegram, fake_wechat, polling=True):
        replies = fake_telegram.wait_for(lambda: fake_telegram.texts_to(5550010))
        assert replies[0].startswith("我可以帮您")
        assert fake_telegram.calls("deleteWebhook"), "polling needs the webhook removed"


def test_the_lifespan_stops_the_dispatcher_and_scheduler(
    server_app: App, fake_telegram: FakeTelegram, fake_wechat: FakeWeChat
) -> None:
    web = create_app(server_app, dispatch_idle=0.05)
    server = ServerThread(web)
    server.start()
    background = web.state.background
    assert background.dispatcher is not None and not background.dispatcher.done()
    assert background.scheduler is not None and background.scheduler.running
    server.stop()
    assert not server.thread.is_alive()
    assert background.dispatcher.done() and not background.dispatcher.cancelled()
    assert not background.scheduler.running
