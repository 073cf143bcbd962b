"""The staff digests over real HTTP: the weekly one is a photo with its figures as the caption in the
Telegram staff group (sendPhoto, the chart uploaded), an image message after the text from the WeCom
robot, the monthly one a photo in the director's Telegram chat; a second sweep sends nothing more."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from bot.app import App
from bot.scheduler import run_sweep
from data.clock import SHANGHAI, FixedClock
from tests.e2e.conftest import STAFF_CHAT, Propbot, RunningClock, channel_settings, start_propbot
from tests.fakes.telegram_api import FakeTelegram, photo_caption, photo_items
from tests.fakes.wechat_api import ROBOT_KEY, FakeWeChat

DIRECTOR = 900007  # 孙主任


def _digest_photos(fake: FakeTelegram, chat: int, title: str) -> list[Any]:
    return [c for c in fake.photos_to(chat) if photo_caption(c).startswith(title)]


def test_the_weekly_digest_is_a_photo_with_its_figures_in_the_staff_group(propbot: Propbot) -> None:
    # the server's clock starts on Monday 2026-11-23 10:00: inside the digest's 09:00 + 12 h
    assert run_sweep(propbot.app.sessions, propbot.app.clock, "digests") == 1
    [call] = propbot.telegram.wait_for(
        lambda: _digest_photos(propbot.telegram, STAFF_CHAT, "【本周服务周报】")
    )
    assert call.method == "sendPhoto"
    [photo] = photo_items(call)
    assert isinstance(photo, bytes) and photo.startswith(b"\x89PNG") and len(photo) > 10_000
    caption = photo_caption(call)
    assert "阳光花园 2026-11-16 至 2026-11-22" in caption and "新增工单 0 件" in caption
    assert run_sweep(propbot.app.sessions, propbot.app.clock, "digests") == 0
    time.sleep(0.5)  # the dispatcher's idle wait is 0.05 s: anything else would have gone by now
    assert len(_digest_photos(propbot.telegram, STAFF_CHAT, "【本周服务周报】")) == 1


@pytest.fixture
def propbot_with_robot(
    db_url: str, clock: FixedClock, embedded_nlu: Any, fake_telegram: FakeTelegram, fake_wechat: FakeWeChat
) -> Iterator[Propbot]:
    settings = channel_settings(
        db_url,
        fake_telegram.url,  # type: ignore[attr-defined]
        fake_wechat.url,  # type: ignore[attr-defined]
        wecom_robot_key=ROBOT_KEY,
        wecom_api_url=f"{fake_wechat.url}/cgi-bin/webhook/send",  # type: ignore[attr-defined]
    )
    application = App(settings, RunningClock(clock.now()))
    application.__dict__["nlu"] = embedded_nlu
    try:
        yield from start_propbot(application, fake_telegram, fake_wechat)
    finally:
        application.close()


def test_the_wecom_robot_posts_the_digest_then_its_chart_as_an_image(propbot_with_robot: Propbot) -> None:
    propbot = propbot_with_robot
    run_sweep(propbot.app.sessions, propbot.app.clock, "digests")
    [image] = propbot.wechat.wait_for(propbot.wechat.robot_images)
    assert image.startswith(b"\x89PNG")
    assert propbot.wechat.robot_texts()[0].startswith("**【本周服务周报】阳光花园")
    assert _digest_photos(propbot.telegram, STAFF_CHAT, "【本周服务周报】")  # the group has it too


@pytest.fixture
def first_of_the_month(
    db_url: str, embedded_nlu: Any, fake_telegram: FakeTelegram, fake_wechat: FakeWeChat
) -> Iterator[Propbot]:
    settings = channel_settings(db_url, fake_telegram.url, fake_wechat.url)  # type: ignore[attr-defined]
    application = App(settings, RunningClock(datetime(2026, 12, 1, 9, 5, tzinfo=SHANGHAI)))
    application.__dict__["nlu"] = embedded_nlu
    try:
        yield from start_propbot(application, fake_telegram, fake_wechat)
    finally:
        application.close()


def test_the_monthly_digest_reaches_the_directors_own_chat(first_of_the_month: Propbot) -> None:
    propbot = first_of_the_month
    run_sweep(propbot.app.sessions, propbot.app.clock, "digests")
    [call] = propbot.telegram.wait_for(lambda: _digest_photos(propbot.telegram, DIRECTOR, "【月度服务报告】"))
    assert photo_items(call)[0][:8] == b"\x89PNG\r\n\x1a\n"  # type: ignore[index]
    caption = photo_caption(call)
    assert "阳光花园 2026年11月" in caption and "收费率 " in caption
    assert not _digest_photos(propbot.telegram, STAFF_CHAT, "【月度服务报告】")
