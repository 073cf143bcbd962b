"""Residents' photos for the staff: fetched from wherever the resident's channel keeps them, then sent
to the Telegram staff group (re-sent by file id, or uploaded) or handed to the WeCom robot as bytes.

A ticket keeps its photos as channel references (``Ticket.photos``):

* ``telegram:<file_id>``: the same bot can send it again by id, nothing is downloaded; for the WeCom
  robot the bytes come from ``getFile`` and the Bot API's file server;
* ``wechat-media:<media_id>``: a WeChat temporary media file (kept three days), fetched through
  wechatpy's ``media.download``;
* ``http(s)://...``: a WeChat ``PicUrl``, fetched as is;
* ``data:image/png;base64,...``: an image the bot drew itself (a digest's chart), carried in the row.

A staff message whose outbox row names photos (``payload["photos"]``) goes out first; its photos follow
as rows of their own (``bot.outbound.FollowUp``), one per Telegram album of at most ten, as a reply to
the message. A photo that cannot be fetched is given up on after ``FETCH_TRIES`` claims and the
album says so ("（2 张照片未能转发，见工单）"); the message it belongs to has gone out long before.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Sequence
from typing import Any

import httpx
import requests
from telegram import Bot, InputMediaPhoto, ReplyParameters
from telegram.error import BadRequest, TelegramError
from wechatpy.exceptions import WeChatClientException

from bot.channels.base import PHOTOS
from bot.outbound import FollowUp, OutboundMessage, TemporaryFailure

log = logging.getLogger(__name__)

TELEGRAM, WECHAT_MEDIA = "telegram:", "wechat-media:"
CAPTIONED = frozenset({PHOTOS, "relay", "digest"})  # kinds whose words can be the photos' caption
DATA_URI = "data:image/"
ALBUM = 10  # photos per Telegram media group
CAPTION = 1024  # characters in a Telegram caption
MAX_BYTES = 10 << 20  # Telegram's limit for an uploaded photo
FETCH_TRIES = 3  # claims of a row before a photo that failed to download for now is given up on
FETCH_TIMEOUT = 15.0  # seconds per photo; well inside the dispatcher's send timeout
WECHAT_BUSY = {-1, 45009, 45011}  # busy or over the API quota: try again later


class Unavailable(Exception):
    """A photo that cannot be had: for now (``temporary``) or for good."""

    def __init__(self, reason: str, temporary: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.temporary = temporary


def photo_refs(payload: dict[str, Any]) -> list[str]:
    return [str(ref) for ref in payload.get("photos") or () if ref]


def telegram_file_id(ref: str) -> str | None:
    return ref[len(TELEGRAM) :] if ref.startswith(TELEGRAM) else None


def image_kind(data: bytes) -> str | None:
    """The image format by its first bytes; None if it is not an image we forward."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


def _inline(ref: str) -> bytes:
    """The bytes of a ``data:image/...;base64,`` reference."""
    header, _, body = ref.partition(",")
    if not header.endswith(";base64"):
        raise Unavailable("an inline image that is not base64")
    try:
        return base64.b64decode(body, validate=True)
    except binascii.Error as exc:
        raise Unavailable(f"an inline image that does not decode: {exc}") from exc


def missing_note(count: int) -> str:
    return f"（{count} 张照片未能转发，见工单）"


class PhotoFetcher:
    """The bytes behind a photo reference. ``bot`` and ``wechat`` (a wechatpy client) may be None
    when that channel is off; its references are then unavailable for good."""

    def __init__(
        self,
        bot: Bot | None = None,
        wechat: Any = None,
        http: httpx.AsyncClient | None = None,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.bot = bot
        self.wechat = wechat
        self.http = http or httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=True)
        self.max_bytes = max_bytes

    async def fetch(self, ref: str) -> bytes:
        """The image's bytes, or ``Unavailable``."""
        try:
            data = await asyncio.wait_for(self._fetch(ref), FETCH_TIMEOUT)
        except TimeoutError as exc:
            raise Unavailable(f"no answer within {FETCH_TIMEOUT:g}s", temporary=True) from exc
        if len(data) > self.max_bytes:
            raise Unavailable(f"{len(data) >> 20} MB, over the limit")
        if image_kind(data) is None:
            raise Unavailable("not an image")
        return data

    async def _fetch(self, ref: str) -> bytes:
        file_id = telegram_file_id(ref)
        if file_id is not None:
            return await self._telegram(file_id)
        if ref.startswith(WECHAT_MEDIA):
            return await asyncio.to_thread(self._wechat_media, ref[len(WECHAT_MEDIA) :])
        if ref.startswith(("http://", "https://")):
            return await self._url(ref)
        if ref.startswith(DATA_URI):
            return _inline(ref)
        raise Unavailable(f"unknown photo reference {ref[:40]!r}")

    async def _telegram(self, file_id: str) -> bytes:
        if self.bot is None:
            raise Unavailable("Telegram is not configured")
        try:
            found = await self.bot.get_file(file_id)
            if found.file_size and found.file_size > self.max_bytes:
                raise Unavailable(f"{found.file_size >> 20} MB, over the limit")
            return bytes(await found.download_as_bytearray())
        except BadRequest as exc:  # a file id this bot does not know
            raise Unavailable(f"Telegram: {exc}") from exc
        except TelegramError as exc:
            raise Unavailable(f"Telegram: {exc}", temporary=True) from exc

    def _wechat_media(self, media_id: str) -> bytes:
        """wechatpy's media download (blocking: runs in a thread)."""
        if self.wechat is None:
            raise Unavailable("WeChat proactive API is not configured (WECHAT_APP_SECRET)")
        try:
            found = self.wechat.media.download(media_id)
        except WeChatClientException as exc:
            status = getattr(getattr(exc, "response", None), "status_code", 0) or 0
            busy = exc.errcode in WECHAT_BUSY or (exc.errcode is None and (status >= 500 or not status))
            raise Unavailable(f"WeChat errcode {exc.errcode}: {exc.errmsg}", temporary=busy) from exc
        except requests.RequestException as exc:
            raise Unavailable(f"WeChat unreachable: {exc}", temporary=True) from exc
        if not isinstance(found, requests.Response):  # a JSON answer: a video's URL, not a picture
            raise Unavailable("WeChat media is not an image")
        return found.content

    async def _url(self, url: str) -> bytes:
        try:
            async with self.http.stream("GET", url) as response:
                if response.status_code >= 500 or response.status_code == 429:
                    raise Unavailable(f"HTTP {response.status_code}", temporary=True)
                if response.status_code != 200:
                    raise Unavailable(f"HTTP {response.status_code}")
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > self.max_bytes:
                        raise Unavailable(f"over {self.max_bytes >> 20} MB")
                return bytes(data)
        except httpx.HTTPError as exc:
            raise Unavailable(f"unreachable: {type(exc).__name__}", temporary=True) from exc

    async def aclose(self) -> None:
        await self.http.aclose()


