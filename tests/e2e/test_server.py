"""The one server: health, metrics, channels off without configuration, Telegram polling, lifespan."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.common import free_port, wait_until_up
from bot.app import App
from bot.channels.telegram import SECRET_HEADER
from bot.server import create_app
from bot.settings import Settings
from bot.startup import Backoff
from data.clock import FixedClock
from data.models import OutboxMessage
from tests.conftest import pg_database, pg_url
from tests.e2e.conftest import SECRET, STAFF_CHAT, Propbot, RunningClock, channel_settings, start_propbot
from tests.fakes import telegram_api
from tests.fakes.serve import ServerThread, served
from tests.fakes.telegram_api import FakeTelegram, Updates
from tests.fakes.wechat_api import Callbacks, FakeWeChat, message_xml

ROOT = Path(__file__).resolve().parents[2]


def metric(page: str, name: str, labels: str = "") -> float:
    found = re.search(rf"^{re.escape(name + labels)} (\S+)$", page, re.M)
    assert found, f"{name}{labels} missing from /metrics"
    return float(found.group(1))


def test_healthz_reports_the_database_and_channels(propbot: Propbot) -> None:
    response = propbot.http.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "database": "ok",
        "channels": {"telegram": "up", "wechat": "up"},
    }


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
        assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok", "database": "ok", "channels": {}}
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


# -- several worker processes -----------------------------------------------------------------------
def test_several_workers_answer_every_chat_and_one_runs_the_background(
    pg_template: str, fake_telegram: FakeTelegram, tmp_path: Path
) -> None:
    with pg_database(template=pg_template) as name, tmp_path.joinpath("serve.log").open("w+") as log:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TELEGRAM_", "WECHAT_", "WECOM_"))}
        env |= {
            "DATABASE_URL": pg_url(name),
            "TELEGRAM_TOKEN": telegram_api.TOKEN,
            "TELEGRAM_WEBHOOK_SECRET": SECRET,
            "TELEGRAM_API_URL": f"{fake_telegram.url}/bot",
            "TELEGRAM_STAFF_CHAT_ID": str(STAFF_CHAT),
        }
        command = [
            "-c",
            "import sys; from bot.cli import main; sys.exit(main())",
            "serve",
            "--port",
            str(port),
        ]
        server = subprocess.Popen([sys.executable, *command, "--workers", "2"], cwd=ROOT, env=env, stderr=log)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_up(f"{base}/healthz", server, log.name)
            updates, chats = Updates(), range(7000001, 7000013)
            with ThreadPoolExecutor(len(chats)) as pool:  # at once: both workers take some
                codes = list(
                    pool.map(lambda chat: _deliver(base, updates.text(chat, "你好"), fake_telegram), chats)
                )
            assert codes == [200] * len(chats)
            assert all(fake_telegram.texts_to(chat) for chat in chats), "every chat answered"
            assert _deliver(base, updates.text(7000099, "电梯里有人被困了 3栋2单元"), fake_telegram) == 200
            cards = fake_telegram.wait_for(lambda: fake_telegram.texts_to(STAFF_CHAT), timeout=30)
            assert "电梯" in cards[0]  # the dispatcher runs in one of the workers
        finally:
            server.terminate()
            server.wait(timeout=30)
        log.seek(0)
        lines = log.read()
    assert lines.count("runs the outbox dispatcher and the scheduler") == 1, lines
    assert "Traceback" not in lines, lines
    time.sleep(1)
    assert len(fake_telegram.texts_to(STAFF_CHAT)) == 1, "one card, sent once"


def _deliver(base: str, update: dict[str, Any], telegram: FakeTelegram) -> int:
    """Post ``update`` as Telegram does, making the call the webhook's answer carries (the reply)."""
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    response = httpx.post(f"{base}/telegram", json=update, headers=headers, timeout=30)
    telegram.execute_webhook_answer(response)
    return response.status_code


# -- a channel that cannot start ---------------------------------------------------------------------------
RETRY = Backoff(first=0.05, cap=0.4)
NEXT_TRY = re.compile(r"telegram channel could not start \((.*)\); next try in (\S+) s")


def test_a_channel_that_cannot_start_is_down_and_retried_while_the_others_serve(
    db_url: str,
    clock: FixedClock,
    embedded_nlu: Any,
    fake_wechat: FakeWeChat,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Telegram's API refuses connections at start: the server serves WeChat and says so in /healthz,
    Telegram's webhook answers 503 (Telegram delivers again), and once the API is up the channel starts."""
    caplog.set_level(logging.INFO, logger="bot")
    port = free_port()  # where the fake Telegram will answer, once it is up
    app = App(
        channel_settings(db_url, f"http://127.0.0.1:{port}", fake_wechat.url), RunningClock(clock.now())
    )
    app.__dict__["nlu"] = embedded_nlu
    web = create_app(app, dispatch_idle=0.05, retry=RETRY)
    with ServerThread(web) as server, httpx.Client(base_url=server.url, timeout=30) as http:
        propbot = Propbot(server.url, app, web, FakeTelegram(), fake_wechat, http, Updates())
        health = http.get("/healthz")
        assert health.status_code == 200  # the server works: a load balancer keeps sending WeChat here
        assert health.json() == {
            "status": "degraded",
            "database": "ok",
            "channels": {"telegram": "down", "wechat": "up"},
        }
        wx = Callbacks(aes=True)
        reply = propbot.wx_post(wx, wx_text(propbot, "物业电话多少"))
        assert reply.status_code == 200 and "0571-88881234" in reply_text(wx, reply)
        update = propbot.updates.text(5550021, "/help")
        refused = http.post("/telegram", json=update, headers={SECRET_HEADER: SECRET})
        assert refused.status_code == 503
        wait_until(lambda: len(attempts(caplog)) >= 5)
        with served(FakeTelegram(), port=port) as telegram:
            propbot.telegram = telegram
            wait_until(lambda: http.get("/healthz").json()["status"] == "ok")
            assert http.get("/healthz").json()["channels"] == {"telegram": "up", "wechat": "up"}
            assert telegram.calls("getMe"), "the channel started against the API that came up"
            assert propbot.tg_say(5550021, "/help")[0].startswith("我可以帮您")
    failed = attempts(caplog)
    delays = [record.delay for record in failed]
    assert delays[:5] == [0.05, 0.1, 0.2, 0.4, 0.4] and max(delays) == RETRY.cap
    gaps = [b.created - a.created for a, b in zip(failed, failed[1:], strict=False)]
    assert all(gap >= announced * 0.9 for gap, announced in zip(gaps, delays, strict=False)), (gaps, delays)
    assert all(record.exc_info is None for record in caplog.records) and "Traceback" not in caplog.text
    assert telegram_api.TOKEN not in caplog.text and "ConnectError" in failed[0].reason
    assert "telegram channel started after all" in caplog.text


@dataclass
class Attempt:
    reason: str
    delay: float
    created: float


def attempts(caplog: pytest.LogCaptureFixture) -> list[Attempt]:
    """The failed attempts to start Telegram, as logged: why, and the delay to the next."""
    found = []
    for record in list(caplog.records):
        match = NEXT_TRY.search(record.getMessage())
        if match:
            found.append(Attempt(match.group(1), float(match.group(2)), record.created))
    return found


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "waited in vain"
        time.sleep(0.02)


def reply_text(wx: Callbacks, response: httpx.Response) -> str:
    reply = wx.open_reply(response.text)
    return "" if reply is None else str(reply["Content"])


def wx_text(propbot: Propbot, text: str) -> str:
    return message_xml("oDEGRADED00000000000000000001", "text", propbot.wx_now(), 7001, Content=text)
