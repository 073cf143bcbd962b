"""The registry's composition, without a database: every registered module has a factory; the staff
group's senders fan out in registry order, the first the primary; a channel's routes answer 503
while it is down."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from bot.channels.base import STAFF, Outlet
from bot.channels.photos import PhotoFetcher
from bot.channels.registry import CHANNELS, Channels, StaffFanout
from bot.outbound import OutboundMessage
from bot.startup import UP


class Recorder:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.sent: list[int] = []

    async def send(self, message: OutboundMessage) -> None:
        self.sent.append(message.id)


class Fake:
    def __init__(self, name: str, outlets: list[Outlet]) -> None:
        self.name = name
        self._outlets = outlets

    async def hello(self, _: Request) -> Response:
        return PlainTextResponse(self.name)

    def routes(self) -> Sequence[Route]:
        return [Route(f"/{self.name}", self.hello)]

    def outlets(self) -> Sequence[Outlet]:
        return self._outlets

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


def test_every_registered_channel_module_has_a_factory() -> None:
    for name, module in CHANNELS.items():
        assert callable(import_module(module).build), name


def test_staff_senders_fan_out_in_registry_order() -> None:
    first, second, own = Recorder(STAFF), Recorder(STAFF), Recorder("second")
    channels = Channels(
        [Fake("a", [Outlet(STAFF, first)]), Fake("b", [Outlet(STAFF, second), Outlet("second", own)])],
        PhotoFetcher(),
    )
    senders = channels.senders()
    fanout = senders[STAFF]
    assert isinstance(fanout, StaffFanout) and fanout.primary is first and fanout.mirrors == [second]
    assert senders["second"] is own


def test_a_lone_staff_sender_is_not_wrapped() -> None:
    only = Recorder(STAFF)
    assert Channels([Fake("a", [Outlet(STAFF, only)])], PhotoFetcher()).senders() == {STAFF: only}


async def test_a_channels_routes_answer_503_until_it_is_up() -> None:
    channels = Channels([Fake("a", []), Fake("b", [])], PhotoFetcher())
    transport = httpx.ASGITransport(app=Starlette(routes=channels.routes()))
    async with httpx.AsyncClient(transport=transport, base_url="http://propbot") as client:
        assert (await client.get("/a")).status_code == 503  # not started yet
        channels.states.set("a", UP)
        assert (await client.get("/a")).text == "a" and (await client.get("/b")).status_code == 503
