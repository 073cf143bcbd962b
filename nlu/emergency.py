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
# A lift that will not let people out.
_STUCK = r"(?:卡|停|坏|不动|故障|下坠|掉|打不开|开不了|开不开|断电|没电)"

# One alternation per kind of emergency; the group name says which kind matched.
_CUES: dict[str, str] = {
    "fire": "|".join(
        (
            r"(?<!打不)(?<!点不)(?<!打)(?<!点)[着著]火",  # 燃气灶打不着火 is a repair
            r"起火|失火|火灾|火烛|烧起来|(?:烧|锅)着了|火很大|大火|火(?:一直|还在)烧|爆炸",
            r"冒火花|烧焦|焦糊味|(?:有|冒|窜)(?:火苗|明火)",
        )
    ),
    "smoke": "|".join(
        (
            r"冒(?:黑|白)?烟|浓烟|黑烟|烟雾(?!报警|探测|感应)|好大的烟|烟(?:很|好|太)大|闻到.{0,2}烟味",
            r"(?:全|都|满)是烟|呛人?的烟|烟.{0,2}呛",
        )
    ),
    "gas": "|".join(
        (
            rf"{_GAS}.{{0,2}}(?:味|泄漏|泄露|漏了|漏气)",
            rf"漏(?:煤气|燃气|天然气)|闻到.{{0,4}}{_GAS}|热水器漏气",
            rf"{_GAS}.{{0,8}}(?:有味|味道|臭味|嘶嘶|呲呲|在漏|一直漏|漏个不停)",  # hissing, a smell or a leak
        )
    ),
    "lift": "|".join(
        (
            rf"困在.{{0,3}}{_LIFT}|被困(?!扰)|困咗|(?:关|卡|锁)在{_LIFT}",
            rf"{_LIFT}(?:里|里面)?(?:关|困|锁)(?:了|住|着)",
            rf"{_LIFT}.{{0,4}}(?:困人|困住|关人)|{_LIFT}.{{0,16}}(?:出不来|出不去|出唔到)",
            # 电梯卡住了 里面有好几个人 / 电梯停电了 我女儿还在里面 / 我在电梯里 电梯不动了
            rf"{_LIFT}.{{0,6}}{_STUCK}.{{0,8}}(?:里面|里头|里)还?有?(?:好几|几|两|三|一|\d)?个?(?:人|老人|小孩|孩子)",
            rf"{_LIFT}.{{0,8}}{_STUCK}.{{0,12}}(?:在|关在|困在|卡在)里(?:面|头|边)",
            rf"{_LIFT}.{{0,8}}我在里面|我在{_LIFT}里.{{0,8}}{_STUCK}",
            rf"{_LIFT}.{{0,4}}(?:下坠|坠落|掉下去|冲顶)",
        )
    ),
    "flood": "|".join(
        (
            r"(?:水管|水喉|管子|管道|水龙头|暖气管|暖气片)(?:爆|炸|裂开|爆裂|裂了)|爆(?:管|水管|水喉)",
            r"喷了?一地|喷得(?:到处|满屋|满地|一地)|水浸|浸水|浸咗",
            r"(?:天花板|吊顶|顶上|灯).{0,4}(?:哗哗|流下来|淌下来|灌下来)",
            r"(?:水管|水喉|管子|管道|水龙头|龙头|阀门|接口)(?:在|一直)?(?:喷水|飙水|呲水)",
            r"(?:家里|家|屋里|屋企|一楼|车库|地库|地下室)(?:里)?.{0,2}(?:淹|进水|进了.{0,3}水)",
            r"水漫|漫水|水淹|淹了|淹水|积水(?:好|很|太)深|(?:车|家具|东西)都泡了|(?:天花板|吊顶)(?:被)?(?:泡)?塌",
            r"(?:往下|向下)(?:灌|喷|流|冲|淌)|(?:像|跟|和|好似)(?:下|落)雨|水.{0,3}(?:往外喷|止不住|停不下来)",
        )
    ),
    "intrusion": "|".join(
        (
            r"撬|入室|盗窃|小偷(?!多|很多|太多)|进贼|有贼|贼入屋|被盗|抢劫|抢(?:包|东西|手机|钱)",
            r"持刀|拿着?刀|动刀|砍人|捅人|行凶",
            r"(?:正|正在|在)偷|(?:砸|踹)(?:我家|我们家|我)的?门|被人?跟踪|尾随",
            r"(?:家里|家|屋里|屋企)(?:里)?被偷|(?:家里|屋里|东西|抽屉|柜子).{0,2}被翻|遭(?:了)?(?:贼|小偷)",
            r"(?:试|拧|扭|撞)(?:我家|我们家)的?(?:门|锁)",
            r"(?:翻|爬)(?:进|入|上)?(?:我家|家里|屋里|别人家|隔壁家?)|从(?:阳台|窗户?)(?:翻|爬)进",
        )
    ),
    "medical": "|".join(
        (
            r"晕倒|昏迷|昏倒|晕过去|晕咗|不省人事|急救|救护车|(?:打|叫|拨|喊)120|没(?:有)?呼吸",
            r"心脏病|中风|抽搐|大出血|见血|摔倒.{0,4}起不来|呼吸机|触电|喘不上气",
            r"(?:一直|在|还在)流血|流了(?:好|很)?多血|血流不止|满(?:头|脸|身)(?:是)?血|头破血流",
            r"制氧机|吸氧|叫不醒|说不出话|(?:胸口|心口)(?:疼|痛|闷)|口吐白沫|没(?:有)?意识",
            r"(?:独居|一个人住|老人).{0,12}(?:敲门|打电话|电话)(?:也)?(?:没|不)(?:反应|人应|人接|应)",
            r"(?:楼上|楼梯|窗户|阳台).{0,3}(?:摔|掉|跌)下来|一动不动|倒地不起|跳楼|爬(?:到|出)窗|栏杆外",
            r"突然倒(?:在|地|了)|倒在(?:地上|卫生间|厕所|浴室)|摔.{0,6}(?:起不来|动不了|站不起来)|溺水|落水|出事了",
            r"叫(?:他|她|人)?(?:没反应|不应)|流血了|吐血|(?:好|很)多血|一地(?:的)?血",
            r"被(?:人)?(?:打伤|砍|捅|刺)|被车撞",
            r"(?:想|要)跳(?:楼|下去)|好像要跳|要生了|羊水破了",
        )
    ),
    "help": r"救命|sos|快来人啊|来人啊|呼救",
}

