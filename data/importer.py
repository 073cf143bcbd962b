"""Import units, residents and bills from the office's own spreadsheets (CSV or Excel .xlsx).

Every row is validated on its own: a bad row is rejected with its spreadsheet row number (header = row 1)
and a reason in plain words, and never stops the good rows. The whole file is one transaction: the good
rows land together, or, on a fatal error (unreadable file, missing column, database failure), nothing
does. A dry run does all the work, then rolls back.

Upsert rules (the file is the newer truth, but only for what it says):
- units by (building, unit, room): the area is updated;
- residents by (unit, name): phone, role and dates are updated;
- bills by (unit, fee item, period): amount, due date, paid amount and paid date are updated.
A column absent from the file, or a blank cell, keeps the stored value (or the default for a new row).
"""

from __future__ import annotations

import calendar
import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TypedDict

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from data.clock import SHANGHAI
from data.models import Bill, Building, Compound, Resident, Unit
from data.store import Store
from nlu.types import FEE_ITEMS

# What a spreadsheet cell holds: csv gives text; openpyxl also numbers, dates, times and booleans.
Cell = str | int | float | bool | Decimal | datetime | date | time | timedelta | None

KINDS = ("units", "residents", "bills")
KIND_NAMES = {"units": "房屋", "residents": "住户", "bills": "账单"}
HEADER_SEARCH_ROWS = 10  # exports often put a title row or two above the header

# Field -> accepted headers (compared after normalising: NFKC, lower case, no spaces, no "(单位)").
HEADERS: dict[str, tuple[str, ...]] = {
    "address": ("房屋", "房屋编号", "房屋地址", "地址", "房间", "address"),
    "building": ("楼栋", "楼栋号", "楼号", "栋", "栋号", "幢", "building", "bldg"),
    "unit_no": ("单元", "单元号", "unit", "unit_no"),
    "room": ("房号", "房间号", "室", "门牌号", "room", "room_no"),
    "area": ("面积", "建筑面积", "area", "area_m2"),
    "name": ("姓名", "名字", "住户姓名", "业主姓名", "name"),
    "phone": ("手机", "手机号", "手机号码", "电话", "联系电话", "phone", "mobile"),
    "role": ("身份", "住户身份", "关系", "类型", "role"),
    "moved_in": ("入住日期", "入住时间", "moved_in"),
    "birthday": ("生日", "出生日期", "birthday"),
    "item": ("费用项目", "收费项目", "费用类型", "项目", "item", "fee_item"),
    "period": ("账期", "所属期", "计费月份", "月份", "period"),
    "amount": ("金额", "应缴金额", "应收金额", "应缴", "amount"),
    "due_date": ("应缴日期", "缴费期限", "到期日", "due_date", "due"),
    "paid_amount": ("已缴金额", "实收金额", "已缴", "paid_amount", "paid"),
    "paid_at": ("缴费日期", "缴费时间", "支付日期", "paid_at"),
}
FIELDS_OF: dict[str, tuple[str, ...]] = {
    "units": ("address", "building", "unit_no", "room", "area"),
    "residents": ("address", "building", "unit_no", "room", "name", "phone", "role", "moved_in", "birthday"),
    "bills": (
        "address",
        "building",
        "unit_no",
        "room",
        "item",
        "period",
        "amount",
        "due_date",
        "paid_amount",
        "paid_at",
    ),
}
REQUIRED_OF: dict[str, tuple[str, ...]] = {
    "units": (),
    "residents": ("name",),
    "bills": ("item", "period", "amount"),
}
LABELS = {
    "address": "房屋",
    "building": "楼栋",
    "unit_no": "单元",
    "room": "房号",
    "area": "面积",
    "name": "姓名",
    "phone": "手机",
    "role": "身份",
    "moved_in": "入住日期",
    "birthday": "生日",
    "item": "费用项目",
    "period": "账期",
    "amount": "金额",
    "due_date": "应缴日期",
    "paid_amount": "已缴金额",
    "paid_at": "缴费日期",
}

