"""Tests for repair_history, RepairAction, check_delta and detect_api."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from _builders import call, said, tool, user
from _builders import chat_calls as asks
from _builders import output as out
from _builders import reasoning as rs
from _examples import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionMessage
from openai.types.chat.chat_completion_message_function_tool_call import (
    ChatCompletionMessageFunctionToolCall,
)
from openai.types.responses import ResponseFunctionToolCall, ResponseReasoningItem

from tracker import HistoryError, ItemError, UsageError
from tracker._delta_check import check_delta
from tracker._formats import detect_api
from tracker._repair import repair_history
from tracker._repair_actions import PLACEHOLDER_PREFIX, RepairAction, placeholder_text
from tracker._rules import Provenance, validate_history

# ---------------------------------------------------------------- builders


def kinds(actions: tuple[RepairAction, ...]) -> list[tuple[str, int | None, str | None]]:
    return [(a.kind, a.index, a.call_id) for a in actions]


def ph(cid: str, name: str | None = "f") -> dict[str, Any]:
    return out(cid, placeholder_text(cid, name))


# ---------------------------------------------------------------- Responses


def test_valid_history_comes_back_unchanged() -> None:
    """A valid history is returned as the same objects, with no actions."""
    items = [user(), rs("rs_1"), call("a"), call("b"), out("b"), out("a"), said()]
    repaired, actions = repair_history(items)
    assert () == actions
    assert len(items) == len(repaired)
    assert all(x is y for x, y in zip(items, repaired, strict=True))


def test_orphan_output_is_dropped() -> None:
    """An output whose call_id no call has is dropped."""
    items = [user(), out("ghost"), said()]
    repaired, actions = repair_history(items)
    assert [items[0], items[2]] == repaired
    assert [("drop_orphan_output", 1, "ghost")] == kinds(actions)


def test_duplicate_output_keeps_the_first_after_the_call() -> None:
    """With several outputs for one call, the first one after the call stays."""
    early, first, second = out("a", "early"), out("a", "one"), out("a", "two")
    items = [user(), early, call("a"), first, second]
    repaired, actions = repair_history(items)
    assert [items[0], items[2], first] == repaired
    assert [("drop_duplicate_output", 1, "a"), ("drop_duplicate_output", 4, "a")] == kinds(actions)


def test_output_before_its_call_moves_after_the_run_of_calls() -> None:
    """An output placed before its call moves to just after the run of calls it belongs to."""
    items = [user(), out("b"), call("a"), call("b"), out("a"), said()]
    repaired, actions = repair_history(items)
    assert [items[0], items[2], items[3], items[1], items[4], items[5]] == repaired
    assert [("move_output", 1, "b")] == kinds(actions)


def test_missing_output_gets_a_deterministic_placeholder() -> None:
    """A call without output gets a flagged placeholder naming the call, after its run."""
    items = [user(), call("a", "weather"), call("b"), out("b"), said()]
    repaired, actions = repair_history(items)
    assert [items[0], items[1], items[2], ph("a", "weather"), items[3], items[4]] == repaired
    assert repaired[3]["output"].startswith(PLACEHOLDER_PREFIX)
    assert [("add_placeholder", 1, "a")] == kinds(actions)
    assert repaired == repair_history(copy.deepcopy(items))[0]


def test_drop_policy_drops_the_call_and_its_reasoning() -> None:
    """Policy drop removes an unanswered call and the reasoning item right before it."""
    items = [user(), rs("rs_1"), call("a"), user("next"), said()]
    repaired, actions = repair_history(items, policy="drop")
    assert [items[0], items[3], items[4]] == repaired
    assert [("drop_reasoning", 1, None), ("drop_call", 2, "a")] == kinds(actions)
    assert "rs_1" == actions[0].item_id


def test_drop_policy_keeps_reasoning_that_belongs_to_another_call() -> None:
    """Reasoning before an answered call stays when a later call of its run is dropped."""
    items = [user(), rs("rs_1"), call("a"), call("b"), out("a")]
    repaired, actions = repair_history(items, policy="drop")
    assert [items[0], items[1], items[2], items[4]] == repaired
    assert [("drop_call", 3, "b")] == kinds(actions)


def test_drop_policy_strips_ids_of_the_calls_that_shared_the_reasoning() -> None:
    """Dropping the first call of a round drops its reasoning; the round's other calls lose ids."""
    items = [user(), rs("rs_1"), call("a", id="fc_a"), call("b", id="fc_b"), out("b")]
    repaired, actions = repair_history(items, policy="drop")
    assert [items[0], call("b"), items[4]] == repaired
    assert [
        ("drop_reasoning", 1, None),
        ("drop_call", 2, "a"),
        ("strip_id", 3, "b"),
    ] == kinds(actions)
    assert {"type": "reasoning", "id": "rs_1", "summary": []} == items[1]


