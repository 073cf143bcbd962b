"""``propbot import``: units, residents and bills from CSV and Excel, on SQLite and PostgreSQL.

Row numbers are the spreadsheet's (header = row 1) and reasons are asserted word for word: they are
what the office reads to fix its file.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl  # type: ignore[import-untyped]
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from bot.app import App
from bot.cli import main
from bot.settings import Settings
from data import importer
from data.clock import SHANGHAI, FixedClock
from data.db import transaction
from data.importer import Rejected, run_import
from data.models import Bill, Building, Compound, Resident, Unit
from data.store import Store

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


# -- fixtures and helpers ------------------------------------------------------------------------------
@pytest.fixture
def store_app(db_url: str, clock: FixedClock) -> Iterator[App]:
    """The demo store without the NLU (the importer never talks)."""
    application = App(replace(Settings(), database_url=db_url), clock)
    yield application
    application.close()


@pytest.fixture
def empty_app(empty_db_url: str, clock: FixedClock) -> Iterator[App]:
    """A store with the schema and no data at all."""
    application = App(replace(Settings(), database_url=empty_db_url), clock)
    application.prepare_store()
    yield application
    application.close()


def write_csv(path: Path, rows: Sequence[Sequence[Any]], encoding: str = "utf-8") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)  # as Excel writes it
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def write_xlsx(path: Path, rows: Sequence[Any]) -> Path:
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(list(row))
    book.save(path)
    return path


def rejected(report: importer.ImportReport) -> list[tuple[int, str]]:
    return [(r.row, r.reason) for r in report.rejected]


def counts(report: importer.ImportReport) -> tuple[int, int, int, int]:
    return report.created, report.updated, report.unchanged, len(report.rejected)


def unit_of(session: Any, building: int, unit_no: int | None, room: str) -> Unit:
    found = Store(session).find_unit(building, unit_no, room)
    assert found is not None
    return found


def bill_of(session: Any, unit: Unit, item: str, period: str) -> Bill | None:
    return session.scalars(
        select(Bill).where(Bill.unit_id == unit.id, Bill.item == item, Bill.period == period)
    ).first()


def count_rows(app: App, model: type[Any]) -> int:
    with app.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


# -- units ---------------------------------------------------------------------------------------------
UNITS = [
    ["楼栋", "单元", "房号", "面积（㎡）", "备注"],
    ["7", "1", "101", "89", "新楼"],  # 2 created, building 7 too
    ["7栋", "1单元", "102室", "96.5", ""],  # 3 created
    ["3", "2", "1502", "120.55", ""],  # 4 updated (demo: 128)
    ["3", "2", "1501", "", ""],  # 5 unchanged: no area given
    ["7", "1", "101", "90", ""],  # 6 duplicate of row 2
    ["A座", "1", "101", "90", ""],  # 7
    ["7", "1", "", "90", ""],  # 8
    [],  # 9 blank line: skipped, but still counted as a row
    ["7", "1", "103", "-5", ""],  # 10
    ["7", "1", "104", "0", ""],  # 11
    ["7", "1", "105", "12.345", ""],  # 12
]
UNITS_REJECTED = [
    (6, "与第 2 行重复（同一房屋）"),
    (7, "楼栋“A座”不是数字编号"),
    (8, "房号为空"),
    (10, "面积“-5”不能为负数"),
    (11, "面积“0”必须大于 0"),
    (12, "面积“12.345”最多保留两位小数"),
]


def test_units_are_created_updated_and_bad_rows_rejected(store_app: App, tmp_path: Path) -> None:
    report = run_import(store_app.sessions, "units", write_csv(tmp_path / "units.csv", UNITS))
    assert report.fatal is None and report.written
    assert counts(report) == (2, 1, 1, 6)
    assert rejected(report) == UNITS_REJECTED
    assert report.notes == ["忽略了不认识的列：备注", "新建楼栋：7栋"]
    assert report.exit_code == 1
    with store_app.sessions() as session:
        assert unit_of(session, 7, 1, "102").area_m2 == Decimal("96.50")
        assert unit_of(session, 7, 1, "102").building.name == "7栋"
        assert unit_of(session, 3, 2, "1502").area_m2 == Decimal("120.55")
        assert unit_of(session, 3, 2, "1501").area_m2 is not None  # blank keeps the stored area
        assert Store(session).find_unit(7, 1, "103") is None


def test_reimport_is_idempotent(store_app: App, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "units.csv", UNITS)
    run_import(store_app.sessions, "units", path)
    units_before = count_rows(store_app, Unit)
    again = run_import(store_app.sessions, "units", path)
    assert counts(again) == (0, 0, 4, 6)
    assert rejected(again) == UNITS_REJECTED
    assert count_rows(store_app, Unit) == units_before


@pytest.mark.parametrize("encoding", ["gbk", "utf-8-sig", "utf-8"])
def test_csv_in_gbk_or_utf8_with_or_without_bom(store_app: App, tmp_path: Path, encoding: str) -> None:
    path = write_csv(
        tmp_path / "units.csv", [["楼栋", "单元", "房号", "面积"], ["8", "1", "101", "89"]], encoding
    )
    if encoding == "utf-8-sig":
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    report = run_import(store_app.sessions, "units", path)
    assert (counts(report), report.fatal) == ((1, 0, 0, 0), None)
    with store_app.sessions() as session:
        assert unit_of(session, 8, 1, "101").area_m2 == Decimal("89.00")


def test_excel_unicode_text_is_utf16_with_tabs_and_a_title_row(store_app: App, tmp_path: Path) -> None:
    path = tmp_path / "units.txt"
    path.write_bytes("房屋清单\r\n楼栋\t房号\t面积\r\n9\t101\t88,5\r\n9\t102\t88\r\n".encode("utf-16"))
    report = run_import(store_app.sessions, "units", path)
    assert counts(report) == (1, 0, 0, 1)
    assert rejected(report) == [(3, "面积“88,5”不是数字")]  # a decimal comma is not a thousands separator


def test_english_headers_semicolons_and_one_address_column(store_app: App, tmp_path: Path) -> None:
    path = tmp_path / "bills.csv"
    path.write_text("Address;Item;Period;Amount\n3-2-1502;electricity;2026-12;12.30\n", encoding="utf-8")
    report = run_import(store_app.sessions, "bills", path)
    assert counts(report) == (1, 0, 0, 0)
    with store_app.sessions() as session:
        bill = bill_of(session, unit_of(session, 3, 2, "1502"), "electricity", "2026-12")
        assert bill is not None and bill.amount == Decimal("12.30")


# -- residents -------------------------------------------------------------------------------------------
def test_residents_from_xlsx(store_app: App, tmp_path: Path) -> None:
    rows = [
        ["阳光花园住户名单"],  # a title row above the header, as exports often have
        ["楼栋", "单元", "房号", "姓名", "手机", "身份", "入住日期"],  # header: row 2
        [3, 2, 1502, "张三", "138 0013 8099", "租户", datetime(2026, 11, 1)],  # 3 created
        [3, 2, 1502, "李明", 13900000001, "业主", None],  # 4 updated (phone as a number cell)
        [3, 2, 1502, "王芳", "13800138001", "家属", None],  # 5 unchanged
        [3, 2, 1502, "赵六", "1380013800", "业主", None],  # 6
        [3, 2, 1502, "钱七", "13800138111", "保姆", None],  # 7
        [3, 2, 9999, "孙八", "13800138112", "业主", None],  # 8
        [3, 2, 1502, None, "13800138113", "业主", None],  # 9
        [3, 2, 1502, "周九", "0571-8765432", None, None],  # 10
        [3, 2, 1502, "张三", "13800138099", "租户", None],  # 11 duplicate of row 3
        [3, 2, 1502, "吴十", "(0571)87654321", "family", "2026-13-01"],  # 12
        [5, 1, 302, "郑一", "+86 139-1234-5678", "tenant", "2026/11/02"],  # 13 created
    ]
    report = run_import(store_app.sessions, "residents", write_xlsx(tmp_path / "residents.xlsx", rows))
    assert counts(report) == (2, 1, 1, 7)
    assert rejected(report) == [
        (6, "手机“1380013800”格式不对（应为11位手机号，或带区号的固定电话）"),
        (7, "身份“保姆”无法识别（应为 业主、租户 或 家属）"),
        (8, "房屋 3栋2单元9999 不存在（请先导入房屋）"),
        (9, "姓名为空"),
        (10, "身份为空（应为 业主、租户 或 家属）"),
        (11, "与第 3 行重复（同一房屋、同一姓名）"),
        (12, "入住日期“2026-13-01”不是有效的日期（应为 2026-09-20）"),
    ]
    with store_app.sessions() as session:
        unit = unit_of(session, 3, 2, "1502")
        people = {r.name: (r.phone, r.role, r.moved_in) for r in Store(session).residents_of_unit(unit.id)}
        assert people == {
            "李明": ("13900000001", "owner", None),
            "王芳": ("13800138001", "family", None),
            "张三": ("13800138099", "tenant", date(2026, 11, 1)),
        }
        other = Store(session).residents_of_unit(unit_of(session, 5, 1, "302").id)
        assert ("郑一", "13912345678", "tenant", date(2026, 11, 2)) in {
            (r.name, r.phone, r.role, r.moved_in) for r in other
        }


# -- bills ---------------------------------------------------------------------------------------------
BILL_HEADER = ["房屋", "费用项目", "账期", "金额", "已缴金额", "缴费日期"]


def bill_rows(management_nov: str, water_nov: str) -> list[list[str]]:
    return [
        BILL_HEADER,
        ["3-2-1502", "物业费", "2026年11月", management_nov, management_nov, "2026-11-25 09:30"],  # 2 updated
        ["3栋2单元1502", "水费", "2026-11", water_nov, "", ""],  # 3 unchanged
        ["3-2-1502", "停车费", "2026-12", "300", "", ""],  # 4 created
        ["3-2-1502", "停车费", "2026/12", "300.00", "", ""],  # 5 duplicate of 4
        ["3-2-1502", "电费", "2026-12", "12.345", "", ""],  # 6
        ["3-2-1502", "公摊", "202612", "-1", "", ""],  # 7
        ["3-2-1502", "燃气费", "2026-12", "10", "", ""],  # 8
        ["3-2-1502", "水费", "2026-12", "abc", "", ""],  # 9
        ["3-2-1502", "水费", "2026-00", "10", "", ""],  # 10
        ["9-9-9999", "物业费", "2026-12", "10", "", ""],  # 11
        ["3-2-1502", "维修费", "2026-12", "100", "120", ""],  # 12
        ["3-2-1502", "装修垃圾清运费", "2026-12", "50", "", "2026-12-01"],  # 13
        ["3-2-1502", "物业费", "2026-10", "100", "", ""],  # 14 updated: the unpaid October bill corrected
        ["3-2-1502", "水费", "2026-08", "10", "", ""],  # 15: August was paid in full, more than 10
        ["3-2-1502", "维修费", "2026-12", "", "", ""],  # 16
        ["3-2-1502", "电费", "2026-12", "¥1,234.5", "", ""],  # 17 created
    ]


BILLS_REJECTED = [
    (5, "与第 4 行重复（同一房屋、同一费用项目、同一账期）"),
    (6, "金额“12.345”最多保留两位小数"),
    (7, "金额“-1”不能为负数"),
    (8, "费用项目“燃气费”无法识别（应为 物业费、停车费、水费、电费、公摊、装修垃圾清运费、维修费）"),
    (9, "金额“abc”不是数字"),
    (10, "账期“2026-00”不是有效的年月"),
    (11, "房屋 9栋9单元9999 不存在（请先导入房屋）"),
    (12, "已缴金额 120.00 大于金额 100.00"),
    (13, "填了缴费日期，但已缴金额为 0"),
    (15, "已缴金额（库中已记 85.50） 大于金额 10.00"),
    (16, "金额为空"),
]


def demo_amounts(app: App) -> tuple[str, str, str]:
    with app.sessions() as session:
        unit = unit_of(session, 3, 2, "1502")
        management = bill_of(session, unit, "management", "2026-11")
        water = bill_of(session, unit, "water", "2026-11")
        water_aug = bill_of(session, unit, "water", "2026-08")
        assert management and water and water_aug and management.paid_amount == 0
        return str(management.amount), str(water.amount), str(water_aug.paid_amount)


def test_bills_upsert_by_unit_item_and_period(store_app: App, tmp_path: Path) -> None:
    management, water, water_aug_paid = demo_amounts(store_app)
    assert water_aug_paid == "85.50"  # the reason in BILLS_REJECTED quotes it
    report = run_import(
        store_app.sessions, "bills", write_csv(tmp_path / "b.csv", bill_rows(management, water))
    )
    assert counts(report) == (2, 2, 1, 11)
    assert rejected(report) == BILLS_REJECTED
    with store_app.sessions() as session:
        unit = unit_of(session, 3, 2, "1502")
        paid = bill_of(session, unit, "management", "2026-11")
        assert paid is not None and paid.paid_amount == paid.amount and paid.outstanding == 0
        assert paid.paid_at == datetime(2026, 11, 25, 9, 30, tzinfo=SHANGHAI)
        parking = bill_of(session, unit, "parking", "2026-12")
        assert parking is not None
        # A new bill without a due date is due on the compound's billing day; nothing paid yet.
        assert (parking.amount, parking.due_date, parking.paid_amount, parking.paid_at) == (
            Decimal("300.00"),
            date(2026, 12, 20),
            Decimal("0.00"),
            None,
        )
        october = bill_of(session, unit, "management", "2026-10")
        assert october is not None and october.amount == Decimal("100.00") and october.paid_amount == 0
        electricity = bill_of(session, unit, "electricity", "2026-12")
        assert electricity is not None and electricity.amount == Decimal("1234.50")
        assert bill_of(session, unit, "shared", "2026-12") is None
        assert bill_of(session, unit, "repair", "2026-12") is None


def test_bills_reimport_changes_nothing(store_app: App, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "b.csv", bill_rows(*demo_amounts(store_app)[:2]))
    run_import(store_app.sessions, "bills", path)
    bills_before = count_rows(store_app, Bill)
    again = run_import(store_app.sessions, "bills", path)
    assert counts(again) == (0, 0, 5, 11)
    assert rejected(again) == BILLS_REJECTED
    assert count_rows(store_app, Bill) == bills_before


def test_bills_from_xlsx_take_excel_numbers_and_dates_as_shown(store_app: App, tmp_path: Path) -> None:
    rows = [
        ["楼栋", "单元", "房号", "费用项目", "账期", "金额", "应缴日期"],
        [3, 2, 1502, "物业费", datetime(2026, 12, 1), 128 * 2.6, datetime(2026, 12, 25)],  # 2: 332.8000000001
        [3, 2, 1502, "水费", 202612, 40.5, None],  # 3
        [3, 2, 1502, "电费", 2026.1, 10, None],  # 4: October or January?
    ]
    report = run_import(store_app.sessions, "bills", write_xlsx(tmp_path / "bills.xlsx", rows))
    assert counts(report) == (2, 0, 0, 1)
    assert rejected(report) == [(4, "账期“2026.1”是数字，分不清月份，请写成 2026-10 或 2026年10月")]
    with store_app.sessions() as session:
        unit = unit_of(session, 3, 2, "1502")
        management = bill_of(session, unit, "management", "2026-12")
        assert management is not None
        assert (management.amount, management.due_date) == (Decimal("332.80"), date(2026, 12, 25))
        water = bill_of(session, unit, "water", "2026-12")
        assert water is not None and water.amount == Decimal("40.50")


# -- dry run and fatal errors --------------------------------------------------------------------------
def test_dry_run_reports_and_writes_nothing(store_app: App, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "b.csv", bill_rows(*demo_amounts(store_app)[:2]))
    bills_before = count_rows(store_app, Bill)
    report = run_import(store_app.sessions, "bills", path, dry_run=True)
    assert counts(report) == (2, 2, 1, 11) and report.dry_run and not report.written
    assert count_rows(store_app, Bill) == bills_before
    with store_app.sessions() as session:
        unit = unit_of(session, 3, 2, "1502")
        assert bill_of(session, unit, "management", "2026-11").paid_amount == 0  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("units.xls", b"whatever", "不支持旧版 .xls 文件，请在 Excel 中另存为 .xlsx 或 CSV"),
        (
            "units.xlsx",
            b"PK\x03\x04 not really a workbook",
            "units.xlsx 不是有效的 Excel (.xlsx) 文件（BadZipFile）",
        ),
        (
            "units.csv",
            b"\x81\xff\x81\xff",
            "文件编码无法识别（试过 utf-8-sig、gb18030），请另存为 UTF-8 或 GBK 编码的 CSV",
        ),
        (
            "units.csv",
            "房号,面积\n101,89\n".encode(),
            "找不到表头：房屋文件至少需要这些列：楼栋、房号（或“房屋”一列，如 3-2-1502）；"
            "第一行是：房号、面积",
        ),
        ("units.csv", "楼栋,楼号,房号\n1,1,101\n".encode(), "表头里“楼栋”出现了两次（第 2 列：楼号）"),
    ],
)
def test_unreadable_files_are_fatal(
    store_app: App, tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    (tmp_path / name).write_bytes(content)
    report = run_import(store_app.sessions, "units", tmp_path / name)
    assert (report.fatal, report.exit_code, report.written) == (reason, 2, False)


def test_missing_file_is_fatal(store_app: App, tmp_path: Path) -> None:
    report = run_import(store_app.sessions, "units", tmp_path / "nope.csv")
    assert report.fatal == f"找不到文件 {tmp_path / 'nope.csv'}"


def test_database_failure_mid_file_writes_nothing(
    store_app: App, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importer.IMPORTERS["units"]

    def then_fail(*args: Any) -> None:
        real(*args)  # every good row is in the session by now
        raise OperationalError("INSERT INTO units", {}, Exception("server closed the connection"))

    monkeypatch.setitem(importer.IMPORTERS, "units", then_fail)
    units_before = count_rows(store_app, Unit)
    report = run_import(store_app.sessions, "units", write_csv(tmp_path / "u.csv", UNITS))
    assert report.exit_code == 2 and report.fatal is not None and report.fatal.startswith("数据库错误：")
    assert counts(report) == (0, 0, 0, 0)
    assert count_rows(store_app, Unit) == units_before
    with store_app.sessions() as session:
        assert session.scalars(select(Building).where(Building.number == 7)).first() is None
        assert unit_of(session, 3, 2, "1502").area_m2 == Decimal("128.00")


# -- compounds -------------------------------------------------------------------------------------------
def test_empty_store_needs_a_compound_name_then_uses_the_only_one(empty_app: App, tmp_path: Path) -> None:
    units = write_csv(tmp_path / "u.csv", [["楼栋", "房号", "面积"], ["1", "101", "80"], ["1", "102", "90"]])
    refused = run_import(empty_app.sessions, "units", units)
    assert refused.fatal == "库中还没有小区：请用 --compound 名称 指定要新建的小区"
    assert count_rows(empty_app, Compound) == 0

    created = run_import(empty_app.sessions, "units", units, compound="翠湖苑")
    assert counts(created) == (2, 0, 0, 0)
    assert created.notes == [
        "新建小区“翠湖苑”（请用 propbot compound set 补充值班电话和物业电话）",
        "新建楼栋：1栋",
    ]

    people = write_csv(tmp_path / "r.csv", [["房屋", "姓名", "手机"], ["1栋101", "林一", "13700000000"]])
    report = run_import(empty_app.sessions, "residents", people)  # no --compound: the only one
    assert (counts(report), report.compound) == ((1, 0, 0, 0), "翠湖苑")
    with empty_app.sessions() as session:
        resident = session.scalars(select(Resident)).one()
        assert (resident.name, resident.role, resident.unit.label) == ("林一", "owner", "1栋101")
    other = run_import(empty_app.sessions, "units", units, compound="别的小区")
    assert other.fatal == "没有名为“别的小区”的小区（现有：翠湖苑）"


def test_dry_run_into_an_empty_store_creates_no_compound(empty_app: App, tmp_path: Path) -> None:
    units = write_csv(tmp_path / "u.csv", [["楼栋", "房号"], ["1", "101"]])
    report = run_import(empty_app.sessions, "units", units, compound="翠湖苑", dry_run=True)
    assert counts(report) == (1, 0, 0, 0)
    assert count_rows(empty_app, Compound) == 0 and count_rows(empty_app, Unit) == 0


# -- the command line and the sample files -------------------------------------------------------------
@pytest.fixture
def cli_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.delenv("PROPBOT_CONFIG", raising=False)
    return db_url


def test_cli_imports_the_sample_files(
    cli_db: str, store_app: App, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", "units", str(SAMPLES / "units.csv")]) == 0
    assert "新增 8，更新 0，未变 0，拒绝 0" in capsys.readouterr().out
    assert main(["import", "residents", str(SAMPLES / "residents.xlsx"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["created"] == 5

    assert main(["import", "bills", str(SAMPLES / "bills.csv"), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert (report["created"], report["written"], report["fatal"]) == (4, True, None)
    assert [Rejected(**r) for r in report["rejected"]] == [
        Rejected(6, "与第 4 行重复（同一房屋、同一费用项目、同一账期）"),
        Rejected(7, "金额“-12.00”不能为负数"),
        Rejected(
            8, "费用项目“燃气费”无法识别（应为 物业费、停车费、水费、电费、公摊、装修垃圾清运费、维修费）"
        ),
        Rejected(9, "房屋 7栋2单元999 不存在（请先导入房屋）"),
        Rejected(10, "账期“2026-13”不是有效的年月"),
        Rejected(11, "金额“332.805”最多保留两位小数"),
        Rejected(12, "已缴金额 80.00 大于金额 60.00"),
    ]
    with transaction(store_app.sessions) as session:
        unit = unit_of(session, 7, 1, "101")
        assert {r.name for r in Store(session).residents_of_unit(unit.id)} == {"张伟", "张小雨"}
        assert len(Store(session).units.bills(unit.id)) == 2


def test_cli_text_report_dry_run_and_fatal_exit_codes(
    cli_db: str, store_app: App, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import", "units", str(SAMPLES / "units.csv"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"导入房屋：{SAMPLES / 'units.csv'}（阳光花园）　试运行，未写入数据"
    assert count_rows(store_app, Unit) == 6 * 2 * 18 * 2  # the demo's, nothing more

    assert main(["import", "bills", str(tmp_path / "missing.xlsx")]) == 2
    err = capsys.readouterr().err
    assert f"导入失败，未写入任何数据：找不到文件 {tmp_path / 'missing.xlsx'}" in err


def test_sample_xlsx_is_the_one_the_script_writes(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_residents_xlsx", SAMPLES / "make_residents_xlsx.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    script.write(tmp_path / "residents.xlsx")
    shipped = openpyxl.load_workbook(SAMPLES / "residents.xlsx").active
    fresh = openpyxl.load_workbook(tmp_path / "residents.xlsx").active
    assert [list(r) for r in shipped.values] == [list(r) for r in fresh.values]


# -- propbot demo and propbot db upgrade -------------------------------------------------------------
def test_db_upgrade_and_demo_into_an_empty_sqlite_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fresh.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")
    monkeypatch.delenv("PROPBOT_CONFIG", raising=False)
    assert main(["db", "upgrade"]) == 0
    assert capsys.readouterr().out.startswith("数据库结构已是最新（revision ")
    assert main(["demo"]) == 0 and capsys.readouterr().out == "已载入演示小区“阳光花园”。\n"
    assert main(["demo"]) == 1  # never on top of existing data
    assert "库里已有数据（小区“阳光花园”）" in capsys.readouterr().err

    assert main(["import", "units", str(SAMPLES / "units.csv")]) == 0
    assert main(["demo", "--reset"]) == 2  # not without --yes
    assert "确认请加 --yes" in capsys.readouterr().err
    assert main(["import", "units", str(SAMPLES / "units.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unchanged"] == 8  # the imported units are still there

    assert main(["demo", "--reset", "--yes"]) == 0
    assert capsys.readouterr().out == "已载入演示小区“阳光花园”。\n"
    app = App(replace(Settings(), database_url=f"sqlite:///{path}"), FixedClock(datetime(2026, 11, 23)))
    try:
        with app.sessions() as session:
            assert Store(session).find_unit(7, 1, "101") is None  # a fresh demo, building 7 gone
            assert Store(session).find_unit(3, 2, "1502") is not None
    finally:
        app.close()


@pytest.mark.parametrize("db_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_demo_reset_is_refused_on_postgres(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    assert main(["demo", "--reset", "--yes"]) == 2
    assert capsys.readouterr().err.strip() == "--reset 只用于 SQLite；PostgreSQL 库请由管理员处理。"
