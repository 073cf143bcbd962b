"""``/wecom`` (the WeCom app's callbacks) under fuzzing, as ``/wechat``: commands and card presses
with nasty values from registered staff, another compound's member and strangers; broken and
hostile XML inside a valid envelope; hostile envelopes and queries; the checked-in corpus of bodies.

Every callback is AES-encrypted and signed as WeCom posts it, so it gets past the signature to the
parser, the commands, the service layer and the store. For each: no 5xx, nothing logged as an error
or with a traceback, 200 or a 4xx that wrote nothing, and the same callback again (WeCom's retry)
gets the same answer and creates nothing. The server is this module's own (its own copy of the demo
store and a fake WeCom API), so the other modules' servers never deliver its rows.
"""

from __future__ import annotations

import itertools
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.app import App
from data.db import transaction
from data.models import Compound, InboundMessage, OutboxMessage, Staff
from tests.conftest import BACKENDS, NOW, pg_database, pg_url
from tests.e2e.conftest import Propbot, RunningClock, channel_settings, start_propbot
from tests.e2e.desk_support import bind, open_repair
from tests.fakes import wecom_api
from tests.fakes.serve import served
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.wechat_api import FakeWeChat
from tests.fakes.wecom_api import CHAT, CORP_ID, DUTY, Callbacks, FakeWeCom
from tests.fuzz.conftest import FUZZ, Logs
from tests.fuzz.invariants import Baseline, store_problems, wait_until_delivered
from tests.fuzz.nasty import corpus_files, nasty_text
from tests.fuzz.test_wechat_fuzz import Fields, broken, render

pytestmark = pytest.mark.fuzz

STAFF = {DUTY: "王师傅", "zhaozhuguan": "赵主管"}
OUTSIDERS = ["liuqiang_other"]  # staff of another compound
STRANGERS = ["nobody123", ""]
OK_STATUSES = {200, 400, 403, 413}
COMMANDS = ("认领", "接单", "完成", "升级", "转派", "回复", "帮助", "")
PRESSES = ("claim", "done", "escalate", "reassign", "to", "unknown", "")
_ids = itertools.count(52000000000000000)
RESIDENT = "5550001"  # a Telegram chat id


# -- the server -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module", params=BACKENDS)
def wecom_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("wecom-fuzz") / "propbot.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    with pg_database(template=request.getfixturevalue("pg_template")) as name:
        yield pg_url(name)


@dataclass
class WeComBot:
    propbot: Propbot
    baseline: Baseline
    numbers: list[str]  # the demo store's ticket numbers: commands that reach real tickets


@pytest.fixture(scope="module")
def wecom_bot(wecom_db_url: str, embedded_nlu: Any) -> Iterator[WeComBot]:
    with served(FakeTelegram()) as telegram, served(FakeWeChat()) as wechat, served(FakeWeCom()) as wecom:
        settings = channel_settings(
            wecom_db_url,
            telegram.url,  # type: ignore[attr-defined]
            wechat.url,  # type: ignore[attr-defined]
            wecom_corp_id=CORP_ID,
            wecom_agent_id=wecom_api.AGENT_ID,
            wecom_app_secret=wecom_api.SECRET,
            wecom_app_token=wecom_api.TOKEN,
            wecom_app_aes_key=wecom_api.AES_KEY,
            wecom_app_api_url=f"{wecom.url}/cgi-bin/",  # type: ignore[attr-defined]
            wecom_app_chats=f'{{"sunshine": {{"chat": "{CHAT}", "duty": "{DUTY}"}}}}',
        )
        app = App(settings, RunningClock(NOW))
        app.__dict__["nlu"] = embedded_nlu
        try:
            for propbot in start_propbot(app, telegram, wechat):
                numbers = _link_staff(app)
                yield WeComBot(propbot, Baseline.of(app.sessions), numbers)
        finally:
            app.close()


def _link_staff(app: App) -> list[str]:
    with transaction(app.sessions) as session:
        for user, name in STAFF.items():
            session.scalars(select(Staff).where(Staff.name == name)).one().wecom_user_id = user
        other = Compound(code="riverside", name="江畔花园", duty_phone="", office_phone="")
        session.add(Staff(compound=other, name="刘强", role="technician", wecom_user_id=OUTSIDERS[0]))
    bind(app, "telegram", RESIDENT, "李明")  # Telegram: no 48-hour window for what the resident is told
    return [open_repair(app, ("telegram", RESIDENT), f"厨房水管漏水{n}") for n in range(4)]


# -- callbacks ------------------------------------------------------------------------------------------
def fields(user: str, kind: str, **values: str) -> Fields:
    base = [("ToUserName", CORP_ID), ("FromUserName", user), ("CreateTime", "{created}"), ("MsgType", kind)]
    tail = [("MsgId", str(next(_ids)))] if kind != "event" else []
    return [*base, *values.items(), *tail, ("AgentID", str(wecom_api.AGENT_ID))]


