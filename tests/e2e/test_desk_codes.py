"""Binding codes from the desk's flat page over real HTTP, on SQLite and PostgreSQL: find the flat,
issue a code (printable line and QR PNG), list, revoke (a clerk their own, a manager any), and a
Telegram guest binding with it (or not, once revoked)."""

from __future__ import annotations

import re

from data.db import transaction
from data.models import BindingCode
from tests.e2e.conftest import Propbot
from tests.e2e.desk_support import DeskClient, JumpingClock, account_of, add_login

GUEST = 620001


def login(desk: Propbot, name: str, role: str = "clerk") -> DeskClient:
    add_login(desk.app, name, role)
    client = DeskClient.at(desk.url)
    assert client.login(name).status_code == 303
    return client


def flat_page(client: DeskClient, address: str = "3-2-1502") -> str:
    found = client.http.get("/desk/units", params={"q": address})
    assert found.status_code == 303, found.text[:200]
    return str(found.headers["location"])


def issue(client: DeskClient, page: str, resident: str = "李明", expires: str = "7d") -> str:
    html = client.http.get(page).text
    resident_id = re.search(rf'<option value="(\d+)">{resident}</option>', html)
    assert resident_id is not None
    answer = client.post(f"{page}/codes", {"resident": resident_id.group(1), "expires": expires}, page=page)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/desk/codes/")
    return str(answer.headers["location"]).rsplit("/", 1)[-1]


def test_a_code_from_the_flat_page_binds_a_guest_once(desk: Propbot) -> None:
    clerk = login(desk, "张丽")
    page = flat_page(clerk)
    html = clerk.http.get(page).text
    assert "3栋2单元1502" in html and "李明" in html and "王芳" in html
    assert "138****8000" in html and "13800138000" not in html  # phones masked on the desk
    code = issue(clerk, page, "王芳", "1d")
    slip = clerk.http.get(f"/desk/codes/{code}")
    assert f"已生成绑定码 {code}" in slip.text and "3栋2单元1502 王芳 绑定码：" in slip.text
    assert "仅限使用一次" in slip.text and "未使用" in slip.text
    qr = clerk.http.get(f"/desk/codes/{code}/qr.png")
    assert qr.status_code == 200 and qr.headers["content-type"] == "image/png"
    assert qr.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert code in clerk.http.get(page).text and code in clerk.http.get("/desk/codes?state=issued").text

    answers = desk.tg_say(GUEST, code)
    assert any("绑定成功" in a and "3栋2单元1502" in a for a in answers)
    assert account_of(desk.app, "telegram", str(GUEST)).resident_id is not None
    used = clerk.http.get("/desk/codes?state=used").text
    assert code in used and code not in clerk.http.get("/desk/codes?state=issued").text
    assert not any("绑定成功" in a for a in desk.tg_say(GUEST + 1, code))  # single use


def test_codes_expire_on_the_desk_too(desk: Propbot) -> None:
    clerk = login(desk, "张丽")
    code = issue(clerk, flat_page(clerk), expires="1h")  # not among the page's choices, but taken
    clock = desk.app.clock
    assert isinstance(clock, JumpingClock)
    clock.jump(hours=1, minutes=1)
    assert code in clerk.http.get("/desk/codes?state=expired").text
    assert "已过期" in clerk.http.get(f"/desk/codes/{code}").text
    assert not any("绑定成功" in a for a in desk.tg_say(GUEST, code))


def test_a_clerk_revokes_their_own_codes_a_manager_any(desk: Propbot) -> None:
    zhang, liu = login(desk, "张丽"), login(desk, "刘芳")
    page = flat_page(zhang)
    mine = issue(zhang, page)
    theirs = issue(liu, page)
    slip = f"/desk/codes/{theirs}"
    assert "作废" not in zhang.http.get(slip).text.split("<main>")[1].split("打印")[1]  # no button
    zhang.post(f"{slip}/revoke", page=f"/desk/codes/{mine}")
    assert "只能作废自己发放的绑定码" in zhang.http.get(slip).text
    assert zhang.post(f"/desk/codes/{mine}/revoke", page=f"/desk/codes/{mine}").status_code == 303
    assert f"绑定码 {mine} 已作废" in zhang.http.get(f"/desk/codes/{mine}").text

    boss = login(desk, "赵经理", "manager")
    assert boss.post(f"{slip}/revoke", page=slip).status_code == 303
    with transaction(desk.app.sessions) as session:
        states = {c: session.get(BindingCode, c).state(desk.app.clock.now()) for c in (mine, theirs)}  # type: ignore[union-attr]
    assert states == {mine: "revoked", theirs: "revoked"}
    assert not any("绑定成功" in a for a in desk.tg_say(GUEST, mine))
    assert code_listed(boss, "revoked") >= {mine, theirs}


def code_listed(client: DeskClient, state: str) -> set[str]:
    return set(
        re.findall(r'href="/desk/codes/([A-Z0-9]+)"', client.http.get(f"/desk/codes?state={state}").text)
    )


def test_finding_a_flat(desk: Propbot) -> None:
    clerk = login(desk, "张丽")
    assert clerk.http.get("/desk/units", params={"q": "李明"}).status_code == 303  # one flat
    missing = clerk.http.get("/desk/units", params={"q": "3-2-9999"})
    assert missing.status_code == 200 and "没有找到" in missing.text
    assert clerk.http.get("/desk/units/999999").status_code == 404
