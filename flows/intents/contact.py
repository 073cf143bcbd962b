"""How residents reach the office: the compound's phones, hours and address, and what to say when one
of them is not on file yet (a compound created by ``propbot import`` starts with none).

The rule: never show an empty number ("请拨打值班电话 。"); leave the sentence out or point to what
is there, and in an emergency always give the public emergency numbers.
``check_phone`` validates what ``propbot compound set`` stores.
"""

from __future__ import annotations

import re
from typing import NoReturn

from data.models import Compound

PUBLIC_EMERGENCY = "如有危险请立即拨打 119（火警）、120（急救）或 110（报警）。"

_MOBILE = re.compile(r"(?:\+?86)?(1[3-9]\d{9})")
_LANDLINE = re.compile(r"(0(?:10|2\d)|0[3-9]\d{2})([1-9]\d{6,7})")  # 010, 02x: 3-digit area codes
_SERVICE = re.compile(r"([48]00)(\d{3})(\d{4})")  # 400/800 service numbers
_LOCAL = re.compile(r"([2-9]\d{6,7})")  # a city number without its area code
_EXTENSION = re.compile(r"^(.+?)\s*(?:转|分机|ext\.?|x)\s*(\d{1,6})$", re.IGNORECASE)
_DASHED_EXTENSION = re.compile(r"^(\(?0\d{2,3}\)?[\s-]?\d{7,8})-(\d{1,6})$")  # 0571-88880000-801


class PhoneError(ValueError):
    """Not a phone number a resident could dial (shown to the operator as is)."""


def check_phone(raw: str) -> str:
    """The number in a standard form: 13800138000, 0571-88880000, 0571-88880000转801, 400-123-4567.

    Spaces, hyphens, dots and brackets between digits are accepted; anything else is refused."""
    text, extension = raw.strip(), ""
    if found := _EXTENSION.match(text) or _DASHED_EXTENSION.match(text):
        text, extension = found.group(1), found.group(2)
    compact = re.sub(r"[\s\-.()（）]", "", text)
    landline = _LANDLINE.fullmatch(compact)
    if extension:  # only a landline has extensions
        return f"{landline.group(1)}-{landline.group(2)}转{extension}" if landline else _refuse(raw)
    if match := _MOBILE.fullmatch(compact):
        return match.group(1)
    if match := _SERVICE.fullmatch(compact):
        return "-".join(match.groups())
    if landline:
        return f"{landline.group(1)}-{landline.group(2)}"
    if match := _LOCAL.fullmatch(compact):
        return match.group(1)
    return _refuse(raw)


def _refuse(raw: str) -> NoReturn:
    raise PhoneError(
        f"“{raw}”不是有效的电话号码（例：0571-88880000、13800138000、400-123-4567，"
        "分机写作 0571-88880000转801）"
    )


def missing(compound: Compound) -> list[str]:
    """What residents would need and is not on file, in Chinese, most important first."""
    fields = (
        ("24小时值班电话", compound.duty_phone),
        ("物业服务中心电话", compound.office_phone),
        ("办公时间", compound.office_hours),
        ("物业服务中心地址", compound.office_address),
        ("缴费方式", compound.payment_methods),
    )
    return [label for label, value in fields if not (value or "").strip()]


def office(compound: Compound) -> str:
    """ "物业服务中心 0571-88881234", or just "物业服务中心" when no office phone is on file."""
    phone = (compound.office_phone or "").strip()
    return f"物业服务中心 {phone}" if phone else "物业服务中心"


def office_details(compound: Compound) -> str:
    """ "物业服务中心：地址，电话 …，办公时间。24 小时值班电话 …。" with what is on file."""
    phone, duty = (compound.office_phone or "").strip(), (compound.duty_phone or "").strip()
    parts = [
        (compound.office_address or "").strip(),
        f"电话 {phone}" if phone else "",
        compound.office_hours or "",
    ]
    known = "，".join(p.strip() for p in parts if p.strip())
    return (f"物业服务中心：{known}。" if known else "") + (f"24 小时值班电话 {duty}。" if duty else "")


def emergency_call(compound: Compound) -> str:
    """The line an emergency answer leads with: the duty phone, else the office phone and the public
    emergency numbers (the staff are paged either way)."""
    duty = (compound.duty_phone or "").strip()
    if duty:
        return f"24小时值班电话：{duty}，请立即拨打。"
    phone = (compound.office_phone or "").strip()
    return (f"物业服务中心电话：{phone}。" if phone else "") + PUBLIC_EMERGENCY


def emergency_hint(compound: Compound) -> str:
    """For help and handoff texts: where to turn in an emergency."""
    duty = (compound.duty_phone or "").strip()
    if duty:
        return f"紧急情况请拨打24小时值班电话 {duty}。"
    return "紧急情况请直接告诉我，我会马上通知值班人员。"


def payment(compound: Compound) -> str:
    return (compound.payment_methods or "").strip() or "请到物业服务中心缴纳"