# -- the Telegram staff group ---------------------------------------------------------------------
def album_follow_ups(message: OutboundMessage, reply_to: int) -> list[FollowUp]:
    """The photos of a message just sent as ``reply_to``: one row per album of up to ten."""
    refs = photo_refs(message.payload)
    number = str(message.payload.get("ticket") or "")
    albums = [refs[i : i + ALBUM] for i in range(0, len(refs), ALBUM)]
    rows = []
    for index, album in enumerate(albums, start=1):
        part = f"（{index}/{len(albums)}）" if len(albums) > 1 else ""
        payload = {"ticket": number, "photos": album, "reply_to": reply_to, "cost": len(album)}
        text = f"{number} 的照片{part}".strip()
        rows.append(FollowUp("staff", PHOTOS, text, payload, tag=f"telegram:{index}"))
    return rows


def fits_album(message: OutboundMessage) -> bool:
    """A resident's answer with photos goes as one album, its words the caption; cards and notices
    stay text messages (buttons, edits) with the photos after them."""
    photos = photo_refs(message.payload)
    return (
        message.kind in CAPTIONED
        and 0 < len(photos) <= ALBUM
        and not message.payload.get("buttons")
        and len(message.text) <= CAPTION
    )


class TelegramAlbums:
    """Sends a row's photos to a chat, ``message.text`` as the caption: by file id what Telegram has
    already, uploaded what had to be fetched; a photo that could not be had is named in the caption."""

    def __init__(self, bot: Bot, fetcher: PhotoFetcher) -> None:
        self.bot = bot
        self.fetcher = fetcher

    async def send(self, chat_id: str, message: OutboundMessage) -> None:
        refs = photo_refs(message.payload)
        media, missing = await self._gather(refs, message.attempts)
        caption = message.text + (missing_note(missing) if missing else "")
        extra: dict[str, Any] = {}
        if message.payload.get("reply_to"):
            extra["reply_parameters"] = ReplyParameters(
                int(message.payload["reply_to"]), allow_sending_without_reply=True
            )
        try:
            await self._post(chat_id, media, caption, extra)
        except BadRequest as exc:  # a file id Telegram no longer knows, an image it cannot read
            log.warning("staff photos for %s refused by Telegram: %s", message.payload.get("ticket"), exc)
            await self.bot.send_message(chat_id, message.text + missing_note(len(refs)), **extra)

    async def _post(
        self, chat_id: str, media: Sequence[str | bytes], caption: str, extra: dict[str, Any]
    ) -> None:
        if not media:
            await self.bot.send_message(chat_id, caption, **extra)
        elif len(media) == 1:
            await self.bot.send_photo(chat_id, media[0], caption=caption[:CAPTION], **extra)
        else:
            group = [
                InputMediaPhoto(item, caption=caption[:CAPTION] if index == 0 else None)
                for index, item in enumerate(media)
            ]
            await self.bot.send_media_group(chat_id, group, **extra)

    async def _gather(self, refs: list[str], attempts: int) -> tuple[list[str | bytes], int]:
        """What to send (file ids and fetched bytes, in order) and how many photos are missing."""
        fetched = await asyncio.gather(*(self._one(ref) for ref in refs), return_exceptions=True)
        media: list[str | bytes] = []
        missing = 0
        for ref, got in zip(refs, fetched, strict=True):
            if isinstance(got, Unavailable):
                if got.temporary and attempts < FETCH_TRIES:
                    raise TemporaryFailure(f"photo not fetched yet: {got.reason}")
                log.warning("staff photo %s given up: %s", ref[:60], got.reason)
                missing += 1
            elif isinstance(got, BaseException):
                raise got
            else:
                media.append(got)
        return media, missing

    async def _one(self, ref: str) -> str | bytes:
        return telegram_file_id(ref) or await self.fetcher.fetch(ref)
