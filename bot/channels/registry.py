"""The channel registry: each channel by name, and what the server, /healthz, the dispatcher and the
console get from the channels the settings turn on.

A channel is one module with a ``build(wiring)`` factory (``bot.channels.base``); adding one is that
module and one line in ``CHANNELS``. Modules are imported only when channels are built, so
``propbot chat`` loads no channel library it does not use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.channels.base import PHOTOS, STAFF, Channel, Outlet, Wiring
from bot.outbound import FollowUp, OutboundMessage, PermanentFailure, Receipt, Sender, TemporaryFailure
from bot.startup import Backoff, ChannelStates, start_or_retry

if TYPE_CHECKING:
    from bot.channels.photos import PhotoFetcher
    from bot.dispatcher import Dispatcher
    from data.clock import Clock
    from data.db import Sessions

log = logging.getLogger(__name__)

# name (in /healthz) -> the module whose ``build`` makes it. Order matters for the staff group: the
# first channel that carries it is the primary, the others mirror it.
CHANNELS: dict[str, str] = {
    "console": "bot.channels.console",
    "telegram": "bot.channels.telegram",
    "wechat": "bot.channels.wechat",
    "wecom_robot": "bot.channels.wecom",
    "wecom": "bot.channels.wecom_app",  # the WeCom self-built app
}

Factory = Callable[[Wiring], Channel | None]


def factory(name: str) -> Factory:
    found: Factory = import_module(CHANNELS[name]).build
    return found


def build_channels(wiring: Wiring, names: Iterable[str] | None = None) -> Channels:
    """Every registered channel the settings turn on (of ``names``, when given)."""
    chosen = list(CHANNELS) if names is None else list(names)
    built = [channel for name in chosen if (channel := factory(name)(wiring)) is not None]
    return Channels(built, wiring.photos)


@dataclass
class Channels:
    """The channels that are on; ``states`` has each one's since its first try to start."""

    channels: list[Channel]
    photos: PhotoFetcher | None  # residents' photos, for the staff channels and the desk's ticket pages
    states: ChannelStates = field(default_factory=ChannelStates)

    def __iter__(self) -> Iterator[Channel]:
        return iter(self.channels)

    def __getitem__(self, name: str) -> Channel:
        return next(c for c in self.channels if c.name == name)

    # -- inbound --------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        """Every channel's routes, each answering 503 while its channel is down."""
        return [
            Route(route.path, _while_up(channel.name, self.states, route.endpoint), methods=route.methods)
            for channel in self.channels
            for route in channel.routes()
        ]

    async def start(self, retry: Backoff, secrets: Sequence[str]) -> list[asyncio.Task[None]]:
        """Start each channel; the tasks still retrying the ones that could not (cancel at shutdown)."""
        tasks = []
        for channel in self.channels:
            task = await start_or_retry(channel.name, channel.start, self.states, retry, secrets)
            if task is not None:
                tasks.append(task)
        return tasks

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()
        if self.photos is not None:
            await self.photos.aclose()

    # -- outbound -------------------------------------------------------------------------------
    def outlets(self) -> list[Outlet]:
        return [outlet for channel in self.channels for outlet in channel.outlets()]

    def senders(self) -> dict[str, Sender]:
        """The sender of each outbox channel; the staff group's members fanned out in registry order."""
        senders: dict[str, Sender] = {}
        staff: list[Sender] = []
        for outlet in self.outlets():
            if outlet.channel == STAFF:
                staff.append(outlet.sender)
            else:
                senders[outlet.channel] = outlet.sender
        if staff:
            senders[STAFF] = staff[0] if len(staff) == 1 else StaffFanout(staff[0], staff[1:])
        return senders

    def dispatcher(self, sessions: Sessions, clock: Clock) -> Dispatcher:
        """The outbox dispatcher for these channels' senders, limits and recipients."""
        from bot.dispatcher import Dispatcher  # sqlalchemy-heavy, only where one runs

        outlets = self.outlets()
        return Dispatcher(
            sessions,
            self.senders(),
            clock,
            limits={o.channel: o.limits for o in outlets if o.limits is not None},
            shared={o.channel: o.paced_with for o in outlets if o.paced_with is not None},
            only={o.channel: o.recipient for o in outlets if o.recipient is not None},
        )


def _while_up(
    name: str, states: ChannelStates, endpoint: Callable[[Request], Awaitable[Response]]
) -> Callable[[Request], Awaitable[Response]]:
    """``endpoint`` while channel ``name`` is up; 503 before (Telegram and WeChat deliver again
    later, as after any failed webhook call)."""

    async def guarded(request: Request) -> Response:
        if not states.is_up(name):
            return JSONResponse(
                {"error": f"{name} channel is starting"}, status_code=503, headers={"Retry-After": "5"}
            )
        return await endpoint(request)

    return guarded


class StaffFanout:
    """The staff group's outbox rows to the primary channel; mirrors get a best-effort copy.

    Rows of photos alone (``photos``) were asked for by the primary (its album after a card) and go
    only to it; a mirror asks for its own photo rows when it takes the card."""

    channel = STAFF

    def __init__(self, primary: Sender, mirrors: list[Sender]) -> None:
        self.primary = primary
        self.mirrors = mirrors

    async def send(self, message: OutboundMessage) -> list[FollowUp | Receipt]:
        # the primary's failure is the row's (retried)
        follow: list[FollowUp | Receipt] = list(await self.primary.send(message) or ())
        if message.kind == PHOTOS:
            return follow
        for mirror in self.mirrors:
            try:
                follow += await mirror.send(message) or ()
            except (TemporaryFailure, PermanentFailure) as exc:
                log.warning(
                    "staff mirror %s did not take outbox row %s: %s", type(mirror).__name__, message.id, exc
                )
        return follow
