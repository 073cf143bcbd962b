"""The office's KPIs on a small hand-made compound (answers worked out by hand), on both databases;
the report page, its charts and kpi.csv."""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from bot.cli import main
from data.clock import SHANGHAI
from data.db import make_engine, make_session_factory, migrate, transaction
from data.models import Bill, Building, Compound, Ticket, TicketEvent, Unit
from data.scheduling import Callback
from data.store import Store
from flows.reports import page, report
from flows.reports.charts import CHARTS, render_all
from flows.reports.fonts import cjk_family, font_file
from flows.reports.kpi import Period

AS_OF = datetime(2026, 12, 2, 12, 0, tzinfo=SHANGHAI)
NOVEMBER = Period.month("2026-11")


def t(text: str) -> datetime:
    """A local time: "11-05 14:00" (2026), or "10-28 09:00"."""
    return datetime.strptime(f"2026-{text}", "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI)


def _ticket(
    session: Session,
    unit: Unit,
    number: str,
    kind: str,
    created: str,
    status: str,
    arrive_by: str | None = None,
    fix_by: str | None = None,
    closed: str | None = None,
    events: tuple[tuple[str, str], ...] = (),
    rounds: tuple[tuple[str, int | None, str | None], ...] = (),
) -> None:
    ticket = Ticket(
        number=number,
        compound_id=unit.building.compound_id,
        unit_id=unit.id,
        kind=kind,
        category="water" if kind != "complaint" else "noise",
        status=status,
        created_at=t(created),
        updated_at=t(created),
        arrive_by=t(arrive_by) if arrive_by else None,
        fix_by=t(fix_by) if fix_by else None,
        closed_at=t(closed) if closed else None,
    )
    session.add(ticket)
    session.flush()
    for kind_, at in (("received", created), *events):
        session.add(TicketEvent(ticket_id=ticket.id, at=t(at), actor="system", kind=kind_, note="", data={}))
    for done, score, answered in rounds:
        session.add(
            Callback(
                ticket_id=ticket.id,
                compound_id=ticket.compound_id,
                done_at=t(done),
                status="answered" if score else "staff_task",
                score=score,
                answered_at=t(answered) if answered else None,
                comment="",
                via="chat" if score else "",
            )
        )


def _bill(session: Session, unit: Unit, item: str, amount: str, due: str, paid: str | None) -> None:
    session.add(
        Bill(
            unit_id=unit.id,
            item=item,
            period=f"2026-{due[:2]}",
            amount=Decimal(amount),
            due_date=t(due + " 00:00").date(),
            paid_amount=Decimal(amount) if paid else Decimal(0),
            paid_at=t(paid) if paid else None,
        )
    )


def build_hand_made(session: Session) -> None:
    """Two buildings, one flat each (U1 in 1栋, U2 in 2栋); nine tickets and five bills.

    T1 repair U1, created 11-02 09:00, arrive by 09:30, fix by 11:30; arrived 09:20, done 10:30;
       callback 5 (answered 11-04 12:00), closed 11-04 12:00 -> close 51 h.
    T2 repair U1, created 11-05 14:00, arrive by 14:30, fix by 16:30; no arrival recorded, done
       18:00 (so arrival 18:00: late; fix late); callback 2 -> reopened 11-07 20:00; done again
       11-08 10:00, callback 4, closed 11-10 11:00 -> close 117 h. Two rounds.
    T3 emergency U2, created 11-10 08:00, arrive by 08:15, fix by 10:15; arrived 08:10, done
       09:00; callback asked, never answered (a staff task).
    T4 complaint U2, created 11-20 10:00, done 11-25 10:00; no callback round started at all.
    T5 repair U2, created 11-29 20:00, arrive by 11-30 10:00, fix by 12:00; nothing since: late.
    T6 repair U1, created 11-30 21:00, arrive by 12-06 10:00 (agreed visit): not decided yet.
    T7 repair U1, created 11-12, cancelled: counts nowhere.
    T8 repair U1, created 10-28 09:00 (October), done 11-01 09:00, callback 5, closed 11-03 10:00
       -> close 145 h; its round and its reopen check belong to November, its limits do not.
    T9 repair U2, created 11-30 19:00, arrive by 19:30, fix by 21:30; arrived 19:25, done 20:00;
       its callback is due 12-02 20:00, after AS_OF (12-02 12:00): not counted yet.

    By hand, November as of 12-02 12:00:
      callback rounds: T1, T2 (twice), T3, T4, T8 = 6 (T9 not due); scored: T1 5, T2 2, T2 4, T8 5
        -> callback_rate 4/6 = 0.6667; satisfaction (4-5) 3/4 = 0.75
      arrival: T1 yes, T2 no, T3 yes, T5 no (limit passed), T9 yes; T6 undecided -> 3/5 = 0.6
      fix:     T1 yes, T2 no, T3 yes, T5 no, T9 yes -> 3/5 = 0.6
      reopen: first done in November T1 T2 T3 T4 T8 T9 = 6; reopened T2 -> 1/6 = 0.1667
      close hours: T1 51, T2 117, T8 145 -> median 117.0
      done hours: T1 1.5, T2 4, T3 1, T4 120, T8 96, T9 1 -> median (1.5 + 4) / 2 = 2.75 -> 2.8
      tickets created, not cancelled: repair T1 T2 T5 T6 T9 = 5, emergency 1, complaint 1 = 7

    Bills due 11-20: U1 management 100 paid 11-18; U1 water 50 paid 12-01 (after the period);
    U2 management 200 unpaid; U2 parking 150 paid 11-30 23:00 (in time). U1 October 100 unpaid
    (another period).
      collection 250/500 = 0.5; to date 300/500 = 0.6; owed 200.00
      1栋: 100/150 = 0.6667, arrival 1/2 (T1 yes, T2 no); 2栋: 150/350 = 0.4286, arrival 2/3
    """
    compound = Compound(code="hand", name="测试苑", duty_phone="1", office_phone="2", settings={})
    session.add(compound)
    session.flush()
    units = []
    for number in (1, 2):
        building = Building(compound_id=compound.id, number=number, name=f"{number}栋")
        unit = Unit(building=building, unit_no=1, room=f"{number}01", area_m2=Decimal(90))
        session.add_all([building, unit])
        units.append(unit)
    session.flush()
    u1, u2 = units
    _ticket(session, u1, "BX-1", "repair", "11-02 09:00", "closed", "11-02 09:30", "11-02 11:30",
            closed="11-04 12:00", events=(("arrived", "11-02 09:20"), ("done", "11-02 10:30")),
            rounds=(("11-02 10:30", 5, "11-04 12:00"),))  # fmt: skip
    _ticket(session, u1, "BX-2", "repair", "11-05 14:00", "closed", "11-05 14:30", "11-05 16:30",
            closed="11-10 11:00",
            events=(("done", "11-05 18:00"), ("reopened", "11-07 20:00"), ("done", "11-08 10:00")),
            rounds=(("11-05 18:00", 2, "11-07 20:00"), ("11-08 10:00", 4, "11-10 11:00")))  # fmt: skip
    _ticket(session, u2, "JJ-3", "emergency", "11-10 08:00", "done", "11-10 08:15", "11-10 10:15",
            events=(("arrived", "11-10 08:10"), ("done", "11-10 09:00")),
            rounds=(("11-10 09:00", None, None),))  # fmt: skip
    _ticket(session, u2, "TS-4", "complaint", "11-20 10:00", "done", events=(("done", "11-25 10:00"),))
    _ticket(session, u2, "BX-5", "repair", "11-29 20:00", "dispatched", "11-30 10:00", "11-30 12:00")
    _ticket(session, u1, "BX-6", "repair", "11-30 21:00", "dispatched", "12-06 10:00", "12-06 12:00")
    _ticket(session, u1, "BX-7", "repair", "11-12 09:00", "cancelled", "11-12 09:30", "11-12 11:30",
            events=(("cancelled", "11-12 09:10"),))  # fmt: skip
    _ticket(session, u1, "BX-8", "repair", "10-28 09:00", "closed", "10-28 09:30", "10-28 11:30",
            closed="11-03 10:00", events=(("done", "11-01 09:00"),),
            rounds=(("11-01 09:00", 5, "11-03 10:00"),))  # fmt: skip
    _ticket(session, u2, "BX-9", "repair", "11-30 19:00", "done", "11-30 19:30", "11-30 21:30",
            events=(("arrived", "11-30 19:25"), ("done", "11-30 20:00")))  # fmt: skip
    _bill(session, u1, "management", "100.00", "11-20", "11-18 10:00")
    _bill(session, u1, "water", "50.00", "11-20", "12-01 10:00")
    _bill(session, u2, "management", "200.00", "11-20", None)
    _bill(session, u2, "parking", "150.00", "11-20", "11-30 23:00")
    _bill(session, u1, "management", "100.00", "10-20", None)


@pytest.fixture
def hand_made(empty_db_url: str) -> Iterator[Store]:
    engine = make_engine(empty_db_url)
    migrate(engine)
    sessions = make_session_factory(engine)
    with transaction(sessions) as session:
        build_hand_made(session)
    with sessions() as session:
        yield Store(session)
    engine.dispose()


def test_the_measures_of_the_hand_made_month_are_the_ones_worked_out_by_hand(hand_made: Store) -> None:
    found = report.build(hand_made, NOVEMBER, AS_OF)
    rows = dict(found.kpis.rows())
    assert {name: rows[name] for name in rows if not name.endswith("_count")} == {
        "collection_rate": "0.5000",
        "callback_rate": "0.6667",
        "satisfaction_rate": "0.7500",
        "on_time_arrival_rate": "0.6000",
        "on_time_fix_rate": "0.6000",
        "reopen_rate": "0.1667",
        "median_close_hours": "117.0",
        "median_done_hours": "2.8",
        "collection_rate_to_date": "0.6000",
        "billed_amount": "500.00",
        "collected_amount": "250.00",
        "owed_amount": "200.00",
        "tickets": "7",
        "tickets_complaint": "1",
        "tickets_emergency": "1",
        "tickets_repair": "5",
    }
    assert [rows[f"{n}_count"] for n in ("callback_rate", "on_time_arrival_rate", "reopen_rate")] == [
        "6",
        "5",
        "6",
    ]


def test_per_building_the_same_definitions_hold(hand_made: Store) -> None:
    first, second = report.build(hand_made, NOVEMBER, AS_OF).buildings
    assert (first.building, round(first.kpis.collection_rate or 0, 4)) == (1, 0.6667)
    assert (second.building, round(second.kpis.collection_rate or 0, 4)) == (2, 0.4286)
    assert first.kpis.rates["on_time_arrival_rate"].numerator == 1
    assert first.kpis.rates["on_time_arrival_rate"].denominator == 2
    assert second.kpis.rates["on_time_arrival_rate"].numerator == 2
    assert second.kpis.rates["on_time_arrival_rate"].denominator == 3


def test_later_the_not_yet_due_callback_and_the_undecided_visit_are_counted(hand_made: Store) -> None:
    later = report.build(hand_made, NOVEMBER, datetime(2026, 12, 7, tzinfo=SHANGHAI)).kpis
    assert later.rates["callback_rate"].denominator == 7  # T9's round is now due (unanswered)
    assert later.rates["on_time_arrival_rate"].denominator == 6  # T6's visit time has passed


def test_an_empty_period_has_no_rates_rather_than_zero(hand_made: Store) -> None:
    rows = dict(report.build(hand_made, Period.month("2026-06"), AS_OF).kpis.rows())
    assert rows["callback_rate"] == rows["collection_rate"] == rows["median_close_hours"] == ""


def test_the_page_shows_the_figures_and_every_chart_it_names(hand_made: Store, tmp_path: Path) -> None:
    written = page.write(report.build(hand_made, NOVEMBER, AS_OF), tmp_path)
    html = (tmp_path / "index.html").read_text(encoding="utf-8")
    images = re.findall(r'<img src="([^"]+)"', html)
    assert len(images) >= 4 and len(images) == len(CHARTS)
    for name in images:
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG"), name
    assert "<script" not in html and "http" not in html  # self-contained
    assert "测试苑 物业服务报表 · 2026年11月" in html and "50.0%" in html and "66.7%" in html
    assert html.count("<tr>") == 3  # the head and one row per building
    with open(tmp_path / "kpi.csv", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    assert table[0] == ["metric", "value"] and ["collection_rate", "0.5000"] in table
    assert tmp_path / "kpi.csv" in written


# -- the font --------------------------------------------------------------------------------------------
def test_a_cjk_font_file_is_installed_and_matplotlib_reads_it() -> None:
    path = font_file()
    assert path.is_file() and path.stat().st_size > 1_000_000
    assert "CJK" in cjk_family() or "WenQuanYi" in cjk_family()


def test_the_charts_have_every_glyph_of_their_chinese_labels(hand_made: Store) -> None:
    found = report.build(hand_made, NOVEMBER, AS_OF)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        charts = render_all(found)
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == [] and len(charts) == len(CHARTS)


def test_the_glyph_check_would_catch_a_font_without_chinese() -> None:
    """The check above can fail: DejaVu Sans (matplotlib's default) has no 收费率."""
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    with warnings.catch_warnings(record=True) as caught, rc_context({"font.family": ["DejaVu Sans"]}):
        warnings.simplefilter("always")
        figure = Figure()
        figure.subplots().set_title("收费率")
        figure.savefig(Path("/dev/null"), format="png")
    assert any("missing from font" in str(w.message) for w in caught)


def test_periods() -> None:
    assert Period.month("2026-02") == Period(date(2026, 2, 1), date(2026, 2, 28))
    assert Period.week_before(date(2026, 11, 23)) == Period(date(2026, 11, 16), date(2026, 11, 22))
    assert Period.month_before(date(2026, 1, 5)) == Period.month("2025-12")
    assert Period.month("2026-11").end == datetime(2026, 12, 1, tzinfo=SHANGHAI)


# -- the command -----------------------------------------------------------------------------------------
def test_propbot_report_writes_the_page_charts_and_csv_of_the_demo_month(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On the tests' demo (bills, no ticket history): the collection figures are the demo's own."""
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("PROPBOT_CONFIG", raising=False)
    out = tmp_path / "report"
    code = main(
        [
            "report",
            "--month",
            "2026-10",
            "--compound",
            "sunshine",
            "--out",
            str(out),
            "--now",
            "2026-11-23T10:00",
        ]
    )
    assert code == 0, capsys.readouterr().err
    rows = dict(csv.reader((out / "kpi.csv").open(encoding="utf-8")))
    # October's bills fall due on the 20th; a few flats have not paid since (李明 three months, 周阿姨 one)
    assert 0.85 < float(rows["collection_rate"]) < 1 and rows["callback_rate"] == ""
    assert len(list(out.glob("*.png"))) >= 4 and (out / "index.html").is_file()
    assert "阳光花园 2026年10月: 收费率" in capsys.readouterr().out


def test_propbot_report_refuses_an_unknown_compound_and_a_reversed_span(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["report", "--compound", "nowhere", "--out", str(tmp_path)]) == 2
    assert "nowhere" in capsys.readouterr().err
    assert main(["report", "--from", "2026-11-10", "--to", "2026-11-01", "--out", str(tmp_path)]) == 2
    assert "before" in capsys.readouterr().err
    assert not (tmp_path / "index.html").exists()
