"""End-to-end tests of tracker.loop against the emulator over HTTP with the real client."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Any

import openai
import pytest
from _loop_helpers import ANSWER, NO_WAIT, PROMPT, TOOLS, add, request_bodies, weather
from openai import AsyncOpenAI, OpenAI

from tracker import Tracker
from tracker.emulator import Emulator, Fault
from tracker.loop import (
    MaxTurnsError,
    RequestSent,
    Retrying,
    RetryPolicy,
    TextDelta,
    ToolFinished,
    arun_turn,
    run_turn,
)

#: How long a tool waits for its sibling call: not a timing assertion, it bounds a hang (the
#: calls not running at once); long enough for a thread starved on a busy machine.
WATCHDOG = 60.0


def _exactly_once(emulator: Emulator, **where: Any) -> None:
    assert dict.fromkeys(emulator.issued_calls(), 1) == emulator.context_outputs(**where)


@pytest.mark.parametrize("stream", [False, True])
def test_parallel_rounds_sync(client: OpenAI, emulator: Emulator, stream: bool) -> None:
    """Two parallel calls, then one, then the answer: each request sends only the delta."""
    events: list[Any] = []
    result = run_turn(
        client, model="emu-1", input=PROMPT, tools=TOOLS, stream=stream, on_event=events.append
    )
    assert ANSWER == result.text
    assert [(1, 0), (2, 3), (1, 6)] == [(r.sent, r.skipped) for r in result.requests]
    assert [None, result.responses[0].id, result.responses[1].id] == [
        r.previous_response_id for r in result.requests
    ]
    assert 3 == result.tool_calls
    _exactly_once(emulator, response_id=result.last_response_id)
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert (ANSWER if stream else "") == streamed


@pytest.mark.parametrize("stream", [False, True])
async def test_parallel_rounds_async(
    async_client: AsyncOpenAI, emulator: Emulator, stream: bool
) -> None:
    """The async loop runs a response's parallel calls concurrently (they meet at a barrier)."""
    barrier = asyncio.Barrier(2)
    thread_barrier = threading.Barrier(2, timeout=WATCHDOG)

    async def weather(city: str) -> str:
        """Async weather: waits for its sibling call."""
        await asyncio.wait_for(barrier.wait(), WATCHDOG)
        return f"sunny in {city}"

    def add(a: int, b: int) -> int:
        """Sync add: waits for its sibling call in another worker thread."""
        thread_barrier.wait()
        return a + b

    prompt = PROMPT + ' add({"a": 1, "b": 1})'
    deltas: list[str] = []

    async def on_event(event: Any) -> None:
        if isinstance(event, TextDelta):
            deltas.append(event.text)

    result = await arun_turn(
        async_client,
        model="emu-1",
        input=prompt,
        tools=[weather, add],
        stream=stream,
        on_event=on_event,
    )
    assert f"{ANSWER}; add -> 2" == result.text
    assert 0 == result.tool_errors
    _exactly_once(emulator, response_id=result.last_response_id)
    assert (result.text if stream else "") == "".join(deltas)


def test_parallel_calls_run_concurrently_in_the_sync_driver(
    client: OpenAI, emulator: Emulator
) -> None:
    """run_turn runs a response's parallel calls at once: each call waits for the next one to
    finish (so they finish in reverse), and the outputs still keep the calls' order."""
    finished = [threading.Event() for _ in range(4)]

    def step(n: int) -> str:
        """Finishes only after call n + 1 finished (the last call does not wait)."""
        if n < 3 and not finished[n + 1].wait(WATCHDOG):
            raise TimeoutError(f"call {n + 1} never finished: the calls do not run concurrently")
        finished[n].set()
        return f"step {n}"

    prompt = 'step({"n": 1}) step({"n": 2}) step({"n": 3})'
    result = run_turn(client, model="emu-1", input=prompt, tools=[step])
    assert "Done. step -> step 1; step -> step 2; step -> step 3" == result.text
    assert 0 == result.tool_errors


