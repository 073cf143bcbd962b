"""``propbot chat``: talk to the bot as a demo resident in the terminal (or pipe lines in)."""

from __future__ import annotations

import argparse
import io
import sys
from datetime import datetime

from bot.app import bootstrap
from bot.channels.console import ConsoleChat
from bot.cli import Subparsers
from data.clock import SHANGHAI, FixedClock
from data.demo import DEMO_ACCOUNTS

PROMPT = "您: "


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "chat",
        help="chat with the bot in the terminal as a demo resident",
        description="Chat as a demo resident. The demo compound is loaded into an empty store on first run. "
        "When stdin is not a terminal, each line is one message and the replies are printed.",
    )
    names = [a.name for a in DEMO_ACCOUNTS]
    parser.add_argument(
        "--as",
        dest="account",
        default="demo",
        metavar="ACCOUNT",
        help=f"console account to talk as (demo accounts: {', '.join(names)}; any other name "
        "is a new, unbound account)",
    )
    parser.add_argument("--accounts", action="store_true", help="list the demo accounts and exit")
    parser.add_argument(
        "--now", type=_aware, help="pretend it is this time (ISO 8601; Asia/Shanghai if no offset)"
    )
    parser.add_argument("--no-staff", action="store_true", help="do not show messages for the staff group")
    parser.set_defaults(handler=run)


def _aware(raw: str) -> datetime:
    at = datetime.fromisoformat(raw)
    return at if at.tzinfo else at.replace(tzinfo=SHANGHAI)


def run(args: argparse.Namespace) -> int:
    if args.accounts:
        for account in DEMO_ACCOUNTS:
            print(f"{account.name:8} {account.description}")
        return 0
    app = bootstrap(clock=FixedClock(args.now) if args.now else None)
    try:
        if app.prepare_store(with_demo=True):
            print("已载入演示小区“阳光花园”。", file=sys.stderr)
        if isinstance(sys.stdin, io.TextIOWrapper):  # bytes that are not UTF-8 become U+FFFD, not a crash
            sys.stdin.reconfigure(errors="replace")
        with ConsoleChat(app, args.account, sys.stdout, show_staff=not args.no_staff) as chat:
            if sys.stdin.isatty():
                return _interactive(chat)
            chat.run_lines(sys.stdin)
            return 0
    finally:
        app.close()


def _interactive(chat: ConsoleChat) -> int:
    print(f"您正在以账号“{chat.account}”和物业聊天。输入“帮助”查看功能，数字可以选按钮，Ctrl-D 退出。")
    while True:
        try:
            line = input(PROMPT)
        except EOFError:
            print()
            return 0
        if line.strip():
            chat.send(line)
