"""End to end: agent-framework's AG-UI adapter and OpenAI clients, guarded, against the emulator.

The replayed AG-UI histories have the shapes of agent-framework #2699 (several tool-call
messages, then their results) and #6909 (a text message between a call and its result), and an
approval result appended at the end (after the user's "yes"). The adapter
(agent-framework-ag-ui 1.7.0) drops call_a's real result in all three before the request is
built, so the framework sends a call without its result and the service answers 400. The guard
on the ``openai`` client repairs that request: every result the adapter hands over is delivered,
and call_a gets a placeholder that says no result was recorded (never a success). Repairing
the AG-UI history first (``repair_history(..., api="agui")``) delivers call_a's REAL result.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("agent_framework_ag_ui")
pytest.importorskip("agent_framework_openai")

from agent_framework import Agent
from agent_framework_ag_ui import AgentFrameworkAgent, AGUIRequest
from agent_framework_ag_ui._message_adapters import normalize_agui_input_messages
from agent_framework_openai import OpenAIChatClient, OpenAIChatCompletionClient
from openai import AsyncOpenAI

from tracker._repair import repair_history
from tracker.emulator import Emulator
from tracker.guard import GuardReport, guard

PLACEHOLDER = "[tracker placeholder]"


def agui_call(call_id: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": "weather", "arguments": "{}"}}


# agent-framework #2699: call_a's message, then call_b + call_c's, then all three results.
SEVERAL_CALL_MESSAGES = [
    {"id": "u1", "role": "user", "content": "Weather in Paris, Rome and Oslo?"},
    {"id": "m1", "role": "assistant", "content": "", "toolCalls": [agui_call("call_a")]},
    {
        "id": "m2",
        "role": "assistant",
        "content": "",
        "toolCalls": [agui_call("call_b"), agui_call("call_c")],
    },
    {"id": "t1", "role": "tool", "toolCallId": "call_a", "content": "sunny"},
    {"id": "t2", "role": "tool", "toolCallId": "call_b", "content": "rain"},
    {"id": "t3", "role": "tool", "toolCallId": "call_c", "content": "snow"},
]
# agent-framework #6909: a text message between the call and its (approved) result.
TEXT_BETWEEN = [
    {"id": "u1", "role": "user", "content": "Weather in Paris?"},
    {"id": "m1", "role": "assistant", "content": "", "toolCalls": [agui_call("call_a")]},
    {"id": "m2", "role": "assistant", "content": "Looking it up"},
    {"id": "t1", "role": "tool", "toolCallId": "call_a", "content": "sunny"},
]
# Approval results appended at the end: the approved call's result after the user's "yes".
APPROVAL_AT_END = [
    {"id": "u1", "role": "user", "content": "Weather in Paris?"},
    {"id": "m1", "role": "assistant", "content": "", "toolCalls": [agui_call("call_a")]},
    {"id": "m2", "role": "assistant", "content": "Approve the weather lookup?"},
    {"id": "u2", "role": "user", "content": "yes"},
    {"id": "t1", "role": "tool", "toolCallId": "call_a", "content": "sunny"},
]
SHAPES = {"2699": SEVERAL_CALL_MESSAGES, "6909": TEXT_BETWEEN, "approval": APPROVAL_AT_END}
CLIENTS = {"responses": OpenAIChatClient, "chat": OpenAIChatCompletionClient}


class RepairedInputAgent(AgentFrameworkAgent):
    """The README's recipe: repair the endpoint's AG-UI input before the adapter reads it."""

    def run(self, input_data: dict[str, Any], **kwargs: Any) -> Any:
        repaired, _ = repair_history(input_data)  # a RunAgentInput body: AG-UI detected
        return super().run(repaired, **kwargs)


def endpoint_input(history: list[dict[str, Any]]) -> dict[str, Any]:
    """What agent-framework's FastAPI endpoint hands the adapter for a posted RunAgentInput."""
    posted = {"threadId": "t1", "runId": "r1", "messages": history}
    return AGUIRequest.model_validate(posted).model_dump(exclude_none=True)


