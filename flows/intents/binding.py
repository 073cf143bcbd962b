"""绑定房屋: an unknown chat account proves who it is with a one-time code from the office, or with
unit + the phone number registered for that unit. Nothing about any unit is shown before that."""

from __future__ import annotations

import re

from flows.dialog.slots import spot_unit
from flows.dialog.spec import FlowSpec
from flows.dialog.turn import Turn
from flows.intents.contact import emergency_hint, office
from flows.intents.emergency import locate_after_binding

CODE = re.compile(r"^[a-z0-9]{4,10}$", re.IGNORECASE)
# A code said in a sentence: "绑定 SUN888", "我的绑定码是sun888", "码：SUN888".
CODE_SAID = re.compile(
    r"(?:[绑綁]定[码碼]?|[码碼]|code)\s*(?:是|係|为|為|:|：)?\s*([a-z0-9]{4,10})(?![a-z0-9])", re.IGNORECASE
)


def code_in(text: str) -> str | None:
    """The binding code a message holds, alone or in a sentence; None when it holds none."""
    bare = text.replace(" ", "")
    if CODE.match(bare):
        return bare
    found = CODE_SAID.search(text)
    return found.group(1) if found else None


class BindingFlow:
    name = "binding"

    def start(self, turn: Turn) -> None:
        turn.state["pending"] = turn.text
        self._prompt(turn, "您好，欢迎使用{name}物业服务！为了保护您的信息，第一次使用请先绑定房屋。\n")

    def resume(self, turn: Turn) -> bool:
        account = turn.account
        if account.failed_binding_attempts >= turn.settings.binding_attempts:
            self._locked(turn)
            return True
        code = code_in(turn.text)
        if code is not None and not turn.parse.value("phone"):
            resident = turn.store.redeem_binding_code(code, turn.now)
            if resident is None:
                return self._failed(
                    turn,
                    "这个绑定码无效、已过期或已经使用过了，请核对后重试；"
                    "也可以发送“房号 + 登记的手机号”绑定，例如：3栋2单元1502 13800138000。",
                )
        else:
            unit = spot_unit(turn, {})
            phone = turn.parse.value("phone")
            if unit is None and phone is None:
                return False  # not a binding attempt at all; the engine decides what it is
            if unit is None or phone is None:
                return self._failed(turn, "需要同时提供房号和登记的手机号哦。", counts=False)
            found = turn.store.find_unit(unit["building"], unit.get("unit"), unit["room"])
            if found is None:
                return self._failed(turn, f"没有找到“{unit['label']}”这个房屋，请核对楼栋、单元和房号。")
            resident = next((r for r in turn.store.residents_of_unit(found.id) if r.phone == phone), None)
            if resident is None:
                return self._failed(turn, "手机号与该房屋登记的信息不一致。")
        turn.store.bind(account, resident, turn.now)
        turn.say(f"绑定成功！{resident.name}您好，已为您绑定 {resident.unit.label}。")
        locate_after_binding(turn)
        pending = turn.state.get("pending", "")
        turn.finish()
        turn.state["pending"] = pending  # the engine carries on with what was first asked
        return True

    def takes(self, turn: Turn, asked: FlowSpec) -> bool:
        """Binding is asked before anything else, so everything goes to it first (see ``resume``)."""
        return True

    def ask_again(self, turn: Turn, hint: str = "") -> None:
        self._prompt(turn, hint)

    def _prompt(self, turn: Turn, greeting: str) -> None:
        turn.say(
            greeting.format(name=turn.compound.name) + "请发送物业服务中心给您的绑定码（例如 SUN123），"
            "或者发送“房号 + 登记的手机号”，例如：3栋2单元1502 13800138000"
        )
        turn.stay(self.name)

    def _failed(self, turn: Turn, reason: str, counts: bool = True) -> bool:
        if counts:
            turn.account.failed_binding_attempts += 1
            if turn.account.failed_binding_attempts >= turn.settings.binding_attempts:
                self._locked(turn)
                return True
        turn.say(f"{reason}如有疑问请致电{office(turn.compound)}。")
        turn.stay(self.name)
        return True

    def _locked(self, turn: Turn) -> None:
        turn.say(
            "为保护业主信息，绑定尝试次数过多，已暂停线上绑定。请携带身份证件到物业服务中心办理，"
            f"或致电{office(turn.compound)}。{emergency_hint(turn.compound)}"
        )
        turn.finish()


FLOW = BindingFlow()
SPEC = FlowSpec("binding", flow=FLOW, title="绑定")  # asked first by any intent that needs_binding
