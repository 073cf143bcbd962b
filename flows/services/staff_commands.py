"""Commands staff type in their group chat: ``/huifang`` (the result of a phone callback, 回访),
``/notice`` (a notice to residents) and ``/help``.

Channel-neutral: ``parse_command`` reads the text, ``run`` does the work in the caller's transaction
and returns the words for the group. The channel (``bot/channels/staff_group.py``) checks that the
sender is registered staff and that a re-delivered message is done once.

* ``/huifang BX-20261123-0001 已解决 5 态度5 质量5 效率4 师傅很负责``: structured like the chat
  callback: solved or not, overall score, the three part scores, a comment; recorded by
  ``flows.services.record_rating`` (unsolved, or a score of ``reopen_score_max`` or less, reopens).
* ``/notice 3栋 明天9:00-12:00 停水 水箱清洗``: who (全体, 3栋, 3-2-1501:1802 as in
  ``propbot broadcast``), when, what; outage / pest control / event / greeting / plain notice by its
  words; sent by ``flows.services.send_notice``. ``/notice list`` and ``/notice cancel 7`` as in the CLI.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from data.clock import local
from data.models import Compound, Staff
from data.store import Store, row_id
from flows import services
from flows.domain.errors import ActionError, NotFound
from flows.domain.tickets import format_time, is_whole_days
from flows.jobs.broadcasts import NoticeError, NoticeRequest, UnitRange, notices
from flows.services import Actor, Rating
from nlu.entities import extract
from nlu.types import TimeSpan

NAMES = {"huifang": "huifang", "callback": "huifang", "notice": "notice", "tongzhi": "notice", "help": "help"}
# Full-width digits and signs as phone keyboards type them; other punctuation stays as written.
FULL_WIDTH = str.maketrans("０１２３４５６７８９：－～．／", "0123456789:-~./")
COMMAND = re.compile(r"^/([A-Za-z_]{1,32})(?:@([A-Za-z0-9_]{1,64}))?(?=\s|$)(.*)$", re.DOTALL)


class CommandError(ActionError):
    """Bad input or a refused action: the text goes back to the group as is."""


@dataclass(frozen=True)
class Command:
    name: str  # huifang | notice | help; "" for a command this bot does not know
    typed: str  # as typed, without the leading "/" and the bot's name
    args: str
    addressed: bool  # "/cmd@ThisBot": meant for us even if unknown


def parse_command(text: str, bot_username: str | None) -> Command | None:
    """``/cmd args`` or ``/cmd@ThisBot args``; None for anything else, including commands for other bots."""
    match = COMMAND.match(text.strip())
    if match is None:
        return None
    typed, target, args = match.group(1).lower(), match.group(2), match.group(3).strip()
    if target is not None and (bot_username is None or target.lower() != bot_username.lower()):
        return None  # /cmd@OtherBot
    return Command(NAMES.get(typed, ""), typed, args, addressed=target is not None)


def run(store: Store, staff: Staff, command: Command, now: datetime, card_ticket: str | None = None) -> str:
    """Carry out a command for ``staff``; the answer for the group. Raises ``ActionError``
    (``CommandError`` for input it cannot read)."""
    compound = store.compound(staff.compound_id)
    if command.name == "huifang":
        return phone_callback(store, staff, parse_callback(command.args, card_ticket), now)
    if command.name == "notice":
        return notice_command(store, compound, staff, command.args, now)
    if command.name == "help":
        return help_text(store, compound)
    raise CommandError(f"没有 /{command.typed} 这个命令。发送 /help 查看可用的命令。")


def help_text(store: Store, compound: Compound) -> str:
    reopen_max = store.settings(compound).reopen_score_max
    return (
        "员工群命令（仅限登记在册的工作人员）：\n"
        "/huifang 单号 已解决|未解决 总分 [态度N 质量N 效率N] [留言]\n"
        "  记录电话回访结果，分数 1-5。例：\n"
        "  /huifang BX-20261123-0001 已解决 5 态度5 质量5 效率4 师傅很负责\n"
        f"  未解决或总分 ≤{reopen_max} 分会重新打开工单、交回原师傅跟进。回复工单卡片时可省略单号。\n"
        "/notice 对象 时间 内容 —— 给住户发通知\n"
        "  对象：全体、3栋（可写多个）、3-2-1501:1802（单元范围，同 propbot broadcast）。例：\n"
        "  /notice 3栋 明天9:00-12:00 停水 二次供水水箱清洗\n"
        "  /notice 全体 11月28日 9:00 消杀 公共区域除四害（提前一天发出）\n"
        "  /notice 全体 12月5日 15:00 活动 业主恳谈会 会所二楼（提前一周发出）\n"
        "  /notice 5栋 电梯今天下午维保，请走楼梯（普通通知，立即发出）\n"
        "  /notice 全体 问候 中秋快乐（只发给订阅了节日问候的住户）\n"
        "  免打扰时段的通知会顺延到早上；对象前加“紧急”则立即发送。\n"
        "  /notice list 查看最近的通知，/notice cancel 编号 撤回未发出的消息。\n"
        "/help 显示本帮助\n"
        "工单卡片：认领、完成、升级、转派按钮；回复卡片即可把话转达给居民。"
    )


# -- /huifang: the result of a phone callback -------------------------------------------------------
HUIFANG_USAGE = (
    "用法：/huifang 单号 已解决|未解决 总分1-5 [态度N 质量N 效率N] [留言]\n"
    "例：/huifang BX-20261123-0001 已解决 5 态度5 质量5 效率4 师傅很负责"
)
TICKET = re.compile(r"(?<![A-Za-z0-9])([A-Za-z]{2})-?(\d{8})-?(\d{4})(?!\d)")
UNSOLVED = re.compile(r"还?没有?解决|未解决|没修好|未修好|还是不行|unsolved", re.IGNORECASE)
SOLVED = re.compile(r"已经?解决了?|解决了|已修好|修好了|solved|解决", re.IGNORECASE)
PART_SCORES = re.compile(r"(?:服务)?(态度|质量|效率|速度)\s*[:：]?\s*(\d{1,2})\s*分?")
PART_NAMES = {"态度": "attitude", "质量": "quality", "效率": "speed", "速度": "speed"}
SCORE_NAMED = re.compile(r"(?:总分|满意度|评分|打分)\s*[:：]?\s*(\d{1,2})\s*(?:分|星)?")
SCORE_MARKED = re.compile(r"(?<!\d)(\d{1,2})\s*(?:分(?!钟)|星)")
SCORE_BARE = re.compile(r"(?:^|(?<=[\s,，。;；]))(\d{1,2})(?=$|[\s,，。;；!！])")


@dataclass(frozen=True)
class CallbackResult(Rating):
    """The rating, with the ticket number it was given for."""

    number: str = ""


def parse_callback(args: str, card_ticket: str | None = None) -> CallbackResult:
    """The words after ``/huifang``; the ticket number may come from the card replied to."""
    rest = args.translate(FULL_WIDTH)
    found = TICKET.search(rest)
    if found is None and card_ticket is None:
        raise CommandError("请写上工单号。\n" + HUIFANG_USAGE)
    number = "-".join(found.groups()).upper() if found else str(card_ticket)
    rest = TICKET.sub(" ", rest, count=1)
    parts: dict[str, int] = {}
    for name, value in PART_SCORES.findall(rest):
        parts[PART_NAMES[name]] = _score(value, name)
    rest = PART_SCORES.sub(" ", rest)
    solved: bool | None = None
    for pattern, meaning in ((UNSOLVED, False), (SOLVED, True)):
        if (outcome := pattern.search(rest)) is not None:
            solved, rest = meaning, rest[: outcome.start()] + " " + rest[outcome.end() :]
            break
    score, rest = _overall(rest)
    if score is None and solved is not False:
        raise CommandError("请给出满意度总分（1-5 分）。\n" + HUIFANG_USAGE)
    comment = re.sub(r"\s+", " ", rest).strip(" ,，。;；:：")
    return CallbackResult(solved=solved, score=score, parts=parts, comment=comment, number=number)


def _overall(text: str) -> tuple[int | None, str]:
    """The overall score: "总分5" before "5分" before a lone "5"; the text without it."""
    for pattern in (SCORE_NAMED, SCORE_MARKED, SCORE_BARE):
        if (match := pattern.search(text)) is not None:
            return _score(match.group(1), "总分"), text[: match.start()] + " " + text[match.end() :]
    return None, text


def _score(value: str, what: str) -> int:
    if not 1 <= int(value) <= 5:
        raise CommandError(f"{what}应为 1-5 分，收到 {value}。\n{HUIFANG_USAGE}")
    return int(value)


def phone_callback(store: Store, staff: Staff, result: CallbackResult, now: datetime) -> str:
    ticket = store.tickets.by_number(result.number)
    if ticket is None or ticket.compound_id != staff.compound_id:  # another compound's: not ours to show
        raise NotFound(f"没有找到工单 {result.number}，请核对单号。")
    return services.record_rating(store, Actor.of(staff), ticket, result, now).text


# -- /notice: a notice to residents ---------------------------------------------------------------
NOTICE_USAGE = (
    "用法：/notice 对象 时间 内容。对象：全体、3栋、3-2-1501:1802。例：\n"
    "/notice 3栋 明天9:00-12:00 停水 二次供水水箱清洗\n"
    "发送 /help 查看更多例子。"
)
EVERYONE = frozenset({"全体", "全部", "所有", "全小区", "全体住户", "全体业主", "all"})
URGENT = frozenset({"紧急", "urgent"})
BUILDINGS = re.compile(r"\d{1,3}(?:栋|号楼|幢|座)?(?:[、,，/]\d{1,3}(?:栋|号楼|幢|座)?)*")
OUTAGE = re.compile(r"停(水|电|燃气|气)(?!梯)")  # not 停电梯
OUTAGE_UTILITY = {"水": "water", "电": "power", "气": "gas", "燃气": "gas"}
KIND_WORDS = {
    "活动": "event",
    "问候": "greeting",
    "祝福": "greeting",
    "通知": "general",
    "消杀": "pest",
}  # as a word
PEST = re.compile(r"消杀|除四害|灭鼠|灭蟑|杀虫")
EVENT = re.compile(r"活动|讲座|恳谈会|义诊|联欢|晚会")
FAR_AHEAD = timedelta(days=120)
_UNREAD_DATE = "没看懂“{body}”里的日期，请写成 11月24日 9:00-12:00 或 明天9:00-12:00。"
DATE_LEFT = re.compile(r"\d{1,2}\s*月|\d{1,2}\s*[日号](?![楼栋幢座])|\d{1,2}[./]\d{1,2}")


@dataclass
class Audience:
    everyone: bool = False
    urgent: bool = False
    buildings: list[int] = field(default_factory=list)
    units: list[UnitRange] = field(default_factory=list)


def notice_command(store: Store, compound: Compound, staff: Staff, args: str, now: datetime) -> str:
    head, _, rest = args.partition(" ")
    if head.lower() in ("list", "列表"):
        return _list(store, compound)
    if head.lower() in ("cancel", "撤回", "取消"):
        return _cancel(store, compound, staff, rest.strip(), now)
    return services.send_notice(store, Actor.of(staff), compound, parse_notice(args, now), now).text


def parse_notice(args: str, now: datetime) -> NoticeRequest:
    """``对象… [紧急] [时间] 内容`` -> the request ``create_notice`` takes."""
    words = args.split()
    audience, taken = _audience(words)
    body = " ".join(words[taken:])
    if not (audience.everyone or audience.buildings or audience.units):
        raise CommandError("请先写发给谁：全体、3栋 或 3-2-1501:1802。\n" + NOTICE_USAGE)
    if not body:
        raise CommandError("请写上通知内容。\n" + NOTICE_USAGE)
    kind, utility, body = _kind(body)
    span, text = (None, body) if kind in ("general", "greeting") else _when(body, now)
    title = ""
    if kind == "event" and " " in text:  # "业主恳谈会 会所二楼": the name, then the details
        title, _, text = text.partition(" ")
    return NoticeRequest(
        kind=kind,
        text=re.sub(r"^(?:因为?|由于)", "", text) if kind == "outage" else text,
        title=title,
        utility=utility,
        buildings=tuple(audience.buildings),
        units=tuple(audience.units),
        starts_at=span.start if span else None,
        ends_at=span.end if span and span.end > span.start else None,
        urgent=audience.urgent,
    )


def _audience(words: list[str]) -> tuple[Audience, int]:
    """The leading words that say who (and 紧急); how many words that took."""
    audience = Audience()
    for index, word in enumerate(words):
        plain = unicodedata.normalize("NFKC", word)
        if plain.lower() in EVERYONE:
            audience.everyone = True
        elif plain.lower() in URGENT:
            audience.urgent = True
        elif BUILDINGS.fullmatch(plain):
            audience.buildings += [int(n) for n in re.findall(r"\d+", plain)]
        elif re.fullmatch(r"\d+-[0-9A-Za-z:\-]+", plain):  # meant as a range: a typo is an error
            try:
                audience.units.append(UnitRange.parse(plain))
            except NoticeError as exc:
                raise CommandError(str(exc)) from exc
        else:
            return _checked(audience), index
    return _checked(audience), len(words)


def _checked(audience: Audience) -> Audience:
    if audience.everyone and (audience.buildings or audience.units):
        raise CommandError("“全体”和具体楼栋/单元只能选一种。")
    return audience


def _kind(body: str) -> tuple[str, str | None, str]:
    """Outage (停水/停电/停气), pest control, event, greeting or a plain notice; the body without the
    word that said so (the notice's own wording says it again)."""
    if (outage := OUTAGE.search(body)) is not None:
        return "outage", OUTAGE_UTILITY[outage.group(1)], _cut(body, outage.start(), outage.end())
    words = body.split(" ")
    for index, word in enumerate(words):
        if word in KIND_WORDS:
            return KIND_WORDS[word], None, " ".join(words[:index] + words[index + 1 :])
    if PEST.search(body):
        return "pest", None, body
    if EVENT.search(body):
        return "event", None, body
    return "general", None, body


def _when(body: str, now: datetime) -> tuple[TimeSpan, str]:
    """The first time named in the body (it must have a clock time) and the body without it."""
    spaced = body.translate(FULL_WIDTH)
    times = [e for e in extract(spaced, now) if e.type == "datetime"]
    if not times and DATE_LEFT.search(spaced):  # 11月31日: no such day
        raise CommandError(_UNREAD_DATE.format(body=body))
    if not times:
        raise CommandError("请写上时间，例如 明天9:00-12:00 或 11月28日 9:00。\n" + NOTICE_USAGE)
    span: TimeSpan = times[0].value
    start = spaced.find(times[0].text)
    rest = _cut(spaced, start, start + len(times[0].text)) if start >= 0 else spaced
    if DATE_LEFT.search(rest):  # a date the parser did not take: better ask than announce the wrong day
        raise CommandError(_UNREAD_DATE.format(body=body))
    if is_whole_days(span.start, span.end):
        raise CommandError("请写明几点开始，例如 明天9:00-12:00。")
    if (span.end if span.end > span.start else span.start) < now:
        raise CommandError(f"时间 {format_time(span.start)} 已经过去了，请核对日期。")
    if span.start > now + FAR_AHEAD:  # 2027年11月20日: a slip of the year
        raise CommandError(f"时间 {local(span.start):%Y年%m月%d日} 太远了，请核对日期。")
    return span, re.sub(r"^(?:起|开始)\s*", "", rest)


def _cut(text: str, start: int, end: int) -> str:
    return re.sub(r"\s+", " ", f"{text[:start]} {text[end:]}").strip(" ,，。;；:：")


def _list(store: Store, compound: Compound) -> str:
    found = notices(store, compound, limit=10)
    if not found:
        return "还没有发过通知。"
    lines = ["最近的通知："]
    for notice in found:
        state = "已撤回" if notice.cancelled_at else f"{notice.recipients} 个账号"
        lines.append(f"#{notice.id} {notice.title} · {format_time(notice.send_at)} · {state}")
    return "\n".join(lines)


def _cancel(store: Store, compound: Compound, staff: Staff, raw: str, now: datetime) -> str:
    number = raw.lstrip("#")
    if not (number.isascii() and number.isdigit()):
        raise CommandError("用法：/notice cancel 通知编号（编号见 /notice list）")
    notice_id = row_id(number)  # None past the ids the table can hold: no such notice
    if notice_id is None:
        raise CommandError(f"没有编号为 {number} 的通知。")
    return services.cancel_notice(store, Actor.of(staff), compound, notice_id, now).text