@st.composite
def callback(draw: st.DrawFn, numbers: list[str]) -> Fields:
    user = draw(st.sampled_from([*STAFF, *OUTSIDERS, *STRANGERS]))
    number = draw(st.one_of(st.sampled_from(numbers), nasty_text()))
    text = draw(nasty_text())
    kind = draw(st.sampled_from(["command", "press", "text", "event", "image"]))
    if kind == "command":
        content = f"{draw(st.sampled_from(COMMANDS))} {number} {text}"
        return fields(user, "text", Content=content)
    if kind == "press":
        target = draw(st.sampled_from(["1", "3", text]))
        key = f"{draw(st.sampled_from(PRESSES))}:{number}:{target}"
        return fields(
            user,
            "event",
            Event="template_card_event",
            EventKey=key,
            TaskId=text,
            CardType="button_interaction",
            ResponseCode=draw(nasty_text()),
        )
    if kind == "text":
        return fields(user, "text", Content=text)
    if kind == "event":
        return fields(
            user, "event", Event=draw(st.sampled_from(["enter_agent", "click", text])), EventKey=text
        )
    return fields(user, "image", PicUrl=text, MediaId=text)


# -- posting --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Footprint:
    """Rows a callback can leave behind; the outbox count leaves out the rows the dispatcher adds
    after a delivery (``after:…``: the app's rows for a staff card) — they come whenever it gets there."""

    inbound: int
    outbox: int

    @classmethod
    def of(cls, sessions: sessionmaker[Session]) -> Footprint:
        mine = OutboxMessage.dedupe_key.is_(None) | ~OutboxMessage.dedupe_key.startswith("after:")
        with sessions() as session:
            inbound = session.scalar(select(func.count()).select_from(InboundMessage))
            outbox = session.scalar(select(func.count()).select_from(OutboxMessage).where(mine))
            return cls(int(inbound or 0), int(outbox or 0))


def post(bot: WeComBot, path: str, body: bytes) -> int:
    response = bot.propbot.http.post(path, content=body, headers={"Content-Type": "text/xml"})
    assert response.status_code < 500, response.text
    return response.status_code


def check(bot: WeComBot, logs: Logs, xml: str | bytes) -> int:
    """Post ``xml`` encrypted and signed as WeCom would, then again as WeCom's retry."""
    propbot = bot.propbot
    stamp = int(propbot.app.clock.now().timestamp())
    raw = xml if isinstance(xml, bytes) else xml.encode("utf-8", "surrogatepass")
    raw = raw.replace(b"{created}", str(stamp).encode())
    inner = raw.decode("utf-8") if _is_utf8(raw) else raw.decode("latin-1")
    path, body = Callbacks().build(inner, timestamp=stamp)
    before = Footprint.of(propbot.app.sessions)
    first = post(bot, path, body)
    assert first in OK_STATUSES
    after = Footprint.of(propbot.app.sessions)
    if first != 200:
        assert after == before, "a refused callback wrote to the store"
    assert logs.problems() == []
    assert post(bot, path, body) == first, "WeCom's retry got another answer"
    assert Footprint.of(propbot.app.sessions) == after, "a retry made something twice"
    assert logs.problems() == []
    return first


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# -- the fuzzing ----------------------------------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_commands_and_presses_with_nasty_values(wecom_bot: WeComBot, logs: Logs, data: st.DataObject) -> None:
    pairs = data.draw(callback(wecom_bot.numbers))
    check(wecom_bot, logs, render(pairs))


@FUZZ
@given(data=st.data())
def test_broken_and_hostile_xml_inside_the_envelope(
    wecom_bot: WeComBot, logs: Logs, data: st.DataObject
) -> None:
    xml = data.draw(callback(wecom_bot.numbers).flatmap(broken))
    check(wecom_bot, logs, xml)


QUERY = st.fixed_dictionaries(
    {},
    optional={
        "msg_signature": st.one_of(nasty_text(), st.text("0123456789abcdef", min_size=40, max_size=40)),
        "timestamp": st.one_of(nasty_text(), st.integers(-(2**40), 2**40).map(str)),
        "nonce": nasty_text(),
        "echostr": nasty_text(),
    },
)


@FUZZ
@given(
    query=QUERY,
    body=st.one_of(st.binary(max_size=300), nasty_text().map(lambda t: t.encode("utf-8", "surrogatepass"))),
)
def test_hostile_envelopes_and_queries_are_refused_and_write_nothing(
    wecom_bot: WeComBot, logs: Logs, query: dict[str, str], body: bytes
) -> None:
    """Unsigned, stale or malformed: a 4xx (or the URL check's refusal) and nothing written."""
    propbot = wecom_bot.propbot
    path = "/wecom?" + urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in query.items()})
    before = Footprint.of(propbot.app.sessions)
    assert post(wecom_bot, path, body) in {400, 403, 413}
    got = propbot.http.get(path)
    assert got.status_code in {400, 403}, got.text
    assert Footprint.of(propbot.app.sessions) == before
    assert logs.problems() == []


BODIES = corpus_files("wechat/*", "*.bin")


@pytest.mark.parametrize("path", BODIES, ids=[p.name for p in BODIES])
def test_corpus_bodies_inside_the_envelope(wecom_bot: WeComBot, logs: Logs, path: Path) -> None:
    check(wecom_bot, logs, path.read_bytes())


def test_the_store_is_consistent_afterwards(wecom_bot: WeComBot) -> None:
    """Last in the module: every row the fuzzing made hangs together, and the outbox drained."""
    propbot = wecom_bot.propbot
    assert wait_until_delivered(propbot.app.sessions, wecom_bot.baseline, propbot.app.clock.now) == []
    assert store_problems(propbot.app.sessions, wecom_bot.baseline) == []
