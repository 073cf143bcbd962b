"""Word classes of the trade that the classifier sees beside the characters.

Character n-grams learn the words of the lines they are trained on; residents who write in another
style use other words for the same things (水喉 for 水管, 跳电 for 跳闸, 壁癌 for 渗水发霉). A class
marker says "a property object", "a fault", "money", "an earlier report" whatever the wording, so a
model trained on one kind of writing carries over to another. Each class that occurs in a message
adds one private-use character to the text the classifier reads (``markers``).

Patterns run on normalised text (Simplified, lower case); Cantonese and Taiwanese words are spelled
as normalisation leaves them (壞咗 -> 坏咗, 跳電 -> 跳电).
"""

from __future__ import annotations

import re

_CLASSES: dict[str, str] = {
    # Things the property looks after.
    "object": (
        r"水管 水喉 管道 管子 龙头 马桶 厕所 坐便 地漏 下水 排水 化粪池 水箱 水塔 水泵 马达 水表 "
        r"电表 燃气表 灯 插座 开关 电闸 空开 电箱 电线 线路 门锁 锁 门禁 对讲 道闸 栏杆 闸机 监控 "
        r"摄像头 电梯 𨋢 lift 扶梯 墙 天花 吊顶 屋顶 楼顶 顶楼 阳台 窗 玻璃 地砖 瓷砖 外墙 墙皮 防水 "
        r"楼道 楼梯 扶手 井盖 路灯 路面 热水器 空调 冷气 暖气 地暖 油烟机 燃气灶 灶 充电桩 消防栓 "
        r"烟感 喷淋 信箱 快递柜 单元门 大门 防盗门 车库"
    ),
    # Something broken or not working.
    "fault": (
        r"坏 漏 渗 滴水 堵 塞 不亮 不通 没电 冇电 停电 跳闸 跳电 断电 没水 冇水 停水 水压 裂 脱落 "
        r"掉了 松 打不开 关不上 关不紧 开不了 锁不上 失灵 故障 没反应 冇反应 不工作 不转 不制冷 "
        r"不制热 不出 不下去 返水 反水 冒水 发霉 壁癌 起皮 鼓包 异响 响声 嗡嗡 生锈 歪 卡住 卡死 "
        r"唔work 唔开 唔着 黑咗 烂 破 塌陷 下沉"
    ),
    # Something that can hurt someone now.
    "danger": (
        r"火 烟 焦 燃气味 煤气味 天然气味 瓦斯 气味 爆 炸 火花 漏电 触电 被困 困住 困在 关在 出不来 "
        r"救命 救 危险 血 受伤 晕 昏 倒地 摔 喘 呼吸 抽搐 高烧 淹 灌 喷 涌 塌 砸 掉下 坠 刀 打人 "
        r"打架 撬 小偷 贼 抢 跳楼"
    ),
    # Money: fees, bills, amounts, paying.
    "money": (
        r"费 钱 元 块 账单 帐单 缴 交了 付了 欠 余额 扣款 扣了 发票 收据 单价 平米 每平 滞纳金 押金 "
        r"退款 退钱 多收 乱收 收费 价格 涨价 贵 便宜 月供 年费 预存 充值 二维码 支付宝 微信支付 "
        r"银行卡 差饷"
    ),
    # People and behaviour the desk investigates.
    "nuisance": (
        r"噪音 噪声 吵 扰民 装修声 电钻 敲打 广场舞 音响 狗 猫 宠物 狗屎 粪便 邻居 隔壁 楼上 "
        r"楼下邻居 占用 占道 乱停 乱放 乱扔 堆放 堆满 违建 私搭 加盖 搭建 烟味 抽烟 吸烟 油烟 烧烤 "
        r"垃圾 臭 脏 卫生 没人打扫 没打扫 尿 扰"
    ),
    # Staff and how they behave.
    "staff": (
        r"保安 保全 保洁 清洁 阿姨 管家 客服 前台 师傅 工作人员 物业人员 经理 主任 总干事 管理处 "
        r"管理员 管委会 态度 骂 凶 不理 爱理不理 推诿 踢皮球 敷衍 不作为 不管 没人管 睡觉 玩手机 "
        r"脸色"
    ),
    # An earlier report: a ticket, a promise, waiting.
    "earlier": (
        r"报修过 报过 报了 报咗 反映过 反映了 投诉过 投诉了 打过电话 打了电话 提交 工单 单号 登记过 "
        r"说好 答应 承诺 进度 处理结果 结果 回复 回音 至今 到现在 到今天 一直没 还没人 还没有人 迟迟 "
        r"多次 几次 好几次 催 还没来 没人来 几天了 一个星期了 一周了 半个月 一个月了 等了"
    ),
    # Asking when someone comes.
    "when": (r"什么时候 几时 几点 多久 啥时候 何时 要等 还要等 怎么还没 为什么还没 到底"),
    # Putting a service on the calendar.
    "booking": (
        r"预约 预定 预订 约个 约一下 想约 约师傅 安排 登记 申请 办理 报名 订 book 排期 档期 上门服务"
    ),
    "service": (
        r"保洁 家政 打扫 清洁 擦玻璃 开荒 洗衣 干洗 收衣 搬家 搬运 货梯 安装 装修申请 装修许可 "
        r"装修手续 车位 月租 寄养 体检 量血压 健康检查 活动 讲座 课程 钟点工 保姆 疏通 除虫 灭蟑 "
        r"消杀 看房 验房"
    ),
    # A question.
    "question": (
        r"吗 么 嘛 呢 多少 几 怎么 如何 哪里 哪儿 哪个 能不能 可不可以 可以吗 是否 请问 想问 咨询 ？ "
        r"\?"
    ),
    # Asking for something to be done.
    "demand": (
        r"希望 要求 请 麻烦 尽快 赶紧 赶快 马上 速 立即 立刻 给个说法 给个交代 处理一下 解决 帮忙 "
        r"帮手 唔该"
    ),
    # Anger and sarcasm.
    "anger": (
        r"无语 气死 垃圾 什么物业 干什么吃的 干啥吃的 服了 呵呵 太差 恶心 受不了 忍无可忍 曝光 12345 "
        r"媒体 记者 投诉 维权 摆设 不要脸 凭什么 搞什么 离谱 过分 失望 愤怒 ! ！"
    ),
    "thanks": (r"感谢 谢谢 多谢 唔该晒 点赞 表扬 辛苦 负责 热心 及时 锦旗 好评 称赞 给力 专业 耐心"),
    "suggest": (
        r"建议 提议 提个意见 能不能(?:加|装|增|多|设) 希望(?:增加|加装|能有|多) 最好 可以考虑 "
        r"考虑一下"
    ),
    "human": (r"人工 真人 转接 找人 客服电话 打电话给我 电话联系 回电 机器人"),
}

_MARK_BASE = 0xE000  # private-use characters: never in a resident's text after normalisation
NAMES: tuple[str, ...] = tuple(_CLASSES)
# One pattern per class: a word may belong to several (保洁 is staff and a service). A class is
# written as words (regular expressions) separated by spaces.
_PATTERNS = tuple(
    (name, chr(_MARK_BASE + i), re.compile("|".join(words.split())))
    for i, (name, words) in enumerate(_CLASSES.items())
)


def classes(normalised: str) -> set[str]:
    """The names of the word classes that occur in ``normalised`` text."""
    return {name for name, _, pattern in _PATTERNS if pattern.search(normalised)}


def markers(normalised: str) -> str:
    """One private-use character per class found, in a fixed order: what the classifier reads."""
    return "".join(mark for _, mark, pattern in _PATTERNS if pattern.search(normalised))
