"""Residents' photos on their way to the staff, on SQLite and PostgreSQL: which outbox rows name them
(new tickets, repeats, relay answers), and the dispatcher's follow-up rows (a card's photos after
it), which exist exactly when their card is recorded as sent."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.app import App
from bot.dispatcher import DispatchConfig
from bot.outbound import FollowUp, OutboundMessage, TemporaryFailure
from bot.ratelimit import ChannelLimits, Rate
from data.clock import FixedClock
from data.db import transaction
from data.models import OutboxMessage, Staff, Ticket
from data.store import Store
from flows.domain.relay import relay_to_resident
from tests.conftest import Chat
from tests.integration.outbox_helpers import FakeSender, dispatcher, enqueue, outbox


def report_leak(chat: Chat, photos: tuple[str, ...]) -> Ticket:
    chat.say("卫生间天花板在渗水", photos=photos)
    chat.say("尽快")
    assert "已为您登记报修" in chat.say("确认")
    with chat.app.sessions() as session:
        return session.scalars(select(Ticket)).one()


def test_a_new_card_names_its_photos_and_a_repeat_only_the_new_ones(chat: Chat, app: App) -> None:
    report_leak(chat, ("telegram:p1", "wechat-media:m2"))
    assert "之前已经报过了" in chat.say("卫生间天花板还在渗水", photos=("telegram:p3",))
    card, repeat = outbox(app, "staff")
    assert (card.kind, card.payload["photos"]) == ("new_ticket", ["telegram:p1", "wechat-media:m2"])
    assert card.payload["buttons"], "the card keeps its buttons"
    assert (repeat.kind, repeat.payload["photos"]) == ("repeat", ["telegram:p3"])


def test_a_card_without_photos_names_none(chat: Chat, app: App) -> None:
    report_leak(chat, ())
    [card] = outbox(app, "staff")
    assert "photos" not in card.payload


def ask_resident(app: App, ticket: Ticket, card: int = 41) -> None:
    """王师傅 replies to the ticket's card in the staff group."""
    with transaction(app.sessions) as session:
        store = Store(session)
        staff = session.scalars(select(Staff).where(Staff.name == "王师傅")).one()
        found = store.tickets.by_number(ticket.number)
        assert found is not None
        relay_to_resident(store, found, staff, "请问漏水点在哪？", card, app.clock.now())


def test_photos_alone_answer_a_staff_question_and_keep_it_open(chat: Chat, app: App) -> None:
    ticket = report_leak(chat, ())
    ask_resident(app, ticket)
    assert "已将您的回复转达" in chat.say("", photos=("wechat-media:m1",))
    assert "已将您的回复转达" in chat.say("", photos=("http://pic.example/2",))  # WeChat: one image a message
    assert "已将您的回复转达" in chat.say("就是灯旁边")
    assert "已将您的回复转达" not in chat.say("你好")  # words end the answer
    relays = [r for r in outbox(app, "staff") if r.kind == "relay"]
    assert [r.text for r in relays] == [
        f"【居民回复】{ticket.number}：（发来 1 张照片）",
        f"【居民回复】{ticket.number}：（发来 1 张照片）",
        f"【居民回复】{ticket.number}：就是灯旁边",
    ]
    assert [r.payload["photos"] for r in relays] == [["wechat-media:m1"], ["http://pic.example/2"], []]
    assert all(r.payload["reply_to"] == 41 for r in relays)
    with app.sessions() as session:
        kept = session.scalars(select(Ticket)).one().photos
    assert kept == ["wechat-media:m1", "http://pic.example/2"]


def test_photos_alone_with_no_question_pending_are_still_held(chat: Chat, app: App) -> None:
    report_leak(chat, ())
    assert "照片收到了" in chat.say("", photos=("telegram:p9",))
    assert [r.kind for r in outbox(app, "staff")] == ["new_ticket"]


