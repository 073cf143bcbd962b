"""Scripted conversations kept as data (tests/conversations/*.yaml), run through the engine against
the demo compound on SQLite and PostgreSQL.

Each file holds a list of conversations::

    - name: a fee question in the middle of a complaint is answered, then the complaint goes on
      as: demo                    # the console account (demo: 李明 of 3栋2单元1502; guest: unbound)
      turns:
        - say: 我要投诉
          expect: [具体说一说]     # every string must be in the replies of this turn
        - say: 我家物业费还欠多少
          expect: [998.40, 回到刚才的投诉]
          absent: [没太明白]       # none of these may be
          buttons: [确认]          # buttons the replies must offer, by label
        - press: 确认             # a button of the last replies, by its label
        - wait: {hours: 25}      # the clock moves on (no message)
      tickets:                   # the tickets the conversation made, in order, with the fields named
        - {kind: complaint, status: received, location: 北门, description_has: 保安}
      staff_has: [北门]           # strings the staff group's messages must contain (any of them)

``tickets: []`` asserts that no ticket was made. A conversation marked ``xfail: reason`` records a
known gap: it must fail (strict), so fixing the gap means removing the mark.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from bot.app import App
from data.clock import FixedClock, local
from data.models import OutboxMessage, Ticket
from tests.conftest import Chat

SCRIPTS = Path(__file__).parent.parent / "conversations"
TICKET_FIELDS = ("kind", "status", "category", "area", "location", "priority")


def _load() -> list[Any]:
    cases = []
    for path in sorted(SCRIPTS.glob("*.yaml")):
        for script in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            marks = [pytest.mark.xfail(reason=script["xfail"], strict=True)] if script.get("xfail") else []
            cases.append(pytest.param(script, id=f"{path.stem}: {script['name']}", marks=marks))
    return cases


@pytest.mark.parametrize("script", _load())
def test_conversation(script: dict[str, Any], app: App, clock: FixedClock) -> None:
    chat = Chat(app, account=script.get("as", "demo"))
    for number, turn in enumerate(script["turns"], 1):
        if "wait" in turn:
            clock.advance(**turn["wait"])
            continue
        reply = chat.press(turn["press"]) if "press" in turn else chat.say(str(turn["say"]))
        where = f"turn {number} ({turn.get('say') or turn.get('press')!r}) got:\n{reply}"
        for wanted in turn.get("expect", ()):
            assert str(wanted) in reply, f"{where}\nmissing {wanted!r}"
        for button in turn.get("buttons", ()):
            assert button in chat.last_buttons, f"{where}\nno button {button!r} in {chat.last_buttons}"
        for unwanted in turn.get("absent", ()):
            assert str(unwanted) not in reply, f"{where}\nshould not say {unwanted!r}"
    if "tickets" in script:
        _check_tickets(app, script["tickets"])
    if "staff_has" in script:
        staff = "\n".join(_staff_texts(app))
        for wanted in script["staff_has"]:
            assert wanted in staff, f"staff group never saw {wanted!r}:\n{staff}"


def _check_tickets(app: App, expected: list[dict[str, Any]]) -> None:
    with app.sessions() as session:
        made = list(session.scalars(select(Ticket).order_by(Ticket.id)))
        shown = [(t.number, t.kind, t.status, t.location, t.description) for t in made]
        assert len(made) == len(expected), f"tickets made: {shown}"
        for ticket, fields in zip(made, expected, strict=True):
            for name in TICKET_FIELDS:
                if name in fields:
                    assert getattr(ticket, name) == fields[name], f"{ticket.number}.{name}: {shown}"
            if "description_has" in fields:
                assert fields["description_has"] in ticket.description, shown
            if "visit_day" in fields:  # the local date of the agreed time, YYYY-MM-DD
                start = ticket.preferred_start
                assert start is not None and f"{local(start):%Y-%m-%d}" == fields["visit_day"], shown


def _staff_texts(app: App) -> list[str]:
    with app.sessions() as session:
        rows = session.scalars(select(OutboxMessage).where(OutboxMessage.channel == "staff"))
        return [row.text for row in rows]
