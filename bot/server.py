"""One ASGI app: ``/telegram``, ``/wechat``, ``/wecom`` (the WeCom app), ``/healthz``, ``/metrics``
and the web front desk at ``/desk`` (bot.desk); the outbox dispatcher and the scheduler run in its
lifespan. A channel without configuration is off (its route answers 404); a channel that cannot
start (Telegram's API unreachable) is down, retried with backoff (bot.startup), and its route
answers 503 until it is up, while the others serve."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import func, select, text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.app import App
from bot.channels.photos import PhotoFetcher
from bot.channels.staff_group import StaffGroup, TelegramStaffSender
from bot.channels.telegram import TelegramChannel, TelegramSender, make_bot
from bot.channels.wechat import Templates, WeChatChannel, WeChatSender
from bot.channels.wechat_token import DbTokenStorage, SharedTokenClient
from bot.channels.wecom import CHANNEL as ROBOT_CHANNEL
from bot.channels.wecom import StaffFanout, WeComRobotSender
from bot.channels.wecom_app import CHANNEL as APP_CHANNEL
from bot.channels.wecom_app import (
    WeComAppChannel,
    WeComAppSender,
    WeComTokenClient,
    card_style,
    parse_routes,
)
from bot.desk.web import Desk
from bot.intake import Intake
from bot.metrics import Metrics
from bot.outbound import Sender
from bot.scheduler import build_scheduler
from bot.startup import DOWN, UP, Backoff, ChannelStates, start_or_retry
from data.db import once_more_if_disconnected
from data.models import OutboxMessage

log = logging.getLogger(__name__)
START_RETRY = Backoff(first=1.0, cap=60.0)  # a channel that cannot start: again after 1, 2, 4 … 60 s


@dataclass
class Channels:
    telegram: TelegramChannel | None = None
    wechat: WeChatChannel | None = None
    wecom: WeComAppChannel | None = None
    senders: dict[str, Sender] = field(default_factory=dict)
    closers: list[Any] = field(default_factory=list)  # async close() of HTTP clients
    photos: PhotoFetcher | None = None  # residents' photos, for the desk's ticket pages


def build_channels(app: App, intake: Intake) -> Channels:
    settings = app.settings
    built = Channels()
    staff: list[Sender] = []
    bot = make_bot(settings) if settings.telegram_enabled else None
    wechat = _wechat_client(app) if settings.wechat_enabled and settings.wechat_app_secret else None
    photos = PhotoFetcher(bot, wechat)  # residents' photos, from either channel, for the staff
    built.closers.append(photos.aclose)
    built.photos = photos
    if bot is not None:
        group = None
        if settings.telegram_staff_chat_id:
            group = StaffGroup(intake, bot, settings.telegram_staff_chat_id)
            staff.append(TelegramStaffSender(bot, settings.telegram_staff_chat_id, photos))
        built.telegram = TelegramChannel(settings, intake, bot, group)
        built.senders["telegram"] = TelegramSender(bot)
    if settings.wechat_enabled:
        built.wechat = WeChatChannel(settings, intake)
        if wechat is not None:
            templates = Templates.parse(settings.wechat_templates)
            built.senders["wechat"] = WeChatSender(wechat, app.sessions, app.clock, templates)
        else:
            log.warning(
                "WECHAT_APP_SECRET not set: WeChat replies only as passive replies, nothing proactive"
            )
    if settings.wecom_robot_key:
        robot = WeComRobotSender(settings.wecom_api_url, settings.wecom_robot_key, photos=photos)
        staff.append(robot)
        built.senders[ROBOT_CHANNEL] = robot  # its own rows: one image each
        built.closers.append(robot.aclose)
    if settings.wecom_app_enabled:
        routes = parse_routes(settings.wecom_app_chats)
        built.wecom = WeComAppChannel(settings, intake, routes)
        if settings.wecom_app_secret and settings.wecom_agent_id:
            storage = DbTokenStorage(app.sessions, app.clock)
            client = WeComTokenClient(
                settings.wecom_corp_id, settings.wecom_app_secret, storage, settings.wecom_app_api_url
            )
            sender = WeComAppSender(client, settings.wecom_agent_id, routes, app.sessions, card_style(app))
            staff.append(sender)  # its staff rows become its own rows: never fails the fan-out
            built.senders[APP_CHANNEL] = sender
        else:
            log.warning(
                "WECOM_APP_SECRET or WECOM_AGENT_ID not set: the WeCom app takes commands, sends nothing"
            )
    if staff:
        built.senders["staff"] = staff[0] if len(staff) == 1 else StaffFanout(staff[0], staff[1:])
    return built


def _wechat_client(app: App) -> SharedTokenClient:
    settings = app.settings
    storage = DbTokenStorage(app.sessions, app.clock)
    return SharedTokenClient(
        settings.wechat_app_id, settings.wechat_app_secret, storage, settings.wechat_api_url
    )


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
    channels = build_channels(app, intake)
    use_polling = app.settings.telegram_polling if polling is None else polling
    states = ChannelStates()
    if channels.telegram is not None:
        states.set("telegram", DOWN)  # up once started (getMe answered)
    if channels.wechat is not None:
        states.set("wechat", UP)  # nothing to start: WeChat calls us
    if channels.wecom is not None:
        states.set("wecom", UP)

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
    if channels.telegram is not None:
        webhook = _while_up("telegram", states, channels.telegram.webhook)
        routes.append(Route("/telegram", webhook, methods=["POST"]))
    if channels.wechat is not None:
        routes.append(Route("/wechat", channels.wechat.verify, methods=["GET"]))
        routes.append(Route("/wechat", channels.wechat.callback, methods=["POST"]))
    if channels.wecom is not None:
        routes.append(Route("/wecom", channels.wecom.verify, methods=["GET"]))
        routes.append(Route("/wecom", channels.wecom.callback, methods=["POST"]))

    @asynccontextmanager
    async def lifespan(server: Starlette) -> AsyncIterator[None]:
        await intake.run(app.prepare_store)  # migrate to the newest schema
        starting = None
        if channels.telegram is not None:
            telegram = channels.telegram
            starting = await start_or_retry(
                "telegram", lambda: telegram.start(use_polling), states, retry, app.settings.secrets()
            )
        stop = asyncio.Event()
        workers = _start_background(app, channels, stop, dispatch, dispatch_idle)
        server.state.background = workers
        log.info("propbot serving: %s", ", ".join(getattr(r, "path", "?") for r in routes))
        try:
            yield
        finally:
            if starting is not None:
                starting.cancel()
                with suppress(asyncio.CancelledError):
                    await starting
            await _stop_background(workers, stop)
            if channels.wechat is not None:
                await channels.wechat.stop()
            if channels.telegram is not None:
                await channels.telegram.stop()
            for close in channels.closers:
                await close()
            intake.close()

    web = Starlette(routes=routes, lifespan=lifespan)
    web.state.intake = intake
    web.state.channels = channels
    web.state.channel_states = states
    return web


def _while_up(
    name: str, states: ChannelStates, endpoint: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    """``endpoint`` while channel ``name`` is up; 503 before (Telegram delivers the update again
    later, as after any failed webhook call)."""

    async def guarded(request: Request) -> Response:
        if not states.is_up(name):
            return JSONResponse(
                {"error": f"{name} channel is starting"}, status_code=503, headers={"Retry-After": "5"}
            )
        return await endpoint(request)

    return guarded


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
    if channels.senders:
        from bot.dispatcher import Dispatcher

        # the robot's image rows and the staff rows reach one robot: one limit for both
        dispatcher = Dispatcher(app.sessions, channels.senders, app.clock, shared={ROBOT_CHANNEL: "staff"})
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
    def select_one() -> None:
        with app.db.connect() as connection:
            connection.execute(text("SELECT 1"))

    once_more_if_disconnected(select_one)  # a pooled connection lost to a restart is no outage


def _backlog(app: App) -> int:
    with app.sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status.in_(("pending", "sending")))
            )
            or 0
        )
