"""The accounts aggregate: who talks to us and who works for us — chat accounts, residents, staff,
binding codes, desk logins and their sessions, and the channel tokens every process shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from data.models import (
    BindingCode,
    Building,
    ChannelAccount,
    ChannelToken,
    DeskAccount,
    DeskSession,
    Resident,
    Staff,
    Unit,
)


@dataclass(frozen=True)
class ChatFacts:
    """What the outbox needs to know about the resident behind a chat."""

    last_inbound_at: datetime | None
    compound_id: int | None  # None while the account is not bound to a flat


class AccountRepository(Protocol):
    # -- chat accounts and residents -------------------------------------------------------------
    def chat_account(self, channel: str, external_id: str) -> ChannelAccount | None: ...

    def last_inbound(self, channel: str, external_id: str) -> datetime | None:
        """When the chat last wrote to us (None: never, or unknown)."""
        ...

    def chat_facts(self, channel: str, external_ids: set[str]) -> dict[str, ChatFacts]:
        """Last message time and compound of the known chats among ``external_ids``."""
        ...

    def resident(self, resident_id: int) -> Resident | None: ...

    def bound_accounts(self, resident_id: int) -> int:
        """How many chat accounts are bound to the resident."""
        ...

    # -- staff -----------------------------------------------------------------------------------
    def staff(self, staff_id: int) -> Staff | None:
        """The staff member, active or not."""
        ...

    def active_staff(self, compound_id: int) -> Sequence[Staff]:
        """The compound's active staff, in the order they were added."""
        ...

    def active_staff_named(self, compound_id: int, name: str) -> Staff | None: ...

    def add_staff(self, staff: Staff) -> Staff:
        """``staff`` added, with its id."""
        ...

    # -- binding codes ---------------------------------------------------------------------------
    def binding_code(self, code: str) -> BindingCode | None: ...

    def add_binding_code(self, code: BindingCode) -> BindingCode: ...

    def binding_codes(self, unit_id: int | None = None, limit: int = 200) -> Sequence[BindingCode]:
        """Codes newest first, their residents loaded; only the flat's with ``unit_id``."""
        ...

    # -- desk logins and sessions ----------------------------------------------------------------
    def desk_login(self, login: str) -> DeskAccount | None: ...

    def desk_logins(self) -> Sequence[DeskAccount]:
        """Every desk login, in the order they were made."""
        ...

    def add_desk_login(self, account: DeskAccount) -> DeskAccount: ...

    def desk_session(self, digest: str) -> DeskSession | None: ...

    def add_desk_session(self, session: DeskSession) -> None: ...

    def end_desk_sessions(self, account_id: int) -> None:
        """Log the account out everywhere."""
        ...

    def end_desk_session(self, digest: str) -> None: ...

    def drop_expired_desk_sessions(self, now: datetime) -> None: ...

    # -- channel tokens --------------------------------------------------------------------------
    def token(self, name: str) -> ChannelToken | None: ...

    def token_row(self, name: str) -> ChannelToken:
        """The token's row, made (empty) if it does not exist yet; another process may make it
        at the same moment."""
        ...

    def add_token(self, name: str, value: str) -> bool:
        """A new token row; False if one of that name exists (another process made it first)."""
        ...

    def take_token_lease(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        """The refresh lease on the token for ``owner`` until ``until``, unless someone else holds a
        lease still running; True if ``owner`` holds it now."""
        ...

    def release_token_lease(self, name: str, owner: str) -> None: ...


class SqlAccounts:
    def __init__(self, session: Session) -> None:
        self._session = session

    # -- chat accounts and residents -------------------------------------------------------------
    def chat_account(self, channel: str, external_id: str) -> ChannelAccount | None:
        query = select(ChannelAccount).where(
            ChannelAccount.channel == channel, ChannelAccount.external_id == external_id
        )
        return self._session.scalars(query).first()

    def last_inbound(self, channel: str, external_id: str) -> datetime | None:
        query = select(ChannelAccount.last_inbound_at).where(
            ChannelAccount.channel == channel, ChannelAccount.external_id == external_id
        )
        return self._session.scalar(query)

    def chat_facts(self, channel: str, external_ids: set[str]) -> dict[str, ChatFacts]:
        query = (
            select(ChannelAccount.external_id, ChannelAccount.last_inbound_at, Building.compound_id)
            .outerjoin(Resident, ChannelAccount.resident_id == Resident.id)
            .outerjoin(Unit, Resident.unit_id == Unit.id)
            .outerjoin(Building, Unit.building_id == Building.id)
            .where(ChannelAccount.channel == channel, ChannelAccount.external_id.in_(external_ids))
        )
        found = self._session.execute(query).all()
        return {external_id: ChatFacts(last, compound_id) for external_id, last, compound_id in found}

    def resident(self, resident_id: int) -> Resident | None:
        return self._session.get(Resident, resident_id)

    def bound_accounts(self, resident_id: int) -> int:
        query = (
            select(func.count()).select_from(ChannelAccount).where(ChannelAccount.resident_id == resident_id)
        )
        return int(self._session.scalar(query) or 0)

    # -- staff -----------------------------------------------------------------------------------
    def staff(self, staff_id: int) -> Staff | None:
        return self._session.get(Staff, staff_id)

    def active_staff(self, compound_id: int) -> Sequence[Staff]:
        query = (
            select(Staff).where(Staff.compound_id == compound_id, Staff.active.is_(True)).order_by(Staff.id)
        )
        return self._session.scalars(query).all()

    def active_staff_named(self, compound_id: int, name: str) -> Staff | None:
        query = select(Staff).where(
            Staff.compound_id == compound_id, Staff.name == name, Staff.active.is_(True)
        )
        return self._session.scalars(query).first()

    def add_staff(self, staff: Staff) -> Staff:
        self._session.add(staff)
        self._session.flush()
        return staff

    # -- binding codes ---------------------------------------------------------------------------
    def binding_code(self, code: str) -> BindingCode | None:
        return self._session.get(BindingCode, code)

    def add_binding_code(self, code: BindingCode) -> BindingCode:
        self._session.add(code)
        self._session.flush()
        return code

    def binding_codes(self, unit_id: int | None = None, limit: int = 200) -> Sequence[BindingCode]:
        query = (
            select(BindingCode)
            .join(Resident, BindingCode.resident_id == Resident.id)
            .order_by(BindingCode.created_at.desc(), BindingCode.code)
            .limit(limit)
            .options(selectinload(BindingCode.resident))
        )
        if unit_id is not None:
            query = query.where(Resident.unit_id == unit_id)
        return self._session.scalars(query).unique().all()

    # -- desk logins and sessions ----------------------------------------------------------------
    def desk_login(self, login: str) -> DeskAccount | None:
        return self._session.scalars(select(DeskAccount).where(DeskAccount.login == login)).first()

    def desk_logins(self) -> Sequence[DeskAccount]:
        return self._session.scalars(select(DeskAccount).order_by(DeskAccount.id)).all()

    def add_desk_login(self, account: DeskAccount) -> DeskAccount:
        self._session.add(account)
        self._session.flush()
        return account

    def desk_session(self, digest: str) -> DeskSession | None:
        return self._session.get(DeskSession, digest)

    def add_desk_session(self, session: DeskSession) -> None:
        self._session.add(session)

    def end_desk_sessions(self, account_id: int) -> None:
        self._session.execute(delete(DeskSession).where(DeskSession.account_id == account_id))

    def end_desk_session(self, digest: str) -> None:
        self._session.execute(delete(DeskSession).where(DeskSession.id == digest))

    def drop_expired_desk_sessions(self, now: datetime) -> None:
        self._session.execute(delete(DeskSession).where(DeskSession.expires_at <= now))

    # -- channel tokens --------------------------------------------------------------------------
    def token(self, name: str) -> ChannelToken | None:
        return self._session.get(ChannelToken, name)

    def token_row(self, name: str) -> ChannelToken:
        row = self.token(name)
        if row is not None:
            return row
        self._add_token(ChannelToken(name=name))
        found = self.token(name)
        assert found is not None
        return found

    def add_token(self, name: str, value: str) -> bool:
        return self._add_token(ChannelToken(name=name, value=value))

    def _add_token(self, row: ChannelToken) -> bool:
        try:
            with self._session.begin_nested():
                self._session.add(row)
        except IntegrityError:  # another process created it first
            return False
        return True

    def take_token_lease(self, name: str, owner: str, now: datetime, until: datetime) -> bool:
        self.token_row(name)
        taken = self._session.execute(
            update(ChannelToken)
            .where(
                ChannelToken.name == name,
                or_(
                    ChannelToken.lease_until.is_(None),
                    ChannelToken.lease_until < now,
                    ChannelToken.lease_owner == owner,
                ),
            )
            .values(lease_owner=owner, lease_until=until)
        )
        return bool(getattr(taken, "rowcount", 0))

    def release_token_lease(self, name: str, owner: str) -> None:
        self._session.execute(
            update(ChannelToken)
            .where(ChannelToken.name == name, ChannelToken.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )
