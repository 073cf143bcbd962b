"""The accounts repository over dicts, for the unit tier (no database).

It keeps ``SqlAccounts``' contract (``tests/unit/test_memory_accounts.py`` runs the same tests on
both). What the SQL one loads with a row (an account's resident, a login's staff member, a desk
session's login, a code's resident) is linked here from the dicts when it is handed out. A
resident's flat belongs to the units aggregate: its compound is read through ``resident.unit``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from data.models import (
    Base,
    BindingCode,
    ChannelAccount,
    ChannelToken,
    DeskAccount,
    DeskSession,
    Resident,
    Staff,
)
from data.repositories.accounts import AccountRepository, ChatFacts
from data.repositories.memory_rows import insert

Row = TypeVar("Row", bound=Base)


class MemoryAccounts:
    def __init__(self) -> None:
        self.chat_accounts: dict[int, ChannelAccount] = {}
        self.residents: dict[int, Resident] = {}
        self.staff_members: dict[int, Staff] = {}
        self.codes: dict[str, BindingCode] = {}
        self.desk_accounts: dict[int, DeskAccount] = {}
        self.desk_sessions: dict[str, DeskSession] = {}
        self.tokens: dict[str, ChannelToken] = {}

    def seed(self, rows: Iterable[Base]) -> None:
        """Keep the chat accounts, residents, staff, ... among ``rows`` (others are not ours)."""
        for row in rows:
            match row:
                case ChannelAccount():
                    insert(self.chat_accounts, row)
                case Resident():
                    insert(self.residents, row)
                case Staff():
                    insert(self.staff_members, row)
                case BindingCode():
                    insert(self.codes, row)
                case DeskAccount():
                    insert(self.desk_accounts, row)
                case DeskSession():
                    insert(self.desk_sessions, row)
                case ChannelToken():
                    insert(self.tokens, row)

    # -- chat accounts and residents -------------------------------------------------------------
    def chat_account(self, channel: str, external_id: str) -> ChannelAccount | None:
        found = _first(self.chat_accounts, lambda a: a.channel == channel and a.external_id == external_id)
        return self._with_resident(found) if found is not None else None

    def last_inbound(self, channel: str, external_id: str) -> datetime | None:
        found = self.chat_account(channel, external_id)
        return found.last_inbound_at if found is not None else None

    def chat_facts(self, channel: str, external_ids: set[str]) -> dict[str, ChatFacts]:
        known = _where(self.chat_accounts, lambda a: a.channel == channel and a.external_id in external_ids)
        linked = [self._with_resident(account) for account in known]
        return {a.external_id: ChatFacts(a.last_inbound_at, _compound_of(a)) for a in linked}

    def resident(self, resident_id: int) -> Resident | None:
        return self.residents.get(resident_id)

    def bound_accounts(self, resident_id: int) -> int:
        return len(_where(self.chat_accounts, lambda a: a.resident_id == resident_id))

    # -- staff -----------------------------------------------------------------------------------
    def staff(self, staff_id: int) -> Staff | None:
        return self.staff_members.get(staff_id)

    def active_staff(self, compound_id: int) -> Sequence[Staff]:
        return _where(self.staff_members, lambda s: s.compound_id == compound_id and s.active)

    def active_staff_named(self, compound_id: int, name: str) -> Staff | None:
        return _first(
            self.staff_members, lambda s: s.compound_id == compound_id and s.name == name and s.active
        )

    def add_staff(self, staff: Staff) -> Staff:
        return insert(self.staff_members, staff)

    # -- binding codes ---------------------------------------------------------------------------
    def binding_code(self, code: str) -> BindingCode | None:
        return self.codes.get(code)

    def add_binding_code(self, code: BindingCode) -> BindingCode:
        return insert(self.codes, code)

    def binding_codes(self, unit_id: int | None = None, limit: int = 200) -> Sequence[BindingCode]:
        found = [code for code in self.codes.values() if self._with_code_resident(code)]
        if unit_id is not None:
            found = [code for code in found if code.resident.unit_id == unit_id]
        by_code = sorted(found, key=lambda c: c.code)
        return sorted(by_code, key=lambda c: c.created_at, reverse=True)[:limit]

    # -- desk logins and sessions ----------------------------------------------------------------
    def desk_login(self, login: str) -> DeskAccount | None:
        found = _first(self.desk_accounts, lambda a: a.login == login)
        return self._with_staff(found) if found is not None else None

    def desk_logins(self) -> Sequence[DeskAccount]:
        return [self._with_staff(account) for account in _where(self.desk_accounts, lambda _: True)]

    def add_desk_login(self, account: DeskAccount) -> DeskAccount:
        return self._with_staff(insert(self.desk_accounts, account))

    def desk_session(self, digest: str) -> DeskSession | None:
        found = self.desk_sessions.get(digest)
        if found is not None and found.account is None:
            found.account = self._with_staff(self.desk_accounts[found.account_id])
        return found

    def add_desk_session(self, session: DeskSession) -> None:
        insert(self.desk_sessions, session)

    def end_desk_sessions(self, account_id: int) -> None:
        self._drop_sessions(lambda s: s.account_id == account_id)

    def end_desk_session(self, digest: str) -> None:
        self.desk_sessions.pop(digest, None)

    def drop_expired_desk_sessions(self, now: datetime) -> None:
        self._drop_sessions(lambda s: s.expires_at <= now)

    def _drop_sessions(self, wanted: Callable[[DeskSession], bool]) -> None:
        for digest in [d for d, session in self.desk_sessions.items() if wanted(session)]:
            del self.desk_sessions[digest]

    # -- channel tokens --------------------------------------------------------------------------
    def token(self, name: str) -> ChannelToken | None:
        return self.tokens.get(name)

    def token_row(self, name: str) -> ChannelToken:
        return self.tokens.get(name) or insert(self.tokens, ChannelToken(name=name))

    def add_token(self, name: str, value: str) -> bool:
        if name in self.tokens:
            return False
        insert(self.tokens, ChannelToken(name=name, value=value))
        return True

    def take_token_lease(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        row = self.token_row(name)
        if row.lease_until is not None and row.lease_until >= now and row.lease_owner != owner:
            return False  # someone else's lease still runs
        row.lease_owner, row.lease_until = owner, until
        return True

    def release_token_lease(self, name: str, owner: str) -> None:
        row = self.tokens.get(name)
        if row is not None and row.lease_owner == owner:
            row.lease_owner, row.lease_until = None, None

    # -- what the SQL one loads with a row -------------------------------------------------------
    def _with_resident(self, account: ChannelAccount) -> ChannelAccount:
        if account.resident is None and account.resident_id is not None:
            account.resident = self.residents.get(account.resident_id)
        return account

    def _with_code_resident(self, code: BindingCode) -> bool:
        """Link the code's resident; False if there is none (the SQL one joins them)."""
        if code.resident is None:
            found = self.residents.get(code.resident_id)
            if found is None:
                return False
            code.resident = found
        return True

    def _with_staff(self, account: DeskAccount) -> DeskAccount:
        if account.staff is None:
            account.staff = self.staff_members[account.staff_id]
        return account


def _compound_of(account: ChannelAccount) -> int | None:
    """The compound of the account's flat; None while it is not bound."""
    resident = account.resident
    if resident is None or resident.unit is None:
        return None
    return resident.unit.building.compound_id


def _where(rows: dict[int, Row], wanted: Callable[[Row], bool]) -> list[Row]:
    """The rows ``wanted``, in the order they were added (by id)."""
    return [row for _, row in sorted(rows.items()) if wanted(row)]


def _first(rows: dict[int, Row], wanted: Callable[[Row], bool]) -> Row | None:
    return next(iter(_where(rows, wanted)), None)


if TYPE_CHECKING:  # mypy holds the memory repository to its protocol
    _accounts: AccountRepository = MemoryAccounts()
