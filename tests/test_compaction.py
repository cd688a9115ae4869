"""Compaction in the core tracker: the boundary, the refusals, the standalone window, snapshots."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests._builders import call, output, said, said_as, user
from tracker import CompactedCallError, CompactionError, Tracker, UsageError
from tracker._rules import RuleOptions


def cmp(item_id: str = "cmp_1", **extra: Any) -> dict[str, Any]:
    """A compaction output item."""
    return {"type": "compaction", "id": item_id, "encrypted_content": "sealed", **extra}


def response(rid: str, *out: Any) -> dict[str, Any]:
    """A stored response with ``out`` as its output."""
    return {"id": rid, "object": "response", "output": list(out)}


def compacted(rid: str = "resp_c", *, cmp_id: str = "cmp_9") -> dict[str, Any]:
    """A ``responses.compact`` result: the user messages, then one compaction item."""
    kept = {
        "type": "message",
        "id": "msg_u1",
        "role": "user",
        "status": "completed",
        "content": [{"type": "input_text", "text": "hi"}],
    }
    return {
        "id": rid,
        "object": "response.compaction",
        "output": [kept, cmp(cmp_id, created_by="server")],
    }


def _sent(tracker: Tracker, items: Any, **kw: Any) -> list[dict[str, Any]]:
    prepared = tracker.prepare(items, **kw)
    tracker.mark_sent(prepared)
    return prepared.request_input()


def _with_pending_call(tracker: Tracker) -> None:
    _sent(tracker, [user()])
    tracker.observe_response(response("resp_1", call("call_a", id="fc_a")))


def test_compaction_item_is_kept_by_id_and_never_resent() -> None:
    """A compaction output item is held by the server: a whole-history prepare leaves it out."""
    tracker = Tracker()
    first = user()
    _sent(tracker, [first])
    item = cmp()
    tracker.observe_response(response("resp_1", item, said()))
    prepared = tracker.prepare([first, dict(item), said(), user("next")])
    assert [user("next")] == prepared.request_input()
    assert "resp_1" == prepared.previous_response_id


def test_call_before_a_compaction_is_no_longer_pending() -> None:
    """A call pending when a compaction item arrives is summarised: not pending afterwards."""
    tracker = Tracker()
    _with_pending_call(tracker)
    tracker.observe_response(response("resp_2", cmp(), call("call_b", id="fc_b")))
    assert ("call_b",) == tracker.pending_call_ids


def test_compaction_boundary_switch_off_keeps_a_pending_call_answerable() -> None:
    """RuleOptions(compaction_boundary=False), the other reading of the record (the service
    pairs across a compaction item): a call pending at the compaction stays pending and its
    output is sent after it; a stateless transcript that drops what preceded the compaction
    still summarises the call."""
    off = RuleOptions(compaction_boundary=False)
    tracker = Tracker(rules=off)
    _with_pending_call(tracker)
    tracker.observe_response(response("resp_2", cmp()))
    assert ("call_a", "cmp_1") == (*tracker.pending_call_ids, tracker.last_compaction_id)
    assert [output("call_a")] == tracker.prepare([output("call_a")]).request_input()
    stateless = Tracker(store=False, rules=off)
    _with_pending_call(stateless)
    stateless.observe_response(response("resp_2", cmp()))
    assert () == stateless.pending_call_ids


def test_output_for_a_compacted_call_raises_naming_it() -> None:
    """Under check="raise" an output whose call was compacted is refused, naming the call."""
    tracker = Tracker()
    _with_pending_call(tracker)
    tracker.observe_response(response("resp_2", cmp()))
    before = tracker.to_state()
    with pytest.raises(CompactedCallError) as info:
        tracker.prepare([output("call_a")])
    assert ("call_a",) == info.value.call_ids
    assert "call_a" in str(info.value) and "No tool call found" in str(info.value)
    assert before == tracker.to_state()


def test_output_for_a_compacted_call_is_dropped_and_reported_under_repair() -> None:
    """Under check="repair" the output is left out and reported as a repair action."""
    tracker = Tracker(check="repair")
    _with_pending_call(tracker)
    tracker.observe_response(response("resp_2", cmp()))
    prepared = tracker.prepare([output("call_a"), user("next")])
    assert [user("next")] == prepared.request_input()
    assert [("drop_compacted_output", "call_a")] == [(a.kind, a.call_id) for a in prepared.repairs]


def test_compaction_trigger_is_refused_while_a_call_is_pending() -> None:
    """prepare(compact=True) raises CompactionError naming the pending call."""
    tracker = Tracker()
    _with_pending_call(tracker)
    with pytest.raises(CompactionError) as info:
        tracker.prepare([user("compact now")], compact=True)
    assert ("call_a",) == info.value.call_ids
    assert "call_a" in str(info.value)


def test_compaction_trigger_goes_last_once_the_output_is_in_the_request() -> None:
    """With the pending call answered in the same request, the trigger is the final item."""
    tracker = Tracker()
    _with_pending_call(tracker)
    sent = _sent(tracker, [output("call_a")], compact=True)
    assert [output("call_a"), {"type": "compaction_trigger"}] == sent


def test_trigger_from_an_earlier_turn_is_left_out() -> None:
    """A compaction_trigger that is not the final item was sent before: skipped, counted."""
    tracker = Tracker()
    first = user()
    _sent(tracker, [first])
    tracker.observe_response(response("resp_1", said()))
    prepared = tracker.prepare([first, {"type": "compaction_trigger"}, said(), user("more")])
    assert [user("more")] == prepared.request_input()
    assert 1 == prepared.skip_reasons["old_trigger"]


def test_trigger_given_as_the_final_item_is_sent() -> None:
    """A compaction_trigger passed as the final item is sent, last, like compact=True."""
    tracker = Tracker()
    sent = _sent(tracker, [user(), {"type": "compaction_trigger"}])
    assert [user(), {"type": "compaction_trigger"}] == sent


def test_trigger_with_an_id_is_kept_by_it_and_not_resent_after_a_restore() -> None:
    """A compaction_trigger carrying an id (SDK 3.36+) is keyed by it like any item the server
    holds: kept in the snapshot, so a restored tracker given the same history does not send it
    (and compact) again."""
    tracker = Tracker()
    first = user()
    _sent(tracker, [first])
    tracker.observe_response(response("resp_1", said()))
    history = [first, said(), {"type": "compaction_trigger", "id": "ct_1"}]
    assert history[2:] == _sent(tracker, history)
    tracker.observe_response(response("resp_2", cmp()))
    restored = Tracker.from_state(json.loads(json.dumps(tracker.to_state())))
    again = restored.prepare(json.loads(json.dumps(history)))
    assert ([], 1) == (again.request_input(), again.skip_reasons["server_id"])


def test_standalone_compaction_is_refused_while_a_call_is_pending() -> None:
    """prepare_compact raises CompactionError naming the pending call; tracker unchanged."""
    tracker = Tracker()
    _with_pending_call(tracker)
    before = tracker.to_state()
    with pytest.raises(CompactionError) as info:
        tracker.prepare_compact()
    assert ("call_a",) == info.value.call_ids
    assert before == tracker.to_state()


def test_standalone_compaction_compacts_the_chain() -> None:
    """prepare_compact gives the arguments of responses.compact: the chain, nothing resent."""
    tracker = Tracker()
    _with_pending_call(tracker)
    prepared = tracker.prepare_compact([output("call_a")])
    assert {"input": [output("call_a")], "previous_response_id": "resp_1"} == (
        prepared.request_kwargs()
    )
    assert prepared.compact


def test_after_standalone_compaction_next_request_starts_a_chain_with_the_window() -> None:
    """The next request carries the window (no previous_response_id, no created_by)."""
    tracker = Tracker()
    _sent(tracker, [user()])
    tracker.observe_response(response("resp_1", said()))
    tracker.mark_sent(tracker.prepare_compact())
    tracker.observe_response(compacted())
    prepared = tracker.prepare([user("next")])
    kwargs = prepared.request_kwargs()
    assert "previous_response_id" not in kwargs
    assert ["message", "compaction", "message"] == [
        i.get("type", "message") for i in kwargs["input"]
    ]
    assert "created_by" not in kwargs["input"][1]
    assert "status" not in kwargs["input"][0]


def test_window_is_sent_once_then_the_new_chain_continues() -> None:
    """Once the window's request is answered, the next request chains from that response."""
    tracker = Tracker()
    _sent(tracker, [user()])
    tracker.observe_response(response("resp_1", said()))
    tracker.observe_response(compacted())
    _sent(tracker, [user("next")])
    tracker.observe_response(response("resp_2", said()))
    prepared = tracker.prepare([user("third")])
    assert ([user("third")], "resp_2") == (
        prepared.request_input(),
        prepared.previous_response_id,
    )


