"""MCP approvals and every client-owned continuation item: rules, tracker, repair, emulator."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tracker import HistoryError, Tracker, UsageError, repair_history, validate_history
from tracker.emulator import Emulator, RuleOptions, approval_script
from tracker.loop import MaxTurnsError, arun_turn, run_turn

APPROVAL = "The following MCP approval requests do not have an approval: "


def request(rid: str = "mcpr_1") -> dict[str, Any]:
    return {
        "type": "mcp_approval_request",
        "id": rid,
        "name": "roll",
        "arguments": "{}",
        "server_label": "dice",
    }


def approval(rid: str = "mcpr_1", approve: bool = True) -> dict[str, Any]:
    return {"type": "mcp_approval_response", "approval_request_id": rid, "approve": approve}


USER = {"role": "user", "content": "hi"}


def _client(emu: Emulator) -> OpenAI:
    return OpenAI(base_url=emu.base_url, api_key="k", max_retries=0)


# Each client-owned continuation item the service lists (SDK 3.57 required_input), with a call.
PAIRS: list[tuple[dict[str, Any], dict[str, Any], str]] = [
    (
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
        "No tool output found for function call call_1.",
    ),
    (
        {"type": "custom_tool_call", "call_id": "call_1", "name": "f", "input": "x"},
        {"type": "custom_tool_call_output", "call_id": "call_1", "output": "ok"},
        "No tool output found for custom tool call call_1.",
    ),
    (
        {"type": "computer_call", "call_id": "call_1", "action": {"type": "screenshot"}},
        {"type": "computer_call_output", "call_id": "call_1", "output": {"type": "x"}},
        "No tool output found for computer call call_1.",
    ),
    (
        {"type": "shell_call", "call_id": "call_1", "action": {"commands": ["ls"]}},
        {"type": "shell_call_output", "call_id": "call_1", "output": []},
        "No tool output found for shell call call_1.",
    ),
    (
        {"type": "apply_patch_call", "call_id": "call_1", "operation": {}},
        {"type": "apply_patch_call_output", "call_id": "call_1", "status": "completed"},
        "No tool output found for apply patch call call_1.",
    ),
    (
        {"type": "tool_search_call", "call_id": "call_1", "execution": "client", "arguments": {}},
        {"type": "tool_search_output", "call_id": "call_1", "execution": "client", "tools": []},
        "No tool output found for tool search call call_1.",
    ),
    (request("call_1"), approval("call_1"), APPROVAL + "call_1"),
]
IDS = [output["type"] for _, output, _ in PAIRS]


@pytest.mark.parametrize(("call", "output", "message"), PAIRS, ids=IDS)
def test_each_client_output_pairs_with_its_call(
    call: dict[str, Any], output: dict[str, Any], message: str
) -> None:
    """P1 for the call alone, P2 for the output alone, nothing for the pair in order."""
    assert [] == validate_history([USER, call, output])
    assert [message] == [v.message for v in validate_history([USER, call])]
    assert ["P2"] == [v.rule for v in validate_history([USER, output])]


@pytest.mark.parametrize(("call", "output", "message"), PAIRS, ids=IDS)
def test_tracker_keeps_each_call_pending_until_answered_once(
    call: dict[str, Any], output: dict[str, Any], message: str
) -> None:
    """A held call is pending (also after a restore), named as its type when left unanswered;
    its output is sent once, then held."""
    tracker = Tracker()
    tracker.observe_response({"id": "resp_1", "output": [call]})
    restored = Tracker.from_state(tracker.to_state())
    assert ("call_1",) == restored.pending_call_ids
    with pytest.raises(HistoryError) as info:
        restored.prepare([USER])
    assert [message] == [v.message for v in info.value.violations]
    prepared = restored.prepare([output])
    assert (output,) == prepared.input
    restored.mark_sent(prepared)
    assert () == restored.pending_call_ids
    assert () == restored.prepare([call, output]).input


@pytest.mark.parametrize(("call", "output", "message"), PAIRS, ids=IDS)
def test_repair_answers_or_drops_each_unanswered_call(
    call: dict[str, Any], output: dict[str, Any], message: str
) -> None:
    """Repair leaves a valid history for every call type, and never invents an approval."""
    del output, message
    for policy in ("placeholder", "drop"):
        repaired, actions = repair_history([USER, call], policy=policy)
        assert [] == validate_history(repaired)
        assert all(i.get("type") != "mcp_approval_response" for i in repaired)
        assert actions


def test_held_call_is_repaired_as_its_type_or_refused() -> None:
    """check="repair" answers a held custom tool call with a custom_tool_call_output (also
    after a restore); a held shell call has no placeholder form: HistoryError, unchanged."""
    custom, shell = PAIRS[1][0], PAIRS[3][0] | {"call_id": "call_2"}
    tracker = Tracker(check="repair")
    tracker.observe_response({"id": "resp_1", "output": [custom]})
    restored = Tracker.from_state(tracker.to_state(), check="repair")
    assert ["custom_tool_call_output", None] == [
        i.get("type") for i in restored.prepare([USER]).input
    ]
    tracker.observe_response({"id": "resp_2", "output": [shell]})
    with pytest.raises(HistoryError, match="shell call call_2. To fix: send its shell_call_output"):
        tracker.prepare([USER])
    assert ("call_1", "call_2") == tracker.pending_call_ids


def test_version_3_snapshot_without_call_types_still_loads() -> None:
    """Before version 4 no call type was kept: an ``mcpr_`` key is an approval request (keyed
    by its own id), any other call a function call."""
    tracker = Tracker()
    tracker.observe_response({"id": "resp_1", "output": [request(), PAIRS[1][0]]})
    state = tracker.to_state()
    assert {"mcpr_1": "mcp_approval_request", "call_1": "custom_tool_call"} == state["call_types"]
    del state["call_types"]
    restored = Tracker.from_state({**state, "version": 3})
    assert ("mcp_approval_request", "function_call", None) == tuple(
        restored.call_type(c) for c in ("mcpr_1", "call_1", "call_2")
    )


def test_unanswered_approvals_are_listed_in_one_message() -> None:
    """Two unanswered requests give one M1 naming both, at the first [INF join]."""
    found = validate_history([USER, request("mcpr_a"), request("mcpr_b")])
    assert [("M1", 1, APPROVAL + "mcpr_a, mcpr_b")] == [(v.rule, v.index, v.message) for v in found]


def test_repair_drops_an_unanswered_approval_request_under_both_policies() -> None:
    """No placeholder approval: the request is dropped, and the action says why."""
    for policy in ("placeholder", "drop"):
        repaired, actions = repair_history([USER, request()], policy=policy)
        assert [USER] == repaired
        assert [("drop_call", "mcpr_1", "no approval: an approval is never invented")] == [
            (a.kind, a.call_id, a.detail) for a in actions
        ]


@pytest.mark.parametrize("check", ["raise", "repair"])
def test_tracker_refuses_to_repair_a_held_approval_request(check: Any) -> None:
    """A request the server holds cannot be dropped or approved by repair: HistoryError whose
    fix is to send the approval (never check='repair', which would not help)."""
    tracker = Tracker(check=check)
    tracker.observe_response({"id": "resp_1", "output": [request()]})
    with pytest.raises(HistoryError) as info:
        tracker.prepare([USER])
    assert APPROVAL + "mcpr_1 " in str(info.value)
    assert "To fix: send its mcp_approval_response in this request" in str(info.value)
    assert ("mcpr_1",) == tracker.pending_call_ids


def test_server_executed_tool_search_needs_no_client_output() -> None:
    """``execution: "server"``: the call and the server's output are not a client pair."""
    call = {"type": "tool_search_call", "call_id": "call_1", "execution": "server"}
    out = {"type": "tool_search_output", "call_id": "call_1", "execution": "server"}
    assert [] == validate_history([USER, call])
    assert [] == validate_history([USER, call, out])
    tracker = Tracker()
    tracker.observe_response({"id": "resp_1", "output": [call, out]})
    assert () == tracker.pending_call_ids


