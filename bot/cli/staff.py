"""``propbot staff add|passwd|list``: logins to the web front desk (/desk, docs/desk.md);
``propbot staff link NAME --wecom USERID``: the WeCom userid a staff member uses the WeCom app from.

The password is asked twice at a terminal, or read as one line from standard input with
``--password-stdin`` (scripts: ``printf '%s\\n' "$PW" | propbot staff add 张丽 --role clerk
--password-stdin``); never from the command line, where other users could see it.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from bot.app import App
from bot.cli import Subparsers
from bot.cli.run import with_app
from bot.desk.accounts import ROLE_NAMES, ROLES, AccountError, accounts, add_account, set_password
from data.clock import local
from data.db import unit_of_work
from data.store import Store


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "staff",
        help="logins to the web front desk (/desk)",
        description="Add staff logins to the web front desk, change a password, list the logins.",
    )
    actions = parser.add_subparsers(dest="staff_command", metavar="ACTION", required=True)
    secret = argparse.ArgumentParser(add_help=False)
    secret.add_argument(
        "--password-stdin", action="store_true", help="read the password as one line from standard input"
    )
    add = actions.add_parser(
        "add",
        parents=[secret],
        help="add a desk login",
        description="Add a login for staff member NAME (made in the compound if nobody has that name). "
        "clerk: the front desk's work; manager: also revokes binding codes others issued.",
    )
    add.add_argument("name", help="the name typed at the login page, e.g. 张丽")
    add.add_argument("--role", choices=tuple(ROLES), required=True)
    add.set_defaults(handler=run_add)
    passwd = actions.add_parser(
        "passwd",
        parents=[secret],
        help="set a new password (also lifts a lockout and logs the account out everywhere)",
    )
    passwd.add_argument("name")
    passwd.set_defaults(handler=run_passwd)
    link = actions.add_parser(
        "link",
        help="link a staff member to their WeCom userid (the WeCom app's commands and buttons)",
        description="Link staff member NAME to the WeCom (企业微信) userid they use the app from "
        "(通讯录 > 成员 > 账号). --wecom '' removes the link.",
    )
    link.add_argument("name", help="the staff member's name, e.g. 王师傅")
    link.add_argument("--wecom", required=True, metavar="USERID", help="the member's WeCom userid")
    link.set_defaults(handler=run_link)
    listing = actions.add_parser("list", help="list the desk logins")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=run_list)


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("密码: ")
    if getpass.getpass("再输入一次: ") != first:
        raise AccountError("两次输入的密码不一致")
    return first


def run_add(args: argparse.Namespace) -> int:
    return _write(args, add=True)


def run_passwd(args: argparse.Namespace) -> int:
    return _write(args, add=False)


def _write(args: argparse.Namespace, add: bool) -> int:
    def work(app: App) -> int:
        password = read_password(args.password_stdin)
        with unit_of_work(app.sessions) as store:
            if add:
                compound = store.compound()
                account = add_account(store, compound, args.name, args.role, password, app.clock.now())
                role = ROLE_NAMES[account.role]
                print(f"已添加前台账号 {account.login}（{role}，员工编号 {account.staff_id}）")
            else:
                account = set_password(store, args.name, password)
                print(f"已为 {account.login} 设置新密码，原有登录已全部退出")
        return 0

    return with_app(work, (AccountError, LookupError))


def run_list(args: argparse.Namespace) -> int:
    def work(app: App) -> int:
        with unit_of_work(app.sessions) as store:
            now = app.clock.now()
            rows = [
                {
                    "login": a.login,
                    "role": a.role,
                    "staff_id": a.staff_id,
                    "active": a.active,
                    "locked": a.locked_until is not None and a.locked_until > now,
                    "last_login_at": local(a.last_login_at).isoformat() if a.last_login_at else None,
                }
                for a in accounts(store)
            ]
        if args.json:
            print(json.dumps(rows, ensure_ascii=False, indent=2))
        for row in [] if args.json else rows:
            state = "（已锁定）" if row["locked"] else ""
            print(
                f"{row['login']}\t{ROLE_NAMES[str(row['role'])]}\t{row['last_login_at'] or '未登录过'}{state}"
            )
        return 0

    return with_app(work)


def run_link(args: argparse.Namespace) -> int:
    def work(app: App) -> int:
        with unit_of_work(app.sessions) as store:
            print(link_wecom(store, args.name, args.wecom.strip()))
        return 0

    return with_app(work, (LookupError,))


def link_wecom(store: Store, name: str, user_id: str) -> str:
    """Set (or with "" clear) ``name``'s WeCom userid; one userid is one staff member."""
    staff = store.staff_member(name)
    if staff is None:
        raise LookupError(f"没有在岗员工 {name}")
    if len(user_id) > 64 or any(c.isspace() for c in user_id):
        raise LookupError(f"{user_id!r} 不是企业微信账号（userid）")
    holder = store.staff_by_wecom(user_id) if user_id else None
    if holder is not None and holder.id != staff.id:
        raise LookupError(f"企业微信账号 {user_id} 已绑定给 {holder.name}")
    staff.wecom_user_id = user_id or None
    if not user_id:
        return f"已解除 {staff.name} 的企业微信绑定"
    return f"已将 {staff.name} 绑定到企业微信账号 {user_id}"