@pytest.mark.parametrize("driver", ["sync", "async"])
async def test_max_tool_workers_bounds_the_calls_running_at_once(
    client: OpenAI, async_client: AsyncOpenAI, emulator: Emulator, driver: str
) -> None:
    """With max_tool_workers=2, two of three parallel calls run together, never three."""
    lock = threading.Lock()
    running: list[int] = []
    most: list[int] = [0]
    pair = threading.Barrier(2, timeout=WATCHDOG)

    def slot(n: int) -> str:
        """Calls 1 and 2 wait for each other; every call records how many run with it."""
        with lock:
            running.append(n)
            most[0] = max(most[0], len(running))
        if n < 3:
            pair.wait()
        with lock:
            running.remove(n)
        return f"slot {n}"

    prompt = 'slot({"n": 1}) slot({"n": 2}) slot({"n": 3})'
    kwargs: dict[str, Any] = {"model": "emu-1", "input": prompt, "tools": [slot]}
    if driver == "sync":
        result = run_turn(client, max_tool_workers=2, **kwargs)
    else:
        result = await arun_turn(async_client, max_tool_workers=2, **kwargs)
    assert "Done. slot -> slot 1; slot -> slot 2; slot -> slot 3" == result.text
    assert 2 == most[0]


def test_next_turn_continues_the_chain(client: OpenAI, emulator: Emulator) -> None:
    """A second turn with the returned tracker continues from the first turn's last response."""
    first = run_turn(client, model="emu-1", input=PROMPT, tools=TOOLS)
    second = run_turn(client, model="emu-1", input="thanks", tools=TOOLS, tracker=first.tracker)
    assert "You said: thanks" == second.text
    assert first.last_response_id == second.requests[0].previous_response_id
    assert [1] == [r.sent for r in second.requests]


def test_tool_exception_becomes_an_error_output(client: OpenAI, emulator: Emulator) -> None:
    """A tool that raises gives the model an error output and the loop goes on."""

    def weather(city: str) -> str:
        """Fails for Rome."""
        if city == "Rome":
            raise LookupError(f"no station in {city}")
        return f"sunny in {city}"

    finished: list[ToolFinished] = []
    result = run_turn(
        client,
        model="emu-1",
        input=PROMPT,
        tools=[weather, add],
        on_event=lambda e: finished.append(e) if isinstance(e, ToolFinished) else None,
    )
    expected = "weather -> Error: tool weather raised LookupError: no station in Rome"
    assert expected in result.text
    assert 1 == result.tool_errors
    assert [False, True, False] == [f.is_error for f in finished]
    _exactly_once(emulator, response_id=result.last_response_id)


def test_a_result_that_cannot_be_sent_is_an_error_output(
    client: OpenAI, emulator: Emulator
) -> None:
    """Tools returning a self-referencing list or a 5000-deep value do not crash run_turn."""

    def cyclic() -> list[Any]:
        """A list that contains itself."""
        loop: list[Any] = []
        loop.append(loop)
        return loop

    def deep() -> list[Any]:
        """A list nested 5000 deep."""
        value: list[Any] = []
        for _ in range(5000):
            value = [value]
        return value

    result = run_turn(client, model="emu-1", input="cyclic({}) deep({})", tools=[cyclic, deep])
    assert 2 == result.tool_errors
    assert "cyclic -> Error: tool cyclic returned a list that cannot be sent as text" in result.text
    assert "deep -> Error: tool deep returned a list that cannot be sent as text" in result.text
    _exactly_once(emulator, response_id=result.last_response_id)


def _bad_calls_script(context: Any, request: Any) -> list[Any]:
    """Round 1: malformed JSON, a non-object, missing argument, unknown tool; then answer."""
    outputs = [c for c in context if c.get("type") == "function_call_output"]
    if outputs:
        return [" | ".join(str(o["output"]) for o in outputs)]
    return [
        {"type": "function_call", "name": "weather", "arguments": '{"city": '},
        {"type": "function_call", "name": "weather", "arguments": '["Paris"]'},
        {"type": "function_call", "name": "add", "arguments": '{"a": 1}'},
        {"type": "function_call", "name": "nope", "arguments": "{}"},
    ]


