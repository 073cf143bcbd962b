"""``/wechat`` under fuzzing: valid callbacks (messages, events) with nasty field values, broken and
hostile XML made from them, conversations with nasty turns, and the checked-in corpus of bodies, in
plain mode and in safe (AES) mode.

Every callback is signed (and in safe mode encrypted and signed) as WeChat would, with the sender's
openid in the query, so it gets past the signature to the parser, the engine and the store. For
each: no 5xx, nothing logged as an error or with a traceback, a message gets a passive reply for
its sender (never the apology for a failure) or "success" (events), or a 4xx that wrote nothing,
and the same callback again (WeChat's retry) gives the same reply and creates nothing.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.dialog.engine import APOLOGY
from tests.e2e.conftest import Propbot
from tests.fakes.wechat_api import ACCOUNT, Callbacks
from tests.fuzz.conftest import FUZZ, Logs
from tests.fuzz.invariants import Baseline, Footprint, store_problems, wait_until_delivered
from tests.fuzz.nasty import corpus_files, corpus_texts, nasty_text, words

pytestmark = pytest.mark.fuzz

BOUND = {"oFUZZbound000000000000000001": "陈静", "oFUZZbound000000000000000002": "周阿姨"}
STRANGERS = ["oFUZZstranger0000000000000001", "oFUZZstranger0000000000000002"]
OK_STATUSES = {200, 400, 403, 413}
MESSAGES = ("text", "image", "voice", "location")  # the types that always get a reply
_ids = itertools.count(31000000000000000)
Fields = list[tuple[str, str]]


@dataclass
class Posted:
    status: int
    reply: str | None  # the passive reply's text; None for "success" or a refusal


# -- callbacks ------------------------------------------------------------------------------------------
def fields(openid: str, kind: str, **values: str) -> Fields:
    base = [("ToUserName", ACCOUNT), ("FromUserName", openid), ("CreateTime", "{created}"), ("MsgType", kind)]
    return [*base, *values.items(), *([("MsgId", str(next(_ids)))] if kind != "event" else [])]


def render(pairs: Fields) -> str:
    return "<xml>" + "".join(f"<{name}>{escape(value)}</{name}>" for name, value in pairs) + "</xml>"


@st.composite
def callback(draw: st.DrawFn) -> Fields:
    openid = draw(st.sampled_from([*BOUND, *STRANGERS]))
    text = draw(nasty_text())
    kind = draw(
        st.sampled_from(["text", "image", "voice", "location", "click", "scan", "subscribe", "video"])
    )
    if kind == "text":
        return fields(openid, "text", Content=text)
    if kind == "image":
        return fields(openid, "image", PicUrl=text, MediaId=draw(nasty_text()))
    if kind == "voice":
        return fields(openid, "voice", MediaId="m", Format="amr", Recognition=text)
    if kind == "location":
        x, y = draw(st.floats(allow_nan=False, allow_infinity=False)), draw(st.floats(-1e6, 1e6))
        return fields(openid, "location", Location_X=str(x), Location_Y=str(y), Scale="15", Label=text)
    if kind == "click":
        return fields(openid, "event", Event="CLICK", EventKey=text)
    if kind == "scan":
        return fields(
            openid, "event", Event=draw(st.sampled_from(["SCAN", "subscribe"])), EventKey="qrscene_" + text
        )
    if kind == "subscribe":
        return fields(openid, "event", Event=draw(st.sampled_from(["subscribe", "unsubscribe", text])))
    return fields(openid, "video", MediaId=text)


@st.composite
def broken(draw: st.DrawFn, pairs: Fields) -> str:
    """``pairs`` as XML with a few things wrong: values of the wrong kind, fields missing, repeated,
    nested or with attributes, markup spliced in, the end cut off."""
    pairs = list(pairs)
    for _ in range(draw(st.integers(1, 3))):
        index = draw(st.integers(0, len(pairs) - 1))
        name, value = pairs[index]
        action = draw(st.sampled_from(["value", "drop", "repeat", "nest", "attribute", "markup", "cut"]))
        if action == "value" and name != "FromUserName":
            pairs[index] = (name, draw(nasty_text()))
        elif action == "drop" and name != "FromUserName":
            del pairs[index]
        elif action == "repeat":
            pairs.insert(index, (name, draw(nasty_text())))
        elif action == "nest":
            pairs[index] = (name, "\x01NEST")  # replaced after escaping, below
        elif action == "attribute":
            pairs[index] = (name, "\x01ATTR" + value)
        elif action == "markup" and name != "FromUserName":
            pairs[index] = (name, "\x01RAW" + draw(st.sampled_from(MARKUP)))
        elif action == "cut":
            return render(pairs)[: draw(st.integers(0, len(render(pairs))))]
        if not pairs:
            break
    xml = render(pairs)
    xml = re.sub(r"<(\w+)>\x01NEST</\1>", r"<\1><b>嵌套</b></\1>", xml)
    xml = re.sub(r"<(\w+)>\x01ATTR", r'<\1 type="x">', xml)
    return re.sub(r"\x01RAW(.*?)</", lambda m: MARKUP_RAW[m.group(1)] + "</", xml)


MARKUP_RAW = {
    "cdata": "<![CDATA[确认]]>",
    "cdata-breakout": "<![CDATA[x]]>]]>",
    "entity": "&nbsp;",
    "char-ref": "&#0;",
    "comment": "<!-- x -->",
    "pi": "<?x y?>",
    "doctype": '<!DOCTYPE x [<!ENTITY a "b">]>',
}
MARKUP = sorted(MARKUP_RAW)


# -- posting --------------------------------------------------------------------------------------------
@dataclass
class WeChatBot:
    propbot: Propbot
    baseline: Baseline


@pytest.fixture(scope="module")
def wechat_bot(fuzz_propbot: Propbot) -> Iterator[WeChatBot]:
    for openid, name in BOUND.items():
        fuzz_propbot.bind("wechat", openid, name)
    bot = WeChatBot(fuzz_propbot, Baseline.of(fuzz_propbot.app.sessions))
    yield bot


@pytest.fixture(params=["plain", "aes"])
def mode(request: pytest.FixtureRequest, wechat_bot: WeChatBot) -> Iterator[Callbacks]:
    """Plain mode: the server has no AES key (as an Official Account without an EncodingAESKey)."""
    channel = wechat_bot.propbot.web.state.channels["wechat"].inbound
    crypto = channel.crypto
    if request.param == "plain":
        channel.crypto = None
    yield Callbacks(aes=request.param == "aes")
    channel.crypto = crypto


def build(propbot: Propbot, wx: Callbacks, body: str | bytes) -> tuple[str, bytes, str]:
    """The signed path, the body to post, and the sender the query names."""
    raw = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
    raw = raw.replace(b"{created}", str(propbot.wx_now()).encode())
    sender = re.search(rb"<FromUserName>(?:<!\[CDATA\[)?([^<\]]*)", raw)
    openid = sender.group(1).decode("utf-8", "replace") if sender else ""
    if wx.aes:  # WeChatCrypto encrypts text: bytes that are not UTF-8 go in as the characters of Latin-1
        inner = raw.decode("utf-8") if _is_utf8(raw) else raw.decode("latin-1")
        path, encrypted = propbot.wx_build(wx, inner, openid=openid)
        return path, encrypted, openid
    stamp, nonce = str(propbot.wx_now()), f"p{next(_ids)}"
    return f"/wechat?{wx.query(stamp, nonce, openid=openid)}", raw, openid


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def send(propbot: Propbot, wx: Callbacks, path: str, body: bytes, openid: str) -> Posted:
    response = propbot.wx_send(path, body)
    assert response.status_code < 500, response.text
    if response.status_code != 200 or response.text == "success":
        return Posted(response.status_code, None)
    reply = wx.open_reply(response.text)
    assert reply is not None and reply["ToUserName"] == openid and reply["FromUserName"]  # from ToUserName
    return Posted(200, str(reply["Content"]))


def kind_of(body: bytes) -> str:
    found = re.findall(rb"<MsgType>(?:<!\[CDATA\[)?(\w*)", body)
    return found[0].decode().lower() if len(found) == 1 else ""


def check(bot: WeChatBot, logs: Logs, wx: Callbacks, body: str | bytes) -> Posted:
    """Post ``body`` as a signed callback, check the answer, then post it again as WeChat's retry."""
    propbot = bot.propbot
    path, raw, openid = build(propbot, wx, body)
    plain = (
        raw if not wx.aes else (body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass"))
    )
    before = Footprint.of(propbot.app.sessions)
    first = send(propbot, wx, path, raw, openid)
    assert first.status in OK_STATUSES
    after = Footprint.of(propbot.app.sessions)
    if first.status != 200:
        assert after == before, "a refused callback wrote to the store"
    elif kind_of(plain) in MESSAGES:
        assert first.reply, "a message got no reply"
    assert first.reply is None or APOLOGY not in first.reply, "the engine failed on this callback"
    assert logs.problems() == []
    again = send(propbot, wx, path, raw, openid)
    assert (again.status, again.reply) == (first.status, first.reply), "WeChat's retry got another answer"
    assert Footprint.of(propbot.app.sessions) == after, "a retry made something twice"
    assert logs.problems() == []
    return first


# -- the fuzzing ----------------------------------------------------------------------------------------
@FUZZ
@given(pairs=callback())
def test_callbacks_with_nasty_values(
    wechat_bot: WeChatBot, mode: Callbacks, logs: Logs, pairs: Fields
) -> None:
    check(wechat_bot, logs, mode, render(pairs))


@FUZZ
@given(xml=callback().flatmap(broken))
def test_broken_and_hostile_xml(wechat_bot: WeChatBot, mode: Callbacks, logs: Logs, xml: str) -> None:
    check(wechat_bot, logs, mode, xml)


@FUZZ
@given(
    turns=st.lists(st.one_of(words(), nasty_text()), min_size=2, max_size=5),
    openid=st.sampled_from(list(BOUND)),
)
def test_conversations_with_nasty_turns(
    wechat_bot: WeChatBot, logs: Logs, turns: list[str], openid: str
) -> None:
    """In safe mode only, as production runs: the dialog does not depend on the mode."""
    for text in turns:
        check(wechat_bot, logs, Callbacks(aes=True), render(fields(openid, "text", Content=text)))


BODIES = corpus_files("wechat/*", "*.bin")


@pytest.mark.parametrize("path", BODIES, ids=[p.name for p in BODIES])
def test_corpus_bodies(wechat_bot: WeChatBot, mode: Callbacks, logs: Logs, path: Path) -> None:
    check(wechat_bot, logs, mode, path.read_bytes())


@pytest.mark.parametrize("name", sorted(corpus_texts()))
def test_corpus_texts_from_a_bound_resident(wechat_bot: WeChatBot, logs: Logs, name: str) -> None:
    openid = next(iter(BOUND))
    check(wechat_bot, logs, Callbacks(aes=True), render(fields(openid, "text", Content=corpus_texts()[name])))


def test_the_store_is_consistent_afterwards(wechat_bot: WeChatBot) -> None:
    """Last in the module: every row the fuzzing made hangs together."""
    propbot = wechat_bot.propbot
    assert wait_until_delivered(propbot.app.sessions, wechat_bot.baseline, propbot.app.clock.now) == []
    assert store_problems(propbot.app.sessions, wechat_bot.baseline) == []
