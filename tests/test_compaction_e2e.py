"""Compaction end to end: the tracker and its loop against the emulator, over HTTP."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from _loop_helpers import PROMPT, TOOLS
from openai import OpenAI

from tracker import CompactionError, Tracker
from tracker.emulator import Emulator
from tracker.loop import run_turn

THRESHOLD = [{"type": "compaction", "compact_threshold": 1000}]


def _compactions(results: list[Any]) -> int:
    return sum(
        1
        for result in results
        for response in result.responses
        for item in response.output
        if item.type == "compaction"
    )


def _exactly_once(emulator: Emulator) -> None:
    issued = emulator.issued_calls()
    assert Counter(dict.fromkeys(issued, 1)) == emulator.received_outputs()


@pytest.mark.parametrize("stream", [False, True])
def test_server_side_compaction_in_a_chain_keeps_every_output_once(
    client: OpenAI, emulator: Emulator, stream: bool
) -> None:
    """Turns with tool rounds compact on the server; every tool output arrives exactly once."""
    tracker = Tracker()
    results = [
        run_turn(
            client,
            model="emu-1",
            input=PROMPT,
            tools=TOOLS,
            tracker=tracker,
            stream=stream,
            context_management=THRESHOLD,
        )
        for _ in range(8)
    ]
    assert _compactions(results) >= 1
    assert tracker.last_compaction_id is not None
    _exactly_once(emulator)


def test_server_side_compaction_in_a_conversation_keeps_every_output_once(
    client: OpenAI, emulator: Emulator
) -> None:
    """The same in a conversation: compaction happens, no output lost or doubled."""
    conv = client.conversations.create()
    tracker = Tracker(conversation_id=conv.id)
    results = [
        run_turn(
            client,
            model="emu-1",
            input=PROMPT,
            tools=TOOLS,
            tracker=tracker,
            stream=True,
            context_management=THRESHOLD,
        )
        for _ in range(8)
    ]
    assert _compactions(results) >= 1
    _exactly_once(emulator)


def test_standalone_compaction_mid_session_starts_a_new_chain(
    client: OpenAI, emulator: Emulator
) -> None:
    """run_turn(compact=True) compacts, then the turn carries the window on a new chain."""
    tracker = Tracker()
    run_turn(client, model="emu-1", input=PROMPT, tools=TOOLS, tracker=tracker)
    result = run_turn(
        client, model="emu-1", input=PROMPT, tools=TOOLS, tracker=tracker, compact=True
    )
    assert "response.compaction" == result.compacted.object
    assert None is result.requests[0].previous_response_id
    run_turn(client, model="emu-1", input=PROMPT, tools=TOOLS, tracker=tracker)
    _exactly_once(emulator)


def test_compaction_with_a_call_pending_is_refused_then_done(
    client: OpenAI, emulator: Emulator
) -> None:
    """prepare_compact refuses while the call waits; with its output it compacts."""
    tracker = Tracker()
    p = tracker.prepare([{"role": "user", "content": PROMPT}])
    tracker.mark_sent(p)
    tools = [{"type": "function", "name": "weather", "parameters": {"type": "object"}}]
    tracker.observe_response(
        client.responses.create(model="emu-1", tools=tools, **p.request_kwargs())
    )
    pending = tracker.pending_call_ids
    with pytest.raises(CompactionError) as info:
        tracker.prepare_compact()
    assert pending == info.value.call_ids
    outputs = [{"type": "function_call_output", "call_id": c, "output": "sunny"} for c in pending]
    p = tracker.prepare_compact(outputs)
    tracker.mark_sent(p)
    tracker.observe_response(client.responses.compact(model="emu-1", **p.request_kwargs()))
    restored = Tracker.from_state(json.loads(json.dumps(tracker.to_state())))
    nxt = restored.prepare([{"role": "user", "content": "and now?"}])
    restored.mark_sent(nxt)
    restored.observe_response(client.responses.create(model="emu-1", **nxt.request_kwargs()))
    sent = Counter(
        item["call_id"]
        for path in ("/v1/responses", "/v1/responses/compact")
        for body in emulator.requests_to(path)
        for item in body.get("input") or ()
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    )
    assert Counter(dict.fromkeys(pending, 1)) == sent
