"""The report's charts as PNG bytes (matplotlib's object API: no pyplot state). The font is set
through matplotlib's global rcParams, so drawing is serialised (``_DRAWING``): the desk renders in
worker threads, and two charts at once would restore each other's font mid-drawing."""

from __future__ import annotations

import io
import threading
from collections import Counter
from collections.abc import Callable
from datetime import date

from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from flows.intents.complaint import TOPIC_NAMES
from flows.reports.fonts import cjk_family
from flows.reports.report import FAULT_NAMES, KIND_LABELS, Report

COLOURS = {"repair": "#3b7dd8", "complaint": "#e4572e", "booking": "#76b041", "emergency": "#b5179e"}
DPI = 110
_DRAWING = threading.Lock()  # rc_context swaps process-wide settings


def render_all(report: Report) -> dict[str, bytes]:
    """Every chart of the report page, by file name."""
    return {f"{name}.png": draw(report) for name, (_title, draw) in CHARTS.items()}


def _figure(width: float = 7.5, height: float = 3.6) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    axes.spines[["top", "right"]].set_visible(False)
    return figure, axes


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _styled(draw: Callable[[Report], bytes]) -> Callable[[Report], bytes]:
    """Draw with the CJK font as the only family: a glyph it lacks is reported, not hidden."""

    def run(report: Report) -> bytes:
        with _DRAWING, rc_context({"font.family": [cjk_family()], "axes.unicode_minus": False}):
            return draw(report)

    return run


@_styled
def daily_tickets(report: Report) -> bytes:
    """Tickets opened per day, stacked by kind."""
    figure, axes = _figure()
    days = list(report.daily)
    bottom = [0] * len(days)
    for kind, label in KIND_LABELS.items():
        counts = [report.daily[day][kind] for day in days]
        axes.bar(range(len(days)), counts, bottom=bottom, label=label, color=COLOURS[kind], width=0.8)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    axes.set_xticks(range(len(days)), [_day(day, len(days)) for day in days], fontsize=8)
    axes.set_ylim(0, max(bottom, default=0) * 1.25 + 1)  # room for the legend above the bars
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("工单数")
    axes.set_title(f"每日新增工单（{report.period.label}）")
    axes.legend(ncols=4, frameon=False, fontsize=9, loc="upper left")
    return _png(figure)


WEEKDAYS = "一二三四五六日"


def _day(day: date, count: int) -> str:
    if count <= 10:  # a week: the weekday too
        return f"{day.month}月{day.day}日\n周{WEEKDAYS[day.weekday()]}"
    return f"{day.day}日" if day.day % 2 or count <= 16 else ""


@_styled
def collection_by_building(report: Report) -> bytes:
    """收费率 per building: paid by the period's end over billed."""
    figure, axes = _figure()
    labels = [f"{row.building}栋" for row in report.buildings]
    values = [(row.kpis.collection_rate or 0) * 100 for row in report.buildings]
    bars = axes.bar(labels, values, color="#3b7dd8")
    axes.bar_label(bars, [f"{v:.1f}%" for v in values], fontsize=9)
    overall = (report.kpis.collection_rate or 0) * 100
    axes.axhline(overall, color="#e4572e", linestyle="--", linewidth=1, label=f"全小区 {overall:.1f}%")
    axes.set_ylim(0, 118)
    axes.set_yticks(range(0, 101, 20))
    axes.set_ylabel("收费率（%）")
    axes.set_title("各楼栋当期收费率")
    axes.legend(frameon=False, loc="upper right")
    return _png(figure)


@_styled
def time_limits_by_building(report: Report) -> bytes:
    """按时到场率 and 按时完成率 per building."""
    figure, axes = _figure()
    rows = report.buildings
    positions = range(len(rows))
    for offset, (name, label, colour) in enumerate(
        (("on_time_arrival_rate", "按时到场率", "#3b7dd8"), ("on_time_fix_rate", "按时完成率", "#76b041"))
    ):
        values = [(row.kpis.value(name) or 0) * 100 for row in rows]
        bars = axes.bar([p - 0.2 + 0.4 * offset for p in positions], values, 0.4, label=label, color=colour)
        axes.bar_label(bars, [f"{v:.0f}" for v in values], fontsize=8)
    axes.set_xticks(list(positions), [f"{row.building}栋" for row in rows])
    axes.set_ylim(0, 125)
    axes.set_yticks(range(0, 101, 20))
    axes.set_ylabel("%")
    axes.set_title("维修时限达标（报修与紧急工单）")
    axes.legend(ncols=2, frameon=False, loc="upper center")
    return _png(figure)


def _horizontal(counts: Counter[str], names: dict[str, str], title: str, colour: str) -> bytes:
    figure, axes = _figure(7.5, 3.8)
    ordered = sorted(counts.items(), key=lambda item: item[1])
    labels = [names.get(key, key) for key, _ in ordered] or ["（无）"]
    values = [value for _, value in ordered] or [0]
    bars = axes.barh(labels, values, color=colour)
    axes.bar_label(bars, fontsize=9, padding=2)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("件数")
    axes.set_title(title)
    return _png(figure)


@_styled
def complaint_topics(report: Report) -> bytes:
    return _horizontal(report.complaint_topics, TOPIC_NAMES, "投诉分类", "#e4572e")


@_styled
def fault_categories(report: Report) -> bytes:
    return _horizontal(report.fault_categories, FAULT_NAMES, "报修类别（含紧急）", "#3b7dd8")


@_styled
def satisfaction(report: Report) -> bytes:
    """How the period's callbacks scored, 1 to 5."""
    figure, axes = _figure(6.5, 3.4)
    scores = [1, 2, 3, 4, 5]
    words = {1: "很不满意", 2: "不满意", 3: "一般", 4: "满意", 5: "非常满意"}
    colours = ["#b5179e", "#e4572e", "#f2a541", "#76b041", "#3b7dd8"]
    bars = axes.bar([f"{s}分\n{words[s]}" for s in scores], [report.scores[s] for s in scores], color=colours)
    axes.bar_label(bars, fontsize=9)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    rate = report.kpis.value("satisfaction_rate")
    axes.set_title(f"回访满意度评分（满意率 {rate * 100:.1f}%）" if rate is not None else "回访满意度评分")
    axes.set_ylabel("回访数")
    return _png(figure)


# name -> (caption on the page, drawing)
CHARTS: dict[str, tuple[str, Callable[[Report], bytes]]] = {
    "daily_tickets": ("每日新增工单", daily_tickets),
    "collection_by_building": ("各楼栋收费率", collection_by_building),
    "time_limits_by_building": ("维修时限达标", time_limits_by_building),
    "complaint_topics": ("投诉分类", complaint_topics),
    "fault_categories": ("报修类别", fault_categories),
    "satisfaction": ("满意度评分", satisfaction),
}
