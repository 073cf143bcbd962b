"""``propbot`` command line. Each sub-module registers its own sub-commands."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import TypeAlias

# What ``register(subparsers)`` receives (argparse's class is generic only to type checkers).
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

# Command -> (module defining ``register(subparsers)``, one-line help for the overview).
# Only the module of the command being run is imported, so ``propbot --help`` starts instantly.
COMMANDS: dict[str, tuple[str, str]] = {
    "chat": ("chat", "chat with the bot in the terminal as a demo resident"),
    "serve": ("serve", "run the web server: webhooks, outbox dispatcher and scheduler"),
    "tickets": ("tickets", "list, show and work tickets (the front desk without a group chat)"),
    "import": ("data_cmds", "import units, residents or bills from a CSV or Excel (.xlsx) file"),
    "demo": ("data_cmds", "load the demo compound (阳光花园) into an empty store"),
    "db": ("data_cmds", "database schema commands"),
    "nlu": ("nlu", "train, try and evaluate the language understanding"),
    "due": ("due", "list (or run) what the scheduler would do at a given time"),
    "broadcast": ("broadcast", "send a notice (outage, pest control, event, greeting) to residents"),
    "compound": ("compound", "show or set the compound's phones, office hours and address"),
    "staff": ("staff", "desk logins (add, passwd, list); link a WeCom userid (link)"),
    "codes": ("codes", "binding codes from the office: issue, list, revoke"),
    "report": ("report", "write the office's KPI report (HTML page, PNG charts, kpi.csv) for a period"),
}


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="propbot",
        description="Front-desk assistant for residential compounds (物业客服机器人).",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    command = next((arg for arg in argv if not arg.startswith("-")), None)
    if command in COMMANDS:
        import_module(f"bot.cli.{COMMANDS[command][0]}").register(subparsers)
    else:
        for name, (_module, help_text) in COMMANDS.items():
            subparsers.add_parser(name, help=help_text)
    return parser


def configure_logging(level: int) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    configure_logging(logging.DEBUG if args.verbose else logging.WARNING)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
