"""``propbot codes issue|list|revoke``: binding codes from the office (flows.domain.binding_codes).

``issue`` prints the printable line and, with ``--qr FILE``, writes the QR code as a PNG (the
Telegram deep link when ``TELEGRAM_BOT_USERNAME`` is set, else the code itself).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path

from bot.app import App
from bot.cli import Subparsers
from bot.cli.run import with_app
from bot.desk.qr import qr_png
from data.clock import local
from data.db import unit_of_work
from data.models import BindingCode
from flows.domain import binding_codes
from flows.domain.binding_codes import STATE_NAMES, CodeError

CLI_ACTOR = "staff:cli"


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "codes",
        help="binding codes from the office: issue, list, revoke",
        description="Single-use, expiring codes a resident sends to the bot to bind a chat account to "
        "the flat (the desk's flat page issues them too).",
    )
    actions = parser.add_subparsers(dest="codes_command", metavar="ACTION", required=True)
    issue = actions.add_parser(
        "issue",
        help="issue a code for a flat",
        description="Issue a code for a resident of the flat: the owner unless --resident names another.",
        epilog="example:\n  propbot codes issue --unit 3-2-1502 --expires 7d --qr 1502.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    issue.add_argument("--unit", required=True, help="building-unit-room, e.g. 3-2-1502 (or 3-1502)")
    issue.add_argument("--resident", metavar="NAME", help="the resident it is for (name or id)")
    issue.add_argument("--expires", default="7d", help="how long it stays valid: 7d, 12h, 30m (default 7d)")
    issue.add_argument("--qr", metavar="FILE", type=Path, help="also write the QR code as a PNG")
    issue.add_argument("--json", action="store_true", help="print JSON")
    issue.set_defaults(handler=run_issue)
    listing = actions.add_parser("list", help="list codes, newest first")
    listing.add_argument("--unit", help="only this flat's")
    listing.add_argument("--state", choices=tuple(STATE_NAMES), help="only codes in this state")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=run_list)
    revoke = actions.add_parser("revoke", help="revoke a code that is not used yet")
    revoke.add_argument("code")
    revoke.set_defaults(handler=run_revoke)


def _iso(at: datetime | None) -> str | None:
    return local(at).isoformat() if at is not None else None


def _row(code: BindingCode, now_state: str) -> dict[str, str | None]:
    return {
        "code": code.code,
        "unit": code.resident.unit.label,
        "resident": code.resident.name,
        "state": now_state,
        "created_at": _iso(code.created_at),
        "expires_at": _iso(code.expires_at),
        "used_at": _iso(code.used_at),
        "revoked_at": _iso(code.revoked_at),
        "issued_by": code.issued_by,
        "line": binding_codes.printable(code),
    }


def run_issue(args: argparse.Namespace) -> int:
    def work(app: App) -> int:
        valid = binding_codes.parse_duration(args.expires)
        now = app.clock.now()
        with unit_of_work(app.sessions) as store:
            unit = binding_codes.find_unit(store, args.unit)
            resident = binding_codes.resident_for(store, unit, args.resident)
            code = binding_codes.issue(store, resident, now, CLI_ACTOR, valid)
            row = _row(code, code.state(now))
        if args.qr is not None:
            link = binding_codes.deep_link(str(row["code"]), app.settings.telegram_bot_username)
            args.qr.write_bytes(qr_png(link))
        print(json.dumps(row, ensure_ascii=False, indent=2) if args.json else row["line"])
        return 0

    return with_app(work, (CodeError, LookupError))


def run_list(args: argparse.Namespace) -> int:
    def work(app: App) -> int:
        now = app.clock.now()
        with unit_of_work(app.sessions) as store:
            unit_id = binding_codes.find_unit(store, args.unit).id if args.unit else None
            rows = [_row(c, c.state(now)) for c in binding_codes.codes(store, unit_id=unit_id)]
        rows = [r for r in rows if args.state is None or r["state"] == args.state]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=2))
        elif not rows:
            print("没有符合条件的绑定码。")
        for row in [] if args.json else rows:
            state = STATE_NAMES[str(row["state"])]
            until = str(row["expires_at"] or "长期")[:16].replace("T", " ")
            print(f"{row['code']}\t{row['unit']}\t{row['resident']}\t{state}\t有效期至 {until}")
        return 0

    return with_app(work, (CodeError,))


def run_revoke(args: argparse.Namespace) -> int:
    def work(app: App) -> int:
        with unit_of_work(app.sessions) as store:
            code = binding_codes.revoke(store, args.code, app.clock.now())
            print(f"绑定码 {code.code}（{code.resident.unit.label} {code.resident.name}）已作废")
        return 0

    return with_app(work, (CodeError,))
