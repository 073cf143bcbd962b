"""The intent registry and the ticket enums: every intent the NLU knows is served, each kind of
ticket has its own number prefix and is filed by one intent, and stored values read back."""

from __future__ import annotations

from data.kinds import OPEN_STATUSES, EventKind, TicketKind, TicketStatus
from flows.dialog import registry
from flows.dialog.spec import Aside, FlowSpec
from nlu.types import INTENTS


def test_every_nlu_intent_has_a_flow_or_an_answer() -> None:
    assert [i for i in INTENTS if not registry.spec(i).starts] == []


def test_names_are_unique_and_flows_carry_their_spec_name() -> None:
    names = [s.name for s in registry.SPECS]
    assert len(names) == len(set(names))
    assert all(s.flow is None or s.flow.name == s.name for s in registry.SPECS)
    assert all((s.flow is None) != (s.answer is None) for s in registry.SPECS)


def test_every_ticket_kind_is_filed_by_one_intent_with_a_prefix_of_its_own() -> None:
    filed = [s.ticket for s in registry.SPECS if s.ticket is not None]
    assert sorted(filed) == sorted(TicketKind)
    prefixes = [k.prefix for k in TicketKind]
    assert len(prefixes) == len(set(prefixes)) and all(len(p) == 2 for p in prefixes)


def test_drafts_and_asides_belong_to_titled_requests() -> None:
    for spec in registry.SPECS:
        if spec.keeps_draft or spec.aside == Aside.TICKET:
            assert spec.title and spec.flow is not None and spec.needs_binding, spec.name
    assert {"fee_query", "status_query", "enquiry"} == registry.QUESTIONS
    assert {"repair", "complaint", "booking"} == registry.TICKETS
    assert registry.by_title("投诉") is registry.spec("complaint")


def test_an_unknown_intent_gets_a_spec_that_does_nothing() -> None:
    assert registry.spec("nlu_fallback") == FlowSpec("nlu_fallback")
    assert not registry.spec(None).starts


def test_forms_show_their_slots() -> None:
    assert [s.name for s in registry.spec("repair").slots][:2] == ["area", "unit"]
    assert registry.spec("binding").slots == ()


def test_stored_values_read_back_and_equal_their_strings() -> None:
    assert TicketKind.of("repair") is TicketKind.REPAIR and TicketKind.REPAIR == "repair"
    assert TicketKind.of("parcel") is None
    assert TicketKind.name_of("parcel", "工单") == "工单" and TicketKind.name_of("complaint") == "投诉"
    assert TicketStatus.name_of("in_progress") == "处理中" and TicketStatus.name_of("odd") == "odd"
    assert "quoted" in OPEN_STATUSES and "done" not in OPEN_STATUSES
    assert EventKind.told_of("reassigned") == "已转派" and EventKind.told_of("relay_out") == "relay_out"
    assert EventKind.name_of("relay_out") == "回复居民"
