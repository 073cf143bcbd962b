"""The WeChat access token in the database, shared by every process and refreshed by one of them.

WeChat allows a few thousand token fetches a day and each fetch invalidates the previous token after
a grace period, so processes must not each fetch their own. The token lives in ``channel_tokens``;
whoever needs a fresh one takes a short lease on the row, fetches, stores; the others wait for it.
wechatpy reads and writes it through its ``SessionStorage`` interface.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

from data.clock import Clock
from data.db import Sessions, reading, unit_of_work

log = logging.getLogger(__name__)

EARLY = timedelta(minutes=5)  # treat a token as expired this long before WeChat does
LEASE = timedelta(seconds=30)


class DbTokenStorage(SessionStorage):
    def __init__(self, sessions: Sessions, clock: Clock, owner: str | None = None) -> None:
        self.sessions = sessions
        self.clock = clock
        self.owner = owner or uuid.uuid4().hex[:16]

    # -- wechatpy's SessionStorage ---------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        """The token while it is comfortably valid; ``default`` once it is about to expire."""
        with reading(self.sessions) as store:
            row = store.accounts.token(key)
            if row is None or not row.value or row.expires_at is None:
                return default
            return row.value if row.expires_at - EARLY > self.clock.now() else default

    def set(self, key: str, value: Any, ttl: int | None = None) -> None:
        if value is None:
            return
        expires = self.clock.now() + timedelta(seconds=ttl or 7200)
        with unit_of_work(self.sessions) as store:
            row = store.accounts.token_row(key)
            row.value, row.expires_at = str(value), expires

    def delete(self, key: str) -> None:
        with unit_of_work(self.sessions) as store:
            row = store.accounts.token(key)
            if row is not None:
                row.value, row.expires_at = None, None

    # -- the refresh lease -----------------------------------------------------------------------
    def acquire(self, key: str) -> bool:
        """Take the refresh lease on ``key``; False while another process holds it."""
        now = self.clock.now()
        with unit_of_work(self.sessions) as store:
            return store.accounts.take_token_lease(key, self.owner, now, now + LEASE)

    def release(self, key: str) -> None:
        with unit_of_work(self.sessions) as store:
            store.accounts.release_token_lease(key, self.owner)


class SharedToken:
    """The access-token half of a wechatpy client (the OA's or WeCom's): its API base configurable and
    the token kept in ``DbTokenStorage``, refreshed once across processes (``fetch_once``)."""

    WAIT = 10.0  # seconds to wait for another process's refresh
    API_BASE_URL: str
    session: Any
    access_token_key: str

    def __init__(
        self, app_id: str, secret: str, storage: DbTokenStorage, api_base: str, timeout: float = 10
    ) -> None:
        super().__init__(app_id, secret, session=storage, timeout=timeout)  # type: ignore[call-arg]
        self.API_BASE_URL = api_base
        self.storage = storage

    @property
    def access_token(self) -> str:
        token = self.session.get(self.access_token_key)
        if token:
            return str(token)
        self.fetch_access_token()
        return str(self.session.get(self.access_token_key) or "")

    def fetch_access_token(self) -> dict[str, Any]:
        return fetch_once(self.storage, self.access_token_key, self.WAIT, self._refresh)

    def _refresh(self) -> dict[str, Any]:
        raise NotImplementedError


class SharedTokenClient(SharedToken, WeChatClient):
    """wechatpy's WeChat OA client with the shared token."""

    def _refresh(self) -> dict[str, Any]:
        log.info("fetching a WeChat access token")
        fetched: dict[str, Any] = self._fetch_access_token(
            url=self.API_BASE_URL + "token",
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )
        return fetched


def fetch_once(
    storage: DbTokenStorage, key: str, wait: float, refresh: Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """Fetch a new token if we get the lease; otherwise wait for the holder's. ``refresh`` fetches
    and stores (wechatpy's ``_fetch_access_token``); it runs only while the token is still the one
    found stale (also what wechatpy's auto-retry found rejected)."""
    stale = storage.get(key)
    deadline = time.monotonic() + wait
    while True:
        if storage.acquire(key):
            try:
                fresh = storage.get(key)
                if fresh and fresh != stale:  # refreshed by another process while we waited
                    return {"access_token": fresh}
                return refresh()
            finally:
                storage.release(key)
        fresh = storage.get(key)
        if fresh and fresh != stale:
            return {"access_token": fresh}
        if time.monotonic() > deadline:
            raise WeChatClientException(None, "timed out waiting for another process's token refresh")
        time.sleep(0.1)
