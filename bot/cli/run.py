"""One way to run a command against the store: set up the app, migrate, run, report a refusal, close."""

from __future__ import annotations

import sys
from collections.abc import Callable

from bot.app import App, bootstrap

REFUSED = 1  # exit status of a step refused with a message (bad input, not allowed, not found)


def with_app(work: Callable[[App], int], refused: tuple[type[Exception], ...] = ()) -> int:
    """``work(app)`` on the prepared store; a refusal (one of ``refused``) prints "错误：…" to stderr
    and exits ``REFUSED``. The app is closed whatever happens."""
    app = bootstrap()
    try:
        app.prepare_store()
        return work(app)
    except refused as exc:
        print(f"错误：{exc}", file=sys.stderr)
        return REFUSED
    finally:
        app.close()