def test_bad_arguments_become_error_outputs() -> None:
    """Bad JSON, a non-object, a missing argument and an unknown tool each get an error output."""
    with (
        Emulator(script=_bad_calls_script, seed=3) as emu,
        OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as client,
    ):
        result = run_turn(client, model="emu-1", input="go", tools=TOOLS)
        _exactly_once(emu, response_id=result.last_response_id)
    outputs = result.text.split(" | ")
    assert 4 == result.tool_errors == len(outputs)
    assert outputs[0].startswith("Error: the arguments of weather are not valid JSON")
    assert outputs[1].startswith("Error: the arguments of weather must be a JSON object")
    assert "Error: bad arguments for add: missing a required argument: 'b'." in outputs[2]
    assert outputs[3].startswith("Error: there is no tool named 'nope' (available: add, weather)")


@pytest.mark.parametrize("stream", [False, True])
def test_server_errors_are_retried_once_each(
    client: OpenAI, emulator: Emulator, stream: bool
) -> None:
    """Injected 500/503/429 are retried after a rewind: every output is stored exactly once."""
    emulator.inject(Fault(status=500, should_retry=False))
    emulator.inject(Fault(status=429, should_retry=False, retry_after=0))
    emulator.inject(Fault(status=503, should_retry=False))
    retries: list[Retrying] = []
    result = run_turn(
        client,
        model="emu-1",
        input=PROMPT,
        tools=TOOLS,
        stream=stream,
        retry=NO_WAIT,
        on_event=lambda e: retries.append(e) if isinstance(e, Retrying) else None,
    )
    assert ANSWER == result.text
    assert 3 == result.retries == len(retries) == len(result.errors)
    assert [500, 429, 503] == [e.status_code for e in result.errors]  # type: ignore[attr-defined]
    _exactly_once(emulator, response_id=result.last_response_id)
    assert 6 == len(request_bodies(emulator))


@pytest.mark.parametrize("stream", [False, True])
def test_dropped_connection_after_store_in_a_chain(
    client: OpenAI, emulator: Emulator, stream: bool
) -> None:
    """A response stored before the connection dropped is re-requested as a sibling; the
    final chain holds every output once and the user message once."""
    emulator.inject(Fault(drop="after"))  # first request: stored, then dropped
    first = run_turn(client, model="emu-1", input="hello", tools=TOOLS, retry=NO_WAIT)
    emulator.inject(Fault(drop="after"), times=2)
    result = run_turn(
        client,
        model="emu-1",
        input=PROMPT,
        tools=TOOLS,
        tracker=first.tracker,
        retry=NO_WAIT,
        stream=stream,
    )
    assert ANSWER == result.text
    assert [2, 0, 0] == [r.attempts - 1 for r in result.requests]
    chain = emulator.context_items(response_id=result.last_response_id)
    users = [i for i in chain if i.get("role") == "user"]
    assert ["hello", PROMPT] == [u["content"][0]["text"] for u in users]
    issued_in_chain = [i["call_id"] for i in chain if i["type"] == "function_call"]
    assert dict.fromkeys(issued_in_chain, 1) == emulator.context_outputs(
        response_id=result.last_response_id
    )


@pytest.mark.parametrize("stream", [False, True])
def test_dropped_connection_in_a_conversation_is_recovered(
    client: OpenAI, emulator: Emulator, stream: bool
) -> None:
    """In a conversation a stored-then-dropped response is found by listing the items and is
    used as is: nothing is sent twice, nothing is appended twice."""
    conv = client.conversations.create()
    first = run_turn(client, model="emu-1", input="hello", tools=TOOLS, conversation=conv.id)
    emulator.inject(Fault(drop="after"), times=2)  # the first two requests of the next turn
    result = run_turn(
        client,
        model="emu-1",
        input=PROMPT,
        tools=TOOLS,
        tracker=first.tracker,
        retry=NO_WAIT,
        stream=stream,
    )
    assert ANSWER == result.text
    assert [True, True, False] == [r.recovered for r in result.requests]
    assert 4 == len(request_bodies(emulator))  # hello + 3 requests, none re-sent
    items = emulator.context_items(conversation_id=conv.id)
    texts = [i["content"][0]["text"] for i in items if i.get("role") == "user"]
    assert ["hello", PROMPT] == texts
    _exactly_once(emulator, conversation_id=conv.id)