def test_referenced_client_call_with_its_output_is_p4_when_switched_on() -> None:
    """An inline fc_-id call with its output by call_id: P4 under the [3P] switch only."""
    call = {
        "type": "function_call",
        "id": "fc_1",
        "call_id": "call_1",
        "name": "f",
        "arguments": "",
    }
    out = {"type": "function_call_output", "call_id": "call_1", "output": "ok"}
    assert [] == validate_history([USER, call, out])
    found = validate_history([USER, call, out], reject_referenced_client_calls=True)
    assert [("P4", 2, "No tool call found for function call output with call_id call_1.")] == [
        (v.rule, v.index, v.message) for v in found
    ]


@pytest.mark.parametrize(
    ("call", "out", "p4"),
    [
        (
            {"type": "custom_tool_call", "id": "ctc_1", "call_id": "c1", "name": "f", "input": ""},
            {"type": "custom_tool_call_output", "call_id": "c1", "output": "ok"},
            True,
        ),
        (
            {"type": "mcp_approval_request", "id": "mcpr_1", "name": "f", "arguments": "{}"},
            {"type": "mcp_approval_response", "approval_request_id": "mcpr_1", "approve": True},
            False,
        ),
    ],
    ids=["custom_tool_call", "mcp_approval_request"],
)
def test_switch_treats_every_client_call_by_id_alike(call: Any, out: Any, p4: bool) -> None:
    """P4 and the sent form cover every client call type paired by call_id [INF], never an
    approval request (paired by its own id, which it keeps)."""
    found = validate_history([USER, call, out], reject_referenced_client_calls=True)
    t = Tracker(store=False, rules=RuleOptions(reject_referenced_client_calls=True))
    t.mark_sent(t.prepare("hi"))
    t.observe_response({"id": "resp_1", "store": False, "output": [call]})
    sent = t.prepare([out]).request_input()
    assert (p4, p4) == (bool(found), "id" not in sent[1])


