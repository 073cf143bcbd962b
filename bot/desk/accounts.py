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

from data.db import Sessions, reading, unit_of_work
from data.models import Compound, DeskAccount, DeskSession, Staff
from data.store import Store

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
    lifetime: timedelta = timedelta(hours=12)  # of a login session


# -- accounts ---------------------------------------------------------------------------------------
def add_account(
    store: Store, compound: Compound, login: str, role: str, password: str, now: datetime
) -> DeskAccount:
    """A desk login for staff member ``login`` (made when the compound has nobody of that name)."""
    login = login.strip()
    if role not in ROLES:
        raise AccountError(f"角色只能是 {' 或 '.join(ROLES)}")
    if not login or len(login) > 50:
        raise AccountError("请写上 1-50 个字的姓名")
    if store.accounts.desk_login(login) is not None:
        raise AccountError(f"“{login}”已经有前台账号；改密码用 propbot staff passwd")
    check_password(password)
    staff = store.accounts.active_staff_named(compound.id, login)
    if staff is None:
        staff = store.accounts.add_staff(Staff(compound_id=compound.id, name=login, role=ROLES[role]))
    account = DeskAccount(
        login=login, staff_id=staff.id, staff=staff, role=role, password_hash=HASHER.hash(password),
        created_at=now, failed_logins=0,
    )  # fmt: skip
    return store.accounts.add_desk_login(account)


def set_password(store: Store, login: str, password: str) -> DeskAccount:
    """A new password; also lifts a lockout and ends the account's sessions."""
    account = find(store, login)
    if account is None:
        raise AccountError(f"没有前台账号“{login}”")
    check_password(password)
    account.password_hash = HASHER.hash(password)
    account.failed_logins, account.failed_since, account.locked_until = 0, None, None
    store.accounts.end_desk_sessions(account.id)
    return account


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"密码至少 {MIN_PASSWORD} 位")


def find(store: Store, login: str) -> DeskAccount | None:
    return store.accounts.desk_login(login.strip())


def accounts(store: Store) -> list[DeskAccount]:
    return list(store.accounts.desk_logins())


# -- logging in -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Refused:
    locked_until: datetime | None = None  # set when the account is (now) locked


def authenticate(
    store: Store, login: str, password: str, now: datetime, policy: Policy
) -> DeskAccount | Refused:
    """The account if the password is right; Refused otherwise. A locked account is refused without
    looking at the password; the failure that reaches ``policy.attempts`` inside the window locks it."""
    account = find(store, login)
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


def open_session(store: Store, account: DeskAccount, now: datetime, policy: Policy) -> str:
    """A new session for ``account``; the token for the cookie. Expired rows are cleared on the way."""
    store.accounts.drop_expired_desk_sessions(now)
    token = secrets.token_urlsafe(32)
    store.accounts.add_desk_session(
        DeskSession(
            id=_digest(token),
            account_id=account.id,
            csrf=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + policy.lifetime,
        )
    )
    return token


def session_for(store: Store, token: str, now: datetime) -> DeskSession | None:
    found = store.accounts.desk_session(_digest(token))
    if found is None or found.expires_at <= now or not found.account.active:
        return None
    return found


def close_session(store: Store, token: str) -> None:
    store.accounts.end_desk_session(_digest(token))


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


def signing_key(sessions: Sessions, configured: str) -> str:
    """DESK_SECRET, or a random key kept in the database so every server process signs alike."""
    if configured:
        return configured
    with reading(sessions) as store:
        row = store.accounts.token(KEY_NAME)
        if row is not None and row.value:
            return row.value
    with unit_of_work(sessions) as store:
        store.accounts.add_token(
            KEY_NAME, secrets.token_urlsafe(48)
        )  # another process's may be first: theirs is used
    with reading(sessions) as store:
        row = store.accounts.token(KEY_NAME)
        assert row is not None and row.value
        return row.value
