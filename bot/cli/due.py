"""``propbot due --now TIME [--json] [--run]``: what the scheduler would do at TIME, or do it."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from typing import TextIO

from bot.app import bootstrap
from bot.cli import Subparsers
from data.clock import SHANGHAI, FixedClock, local
from data.db import reading, unit_of_work
from flows.jobs import sweeps


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "due",
        help="list (or run) what the scheduler would do at a given time",
        description="Callbacks, time-limit warnings and escalations, bill notices, arrears reminders and "
        "care messages due at TIME. Nothing changes without --run; with --run the actions are taken "
        "(outbox rows written) exactly as the scheduler would, and running it twice sends nothing twice.",
    )
    parser.add_argument(
        "--now",
        type=aware,
        required=True,
        metavar="TIME",
        help="ISO 8601 time (Asia/Shanghai if no offset), e.g. 2026-11-25T10:00",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--run", action="store_true", help="do it: write the outbox rows and state changes")
    parser.add_argument(
        "--job",
        action="append",
        choices=sorted(sweeps.registry()),
        metavar="NAME",
        help=f"only this sweep (repeatable): {', '.join(sweeps.registry())}",
    )
    parser.set_defaults(handler=run)


def aware(raw: str) -> datetime:
    try:
        at = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {raw!r}") from exc
    return at if at.tzinfo else at.replace(tzinfo=SHANGHAI)


def run(args: argparse.Namespace) -> int:
    app = bootstrap(clock=FixedClock(args.now))
    try:
        app.prepare_store(with_demo=False)
        if args.run:
            with unit_of_work(app.sessions) as store:
                actions = sweeps.run(store, args.now, args.job)
        else:
            with reading(app.sessions) as store:  # a look, never a change
                actions = sweeps.due(store, args.now, args.job)
        _print(actions, args, sys.stdout)
        return 0
    finally:
        app.close()


def _print(actions: list[sweeps.Action], args: argparse.Namespace, out: TextIO) -> None:
    if args.json:
        body = {
            "now": args.now.isoformat(),
            "ran": bool(args.run),
            "count": len(actions),
            "actions": [a.to_json() for a in actions],
        }
        json.dump(body, out, ensure_ascii=False, indent=2)
        out.write("\n")
        return
    verb = "已执行" if args.run else "待执行"
    out.write(f"{local(args.now):%Y-%m-%d %H:%M} {verb} {len(actions)} 项\n")
    for action in actions:
        out.write(f"  [{action.job}] {action.kind:<14} {action.summary}\n")