# End to end: the real openai client against the emulator ------------------------------------


def test_mcp_approval_round_end_to_end() -> None:
    """request -> (a turn without the approval is M1) -> approval -> answer; sent once."""
    script = approval_script("roll", '{"dice":"2d4"}')
    with Emulator(seed=3, script=script) as emu, _client(emu) as client:
        tracker = Tracker()
        first = client.responses.create(model="emu-1", **tracker.prepare("roll").request_kwargs())
        tracker.observe_response(first)
        (asked,) = first.output
        assert ("mcp_approval_request", (asked.id,)) == (asked.type, tracker.pending_call_ids)
        assert asked.id.startswith("mcpr_")
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model="emu-1", previous_response_id=first.id, input="go on")
        assert APPROVAL + asked.id == info.value.body["message"]  # type: ignore[index]
        prepared = tracker.prepare([approval(asked.id)])
        second = client.responses.create(model="emu-1", **prepared.request_kwargs())
        tracker.mark_sent(prepared)
        tracker.observe_response(second)
        assert "MCP tool roll approved." == second.output_text
        assert () == tracker.pending_call_ids
        assert {asked.id: 1} == dict(emu.received_outputs())


TOOLS: list[Any] = [{"type": "function", "name": "f"}, {"type": "function", "name": "g"}]


def f() -> str:
    """f."""
    return "F"


def g() -> str:
    """g."""
    return "G"


def test_referenced_parallel_calls_are_refused_and_the_tracker_shape_is_accepted() -> None:
    """Switch on: item_reference + output by call_id is a 400; the loop's chain shape passes."""
    options = RuleOptions(reject_referenced_client_calls=True)
    with Emulator(seed=4, options=options) as emu, _client(emu) as client:
        result = run_turn(client, model="emu-1", input="f() g() then f() g()", tools=[f, g])
        assert 4 == result.tool_calls
        assert dict.fromkeys(emu.issued_calls(), 1) == dict(emu.received_outputs())
        sent = [
            item.get("type", "message")
            for b in emu.requests_to("/v1/responses")
            for item in b["input"]
        ]
        assert {"message", "function_call_output"} == set(sent)  # the chain holds the calls
        first = result.responses[0]
        replay: list[Any] = [{"role": "user", "content": "f() g() then f() g()"}]
        for call in first.output:
            replay.append({"type": "item_reference", "id": call.id})
        for call in first.output:
            replay.append({"type": "function_call_output", "call_id": call.call_id, "output": "x"})
        with pytest.raises(openai.BadRequestError) as info:
            client.responses.create(model="emu-1", input=replay, tools=TOOLS)
        call_id = first.output[0].call_id
        assert (
            f"No tool call found for function call output with call_id {call_id}."
            == info.value.body["message"]  # type: ignore[index]
        )


