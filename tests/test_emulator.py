"""End-to-end tests of the emulator with the real openai client (sync, async, streaming)."""

from __future__ import annotations

import threading
from typing import Any

import attrs
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tracker import UsageError
from tracker.emulator import Emulator
from tracker.emulator._incomplete import cut_to_budget, end_output
from tracker.emulator._persist import read_response, response_record
from tracker.emulator._state import StoredResponse

TOOLS: list[Any] = [
    {"type": "function", "name": "weather", "parameters": {"type": "object", "properties": {}}},
    {"type": "function", "name": "add", "parameters": {"type": "object", "properties": {}}},
]
PROMPT = 'weather({"city": "Paris"}) weather({"city": "Rome"}) then add({"a": 1, "b": 2})'


def _outputs(response: Any) -> list[dict[str, Any]]:
    return [
        {"type": "function_call_output", "call_id": item.call_id, "output": f"out-{item.name}"}
        for item in response.output
        if item.type == "function_call"
    ]


def test_tool_loop_previous_response_id(client: OpenAI, emulator: Emulator) -> None:
    """Two rounds of calls then a text answer, chained by previous_response_id."""
    r1 = client.responses.create(model="emu-1", input=PROMPT, tools=TOOLS)
    assert ["weather", "weather"] == [o.name for o in r1.output if o.type == "function_call"]
    r2 = client.responses.create(
        model="emu-1", input=_outputs(r1), tools=TOOLS, previous_response_id=r1.id
    )
    assert ["add"] == [o.name for o in r2.output if o.type == "function_call"]
    r3 = client.responses.create(
        model="emu-1", input=_outputs(r2), tools=TOOLS, previous_response_id=r2.id
    )
    assert "Done. weather -> out-weather; weather -> out-weather; add -> out-add" == r3.output_text
    assert dict.fromkeys(emulator.issued_calls(), 1) == emulator.context_outputs(response_id=r3.id)


async def test_tool_loop_conversation_async_stream(
    async_client: AsyncOpenAI, emulator: Emulator
) -> None:
    """The same loop through a conversation, async and streaming."""
    conv = await async_client.conversations.create()
    items: Any = PROMPT
    for _ in range(3):
        async with async_client.responses.stream(
            model="emu-reason-1", input=items, tools=TOOLS, conversation=conv.id
        ) as stream:
            final = await stream.get_final_response()
        items = _outputs(final)
    assert final.output_text.startswith("Done. ")
    assert dict.fromkeys(emulator.issued_calls(), 1) == emulator.context_outputs(
        conversation_id=conv.id
    )


def test_tool_loop_sync_streaming_create(client: OpenAI, emulator: Emulator) -> None:
    """create(stream=True) through previous_response_id: the completed event carries it all."""
    previous = None
    items: Any = PROMPT
    for _ in range(3):
        events = list(
            client.responses.create(
                model="emu-1",
                input=items,
                tools=TOOLS,
                previous_response_id=previous,
                stream=True,
            )
        )
        final = events[-1].response
        previous, items = final.id, _outputs(final)
    assert final.output_text.startswith("Done. weather -> out-weather")
    assert dict.fromkeys(emulator.issued_calls(), 1) == emulator.context_outputs(
        response_id=previous
    )


async def test_tool_loop_async_plain_conversation(
    async_client: AsyncOpenAI, emulator: Emulator
) -> None:
    """Async, non-streaming, through a conversation; the items land in the conversation."""
    conv = await async_client.conversations.create()
    items: Any = PROMPT
    for _ in range(3):
        final = await async_client.responses.create(
            model="emu-1", input=items, tools=TOOLS, conversation=conv.id
        )
        items = _outputs(final)
    assert {"id": conv.id} == final.conversation.model_dump() if final.conversation else None
    listed = await async_client.conversations.items.list(conv.id, order="asc")
    assert [
        "message",
        "function_call",
        "function_call",
        "function_call_output",
        "function_call_output",
        "function_call",
        "function_call_output",
        "message",
    ] == [item.type for item in listed.data]


def test_stream_event_sequence(client: OpenAI) -> None:
    """The SSE sequence: created first, numbered from 0, items opened and closed, completed."""
    events = list(
        client.responses.create(model="emu-reason-1", input="weather()", tools=TOOLS, stream=True)
    )
    assert list(range(len(events))) == [e.sequence_number for e in events]
    types = [e.type for e in events]
    assert ["response.created", "response.in_progress"] == types[:2]
    assert "response.completed" == types[-1]
    compact = [t for i, t in enumerate(types) if i == 0 or t != types[i - 1]]
    assert [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ] == compact
    assert "in_progress" == events[0].response.status
    assert [] == events[0].response.output


