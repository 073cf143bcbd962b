"""``propbot import``, ``propbot demo`` and ``propbot db``: getting data into the store."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.app import App, bootstrap
from bot.cli import Subparsers
from bot.cli.due import aware
from data.clock import FixedClock
from data.db import backend_and_database, current_revision, unit_of_work
from data.importer import KINDS, run_import

EXIT_OK, EXIT_REJECTED, EXIT_FATAL = 0, 1, 2


def register(subparsers: Subparsers) -> None:
    _register_import(subparsers)
    _register_demo(subparsers)
    _register_db(subparsers)


def _register_import(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "import",
        help="import units, residents or bills from a CSV or Excel (.xlsx) file",
        description="Validate every row and import the good ones in one transaction. Rejected rows are "
        "reported with their spreadsheet row number (header = row 1) and the reason. Column headers may be "
        "Chinese or English; CSV may be UTF-8 (with or without BOM) or GBK. See docs/import.md. "
        "Exit code: 0 all rows imported, 1 some rows rejected, 2 fatal error (nothing written).",
    )
    parser.add_argument("kind", choices=KINDS, help="what the file holds")
    parser.add_argument("file", type=Path, help="the .csv or .xlsx file")
    parser.add_argument("--dry-run", action="store_true", help="validate and report, write nothing")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--compound",
        metavar="NAME",
        help="compound to import into (created if the store is empty); "
        "may be left out when the store has exactly one",
    )
    parser.add_argument("--encoding", help="CSV encoding, if not UTF-8 or GBK (e.g. big5)")
    parser.add_argument("--sheet", help="Excel worksheet name (default: the first one)")
    parser.set_defaults(handler=run_import_command)


def _register_demo(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="load the demo compound (阳光花园) into an empty store",
        description="Load the demo compound with buildings, units, residents, staff and six months of bills "
        "and six months of ticket history (repairs, complaints, bookings, emergencies, callbacks, payments) "
        "into an empty store. --reset deletes the SQLite database file first (never PostgreSQL) and needs "
        "--yes.",
    )
    parser.add_argument("--reset", action="store_true", help="delete the SQLite store and start again")
    parser.add_argument("--yes", action="store_true", help="confirm --reset")
    parser.add_argument(
        "--now",
        type=aware,
        help="the demo's today (ISO 8601; Asia/Shanghai if no offset): bills and history end there",
    )
    parser.set_defaults(handler=run_demo)


def _register_db(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "db", help="database schema commands", description="Database schema commands (Alembic)."
    )
    actions = parser.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = actions.add_parser(
        "upgrade",
        help="migrate the schema to the newest revision",
        description="Run the Alembic migrations up to head (creates the schema "
        "on an empty database). Safe to run again.",
    )
    upgrade.set_defaults(handler=run_db_upgrade)


# -- handlers --------------------------------------------------------------------------------------------
def run_import_command(args: argparse.Namespace) -> int:
    app = bootstrap()
    try:
        app.prepare_store()
        report = run_import(
            app.sessions,
            args.kind,
            args.file,
            compound=args.compound,
            dry_run=args.dry_run,
            encoding=args.encoding,
            sheet=args.sheet,
        )
    finally:
        app.close()
    if args.json:
        print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        print("\n".join(report.lines()), file=sys.stderr if report.fatal else sys.stdout)
    return report.exit_code


def run_demo(args: argparse.Namespace) -> int:
    app = bootstrap(clock=FixedClock(args.now) if args.now else None)
    try:
        if args.reset:
            problem = _reset_sqlite(app, args.yes)
            if problem:
                print(problem, file=sys.stderr)
                return EXIT_FATAL
        if app.prepare_store(with_demo=True):
            print("已载入演示小区“阳光花园”。")
            return EXIT_OK
        with unit_of_work(app.sessions) as store:
            name = store.compound().name
        print(
            f"库里已有数据（小区“{name}”），未载入演示小区。要重来：propbot demo --reset --yes（仅 SQLite）",
            file=sys.stderr,
        )
        return EXIT_REJECTED
    finally:
        app.close()


def _reset_sqlite(app: App, confirmed: bool) -> str | None:
    """Delete the SQLite file (and its WAL companions); the reason it was not done otherwise."""
    backend, database = backend_and_database(app.settings.database_url)
    if backend != "sqlite":
        return "--reset 只用于 SQLite；PostgreSQL 库请由管理员处理。"
    if not database or database == ":memory:":
        return "--reset 需要一个 SQLite 文件。"
    if not confirmed:
        return f"--reset 会删除 {database} 里的全部数据。确认请加 --yes。"
    app.close()  # no open connection may keep the old file alive
    app.__dict__.pop("db", None)
    app.__dict__.pop("sessions", None)
    for suffix in ("", "-wal", "-shm"):
        Path(database + suffix).unlink(missing_ok=True)
    return None


def run_db_upgrade(args: argparse.Namespace) -> int:
    app = bootstrap()
    try:
        app.prepare_store()
        revision = current_revision(app.db)
        print(f"数据库结构已是最新（revision {revision}）。")
        return EXIT_OK
    finally:
        app.close()
