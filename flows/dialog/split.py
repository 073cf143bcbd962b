"""Several requests in one message: "厨房水管漏了，顺便问下我家物业费还欠多少" is a repair and a fee
question. The message is cut into clauses, each understood on its own; when clauses ask for different
things, each is handled (questions answered, the first ticket-type request started, a further one kept
as a draft). Narratives that mix a fault with a complaint about it ("灯坏了一个月了 也没人管") stay
one request: those pairs are never split.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from flows.dialog.registry import QUESTIONS, TICKETS, spec
from flows.intents.complaint import topic_of
from nlu.types import Parse

SPLIT_CONFIDENCE = 0.85
MARKED_CONFIDENCE = 0.6  # ... or this, when the clause names its topic (a service, a fee item, a fault)
# Pairs that are one story, not two requests: a fault told with the grievance or the follow-up.
ONE_STORY = (
    frozenset({"repair", "complaint"}),
    frozenset({"complaint", "status_query"}),
    frozenset({"repair", "status_query"}),
)
# Complaint topics that are a matter of their own, not the grievance about a fault.
NUISANCES = frozenset({"noise", "construction", "parking", "pets", "rubbish", "security", "cleaning"})
_CLAUSE_END = re.compile(
    r"[，,。！!？?；;\n]+|\s{1,}|(?=顺便|另外|还有(?:个|一个|就是)?|仲有|對了|对了|再问一?下|还想)"
)
_MIN_CLAUSE = 3


@dataclass(frozen=True)
class Request:
    text: str
    parse: Parse

    @property
    def intent(self) -> str:
        return self.parse.intent


def split(text: str, parse: Callable[[str], Parse]) -> list[Request]:
    """The distinct requests of ``text`` in order; one (or none) when it asks for one thing."""
    clauses = [c.strip() for c in _CLAUSE_END.split(text) if len(c.strip()) >= _MIN_CLAUSE]
    if len(clauses) < 2:
        return []
    requests: list[Request] = []
    lead = ""  # clauses before the first request (who, where) belong to it
    for clause in clauses:
        understood = parse(clause)
        starts = understood.intent in QUESTIONS | TICKETS and _sure(understood)
        if starts and not (requests and understood.intent == requests[-1].intent):
            requests.append(Request(f"{lead}{clause}", understood))
            lead = ""
        elif requests:  # the same request goes on, or a clause that asks nothing of its own
            requests[-1] = Request(f"{requests[-1].text}，{clause}", requests[-1].parse)
        else:
            lead += f"{clause}，"
    requests = _merge_stories(requests)
    if len(requests) < 2 or len({r.intent for r in requests}) < 2:
        return []
    return requests


def _merge_stories(requests: list[Request]) -> list[Request]:
    """A clause that belongs to another's story ("你哋几时先嚟整啊" after the leak) joins it."""
    pairs = _one_story(requests)
    merged: list[Request] = []
    for request in requests:
        home = next((m for m in merged if frozenset({m.intent, request.intent}) in pairs), None)
        if home is None:
            merged.append(request)
            continue
        keeper = home if home.intent in TICKETS or request.intent not in TICKETS else request
        joined = Request(f"{home.text}，{request.text}", keeper.parse)
        merged[merged.index(home)] = joined
    return merged


def _one_story(requests: list[Request]) -> tuple[frozenset[str], ...]:
    """ONE_STORY, but a fault told with a nuisance of its own (灯坏了 + 楼下装修天天电钻) is two."""
    complaints = [r.text for r in requests if r.intent == "complaint"]
    if complaints and all(topic_of(text) in NUISANCES for text in complaints):
        return tuple(pair for pair in ONE_STORY if pair != frozenset({"repair", "complaint"}))
    return ONE_STORY


def _sure(parse: Parse) -> bool:
    if parse.confidence >= SPLIT_CONFIDENCE:
        return True
    return parse.confidence >= MARKED_CONFIDENCE and spec(parse.intent).names_topic(parse)