def test_stream_text_deltas_join_to_the_text(client: OpenAI) -> None:
    """A text answer streams content_part and output_text deltas that join to the final text."""
    with client.responses.stream(model="emu-1", input="hello there, emulator") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert len(deltas) > 1
    assert "You said: hello there, emulator" == "".join(deltas) == final.output_text


def test_response_endpoints(client: OpenAI) -> None:
    """GET a stored response, its input items (newest first), then DELETE it."""
    r1 = client.responses.create(
        model="emu-1",
        input=[{"role": "user", "content": "one"}, {"role": "user", "content": "two"}],
    )
    assert r1.output_text == client.responses.retrieve(r1.id).output_text
    listed = client.responses.input_items.list(r1.id)
    assert [["two"], ["one"]] == [[p.text for p in item.content] for item in listed.data]
    assert all(item.id.startswith("msg_") for item in listed.data)
    client.responses.delete(r1.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(r1.id)


def test_conversation_item_endpoints(client: OpenAI, emulator: Emulator) -> None:
    """Conversation items: create, list (desc by default), get, delete; then the conversation."""
    conv = client.conversations.create(
        items=[{"role": "user", "content": "a"}], metadata={"k": "v"}
    )
    added = client.conversations.items.create(conv.id, items=[{"role": "user", "content": "b"}])
    assert 1 == len(added.data)
    listed = client.conversations.items.list(conv.id)
    assert [["b"], ["a"]] == [[p.text for p in item.content] for item in listed.data]
    got = client.conversations.items.retrieve(added.data[0].id, conversation_id=conv.id)
    assert added.data[0].id == got.id
    after = client.conversations.items.delete(added.data[0].id, conversation_id=conv.id)
    assert conv.id == after.id
    assert 1 == len(emulator.context_items(conversation_id=conv.id))
    assert {"k": "v"} == client.conversations.retrieve(conv.id).metadata
    assert client.conversations.delete(conv.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.conversations.retrieve(conv.id)


def test_store_false_conversation_appends_nothing(client: OpenAI, emulator: Emulator) -> None:
    """[3P] a store:false turn in a conversation runs but leaves the conversation unchanged."""
    conv = client.conversations.create()
    r = client.responses.create(model="emu-1", input="hi", conversation=conv.id, store=False)
    assert "You said: hi" == r.output_text
    assert [] == emulator.context_items(conversation_id=conv.id)


def test_chat_tool_loop_plain_and_streaming(client: OpenAI) -> None:
    """Chat Completions: tool_calls, tool messages, final answer; streaming chunks end the same."""
    chat_tools: Any = [{"type": "function", "function": {"name": "add"}}]
    messages: list[Any] = [{"role": "user", "content": 'add({"a": 1}) add({"a": 2})'}]
    first = client.chat.completions.create(model="emu-1", messages=messages, tools=chat_tools)
    calls = first.choices[0].message.tool_calls or []
    assert ("tool_calls", 2) == (first.choices[0].finish_reason, len(calls))
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages += [
        {"role": "tool", "tool_call_id": c.id, "content": f"r{i}"} for i, c in enumerate(calls)
    ]
    chunks = list(
        client.chat.completions.create(
            model="emu-1", messages=messages, tools=chat_tools, stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "Done. add -> r0; add -> r1" == text
    assert "stop" == chunks[-1].choices[0].finish_reason


def _run_chain(c: OpenAI, n: int, use_conversation: bool) -> tuple[str, str]:
    kwargs: dict[str, Any] = {}
    if use_conversation:
        kwargs["conversation"] = c.conversations.create().id
    items: Any = f'weather({{"n": {n}}}) then add({{"n": {n}}})'
    for _ in range(3):
        r = c.responses.create(model="emu-1", input=items, tools=TOOLS, **kwargs)
        if not use_conversation:
            kwargs["previous_response_id"] = r.id
        items = [
            {"type": "function_call_output", "call_id": o.call_id, "output": f"{o.name}-{n}"}
            for o in r.output
            if o.type == "function_call"
        ]
    return r.output_text, kwargs.get("conversation") or r.id


def test_many_clients_at_once(emulator: Emulator) -> None:
    """24 threads on 4 clients, chains and conversations: each gets its own, complete state."""
    results: dict[tuple[int, bool], tuple[str, str]] = {}
    errors: list[BaseException] = []
    clients = [OpenAI(base_url=emulator.base_url, api_key="k", max_retries=0) for _ in range(4)]

    def worker(n: int, conv: bool) -> None:
        try:
            results[n, conv] = _run_chain(clients[n % 4], n, conv)
        except BaseException as exc:  # reported below, with the thread's traceback
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n, n % 3 == 0)) for n in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for c in clients:
        c.close()
    assert [] == errors
    assert 24 == len(results)
    for (n, conv), (text, key) in results.items():
        assert f"Done. weather -> weather-{n}; add -> add-{n}" == text
        counts = (
            emulator.context_outputs(conversation_id=key)
            if conv
            else emulator.context_outputs(response_id=key)
        )
        assert [1, 1] == sorted(counts.values())
    issued = emulator.issued_calls()
    assert 48 == len(set(issued)) == len(issued)
    assert dict.fromkeys(issued, 1) == emulator.received_outputs()


def test_context_items_without_a_chain_or_conversation_is_a_usage_error() -> None:
    """Emulator.context_items() with neither id names both ways to ask (a UsageError)."""
    with pytest.raises(UsageError, match="pass response_id=... or conversation_id="):
        Emulator().context_items()


def test_max_output_tokens_cuts_the_output_where_the_budget_ends() -> None:
    """A reasoning item costs 16 tokens, text and arguments 4 chars a token: the item the budget
    ends in is cut (status incomplete; reasoning kept whole), the rest left out."""
    reasoning = {"type": "reasoning", "id": "rs_1", "summary": []}
    part = {"type": "output_text", "text": "x" * 40, "annotations": []}
    msg = {"type": "message", "role": "assistant", "status": "completed", "content": [part]}
    call = {"type": "function_call", "call_id": "c", "name": "f", "arguments": "y" * 40}
    cut = {"reason": "max_output_tokens"}
    assert ([reasoning, msg], None) == cut_to_budget([reasoning, msg], 26)
    assert ([reasoning, msg], None) == cut_to_budget([reasoning, msg], None)
    out, details = cut_to_budget([reasoning, msg, call], 20)
    assert (cut, 2, "x" * 16, "incomplete") == (
        details,
        len(out),
        out[1]["content"][0]["text"],
        out[1]["status"],
    )
    assert "x" * 40 == part["text"]  # the script's item is not changed
    assert ([reasoning], cut) == cut_to_budget([reasoning, msg], 10)  # spent on reasoning
    assert ([{**call, "arguments": "y" * 8, "status": "incomplete"}], cut) == cut_to_budget(
        [call], 2
    )
    assert ([], cut) == cut_to_budget([msg], 0)
    stop = {"type": "incomplete", "reason": "content_filter"}
    assert ([msg], {"reason": "content_filter"}) == end_output([msg, stop, call], None)
    assert ([], cut) == end_output([msg, stop], 0)  # the budget ended it first


def test_a_script_can_end_a_response_incomplete() -> None:
    """A script's final incomplete item ends the response incomplete with its reason, plain
    and streamed (response.incomplete); the items before it are the output."""

    def script(context: Any, request: Any) -> list[Any]:
        return ["Part of", {"type": "incomplete", "reason": "content_filter"}]

    with (
        Emulator(script=script) as emu,
        OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as client,
    ):
        plain = client.responses.create(model="emu-1", input="hi")
        with client.responses.create(model="emu-1", input="hi", stream=True) as events:
            last = list(events)[-1]
    assert ("incomplete", "content_filter", "Part of") == (
        plain.status,
        plain.incomplete_details and plain.incomplete_details.reason,
        plain.output_text,
    )
    assert last.type == "response.incomplete"
    assert ("content_filter", "Part of") == (
        last.response.incomplete_details and last.response.incomplete_details.reason,
        last.response.output_text,
    )


def test_an_incomplete_response_is_saved_as_incomplete() -> None:
    """A stored response's incomplete_details survives the state file's record (none: no key)."""
    stored = StoredResponse("resp_1", {}, [], [], None, None, True, {"reason": "content_filter"})
    assert stored == read_response(response_record(stored), "responses[0].")
    assert "incomplete_details" not in response_record(
        attrs.evolve(stored, incomplete_details=None)
    )