def test_failure_before_store_in_a_conversation_is_resent(
    client: OpenAI, emulator: Emulator
) -> None:
    """A request dropped before the server handled it is sent again after the listing."""
    conv = client.conversations.create()
    emulator.inject(Fault(drop="before"))
    emulator.inject(
        Fault(status=500, should_retry=False),
        path=f"/v1/conversations/{conv.id}/items",
        method="GET",
    )
    result = run_turn(
        client, model="emu-1", input=PROMPT, tools=TOOLS, conversation=conv.id, retry=NO_WAIT
    )
    assert ANSWER == result.text
    assert [3, 1, 1] == [r.attempts for r in result.requests]
    assert not any(r.recovered for r in result.requests)
    _exactly_once(emulator, conversation_id=conv.id)


async def test_async_dropped_connection_in_a_conversation(
    async_client: AsyncOpenAI, emulator: Emulator
) -> None:
    """The async driver recovers a stored-then-dropped response the same way."""
    conv = await async_client.conversations.create()
    emulator.inject(Fault(drop="after"))
    emulator.inject(Fault(status=502, should_retry=False))
    result = await arun_turn(
        async_client,
        model="emu-reason-1",
        input=PROMPT,
        tools=TOOLS,
        conversation=conv.id,
        retry=NO_WAIT,
        stream=True,
    )
    assert result.text.startswith("Done. ")
    assert [True, False, False] == [r.recovered for r in result.requests]
    assert 2 == result.retries
    _exactly_once(emulator, conversation_id=conv.id)


def test_bad_request_is_raised_with_the_server_message(client: OpenAI) -> None:
    """A 400 raises the SDK's BadRequestError, and the tracker is left as it was."""
    tracker = Tracker(previous_response_id="resp_gone")
    with pytest.raises(openai.BadRequestError) as info:
        run_turn(client, model="emu-1", input="hi", tracker=tracker)
    assert "Previous response with id 'resp_gone' not found." == info.value.body["message"]  # type: ignore[index]
    assert 1 == len(tracker.prepare([{"role": "user", "content": "hi"}]).input)
    assert "resp_gone" == tracker.previous_response_id


def test_retries_give_up_after_max_attempts(client: OpenAI, emulator: Emulator) -> None:
    """After max_attempts transient failures the last error is raised; nothing is half-sent."""
    emulator.inject(Fault(status=500, should_retry=False), times=2)
    tracker = Tracker()
    with pytest.raises(openai.InternalServerError):
        run_turn(
            client,
            model="emu-1",
            input="hi",
            tracker=tracker,
            retry=NO_WAIT.__class__(max_attempts=2, initial_delay=0),
        )
    result = run_turn(client, model="emu-1", input="hi", tracker=tracker)
    assert "You said: hi" == result.text
    assert None is result.requests[0].previous_response_id


def test_max_turns_names_the_limit_and_the_next_turn_is_valid(
    client: OpenAI, emulator: Emulator
) -> None:
    """max_turns stops the loop with a clear error carrying the tracker (exc.tracker); the
    next turn continues with it and answers the pending calls."""
    with pytest.raises(MaxTurnsError, match=r"max_turns=2 model calls") as info:
        run_turn(
            client, model="emu-1", input=PROMPT + " then weather({})", tools=TOOLS, max_turns=2
        )
    tracker = info.value.tracker
    assert tracker is info.value.result.tracker
    assert 2 == info.value.max_turns
    assert 1 == len(tracker.pending_call_ids)
    result = run_turn(client, model="emu-1", input="and now?", tools=TOOLS, tracker=tracker)
    assert "You said: and now?" == result.text
    assert 1 == result.abandoned_calls
    assert () == tracker.pending_call_ids