def test_async_calls_may_stay_pending() -> None:
    """A call marked async needs no output, so it is left alone."""
    items = [user(), call("a", **{"async": True}), said()]
    assert (items, ()) == repair_history(items)


def test_call_type_without_placeholder_form_is_dropped() -> None:
    """A computer_call cannot get a text placeholder, so it is dropped even under placeholder."""
    items = [user(), {"type": "computer_call", "call_id": "c", "action": {}}, said()]
    repaired, actions = repair_history(items)
    assert [items[0], items[2]] == repaired
    assert [("drop_call", 1, "c")] == kinds(actions)


def test_custom_tool_call_gets_custom_output_placeholder() -> None:
    """A custom tool call's placeholder is a custom_tool_call_output."""
    items = [{"type": "custom_tool_call", "call_id": "c", "name": "sh", "input": "ls"}]
    repaired, _ = repair_history(items)
    assert {
        "type": "custom_tool_call_output",
        "call_id": "c",
        "output": placeholder_text("c", "sh"),
    } == repaired[1]


def test_duplicate_call_is_dropped() -> None:
    """A second call with the same call_id is dropped; the first keeps the output."""
    items = [call("a"), out("a"), call("a")]
    repaired, actions = repair_history(items)
    assert items[:2] == repaired
    assert [("drop_duplicate_call", 2, "a")] == kinds(actions)


def test_sdk_models_are_kept_as_the_same_objects() -> None:
    """openai SDK items are read like dicts and returned untouched."""
    reasoning = ResponseReasoningItem(id="rs_1", type="reasoning", summary=[])
    fc = ResponseFunctionToolCall(
        type="function_call", call_id="call_1", name="f", arguments="{}", id="fc_1"
    )
    repaired, actions = repair_history([user(), reasoning, fc])
    assert reasoning is repaired[1]
    assert fc is repaired[2]
    assert [("add_placeholder", 2, "call_1")] == kinds(actions)
    assert "fc_1" == actions[0].item_id
    dropped, _ = repair_history([user(), reasoning, fc], policy="drop")
    assert 1 == len(dropped)


def test_input_is_not_modified() -> None:
    """The repair is pure: the caller's list and items are left as they were."""
    items = [out("x"), asks("a"), {"role": "user", "content": "q"}]
    before = copy.deepcopy(items)
    repair_history(items, api="chat", policy="drop")
    repair_history([call("a"), out("b")], policy="drop")
    assert before == items


@pytest.mark.parametrize(("api", "policy"), [("bogus", "drop"), ("chat", "bogus")])
def test_unknown_api_or_policy_is_a_usage_error(api: Any, policy: Any) -> None:
    """An unknown api or policy raises UsageError naming the bad value."""
    with pytest.raises(UsageError, match="bogus"):
        repair_history([], api=api, policy=policy)


def test_action_reads_as_one_line() -> None:
    """str(RepairAction) names the index, kind, ids and detail."""
    action = RepairAction("drop_call", 3, "call_1", "fc_1", "no output")
    assert "[3] drop_call call_1 fc_1: no output" == str(action)
    assert "server add_placeholder call_2" == str(RepairAction("add_placeholder", None, "call_2"))