# -- the dispatcher's follow-up rows ---------------------------------------------------------------
class AskingSender(FakeSender):
    """Sends, and asks for one follow-up row per photo the row names."""

    async def send(self, message: OutboundMessage) -> list[FollowUp]:  # type: ignore[override]
        await super().send(message)
        refs = message.payload.get("photos") or []
        return [
            FollowUp("staff", "photos", f"照片{i}", {"photos": [ref], "reply_to": 7}, tag=str(i))
            for i, ref in enumerate(refs, start=1)
        ]


def follow_ups(app: App) -> list[OutboxMessage]:
    return [r for r in outbox(app) if (r.dedupe_key or "").startswith("after:")]


async def test_follow_ups_are_added_when_their_row_is_marked_sent(app: App, clock: FixedClock) -> None:
    [card] = enqueue(app, 1, "staff", "staff", "new_ticket", payload={"photos": ["a", "b"]}, urgent=True)
    enqueue(app, 1, "staff", "staff", "notice")
    sender = AskingSender("staff")
    run = dispatcher(app, clock, {"staff": sender}, limits={"staff": ChannelLimits()})
    assert await run.run_once() == 2
    rows = follow_ups(app)
    assert [(r.dedupe_key, r.text, r.status) for r in rows] == [
        (f"after:{card}:1", "照片1", "pending"),
        (f"after:{card}:2", "照片2", "pending"),
    ]
    assert all(r.urgent and r.recipient == "staff" and r.payload["reply_to"] == 7 for r in rows)
    assert await run.run_once() == 2
    assert sender.texts == ["消息0", "消息0", "照片1", "照片2"]  # the card and a notice, then its photos


async def test_a_card_sent_again_after_a_crash_gets_its_photos_once(app: App, clock: FixedClock) -> None:
    """Killed after the peer took the card and before the mark: the card is sent again (the known
    window), its photos are not doubled."""
    [card] = enqueue(app, 1, "staff", "staff", "new_ticket", payload={"photos": ["a", "b"]})
    sender = AskingSender("staff")
    config = DispatchConfig(lease=timedelta(seconds=60))
    first = dispatcher(app, clock, {"staff": sender}, config, owner="elsewhere:1:1")  # another host
    [planned] = first._plan(clock.now())
    claim = first._claim(planned)
    assert claim is not None
    asked = await first._send(claim.message)  # ... and the process dies here
    assert follow_ups(app) == []
    clock.advance(seconds=61)
    second = dispatcher(app, clock, {"staff": sender}, DispatchConfig(lease=timedelta(seconds=60)))
    assert await second.run_once() == 1
    first._record(claim, asked)  # the old claim wakes up: ignored, adds nothing
    assert [r.dedupe_key for r in follow_ups(app)] == [f"after:{card}:1", f"after:{card}:2"]
    assert len(sender.sent) == 2  # the card twice: the one-round-trip window the dispatcher admits


async def test_a_failed_send_asks_for_nothing(app: App, clock: FixedClock) -> None:
    enqueue(app, 1, "staff", "staff", "new_ticket", payload={"photos": ["a"]})
    sender = AskingSender("staff", [TemporaryFailure("HTTP 502")])
    run = dispatcher(app, clock, {"staff": sender})
    assert await run.run_once() == 1
    assert follow_ups(app) == [] and outbox(app)[0].status == "pending"


async def test_the_robots_rows_and_the_staff_rows_share_one_limit(app: App, clock: FixedClock) -> None:
    enqueue(app, 1, "staff", "staff", "photos", payload={"cost": 3})  # an album of three takes the burst
    enqueue(app, 1, "wecom", "staff", "photo")
    limit = {"staff": ChannelLimits(overall=Rate(20, 60.0, burst=3)), "wecom": ChannelLimits()}
    staff, robot = FakeSender("staff"), FakeSender("wecom")
    run = dispatcher(app, clock, {"staff": staff, "wecom": robot}, limits=limit, shared={"wecom": "staff"})
    assert run.limiters["wecom"] is run.limiters["staff"]
    start = clock.now()
    assert await run.run_once() == 2
    assert len(staff.sent) == len(robot.sent) == 1
    assert clock.now() - start >= timedelta(seconds=3), "the image waited for the album's slots"
