"""Seed scenarios end to end: the emulator over HTTP, through the real openai client.

Each broken history is built from what the emulator's model really emitted, replayed
statelessly (the whole history as ``input`` / ``messages``). The raw history must get the
service's exact 400; the repaired one must be accepted. Expected texts are written out here
rather than taken from ``tracker._rules``, so a drift in either shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from _builders import output, tool, user
from openai import OpenAI

from tracker._repair import repair_history
from tracker._repair_actions import PLACEHOLDER_PREFIX
from tracker._rules import validate_history
from tracker.emulator import Emulator, RuleOptions

TOOLS: Any = [{"type": "function", "name": "weather"}, {"type": "function", "name": "add"}]
CHAT_TOOLS: Any = [
    {"type": "function", "function": {"name": "weather"}},
    {"type": "function", "function": {"name": "add"}},
]
ASK = 'weather({"city": "Paris"}) weather({"city": "Rome"})'
ASK_TWO_ROUNDS = 'weather({"city": "Paris"}) then add({"a": 1, "b": 2})'
ORPHAN_TOOL = (
    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message "
    "with 'tool_calls'."
)
UNANSWERED = (
    "An assistant message with 'tool_calls' must be followed by tool messages responding to "
    "each 'tool_call_id'. The following tool_call_ids did not have response messages: "
)


def error(message: str, param: str | None) -> dict[str, Any]:
    return {"message": message, "type": "invalid_request_error", "param": param, "code": None}


def rejected(send: Any) -> dict[str, Any]:
    """Send; return the 400 error body the client raised."""
    with pytest.raises(openai.BadRequestError) as info:
        send()
    assert 400 == info.value.status_code
    body: dict[str, Any] = info.value.body  # type: ignore[assignment]
    return body


def respond(client: OpenAI, items: list[Any], model: str = "emu-1") -> Any:
    return client.responses.create(model=model, input=items, tools=TOOLS)


def chat(client: OpenAI, messages: list[Any]) -> Any:
    return client.chat.completions.create(model="emu-1", messages=messages, tools=CHAT_TOOLS)


def assert_same_as_rules(body: dict[str, Any], items: list[Any], api: Any) -> None:
    """The emulator answered what validate_history reports first."""
    first = validate_history(items, api=api)[0]
    assert first.envelope()["error"] == body


@pytest.fixture
def strict_emulator() -> Iterator[Emulator]:
    """An emulator that also rejects a second output for one call (the [3P] rule P3)."""
    with Emulator(seed=3, options=RuleOptions(reject_duplicate_outputs=True)) as emu:
        yield emu


# ---------------------------------------------------------------- Responses


def test_responses_orphan_output(client: OpenAI) -> None:
    """An output whose call was lost: P2; the repair drops it and the model answers."""
    first = respond(client, [user(ASK)])
    call_id = first.output[0].call_id
    raw = [user("hello"), output(call_id)]
    body = rejected(lambda: respond(client, raw))
    want = f"No tool call found for function call output with call_id {call_id}."
    assert error(want, "input") == body
    assert_same_as_rules(body, raw, "responses")
    repaired, _ = repair_history(raw)
    assert "completed" == respond(client, repaired).status


def test_responses_results_before_calls(client: OpenAI) -> None:
    """Several calls then several results, saved in the wrong order: the results move."""
    first = respond(client, [user(ASK)])
    calls = list(first.output)
    raw = [user(ASK), *(output(c.call_id) for c in calls), *calls]
    body = rejected(lambda: respond(client, raw))
    want = f"No tool call found for function call output with call_id {calls[0].call_id}."
    assert error(want, "input") == body
    repaired, actions = repair_history(raw)
    assert ["move_output", "move_output"] == [a.kind for a in actions]
    answer = respond(client, repaired)
    assert "message" == answer.output[0].type


@pytest.mark.parametrize("policy", ["placeholder", "drop"])
def test_responses_missing_results(client: OpenAI, policy: Any) -> None:
    """A replay without tool results: P1; placeholders (or dropping the calls) are accepted."""
    first = respond(client, [user(ASK)])
    raw = [user(ASK), *first.output]
    body = rejected(lambda: respond(client, raw))
    want = f"No tool output found for function call {first.output[0].call_id}."
    assert error(want, "input") == body
    repaired, _ = repair_history(raw, policy=policy)
    answer = respond(client, repaired)
    if policy == "placeholder":
        assert PLACEHOLDER_PREFIX in answer.output_text
    else:
        assert [user(ASK)] == repaired


def test_responses_duplicate_result(strict_emulator: Emulator) -> None:
    """Two outputs for one call (rejected under P3): the repair keeps the first."""
    with OpenAI(base_url=strict_emulator.base_url, api_key="k", max_retries=0) as client:
        first = respond(client, [user(ASK)])
        a, b = first.output
        sunny = [output(a.call_id, "sunny"), output(b.call_id, "sunny")]
        raw = [user(ASK), a, b, *sunny, output(a.call_id, "rain")]
        body = rejected(lambda: respond(client, raw))
        want = (
            f"Duplicate function_call_output for call_id '{a.call_id}'. Each function_call "
            "must have exactly one matching function_call_output"
        )
        assert error(want, "input") == body
        repaired, _ = repair_history(raw)
        assert raw[:5] == repaired
        assert "sunny" in respond(client, repaired).output_text


def test_responses_reasoning_before_a_dropped_call(client: OpenAI) -> None:
    """Dropping an unanswered call without its reasoning is A1; the repair drops both."""
    first = respond(client, [user('weather({"city": "Oslo"})')], model="emu-reason-1")
    reasoning, call = first.output
    raw = [user('weather({"city": "Oslo"})'), reasoning, call]
    body = rejected(lambda: respond(client, raw, "emu-reason-1"))
    assert error(f"No tool output found for function call {call.call_id}.", "input") == body
    naive = raw[:2]
    body = rejected(lambda: respond(client, naive, "emu-reason-1"))
    want = (
        f"Item '{reasoning.id}' of type 'reasoning' was provided without its required "
        "following item."
    )
    assert error(want, "input") == body
    repaired, actions = repair_history(raw, policy="drop")
    assert [raw[0]] == repaired
    assert ["drop_reasoning", "drop_call"] == [a.kind for a in actions]
    assert "completed" == respond(client, repaired, "emu-reason-1").status


def test_responses_reasoning_shared_by_parallel_calls(client: OpenAI) -> None:
    """One call of a reasoning round unanswered: drop it and the reasoning; the rest loses ids."""
    first = respond(client, [user(ASK)], model="emu-reason-1")
    reasoning, a, b = first.output
    raw = [user(ASK), reasoning, a, b, output(b.call_id)]
    body = rejected(lambda: respond(client, raw, "emu-reason-1"))
    assert error(f"No tool output found for function call {a.call_id}.", "input") == body
    without_ids = [user(ASK), b, output(b.call_id)]
    body = rejected(lambda: respond(client, without_ids, "emu-reason-1"))
    want = (
        f"Item '{b.id}' of type 'function_call' was provided without its required "
        f"'reasoning' item: '{reasoning.id}'."
    )
    assert error(want, "input") == body
    repaired, actions = repair_history(raw, policy="drop")
    assert ["drop_reasoning", "drop_call", "strip_id"] == [x.kind for x in actions]
    assert "completed" == respond(client, repaired, "emu-reason-1").status


# ---------------------------------------------------------------- Chat Completions


def test_chat_orphan_tool_message(client: OpenAI) -> None:
    """A tool message with no tool_calls before it: the exact 400; repaired is accepted."""
    raw = [user("hello"), tool("call_0123456789abcdefghijklmn")]
    body = rejected(lambda: chat(client, raw))
    assert error(ORPHAN_TOOL, "messages.[1].role") == body
    assert_same_as_rules(body, raw, "chat")
    repaired, _ = repair_history(raw, api="chat")
    assert "hello" in chat(client, repaired).choices[0].message.content


def test_chat_several_calls_then_several_results(client: OpenAI) -> None:
    """Two tool-call messages followed by both results: each result moves after its call."""
    first = chat(client, [user(ASK_TWO_ROUNDS)]).choices[0].message
    call_1 = first.tool_calls[0].id
    second = chat(client, [user(ASK_TWO_ROUNDS), first, tool(call_1)]).choices[0].message
    call_2 = second.tool_calls[0].id
    raw = [user(ASK_TWO_ROUNDS), first, second, tool(call_1), tool(call_2, "3")]
    body = rejected(lambda: chat(client, raw))
    assert error(UNANSWERED + call_1, "messages.[1].role") == body
    repaired, _ = repair_history(raw, api="chat")
    assert [raw[0], first, raw[3], second, raw[4]] == repaired
    final = chat(client, repaired).choices[0]
    assert "stop" == final.finish_reason


@pytest.mark.parametrize("policy", ["placeholder", "drop"])
def test_chat_missing_results(client: OpenAI, policy: Any) -> None:
    """Tool calls replayed without results: the exact 400 names both ids; repaired works."""
    first = chat(client, [user(ASK)]).choices[0].message
    ids = [c.id for c in first.tool_calls]
    raw = [user(ASK), first, user("and now?")]
    body = rejected(lambda: chat(client, raw))
    assert error(UNANSWERED + ", ".join(ids), "messages.[1].role") == body
    repaired, _ = repair_history(raw, api="chat", policy=policy)
    assert "stop" == chat(client, repaired).choices[0].finish_reason


def test_chat_duplicate_result(client: OpenAI) -> None:
    """A result replayed twice, the copy after the answer: orphan 400; repair drops the copy."""
    first = chat(client, [user('weather({"city": "Oslo"})')]).choices[0].message
    call_id = first.tool_calls[0].id
    history = [user('weather({"city": "Oslo"})'), first, tool(call_id)]
    answer = chat(client, history).choices[0].message
    raw = [*history, answer, tool(call_id)]
    body = rejected(lambda: chat(client, raw))
    assert error(ORPHAN_TOOL, "messages.[4].role") == body
    repaired, actions = repair_history(raw, api="chat")
    assert raw[:4] == repaired
    assert ["drop_duplicate_output"] == [a.kind for a in actions]
    chat(client, [*repaired, user("thanks")])