_CUE = re.compile("|".join(f"(?P<{kind}>{pattern})" for kind, pattern in _CUES.items()))

# Anywhere in the text: smoke that comes from a neighbour's cigarette or kitchen is a complaint.
_UNLESS: dict[str, re.Pattern[str]] = {
    "smoke": re.compile(r"抽烟|吸烟|油烟|烟头|香烟|烧烤|二手烟"),
    # Nobody inside: a stuck lift is a repair. Only these exact statements ("没人来救" is not one).
    "lift": re.compile(r"(?:没|没有|无)人(?:在里面|在里头|被困|困住|困在|关在)|里(?:面|头)(?:没|没有|无)人"),
}

# Before a cue: the resident talks about the past, a hypothetical, or prevention.
_BEFORE = re.compile(
    r"(?:上次|上回|之前|以前|去年|上个月|上周|前几天|那次|如果|万一|假如|要是|假设|预防|防止|防范)"
)
_BEFORE_WINDOW = 6
# Directly before a cue: negation ("没有冒烟").
_NEGATION = re.compile(r"(?:没有|没|不是|并非|不会)$")
# Right after a cue: talk *about* the event rather than the event itself.
_AFTER = re.compile(r"^.{0,2}(?:的事|那件事|的问题|的话|演习|演练|预案|报警器|隐患|风险|险|应急|知识)")

# Everyday matters the trade does not treat as emergencies: a power cut or no water at home (an
# urgent repair), a smelly drain (not gas), a stuck lift with nobody inside, a neighbour's cigarette
# or kitchen smoke (a complaint), a stove that will not light. Without a live cue a classifier may
# not call them one, unless the rest of the text names what would make them dangerous after all
# (a person, an injury, fire; for gas appliances a smell or hissing).
_AT_RISK = re.compile(
    r"人|孩|婴|老太|老爷|妈|爸|奶奶|爷爷|外婆|外公|姥"  # someone who may be in danger
    r"|病|血|伤|疼|痛|晕|昏|呼吸|喘|氧|摔|救|火|烟"
)
_HARM = re.compile(r"火|着了|烧|焦|血|伤|晕|昏|呼吸|喘|救")
_GAS_LEAK = re.compile(r"味|漏|嘶|呲|烟|晕|爆|炸|救|着火|起火")
_EVERYDAY: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    (re.compile(r"停电|断电|没电|冇晒?电|跳闸|电闸|空开|停水|没水|冇晒?水"), _AT_RISK),
    (re.compile(r"(?:地漏|下水道?|马桶|化粪池|排水|水槽).{0,6}(?:臭|异味|怪味|返味|反味)"), _AT_RISK),
    (re.compile(r"(?:没|没有|无)人(?:在里面|在里头|被困|困住)|里(?:面|头)(?:没|没有|无)人"), _AT_RISK),
    (re.compile(r"抽烟|吸烟|烟头|二手烟|油烟|烧烤"), _HARM),
    # A gas stove or water heater that will not light is a repair; a leak is told by smell or hissing.
    (
        re.compile(r"(?:灶|热水器).{0,6}(?:打不着|点不着|不着火|点火|火苗|火(?:很|特别|太)小|熄火|灭)"),
        _GAS_LEAK,
    ),
)

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


def everyday_fault(normalised: str) -> bool:
    """True when the text reports an everyday fault (停电, 没水, 地漏返臭, 电梯里没人) and nothing that
    puts anyone at risk: a classifier's "emergency" is then overruled (live cues still win)."""
    text = normalised[:MAX_SCAN_CHARS]
    for matter, danger in _EVERYDAY:
        found = matter.search(text)
        # The matter itself is cut out first: 没人被困 names a person only to say nobody is.
        if found is not None and danger.search(text[: found.start()] + text[found.end() :]) is None:
            return True
    return False


def _defused(text: str, start: int, end: int) -> bool:
    before = text[max(0, start - _BEFORE_WINDOW) : start]
    return bool(_BEFORE.search(before) or _NEGATION.search(before) or _AFTER.match(text[end:]))