def test_window_is_sent_again_after_a_failed_request() -> None:
    """A rewound request gives the window back: the retry carries it again."""
    tracker = Tracker()
    tracker.observe_response(response("resp_1", said()))
    tracker.observe_response(compacted())
    first = tracker.prepare([user("next")])
    tracker.mark_sent(first)
    tracker.rewind(first)
    assert first.request_input() == tracker.prepare([user("next")]).request_input()


def test_compacted_window_items_are_not_resent_from_a_whole_history() -> None:
    """A caller passing the compaction result in its history does not send it twice."""
    tracker = Tracker()
    tracker.observe_response(response("resp_1", said()))
    result = compacted()
    tracker.observe_response(result)
    sent = tracker.prepare([*result["output"], user("next")]).request_input()
    assert 1 == sum(1 for item in sent if item.get("type") == "compaction")


def test_snapshot_keeps_the_window_and_boundary_across_processes() -> None:
    """A tracker restored from JSON sends the same window and refuses the same output."""
    tracker = Tracker()
    _with_pending_call(tracker)
    tracker.observe_response(response("resp_2", cmp("cmp_1")))
    tracker.observe_response(compacted())
    restored = Tracker.from_state(json.loads(json.dumps(tracker.to_state())))
    assert (
        tracker.prepare([user("x")]).request_kwargs()
        == restored.prepare([user("x")]).request_kwargs()
    )
    with pytest.raises(CompactedCallError):
        restored.prepare([output("call_a")])


