"""The web front desk's door, over real HTTP against ``propbot serve``'s app under uvicorn, on SQLite
and PostgreSQL: logins from ``propbot staff add``, the session cookie, CSRF on every POST, logout,
lockout, anonymous and forged requests."""

from __future__ import annotations

import io
import json
import sys
from http.cookies import SimpleCookie
from typing import Any

import pytest
from itsdangerous import Signer
from sqlalchemy import select

from bot.cli import main
from data.models import DeskAccount, DeskSession
from tests.e2e.conftest import Propbot
from tests.e2e.desk_support import (
    CSRF,
    PASSWORD,
    DeskClient,
    JumpingClock,
    add_login,
    open_repair,
    ticket_state,
)


@pytest.fixture
def browser(desk: Propbot) -> Any:
    client = DeskClient.at(desk.url)
    yield client
    client.close()


def logged_in(desk: Propbot, name: str = "张丽", role: str = "clerk") -> DeskClient:
    add_login(desk.app, name, role)
    client = DeskClient.at(desk.url)
    assert client.login(name).status_code == 303
    return client


def set_cookie(response: Any, name: str) -> Any:
    for header in response.headers.get_list("set-cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        if name in cookie:
            return cookie[name]
    raise AssertionError(f"no Set-Cookie {name}")


# -- accounts -----------------------------------------------------------------------------------------
def test_staff_add_hashes_the_password_and_the_login_works(
    desk: Propbot, browser: DeskClient, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", desk.app.settings.database_url)
    monkeypatch.delenv("PROPBOT_CONFIG", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["staff", "add", "张丽", "--role", "manager", "--password-stdin"]) == 0
    assert "已添加前台账号 张丽（经理" in capsys.readouterr().out
    with desk.app.sessions() as session:
        stored = session.scalars(select(DeskAccount)).one()
        assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash
        assert stored.staff.name == "张丽" and stored.role == "manager"
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["staff", "add", "王五", "--role", "clerk", "--password-stdin"]) == 1
    assert "密码至少 8 位" in capsys.readouterr().err
    assert main(["staff", "list", "--json"]) == 0
    assert [row["login"] for row in json.loads(capsys.readouterr().out)] == ["张丽"]

    answer = browser.login("张丽")
    assert answer.status_code == 303 and answer.headers["location"] == "/desk/tickets"
    page = browser.http.get("/desk/tickets")
    assert page.status_code == 200 and "张丽" in page.text and "经理" in page.text


def test_an_existing_staff_member_gets_a_login_and_acts_as_himself(desk: Propbot) -> None:
    staff_id = add_login(desk.app, "王师傅")  # demo technician
    with desk.app.sessions() as session:
        assert session.scalars(select(DeskAccount)).one().staff.role == "technician"
    client = DeskClient.at(desk.url)
    assert client.login("王师傅").status_code == 303
    number = open_repair(desk.app)
    assert client.post(f"/desk/tickets/{number}/claim").status_code == 303
    assert ticket_state(desk.app, number)[1] == "王师傅"
    with desk.app.sessions() as session:
        assert session.scalars(select(DeskAccount)).one().staff_id == staff_id


# -- the cookie -------------------------------------------------------------------------------------
def test_the_session_cookie_is_signed_httponly_lax_and_not_secure_on_plain_http(desk: Propbot) -> None:
    add_login(desk.app, "张丽")
    client = DeskClient.at(desk.url)
    cookie = set_cookie(client.login("张丽"), "propbot_desk")
    assert cookie["httponly"] and cookie["samesite"].lower() == "lax" and cookie["path"] == "/desk"
    assert not cookie["secure"]
    token, _, signature = cookie.value.rpartition(".")
    assert token and signature
    with desk.app.sessions() as session:  # only a digest of the token is kept
        assert session.get(DeskSession, token) is None
        assert session.scalars(select(DeskSession)).one().id != token


@pytest.mark.parametrize("desk_options", [{"desk_secure_cookie": True}])
def test_the_cookies_are_secure_when_configured(desk: Propbot) -> None:
    add_login(desk.app, "张丽")
    http = DeskClient.at(desk.url).http
    page = http.get("/desk/login")
    login_cookie = set_cookie(page, "propbot_desk_login")
    assert login_cookie["secure"] and login_cookie["httponly"]
    token = CSRF.search(page.text).group(1)  # type: ignore[union-attr]
    # A browser sends a Secure cookie over HTTPS only; this test server speaks HTTP, so by hand.
    answer = http.post(
        "/desk/login",
        data={"csrf": token, "login": "张丽", "password": PASSWORD},
        headers={"Cookie": f"propbot_desk_login={login_cookie.value}"},
    )
    assert answer.status_code == 303
    assert set_cookie(answer, "propbot_desk")["secure"]


# -- anonymous, forged, expired ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    ["/desk/", "/desk/tickets?status=all", "/desk/tickets/BX-20261123-0001", "/desk/units/1", "/desk/codes",
     "/desk/codes/SUN888/qr.png", "/desk/tickets/BX-20261123-0001/photos/0"],
)  # fmt: skip
def test_anonymous_pages_redirect_to_the_login(desk: Propbot, browser: DeskClient, path: str) -> None:
    answer = browser.http.get(path)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/desk/login?next=%2Fdesk%2F")
    assert "SUN888" not in answer.text