async def run_agui(
    emu: Emulator,
    api: str,
    history: list[dict[str, Any]],
    adapter: type[AgentFrameworkAgent] = AgentFrameworkAgent,
    **guarded: Any,
) -> str:
    """Run the AG-UI adapter on ``history`` as agent-framework's endpoint would; return the
    last event type (or the error text)."""
    openai_client = AsyncOpenAI(base_url=emu.base_url, api_key="x", max_retries=0)
    if guarded:
        openai_client = guard(openai_client, **guarded)
    agent = Agent(client=CLIENTS[api](model="emu-1", async_client=openai_client), name="a")
    events: list[str] = []
    try:
        async for event in adapter(agent).run(endpoint_input(history)):
            events.append(str(event.type.value))
    except Exception as error:  # the framework wraps the SDK's 400 in its own exception
        return str(error)
    finally:
        await openai_client.close()
    return events[-1]


def sent_results(emu: Emulator, api: str) -> dict[str, str]:
    """call_id -> the result text of the last request the emulator received."""
    if api == "chat":
        body = emu.requests_to("/v1/chat/completions")[-1]
        return {m["tool_call_id"]: m["content"] for m in body["messages"] if m["role"] == "tool"}
    body = emu.requests_to("/v1/responses")[-1]
    return {
        item["call_id"]: item["output"]
        for item in body["input"]
        if item.get("type") == "function_call_output"
    }


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_installed_adapter_still_drops_call_a_result(shape: str) -> None:
    """The installed AG-UI adapter loses call_a's real result (the bug the guard contains)."""
    messages, _ = normalize_agui_input_messages(SHAPES[shape])
    results = [c.call_id for m in messages for c in m.contents if c.type == "function_result"]
    assert "call_a" not in results


def test_installed_adapter_answers_a_missing_result_itself() -> None:
    """Results missing (CopilotKit #3884 shape): the adapter answers the call itself, no 400."""
    history = [SEVERAL_CALL_MESSAGES[0], SEVERAL_CALL_MESSAGES[1], TEXT_BETWEEN[0]]
    messages, _ = normalize_agui_input_messages(history)
    results = [c for m in messages for c in m.contents if c.type == "function_result"]
    assert ["call_a"] == [c.call_id for c in results]
    assert str(results[0].result).startswith("Tool execution skipped")


@pytest.mark.parametrize("api", sorted(CLIENTS))
@pytest.mark.parametrize("shape", sorted(SHAPES))
async def test_agui_history_is_400_without_the_guard_and_answered_with_it(
    shape: str, api: str
) -> None:
    """400 from the emulator bare; with the guard the run finishes and every result is sent."""
    reports: list[GuardReport] = []
    with Emulator() as emu:
        bare = await run_agui(emu, api, SHAPES[shape])
        assert "400" in bare
        assert "call_a" in bare
        assert "RUN_FINISHED" == await run_agui(emu, api, SHAPES[shape], on_report=reports.append)
        results = sent_results(emu, api)
        if api == "responses":
            assert set(results) <= set(emu.received_outputs())
    handed_over = {"2699": {"call_b": "rain", "call_c": "snow"}}.get(shape, {})
    assert handed_over == {cid: text for cid, text in results.items() if cid != "call_a"}
    assert results["call_a"].startswith(PLACEHOLDER)
    assert [("repaired", "add_placeholder", "call_a")] == [
        (r.outcome, a.kind, a.call_id) for r in reports for a in r.actions
    ]


@pytest.mark.parametrize("api", sorted(CLIENTS))
@pytest.mark.parametrize("shape", sorted(SHAPES))
async def test_agui_history_repaired_first_delivers_call_a_real_result(
    shape: str, api: str
) -> None:
    """repair_history on the endpoint's input before the adapter: every REAL result is sent."""
    assert {"messages", "run_id", "thread_id"} == set(endpoint_input(SHAPES[shape]))
    reports: list[GuardReport] = []
    with Emulator() as emu:
        adapter = RepairedInputAgent
        finished = await run_agui(emu, api, SHAPES[shape], adapter, on_report=reports.append)
        assert "RUN_FINISHED" == finished
        results = sent_results(emu, api)
    real = {m["toolCallId"]: m["content"] for m in SHAPES[shape] if m["role"] == "tool"}
    assert (real, []) == (results, reports)  # nothing left for the guard to repair
