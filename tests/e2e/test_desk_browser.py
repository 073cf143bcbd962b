"""The desk in a real browser: headless Chromium (Debian's package, driven by Playwright; nothing is
downloaded) against ``propbot serve``'s app under uvicorn, with the fake Telegram as the resident's
chat. A clerk logs in, filters the inbox, claims a ticket and replies; the resident's Telegram chat
receives the reply. Then the same on a phone-sized screen, and a binding code from the flat page;
and the report page (with the demo's six months of history) on a PC and a phone: the figures, the
building table, the six charts loaded, the kpi.csv download.

Every page is photographed into ``tests/e2e/screenshots/`` (PROPBOT_SCREENSHOTS overrides; not in
git) to be looked at: layout, and Chinese in a real font rather than boxes.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from data.db import transaction
from data.store import Store
from flows.domain.tickets import NewTicket, open_ticket
from tests.e2e.conftest import Propbot
from tests.e2e.desk_support import PASSWORD, add_login, bind, open_repair, ticket_state

playwright = pytest.importorskip("playwright.sync_api")

SHOTS = Path(os.environ.get("PROPBOT_SCREENSHOTS", Path(__file__).with_name("screenshots")))
RESIDENT = 630001  # 李明 on Telegram
PHONE = {"width": 390, "height": 844}  # an everyday phone, CSS pixels
DESKTOP = {"width": 1280, "height": 860}
# An image's load, awaited in the page (a function, not a string: the desk's CSP forbids eval)
LOADED = "img => img.complete && img.naturalWidth ? true : new Promise(ok => img.onload = () => ok(true))"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    message = "no Chromium: bash tests/services.sh installs Debian's chromium package"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def browser() -> Iterator[playwright.Browser]:  # type: ignore[name-defined]
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright.sync_playwright() as driver:
        # --no-sandbox: the suite runs as root in CI, where Chromium's sandbox refuses to start
        launched = driver.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--lang=zh-CN"])
        yield launched
        launched.close()


def shot(page: playwright.Page, name: str) -> None:  # type: ignore[name-defined]
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def seed(desk: Propbot) -> str:
    """李明's repair (from Telegram, with a photo) among others; its number."""
    from bot.desk.qr import qr_png

    app = desk.app
    bind(app, "telegram", str(RESIDENT), "李明")
    desk.telegram.files["AgAC-pipe"] = qr_png("厨房水管照片")
    number = open_repair(app, ("telegram", str(RESIDENT)), "厨房水管漏水，地上都是水")
    with transaction(app.sessions) as session:
        store = Store(session)
        ticket = store.tickets.by_number(number)
        assert ticket is not None
        ticket.photos = ["telegram:AgAC-pipe"]
        compound, now = store.compound(), app.clock.now()
        others = [
            NewTicket(
                kind="complaint",
                description="楼下广场舞声音太大，晚上十点还在跳",
                area="common",
                location="中心花园",
            ),
            NewTicket(kind="booking", description="周六上午家政保洁", category="cleaning"),
            NewTicket(
                kind="repair", description="电梯按钮失灵", area="common", location="5栋1单元电梯", urgent=True
            ),
        ]
        for new in others:
            open_ticket(store, compound, None, new, now, "system")
    return number


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # one backend: the pages are the same
def test_a_clerk_claims_and_replies_in_a_browser(desk: Propbot, browser: playwright.Browser) -> None:  # type: ignore[name-defined]
    number = seed(desk)
    add_login(desk.app, "张丽")
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    page = context.new_page()
    errors: list[str] = []  # script errors, and anything that failed to load but the refused login
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)

    page.goto(f"{desk.url}/desk/tickets")
    assert page.url.startswith(f"{desk.url}/desk/login?next=")  # anonymous: to the login page
    page.fill("input[name=login]", "张丽")
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    assert "姓名或密码不正确" in page.inner_text("main")
    assert errors == [f"401 {desk.url}/desk/login"]
    errors.clear()
    shot(page, "01-login-refused")
    page.fill("input[name=login]", "张丽")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/desk/tickets")
    assert page.locator(".ticket").count() == 4
    shot(page, "02-inbox")

    with page.expect_navigation():  # the filter applies on change (desk.js), no button pressed
        page.select_option("select[name=kind]", "repair")
    assert "kind=repair" in page.url
    assert page.locator(".ticket").count() == 2
    with page.expect_navigation():
        page.select_option("select[name=building]", "3")
    assert page.locator(".ticket").count() == 1
    shot(page, "03-inbox-filtered")

    page.click(f"a[href='/desk/tickets/{number}']")
    page.wait_for_url(f"**/desk/tickets/{number}")
    assert page.locator(".photos img").first.evaluate(LOADED)  # the photo is there
    shot(page, "04-ticket")
    page.click("button:has-text('认领')")
    page.wait_for_selector(".flash")
    assert page.inner_text(".flash") == "接单成功，已通知居民"
    assert ticket_state(desk.app, number)[:2] == ("dispatched", "张丽")

    page.fill("textarea[name=text]", "张师傅下午三点前到，请家里留人。")
    page.click("form.reply button[type=submit]")
    page.wait_for_selector(".flash")
    assert "已转达给居民" in page.inner_text(".flash")
    assert "回复居民" in page.inner_text(".timeline")
    shot(page, "05-ticket-replied")
    received = desk.telegram.wait_for(
        lambda: [t for t in desk.telegram.texts_to(RESIDENT) if "张师傅下午三点前到" in t]
    )
    assert received[0].startswith(f"【物业工作人员 张丽】关于您的工单 {number}：")
    assert any("已由 张丽 接单" in t for t in desk.telegram.texts_to(RESIDENT))  # the claim, too

    desk.tg_say(RESIDENT, "好的，谢谢")  # the resident answers; the desk's timeline shows it
    page.reload()
    assert "好的，谢谢" in page.inner_text(".timeline")
    assert errors == []
    context.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_desk_on_a_phone_and_a_binding_code(desk: Propbot, browser: playwright.Browser) -> None:  # type: ignore[name-defined]
    number = seed(desk)
    add_login(desk.app, "张丽", "manager")
    context = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    page = context.new_page()
    page.goto(f"{desk.url}/desk/login")
    shot(page, "06-phone-login")
    page.fill("input[name=login]", "张丽")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/desk/tickets")
    no_sideways_scroll(page)
    shot(page, "07-phone-inbox")
    page.goto(f"{desk.url}/desk/tickets/{number}")
    page.locator(".photos img").first.scroll_into_view_if_needed()
    assert page.locator(".photos img").first.evaluate(LOADED)
    no_sideways_scroll(page)
    shot(page, "08-phone-ticket")

    page.goto(f"{desk.url}/desk/units")
    page.fill("input[name=q]", "3-2-1502")
    page.click("main button[type=submit]")  # not the header's 退出
    page.wait_for_url("**/desk/units/*")
    no_sideways_scroll(page)
    shot(page, "09-phone-flat")
    page.click("button:has-text('生成绑定码')")
    page.wait_for_url("**/desk/codes/*")
    code = page.url.rsplit("/", 1)[-1]
    assert page.locator("img.qr").evaluate("img => img.naturalWidth") > 0
    assert page.locator("[data-print]").is_visible()  # shown by desk.js
    shot(page, "10-phone-code")
    page.on("dialog", lambda dialog: dialog.accept())  # the confirm() before revoking
    page.click("button:has-text('作废')")
    page.wait_for_selector(".flash")
    assert f"绑定码 {code} 已作废" in page.inner_text(".flash")
    page.goto(f"{desk.url}/desk/codes")
    shot(page, "11-phone-codes")
    context.close()

    wide = browser.new_context(viewport=DESKTOP, locale="zh-CN")
    slip = wide.new_page()
    slip.goto(f"{desk.url}/desk/login")
    slip.fill("input[name=login]", "张丽")
    slip.fill("input[name=password]", PASSWORD)
    slip.click("button[type=submit]")
    slip.goto(f"{desk.url}/desk/codes")
    shot(slip, "12-codes")
    slip.emulate_media(media="print")
    slip.goto(f"{desk.url}/desk/codes/{code}")
    assert not slip.locator("header.bar").is_visible()  # printed: the slip alone
    shot(slip, "13-code-printed")
    wide.close()