# ---------------------------------------------------------------- Chat Completions


def test_chat_orphan_tool_message_is_dropped() -> None:
    """A tool message with no tool_calls before it is dropped."""
    messages = [user(), tool("call_x"), {"role": "assistant", "content": "hello"}]
    repaired, actions = repair_history(messages, api="chat")
    assert [messages[0], messages[2]] == repaired
    assert [("drop_orphan_output", 1, "call_x")] == kinds(actions)


def test_chat_results_move_right_after_their_calls() -> None:
    """Several tool-call messages then several results: each result joins its call."""
    messages = [user(), asks("a"), asks("b", "c"), tool("a"), tool("c"), tool("b"), user("2")]
    repaired, actions = repair_history(messages, api="chat")
    m = messages
    assert [m[0], m[1], m[3], m[2], m[4], m[5], m[6]] == repaired
    assert [("move_output", 3, "a")] == kinds(actions)


def test_chat_missing_results_get_placeholders_after_the_real_ones() -> None:
    """Unanswered calls get placeholder tool messages at the end of their block."""
    messages = [user(), asks("a", "b"), tool("b"), {"role": "assistant", "content": "x"}]
    repaired, actions = repair_history(messages, api="chat")
    want_ph = {"role": "tool", "tool_call_id": "a", "content": placeholder_text("a", "f")}
    assert [messages[0], messages[1], messages[2], want_ph, messages[3]] == repaired
    assert [("add_placeholder", 1, "a")] == kinds(actions)


def test_chat_drop_policy_removes_the_call_and_an_emptied_message() -> None:
    """Policy drop removes unanswered calls; a message left with nothing is removed."""
    messages = [user(), asks("a", "b"), tool("b"), asks("c"), asks("d", content="see")]
    repaired, actions = repair_history(messages, api="chat", policy="drop")
    assert [
        messages[0],
        {"role": "assistant", "content": None, "tool_calls": [messages[1]["tool_calls"][1]]},
        messages[2],
        {"role": "assistant", "content": "see"},
    ] == repaired
    assert [
        ("drop_call", 1, "a"),
        ("drop_call", 3, "c"),
        ("drop_message", 3, None),
        ("drop_call", 4, "d"),
    ] == kinds(actions)


def test_chat_duplicate_result_is_dropped() -> None:
    """A second result for one call is dropped, the one in place is kept."""
    messages = [user(), asks("a"), tool("a", "1"), {"role": "assistant", "content": "k"}]
    messages.append(tool("a", "2"))
    repaired, actions = repair_history(messages, api="chat")
    assert messages[:4] == repaired
    assert [("drop_duplicate_output", 4, "a")] == kinds(actions)


def test_chat_empty_tool_calls_is_removed() -> None:
    """tool_calls: [] is removed; the message stays if it has content."""
    messages = [user(), {"role": "assistant", "content": "hi", "tool_calls": []}]
    repaired, actions = repair_history(messages, api="chat")
    assert [messages[0], {"role": "assistant", "content": "hi"}] == repaired
    assert [("drop_empty_tool_calls", 1, None)] == kinds(actions)


def test_chat_sdk_message_is_kept_or_dumped() -> None:
    """An SDK ChatCompletionMessage is returned as is when valid, as a dict when changed."""
    tool_call = ChatCompletionMessageFunctionToolCall.model_validate(
        {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    )
    message = ChatCompletionMessage(role="assistant", content=None, tool_calls=[tool_call])
    valid = [user(), message, tool("call_a")]
    assert (valid, ()) == repair_history(valid, api="chat")
    repaired, _ = repair_history([user(), message], api="chat", policy="drop")
    assert [valid[0]] == repaired


# ---------------------------------------------------------------- detect_api


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        ([user(), asks("a")], "chat"),
        ([user(), tool("a")], "chat"),
        ([user(), call("a")], "responses"),
        ([user(), rs("rs_1")], "responses"),
        ([user()], "responses"),
        ([ChatCompletionMessage(role="assistant", content="x")], "chat"),
    ],
)
def test_detect_api(items: list[Any], expected: str) -> None:
    """Chat is recognised by tool roles and tool_calls, Responses by item types."""
    assert expected == detect_api(items)


