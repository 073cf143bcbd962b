"""WeCom (企业微信) group robot: the one-way staff channel for WeChat-centred compounds.

A POST of markdown to the robot's webhook. The robot takes at most 20 messages a minute; pacing is
the dispatcher's job, but when WeCom says so (errcode 45009) the row is retried later.

Photos: a staff message that names photos is followed by one ``wecom`` outbox row per photo (the
robot's ``image`` message: base64 and md5 of a JPG or PNG of at most 2 MB), so each image is paced
and retried on its own. The dispatcher paces the ``wecom`` rows with the ``staff`` channel's limiter,
so cards and images together stay within the robot's 20 a minute. A photo that cannot be fetched,
is too large or is not a JPG/PNG becomes a one-line note instead (no re-encoding: no image library).
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import httpx
from starlette.routing import Route

from bot.channels.base import STAFF, Outlet, Wiring
from bot.channels.photos import FETCH_TRIES, PhotoFetcher, Unavailable, image_kind, photo_refs
from bot.outbound import FollowUp, OutboundMessage, PermanentFailure, TemporaryFailure
from flows.services.cards import CARD_STATE

log = logging.getLogger(__name__)

MAX_BYTES = 4096  # markdown content limit
RATE_LIMITED = 45009
BUSY = -1
RATE_WINDOW = 60.0  # seconds: the robot's limit is per minute
CHANNEL = "wecom"  # the robot's own outbox rows: one image each
PHOTO = "photo"
IMAGE_MAX = 2 << 20  # bytes, before base64
IMAGE_KINDS = ("jpeg", "png")


def markdown(text: str) -> str:
    """The card's first line in bold, the rest as is, cut to the byte limit."""
    first, _, rest = text.partition("\n")
    body = f"**{first}**" + (f"\n{rest}" if rest else "")
    raw = body.encode()
    if len(raw) <= MAX_BYTES:
        return body
    return raw[: MAX_BYTES - 3].decode(errors="ignore") + "…"


def photo_follow_ups(message: OutboundMessage) -> list[FollowUp]:
    """One ``wecom`` row per photo of a staff message the robot has just posted."""
    refs = photo_refs(message.payload)
    number = str(message.payload.get("ticket") or "")
    return [
        FollowUp(
            CHANNEL,
            PHOTO,
            f"{number} 照片 {index}/{len(refs)}",
            {"ticket": number, "photo": ref, "index": index, "of": len(refs)},
            tag=f"wecom:{index}",
        )
        for index, ref in enumerate(refs, start=1)
    ]


class WeComRobotSender:
    """Posts ``staff`` rows (markdown) and its own ``wecom`` rows (one image each)."""

    channel = "staff"

    def __init__(
        self,
        url: str,
        key: str,
        client: httpx.AsyncClient | None = None,
        photos: PhotoFetcher | None = None,
    ) -> None:
        self.url = url
        self.key = key
        self.client = client or httpx.AsyncClient(timeout=10)
        self.photos = photos

    async def send(self, message: OutboundMessage) -> list[FollowUp] | None:
        if message.kind == CARD_STATE:
            return None  # one-way notices: no cards to bring up to date
        if message.kind == PHOTO and message.channel == CHANNEL:
            await self._image(message)
            return None
        await self._post({"msgtype": "markdown", "markdown": {"content": markdown(message.text)}})
        return photo_follow_ups(message) if self.photos is not None else None

    async def _image(self, message: OutboundMessage) -> None:
        try:
            data = await self._fetch(str(message.payload.get("photo") or ""))
        except Unavailable as exc:
            if exc.temporary and message.attempts < FETCH_TRIES:
                raise TemporaryFailure(f"photo not fetched yet: {exc.reason}") from exc
            log.warning("WeCom photo of %s given up: %s", message.payload.get("ticket"), exc.reason)
            note = f"**{message.text}** 未能转发（{exc.reason}），请在工单中查看。"
            await self._post({"msgtype": "markdown", "markdown": {"content": note}})
            return
        image = {"base64": base64.b64encode(data).decode(), "md5": hashlib.md5(data).hexdigest()}
        await self._post({"msgtype": "image", "image": image})

    async def _fetch(self, ref: str) -> bytes:
        if self.photos is None:
            raise Unavailable("photos are not configured")
        data = await self.photos.fetch(ref)
        if image_kind(data) not in IMAGE_KINDS:
            raise Unavailable("不是 JPG/PNG 图片")
        if len(data) > IMAGE_MAX:
            raise Unavailable(f"超过 2 MB（{len(data) / (1 << 20):.1f} MB）")
        return data

    async def _post(self, body: dict[str, Any]) -> None:
        try:
            response = await self.client.post(self.url, params={"key": self.key}, json=body)
        except httpx.HTTPError as exc:
            raise TemporaryFailure(f"WeCom robot unreachable: {exc}") from exc
        if response.status_code >= 500 or response.status_code == 429:
            raise TemporaryFailure(f"WeCom robot HTTP {response.status_code}")
        self._check(response)

    @staticmethod
    def _check(response: httpx.Response) -> None:
        try:
            result: dict[str, Any] = response.json()
        except ValueError as exc:
            raise TemporaryFailure(f"WeCom robot answered HTTP {response.status_code} without JSON") from exc
        code = int(result.get("errcode", -1))
        if code == 0:
            return
        reason = f"WeCom robot errcode {code}: {result.get('errmsg', '')}"
        if code in (RATE_LIMITED, BUSY):
            raise TemporaryFailure(reason, retry_after=RATE_WINDOW if code == RATE_LIMITED else None)
        raise PermanentFailure(reason)  # wrong key, robot removed, content rejected

    async def aclose(self) -> None:
        await self.client.aclose()


# -- as a registered channel ---------------------------------------------------------------------------
class WeComRobot:
    """The group robot in the registry: outbound only, a member of the staff group (its image rows
    paced with its cards: one robot, one limit). Nothing to start."""

    name = "wecom_robot"

    def __init__(self, sender: WeComRobotSender) -> None:
        self.sender = sender

    def routes(self) -> Sequence[Route]:
        return ()

    def outlets(self) -> Sequence[Outlet]:
        return [Outlet(STAFF, self.sender), Outlet(CHANNEL, self.sender, paced_with=STAFF)]

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self.sender.aclose()


def build(wiring: Wiring) -> WeComRobot | None:
    settings = wiring.app.settings
    if not settings.wecom_robot_key:
        return None
    sender = WeComRobotSender(settings.wecom_api_url, settings.wecom_robot_key, photos=wiring.photos)
    return WeComRobot(sender)
