"""Rules that recognise an obvious emergency, whatever a classifier thinks.

An emergency skips the dialog and pages the duty staff, so a missed one is far worse than a false
alarm: the cues are broad, and only clear signs that the resident is *not* reporting something
happening now (past events, hypotheticals, negation, safety equipment, risk talk) defuse a cue.
Works on normalised text (Simplified, lower case); no third-party imports, so any backend can use it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LIFT = r"(?:电梯|𨋢|䢂|lift|升降机|点梯|店梯)"
_GAS = r"(?:煤气|燃气|天然气|液化气|瓦斯)"
# Someone who cannot look after themselves.
_CHILD = r"(?:孩子|小孩|细路|仔|女儿|儿子|囡|宝宝|婴儿|bb|小朋友)"
_PERSON = rf"(?:人|{_CHILD}|老人|婆|伯|姨|妈|爸|男|女|后生)"
# A lift that will not let people out.
_STUCK = r"(?:卡|停|坏|不上不下|不动|唔郁|故障|下坠|掉|跌|打不开|开不了|开不开|开唔到|断电|没电)"

# One alternation per kind of emergency; the group name says which kind matched.
_CUES: dict[str, str] = {
    "fire": "|".join(
        (
            r"(?<![不唔])(?<!打)(?<!点)[着著]火",  # 燃气灶打不着火, 撳唔着火 are repairs
            r"起火|失火|火灾|火烛|烧起来|(?:烧|锅)着了|烧[着著]|火(?:很|挺|好|太|特别)大|大火|火(?:一直|还在)烧|爆炸",
            r"[着著](?:起来|咗火)|冒火花|烧焦|焦糊味|燶味|(?:有|冒|窜)(?:火苗|明火)|冒火(?!星)|烧紧|烧起嚟|火苗.{0,4}(?:蹿|窜|往上)",
        )
    ),
    "smoke": "|".join(
        (
            r"冒(?:黑|白)?烟|浓烟|黑烟|烟雾(?!报警|探测|感应|侦测|检测|传感)|好大的烟|烟(?:很|好|太)大|闻到.{0,2}烟味",
            r"烟.{0,4}(?:攻上|攻入|攻晒|涌进|灌进)",
            r"(?:全|都|满)是烟|呛人?的烟|烟.{0,2}呛",
        )
    ),
    "gas": "|".join(
        (
            rf"{_GAS}.{{0,2}}(?:味|泄漏|泄露|漏了|漏气)",
            rf"漏(?:煤气|燃气|天然气)|闻到.{{0,4}}{_GAS}|热水器漏气",
            rf"{_GAS}.{{0,8}}(?:有味|味道|臭味|嘶嘶|呲呲|在漏|一直漏|漏个不停)",  # hissing, a smell or a leak
            # a gas appliance that leaks (不是漏气 is defused as a negation), rotten eggs, petrol
            r"漏气|冒气|拧不灭|臭鸡蛋.{0,2}味|煤起味|燃气管.{0,4}(?:破|断|裂)|汽油味|漏油.{0,10}(?:抽烟|抽菸|火)",
            r"一氧化碳|煤气中毒|(?:热水器|热水炉|冲凉|洗澡).{0,12}(?:头.{0,2}晕|想吐|想呕|无力|冇晒力)",
        )
    ),
    "lift": "|".join(
        (
            rf"困在.{{0,3}}{_LIFT}|被困(?!扰)|困咗|(?:关|卡|锁)在{_LIFT}",
            rf"{_LIFT}(?:里|里面)?(?:关|困|锁)(?:了|住|着)",
            rf"{_LIFT}.{{0,6}}(?:里|里面|里头)有人.{{0,6}}(?:出不|困|关|卡|哭|喊|叫|晕)|有人被关(?:住|在)|冇{_LIFT}厢|没有轿厢|{_LIFT}槽|{_LIFT}.{{0,4}}(?:困人|困住|关人)|{_LIFT}.{{0,40}}(?:出不来|出不去|出唔到)",
            # 电梯卡住了 里面有好几个人 / 电梯停电了 我女儿还在里面 / 我在电梯里 电梯不动了
            rf"{_LIFT}.{{0,20}}{_STUCK}.{{0,8}}(?:里面|里头|里)还?有?(?:好几|几|两|三|一|\d)?个?(?:人|老人|小孩|孩子)",
            rf"{_LIFT}.{{0,20}}{_STUCK}.{{0,30}}(?:在|关在|困在|卡在|喺)(?:里|入)(?:面|头|边)",
            rf"{_LIFT}.{{0,8}}我在里面|我(?:在|响|喺).{{0,4}}{_LIFT}(?:里|入面).{{0,24}}{_STUCK}",
            rf"{_LIFT}.{{0,4}}(?:下坠|坠落|掉下去|冲顶)|差了?半层",
        )
    ),
    "flood": "|".join(
        (
            r"(?:水管|水喉|管子|管道|水龙头|暖气管|暖气片)(?:爆|炸|裂开|爆裂|裂了)|爆(?:管|水管|水喉)",
            r"喷了?一地|喷得(?:到处|满屋|满地|一地)|水浸|浸水|浸咗",
            r"(?:天花板|吊顶|顶上|灯).{0,4}(?:哗哗|流下来|淌下来|灌下来|往下淌|往下流|往下灌|喷下来|一直喷)",
            r"(?:天花|吊顶|顶上|楼上|灯).{0,8}(?:瀑布|水帘)|像瀑布|像水帘|水柱|成桶水|到处流|水(?:还在|一直|不停)涨|水位(?:还在|一直|不停)(?:涨|上涨)|蒸汽.{0,12}喷|像倒下来|倒落嚟|往下掉水(?!泥)",
            r"(?:往下滴|往下流|漏)的?水.{0,2}越来越(?:大|多)|水越(?:流|滴|漏)越大",
            r"(?:水|大水).{0,4}(?:涌进|灌进|冲进)|配电(?:间|房|箱).{0,4}(?:水|湿)|流到.{0,6}(?:电梯井|配电)|(?:水|喉).{0,6}(?:喷出嚟|喷出来|射出嚟|射出来)|大力.{0,2}(?:喷|射)出|(?:电表|电箱|电闸|电线|开关|插座|灯罩)(?:里|入面|那里|位)?.{0,4}(?:进水|冒水|滴水|流水|湿晒|在滴|装满.{0,2}水|往外冒)",
            r"水从(?:电表|电箱|电闸|插座|开关|灯)",
            r"(?:水管|水喉|管子|管道|水龙头|龙头|阀门|接口)(?:在|一直)?(?:喷水|飙水|呲水)",
            r"(?:家里|家|屋里|屋企|一楼|车库|地库|地下室)(?:里)?.{0,2}(?:淹|进水|进了.{0,3}水)",
            r"水漫|漫水|水淹|淹了|淹水|积水(?:好|很|太)深|(?:车|家具|东西)都泡了|(?:天花板|吊顶)(?:被)?(?:泡)?塌",
            r"(?:往下|向下)(?:灌|喷|冲)|(?:像|跟|和|好似)(?:下|落)雨|水.{0,3}(?:往外喷|止不住)",
        )
    ),
    "intrusion": "|".join(
        (
            r"撬.{0,4}(?:门|锁|窗)|有人(?:在)?撬|(?:门|锁|窗).{0,2}被撬(?!坏)|(?:正在|在)撬|入室(?!内)|盗窃|(?<!防)小偷(?!多|很多|太多)|进贼|有贼|贼入屋|被盗|抢劫|抢(?:包|东西|手机)",
            r"持刀|拿着?刀|动刀|砍人|捅人|行凶",
            r"(?:正|正在|在)偷|(?:砸|踹)(?:我家|我们家|我)的?门|被人?跟踪|尾随",
            r"(?:家里|家|屋里|屋企)(?:里)?被偷|(?:家里|屋里|东西|抽屉|柜子).{0,2}被翻|遭(?:了)?(?:贼|小偷)",
            r"(?:试|拧|扭|撞)(?:我家|我们家)的?(?:门|锁)",
            r"(?:翻|爬)(?:进|入|上)?(?:我家|家里|屋里|别人家|隔壁家?)|从(?:阳台|窗户?)(?:翻|爬)进",
            r"打劫|非礼|性骚扰|摸我|一直跟(?:着|在|住)我|跟(?:着|住)我(?!说|讲|们|一起)|(?:唔识|不认识|陌生)(?:嘅|的)?人(?:喺|在).{0,4}(?:厅|屋|家)|跟(?:着|住|在)我(?:闺女|女儿|孩子|老婆|个女|个仔)|被.{0,4}人跟着",
            r"有人.{0,6}偷.{0,10}(?:现在|还在|撞见)|开我(?:家|屋企)(?:的)?门",
            r"(?:陌生|可疑)(?:男人|人|男子).{0,12}跟(?:在|住|着).{0,6}(?:小姑娘|女孩|女仔|小朋友|孩子|小孩|女生|女人|女的)",
            r"(?:家里|屋里|屋企)进(?:了)?人|爬进去|翻.{0,6}(?:防盗窗|窗花|阳台)|弄锁|踢.{0,4}门|踹.{0,2}门",
            r"泼汽油|(?:一把火|把火|放把火)(?:烧|点)|烧死|同归于尽|(?:要|话要|说要)(?:杀|烧|斩|砍|劈|打死|炸)(?!树|枝)|杀人|打死人|放火|纵火|烧咗成",
            r"(?:攞|拿|揸)(?:咗|着|住)?.{0,4}刀|刀.{0,6}(?:指住|指着|挥|追)|动手|起冲突.{0,10}(?:刀|打|伤)|按在地上打|追着.{0,6}打|(?:正在|在)打架|打起来了|(?:拿着?|揸住|手揸|提着).{0,4}(?:铁棍|铁通|锤|酒瓶|斧|刀)",
        )
    ),
    "medical": "|".join(
        (
            r"晕倒|昏迷|昏倒|晕过去|晕咗|不省人事|急救|救护车|(?:打|叫|拨|喊)120|没(?:有)?呼吸",
            r"心脏病|中风|抽搐|大出血|见血|摔倒.{0,4}起不来|呼吸机|触电|喘不上气",
            r"(?:一直|在|还在)流血|流了(?:好|很)?多血|血流不止|满(?:头|脸|身)(?:是)?血|头破血流",
            r"制氧机|吸氧|叫不醒|说不出话|(?:胸口|心口).{0,2}(?:疼|痛|闷)|好难呼吸|呼吸困难|抖唔到气|透唔到气|喘不过气|口吐白沫|没(?:有)?意识",
            r"(?:独居|一个人住|老人).{0,12}(?:敲门|打电话|电话)(?:也)?(?:没|不)(?:反应|人应|人接|应)",
            r"(?:楼上|楼梯|窗户|阳台).{0,3}(?:摔|掉|跌)下来|一动不动|倒地不起|跳楼|爬(?:到|出)窗|栏杆外",
            r"突然倒(?:在|地|了)|倒在(?:地上|卫生间|厕所|浴室)|摔.{0,6}(?:起不来|动不了|站不起来)|溺水|落水(?!管|头|口|渠)|出事了",
            r"叫(?:他|她|人)?(?:没反应|不应)|流血了|吐血|(?:好|很)多血|一地(?:的)?血",
            rf"被(?:人)?(?:打伤|砍|捅|刺)|{_PERSON}.{{0,2}}被车撞",
            r"(?:想|要)跳(?:楼|下去)|好像要跳|要生了|羊水破了",
            r"不想活|轻生|自杀|(?<![基车岗油驿])(?:站|坐|爬)(?:在|到|咗喺)?.{0,6}(?:楼顶|天台|顶楼|窗台|窗外|窗户外|女儿墙|石壆|栏杆)|扒着窗",
            rf"(?:窗|阳台|栏杆|女儿墙|石壆|天台|楼顶)户?外(?:面|边)?(?:有|挂着|站着|坐着)(?:个|一个)?{_PERSON}|脚(?:挂|吊)|挂着.{{0,3}}{_PERSON}",
            r"抽筋|发紫|(?:手|脚|头|手指).{0,6}(?:卡住|拔不出来)|烫伤|烧伤|被夹|夹住.{0,8}(?:人|手|脚|头)|夹到人|被电(?:了|到)|电了一下|地上(?:还)?有电|烧到.{0,2}(?:39|40|41|四十)|嘴(?:巴)?歪|说话.{0,4}说不清|讲嘢唔清|全身无力|起唔到身",
            r"幽闭恐惧|(?<!呼)叫.{0,4}(?:不应|唔应|没反应|冇反应|不出声|不答应)|躺着.{0,3}(?:一个)?人|(?:人|佢|他|工人).{0,10}吊(?:喺|在)半空",
            r"(?:老人|我妈|我爸|阿婆|阿伯|伯伯|婆婆|爷爷|奶奶|阿公|阿嬷).{0,30}(?:不接|没人接|冇人听|不开门|唔开门|不应门|唔应门|没反应|冇反应)",
            r"(?:独居|一个人住).{0,50}(?:不接|没人接|冇人听|不开门|唔开门|不应|没反应)",
            rf"(?:娃|{_CHILD}).{{0,6}}一个人(?:在|喺)(?:家|屋里|屋企|屋入面|屋内)|(?:老人|阿公|阿婆|孩子|小孩|老伯|婆婆|爷爷|奶奶|我妈|我爸|失智).{{0,10}}(?:走失|走丢)|(?:老人|阿公|阿婆|孩子|小孩|失智).{{0,20}}不见了|(?:我|人|佢|阿婆|阿伯|老人|婆婆).{{0,6}}跌咗落地|企唔返起身|起唔返身",
            r"(?:几|两|三|好几)(?:天|日).{0,4}(?:没|冇|不)(?:出门|应门|开门|开过门|见人|见到|见过|看到|下楼|落街)|(?:没|冇)应门|报纸堆|门口有.{0,6}(?:味道|臭味|怪味)",
            r"(?:独居|一个人住|独自住|我爸|我妈|阿妈|阿爸|舅舅|外婆|外公|奶奶|爷爷|伯伯|阿嬷|阿公).{0,40}"
            r"(?:联系不上|联络不上|打唔通|冇听电话|没接|没人接|冇人听|未读|没已读|冇覆)",
        )
    ),
    "child": "|".join(
        (
            rf"{_CHILD}.{{0,10}}(?:锁|关|困|反锁)(?:咗|在|住|喺)|(?:把|将)自己(?:关|锁|反锁)",
            rf"(?:车|车里|车入面).{{0,6}}(?:锁着|锁咗|困住|关着).{{0,4}}{_CHILD}|{_CHILD}.{{0,4}}(?:锁|关|困)(?:咗|在)?.{{0,2}}车",
        )
    ),
    "fall": "|".join(
        (
            rf"被(?:压|砸)(?:住|到|伤|中)|压(?:在|到|住|咗)(?:一台|一辆|一架)?车上|压(?:到|住|咗)(?:一个|个)?{_PERSON}|砸(?:到|中|伤)了?{_PERSON}",
            r"(?:晃|摇|吊|悬|耷拉|翘|拍|摆|擺|响|下垂|一直掉|往下掉|随时会掉|随时要掉|随时要飞|要飞下来).{0,30}"
            r"(?:下面|下边|楼下|底下|正下方)(?:是|系|就是|正好是|有)?.{0,8}"
            r"(?:人|行人|路|街|通道|车道|出入口|巴士站|停车场|垃圾|门口|大厅|孩子|小朋友|儿童|游乐场|学校|幼儿园)",
            r"(?:玻璃|瓷砖|磁砖|外墙|石屎|铁皮).{0,4}一直(?:往下)?掉|(?:铁皮|屋顶|招牌|广告牌|棚).{0,10}(?:飞出去|吹飞|飞走|掀飞)",
            r"(?:吊灯|天花|吊顶|石膏板|外墙|玻璃|石屎|批荡|招牌|广告牌).{0,6}(?:连着|连埋|一起).{0,8}(?:掉|跌|冧|塌|脱落)",
            r"(?:成块|整块|整片|整扇|大块|大舊|大旧).{0,8}(?:掉|跌|冧|塌|脱落)(?:了|咗|下来|下去|落嚟|到)",
            r"(?:掉|跌)(?:到了?楼下|咗落|咗出去|落楼下)|打中.{0,3}(?:人|婆|伯|姨|小孩|孩子)",
            r"滑坡|泥石流|挡土墙.{0,10}(?:裂|倒|冒|泥)|(?:山坡|坡上).{0,10}(?:石头|泥).{0,6}(?:松|滚|掉|落)",
        )
    ),
    "help": r"救命|sos|(?<!尽)快来人|来人啊|呼救",
    # Pinyin, as typed without a Chinese keyboard: the words that name a danger.
    "pinyin": r"\b(?:kun ?ren|bei ?kun|zhao ?huo|qi ?huo|huo ?zai|jiu ?ming|ran ?qi ?wei|mei ?qi ?wei"
    r"|you ?yan|mao ?yan|nong ?yan|bao ?guan|yun ?dao|shou ?shang|liu ?xue)\b",
}

_CUE = re.compile("|".join(f"(?P<{kind}>{pattern})" for kind, pattern in _CUES.items()))

# Anywhere in the text: smoke that comes from a neighbour's cigarette or kitchen is a complaint.
_UNLESS: dict[str, re.Pattern[str]] = {
    "smoke": re.compile(r"抽烟|吸烟|油烟|烟头|香烟|烧烤|二手烟|熏|腊肉|烧纸|烧香|拜神|食烟"),
    # An explicit "no gas smell" (闻过冇煤气味, 没有味道): a stove that will not light is a repair.
    "gas": re.compile(
        r"(?:没有|没|冇|无|不是)(?:闻到|闻着|闻见|闻过)?.{0,3}(?:味|臭|漏气)|闻(?:过|落|了)?(?:冇|没有)|不漏气"
    ),
    # A rescue that is over: thanks for it (praise), not a new emergency.
    "medical": re.compile(r"感谢|表扬|多亏|幸亏|多得|好在|救出来了|好彩|幸好|冇受伤|没受伤|没大碍|差点|差點"),
    "child": re.compile(r"锁在外面|关在外面|差点|出来了|打开了|没人在里面|没有人被锁"),
    # Nobody inside: a stuck lift is a repair. Only these exact statements ("没人来救" is not one).
    "lift": re.compile(
        r"(?:没|没有|无|冇)人(?:在里面|在里头|喺入面|被困|困住|困在|关在)|(?:里|入)(?:面|头)(?:没|没有|无|冇)人"
        r"|救出来|感谢|表扬|多亏|幸亏"
    ),
}

# Before a cue: the resident talks about the past, a hypothetical, or prevention.
_BEFORE = re.compile(
    r"(?:上次|上回|之前|以前|去年|上个月|上周|前几天|那次|如果|万一|假如|要是|假设|预防|防止|防范|以免|免得|会不会"
    r"|担心|哪天|不然|否则|以防|别等|等到|真要|要是真|一旦|就怕)"
)
_BEFORE_WINDOW = 6
# Directly before a cue: negation ("没有冒烟").
_NEGATION = re.compile(r"(?:没有|没|冇|唔|无|不是|并非|不会|以免|免得|避免|防止|会不会|怕|担心)$")
# Right after a cue: talk *about* the event rather than the event itself.
_AFTER = re.compile(
    r"^(?:一点|少少)|^.{0,2}(?:的事|那件事|的问题|的话|演习|演练|预案|报警器|隐患|风险|险|应急|知识|那次)"
)

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
    (
        re.compile(
            r"(?:没|没有|无|冇)人(?:在里面|在里头|喺入面|被困|困住)|(?:里|入)(?:面|头)(?:没|没有|无|冇)人"
        ),
        _AT_RISK,
    ),
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


# Some sign that someone or something may be in danger. Without one, a classifier's "emergency" is
# a guess from the words around it (在家, 家里有人吗, 3-2-1502) and must not page the duty staff.
_DANGER_SIGN = re.compile(
    r"火|烟|焦|燶|燃气|煤气|天然气|液化气|瓦斯|气味|臭味|怪味|异味|嘶|爆|炸|电线|火花|漏电|触电|电到|电击"
    r"|困|关在|锁在|锁咗|卡在|出不来|出不去|救|急|危险|命|死|血|伤|晕|昏|倒|摔|跌|痛|疼|喘|呼吸|抽|烧|不舒服"
    r"|不醒|没反应|冇反应|唔应|不应|淹|灌|喷|涌|冲|泡|哗|漫|浸|水.{0,3}(?:流|漏|滴|渗|进|冒)|塌|冧|砸|掉|坠|裂"
    r"|脱落|倾斜|晃|摇|压|刀|砍|打|动手|威胁|报复|偷|撬|贼|抢|闯|陌生|跟踪|尾随|跳|窗台|栏杆|天台|楼顶|汽油"
    r"|110|119|120|999|报警|警察|孩子|小孩|宝宝|婴儿|细路|老人|阿婆|阿伯|婆婆|爷爷|奶奶"
)


def emergency_possible(normalised: str) -> bool:
    """False when a classifier may not call the text an emergency on its own word: an everyday
    fault with nobody at risk (see ``everyday_fault``), or no sign of danger at all."""
    text = normalised[:MAX_SCAN_CHARS]
    return _DANGER_SIGN.search(text) is not None and not everyday_fault(text)


def _defused(text: str, start: int, end: int) -> bool:
    # The cue's own words count too: "车库那次淹水" is a past flood even though 车库 starts the cue.
    before = text[max(0, start - _BEFORE_WINDOW) : end]
    return bool(
        _BEFORE.search(before) or _NEGATION.search(before[: start - end or None]) or _AFTER.match(text[end:])
    )
