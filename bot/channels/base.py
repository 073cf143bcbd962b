"""The one protocol every channel implements, and what a channel's factory is given.

A channel turns its inbound requests into channel-neutral ``Inbound`` messages for ``Intake``
(``routes``: its webhooks; the console has none, it reads a terminal), hands the dispatcher the
senders that turn outbox rows into the channel's API calls (``outlets``), says whether it can work
(``start``: it is down while that raises, retried with backoff, up once it returns) and lets go of
its clients (``close``). Each channel module has a factory ``build(wiring) -> channel | None`` (None
when the settings leave it off), named in ``bot.channels.registry``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TextIO

from starlette.routing import Route

from bot.outbound import Sender
from bot.ratelimit import ChannelLimits

if TYPE_CHECKING:
    from bot.app import App
    from bot.channels.photos import PhotoFetcher
    from bot.intake import Intake

STAFF = "staff"  # the staff group's outbox rows: every channel that carries the group takes them
PHOTOS = "photos"  # the outbox kind of a row that is only photos (an album after its message)


@dataclass(frozen=True)
class Outlet:
    """One outbox channel a channel delivers, and the sender that does it. Several channels may
    carry ``staff`` rows: the first in the registry is the group's primary, the others mirror it."""

    channel: str
    sender: Sender
    paced_with: str | None = None  # another outbox channel whose rate limiter this one shares (one peer)
    limits: ChannelLimits | None = None  # instead of the published limits (bot.ratelimit)
    recipient: str | None = None  # only rows to this recipient (a console terminal is one account)


class Channel(Protocol):
    @property
    def name(self) -> str:
        """Its name in the registry and in /healthz."""
        ...

    def routes(self) -> Sequence[Route]:
        """The HTTP routes its requests arrive on (each answers 503 while the channel is down)."""
        ...

    def outlets(self) -> Sequence[Outlet]: ...

    async def start(self) -> None:
        """Get ready to work; raise if it cannot (the server retries, the channel is down meanwhile)."""
        ...

    async def close(self) -> None: ...


@dataclass
class Terminal:
    """Where ``propbot chat`` runs the console: the account typed as and the screen."""

    account: str
    out: TextIO
    show_staff: bool = True  # the staff group's messages shown too (a demo shows the whole picture)


@dataclass
class Wiring:
    """What a channel factory may use. ``photos`` is shared: a channel whose residents send photos
    lends it its client, the staff channels fetch through it (None where nothing shows photos: the
    console, which so loads neither Telegram's nor WeChat's library)."""

    app: App
    intake: Intake
    photos: PhotoFetcher | None = None
    polling: bool = False  # Telegram: long polling instead of the webhook
    terminal: Terminal | None = None  # the console's; None in the server (no console there)
