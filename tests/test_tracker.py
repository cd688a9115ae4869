"""The tracker's decisions, one behaviour per test."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from _builders import numbered_call as call
from _builders import numbered_output as output
from _builders import user
from openai.types.responses import Response

from tracker import ContinuationError, HistoryError, ItemError, Tracker, UsageError


def response(rid: str, *items: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": rid, "output": list(items), **extra}


def send(t: Tracker, items: Any, **kw: Any) -> list[Any]:
    p = t.prepare(items, **kw)
    t.mark_sent(p)
    return list(p.input)


def test_first_turn_sends_everything_without_continuation() -> None:
    """A new auto-chained tracker sends all items and no previous_response_id."""
    items = [user("hi")]
    assert {"input": items} == Tracker().prepare(items).request_kwargs()


def test_auto_chain_follows_the_latest_response() -> None:
    """After a response is observed, the next request continues from it."""
    t = Tracker()
    send(t, [user("hi")])
    t.observe_response(response("resp_1", call(1)))
    assert "resp_1" == t.prepare([output(1)]).request_kwargs()["previous_response_id"]


def test_given_previous_response_id_is_used_then_advanced() -> None:
    """An explicit previous_response_id starts the chain and advances with responses."""
    t = Tracker(previous_response_id="resp_0")
    assert "resp_0" == t.prepare([user("hi")]).previous_response_id
    send(t, [user("hi")])
    t.observe_response(response("resp_1"))
    assert "resp_1" == t.previous_response_id


def test_conversation_mode_sends_conversation_and_never_chains() -> None:
    """In a conversation, requests carry `conversation` and no previous_response_id."""
    t = Tracker(conversation_id="conv_1")
    send(t, [user("hi")])
    t.observe_response(response("resp_1", conversation={"id": "conv_1"}))
    kwargs = t.prepare([user("more")]).request_kwargs()
    assert ("conv_1", None) == (kwargs["conversation"], kwargs.get("previous_response_id"))


def test_previous_response_id_and_conversation_are_mutually_exclusive() -> None:
    """Both continuations at once is a ContinuationError naming both."""
    with pytest.raises(ContinuationError, match=r"resp_1.*conv_1.*mutually exclusive"):
        Tracker(previous_response_id="resp_1", conversation_id="conv_1")


def test_malformed_continuation_id_is_rejected() -> None:
    """An id with characters the API refuses is rejected up front."""
    with pytest.raises(ContinuationError, match=r"'@results\.ress'"):
        Tracker(previous_response_id="@results.ress")


def test_response_items_are_never_sent_back() -> None:
    """Output items the server returned (with ids) are left out of later deltas."""
    t = Tracker()
    history: list[Any] = [user("hi")]
    send(t, history)
    r = response("resp_1", {"type": "reasoning", "id": "rs_1", "summary": []}, call(1))
    t.observe_response(r)
    history += [*r["output"], output(1)]
    assert [output(1)] == list(t.prepare(history).input)


def test_fresh_output_is_sent_once_even_when_rebuilt() -> None:
    """An output is keyed by call_id: sent once, never again even as a new object."""
    t = Tracker()
    t.observe_response(response("resp_1", call(1)))
    assert [output(1)] == send(t, [output(1)])
    assert [] == list(t.prepare([output(1)]).input)


def test_call_without_id_is_matched_by_call_id() -> None:
    """A call rebuilt without its fc_ id is known by its call_id."""
    t = Tracker(check="off")
    t.observe_response(response("resp_1", call(1)))
    assert [] == list(t.prepare([call(1, with_id=False)]).input)


def test_rebuilt_history_is_matched_by_content() -> None:
    """A deep copy of the whole history sends only the new message."""
    t = Tracker()
    history = [user("hi"), user("yes")]
    send(t, history)
    rebuilt = [*copy.deepcopy(history), user("new")]
    assert [user("new")] == list(t.prepare(rebuilt).input)


def test_repeated_message_is_still_sent() -> None:
    """A new message with the same text as an old one is sent: fingerprints are counted."""
    t = Tracker()
    history = [user("yes")]
    send(t, history)
    history.append(user("yes"))
    assert [history[1]] == [*t.prepare(copy.deepcopy(history)).input]
    assert history[1] is t.prepare(history).input[0]


def test_without_content_match_only_new_items_count() -> None:
    """content_match=False: a repeated message passed alone is sent."""
    t = Tracker()
    send(t, [user("yes")])
    assert [user("yes")] == list(t.prepare([user("yes")], content_match=False).input)


def test_string_input_is_one_user_message() -> None:
    """A string is sent as one user message."""
    assert [{"role": "user", "content": "hi"}] == list(Tracker().prepare("hi").input)


def test_duplicate_ids_within_one_input_are_sent_once() -> None:
    """The same id or call_id twice in one input is sent once (the service refuses repeats)."""
    p = Tracker().prepare([call(1), call(1), output(1), output(1)])
    assert ([call(1), output(1)], 2) == (list(p.input), p.skipped)


def test_one_idless_object_twice_in_one_input_is_sent_twice() -> None:
    """An id-less object occurring twice in a new input is two turns: both are sent."""
    msg = user("continue")
    assert [msg, msg] == list(Tracker().prepare([msg, call(1), output(1), msg]).input)[::3]


def test_rewind_resends_exactly_once() -> None:
    """After a failed request is rewound, its items are in the next delta, once."""
    t = Tracker()
    t.observe_response(response("resp_1", call(1)))
    p = t.prepare([output(1), user("next")])
    t.mark_sent(p)
    t.rewind(p)
    again = send(t, [output(1), user("next")])
    assert ([output(1), user("next")], []) == (again, list(t.prepare([output(1)]).input))


def test_rewind_of_unmarked_or_answered_request_is_refused() -> None:
    """Rewinding what was not marked, or what a response already answered, is a UsageError."""
    t = Tracker()
    p = t.prepare([user("hi")])
    with pytest.raises(UsageError, match="not marked sent"):
        t.rewind(p)
    t.mark_sent(p)
    t.observe_response(response("resp_1"))
    with pytest.raises(UsageError):
        t.rewind(p)
    assert [] == list(t.prepare(p.input).input)


def test_marking_twice_or_stale_delta_is_refused_and_changes_nothing() -> None:
    """A Prepared marked twice, or overtaken by another, raises and leaves the state as it was."""
    t = Tracker()
    t.observe_response(response("resp_1", call(1)))
    first, second = t.prepare([output(1)]), t.prepare([output(1), user("x")])
    t.mark_sent(first)
    with pytest.raises(UsageError, match="already marked"):
        t.mark_sent(first)
    before = t.to_state()
    with pytest.raises(UsageError, match=r"call_id=call_1.*prepare\(\) again"):
        t.mark_sent(second)
    assert before == t.to_state()


def test_prepared_from_another_tracker_is_refused() -> None:
    """A Prepared only belongs to the tracker that made it."""
    p = Tracker().prepare([user("x")])
    with pytest.raises(UsageError, match="another tracker"):
        Tracker().mark_sent(p)


def test_pending_calls_and_call_item_ids() -> None:
    """Calls without outputs are pending; each call_id maps to its provider item id."""
    t = Tracker(check="off")
    t.observe_response(response("resp_1", call(1), call(2)))
    send(t, [output(2)])
    assert (("call_1",), "fc_1") == (t.pending_call_ids, t.item_id_for_call("call_1"))


def test_store_false_response_cannot_be_chained() -> None:
    """Observing a store=False response raises and keeps the old continuation."""
    t = Tracker(previous_response_id="resp_0")
    with pytest.raises(ContinuationError, match=r"resp_1.*store=False"):
        t.observe_response(response("resp_1", call(1), store=False))
    assert ("resp_0", ()) == (t.previous_response_id, t.pending_call_ids)


def test_response_from_another_conversation_is_refused() -> None:
    """A response naming a different conversation raises ContinuationError."""
    t = Tracker(conversation_id="conv_1")
    with pytest.raises(ContinuationError, match="conv_2"):
        t.observe_response(response("resp_1", conversation={"id": "conv_2"}))


def test_unreadable_item_raises_and_changes_nothing() -> None:
    """prepare() raises ItemError naming the index; observe_response leaves no partial state."""
    t = Tracker()
    with pytest.raises(ItemError, match="index 1"):
        t.prepare([user("x"), 42])
    before = t.to_state()
    with pytest.raises(ItemError):
        t.observe_response({"id": "resp_1", "output": [call(1), "junk"]})
    assert before == t.to_state()


def test_sdk_response_object_is_observed() -> None:
    """An openai SDK Response is read like its dict form."""
    sdk = Response.model_validate(
        {
            "id": "resp_9",
            "object": "response",
            "created_at": 0,
            "model": "m",
            "output": [call(9)],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        }
    )
    t = Tracker(check="off")
    t.observe_response(sdk)
    assert ("resp_9", ("call_9",)) == (t.previous_response_id, t.pending_call_ids)
    assert [] == list(t.prepare(list(sdk.output)).input)


def test_check_raises_before_a_pending_call_goes_unanswered() -> None:
    """check="raise" (default): a delta leaving a held call without output is a HistoryError."""
    t = Tracker()
    t.observe_response(response("resp_1", call(1)))
    before = t.to_state()
    with pytest.raises(HistoryError, match="No tool output found for function call call_1") as info:
        t.prepare([user("never mind")])
    assert ("P1", before) == (info.value.violations[0].rule, t.to_state())


def test_check_raises_on_a_call_sent_without_its_output() -> None:
    """A call sent in the delta without its output is refused before sending."""
    with pytest.raises(HistoryError, match="call_7"):
        Tracker().prepare([user("x"), call(7, with_id=False)])


def test_check_repair_answers_pending_calls_with_a_flagged_placeholder() -> None:
    """check="repair" adds a deterministic placeholder output, recorded like any output."""
    t = Tracker(check="repair")
    t.observe_response(response("resp_1", call(1)))
    p = t.prepare([user("never mind")])
    t.mark_sent(p)
    placeholder = p.input[0]
    assert ("function_call_output", "call_1") == (placeholder["type"], placeholder["call_id"])
    assert (user("never mind"), (), 1) == (p.input[1], t.pending_call_ids, len(p.repairs))
    assert p.input == _repaired_again(t, p)


def _repaired_again(t: Tracker, p: Any) -> tuple[Any, ...]:
    """Preparing the same delta again from a fresh restore repairs to equal bytes."""
    t2 = Tracker(check="repair")
    t2.observe_response(response("resp_1", call(1)))
    return t2.prepare([user("never mind")]).input


def test_check_off_sends_the_delta_as_is() -> None:
    """check="off" leaves an invalid delta alone (the caller takes responsibility)."""
    t = Tracker(check="off")
    t.observe_response(response("resp_1", call(1)))
    assert [user("x")] == list(t.prepare([user("x")]).input)


def test_unknown_check_mode_is_refused() -> None:
    """A misspelt check mode is a UsageError."""
    with pytest.raises(UsageError, match="'rase'"):
        Tracker(check="rase")  # type: ignore[arg-type]


def test_async_tool_calls_are_not_pending() -> None:
    """A call with async: true may stay unanswered, as on the service."""
    t = Tracker()
    t.observe_response(response("resp_1", {**call(1), "async": True}))
    assert ((), [user("later")]) == (t.pending_call_ids, list(t.prepare([user("later")]).input))


def test_check_flags_an_output_for_a_call_nobody_made() -> None:
    """A tracker that saw its whole chain refuses an output for an unknown call_id (P2)."""
    t = Tracker()
    t.observe_response(response("resp_1", call(1)))
    with pytest.raises(
        HistoryError, match="No tool call found for function call output with call_id call_9"
    ):
        t.prepare([output(1), output(9)])


def test_check_trusts_outputs_when_the_chain_started_elsewhere() -> None:
    """Continuing an outside chain, calls made before the tracker are unknown, so trusted."""
    t = Tracker(previous_response_id="resp_0")
    assert [output(9)] == list(t.prepare([output(9)]).input)


def test_observe_response_is_all_or_nothing() -> None:
    """An output item that reads but cannot be serialised raises before anything is recorded."""

    class Opaque:
        type = "message"  # readable, but neither a dict nor an SDK model

    t = Tracker()
    before = t.to_state()
    with pytest.raises(ItemError, match="index 1"):
        t.observe_response(response("resp_1", call(1), Opaque()))  # type: ignore[arg-type]
    assert before == t.to_state()
