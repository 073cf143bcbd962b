"""Signed, expiring links to a ticket's page on the desk, for cards outside the desk (the WeCom
app's ``textcard``): ``/desk/go/BX-20261203-0001?exp=UNIX&sig=HEX``.

``sig`` is an HMAC-SHA256, under the desk's signing key (DESK_SECRET, else the key kept in the
database), of the number and the expiry, so neither can be changed and the link stops working at
``exp``. A valid link is only a way in: ``/desk/go`` sends it on to the ticket's page, which needs a
desk session as every page does (the login page first, then back to the ticket). So a link that
leaks opens nothing without a login; a tampered or expired one gets a page saying so.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import datetime, timedelta

from bot.desk import accounts
from data.db import Sessions

NUMBER = re.compile(r"[A-Z]{2}-\d{8}-\d{4}")
PURPOSE = "propbot.desk.link"  # keeps these MACs apart from anything else the key signs


def signature(key: str, number: str, expires: int) -> str:
    message = f"{PURPOSE}|{number}|{expires}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def path(key: str, number: str, expires: datetime) -> str:
    stamp = int(expires.timestamp())
    return f"/desk/go/{number}?exp={stamp}&sig={signature(key, number, stamp)}"


def refusal(key: str, number: str, exp: str, sig: str, now: datetime) -> str | None:
    """Why the link is refused, or None if it holds."""
    if not (NUMBER.fullmatch(number) and exp.isascii() and exp.isdigit() and len(exp) <= 12):
        return "链接不完整，请从企业微信的工单卡片重新打开。"
    if not hmac.compare_digest(sig.encode(), signature(key, number, int(exp)).encode()):
        return "链接无效（可能被改动过），请从企业微信的工单卡片重新打开。"
    if int(exp) < now.timestamp():
        return "链接已过期，请在企业微信中发送“认领 单号”等命令，或登录前台查看工单。"
    return None


class DeskLinks:
    """Makes the links: the server's public address (DESK_URL) and how long a link holds."""

    def __init__(self, sessions: Sessions, secret: str, base_url: str, hours: int) -> None:
        self.sessions, self.secret = sessions, secret
        self.base_url = base_url.rstrip("/")
        self.valid = timedelta(hours=hours)
        self._key: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.base_url)

    def for_ticket(self, number: str, now: datetime) -> str:
        if self._key is None:  # the desk's key, made once and shared by every process
            self._key = accounts.signing_key(self.sessions, self.secret)
        return self.base_url + path(self._key, number, now + self.valid)