def test_anonymous_posts_get_401_and_change_nothing(desk: Propbot, browser: DeskClient) -> None:
    number = open_repair(desk.app)
    for path in (f"/desk/tickets/{number}/claim", "/desk/codes/SUN888/revoke", "/desk/units/1/codes"):
        assert browser.http.post(path, data={"csrf": "x"}).status_code == 401
    assert ticket_state(desk.app, number)[:2] == ("received", None)


def test_login_page_is_open_and_carries_a_token(desk: Propbot, browser: DeskClient) -> None:
    page = browser.http.get("/desk/login")
    assert page.status_code == 200 and "物业前台登录" in page.text
    assert (
        page.headers["x-frame-options"] == "DENY"
        and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    )
    assert browser.csrf("/desk/login")


def test_a_forged_session_cookie_is_refused(desk: Propbot) -> None:
    number = open_repair(desk.app)
    real = logged_in(desk)
    value = real.http.cookies["propbot_desk"]
    token, _, signature = value.rpartition(".")
    forgeries = [
        "nonsense",
        f"{token[:-2]}xx.{signature}",  # the token altered, the signature kept
        Signer("another key", salt="propbot.desk.session").sign(token).decode(),  # signed elsewhere
        Signer("another key", salt="propbot.desk.session").sign("a-token-never-issued").decode(),
    ]
    for forged in forgeries:
        client = DeskClient.at(desk.url)
        client.http.cookies.set("propbot_desk", forged, path="/desk")
        assert client.http.get("/desk/tickets").status_code == 303, forged
        assert client.http.post(f"/desk/tickets/{number}/claim", data={"csrf": "x"}).status_code == 401
    assert ticket_state(desk.app, number)[:2] == ("received", None)
    assert real.http.get("/desk/tickets").status_code == 200


def test_logout_ends_the_session_on_the_server(desk: Propbot) -> None:
    client = logged_in(desk)
    copied = client.http.cookies["propbot_desk"]
    assert client.post("/desk/logout").status_code == 303
    assert client.http.get("/desk/tickets").status_code == 303
    other = DeskClient.at(desk.url)  # the same cookie, copied before the logout
    other.http.cookies.set("propbot_desk", copied, path="/desk")
    assert other.http.get("/desk/tickets").status_code == 303
    with desk.app.sessions() as session:
        assert session.scalars(select(DeskSession)).all() == []


def test_a_session_expires(desk: Propbot) -> None:
    client = logged_in(desk)
    assert client.http.get("/desk/tickets").status_code == 200
    clock = desk.app.clock
    assert isinstance(clock, JumpingClock)
    clock.jump(hours=12, minutes=1)
    assert client.http.get("/desk/tickets").status_code == 303


