"""AG-UI histories: validate_history and repair_history on the shapes frameworks replay.

The shapes are agent-framework #2699 (several tool-call messages, then their results) and
#6909 (a text message between a call and its result), CopilotKit #3884 (results missing) and
#7100 (a turn ended with an unanswered backend call), and approval results appended at the end.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tracker import ItemError, UsageError
from tracker._agui import placeholder_id
from tracker._formats import detect_api
from tracker._repair import repair_history
from tracker._repair_actions import PLACEHOLDER_PREFIX, RepairAction, placeholder_text
from tracker._rules import validate_history


def user(text: str = "hi", mid: str = "u1") -> dict[str, Any]:
    """An AG-UI user message."""
    return {"id": mid, "role": "user", "content": text}


def asks(mid: str, *ids: str, text: str = "") -> dict[str, Any]:
    """An AG-UI assistant message making the calls ``ids`` (tool ``get_weather``)."""
    calls = [
        {"id": i, "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
        for i in ids
    ]
    return {"id": mid, "role": "assistant", "content": text, "toolCalls": calls}


def says(mid: str, text: str) -> dict[str, Any]:
    """An AG-UI assistant text message."""
    return {"id": mid, "role": "assistant", "content": text}


def result(cid: str, content: str = "sunny") -> dict[str, Any]:
    """An AG-UI tool message answering ``cid``."""
    return {"id": f"t_{cid}", "role": "tool", "toolCallId": cid, "content": content}


def kinds(actions: tuple[RepairAction, ...]) -> list[tuple[str, int | None, str | None]]:
    return [(a.kind, a.index, a.call_id) for a in actions]


def ids(messages: list[Any]) -> list[str]:
    return [m["id"] for m in messages]


def assert_results_kept_and_valid(before: list[Any], after: list[Any]) -> None:
    """Every real tool message of ``before`` is in ``after`` (same object); ``after`` is valid."""
    real = [m for m in before if m["role"] == "tool"]
    assert all(any(m is r for r in after) for m in real)
    assert [] == validate_history(after)


# ---------------------------------------------------------------- the replayed shapes


def test_results_after_several_call_messages_each_follow_their_call() -> None:
    """agent-framework #2699: call_a's result moves after its call; none is dropped."""
    a, bc = asks("m1", "call_a"), asks("m2", "call_b", "call_c")
    ta, tb, tc = result("call_a"), result("call_b", "rain"), result("call_c", "snow")
    messages = [user(), a, bc, ta, tb, tc]
    repaired, actions = repair_history(messages)
    assert [messages[0], a, ta, bc, tb, tc] == repaired
    assert [("move_output", 3, "call_a")] == kinds(actions)
    assert_results_kept_and_valid(messages, repaired)


def test_result_after_an_interleaved_text_message_moves_after_its_call() -> None:
    """agent-framework #6909: the late result is kept and moved before the text message."""
    a, text, ta = asks("m1", "call_a"), says("m2", "Looking it up"), result("call_a")
    messages = [user(), a, text, ta]
    repaired, actions = repair_history(messages, api="agui")
    assert [messages[0], a, ta, text] == repaired
    assert [("move_output", 3, "call_a")] == kinds(actions)
    assert_results_kept_and_valid(messages, repaired)


def test_missing_result_gets_a_placeholder_that_claims_no_success() -> None:
    """CopilotKit #3884: a replay without results gets flagged AG-UI placeholder tool messages."""
    a = asks("m1", "call_a")
    messages = [user(), a, user("and tomorrow?", "u2")]
    repaired, actions = repair_history(messages)
    placeholder = {
        "id": placeholder_id("call_a"),
        "role": "tool",
        "toolCallId": "call_a",
        "content": placeholder_text("call_a", "get_weather"),
    }
    assert [messages[0], a, placeholder, messages[2]] == repaired
    assert [("add_placeholder", 1, "call_a")] == kinds(actions)
    assert placeholder["content"].startswith(PLACEHOLDER_PREFIX)
    assert "Do not assume the call succeeded" in placeholder["content"]
    assert_results_kept_and_valid(messages, repaired)


def test_missing_result_with_drop_policy_removes_the_call() -> None:
    """CopilotKit #3884, policy drop: the call goes; a message left with text keeps its id."""
    messages = [user(), asks("m1", "call_a", text="Let me check"), user("next", "u2")]
    repaired, actions = repair_history(messages, policy="drop")
    assert [messages[0], says("m1", "Let me check"), messages[2]] == repaired
    assert [("drop_call", 1, "call_a")] == kinds(actions)
    assert_results_kept_and_valid(messages, repaired)


def test_unanswered_backend_call_is_never_answered_with_success() -> None:
    """CopilotKit #7100: later turns recover; the only result added says it is a placeholder."""
    messages = [
        user(),
        asks("m1", "call_bg", text="Checking the backend"),
        user("hello?", "u2"),
        says("m2", "Sorry, where were we?"),
        user("go on", "u3"),
    ]
    assert ["CHAT_UNANSWERED"] == [v.rule for v in validate_history(messages)]
    repaired, _ = repair_history(messages)
    [added] = [m for m in repaired if m["role"] == "tool"]
    assert placeholder_text("call_bg", "get_weather") == added["content"]
    assert added["content"].startswith(PLACEHOLDER_PREFIX)
    assert added["content"].endswith("Do not assume the call succeeded.")
    assert repaired.index(added) == 2
    assert_results_kept_and_valid(messages, repaired)


def test_approval_results_appended_at_the_end_move_after_their_calls() -> None:
    """Approval-resume results at the end of the history move to follow their calls."""
    a, b = asks("m1", "call_a"), asks("m2", "call_b")
    ta, tb = result("call_a", "approved: sent"), result("call_b", "approved: paid")
    messages = [user(), a, says("m3", "Approve?"), b, user("yes", "u2"), ta, tb]
    repaired, actions = repair_history(messages)
    assert ["u1", "m1", "t_call_a", "m3", "m2", "t_call_b", "u2"] == ids(repaired)
    assert [("move_output", 5, "call_a"), ("move_output", 6, "call_b")] == kinds(actions)
    assert_results_kept_and_valid(messages, repaired)


# ---------------------------------------------------------------- shape, identity, format


def test_valid_agui_history_comes_back_as_the_same_objects() -> None:
    """A valid AG-UI history: no actions, every message the very object given."""
    messages = [user(), asks("m1", "call_a"), result("call_a"), says("m2", "Sunny.")]
    repaired, actions = repair_history(messages)
    assert () == actions
    assert all(x is y for x, y in zip(messages, repaired, strict=True))
    assert len(messages) == len(repaired)


def test_agui_repair_is_idempotent_and_pure() -> None:
    """Repairing a repaired history changes nothing; the input is not modified."""
    messages = [user(), asks("m1", "call_a", "call_b"), says("m2", "x"), result("call_b")]
    before = copy.deepcopy(messages)
    once, _ = repair_history(messages)
    twice, actions = repair_history(once)
    assert (before, (), once) == (messages, actions, twice)


def test_run_agent_input_body_keeps_every_other_key() -> None:
    """A RunAgentInput body: its messages are repaired; threadId, tools, state... are kept."""
    messages = [user(), asks("m1", "call_a"), says("m2", "Looking it up"), result("call_a")]
    body = {"threadId": "th", "runId": "r1", "messages": messages, "tools": [], "state": {}}
    repaired, actions = repair_history(body)
    expected = {**body, "messages": [messages[0], messages[1], messages[3], messages[2]]}
    assert (expected, ["move_output"]) == (repaired, [a.kind for a in actions])
    assert [] == validate_history(repaired)
    again, none = repair_history(repaired)
    assert (True, ()) == (again is repaired, none)  # valid: the very same body back


def test_violations_name_agui_paths() -> None:
    """A violation names messages[i] and the AG-UI key, with the message's own id."""
    messages = [user(), asks("m1", "call_a"), says("m2", "x"), result("call_a")]
    first, second = validate_history(messages)
    assert ("CHAT_UNANSWERED", "messages[1].toolCalls", "m1") == (
        first.rule,
        first.param,
        first.item_id,
    )
    assert first.message.startswith("AG-UI messages[1]: the assistant message's toolCalls call_a")
    assert ("CHAT_ORPHAN_TOOL", "messages[3].toolCallId", "call_a") == (
        second.rule,
        second.param,
        second.call_id,
    )


def test_agui_messages_are_detected() -> None:
    """toolCalls / toolCallId tell AG-UI apart from Chat and Responses."""
    assert "agui" == detect_api([user(), asks("m1", "a"), result("a")])
    assert "agui" == detect_api([user(), result("a")])


def test_agui_messages_given_as_chat_are_still_refused() -> None:
    """api='chat' on AG-UI messages: refused (not dropped), pointing at api='agui'."""
    with pytest.raises(ItemError, match="api='agui'"):
        repair_history([user(), asks("m1", "a"), result("a")], api="chat")


@pytest.mark.parametrize("check", [validate_history, repair_history])
def test_a_request_body_that_is_not_run_agent_input_is_refused_with_the_fix(check: Any) -> None:
    """A Chat request body (no threadId/runId) is refused naming its keys, not read as keys."""
    body = {"model": "m", "messages": [user(), asks("m1", "a"), result("a")]}
    with pytest.raises(UsageError, match=r"keys 'model', 'messages': pass its 'messages' list"):
        check(body)
    with pytest.raises(UsageError, match="RunAgentInput"):
        check({"threadId": "th", "runId": "r1", "messages": None})


def test_a_run_agent_input_model_is_refused_with_the_fix() -> None:
    """ag_ui's RunAgentInput model (not a dict) is refused, saying to pass its model_dump."""
    core = pytest.importorskip("ag_ui.core")
    body = core.RunAgentInput.model_validate(
        {"threadId": "th", "runId": "r1", "state": {}, "tools": [], "context": []}
        | {"forwardedProps": {}, "messages": [user(), asks("m1", "a"), result("a")]}
    )
    with pytest.raises(UsageError, match=r"body.model_dump\(by_alias=True"):
        repair_history(body)
    fixed, actions = repair_history(body.model_dump(by_alias=True, exclude_none=True))
    assert ((), "th") == (actions, fixed["threadId"])


def test_ag_ui_message_models_are_agui_and_repaired_in_agui_shape() -> None:
    """ag_ui's parsed messages: AG-UI, not Chat; the repair rebuilds into a RunAgentInput."""
    core = pytest.importorskip("ag_ui.core")
    dump = {"threadId": "th", "runId": "r1", "state": {}, "tools": [], "context": []} | {
        "forwardedProps": {},
        "messages": [user(), asks("m1", "a"), asks("m2", "b"), user("next", "u2"), result("a")],
    }
    messages = core.RunAgentInput.model_validate(dump).messages
    assert "agui" == detect_api(messages)
    assert ["messages[1].toolCalls", "messages[2].toolCalls", "messages[4].toolCallId"] == [
        v.param for v in validate_history(messages)
    ]
    repaired, actions = repair_history(messages)
    assert ["u1", "m1", "t_a", "m2", placeholder_id("b"), "u2"] == [
        m["id"] if isinstance(m, dict) else m.id for m in repaired
    ]
    assert [("add_placeholder", 2, "b"), ("move_output", 4, "a")] == kinds(actions)
    assert [messages[0], messages[1], messages[4]] == repaired[:3]  # the very models
    again = core.RunAgentInput.model_validate({**dump, "messages": repaired}).messages
    assert () == repair_history(again)[1]  # valid: nothing left to repair