def test_request_events_describe_each_delta(client: OpenAI) -> None:
    """RequestSent events report the delta size, the items already on the server and the
    continuation."""
    sent: list[RequestSent] = []
    result = run_turn(
        client,
        model="emu-1",
        input=PROMPT,
        tools=[weather, add],
        on_event=lambda e: sent.append(e) if isinstance(e, RequestSent) else None,
    )
    assert [(r.index, r.sent, r.skipped, r.previous_response_id) for r in result.requests] == [
        (e.index, e.sent, e.skipped, e.previous_response_id) for e in sent
    ]


def test_items_not_resent_counts_held_items_per_request(client: OpenAI) -> None:
    """items_not_resent sums each request's items already on the server (0 + 3 + 6: the user
    message is counted at both later requests); duplicates_avoided is its deprecated alias."""
    result = run_turn(client, model="emu-1", input=PROMPT, tools=TOOLS)
    assert (4, 9) == (result.items_sent, result.items_not_resent)
    with pytest.warns(DeprecationWarning, match="use items_not_resent"):
        assert 9 == result.duplicates_avoided


def test_takeover_in_a_conversation_finds_the_stored_request(
    client: OpenAI, emulator: Emulator
) -> None:
    """A worker that dies after the server stored its request leaves a started turn; the next
    worker on the session finds that response in the conversation and sends nothing twice."""
    from tracker.stores import MemoryStore

    store = MemoryStore()
    conv = client.conversations.create()
    emulator.inject(Fault(drop="after"))  # stored, then the first worker never hears back
    with pytest.raises(openai.APIConnectionError):
        run_turn(
            client,
            model="emu-1",
            input=PROMPT,
            tools=TOOLS,
            session_store=store,
            session_id="s",
            conversation=conv.id,
            retry=RetryPolicy(max_attempts=1),
        )
    result = run_turn(
        client,
        model="emu-1",
        input=PROMPT,
        tools=TOOLS,
        session_store=store,
        session_id="s",
        retry=NO_WAIT,
    )
    assert ANSWER == result.text
    assert [True, False, False] == [r.recovered for r in result.requests]
    items = emulator.context_items(conversation_id=conv.id)
    assert [PROMPT] == [i["content"][0]["text"] for i in items if i.get("role") == "user"]
    _exactly_once(emulator, conversation_id=conv.id)


def test_the_same_input_object_reused_next_turn_is_sent(client: OpenAI) -> None:
    """A constant input dict passed again as the next turn's input is sent, not skipped."""
    cont = {"role": "user", "content": "continue"}
    first = run_turn(client, model="emu-1", input=[cont])
    second = run_turn(client, model="emu-1", input=[cont], tracker=first.tracker)
    assert [1] == [r.sent for r in second.requests]


def _suspended_client_generators() -> Counter[str]:
    """The openai/httpx async generators started and neither finished nor closed, by name.

    ``type(g) is`` rather than ``inspect.isasyncgen``: ``isinstance`` asks each of the
    worker's ~200,000 objects for its ``__class__``, some of them lazy proxies (~9 s of CPU).
    """
    import gc
    import types

    gc.collect()
    return Counter(
        f"{g.ag_code.co_filename.rsplit('/', 2)[-2]}:{g.ag_code.co_qualname}"
        for g in gc.get_objects()
        if type(g) is types.AsyncGeneratorType
        and g.ag_frame is not None
        and g.ag_frame.f_lasti >= 0
        and ("/openai/" in g.ag_code.co_filename or "/httpx/" in g.ag_code.co_filename)
    )


async def test_async_turn_leaves_no_client_stream_suspended(
    async_client: AsyncOpenAI, emulator: Emulator
) -> None:
    """A streamed async turn (and its conversation listing) reads every client stream to its end."""
    before = _suspended_client_generators()  # earlier tests' may be finalized meanwhile
    conv = await async_client.conversations.create()
    result = await arun_turn(
        async_client,
        model="emu-1",
        input=PROMPT,
        tools=TOOLS,
        conversation=conv.id,
        stream=True,
    )
    assert result.text.startswith("Done. ")
    assert Counter[str]() == _suspended_client_generators() - before
