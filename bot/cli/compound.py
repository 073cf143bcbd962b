"""``propbot compound show|set``: the compound's name, phones, office hours, address and payment methods.

A compound created by ``propbot import`` has none of these yet, and residents are answered with them
(the duty phone in every emergency), so the office sets them here. Phone numbers are checked and
stored in a standard form (``flows.intents.contact.check_phone``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from bot.app import bootstrap
from bot.cli import Subparsers
from data.db import unit_of_work
from data.models import Compound
from data.store import Store
from flows.intents.contact import PhoneError, check_phone, missing

# option -> (Compound attribute, label, longest value the column holds, checker)
FIELDS: dict[str, tuple[str, str, int, Callable[[str], str] | None]] = {
    "name": ("name", "小区名称", 100, None),
    "duty_phone": ("duty_phone", "24小时值班电话", 32, check_phone),
    "office_phone": ("office_phone", "物业服务中心电话", 32, check_phone),
    "office_hours": ("office_hours", "办公时间", 100, None),
    "office_address": ("office_address", "物业服务中心地址", 200, None),
    "payment_methods": ("payment_methods", "缴费方式", 1000, None),
}
EXIT_OK, EXIT_REFUSED = 0, 2


class CompoundError(Exception):
    """A request the command cannot carry out; shown as is."""


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "compound",
        help="show or set the compound's phones, office hours and address",
        description="Show or set what residents are told about the office: the 24-hour duty phone "
        "(given in every emergency), the office phone, hours and address, the payment methods. "
        "A compound created by `propbot import` starts without them.",
    )
    actions = parser.add_subparsers(dest="compound_command", metavar="ACTION", required=True)
    which = argparse.ArgumentParser(add_help=False)
    which.add_argument(
        "--compound", metavar="NAME", help="the compound's name or code (needed when there are several)"
    )
    show = actions.add_parser(
        "show",
        parents=[which],
        help="show the compound's contact details",
        description="Show the compound's name, phones, office hours, address and payment methods, "
        "and what is still missing.",
    )
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=run_show)
    change = actions.add_parser(
        "set",
        parents=[which],
        help="set the phones, hours, address, payment methods or name",
        description="Set one or more of the compound's details. Phones: mobile (13800138000), landline "
        "with area code (0571-88880000, extension 0571-88880000转801), 400/800 numbers, or a local "
        "7-8 digit number.",
        epilog="example:\n  propbot compound set --duty-phone 0571-88880000 --office-phone 0571-88881234 "
        '--office-hours "每天 08:30-18:00" --office-address 小区东门物业服务中心',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    change.add_argument("--name", help="the compound's name as residents know it")
    change.add_argument("--duty-phone", metavar="PHONE", help="24-hour duty phone (值班电话)")
    change.add_argument("--office-phone", metavar="PHONE", help="office phone (物业服务中心电话)")
    change.add_argument("--office-hours", metavar="TEXT", help="e.g. 每天 08:30-18:00")
    change.add_argument("--office-address", metavar="TEXT", help="where the office is")
    change.add_argument("--payment-methods", metavar="TEXT", help="how to pay the fees")
    change.set_defaults(handler=run_set)


def run_show(args: argparse.Namespace) -> int:
    return _run(args, lambda compound: None)


def run_set(args: argparse.Namespace) -> int:
    changes = {option: getattr(args, option) for option in FIELDS if getattr(args, option) is not None}
    if not changes:
        print("propbot compound set: nothing to set (see --help)", file=sys.stderr)
        return EXIT_REFUSED
    try:
        checked = {option: _checked(option, value) for option, value in changes.items()}
    except CompoundError as exc:
        print(f"propbot compound set: {exc}", file=sys.stderr)
        return EXIT_REFUSED

    def apply(compound: Compound) -> None:
        for option, value in checked.items():
            setattr(compound, FIELDS[option][0], value)

    return _run(args, apply)


def _checked(option: str, raw: str) -> str:
    _attribute, label, longest, checker = FIELDS[option]
    value = raw.strip()
    if not value and option in ("name", "duty_phone", "office_phone"):
        raise CompoundError(f"{label}不能为空")
    if checker is not None:
        try:
            value = checker(value)
        except PhoneError as exc:
            raise CompoundError(f"{label}：{exc}") from exc
    if len(value) > longest:
        raise CompoundError(f"{label}太长（最多 {longest} 个字）")
    return value


def _run(args: argparse.Namespace, change: Callable[[Compound], None]) -> int:
    app = bootstrap()
    try:
        app.prepare_store()
        with unit_of_work(app.sessions) as store:
            compound = _compound(store, args.compound)
            change(compound)
            store.flush()
            _print(compound, getattr(args, "json", False))
        return EXIT_OK
    except CompoundError as exc:
        print(f"propbot compound: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    finally:
        app.close()


def _compound(store: Store, name: str | None) -> Compound:
    compounds = list(store.views.compounds())
    if not compounds:
        raise CompoundError("库中还没有小区：请先 propbot import units 文件 --compound 名称，或 propbot demo")
    if name:
        found = next((c for c in compounds if name in (c.name, c.code)), None)
        if found is None:
            raise CompoundError(f"没有名为“{name}”的小区（现有：{'、'.join(c.name for c in compounds)}）")
        return found
    if len(compounds) > 1:
        raise CompoundError(f"库中有多个小区（{'、'.join(c.name for c in compounds)}）：请用 --compound 指定")
    return compounds[0]


def _print(compound: Compound, as_json: bool) -> None:
    if as_json:
        data = {"code": compound.code} | {
            option: getattr(compound, attribute) or "" for option, (attribute, *_rest) in FIELDS.items()
        }
        print(json.dumps(data | {"missing": missing(compound)}, ensure_ascii=False, indent=2))
        return
    print(f"小区代码：{compound.code}")
    for attribute, label, *_rest in FIELDS.values():
        print(f"{label}：{getattr(compound, attribute) or '（未设置）'}")
    gaps = missing(compound)
    if gaps:
        print(f"\n提醒：{'、'.join(gaps)}尚未设置：居民问到时只能先记下、由员工答复。", end="")
        if "24小时值班电话" in gaps:
            print("紧急情况的回复里将没有值班电话。", end="")
        flags = [
            f"--{option.replace('_', '-')} ..."
            for option, (_a, label, *_r) in FIELDS.items()
            if label in gaps
        ]
        print(f"\n设置：propbot compound set {' '.join(flags)}")
