"""WeCom (企业微信) group robot: the one-way staff channel for WeChat-centred compounds.

A POST of markdown to the robot's webhook. The robot takes at most 20 messages a minute; pacing is
the dispatcher's job, but when WeCom says so (errcode 45009) the row is retried later.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx

from bot.outbound import OutboundMessage, PermanentFailure, TemporaryFailure

log = logging.getLogger(__name__)

MAX_BYTES = 4096  # markdown content limit
RATE_LIMITED = 45009
BUSY = -1
RATE_WINDOW = 60.0  # seconds: the robot's limit is per minute


def markdown(text: str) -> str:
    """The card's first line in bold, the rest as is, cut to the byte limit."""
    first, _, rest = text.partition("\n")
    body = f"**{first}**" + (f"\n{rest}" if rest else "")
    raw = body.encode()
    if len(raw) <= MAX_BYTES:
        return body
    return raw[: MAX_BYTES - 3].decode(errors="ignore") + "…"


class WeComRobotSender:
    channel = "staff"

    def __init__(self, url: str, key: str, client: httpx.AsyncClient | None = None) -> None:
        self.url = url
        self.key = key
        self.client = client or httpx.AsyncClient(timeout=10)

    async def send(self, message: OutboundMessage) -> None:
        content = markdown(message.text)
        try:
            response = await self.client.post(
                self.url,
                params={"key": self.key},
                json={"msgtype": "markdown", "markdown": {"content": content}},
            )
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


class StaffFanout:
    """The staff group's outbox rows to the primary channel; mirrors get a best-effort copy."""

    channel = "staff"

    def __init__(self, primary: Any, mirrors: list[Any]) -> None:
        self.primary = primary
        self.mirrors = mirrors

    async def send(self, message: OutboundMessage) -> None:
        await self.primary.send(message)  # its failure is the row's failure (retried)
        for mirror in self.mirrors:
            try:
                await mirror.send(message)
            except (TemporaryFailure, PermanentFailure) as exc:
                log.warning(
                    "staff mirror %s did not take outbox row %s: %s", type(mirror).__name__, message.id, exc
                )
