"""A channel that exists only in tests, to show that the registry is all the server, /healthz and the
dispatcher know of channels: ``CHANNELS["probe"] = "tests.fakes.probe_channel"`` is the one line that
adds it. ``POST /probe`` takes ``{"from": ..., "text": ...}`` and answers the engine's replies;
its sender records the outbox rows it is given; ``FAIL_START`` makes it unable to start."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.channels.base import STAFF, Outlet, Wiring
from bot.intake import Intake
from bot.outbound import OutboundMessage
from flows.dialog.turn import Inbound

CHANNEL = "probe"
FAIL_START = False  # tests flip it: start() raises while it is set


class ProbeSender:
    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.delivered: list[OutboundMessage] = []

    async def send(self, message: OutboundMessage) -> None:
        self.delivered.append(message)


class Probe:
    name = CHANNEL

    def __init__(self, intake: Intake, staff: bool = False) -> None:
        self.intake = intake
        self.sender = ProbeSender(CHANNEL)
        self.staff = ProbeSender(STAFF) if staff else None
        self.closed = False

    async def webhook(self, request: Request) -> Response:
        body = await request.json()
        inbound = Inbound(CHANNEL, str(body["from"]), str(body["text"]), self.intake.app.clock.now())
        async with self.intake.chat(CHANNEL, inbound.external_id):
            replies = await self.intake.handle(inbound)
        return JSONResponse({"replies": [reply.text for reply in replies]})

    def routes(self) -> Sequence[Route]:
        return [Route("/probe", self.webhook, methods=["POST"])]

    def outlets(self) -> Sequence[Outlet]:
        staff = [Outlet(STAFF, self.staff)] if self.staff is not None else []
        return [Outlet(CHANNEL, self.sender), *staff]

    async def start(self) -> None:
        if FAIL_START:
            raise ConnectionError("the probe's API is unreachable")

    async def close(self) -> None:
        self.closed = True


def build(wiring: Wiring) -> Probe:
    return Probe(wiring.intake)
