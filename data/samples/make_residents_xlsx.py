"""Write residents.xlsx, the sample residents file.

Run: uv run python data/samples/make_residents_xlsx.py
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import openpyxl
from openpyxl.worksheet.worksheet import Worksheet

HEADER = ("楼栋", "单元", "房号", "姓名", "手机", "身份", "入住日期")
ROWS = (
    (7, 1, 101, "张伟", "13912345678", "业主", date(2026, 10, 28)),
    (7, 1, 101, "张小雨", None, "家属", date(2026, 10, 28)),
    (7, 1, 102, "刘洋", "137 1234 5679", "租户", date(2026, 11, 2)),
    (7, 1, 102, "孙丽", "13612345670", "业主", None),
    (7, 2, 101, "周建国", "0571-87654321", "业主", None),
)


def write(path: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert isinstance(sheet, Worksheet)  # a new workbook has one worksheet
    sheet.title = "住户"
    sheet.append(HEADER)
    for row in ROWS:
        sheet.append(row)
    for cell in sheet["G"][1:]:
        cell.number_format = "yyyy-mm-dd"
    book.save(path)


if __name__ == "__main__":
    write(Path(__file__).with_name("residents.xlsx"))