def test_turn_result_surfaces_withheld_reasoning_inputs() -> None:
    """``input_transformations`` of every response of a turn, in order, on ``TurnResult``."""
    from tracker.loop import TurnResult

    removed = {"id": "rs_1", "action": "removed", "reason": "model_mismatch", "type": "reasoning"}
    responses = (
        {"id": "resp_1", "output": []},
        {"id": "resp_2", "output": [], "input_transformations": [removed]},
    )
    result = TurnResult(text="", responses=responses, requests=(), tracker=Tracker())
    assert (removed,) == result.input_transformations


def test_run_turn_answers_mcp_approvals_with_on_approval_end_to_end() -> None:
    """Unanswered (refused next turn), answered as input, then by on_approval: each once."""
    asked: list[tuple[str, str]] = []

    def allow(request: Any) -> bool:
        asked.append((request.name, request.server_label))
        return True

    script = approval_script("roll", '{"dice":"2d4"}', server_label="dice")
    with Emulator(seed=5, script=script) as emu, _client(emu) as client:
        first = run_turn(client, model="emu-1", input="roll")  # no on_approval: it waits
        (pending,) = first.tracker.pending_call_ids
        assert ("", pending) == (first.text, first.responses[0].output[0].id)
        with pytest.raises(UsageError) as info:  # never a placeholder approval
            run_turn(client, model="emu-1", input="go on", tracker=first.tracker)
        assert f"MCP approval request {pending} is still pending" in str(info.value)
        denied = approval(pending, approve=False) | {"reason": "not now"}
        second = run_turn(client, model="emu-1", input=[denied], tracker=first.tracker)
        assert "MCP tool roll denied (not now)." == second.text
        third = run_turn(
            client, model="emu-1", input="roll again", tracker=second.tracker, on_approval=allow
        )
        assert "MCP tool roll approved." == third.text
        assert [("roll", "dice")] == asked
        assert () == third.tracker.pending_call_ids
        answered = dict(emu.received_outputs())
        assert [1, 1] == list(answered.values())  # each request answered exactly once
        assert 4 == len(emu.requests_to("/v1/responses"))  # one request per response
        assert 2 == len(third.responses)


def test_approval_asked_beside_a_tool_call_ends_the_turn_with_the_tool_output() -> None:
    """Without on_approval, a response asking approval and calling a tool: the tool runs, the
    turn ends (no request the service would refuse, M1) with its output in result.outputs;
    the next turn sends it with the answer, each once."""
    asked_and_called = [
        {"type": "mcp_approval_request", "name": "roll", "arguments": "{}", "server_label": "d"},
        {"type": "function_call", "name": "f", "arguments": "{}"},
    ]

    def script(context: Any, request: Any) -> list[Any]:
        if not any(c.get("type") == "mcp_approval_request" for c in context):
            return asked_and_called
        return ["done"]

    with Emulator(seed=9, script=script) as emu, _client(emu) as client:
        first = run_turn(client, model="emu-1", input="go", tools=[f])
        (asked, called) = first.responses[0].output
        assert (called.call_id, "F") == (first.outputs[0]["call_id"], first.outputs[0]["output"])
        assert {asked.id, called.call_id} == set(first.tracker.pending_call_ids)
        answer = [*first.outputs, approval(asked.id)]
        second = run_turn(client, model="emu-1", input=answer, tools=[f], tracker=first.tracker)
        assert ("done", ()) == (second.text, second.tracker.pending_call_ids)
        assert {asked.id: 1, called.call_id: 1} == dict(emu.received_outputs())
        assert 2 == len(emu.requests_to("/v1/responses"))