def test_detect_api_refuses_a_mixed_list() -> None:
    """A list with a Chat tool message and a Responses call cannot be told: UsageError."""
    with pytest.raises(UsageError, match=r"item \[2\] is a Chat .* item \[1\] a Responses"):
        detect_api([user(), call("a"), tool("a")])


def test_repair_detects_chat_by_default() -> None:
    """Without api=, Chat messages are repaired as Chat (once: left broken as Responses)."""
    repaired, actions = repair_history([user(), asks("a"), user()])
    assert [user(), asks("a"), tool("a", placeholder_text("a", "f")), user()] == repaired
    assert [("add_placeholder", 1, "a")] == kinds(actions)


def test_repair_with_mixed_formats_is_a_usage_error() -> None:
    """Without api=, a list mixing both formats is refused before anything is repaired."""
    with pytest.raises(UsageError, match="Pass api="):
        repair_history([tool("a"), out("a")])


# ------------------------------------------------------- other formats given as Chat: refused


def agui_asks(*ids: str) -> dict[str, Any]:
    """An AG-UI assistant message: camelCase toolCalls, an id of its own."""
    calls = [
        {"id": i, "type": "function", "function": {"name": "f", "arguments": "{}"}} for i in ids
    ]
    return {"id": "m1", "role": "assistant", "content": "", "toolCalls": calls}


def agui_tool(cid: str) -> dict[str, Any]:
    """An AG-UI tool message: camelCase toolCallId."""
    return {"id": f"m_{cid}", "role": "tool", "content": "42", "toolCallId": cid}


def test_agui_messages_given_as_chat_are_refused_not_dropped_as_orphans() -> None:
    """AG-UI tool results read as Chat are never dropped: ItemError names the keys and format."""
    messages = [user(), agui_asks("a"), agui_tool("a")]
    with pytest.raises(ItemError, match=r"\(toolCallId\): it looks like AG-UI messages") as info:
        repair_history(messages, api="chat")
    assert 2 == info.value.index


def test_agui_calls_hiding_the_call_of_a_chat_result_are_refused() -> None:
    """A Chat result after an AG-UI toolCalls message: the message holding the call is named."""
    with pytest.raises(ItemError, match=r"index 1 has keys .*\(toolCalls\).*index 2") as info:
        repair_history([user(), agui_asks("a"), tool("a")], api="chat")
    assert 1 == info.value.index


def test_tool_message_without_id_but_unknown_keys_is_refused() -> None:
    """A tool result without tool_call_id whose id may sit under another key is not dropped."""
    message = {"role": "tool", "content": "r", "toolUseId": "a"}
    with pytest.raises(ItemError, match=r"index 1 .*without 'tool_call_id'.*\(toolUseId\)"):
        repair_history([user(), message], api="chat")


def test_true_chat_orphan_is_still_dropped() -> None:
    """A tool message with only Chat keys and no call is an orphan, as before."""
    _, actions = repair_history([user(), {"role": "tool", "content": "r"}], api="chat")
    assert [("drop_orphan_output", 1, None)] == kinds(actions)


def test_responses_call_with_a_foreign_id_key_is_refused() -> None:
    """A Responses call without call_id but with toolCallId: its output is not dropped."""
    items = [user(), {"type": "function_call", "toolCallId": "a", "name": "f"}, out("a")]
    with pytest.raises(ItemError, match="index 1 .*toolCallId.*index 2"):
        repair_history(items, api="responses")


def test_check_delta_names_delta_indexes_when_refusing() -> None:
    """check_delta's refusal counts indexes in the delta, not in the server's stand-ins."""
    delta = [{"type": "function_call", "toolCallId": "x", "name": "f"}, out("ghost")]
    with pytest.raises(ItemError, match="index 0 .*index 1") as info:
        check_delta(delta, pending_call_ids=["a"], known_call_ids={"a"}, mode="repair")
    assert 0 == info.value.index


