"""Who may use the web front desk: logins with argon2id password hashes, lockout after repeated
failures, and server-side sessions behind a signed cookie.

A session is a database row keyed by the SHA-256 of a random token; the browser holds the token,
signed (itsdangerous) so that a forged or altered cookie is refused before any look-up. Logging
out deletes the row, so a copied cookie dies with it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, Signer
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from data.db import transaction
from data.models import ChannelToken, Compound, DeskAccount, DeskSession, Staff

ROLES = {"clerk": "front_desk", "manager": "manager"}  # desk role -> the staff role of a new member
ROLE_NAMES = {"clerk": "前台", "manager": "经理"}
MIN_PASSWORD = 8
HASHER = PasswordHasher()  # argon2id with the library's parameters (RFC 9106 low-memory profile)
# Verified for an unknown login so that the answer takes as long as for a wrong password.
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))
KEY_NAME = "desk_cookie_key"  # the signing key when DESK_SECRET is not set, shared by every process


class AccountError(ValueError):
    """An account request that cannot be carried out (shown as is)."""


@dataclass(frozen=True)
class Policy:
    attempts: int = 5
    window: timedelta = timedelta(minutes=15)
    lock: timedelta = timedelta(minutes=15)
    session: timedelta = timedelta(hours=12)


# -- accounts ---------------------------------------------------------------------------------------
def add_account(
    session: Session, compound: Compound, login: str, role: str, password: str, now: datetime
) -> DeskAccount:
    """A desk login for staff member ``login`` (made when the compound has nobody of that name)."""
    login = login.strip()
    if role not in ROLES:
        raise AccountError(f"角色只能是 {' 或 '.join(ROLES)}")
    if not login or len(login) > 50:
        raise AccountError("请写上 1-50 个字的姓名")
    if session.scalars(select(DeskAccount).where(DeskAccount.login == login)).first() is not None:
        raise AccountError(f"“{login}”已经有前台账号；改密码用 propbot staff passwd")
    check_password(password)
    staff = session.scalars(
        select(Staff).where(Staff.compound_id == compound.id, Staff.name == login, Staff.active.is_(True))
    ).first()
    if staff is None:
        staff = Staff(compound_id=compound.id, name=login, role=ROLES[role])
        session.add(staff)
        session.flush()
    account = DeskAccount(
        login=login, staff_id=staff.id, staff=staff, role=role, password_hash=HASHER.hash(password),
        created_at=now, failed_logins=0,
    )  # fmt: skip
    session.add(account)
    session.flush()
    return account


def set_password(session: Session, login: str, password: str) -> DeskAccount:
    """A new password; also lifts a lockout and ends the account's sessions."""
    account = find(session, login)
    if account is None:
        raise AccountError(f"没有前台账号“{login}”")
    check_password(password)
    account.password_hash = HASHER.hash(password)
    account.failed_logins, account.failed_since, account.locked_until = 0, None, None
    session.execute(delete(DeskSession).where(DeskSession.account_id == account.id))
    return account


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"密码至少 {MIN_PASSWORD} 位")


def find(session: Session, login: str) -> DeskAccount | None:
    return session.scalars(select(DeskAccount).where(DeskAccount.login == login.strip())).first()


def accounts(session: Session) -> list[DeskAccount]:
    return list(session.scalars(select(DeskAccount).order_by(DeskAccount.id)))


# -- logging in -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Refused:
    locked_until: datetime | None = None  # set when the account is (now) locked


def authenticate(
    session: Session, login: str, password: str, now: datetime, policy: Policy
) -> DeskAccount | Refused:
    """The account if the password is right; Refused otherwise. A locked account is refused without
    looking at the password; the failure that reaches ``policy.attempts`` inside the window locks it."""
    account = find(session, login)
    if account is None or not account.active:
        _verify(_DUMMY_HASH, password)
        return Refused()
    if account.locked_until is not None and account.locked_until > now:
        return Refused(account.locked_until)
    if not _verify(account.password_hash, password):
        return _failed(account, now, policy)
    account.failed_logins, account.failed_since, account.locked_until = 0, None, None
    account.last_login_at = now
    if HASHER.check_needs_rehash(account.password_hash):  # the library's parameters moved on
        account.password_hash = HASHER.hash(password)
    return account


def _verify(hashed: str, password: str) -> bool:
    try:
        return HASHER.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def _failed(account: DeskAccount, now: datetime, policy: Policy) -> Refused:
    if account.failed_since is None or now - account.failed_since > policy.window:
        account.failed_since, account.failed_logins = now, 0  # a new window
    account.failed_logins += 1
    if account.failed_logins < policy.attempts:
        return Refused()
    account.locked_until = now + policy.lock
    account.failed_logins, account.failed_since = 0, None
    return Refused(account.locked_until)


# -- sessions -------------------------------------------------------------------------------------
def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(session: Session, account: DeskAccount, now: datetime, policy: Policy) -> str:
    """A new session for ``account``; the token for the cookie. Expired rows are cleared on the way."""
    session.execute(delete(DeskSession).where(DeskSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    session.add(
        DeskSession(
            id=_digest(token),
            account_id=account.id,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + policy.session,
        )
    )
    return token


def session_for(session: Session, token: str, now: datetime) -> DeskSession | None:
    found = session.get(DeskSession, _digest(token))
    if found is None or found.expires_at <= now or not found.account.active:
        return None
    return found


def close_session(session: Session, token: str) -> None:
    session.execute(delete(DeskSession).where(DeskSession.id == _digest(token)))


# -- the cookie -----------------------------------------------------------------------------------
class CookieSigner:
    def __init__(self, key: str) -> None:
        self._session = Signer(key, salt="propbot.desk.session")
        self._login = Signer(key, salt="propbot.desk.login")

    def sign(self, token: str) -> str:
        return self._session.sign(token).decode()

    def token(self, cookie: str | None) -> str | None:
        """The session token of a cookie; None when absent or not signed by us."""
        return _unsign(self._session, cookie)

    def sign_login(self, nonce: str) -> str:
        return self._login.sign(nonce).decode()

    def login_nonce(self, cookie: str | None) -> str | None:
        return _unsign(self._login, cookie)


def _unsign(signer: Signer, value: str | None) -> str | None:
    if not value:
        return None
    try:
        return signer.unsign(value).decode()
    except BadSignature:
        return None


def signing_key(sessions: sessionmaker[Session], configured: str) -> str:
    """DESK_SECRET, or a random key kept in the database so every server process signs alike."""
    if configured:
        return configured
    with transaction(sessions) as session:
        row = session.get(ChannelToken, KEY_NAME)
        if row is not None and row.value:
            return row.value
    try:
        with transaction(sessions) as session:
            session.add(ChannelToken(name=KEY_NAME, value=secrets.token_urlsafe(48)))
    except IntegrityError:
        pass  # another process made it first: use theirs
    with transaction(sessions) as session:
        row = session.get(ChannelToken, KEY_NAME)
        assert row is not None and row.value
        return row.value