ROLES = {
    "owner": ("业主", "产权人", "房主", "owner"),
    "tenant": ("租户", "租客", "承租人", "使用人", "tenant"),
    "family": ("家属", "家庭成员", "亲属", "family"),
}
FEE_ITEM_WORDS: dict[str, tuple[str, ...]] = {
    "management": ("物业费", "物业管理费", "物业服务费"),
    "parking": ("停车费", "车位费", "车位管理费"),
    "water": ("水费",),
    "electricity": ("电费",),
    "shared": ("公摊", "公摊费", "公摊水电费"),
    "decoration_waste": ("装修垃圾清运费", "垃圾清运费"),
    "repair": ("维修费",),
}
assert set(FEE_ITEM_WORDS) == set(FEE_ITEMS)  # the store speaks nlu.types' fee items, nothing else

MAX_MONEY = Decimal("9999999999.99")  # Numeric(12, 2)
MAX_AREA = Decimal("999999.99")  # Numeric(8, 2)
CENT = Decimal("0.01")
GROUPED = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d*)?")  # thousands separators


class FatalImportError(Exception):
    """The file as a whole cannot be imported; nothing is written."""


class RowError(ValueError):
    """One row is rejected; the message is the reason shown to the office."""


@dataclass(frozen=True)
class Rejected:
    row: int
    reason: str


@dataclass
class ImportReport:
    kind: str
    source: str
    dry_run: bool = False
    compound: str | None = None
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fatal: str | None = None
    written: bool = False

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    @property
    def exit_code(self) -> int:
        """0: every row landed; 1: some rows rejected; 2: fatal, nothing written."""
        if self.fatal is not None:
            return 2
        return 1 if self.rejected else 0

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "file": self.source,
            "compound": self.compound,
            "dry_run": self.dry_run,
            "written": self.written,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": [{"row": r.row, "reason": r.reason} for r in self.rejected],
            "notes": self.notes,
            "fatal": self.fatal,
        }

    def lines(self) -> list[str]:
        title = f"导入{KIND_NAMES.get(self.kind, self.kind)}：{self.source}"
        if self.compound:
            title += f"（{self.compound}）"
        if self.fatal is not None:
            return [title, f"导入失败，未写入任何数据：{self.fatal}"]
        out = [title + ("　试运行，未写入数据" if self.dry_run else "")]
        out.append(
            f"新增 {self.created}，更新 {self.updated}，未变 {self.unchanged}，拒绝 {len(self.rejected)}"
        )
        out += [f"说明：{note}" for note in self.notes]
        if self.rejected:
            out.append("被拒绝的行：")
            out += [f"  第 {r.row} 行：{r.reason}" for r in self.rejected]
        return out


@dataclass(frozen=True)
class Row:
    number: int  # as the spreadsheet shows it; the header is row 1
    values: dict[str, Cell]  # field -> cell value (None when blank or the column is absent)

    def get(self, name: str) -> Cell:
        return self.values.get(name)


@dataclass(frozen=True)
class Table:
    fields: frozenset[str]  # the fields the file has columns for
    rows: list[Row]
    ignored: list[str]  # headers we do not know


# -- entry point -------------------------------------------------------------------------------------
class _DryRun(Exception):
    """Raised at the end of a dry run so the transaction rolls back."""


def run_import(
    sessions: sessionmaker[Session],
    kind: str,
    path: str | Path,
    *,
    compound: str | None = None,
    dry_run: bool = False,
    encoding: str | None = None,
    sheet: str | None = None,
) -> ImportReport:
    """Validate and import one file in one transaction; the report says what happened."""
    report = ImportReport(kind=kind, source=str(path), dry_run=dry_run)
    try:
        if kind not in KINDS:
            raise FatalImportError(f"不认识的导入类型“{kind}”（应为 {'、'.join(KINDS)}）")
        table = read_table(Path(path), kind, encoding=encoding, sheet=sheet)
        with sessions() as session, session.begin():
            store = Store(session)
            target = _compound(store, compound, report)
            report.compound = target.name
            if table.ignored:
                report.notes.append("忽略了不认识的列：" + "、".join(table.ignored))
            IMPORTERS[kind](_Context.load(store, target), table, report)
            session.flush()
            if dry_run:
                raise _DryRun
        report.written = True
    except _DryRun:
        pass
    except FatalImportError as exc:
        _fail(report, str(exc))
    except SQLAlchemyError as exc:
        _fail(report, f"数据库错误：{exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    return report


def _fail(report: ImportReport, reason: str) -> None:
    # Nothing landed, so counts from before the failure would only mislead.
    report.fatal = reason
    report.created = report.updated = report.unchanged = 0
    report.rejected.clear()
    report.notes.clear()
    report.written = False


def _compound(store: Store, name: str | None, report: ImportReport) -> Compound:
    compounds = list(store.session.scalars(select(Compound).order_by(Compound.id)))
    if name:
        found = next((c for c in compounds if name in (c.name, c.code)), None)
        if found is not None:
            return found
        if compounds:
            known = "、".join(c.name for c in compounds)
            raise FatalImportError(f"没有名为“{name}”的小区（现有：{known}）")
        created = Compound(code=name[:32], name=name, duty_phone="", office_phone="", settings={})
        store.session.add(created)
        store.session.flush()
        report.notes.append(f"新建小区“{name}”（请用 propbot compound set 补充值班电话和物业电话）")
        return created
    if len(compounds) == 1:
        return compounds[0]
    if not compounds:
        raise FatalImportError("库中还没有小区：请用 --compound 名称 指定要新建的小区")
    raise FatalImportError("库中有多个小区：请用 --compound 名称 指定导入到哪一个")


# -- reading files -----------------------------------------------------------------------------------
def read_table(path: Path, kind: str, *, encoding: str | None = None, sheet: str | None = None) -> Table:
    """The rows of a CSV or .xlsx file, with columns mapped to fields by their headers."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm"):
            cells = _xlsx_rows(path, sheet)
        elif suffix in (".csv", ".txt", ".tsv"):
            cells = _csv_rows(path, encoding)
        elif suffix == ".xls":
            raise FatalImportError("不支持旧版 .xls 文件，请在 Excel 中另存为 .xlsx 或 CSV")
        else:
            raise FatalImportError(f"不支持的文件类型“{suffix or path.name}”（应为 .csv 或 .xlsx）")
    except FileNotFoundError as exc:
        raise FatalImportError(f"找不到文件 {path}") from exc
    except (OSError, zipfile.BadZipFile, KeyError, csv.Error) as exc:
        raise FatalImportError(f"无法读取文件 {path.name}：{exc}") from exc
    return _to_table(cells, kind)


def _csv_rows(path: Path, encoding: str | None) -> list[list[Cell]]:
    text = _decode(path.read_bytes(), encoding)
    # Excel writes ";" or tabs in some locales. The separator is the one the first lines use most;
    # csv.Sniffer also guesses quoting and line rules, and guesses them wrong on short files.
    head = "\n".join(text.splitlines()[:HEADER_SEARCH_ROWS])
    delimiter = max(",;\t", key=head.count) if any(d in head for d in ",;\t") else ","
    return [list[Cell](row) for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]


def _decode(raw: bytes, encoding: str | None) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, or GB18030 (a superset of GBK, Excel's default)."""
    candidates = [encoding] if encoding else ["utf-8-sig", "gb18030"]
    if not encoding and raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        candidates = ["utf-16"]  # Excel's "Unicode text"
    for name in candidates:
        try:
            return raw.decode(name)
        except UnicodeDecodeError:
            continue
        except LookupError as exc:
            raise FatalImportError(f"不认识的编码“{name}”") from exc
    tried = "、".join(candidates)
    raise FatalImportError(f"文件编码无法识别（试过 {tried}），请另存为 UTF-8 或 GBK 编码的 CSV")


def _xlsx_rows(path: Path, sheet: str | None) -> list[list[Cell]]:
    import openpyxl  # only needed for Excel files

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # a damaged workbook fails inside openpyxl in many ways; all mean "unreadable"
        raise FatalImportError(
            f"{path.name} 不是有效的 Excel (.xlsx) 文件（{exc.__class__.__name__}）"
        ) from exc
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise FatalImportError(f"找不到工作表“{sheet}”（有：{'、'.join(book.sheetnames)}）")
        worksheet = book[sheet] if sheet is not None else book.worksheets[0]
        # min_row=1 so that list index + 1 is the row number Excel shows, blank rows included.
        return [[_plain(c) for c in row] for row in worksheet.iter_rows(min_row=1, values_only=True)]
    finally:
        book.close()


def _plain(value: object) -> Cell:
    """openpyxl's rich text and formula objects as the text they show; other values as they are."""
    if value is None or isinstance(value, str | int | float | Decimal | datetime | date | time | timedelta):
        return value
    return str(value)


def _header_key(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip().lower()
    text = re.sub(r"\(.*?\)|\[.*?\]", "", text)  # 面积(㎡), 金额（元）: units in brackets
    return re.sub(r"[\s*_\-]", "", text)


ALIASES = {_header_key(alias): name for name, aliases in HEADERS.items() for alias in aliases}


def _map_header(cells: list[Cell], kind: str) -> tuple[dict[int, str], list[str]]:
    mapping: dict[int, str] = {}
    ignored: list[str] = []
    for index, cell in enumerate(cells):
        if cell is None or not str(cell).strip():
            continue
        name = ALIASES.get(_header_key(str(cell)))
        if name is None or name not in FIELDS_OF[kind]:
            ignored.append(str(cell).strip())
        elif name in mapping.values():
            raise FatalImportError(f"表头里“{LABELS[name]}”出现了两次（第 {index + 1} 列：{cell}）")
        else:
            mapping[index] = name
    return mapping, ignored


def _has_required(fields: set[str], kind: str) -> bool:
    has_unit = "address" in fields or {"building", "room"} <= fields
    return has_unit and set(REQUIRED_OF[kind]) <= fields


def _to_table(cells: list[list[Cell]], kind: str) -> Table:
    for index, header in enumerate(cells[:HEADER_SEARCH_ROWS]):
        mapping, ignored = _map_header(header, kind)
        if _has_required(set(mapping.values()), kind):
            rows = [
                Row(number, {name: _blank_to_none(line, col) for col, name in mapping.items()})
                for number, line in enumerate(cells[index + 1 :], start=index + 2)
                if any(_blank_to_none(line, col) is not None for col in range(len(line)))
            ]
            return Table(frozenset(mapping.values()), rows, ignored)
    need = ["楼栋", "房号（或“房屋”一列，如 3-2-1502）"] + [LABELS[f] for f in REQUIRED_OF[kind]]
    first = next((line for line in cells if any(_blank_to_none(line, c) for c in range(len(line)))), [])
    seen = "、".join(str(c).strip() for c in first if c is not None and str(c).strip()) or "（空文件）"
    raise FatalImportError(
        f"找不到表头：{KIND_NAMES[kind]}文件至少需要这些列：{'、'.join(need)}；第一行是：{seen}"
    )


def _blank_to_none(line: list[Cell], col: int) -> Cell:
    value = line[col] if col < len(line) else None
    if isinstance(value, str):
        value = unicodedata.normalize("NFKC", value).strip()  # full-width digits and brackets
        return value or None
    return value


# -- cell values -------------------------------------------------------------------------------------
def _shown(value: Cell) -> str:
    """A cell as the office would recognise it in a message."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}" if value.time() != time(0) else f"{value:%Y-%m-%d}"
    return str(value)


def _whole_number(value: Cell, label: str, suffixes: str, upper: int) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer():
        number = int(value)
    else:
        match = re.fullmatch(rf"(\d+)\s*(?:{suffixes})?", str(value))
        if match is None:
            raise RowError(f"{label}“{_shown(value)}”不是数字编号")
        number = int(match[1])
    if not 1 <= number <= upper:
        raise RowError(f"{label}“{_shown(value)}”超出范围（1-{upper}）")
    return number


def _room(value: Cell) -> str:
    room = _shown(value).strip()
    room = re.sub(r"\s*(室|号|房)$", "", room)
    if not room or len(room) > 16 or not re.fullmatch(r"[0-9A-Za-z\-]+", room):
        raise RowError(f"房号“{_shown(value)}”格式不对（应为 1502 这样的房间号）")
    return room.upper()


ADDRESS = re.compile(
    r"(?P<b>\d{1,3})\s*(?:号楼|栋|幢|座|#|-)\s*(?:(?P<u>\d{1,2})\s*(?:单元|-)\s*)?(?P<r>[0-9A-Za-z]{1,16})\s*(?:室|号)?"
)


def _address(row: Row) -> tuple[int, int | None, str]:
    """(building, unit or None, room) from the 楼栋/单元/房号 columns or one 房屋 column (3-2-1502)."""
    if row.get("building") is not None or row.get("room") is not None:
        if row.get("building") is None:
            raise RowError("楼栋为空")
        if row.get("room") is None:
            raise RowError("房号为空")
        building = _whole_number(row.get("building"), "楼栋", "号楼|栋|幢|座|#|号", 999)
        unit_raw = row.get("unit_no")
        unit_no = None if unit_raw is None else _whole_number(unit_raw, "单元", "单元|号", 99)
        return building, unit_no, _room(row.get("room"))
    raw = row.get("address")
    if raw is None:
        raise RowError("房屋为空（请填写楼栋和房号）")
    match = ADDRESS.fullmatch(_shown(raw).replace(" ", ""))
    if match is None:
        raise RowError(f"房屋“{_shown(raw)}”看不懂（应为 3栋2单元1502 或 3-2-1502）")
    return int(match["b"]), int(match["u"]) if match["u"] else None, match["r"].upper()


def _decimal(value: Cell, label: str, upper: Decimal) -> Decimal:
    """A non-negative amount with at most two decimals; ¥, 元 and thousands separators are fine."""
    if isinstance(value, float):
        number = Decimal(repr(value))
        # Excel keeps 96*2.6 as 249.60000000000002 and shows 249.6; take what the user sees.
        if abs(number - number.quantize(CENT)) < Decimal("1e-9"):
            number = number.quantize(CENT)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    else:
        text = re.sub(r"^[¥￥]|元$", "", str(value).strip()).strip()
        if GROUPED.fullmatch(text):  # 1,234.50; but 88,5 is a decimal comma and must not become 885
            text = text.replace(",", "")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise RowError(f"{label}“{_shown(value)}”不是数字") from None
    if not number.is_finite():
        raise RowError(f"{label}“{_shown(value)}”不是数字")
    if number < 0:
        raise RowError(f"{label}“{_shown(value)}”不能为负数")
    if number != number.quantize(CENT):
        raise RowError(f"{label}“{_shown(value)}”最多保留两位小数")
    if number > upper:
        raise RowError(f"{label}“{_shown(value)}”过大")
    return number.quantize(CENT)


# Same normal form as the NLU's phone entity (nlu.types), so binding by unit + phone matches:
# mobiles as 11 digits, landlines as area code-number.
MOBILE = re.compile(r"(?:\+?86)?(1[3-9]\d{9})")
LANDLINE = re.compile(r"\(?(0(?:10|2\d)|0[3-9]\d{2})\)?-?([1-9]\d{6,7})")


def _phone(value: Cell) -> str:
    text = re.sub(r"[\s.]", "", _shown(value))
    mobile = MOBILE.fullmatch(text.replace("-", ""))
    if mobile:
        return mobile[1]
    landline = LANDLINE.fullmatch(text)
    if landline:
        return f"{landline[1]}-{landline[2]}"
    raise RowError(f"手机“{_shown(value)}”格式不对（应为11位手机号，或带区号的固定电话）")


def _from_words(value: Cell, table: dict[str, tuple[str, ...]], label: str, expected: str) -> str:
    key = _shown(value).strip().lower()
    for code, words in table.items():
        if key == code or key in words:
            return code
    raise RowError(f"{label}“{_shown(value)}”无法识别（应为 {expected}）")


def _role(value: Cell) -> str:
    return _from_words(value, ROLES, "身份", "业主、租户 或 家属")


def _fee_item(value: Cell) -> str:
    expected = "、".join(words[0] for words in FEE_ITEM_WORDS.values())
    return _from_words(value, FEE_ITEM_WORDS, "费用项目", expected)


PERIOD = re.compile(r"(\d{4})\s*(?:[-/.年]\s*(\d{1,2})\s*月?|(\d{2}))")


def _period(value: Cell) -> str:
    if isinstance(value, float) and not value.is_integer():
        # Excel stores 2026.10 as the number 2026.1: October and January look the same.
        raise RowError(f"账期“{_shown(value)}”是数字，分不清月份，请写成 2026-10 或 2026年10月")
    if isinstance(value, datetime | date):  # Excel turns "2026-09" into 2026-09-01
        year, month = value.year, value.month
    else:
        match = PERIOD.fullmatch(_shown(value).strip())
        if match is None:
            raise RowError(f"账期“{_shown(value)}”格式不对（应为 2026-09 或 2026年9月）")
        year, month = int(match[1]), int(match[2] or match[3])
    if not (2000 <= year <= 2100 and 1 <= month <= 12):
        raise RowError(f"账期“{_shown(value)}”不是有效的年月")
    return f"{year:04d}-{month:02d}"


DATE = re.compile(
    r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?"
)


def _datetime(value: Cell, label: str) -> datetime:
    """A date or date and time; naive values are the compound's local time."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=SHANGHAI)
    if isinstance(value, date):
        return datetime.combine(value, time(0), SHANGHAI)
    match = DATE.fullmatch(_shown(value).strip())
    try:
        if match is None:
            raise ValueError
        year, month, day, hour, minute, second = (int(part) if part else 0 for part in match.groups())
        return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)
    except ValueError:
        raise RowError(f"{label}“{_shown(value)}”不是有效的日期（应为 2026-09-20）") from None


def _date(value: Cell, label: str) -> date:
    return _datetime(value, label).date()


def _text(value: Cell, label: str, limit: int) -> str:
    text = _shown(value).strip()
    if len(text) > limit:
        raise RowError(f"{label}过长（最多 {limit} 个字）")
    return text


class ResidentValues(TypedDict, total=False):
    phone: str
    role: str
    moved_in: date
    birthday: date


class BillValues(TypedDict, total=False):
    amount: Decimal
    due_date: date
    paid_amount: Decimal
    paid_at: datetime


# -- the store side ----------------------------------------------------------------------------------
UnitKey = tuple[int, int | None, str]


@dataclass
class _Context:
    """The compound's units (and what we add), so each row is looked up without a query."""

    store: Store
    compound: Compound
    buildings: dict[int, Building]
    units: dict[UnitKey, Unit] = field(default_factory=dict)
    by_room: dict[tuple[int, str], list[Unit]] = field(default_factory=dict)  # for rows without 单元

    @classmethod
    def load(cls, store: Store, compound: Compound) -> _Context:
        buildings = {
            b.number: b
            for b in store.session.scalars(select(Building).where(Building.compound_id == compound.id))
        }
        context = cls(store, compound, buildings)
        for unit in store.session.scalars(
            select(Unit).join(Building).where(Building.compound_id == compound.id)
        ):
            context.units[(unit.building.number, unit.unit_no, unit.room)] = unit
            context.by_room.setdefault((unit.building.number, unit.room), []).append(unit)
        return context

    def add(self, key: UnitKey, unit: Unit) -> None:
        self.store.session.add(unit)
        self.units[key] = unit
        self.by_room.setdefault((key[0], key[2]), []).append(unit)

    def find(self, key: UnitKey) -> Unit | None:
        """The unit at ``key``; without a unit number, only when the room is unambiguous."""
        building, unit_no, room = key
        if unit_no is not None or key in self.units:
            return self.units.get(key)
        matches = self.by_room.get((building, room), [])
        if len(matches) > 1:
            raise RowError(f"{building}栋有多个单元都有 {room} 房，请填写单元号")
        return matches[0] if matches else None

    def existing(self, key: UnitKey) -> Unit:
        unit = self.find(key)
        if unit is None:
            raise RowError(f"房屋 {_label(key)} 不存在（请先导入房屋）")
        return unit


def _label(key: UnitKey) -> str:
    building, unit_no, room = key
    return f"{building}栋" + (f"{unit_no}单元" if unit_no is not None else "") + room


def _rows(table: Table, report: ImportReport, handle: Callable[[Row], str]) -> None:
    """Run ``handle`` on each row; it returns created/updated/unchanged or raises RowError.

    A handler validates everything before it changes anything, so a rejected row leaves no trace.
    """
    for row in table.rows:
        try:
            report.count(handle(row))
        except RowError as exc:
            report.rejected.append(Rejected(row.number, str(exc)))


def _once(seen: dict[Hashable, int], key: Hashable, row: Row, what: str) -> None:
    """Reject a second row for the same thing (the first one wins)."""
    first = seen.setdefault(key, row.number)
    if first != row.number:
        raise RowError(f"与第 {first} 行重复（{what}）")


def _changed(target: object, values: Mapping[str, object]) -> bool:
    """Set the given attributes; True if any of them differed."""
    changed = False
    for name, value in values.items():
        if getattr(target, name) != value:
            setattr(target, name, value)
            changed = True
    return changed


# -- units ---------------------------------------------------------------------------------------------
def import_units(ctx: _Context, table: Table, report: ImportReport) -> None:
    seen: dict[Hashable, int] = {}
    new_buildings: list[int] = []

    def handle(row: Row) -> str:
        key = _address(row)
        area = None if row.get("area") is None else _decimal(row.get("area"), "面积", MAX_AREA)
        if area is not None and area == 0:
            raise RowError(f"面积“{_shown(row.get('area'))}”必须大于 0")
        unit = ctx.find(key)
        _once(seen, (key[0], unit.unit_no, unit.room) if unit else key, row, "同一房屋")
        if unit is not None:
            return "updated" if area is not None and _changed(unit, {"area_m2": area}) else "unchanged"
        building = _building(ctx, key[0], new_buildings)
        ctx.add(key, Unit(building=building, unit_no=key[1], room=key[2], area_m2=area))
        return "created"

    _rows(table, report, handle)
    if new_buildings:
        report.notes.append("新建楼栋：" + "、".join(f"{n}栋" for n in sorted(new_buildings)))


def _building(ctx: _Context, number: int, created: list[int]) -> Building:
    if number not in ctx.buildings:
        ctx.buildings[number] = Building(compound=ctx.compound, number=number, name=f"{number}栋")
        ctx.store.session.add(ctx.buildings[number])
        created.append(number)
    return ctx.buildings[number]


# -- residents -----------------------------------------------------------------------------------------
def import_residents(ctx: _Context, table: Table, report: ImportReport) -> None:
    residents = {
        (r.unit_id, r.name): r
        for r in ctx.store.session.scalars(
            select(Resident).join(Unit).join(Building).where(Building.compound_id == ctx.compound.id)
        )
    }
    seen: dict[Hashable, int] = {}

    def handle(row: Row) -> str:
        unit = ctx.existing(_address(row))
        name = _text(row.get("name"), "姓名", 50) if row.get("name") is not None else ""
        if not name:
            raise RowError("姓名为空")
        values = _resident_values(row, table.fields)
        _once(seen, (unit.id, name), row, "同一房屋、同一姓名")
        found = residents.get((unit.id, name))
        if found is not None:
            return "updated" if _changed(found, values) else "unchanged"
        resident = Resident(unit=unit, name=name, **{"role": "owner", **values})
        residents[(unit.id, name)] = resident
        ctx.store.session.add(resident)
        return "created"

    _rows(table, report, handle)


def _resident_values(row: Row, columns: frozenset[str]) -> ResidentValues:
    values: ResidentValues = {}
    if row.get("phone") is not None:
        values["phone"] = _phone(row.get("phone"))
    if "role" in columns:
        if row.get("role") is None:  # a blank role would silently make a tenant liable as owner
            raise RowError("身份为空（应为 业主、租户 或 家属）")
        values["role"] = _role(row.get("role"))
    for name in ("moved_in", "birthday"):
        if row.get(name) is not None:
            values[name] = _date(row.get(name), LABELS[name])
    return values


# -- bills ---------------------------------------------------------------------------------------------
def import_bills(ctx: _Context, table: Table, report: ImportReport) -> None:
    bills = _bills_of(ctx, table)
    billing_day = ctx.store.settings(ctx.compound).billing_day
    seen: dict[Hashable, int] = {}

    def handle(row: Row) -> str:
        unit = ctx.existing(_address(row))
        for required in ("item", "period", "amount"):
            if row.get(required) is None:
                raise RowError(f"{LABELS[required]}为空")
        item, period = _fee_item(row.get("item")), _period(row.get("period"))
        values = _bill_values(row)
        key = (unit.id, item, period)
        found = bills.get(key)
        _check_payment(values, found)
        _once(seen, key, row, "同一房屋、同一费用项目、同一账期")
        if found is not None:
            return "updated" if _changed(found, values) else "unchanged"
        values.setdefault("due_date", _due_date(period, billing_day))
        values.setdefault("paid_amount", Decimal(0))
        bills[key] = Bill(unit=unit, item=item, period=period, **values)
        ctx.store.session.add(bills[key])
        return "created"

    _rows(table, report, handle)


def _bills_of(ctx: _Context, table: Table) -> dict[tuple[int, str, str], Bill]:
    """The compound's bills for the periods in the file (not every bill ever issued)."""
    periods: set[str] = set()
    for row in table.rows:
        try:
            periods.add(_period(row.get("period")))
        except RowError:
            continue
    query = (
        select(Bill)
        .join(Unit)
        .join(Building)
        .where(Building.compound_id == ctx.compound.id, Bill.period.in_(sorted(periods)))
    )
    return {(b.unit_id, b.item, b.period): b for b in ctx.store.session.scalars(query)}


def _bill_values(row: Row) -> BillValues:
    values: BillValues = {"amount": _decimal(row.get("amount"), "金额", MAX_MONEY)}
    if row.get("due_date") is not None:
        values["due_date"] = _date(row.get("due_date"), "应缴日期")
    if row.get("paid_amount") is not None:
        values["paid_amount"] = _decimal(row.get("paid_amount"), "已缴金额", MAX_MONEY)
    if row.get("paid_at") is not None:
        values["paid_at"] = _datetime(row.get("paid_at"), "缴费日期")
    return values


def _check_payment(values: BillValues, found: Bill | None) -> None:
    """No more paid than billed, and a payment date only with a payment (the file over the store)."""
    if "paid_amount" in values:
        paid, said = values["paid_amount"], f"已缴金额 {values['paid_amount']}"
    else:
        paid = found.paid_amount if found is not None else Decimal(0)
        said = f"已缴金额（库中已记 {paid}）"
    if paid > values["amount"]:
        raise RowError(f"{said} 大于金额 {values['amount']}")
    if "paid_at" in values and paid == 0:
        raise RowError("填了缴费日期，但已缴金额为 0")


def _due_date(period: str, billing_day: int) -> date:
    year, month = int(period[:4]), int(period[5:])
    return date(year, month, min(billing_day, calendar.monthrange(year, month)[1]))


IMPORTERS: dict[str, Callable[[_Context, Table, ImportReport], None]] = {
    "units": import_units,
    "residents": import_residents,
    "bills": import_bills,
}


__all__ = ["KINDS", "FatalImportError", "ImportReport", "Rejected", "read_table", "run_import"]