# ---------------------------------------------------------------- check_delta


def test_check_delta_off_passes_everything_through() -> None:
    """mode='off' returns the delta as is."""
    delta = [out("ghost")]
    assert (delta, ()) == check_delta(delta, pending_call_ids=["a"], mode="off")


def test_check_delta_accepts_a_delta_answering_pending_calls() -> None:
    """Outputs for every pending call, plus a message: valid, unchanged."""
    delta = [out("a"), out("b"), user()]
    assert (delta, ()) == check_delta(delta, pending_call_ids=["a", "b"], known_call_ids={"a", "b"})


def test_check_delta_raises_for_an_unanswered_pending_call() -> None:
    """A pending call the delta leaves unanswered raises HistoryError with the service's P1."""
    with pytest.raises(HistoryError, match="call_a") as info:
        check_delta([user()], pending_call_ids=["call_a"])
    violation = info.value.violations[0]
    assert ("P1", None, "No tool output found for function call call_a.") == (
        violation.rule,
        violation.index,
        violation.message,
    )


def test_check_delta_raises_for_an_output_of_an_unknown_call() -> None:
    """An output for a call the server does not hold is P2 at its delta index."""
    with pytest.raises(HistoryError) as info:
        check_delta([user(), out("ghost")], known_call_ids=set())
    assert [("P2", 1)] == [(v.rule, v.index) for v in info.value.violations]


def test_check_delta_trusts_outputs_when_server_calls_are_unknown() -> None:
    """Without known_call_ids an output for a call outside the delta is trusted."""
    delta = [out("call_x")]
    assert (delta, ()) == check_delta(delta)


def test_check_delta_repair_answers_pending_calls_first() -> None:
    """Repair puts placeholders for pending calls at the start, whatever the policy."""
    delta = [user(), out("ghost")]
    items, actions = check_delta(
        delta,
        pending_call_ids={"a": "function_call"},
        known_call_ids={"a"},
        mode="repair",
        policy="drop",
    )
    assert [ph("a", None), delta[0]] == items
    assert [("add_placeholder", None, "a"), ("drop_orphan_output", 1, "ghost")] == kinds(actions)


def test_check_delta_repair_drops_a_second_output_for_an_answered_call() -> None:
    """An output for a call the server already has an output for is dropped."""
    delta = [out("a"), user()]
    items, actions = check_delta(
        delta, known_call_ids={"a"}, answered_call_ids={"a"}, mode="repair"
    )
    assert [delta[1]] == items
    assert [("drop_duplicate_output", 0, "a")] == kinds(actions)


def test_check_delta_repair_raises_when_repair_cannot_help() -> None:
    """A held computer_call cannot get a placeholder, so repair still raises."""
    with pytest.raises(HistoryError, match="computer call c"):
        check_delta([user()], pending_call_ids={"c": "computer_call"}, mode="repair")


def test_check_delta_unknown_mode_is_a_usage_error() -> None:
    """An unknown mode raises UsageError."""
    with pytest.raises(UsageError, match="nope"):
        check_delta([], mode="nope")  # type: ignore[arg-type]


# ---------------------------------------------------------------- properties

_ids = iter(range(10**9))


def _cid() -> str:
    return f"call_{next(_ids):024d}"


