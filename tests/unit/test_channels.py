"""Channel pieces without I/O: per-chat ordering, contact masking, WeChat reply packing, commands."""

from __future__ import annotations

import asyncio

import pytest

from bot.channels.telegram import command_text, keyboard
from bot.channels.wechat import MAX_REPLY_BYTES, cut, pack, shorten
from bot.intake import ChatLocks
from flows.dialog.turn import Button, Reply
from flows.domain.relay import MASK, mask_contacts


async def test_messages_of_one_chat_are_handled_in_arrival_order() -> None:
    locks, done = ChatLocks(), []

    async def handle(chat: str, n: int, work: float) -> None:
        async with locks.hold(chat):
            await asyncio.sleep(work)
            done.append((chat, n))

    # the first message of chat A is slow; A's later ones wait for it, chat B does not
    tasks = [asyncio.create_task(handle("A", 1, 0.05))]
    tasks += [asyncio.create_task(handle("A", n, 0)) for n in (2, 3, 4)]
    tasks.append(asyncio.create_task(handle("B", 1, 0)))
    await asyncio.gather(*tasks)
    assert [n for chat, n in done if chat == "A"] == [1, 2, 3, 4]
    assert done[0] == ("B", 1)
    assert len(locks) == 0  # nothing kept once a chat is quiet


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("打我13800138000", "13800138000"),
        ("电话 138 0013 8000 谢谢", "0013"),
        ("+86 13800138000", "13800138000"),
        ("座机0571-88881234", "88881234"),
        ("加我 @wang_shifu", "wang_shifu"),
        ("我的openid是oABCD1234resident_li_ming_0001", "resident_li_ming"),
    ],
)
def test_contact_details_are_masked(text: str, secret: str) -> None:
    masked = mask_contacts(text)
    assert MASK in masked and secret not in masked


def test_ordinary_numbers_are_kept() -> None:
    text = "3栋2单元1502，明天下午3点，报修单 BX-20261123-0001"
    assert mask_contacts(text) == text


def test_wechat_replies_fit_the_passive_limit_and_the_rest_waits() -> None:
    long = Reply("长" * 1000)  # 3000 bytes of UTF-8
    passive, rest = pack([Reply("您好"), long])
    assert len(passive.encode()) <= MAX_REPLY_BYTES and passive.startswith("您好")
    assert rest and all(len(piece.encode()) <= MAX_REPLY_BYTES for piece in rest)
    assert passive.replace("\n\n", "") + "".join(rest) == "您好" + "长" * 1000
    assert cut("") == [""]


def test_template_fields_are_one_line_and_cut() -> None:
    assert shorten("第一行\n第二行", 20) == "第一行 第二行"
    assert shorten("一二三四五六", 5) == "一二三四…"


def test_telegram_commands_become_words() -> None:
    assert command_text("/start SUN888") == "SUN888"
    assert command_text("/start@sunshine_pm_bot") == "你好"
    assert command_text("/status") == "查询进度"
    assert command_text("/help@sunshine_pm_bot") == "帮助"
    assert command_text("厨房漏水") == "厨房漏水"


def test_keyboard_keeps_callback_data_within_telegram_limits() -> None:
    markup = keyboard((Button("确认"), Button("很长的值", "时段 " + "x" * 80)))
    assert markup is not None
    data = [b.callback_data for row in markup.inline_keyboard for b in row]
    assert data == ["确认", "很长的值"]  # too long for 64 bytes: the label, which the flows accept too
