"""Rules that recognise an obvious emergency, whatever a classifier thinks.

An emergency skips the dialog and pages the duty staff, so a missed one is far worse than a false
alarm: the cues are broad, and only clear signs that the resident is *not* reporting something
happening now (past events, hypotheticals, negation, safety equipment, risk talk) defuse a cue.
Works on normalised text (Simplified, lower case); no third-party imports, so any backend can use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LIFT = r"(?:电梯|𨋢|䢂)"
_GAS = r"(?:煤气|燃气|天然气|液化气)"

# One alternation per kind of emergency; the group name says which kind matched.
_CUES: dict[str, str] = {
    "fire": "|".join(
        (
            r"(?<!打不)(?<!点不)(?<!打)(?<!点)[着著]火",  # 燃气灶打不着火 is a repair
            r"起火|失火|火灾|火烛|烧起来|火很大|大火|火(?:一直|还在)烧|爆炸",
            r"冒火花|烧焦|焦糊味",
        )
    ),
    "smoke": r"冒(?:黑|白)?烟|浓烟|黑烟|烟雾(?!报警|探测|感应)|好大的烟|烟(?:很|好|太)大|闻到.{0,2}烟味",
    "gas": "|".join(
        (
            rf"{_GAS}.{{0,2}}(?:味|泄漏|泄露|漏了|漏气)",
            rf"漏(?:煤气|燃气|天然气)|闻到.{{0,4}}{_GAS}|热水器漏气",
            rf"{_GAS}.{{0,8}}(?:有味|味道|臭味|嘶嘶|呲呲)",  # hissing or a smell near the gas
        )
    ),
    "lift": "|".join(
        (
            rf"困在.{{0,3}}{_LIFT}|被困(?!扰)|困咗|(?:关|卡|锁)在{_LIFT}",
            rf"{_LIFT}.{{0,4}}(?:困人|困住|关人|出不来|出不去|出唔到)",
            rf"{_LIFT}.{{0,6}}(?:卡|停|坏|不动|故障|下坠|掉).{{0,8}}(?:里面|里头|里)还?有人",
            rf"{_LIFT}.{{0,8}}我在里面",
            rf"{_LIFT}.{{0,4}}(?:下坠|坠落|掉下去|冲顶)",
        )
    ),
    "flood": "|".join(
        (
            r"(?:水管|水喉|管子|管道|水龙头)(?:爆|裂开|爆裂)|爆(?:管|水管|水喉)",
            r"(?:家里|家|屋里|屋企|一楼|车库|地库|地下室)(?:里)?.{0,2}(?:淹|进水|进了.{0,3}水)",
            r"水漫|漫水|水淹|淹了|淹水",
            r"(?:往下|向下)(?:灌|喷|流|冲|淌)|像下雨|水.{0,3}(?:往外喷|止不住|停不下来)",
        )
    ),
    "intrusion": "|".join(
        (
            r"撬|入室|盗窃|小偷(?!多|很多|太多)|进贼|有贼|贼入屋|被盗|抢劫|持刀|拿着刀",
            r"(?:翻|爬)(?:进|入|上)?(?:我家|家里|屋里|别人家|隔壁家?)|从(?:阳台|窗户?)(?:翻|爬)进",
        )
    ),
    "medical": "|".join(
        (
            r"晕倒|昏迷|昏倒|晕过去|晕咗|不省人事|急救|救护车|(?:打|叫|拨|喊)120|没(?:有)?呼吸",
            r"心脏病|中风|抽搐|大出血|见血|摔倒.{0,4}起不来|呼吸机|触电|喘不上气",
            r"(?:楼上|楼梯|窗户|阳台).{0,3}(?:摔|掉|跌)下来|一动不动|倒地不起|跳楼|爬(?:到|出)窗",
        )
    ),
    "help": r"救命|sos|快来人啊|来人啊",
}

_CUE = re.compile("|".join(f"(?P<{kind}>{pattern})" for kind, pattern in _CUES.items()))

# Anywhere in the text: smoke that comes from a neighbour's cigarette or kitchen is a complaint.
_UNLESS: dict[str, re.Pattern[str]] = {"smoke": re.compile(r"抽烟|吸烟|油烟|烟头|香烟|烧烤|二手烟")}

# Before a cue: the resident talks about the past, a hypothetical, or prevention.
_BEFORE = re.compile(
    r"(?:上次|上回|之前|以前|去年|上个月|上周|前几天|那次|如果|万一|假如|要是|假设|预防|防止|防范)"
)
_BEFORE_WINDOW = 6
# Directly before a cue: negation ("没有冒烟").
_NEGATION = re.compile(r"(?:没有|没|不是|并非|不会)$")
# Right after a cue: talk *about* the event rather than the event itself.
_AFTER = re.compile(r"^.{0,2}(?:的事|那件事|的问题|的话|演习|演练|预案|报警器|隐患|风险|险|应急|知识)")

MAX_SCAN_CHARS = 500  # a flood of text is scanned only this far; emergencies are said up front


@dataclass(frozen=True, slots=True)
class Cue:
    kind: str
    text: str
    start: int
    defused: bool


def find_cues(normalised: str) -> list[Cue]:
    """Every emergency cue in ``normalised`` text, each marked defused or live."""
    text = normalised[:MAX_SCAN_CHARS]
    cues = []
    for match in _CUE.finditer(text):
        kind = match.lastgroup or ""
        unless = _UNLESS.get(kind)
        defused = bool(unless and unless.search(text)) or _defused(text, match.start(), match.end())
        cues.append(Cue(kind, match.group(), match.start(), defused))
    return cues


def is_emergency(normalised: str) -> bool:
    """True when at least one cue is live."""
    return any(not cue.defused for cue in find_cues(normalised))


def _defused(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - _BEFORE_WINDOW) : start]
    return bool(_BEFORE.search(before) or _NEGATION.search(before) or _AFTER.match(text[end:]))
