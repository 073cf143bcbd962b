"""The desk's report page over real HTTP, on SQLite and PostgreSQL: the last full month by default,
the figures and the building table of ``flows.reports`` (the same numbers as its kpi.csv), the
charts drawn on request and kept for DESK_REPORT_CACHE_MIN, months that cannot be shown."""

from __future__ import annotations

import csv
import re
import struct
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Propbot
from tests.e2e.desk_support import DeskClient, JumpingClock, add_login, open_repair

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def clerk(desk: Propbot) -> Iterator[DeskClient]:
    add_login(desk.app, "张丽")
    client = DeskClient.at(desk.url)
    assert client.login("张丽").status_code == 303
    yield client
    client.close()


def figures(page: str) -> dict[str, str]:
    """The page's figure cards: label -> value."""
    return dict(re.findall(r'<div class="figure"><span>([^<]+)</span><b>([^<]+)</b>', page))


def csv_rows(client: DeskClient, month: str) -> dict[str, str]:
    response = client.http.get(f"/desk/report/kpi.csv?month={month}")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert f'filename="kpi-{month}.csv"' in response.headers["content-disposition"]
    rows = list(csv.reader(response.text.splitlines()))
    assert rows[0] == ["metric", "value"]
    return dict(rows[1:])


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG), data[:16]
    width, height = struct.unpack(">II", data[16:24])  # IHDR, the first chunk
    return width, height


def test_the_last_full_month_with_its_figures_table_and_csv(desk: Propbot, clerk: DeskClient) -> None:
    page = clerk.http.get("/desk/report")  # the tests' today is 2026-11-23: October
    assert page.status_code == 200
    assert "阳光花园 物业服务报表 · 2026年10月" in page.text and "本月至今" not in page.text
    assert 'href="/desk/report" aria-current="page"' in page.text  # in the navigation
    shown = figures(page.text)
    assert len(shown) == 9
    rows = csv_rows(clerk, "2026-10")
    # October's bills fell due on the 20th; a few flats have not paid (as `propbot report` says)
    assert 0.85 < float(rows["collection_rate"]) < 1
    assert shown["收费率"] == f"{float(rows['collection_rate']) * 100:.1f}%"
    assert shown["回访率"] == "—" and rows["callback_rate"] == ""  # no tickets: no data, not 0
    assert shown["新增工单"] == rows["tickets"] == "0"
    table = page.text[page.text.index('<table class="buildings">') : page.text.index("</table>")]
    buildings = re.findall(r'<th scope="row">(\d+)栋</th>', table)
    assert buildings and buildings == sorted(buildings, key=int)
    assert "至今未缴（元）" in table
    assert 'href="/desk/report/kpi.csv?month=2026-10"' in page.text
    assert 'href="/desk/report?month=2026-09"' in page.text and "?month=2026-11" in page.text


def test_every_chart_is_a_png_drawn_from_the_month(desk: Propbot, clerk: DeskClient) -> None:
    page = clerk.http.get("/desk/report?month=2026-10").text
    sources = re.findall(r'<img src="(/desk/report/[a-z_]+\.png\?month=2026-10)"', page)
    assert len(sources) == 6
    for source in sources:
        chart = clerk.http.get(source)
        assert chart.status_code == 200 and chart.headers["content-type"] == "image/png"
        width, height = png_size(chart.content)
        assert width > 600 and height > 300, (source, width, height)
    assert clerk.http.get("/desk/report/nothing.png?month=2026-10").status_code == 404


def test_a_month_that_cannot_be_shown_is_refused(desk: Propbot, clerk: DeskClient) -> None:
    for month, why in (("2026-13", "没有这个月份"), ("soon", "没有这个月份"), ("2026-12", "还没有到")):
        page = clerk.http.get(f"/desk/report?month={month}")
        assert page.status_code == 400 and why in page.text, month
        assert clerk.http.get(f"/desk/report/kpi.csv?month={month}").status_code == 400
        assert clerk.http.get(f"/desk/report/daily_tickets.png?month={month}").status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(desk: Propbot) -> None:
    anonymous = DeskClient.at(desk.url)
    for path in ("/desk/report", "/desk/report/kpi.csv", "/desk/report/daily_tickets.png?month=2026-10"):
        response = anonymous.http.get(path)
        assert response.status_code == 303 and response.headers["location"].startswith("/desk/login?next=")
    anonymous.close()


def test_a_manager_sees_it_too(desk: Propbot) -> None:
    add_login(desk.app, "赵经理", "manager")
    manager = DeskClient.at(desk.url)
    manager.login("赵经理")
    assert "物业服务报表" in manager.http.get("/desk/report").text
    manager.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the cache is the server's, not the store's
def test_the_figures_and_charts_are_kept_for_a_while_then_computed_again(
    desk: Propbot, clerk: DeskClient
) -> None:
    this_month = "/desk/report?month=2026-11"
    first = clerk.http.get(this_month).text
    assert "本月至今" in first and "下月" not in first
    before = figures(first)["新增工单"]
    chart = clerk.http.get("/desk/report/daily_tickets.png?month=2026-11").content
    open_repair(desk.app)
    assert figures(clerk.http.get(this_month).text)["新增工单"] == before  # kept
    assert clerk.http.get("/desk/report/daily_tickets.png?month=2026-11").content == chart
    clock = desk.app.clock
    assert isinstance(clock, JumpingClock)
    clock.jump(minutes=desk.app.settings.desk_report_cache_min)
    assert figures(clerk.http.get(this_month).text)["新增工单"] == str(int(before) + 1)  # computed again
    assert clerk.http.get("/desk/report/daily_tickets.png?month=2026-11").content != chart
    assert csv_rows(clerk, "2026-11")["tickets"] == str(int(before) + 1)