def test_next_turn_answers_a_pending_call_as_its_type_or_asks_for_it() -> None:
    """A custom tool call left pending (max_turns) gets a custom_tool_call_output placeholder
    at the next turn; a shell call, which no placeholder can answer, is a UsageError naming
    it and its output type, nothing sent."""
    calls = {"custom": {"type": "custom_tool_call", "call_id": "call_c", "name": "f", "input": ""}}
    calls["shell"] = {"type": "shell_call", "call_id": "call_s", "action": {"commands": ["ls"]}}

    def script(context: Any, request: Any) -> list[Any]:
        last = str(context[-1].get("content"))  # the user's message, as content parts
        return [next((c for said, c in calls.items() if said in last), "ok")]

    with Emulator(seed=10, script=script) as emu, _client(emu) as client:
        with pytest.raises(MaxTurnsError) as info:
            run_turn(client, model="emu-1", input="custom", max_turns=1)
        run_turn(client, model="emu-1", input="next", tracker=info.value.tracker)
        sent = emu.requests_to("/v1/responses")[-1]["input"][0]
        assert "custom_tool_call_output" == sent["type"]
        shell = run_turn(client, model="emu-1", input="shell")
        (pending,) = shell.tracker.pending_call_ids
        with pytest.raises(UsageError, match=f"{pending} \\(shell_call\\).*shell_call_output"):
            run_turn(client, model="emu-1", input="next", tracker=shell.tracker)
        assert 3 == len(emu.requests_to("/v1/responses"))


@pytest.mark.parametrize("mode", ["conversation", "stateless"])
def test_on_approval_round_outside_a_chain_answers_each_request_once(mode: str) -> None:
    """In a conversation and statelessly too, on_approval's answer goes with the next
    request, once: the conversation, or the last replay, holds one answer per request."""
    with Emulator(seed=11, script=approval_script("roll")) as emu, _client(emu) as client:
        where: dict[str, Any] = {"store": False}
        if mode == "conversation":
            where = {"conversation": client.conversations.create().id}
        result = run_turn(client, model="emu-1", input="roll", on_approval=lambda r: True, **where)
        assert "MCP tool roll approved." == result.text
        (asked,) = [i.id for i in result.responses[0].output]
        if mode == "conversation":
            held = emu.context_items(conversation_id=where["conversation"])
        else:
            held = emu.requests_to("/v1/responses")[-1]["input"]
        answers = [i for i in held if i.get("type") == "mcp_approval_response"]
        assert [asked] == [a["approval_request_id"] for a in answers]
        assert 2 == len(emu.requests_to("/v1/responses"))


def test_on_approval_must_answer_with_a_bool() -> None:
    """Any other answer is a UsageError naming the request; the request stays pending."""
    with Emulator(seed=6, script=approval_script("roll")) as emu, _client(emu) as client:
        tracker = Tracker()
        with pytest.raises(UsageError) as info:
            run_turn(client, model="emu-1", input="roll", tracker=tracker, on_approval=str)
        (pending,) = tracker.pending_call_ids
        assert f"MCP approval request {pending} (tool 'roll')" in str(info.value)
        assert 1 == len(emu.requests_to("/v1/responses"))


def test_loop_surfaces_the_reasoning_inputs_the_emulator_withheld() -> None:
    """reasoning.context=current_turn: last turn's replayed reasoning is reported withheld."""
    options: dict[str, Any] = {"store": False, "reasoning": {"context": "current_turn"}}
    with Emulator(seed=7) as emu, _client(emu) as client:
        first = run_turn(client, model="emu-reason-1", input="hello", **options)
        assert () == first.input_transformations
        (rs_id,) = [i.id for i in first.responses[0].output if i.type == "reasoning"]
        second = run_turn(
            client, model="emu-reason-1", input="again", tracker=first.tracker, **options
        )
        withheld = {
            "id": rs_id,
            "action": "removed",
            "reason": "turn_boundary",
            "type": "reasoning",
        }
        assert [withheld] == [t.model_dump() for t in second.input_transformations]
        (body,) = emu.requests_to("/v1/responses")[1:]
        assert rs_id in [item.get("id") for item in body["input"]]  # it was sent, then withheld


async def test_arun_turn_awaits_an_async_on_approval() -> None:
    """The async driver awaits the callable; a denial with its reason reaches the model."""

    async def deny(request: Any) -> tuple[bool, str]:
        return False, f"{request.name} is off today"

    with Emulator(seed=8, script=approval_script("roll")) as emu:
        client = AsyncOpenAI(base_url=emu.base_url, api_key="k", max_retries=0)
        async with client:
            result = await arun_turn(client, model="emu-1", input="roll", on_approval=deny)
        assert "MCP tool roll denied (roll is off today)." == result.text
        assert [1] == list(emu.received_outputs().values())
