"""``propbot broadcast``: a notice to a building, a range of units, or everyone."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from bot.app import bootstrap
from bot.cli import Subparsers
from bot.cli.due import aware
from data.clock import FixedClock
from data.db import unit_of_work
from data.store import Store
from flows import services
from flows.domain.errors import ActionError
from flows.domain.tickets import format_time
from flows.jobs.broadcasts import KINDS, NoticeError, NoticeRequest, UnitRange, notices
from flows.services import Actor


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "broadcast",
        help="send a notice (outage, pest control, event, greeting) to residents",
        description="Outage notices go out at once with the restoration time; pest control a day ahead and "
        "events a week ahead of --start; greetings only to residents who opted in. Quiet hours hold "
        "everything not marked --urgent. Say who: --all, --building N (repeatable) or --units RANGE.",
        epilog="examples:\n"
        "  propbot broadcast --kind outage --utility water --building 3 --start 2026-11-24T09:00 "
        "--end 2026-11-24T17:00 --text 二次供水水箱清洗\n"
        "  propbot broadcast --kind pest --all --start 2026-11-28T09:00 --text 公共区域除四害消杀\n"
        "  propbot broadcast --kind event --units 3-2-1501:1802 --start 2026-12-05T15:00 --title 业主恳谈会 "
        "--text 地点：会所二楼\n"
        "  propbot broadcast --list\n  propbot broadcast --cancel 7",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--kind", choices=KINDS, default="general")
    parser.add_argument("--utility", choices=("water", "power", "gas"), help="for outages")
    parser.add_argument("--text", default="", help="the reason / details / greeting")
    parser.add_argument("--title", default="")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--all", action="store_true", help="everyone in the compound")
    who.add_argument("--building", type=int, action="append", default=[], metavar="N")
    who.add_argument(
        "--units",
        action="append",
        default=[],
        metavar="RANGE",
        help="B-U-ROOM[:ROOM] or B-ROOM[:ROOM], e.g. 3-2-1501:1802 (repeatable)",
    )
    parser.add_argument("--start", type=aware, help="when it happens (ISO 8601, Asia/Shanghai)")
    parser.add_argument("--end", type=aware, help="outages: the restoration time")
    parser.add_argument("--send-at", type=aware, help="send at this time instead of the default")
    parser.add_argument("--urgent", action="store_true", help="ignore quiet hours (an outage happening now)")
    parser.add_argument("--now", type=aware, help="pretend it is this time")
    parser.add_argument("--as", dest="actor", default="cli", help="who sends it (recorded)")
    parser.add_argument("--list", action="store_true", help="list recent notices")
    parser.add_argument(
        "--cancel", type=int, metavar="ID", help="cancel a notice: unsent messages are taken back"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    app = bootstrap(clock=FixedClock(args.now) if args.now else None)
    try:
        app.prepare_store(with_demo=False)
        with unit_of_work(app.sessions) as store:
            return _act(store, args, app.clock.now())
    except (ActionError, LookupError) as exc:
        print(f"propbot broadcast: {exc}", file=sys.stderr)
        return 2
    finally:
        app.close()


def _act(store: Store, args: argparse.Namespace, now: datetime) -> int:
    compound = store.compound()
    if args.list:
        for notice in notices(store, compound):
            state = "已取消" if notice.cancelled_at else f"{notice.recipients} 人"
            print(f"#{notice.id} {notice.kind:<8} {format_time(notice.send_at)} {state} {notice.title}")
        return 0
    actor = Actor.office(f"cli:{args.actor}")
    if args.cancel is not None:
        print(services.cancel_notice(store, actor, compound, args.cancel, now).text)
        return 0
    if not (args.all or args.building or args.units):
        raise NoticeError("请说明发给谁：--all、--building N 或 --units 3-2-1501:1802")
    request = NoticeRequest(
        kind=args.kind,
        text=args.text,
        title=args.title,
        utility=args.utility,
        buildings=tuple(args.building),
        units=tuple(UnitRange.parse(u) for u in args.units),
        starts_at=args.start,
        ends_at=args.end,
        send_at=args.send_at,
        urgent=args.urgent,
    )
    sent = services.send_notice(store, actor, compound, request, now).notice
    assert sent is not None  # send_notice always creates one
    print(
        f"通知 #{sent.id} 已排入发送队列：{sent.recipients} 个账号，{format_time(sent.send_at)} 起发送"
        "（免打扰时段顺延）。"
    )
    print(sent.text)
    return 0