def test_next_stays_inside_the_desk(desk: Propbot) -> None:
    add_login(desk.app, "张丽")
    for target, landing in (
        ("/desk/tickets/BX-1", "/desk/tickets/BX-1"),
        ("https://evil.example/", "/desk/tickets"),
        ("//evil.example/desk/", "/desk/tickets"),
        ("/desk//evil.example", "/desk/tickets"),
    ):
        client = DeskClient.at(desk.url)
        assert client.login("张丽", next=target).headers["location"] == landing


# -- CSRF -------------------------------------------------------------------------------------------
def test_posts_without_the_sessions_csrf_token_are_refused(desk: Propbot) -> None:
    number = open_repair(desk.app)
    mine, theirs = logged_in(desk, "张丽"), logged_in(desk, "刘芳")
    claim = f"/desk/tickets/{number}/claim"
    assert mine.http.post(claim).status_code == 403  # missing
    assert mine.http.post(claim, data={"csrf": "forged-token-0123456789"}).status_code == 403
    assert mine.http.post(claim, data={"csrf": theirs.csrf("/desk/tickets")}).status_code == 403
    assert mine.http.post("/desk/logout", data={"csrf": ""}).status_code == 403
    assert ticket_state(desk.app, number)[:2] == ("received", None)
    assert mine.http.get("/desk/tickets").status_code == 200  # still logged in
    assert mine.post(claim).status_code == 303
    assert ticket_state(desk.app, number)[:2] == ("dispatched", "张丽")


def test_the_login_form_needs_its_own_token(desk: Propbot, browser: DeskClient) -> None:
    add_login(desk.app, "张丽")
    form = {"login": "张丽", "password": PASSWORD}
    assert browser.http.post("/desk/login", data=form).status_code == 403
    browser.csrf("/desk/login")  # the cookie is set, but the form's token is forged
    assert browser.http.post("/desk/login", data={**form, "csrf": "forged"}).status_code == 403
    stranger = DeskClient.at(desk.url)  # a token from another browser's login page
    assert (
        stranger.http.post("/desk/login", data={**form, "csrf": browser.csrf("/desk/login")}).status_code
        == 403
    )
    assert "propbot_desk" not in browser.http.cookies and "propbot_desk" not in stranger.http.cookies


# -- lockout ----------------------------------------------------------------------------------------
def test_wrong_passwords_lock_the_account_for_a_while(desk: Propbot, browser: DeskClient) -> None:
    add_login(desk.app, "张丽")
    add_login(desk.app, "刘芳")
    for _ in range(2):
        wrong = browser.login("张丽", "not the password")
        assert wrong.status_code == 401 and "姓名或密码不正确" in wrong.text
    locked = browser.login("张丽", "not the password either")  # the third inside the window
    assert locked.status_code == 429 and "已锁定" in locked.text
    refused = browser.login("张丽")  # the right password, while locked
    assert refused.status_code == 429 and "propbot_desk" not in browser.http.cookies
    assert DeskClient.at(desk.url).login("刘芳").status_code == 303  # per account
    clock = desk.app.clock
    assert isinstance(clock, JumpingClock)
    clock.jump(minutes=16)  # desk_lockout_min is 15
    assert browser.login("张丽").status_code == 303


def test_failures_spread_beyond_the_window_do_not_lock(desk: Propbot, browser: DeskClient) -> None:
    add_login(desk.app, "张丽")
    clock = desk.app.clock
    assert isinstance(clock, JumpingClock)
    for _ in range(4):
        assert browser.login("张丽", "nope nope nope").status_code == 401
        clock.jump(minutes=6)  # two per 10-minute window at most
    assert browser.login("张丽", "nope nope nope").status_code == 401
    assert browser.login("张丽").status_code == 303  # the success resets the count
    with desk.app.sessions() as session:
        assert session.scalars(select(DeskAccount)).one().failed_logins == 0


def test_an_unknown_name_is_refused_like_a_wrong_password(desk: Propbot, browser: DeskClient) -> None:
    answer = browser.login("不存在的人")
    assert answer.status_code == 401 and "姓名或密码不正确" in answer.text
