"""``propbot report``'s output: index.html (one page, inline CSS), the charts beside it, kpi.csv."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from html import escape
from pathlib import Path

from flows.reports.charts import CHARTS, render_all
from flows.reports.kpi import Kpis
from flows.reports.report import KIND_LABELS, Report, money, percent

FIGURES = (
    ("collection_rate", "收费率", "当期账单在期末前实收 / 应收（金额）"),
    ("callback_rate", "回访率", "完工且已到回访时间的工单中，已回访（有评分）的比例"),
    ("satisfaction_rate", "满意率", "有评分的回访中，4–5 分的比例"),
    ("on_time_arrival_rate", "按时到场率", "报修与紧急工单，在到场时限内到场的比例"),
    ("on_time_fix_rate", "按时完成率", "报修与紧急工单，在完成时限内完工的比例"),
    ("reopen_rate", "返修率", "本期首次完工的工单中，之后被重新打开的比例"),
)
STYLE = """
body{font-family:"Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif;margin:0 auto;max-width:1100px;
padding:1rem;color:#222;background:#fafafa}
h1{font-size:1.5rem;margin-bottom:.2rem}.sub{color:#666;margin-top:0}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:.6rem}
.card{background:#fff;border:1px solid #ddd;border-radius:8px;padding:.6rem .8rem}
.card b{display:block;font-size:1.6rem;color:#1d4f91}.card small{color:#777}
table{border-collapse:collapse;width:100%;background:#fff;margin:.5rem 0 1.5rem;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.35rem .5rem;text-align:right}th{background:#eef3fa}
td:first-child{text-align:left}.wide{overflow-x:auto}.wide th,.wide td{white-space:nowrap}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:1rem}
figure{margin:0;background:#fff;border:1px solid #ddd;border-radius:8px;padding:.5rem}
figure img{width:100%;height:auto}figcaption{color:#555;font-size:.85rem}
@media (max-width:560px){.charts{grid-template-columns:1fr}th,td{padding:.25rem}}
"""


def write(report: Report, out: Path) -> list[Path]:
    """Write the page, its charts and kpi.csv into ``out`` (created); the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, png in render_all(report).items():
        (out / name).write_bytes(png)
        written.append(out / name)
    (out / "kpi.csv").write_text(kpi_csv(report.kpis), encoding="utf-8")
    (out / "index.html").write_text(html(report), encoding="utf-8")
    return [*written, out / "kpi.csv", out / "index.html"]


def kpi_csv(kpis: Kpis) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(("metric", "value"))
    writer.writerows(kpis.rows())
    return buffer.getvalue()


def html(report: Report) -> str:
    kpis = report.kpis
    title = f"{report.compound} 物业服务报表 · {report.period.label}"
    return "\n".join(
        (
            "<!doctype html>",
            '<html lang="zh-CN"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
            f"<h1>{escape(title)}</h1>",
            f'<p class="sub">统计区间 {report.period.first} 至 {report.period.last}；'
            f"数据截至 {report.as_of:%Y-%m-%d %H:%M}（口径见 docs/kpi.md）</p>",
            _cards(kpis),
            "<h2>各楼栋</h2>",
            _building_table(report),
            "<h2>图表</h2>",
            '<div class="charts">',
            *(_figure(name, caption) for name, (caption, _draw) in CHARTS.items()),
            "</div></body></html>",
        )
    )


def _figure(name: str, caption: str) -> str:
    label = escape(caption)
    return f'<figure><img src="{name}.png" alt="{label}"><figcaption>{label}</figcaption></figure>'


@dataclass(frozen=True)
class Card:
    """One figure of the page: what, its value, how it is counted."""

    label: str
    value: str
    note: str


BUILDING_HEAD = (
    "楼栋", "工单", "报修", "投诉", "按时到场", "按时完成", "回访率", "满意率", "收费率", "至今未缴（元）",
)  # fmt: skip


def cards(kpis: Kpis) -> list[Card]:
    """The figures, as ``propbot report``'s page and the desk's report page show them."""
    found = []
    for name, label, meaning in FIGURES:
        detail = ""
        if name != "collection_rate":
            ratio = kpis.rates[name]
            detail = f"（{ratio.numerator}/{ratio.denominator}）"
        found.append(Card(label, percent(kpis.value(name)), meaning + detail))
    paid, billed = kpis.collection
    hours = "—" if kpis.median_close_hours is None else f"{kpis.median_close_hours:g} 小时"
    counts = "、".join(f"{KIND_LABELS.get(k, k)} {n}" for k, n in sorted(kpis.counts.items()))
    return [
        *found,
        Card("关单时长中位数", hours, "受理到关闭（回访后关闭）"),
        Card(
            "实收 / 应收",
            money(paid),
            f"应收 {money(billed)} 元，至今未缴 {money(billed - kpis.collected_to_date)} 元",
        ),
        Card("新增工单", str(sum(kpis.counts.values())), counts),
    ]


def building_rows(report: Report) -> list[list[str]]:
    """A row per building, in the columns of ``BUILDING_HEAD``."""
    rows = []
    for row in report.buildings:
        k = row.kpis
        _paid, billed = k.collection
        rows.append(
            [
                f"{row.building}栋",
                str(sum(k.counts.values())),
                str(k.counts["repair"] + k.counts["emergency"]),
                str(k.counts["complaint"]),
                percent(k.value("on_time_arrival_rate")),
                percent(k.value("on_time_fix_rate")),
                percent(k.value("callback_rate")),
                percent(k.value("satisfaction_rate")),
                percent(k.collection_rate),
                money(billed - k.collected_to_date),
            ]
        )
    return rows


def _cards(kpis: Kpis) -> str:
    boxes = (
        f'<div class="card">{escape(c.label)}<b>{escape(c.value)}</b><small>{escape(c.note)}</small></div>'
        for c in cards(kpis)
    )
    return f'<div class="cards">{"".join(boxes)}</div>'


def _building_table(report: Report) -> str:
    head = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in BUILDING_HEAD) + "</tr>"
    rows = (
        "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>" for cells in building_rows(report)
    )
    return f'<div class="wide"><table>{head}{"".join(rows)}</table></div>'  # scrolls on a phone