@st.composite
def responses_histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Valid Responses histories: turns of rounds of parallel calls, answered in any order."""
    items: list[dict[str, Any]] = []
    for turn in range(draw(st.integers(1, 3))):
        items.append(user(f"turn {turn}"))
        for _ in range(draw(st.integers(0, 3))):
            if draw(st.booleans()):
                items.append(rs(f"rs_{next(_ids)}"))
            calls = [call(_cid(), id=f"fc_{next(_ids)}") for _ in range(draw(st.integers(1, 3)))]
            items.extend(calls)
            outputs = [out(c["call_id"]) for c in calls]
            for o in draw(st.permutations(outputs)):
                if draw(st.booleans()):
                    o["id"] = f"fco_{next(_ids)}"
                items.append(o)
        items.append(said(f"answer {turn}"))
    return items


@st.composite
def chat_histories(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Valid Chat histories: tool_calls messages each followed by their results."""
    items: list[dict[str, Any]] = [{"role": "system", "content": "be brief"}]
    for turn in range(draw(st.integers(1, 3))):
        items.append(user(f"turn {turn}"))
        for _ in range(draw(st.integers(0, 3))):
            ids = [_cid() for _ in range(draw(st.integers(1, 3)))]
            text = draw(st.sampled_from([None, "", "let me check"]))
            items.append(asks(*ids, content=text))
            items.extend(tool(i) for i in draw(st.permutations(ids)))
        items.append({"role": "assistant", "content": f"answer {turn}"})
    return items


def _is_output(item: dict[str, Any]) -> bool:
    return item.get("role") == "tool" or item.get("type") == "function_call_output"


def _corrupt(draw: st.DrawFn, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    items = list(items)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["drop_out", "dup_out", "move_out", "orphan", "drop_call"]))
        outs = [i for i, x in enumerate(items) if _is_output(x)]
        if op == "orphan":
            chat = items[0].get("role") == "system"
            items.insert(draw(st.integers(0, len(items))), tool(_cid()) if chat else out(_cid()))
        elif op == "drop_call":
            callers = [i for i, x in enumerate(items) if x.get("tool_calls") or "arguments" in x]
            if callers:
                at = draw(st.sampled_from(callers))
                if "tool_calls" in items[at]:
                    message = dict(items[at])
                    message["tool_calls"] = message["tool_calls"][1:]
                    items[at] = message
                else:
                    del items[at]
        elif outs:
            at = draw(st.sampled_from(outs))
            if op == "drop_out":
                del items[at]
            elif op == "dup_out":
                items.insert(draw(st.integers(0, len(items))), copy.deepcopy(items[at]))
            else:
                moved = items.pop(at)
                items.insert(draw(st.integers(0, len(items))), moved)
    return items


def _provenance(items: list[dict[str, Any]]) -> Provenance:
    """What the server would know: each reasoning item's following item and its round."""
    following: dict[str, str] = {}
    reasoning_for: dict[str, str] = {}
    for i, item in enumerate(items):
        if item.get("type") == "reasoning":
            following[item["id"]] = items[i + 1]["id"]
            j = i + 1
            while j < len(items) and items[j].get("type") == "function_call":
                reasoning_for[items[j]["id"]] = item["id"]
                j += 1
    return Provenance(following=following, reasoning_for=reasoning_for)


def _conversation(items: list[Any]) -> list[tuple[str, Any]]:
    """The non-tool messages (user, system, assistant text), in order."""
    kept = []
    for x in items:
        role = x.get("role")
        if role in ("user", "system") or (role == "assistant" and x.get("content")):
            kept.append((role, x.get("content")))
    return kept


@settings(max_examples=examples(150), deadline=None)
@given(
    data=st.data(),
    api=st.sampled_from(["responses", "chat"]),
    policy=st.sampled_from(["placeholder", "drop"]),
)
def test_repair_of_corrupted_histories(data: st.DataObject, api: Any, policy: Any) -> None:
    """Repair validates, is idempotent, and keeps non-tool messages in order."""
    valid = data.draw(responses_histories() if api == "responses" else chat_histories())
    assert [] == validate_history(valid, api=api)
    assert (valid, ()) == repair_history(valid, api=api, policy=policy)
    broken = data.draw(st.composite(lambda draw: _corrupt(draw, valid))())
    repaired, _ = repair_history(broken, api=api, policy=policy)
    assert [] == validate_history(repaired, api=api)
    assert (repaired, ()) == repair_history(repaired, api=api, policy=policy)
    assert _conversation(broken) == _conversation(repaired)
    if api == "responses":
        provenance = _provenance(valid)
        if not [v for v in validate_history(broken, provenance=provenance) if v.rule[0] == "A"]:
            assert [] == validate_history(repaired, provenance=provenance)
