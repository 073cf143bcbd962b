"""Helpers for the web front desk's tests: a browser-like HTTP client (cookies, the CSRF token read
from the page's forms), desk logins and tickets made in the store, and a clock that can jump."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import select

from bot.app import App
from bot.desk.accounts import add_account
from data.db import transaction, unit_of_work
from data.models import ChannelAccount, Resident, Ticket
from data.store import Store
from flows.domain.tickets import NewTicket, open_ticket
from tests.e2e.conftest import RunningClock

PASSWORD = "correct horse 42"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


class JumpingClock(RunningClock):
    """Runs with real time (the server's dispatcher needs it) and can jump ahead."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.offset = timedelta()

    def now(self) -> datetime:
        return super().now() + self.offset

    def jump(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@dataclass
class DeskClient:
    """One browser: its own cookie jar."""

    http: httpx.Client

    @classmethod
    def at(cls, url: str) -> DeskClient:
        return cls(httpx.Client(base_url=url, timeout=30, follow_redirects=False))

    def csrf(self, path: str) -> str:
        page = self.http.get(path)
        assert page.status_code == 200, (path, page.status_code, page.text[:300])
        found = CSRF.search(page.text)
        assert found is not None, f"no CSRF token on {path}"
        return found.group(1)

    def login(self, name: str, password: str = PASSWORD, **extra: str) -> httpx.Response:
        token = self.csrf("/desk/login")
        return self.http.post(
            "/desk/login", data={"csrf": token, "login": name, "password": password, **extra}
        )

    def post(
        self, path: str, data: dict[str, str] | None = None, page: str = "/desk/tickets"
    ) -> httpx.Response:
        """A form on ``page`` posted as a browser would: with the CSRF token that page carries."""
        return self.http.post(path, data={"csrf": self.csrf(page), **(data or {})})

    def close(self) -> None:
        self.http.close()


def add_login(app: App, name: str, role: str = "clerk", password: str = PASSWORD) -> int:
    """A desk login; the staff id it acts as."""
    with unit_of_work(app.sessions) as store:
        account = add_account(store, store.compound(), name, role, password, app.clock.now())
        return account.staff_id


def open_repair(
    app: App, resident_external: tuple[str, str] = ("console", "demo"), description: str = "厨房水管漏水"
) -> str:
    """A repair reported by the account (channel, external id), bound to its resident; its number."""
    with transaction(app.sessions) as session:
        store = Store(session)
        account = store.account(*resident_external)
        new = NewTicket(kind="repair", description=description, category="water", area="in_home")
        ticket = open_ticket(store, store.compound(), account, new, app.clock.now(), "resident")
        return ticket.number


def bind(app: App, channel: str, external_id: str, resident_name: str) -> None:
    with transaction(app.sessions) as session:
        store = Store(session)
        resident = session.scalars(select(Resident).where(Resident.name == resident_name)).one()
        store.bind(store.account(channel, external_id), resident, app.clock.now())


def ticket_state(app: App, number: str) -> tuple[str, str | None, list[str]]:
    """(status, assignee's name, event kinds) of a ticket."""
    with app.sessions() as session:
        ticket = session.scalars(select(Ticket).where(Ticket.number == number)).unique().one()
        name = ticket.assignee.name if ticket.assignee is not None else None
        return ticket.status, name, [e.kind for e in ticket.events]


def account_of(app: App, channel: str, external_id: str) -> ChannelAccount:
    with app.sessions() as session:
        found = session.scalars(
            select(ChannelAccount).where(
                ChannelAccount.channel == channel, ChannelAccount.external_id == external_id
            )
        ).one()
        session.expunge(found)
        return found
