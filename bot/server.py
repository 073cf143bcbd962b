"""One ASGI app: the channels' routes (``/telegram``, ``/wechat``, ``/wecom``: bot.channels.registry),
``/healthz``, ``/metrics`` and the web front desk at ``/desk`` (bot.desk); the outbox dispatcher and
the scheduler run in its lifespan. A channel without configuration is off (its route answers 404); a
channel that cannot start (Telegram's API unreachable) is down, retried with backoff (bot.startup),
and its route answers 503 until it is up, while the others serve."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.app import App
from bot.channels.base import Wiring
from bot.channels.photos import PhotoFetcher
from bot.channels.registry import Channels, build_channels
from bot.desk.web import Desk
from bot.intake import Intake
from bot.metrics import Metrics
from bot.scheduler import build_scheduler
from bot.startup import Backoff
from data.db import ping, reading

log = logging.getLogger(__name__)
START_RETRY = Backoff(first=1.0, cap=60.0)  # a channel that cannot start: again after 1, 2, 4 … 60 s


def create_app(
    app: App,
    *,
    dispatch: bool = True,
    polling: bool | None = None,
    dispatch_idle: float = 1.0,
    retry: Backoff = START_RETRY,
) -> Starlette:
    """The web app for ``app``. ``dispatch`` runs the outbox dispatcher and the scheduler; ``retry``
    paces the attempts to start a channel that could not start."""
    metrics = Metrics()
    intake = Intake(app, metrics)
    use_polling = app.settings.telegram_polling if polling is None else polling
    channels = build_channels(Wiring(app, intake, PhotoFetcher(), polling=use_polling))
    states = channels.states

    async def healthz(_: Request) -> Response:
        try:
            await asyncio.wait_for(asyncio.to_thread(_ping, app), timeout=5)  # not behind the engine's queue
        except Exception as exc:
            log.warning("healthz: database unreachable: %s", type(exc).__name__)
            return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
        # A channel down is 200 "degraded", not 503: a load balancer would take the whole server out
        # (and the channels that work with it), and every instance shares the same unreachable API.
        status = "degraded" if states.down() else "ok"
        return JSONResponse({"status": status, "database": "ok", "channels": dict(states.states)})

    async def metrics_page(_: Request) -> Response:
        backlog = await asyncio.to_thread(_backlog, app)
        return Response(metrics.render(lambda: backlog), media_type=CONTENT_TYPE_LATEST)

    routes: list[BaseRoute] = [Route("/healthz", healthz), Route("/metrics", metrics_page)]
    routes.append(Desk(app, intake, channels.photos).mount())  # /desk: the web front desk
    routes.extend(channels.routes())

    @asynccontextmanager
    async def lifespan(server: Starlette) -> AsyncIterator[None]:
        await intake.run(app.prepare_store)  # migrate to the newest schema
        starting = await channels.start(retry, app.settings.secrets())
        stop = asyncio.Event()
        workers = _start_background(app, channels, stop, dispatch, dispatch_idle)
        server.state.background = workers
        log.info("propbot serving: %s", ", ".join(getattr(r, "path", "?") for r in routes))
        try:
            yield
        finally:
            for task in starting:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task
            await _stop_background(workers, stop)
            await channels.close()
            intake.close()

    web = Starlette(routes=routes, lifespan=lifespan)
    web.state.intake = intake
    web.state.channels = channels
    web.state.channel_states = states
    return web


@dataclass
class _Background:
    dispatcher: asyncio.Task[None] | None = None
    scheduler: AsyncIOScheduler | None = None


def _start_background(
    app: App, channels: Channels, stop: asyncio.Event, dispatch: bool, idle: float
) -> _Background:
    workers = _Background()
    if not dispatch:
        return workers
    if channels.senders():
        dispatcher = channels.dispatcher(app.sessions, app.clock)
        workers.dispatcher = asyncio.create_task(dispatcher.run_forever(stop, idle=idle))
    workers.scheduler = build_scheduler(app)
    workers.scheduler.start()
    return workers


async def _stop_background(workers: _Background, stop: asyncio.Event) -> None:
    stop.set()
    if workers.scheduler is not None:
        workers.scheduler.shutdown(wait=False)
    if workers.dispatcher is not None:
        try:
            await asyncio.wait_for(workers.dispatcher, timeout=15)
        except TimeoutError:
            log.warning("dispatcher did not stop in time; the rows it was sending go back to the outbox")
            workers.dispatcher.cancel()
            with suppress(asyncio.CancelledError):
                await workers.dispatcher


def _ping(app: App) -> None:
    ping(app.db)  # a pooled connection lost to a restart is no outage


def _backlog(app: App) -> int:
    with reading(app.sessions) as store:
        return store.outbox.backlog()
