"""``propbot serve``: the web server (Telegram and WeChat webhooks, health, metrics, dispatcher)."""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import tempfile
from pathlib import Path
from typing import IO, Any

import uvicorn
from starlette.applications import Starlette

from bot.app import App, bootstrap
from bot.cli import Subparsers, configure_logging
from bot.server import create_app
from data.db import reading

log = logging.getLogger(__name__)
# What ``--workers N`` hands its worker processes: the file whose lock names the one worker that runs
# the dispatcher and scheduler, and the log level.
BACKGROUND_LOCK = "PROPBOT_BACKGROUND_LOCK"
WORKER_LOG_LEVEL = "PROPBOT_LOG_LEVEL"
_held_lock: IO[bytes] | None = None  # kept open: closing the file would release the lock


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run the web server: /telegram, /wechat, /healthz, /metrics, the outbox dispatcher",
        description="Run propbot's one server. Channels without configuration are off. "
        "See docs/channels.md for registering the webhooks.",
    )
    parser.add_argument("--host", help="address to listen on (default HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default PORT or 8080)")
    parser.add_argument(
        "--polling",
        action="store_true",
        help="fetch Telegram updates by long polling instead of the webhook (TELEGRAM_POLLING=1)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        help="server processes (default WORKERS or 1); several need PostgreSQL to pay off "
        "(SQLite takes one writer at a time) and the webhook, not polling",
    )
    parser.add_argument("--demo", action="store_true", help="load the demo compound into an empty store")
    parser.add_argument(
        "--access-log", action="store_true", help="log every HTTP request (uvicorn's access log)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    app = bootstrap()
    settings = app.settings
    polling = args.polling or settings.telegram_polling
    workers = args.workers or settings.workers
    if workers < 1 or (workers > 1 and polling):
        log.error("--workers must be at least 1, and 1 with Telegram polling (one poller per bot)")
        return 2
    if app.prepare_store(with_demo=args.demo):  # migrate now (not only in the lifespan): the check reads it
        log.warning("demo compound loaded")
    warn_missing_contacts(app)
    options: dict[str, Any] = {
        "host": args.host or settings.host,
        "port": args.port or settings.port,
        "log_level": "info",
        "access_log": args.access_log,
        "proxy_headers": True,
        "server_header": False,
    }
    try:
        if workers == 1:
            uvicorn.run(web_app(app, polling), **options)
        else:  # each worker process builds its own app from the same settings
            lock = Path(tempfile.gettempdir()) / f"propbot-serve-{os.getpid()}.lock"
            os.environ[BACKGROUND_LOCK] = str(lock)
            os.environ[WORKER_LOG_LEVEL] = str(logging.getLogger().level)
            try:
                uvicorn.run("bot.cli.serve:worker_app", factory=True, workers=workers, **options)
            finally:
                lock.unlink(missing_ok=True)
    finally:
        app.close()
    return 0


def web_app(app: App, polling: bool = False, dispatch: bool = True) -> Starlette:
    logging.getLogger("bot").setLevel(min(logging.getLogger().level, logging.INFO))
    return create_app(app, polling=polling, dispatch=dispatch)


def worker_app() -> Starlette:
    """uvicorn's factory in each worker process of ``--workers N``: all answer webhooks, one runs the
    dispatcher and scheduler (the channel rate limits are per process: two dispatchers would send
    twice as fast as a channel allows)."""
    configure_logging(int(os.environ.get(WORKER_LOG_LEVEL, logging.WARNING)))
    background = take_background_lock(os.environ[BACKGROUND_LOCK])
    server = web_app(bootstrap(), dispatch=background)
    if background:
        log.info("worker %d runs the outbox dispatcher and the scheduler", os.getpid())
    return server


def take_background_lock(path: str) -> bool:
    """True for the first process to lock ``path``. The lock goes with its process, so the worker
    uvicorn starts in place of a dead holder takes it over."""
    global _held_lock
    handle = open(path, "ab")  # noqa: SIM115 - held open for the life of the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return False
    _held_lock = handle
    return True


def warn_missing_contacts(app: App) -> None:
    """A log line for each compound without a duty phone: every emergency answer leads with it."""
    with reading(app.sessions) as store:
        for compound in store.views.compounds():
            if not (compound.duty_phone or "").strip():
                log.warning(
                    "compound %s has no 24-hour duty phone: emergencies are answered without one; "
                    "set it with `propbot compound set --duty-phone ...`",
                    compound.name,
                )
