"""Binding codes from the office (绑定码): single-use, expiring, revocable.

The office gives a resident a code on paper or as a QR; the resident sends it (or opens the
Telegram deep link) and the chat account is bound to the flat (flows.intents.binding). A code is for one
resident of the flat: the owner unless the office names another.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from data.clock import local
from data.models import BindingCode, Resident, Unit
from data.store import Store

# No 0/O, 1/I/L: a code is read off paper and typed on a phone.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 8  # 31^8 ≈ 8.5e11 codes; binding attempts per account are limited besides
DEFAULT_EXPIRY = timedelta(days=7)
DURATION = re.compile(r"^\s*(\d{1,4})\s*([dhm])\s*$", re.IGNORECASE)
ADDRESS = re.compile(r"^\s*(\d{1,3})-(?:(\d{1,2})-)?([0-9A-Za-z]{1,8})\s*$")
STATE_NAMES = {"issued": "未使用", "used": "已使用", "expired": "已过期", "revoked": "已作废"}


class CodeError(ValueError):
    """A code request that cannot be carried out (shown as is)."""


def parse_duration(text: str) -> timedelta:
    """``7d``, ``12h``, ``30m``."""
    found = DURATION.match(text)
    if found is None or int(found.group(1)) == 0:
        raise CodeError(f"有效期写成 7d、12h 或 30m，收到 {text!r}")
    amount, unit = int(found.group(1)), found.group(2).lower()
    return {"d": timedelta(days=amount), "h": timedelta(hours=amount), "m": timedelta(minutes=amount)}[unit]


def find_unit(store: Store, address: str) -> Unit:
    """``3-2-1502`` (building-unit-room) or ``3-1502`` (building-room)."""
    found = ADDRESS.match(address)
    if found is None:
        raise CodeError(f"房号写成 楼栋-单元-房号，例如 3-2-1502，收到 {address!r}")
    building, unit_no, room = int(found.group(1)), found.group(2), found.group(3)
    unit = store.find_unit(building, int(unit_no) if unit_no else None, room)
    if unit is None:
        raise CodeError(f"没有找到房屋 {address}")
    return unit


def resident_for(store: Store, unit: Unit, name_or_id: str | None = None) -> Resident:
    """The named resident of the flat, or its owner (the first registered when there is none)."""
    residents = list(store.residents_of_unit(unit.id))
    if not residents:
        raise CodeError(f"{unit.label} 没有登记的住户，请先导入住户")
    if name_or_id:
        chosen = [r for r in residents if r.name == name_or_id or str(r.id) == name_or_id]
        if not chosen:
            raise CodeError(f"{unit.label} 没有住户“{name_or_id}”")
        return chosen[0]
    return next((r for r in residents if r.role == "owner"), residents[0])


def issue(
    store: Store, resident: Resident, now: datetime, actor: str, valid: timedelta = DEFAULT_EXPIRY
) -> BindingCode:
    code = BindingCode(
        code=_new_code(store),
        resident_id=resident.id,
        resident=resident,
        created_at=now,
        expires_at=now + valid,
        issued_by=actor,
    )
    return store.accounts.add_binding_code(code)


def _new_code(store: Store) -> str:
    while True:  # a clash is one in 10^11; the primary key would refuse it anyway
        code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        if store.accounts.binding_code(code) is None:
            return code


def revoke(store: Store, code: str, now: datetime) -> BindingCode:
    found = store.accounts.binding_code(code.strip().upper())
    if found is None:
        raise CodeError(f"没有绑定码 {code}")
    state = found.state(now)
    if state != "issued":
        raise CodeError(f"绑定码 {found.code} {STATE_NAMES[state]}，无需作废")
    found.revoked_at = now
    return found


def codes(store: Store, unit_id: int | None = None, limit: int = 200) -> Sequence[BindingCode]:
    """Codes, newest first; only the flat's with ``unit_id``."""
    return store.accounts.binding_codes(unit_id, limit)


def printable(code: BindingCode) -> str:
    """The line the office prints or reads out."""
    until = f"，{local(code.expires_at):%Y-%m-%d %H:%M} 前有效" if code.expires_at else ""
    return f"{code.resident.unit.label} {code.resident.name} 绑定码：{code.code}（仅限使用一次{until}）"


def deep_link(code: str, telegram_bot: str) -> str:
    """What the QR holds: the Telegram deep link (``/start CODE`` binds at once, flows.intents.bind_code)
    when the bot's username is known, else the code itself."""
    return f"https://t.me/{telegram_bot.lstrip('@')}?start={code}" if telegram_bot else code
