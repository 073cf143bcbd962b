"""Binding without being asked first: a one-time code sent on its own (a Telegram ``/start CODE`` deep
link, a WeChat QR-code scene, or typed), and "绑定" to start binding on purpose (a WeChat follow)."""

from __future__ import annotations

from flows.dialog.turn import Turn
from flows.intents import answers, binding
from flows.intents.binding import code_in

BIND_WORDS = frozenset({"绑定", "绑定房屋", "绑定房号", "房屋绑定", "我要绑定"})


def bind_by_code(turn: Turn) -> bool:
    """PRE_ROUTES hook: an unused binding code binds at once; "绑定" starts the binding dialog."""
    text = turn.text.replace(" ", "")
    if text in BIND_WORDS:
        if turn.account.resident_id is not None:
            answers.greet(turn)
        else:
            binding.FLOW.start(turn)
        return True
    if turn.account.resident_id is None and turn.parse.value("unit") and turn.parse.value("phone"):
        return binding.FLOW.resume(turn)  # "2栋2单元801 13800138005" as a first message
    said = code_in(turn.text)
    if said is None:
        return False
    if turn.store.usable_binding_code(said, turn.now) is None:
        if said != turn.text.replace(" ", "") and turn.account.resident_id is None:
            return binding.FLOW.resume(turn)  # "绑定码 SUN999": clearly a code, and not a valid one
        return False  # an ordinary short word ("hello", "ok"): let the engine route it
    return binding.FLOW.resume(turn)
