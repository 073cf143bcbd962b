"""``propbot report``: the office's KPIs for a month or a span of days, as a page with charts."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from bot.app import bootstrap
from bot.cli import Subparsers
from bot.cli.due import aware
from data.clock import FixedClock, local
from data.db import unit_of_work
from data.reporting import compound_id_of
from flows.reports import page, report
from flows.reports.fonts import FontMissing
from flows.reports.kpi import Period
from flows.reports.report import percent


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write the office's KPI report (HTML page, PNG charts, kpi.csv) for a period",
        description="Write DIR/index.html (the figures, a table per building, the charts), the charts as "
        "PNG files beside it and DIR/kpi.csv (metric,value; rates as fractions 0-1). Definitions: "
        "docs/kpi.md. Without --month or --from/--to: the last full month.",
    )
    span = parser.add_mutually_exclusive_group()
    span.add_argument("--month", type=_month, metavar="YYYY-MM", help="a calendar month")
    span.add_argument("--from", dest="first", type=date.fromisoformat, metavar="DAY", help="first day")
    parser.add_argument(
        "--to", dest="last", type=date.fromisoformat, metavar="DAY", help="last day (included)"
    )
    parser.add_argument("--compound", metavar="CODE", help="compound code or name (default: the first)")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="directory to write into")
    parser.add_argument(
        "--now", type=aware, metavar="TIME", help="report as known at this time (default: now)"
    )
    parser.set_defaults(handler=run)


def _month(raw: str) -> Period:
    try:
        return Period.month(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a month (YYYY-MM): {raw!r}") from exc


def period_of(args: argparse.Namespace, today: date) -> Period:
    if isinstance(args.month, Period):
        return args.month
    if args.first is not None or args.last is not None:
        first = args.first or args.last
        last = args.last or today
        if last < first:
            raise ValueError(f"--to {last} is before --from {first}")
        return Period(first, last)
    return Period.month_before(today)


def run(args: argparse.Namespace) -> int:
    app = bootstrap(clock=FixedClock(args.now) if args.now else None)
    try:
        if app.prepare_store(with_demo=True):
            print("库是空的：已载入演示小区“阳光花园”（含六个月历史）。", file=sys.stderr)
        now = app.clock.now()
        period = period_of(args, local(now).date())
        with unit_of_work(app.sessions) as store:
            found = report.build(store, period, now, compound_id_of(store, args.compound))
        files = page.write(found, args.out)
    except (LookupError, ValueError, FontMissing) as exc:
        print(f"propbot report: {exc}", file=sys.stderr)
        return 2
    finally:
        app.close()
    kpis = found.kpis
    print(
        f"{found.compound} {period.label}: 收费率 {percent(kpis.collection_rate)}，"
        f"回访率 {percent(kpis.value('callback_rate'))}，满意率 {percent(kpis.value('satisfaction_rate'))}"
    )
    print(f"已写入 {len(files)} 个文件：{args.out / 'index.html'}")
    return 0