def no_sideways_scroll(page: playwright.Page) -> None:  # type: ignore[name-defined]
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide on a {PHONE['width']}px screen"


def with_history(desk: Propbot) -> None:
    """The demo's six months of tickets, callbacks and payments, as `propbot demo` loads them."""
    from sqlalchemy import select

    from data.demo import NAMED_RESIDENTS
    from data.demo_history import load_history
    from data.models import Resident

    named = {name for *_, name, _phone, _role in NAMED_RESIDENTS}
    with transaction(desk.app.sessions) as session:
        store = Store(session)
        residents = session.scalars(select(Resident)).unique().all()
        skip = {r.unit_id for r in residents if r.name in named and r.unit_id is not None}
        assert load_history(store, store.compound().id, skip, desk.app.clock.now()) > 100


def charts_loaded(page: playwright.Page) -> None:  # type: ignore[name-defined]
    images = page.locator(".charts img")
    assert images.count() == 6
    for index in range(images.count()):
        images.nth(index).scroll_into_view_if_needed()  # a lazy browser loads what it shows
        assert images.nth(index).evaluate(LOADED), index
        assert images.nth(index).evaluate("img => img.naturalWidth") > 600


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_report_page_on_a_pc_and_a_phone(desk: Propbot, browser: playwright.Browser) -> None:  # type: ignore[name-defined]
    with_history(desk)
    add_login(desk.app, "张丽")
    context = browser.new_context(viewport=DESKTOP, locale="zh-CN", accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(f"{desk.url}/desk/report")
    page.fill("input[name=login]", "张丽")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/desk/report")  # back to the page asked for
    assert "2026年10月" in page.inner_text("h1")
    figures = page.locator(".figure")
    assert figures.count() == 9
    assert "—" not in figures.first.inner_text()  # the history gives every figure substance
    assert page.locator("table.buildings tbody tr").count() >= 5
    charts_loaded(page)
    shot(page, "14-report")

    with page.expect_download() as download:
        page.click("a.csv")
    saved = download.value
    assert saved.suggested_filename == "kpi-2026-10.csv"
    assert Path(saved.path()).read_text(encoding="utf-8").startswith("metric,value\ncollection_rate,0.")

    with page.expect_navigation():
        page.click("a[rel=prev]")
    assert "2026年9月" in page.inner_text("h1") and "month=2026-09" in page.url
    page.click("nav a:has-text('工单')")
    page.wait_for_url("**/desk/tickets")
    page.click("nav a:has-text('报表')")  # the navigation leads back to it
    page.wait_for_url("**/desk/report")
    assert errors == []
    context.close()

    phone = browser.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    small = phone.new_page()
    small.goto(f"{desk.url}/desk/login?next=/desk/report")
    small.fill("input[name=login]", "张丽")
    small.fill("input[name=password]", PASSWORD)
    small.click("button[type=submit]")
    small.wait_for_url("**/desk/report")
    no_sideways_scroll(small)  # the building table scrolls inside its card
    table = small.locator(".buildings").evaluate("t => [t.scrollWidth, t.parentElement.clientWidth]")
    assert table[0] > table[1]  # wider than the screen: it scrolls, it is not squeezed
    charts_loaded(small)
    small.evaluate("window.scrollTo(0, 0)")
    shot(small, "15-phone-report")
    phone.close()