def test_version_1_snapshot_still_loads() -> None:
    """A snapshot written before compaction (version 1) restores with no boundary."""
    state = Tracker(previous_response_id="resp_1").to_state()
    for name in ("compacted_call_ids", "last_compaction_id", "window", "history", "call_types"):
        del state[name]
    state["version"] = 1
    restored = Tracker.from_state(state)
    assert "resp_1" == restored.prepare([user()]).previous_response_id


def test_standalone_compaction_in_a_conversation_is_refused() -> None:
    """responses.compact takes no conversation: prepare_compact says to use server-side."""
    tracker = Tracker(conversation_id="conv_1")
    with pytest.raises(UsageError) as info:
        tracker.prepare_compact([user()])
    assert "context_management" in str(info.value)


def test_compaction_trigger_in_a_conversation_is_sent() -> None:
    """In a conversation, compact=True sends the trigger with the conversation."""
    tracker = Tracker(conversation_id="conv_1")
    kwargs = tracker.prepare([user()], compact=True).request_kwargs()
    assert ("conv_1", {"type": "compaction_trigger"}) == (
        kwargs["conversation"],
        kwargs["input"][-1],
    )


def test_repair_history_drops_an_output_whose_call_lies_before_the_compaction() -> None:
    """The latest compaction item is a boundary: an output after it for a call before it goes."""
    from tracker import repair_history

    items = [user(), call("call_a"), cmp(), output("call_a"), user("next")]
    repaired, actions = repair_history(items, api="responses")
    assert [user(), call("call_a"), cmp(), user("next")] == repaired
    assert [("drop_orphan_output", 3, "call_a")] == [(a.kind, a.index, a.call_id) for a in actions]
    assert "its call lies before the compaction item [2], which summarised it" == actions[0].detail


def test_repair_history_leaves_calls_before_the_compaction_unanswered() -> None:
    """A call summarised by a compaction gets no placeholder after it."""
    from tracker import repair_history

    items = [user(), call("call_a"), cmp(), user("next")]
    assert (items, ()) == repair_history(items, api="responses")


def test_repair_history_without_the_boundary_answers_calls_before_the_compaction() -> None:
    """compaction_boundary=False (the switch's other reading) repairs the whole context: the
    call before the compaction gets its placeholder, so validate_history under the same switch
    finds nothing."""
    from tracker import repair_history, validate_history

    items = [user(), call("call_a"), cmp(), user("next")]
    repaired, actions = repair_history(items, api="responses", compaction_boundary=False)
    assert [("add_placeholder", 1)] == [(a.kind, a.index) for a in actions]
    assert [] == validate_history(repaired, api="responses", compaction_boundary=False)


def test_strip_encrypted_drops_the_named_items_and_reports_them() -> None:
    """strip_encrypted removes the named cmp_/rs_ items, one drop_encrypted action each."""
    from tracker import strip_encrypted

    stale = cmp("cmp_old")
    kept, actions = strip_encrypted([user(), stale, said()], ["cmp_old"])
    assert [user(), said()] == kept
    assert [("drop_encrypted", 1, "cmp_old")] == [(a.kind, a.index, a.item_id) for a in actions]


def test_strip_encrypted_strips_the_ids_a_dropped_reasoning_item_was_emitted_with() -> None:
    """The calls and message emitted right after a dropped rs_ item lose their ids (else the
    service answers A2: "provided without its required 'reasoning' item"), one strip_id each;
    the round ends at the next output or user message."""
    from tracker import strip_encrypted

    stale = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"}
    items = [
        user(),
        stale,
        call("call_a", id="fc_a"),
        call("call_b", id="fc_b"),
        output("call_a"),
        output("call_b"),
        said_as("msg_1", "done"),
    ]
    kept, actions = strip_encrypted(items)
    assert [user(), call("call_a"), call("call_b"), *items[4:]] == kept
    assert [("drop_encrypted", 1, "rs_1"), ("strip_id", 2, "fc_a"), ("strip_id", 3, "fc_b")] == [
        (a.kind, a.index, a.item_id) for a in actions
    ]
    assert "fc_a" == items[2]["id"]  # the caller's items are not modified


@pytest.mark.parametrize("item_ids", ["cmp_old", 7, [None]])
def test_strip_encrypted_refuses_ids_that_are_not_a_list_of_strings(item_ids: Any) -> None:
    """A single id as a string (read as its characters, it would drop nothing) or a non-list is
    a UsageError naming the fix, not a silent no-op: the function and Tracker.strip_encrypted."""
    from tracker import strip_encrypted

    with pytest.raises(UsageError, match="strip_encrypted\\(item_ids="):
        strip_encrypted([user(), cmp("cmp_old"), said()], item_ids)
    t = Tracker(store=False)
    before = t.to_state()
    with pytest.raises(UsageError, match="strip_encrypted\\(item_ids="):
        t.strip_encrypted(item_ids)  # the method alike, tracker unchanged
    assert before == t.to_state()


def test_strip_encrypted_drops_a_waiting_window_compaction_item() -> None:
    """After a standalone compaction, strip_encrypted leaves the stale cmp_ out of the window;
    a chain holding nothing inline drops nothing."""
    tracker = Tracker()
    _sent(tracker, [user("hi")])
    tracker.observe_response(response("resp_1", said()))
    assert () == tracker.strip_encrypted()
    tracker.mark_sent(tracker.prepare_compact())
    tracker.observe_response(compacted())
    assert ("cmp_9",) == tracker.strip_encrypted(["cmp_9"])
    sent = tracker.prepare([user("go on")])
    assert ["message", "message"] == [i.get("type", "message") for i in sent.request_input()]
    assert None is sent.previous_response_id


def test_strip_encrypted_in_a_stateless_transcript_strips_the_following_id() -> None:
    """A dropped reasoning item takes its following call's id with it (no A2); refused with a
    request in flight."""
    tracker = Tracker(store=False)
    _sent(tracker, [user("hi")])
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"}
    tracker.observe_response(response("resp_1", reasoning, call("call_a", id="fc_a")))
    pending = tracker.prepare([output("call_a")])
    tracker.mark_sent(pending)
    with pytest.raises(UsageError, match="in flight"):
        tracker.strip_encrypted()
    tracker.rewind(pending)
    assert ("rs_1",) == tracker.strip_encrypted()
    replay = tracker.prepare([output("call_a")]).request_input()
    assert [
        user("hi"),
        {k: v for k, v in call("call_a").items() if k != "id"},
        output("call_a"),
    ] == replay


def test_stateless_transcript_keeps_only_the_window_after_a_compaction() -> None:
    """store=False: a compaction item in an output drops what came before it (the request and
    the snapshot stop growing); an output for a call before it is never sent again, one for a
    call after it is; from_state keeps the trimmed transcript."""
    tracker = Tracker(store=False)
    _sent(tracker, [user("hi")])
    tracker.observe_response(response("resp_1", call("call_a", id="fc_a")))
    _sent(tracker, [output("call_a"), user("more")])
    tracker.observe_response(response("resp_2", cmp(), call("call_b", id="fc_b")))
    assert [cmp(), call("call_b", id="fc_b")] == list(tracker.transcript)
    restored = Tracker.from_state(json.loads(json.dumps(tracker.to_state())))
    for t in (tracker, restored):
        replay = t.prepare([output("call_a"), output("call_b")])
        assert [cmp(), call("call_b", id="fc_b"), output("call_b")] == replay.request_input()
        assert 1 == replay.skipped


def test_stateless_standalone_compaction_window_replaces_the_transcript() -> None:
    """store=False: a responses.compact result's window (user messages + compaction item,
    created_by stripped) replaces the transcript; the next request carries it once."""
    tracker = Tracker(store=False)
    _sent(tracker, [user("hi")])
    tracker.observe_response(response("resp_1", said()))
    compact = tracker.prepare_compact()
    assert [user("hi"), said()] == compact.request_input()
    tracker.mark_sent(compact)
    tracker.observe_response(compacted())
    window = [dict(compacted()["output"][0]), cmp("cmp_9")]
    del window[0]["status"]
    assert window == list(tracker.transcript)
    assert [*window, user("next")] == tracker.prepare([user("next")]).request_input()


def test_replay_before_compaction_switch_keeps_the_whole_stateless_history() -> None:
    """RuleOptions(replay_before_compaction=True): nothing before a compaction item is dropped."""
    tracker = Tracker(store=False, rules=RuleOptions(replay_before_compaction=True))
    _sent(tracker, [user("hi")])
    tracker.observe_response(response("resp_1", cmp(), said()))
    assert [user("hi"), cmp(), said()] == list(tracker.transcript)
