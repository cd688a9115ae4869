"""tracker.guard: a client whose history-sending methods check the request first.

Every test talks to the real emulator through the real ``openai`` client.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tracker import HistoryError, UsageError
from tracker.emulator import Emulator
from tracker.guard import GuardReport, guard
from tracker.guard._request import check, rejected_ids

PLACEHOLDER = "[tracker placeholder]"
TOOLS = [{"type": "function", "name": "weather"}]
CHAT_TOOLS = [{"type": "function", "function": {"name": "weather", "parameters": {}}}]

# A streaming Chat Completions loop that replays a `tool` message without its call.
ORPHAN = [
    {"role": "user", "content": "hello"},
    {"role": "tool", "tool_call_id": "call_x", "content": "sunny"},
]


def chat_calls(*ids: str) -> dict[str, Any]:
    calls = [
        {"id": i, "type": "function", "function": {"name": "weather", "arguments": "{}"}}
        for i in ids
    ]
    return {"role": "assistant", "content": None, "tool_calls": calls}


# Several tool-call messages, then the results (the #2699 shape), one result lost.
OUT_OF_ORDER = [
    {"role": "user", "content": "weather in Paris, Rome and Oslo"},
    chat_calls("call_a"),
    chat_calls("call_b", "call_c"),
    {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
    {"role": "tool", "tool_call_id": "call_b", "content": "rain"},
]


@pytest.fixture
def reports() -> list[GuardReport]:
    return []


@pytest.fixture
def plain(shared_emulator: Emulator) -> Iterator[OpenAI]:
    with OpenAI(base_url=shared_emulator.base_url, api_key="x", max_retries=0) as c:
        yield c


def tool_messages(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(m["tool_call_id"], m["content"]) for m in body["messages"] if m["role"] == "tool"]


def test_orphan_tool_message_in_streaming_chat_is_400_without_guard_and_200_with_it(
    plain: OpenAI, reports: list[GuardReport]
) -> None:
    """A streaming Chat loop with an orphan tool message: 400 bare, answered when guarded."""
    with pytest.raises(openai.BadRequestError, match="must be a response to a preceeding"):
        plain.chat.completions.create(model="emu-1", messages=ORPHAN, stream=True)
    guarded = guard(plain, on_report=reports.append)
    stream = guarded.chat.completions.create(model="emu-1", messages=ORPHAN, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "You said: hello" == text
    assert [("repaired", "drop_orphan_output")] == [
        (r.outcome, a.kind) for r in reports for a in r.actions
    ]


def test_repair_moves_real_results_next_to_their_calls_and_flags_the_lost_one(
    shared_emulator: Emulator, plain: OpenAI
) -> None:
    """Every real result is sent, after its call; the call with none gets a placeholder."""
    guarded = guard(plain)
    guarded.chat.completions.create(model="emu-1", messages=OUT_OF_ORDER, tools=CHAT_TOOLS)
    sent = shared_emulator.requests_to("/v1/chat/completions")[-1]
    results = tool_messages(sent)
    assert [("call_a", "sunny"), ("call_b", "rain")] == results[:2]
    assert "call_c" == results[2][0]
    assert results[2][1].startswith(PLACEHOLDER)


def test_valid_request_is_sent_as_given_without_a_report(
    shared_emulator: Emulator, plain: OpenAI, reports: list[GuardReport]
) -> None:
    """A valid history is neither copied nor reported."""
    messages = [chat_calls("call_a"), {"role": "tool", "tool_call_id": "call_a", "content": "ok"}]
    kwargs = {"model": "emu-1", "messages": messages}
    assert kwargs is check("chat", kwargs, repair="placeholder").kwargs
    guard(plain, on_report=reports.append).chat.completions.create(
        model="emu-1", messages=[{"role": "user", "content": "hi"}, *messages]
    )
    assert [] == reports


def test_policy_raise_names_the_first_violation_and_sends_nothing(
    shared_emulator: Emulator, plain: OpenAI, reports: list[GuardReport]
) -> None:
    """policy="raise": a HistoryError naming the offending message; nothing reaches the server."""
    guarded = guard(plain, policy="raise", on_report=reports.append)
    before = len(shared_emulator.requests)
    with pytest.raises(HistoryError, match=r"messages\[1\]: Invalid parameter") as caught:
        guarded.chat.completions.create(model="emu-1", messages=ORPHAN, stream=True)
    assert ["CHAT_ORPHAN_TOOL"] == [v.rule for v in caught.value.violations]
    assert before == len(shared_emulator.requests)
    assert ["raised"] == [r.outcome for r in reports]


def test_policy_report_logs_and_sends_the_request_as_it_was(
    plain: OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    """policy="report": a WARNING on the tracker.guard logger, then the service's own 400."""
    guarded = guard(plain, policy="report")
    with (
        caplog.at_level(logging.WARNING, logger="tracker.guard"),
        pytest.raises(openai.BadRequestError),
    ):
        guarded.chat.completions.create(model="emu-1", messages=ORPHAN)
    assert ["tracker.guard"] == [r.name for r in caplog.records]
    assert "chat.completions.create: reported" in caplog.records[0].getMessage()


def test_repair_drop_removes_the_unanswered_call(shared_emulator: Emulator, plain: OpenAI) -> None:
    """repair="drop": a call with no result leaves its message instead of getting a placeholder."""
    guard(plain, repair="drop").chat.completions.create(model="emu-1", messages=OUT_OF_ORDER)
    sent = shared_emulator.requests_to("/v1/chat/completions")[-1]
    ids = [c["id"] for m in sent["messages"] for c in m.get("tool_calls") or []]
    assert ["call_a", "call_b"] == ids
    assert [("call_a", "sunny"), ("call_b", "rain")] == tool_messages(sent)


def test_responses_delta_keeps_outputs_whose_calls_the_server_holds(
    shared_emulator: Emulator, plain: OpenAI, reports: list[GuardReport]
) -> None:
    """With previous_response_id an output for a stored call is not an orphan: sent as given."""
    guarded = guard(plain, on_report=reports.append)
    r1 = guarded.responses.create(model="emu-1", input='weather({"city": "Paris"})', tools=TOOLS)
    out = {"type": "function_call_output", "call_id": r1.output[0].call_id, "output": "sunny"}
    r2 = guarded.responses.create(
        model="emu-1", input=[out], tools=TOOLS, previous_response_id=r1.id
    )
    assert "Done. weather -> sunny" == r2.output_text
    assert [] == reports


def test_retry_on_400_answers_a_server_held_call_with_a_placeholder(
    shared_emulator: Emulator, plain: OpenAI, reports: list[GuardReport]
) -> None:
    """A dropped output for a stored call: 400 bare; with retry_on_400 a placeholder, then 200."""
    r1 = plain.responses.create(
        model="emu-1", input='weather({"city": "Paris"}) weather({"city": "Rome"})', tools=TOOLS
    )
    first, second = (item.call_id for item in r1.output)
    delta = [{"type": "function_call_output", "call_id": first, "output": "sunny"}]
    missing = f"No tool output found for function call {second}"
    with pytest.raises(openai.BadRequestError, match=missing):
        guard(plain).responses.create(
            model="emu-1", input=delta, tools=TOOLS, previous_response_id=r1.id
        )
    guarded = guard(plain, retry_on_400=True, on_report=reports.append)
    r2 = guarded.responses.create(
        model="emu-1", input=delta, tools=TOOLS, previous_response_id=r1.id
    )
    outputs = {
        item["call_id"]: item["output"]
        for item in shared_emulator.context_items(response_id=r2.id)
        if item.get("type") == "function_call_output"
    }
    assert "sunny" == outputs[first]
    assert outputs[second].startswith(PLACEHOLDER)
    assert [("retried", "add_placeholder", second)] == [
        (r.outcome, a.kind, a.call_id) for r in reports for a in r.actions
    ]


def test_report_policy_with_retry_repairs_only_after_the_service_rejects(
    plain: OpenAI, reports: list[GuardReport]
) -> None:
    """policy="report" + retry_on_400: sent as is, then repaired once after the pairing 400."""
    guarded = guard(plain, policy="report", retry_on_400=True, on_report=reports.append)
    completion = guarded.chat.completions.create(model="emu-1", messages=ORPHAN)
    assert "You said: hello" == completion.choices[0].message.content
    assert ["reported", "retried"] == [r.outcome for r in reports]


def test_raw_and_streaming_response_views_are_guarded(
    plain: OpenAI, reports: list[GuardReport]
) -> None:
    """with_raw_response / with_streaming_response / stream() go through the check too."""
    guarded = guard(plain, on_report=reports.append)
    raw = guarded.chat.completions.with_raw_response.create(model="emu-1", messages=ORPHAN)
    assert 200 == raw.http_response.status_code
    with guarded.chat.completions.with_streaming_response.create(
        model="emu-1", messages=ORPHAN
    ) as streamed:
        assert 200 == streamed.http_response.status_code
    with guarded.chat.completions.stream(model="emu-1", messages=ORPHAN) as helper:
        assert "You said: hello" == helper.get_final_completion().choices[0].message.content
    endpoints = [r.endpoint for r in reports]
    assert ["chat.completions.create"] * 2 + ["chat.completions.stream"] == endpoints


def test_guard_leaves_the_client_and_its_other_methods_alone(plain: OpenAI) -> None:
    """The original client stays unguarded; other methods and copies behave as the client's."""
    guarded = guard(plain, policy="raise")
    assert isinstance(guarded, OpenAI)
    with pytest.raises(openai.BadRequestError):
        plain.chat.completions.create(model="emu-1", messages=ORPHAN)
    created = guarded.responses.create(model="emu-1", input="hi")
    assert created.id == guarded.responses.retrieve(created.id).id
    with pytest.raises(HistoryError):
        guarded.with_options(timeout=5).chat.completions.create(model="emu-1", messages=ORPHAN)


class FrameworkClient:
    """A framework's own chat client (it holds an openai client; it is not one)."""


def test_guarding_something_that_is_not_an_openai_client_is_a_usage_error() -> None:
    """guard() of a framework's client names its type and says to guard the openai client."""
    with pytest.raises(UsageError, match=r"not \S*test_guard\.FrameworkClient:") as info:
        guard(FrameworkClient())  # type: ignore[type-var]
    assert "async_client=guard(AsyncOpenAI(...))" in str(info.value)


def test_unknown_policy_is_a_usage_error(plain: OpenAI) -> None:
    """A misspelt policy fails at guard() time, naming the choices."""
    with pytest.raises(UsageError, match="repair, raise, report"):
        guard(plain, policy="fix")  # type: ignore[arg-type]


async def test_async_client_is_guarded_plain_and_streaming(
    shared_emulator: Emulator, reports: list[GuardReport]
) -> None:
    """AsyncOpenAI: create(stream=True), responses.stream() and a retry all go through."""
    async with AsyncOpenAI(base_url=shared_emulator.base_url, api_key="x", max_retries=0) as c:
        guarded = guard(c, retry_on_400=True, on_report=reports.append)
        stream = await guarded.chat.completions.create(model="emu-1", messages=ORPHAN, stream=True)
        assert "You said: hello" == "".join(
            [ch.choices[0].delta.content or "" async for ch in stream if ch.choices]
        )
        history = [
            {"role": "user", "content": "hi"},
            {"type": "function_call_output", "call_id": "call_gone", "output": "late"},
        ]
        async with guarded.responses.stream(model="emu-1", input=history) as events:
            final = await events.get_final_response()
        assert "completed" == final.status
    assert ["chat.completions.create", "responses.stream"] == [r.endpoint for r in reports]


def test_import_tracker_does_not_import_the_guard() -> None:
    """`import tracker` stays free of tracker.guard (and so of its openai import)."""
    code = "import sys, tracker; print('tracker.guard' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "False" == out.stdout.strip()


def test_history_the_guard_cannot_read_is_sent_unchecked_with_a_warning(
    plain: OpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    """An item the guard cannot read never breaks a request: the service decides."""
    history: list[Any] = [{"role": "user", "content": "hi"}, 42]
    with (
        caplog.at_level(logging.WARNING, logger="tracker.guard"),
        pytest.raises(openai.BadRequestError),
    ):
        guard(plain).responses.create(model="emu-1", input=history)
    assert "responses.create: history not checked" in caplog.records[0].getMessage()


def test_rejection_texts_name_the_call_type_and_ids() -> None:
    """The service's pairing texts are read back into call ids and call types."""
    message = (
        "No tool output found for custom tool call call_1. "
        "No tool call found for function call output with call_id call_2."
    )
    assert ({"call_1": "custom_tool_call"}, ["call_2"]) == rejected_ids("responses", message)
    assert rejected_ids("responses", "Duplicate item found with id fc_1.") is None


def stream_chat_loop(client: OpenAI, messages: list[dict[str, Any]]) -> str:
    """A plain streaming Chat Completions tool loop: stream, run the calls, until text."""
    while True:
        stream = client.chat.completions.create(
            model="emu-1", messages=messages, tools=CHAT_TOOLS, stream=True
        )
        text, calls = "", {}
        for chunk in stream:
            delta = chunk.choices[0].delta if chunk.choices else None
            if delta is None:
                continue
            text += delta.content or ""
            for part in delta.tool_calls or []:
                call = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += part.id or ""
                call["name"] += (part.function and part.function.name) or ""
                call["arguments"] += (part.function and part.function.arguments) or ""
        if not calls:
            return text
        tool_calls = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": "{}"}}
            for c in calls.values()
        ]
        messages.append({"role": "assistant", "content": None, "tool_calls": tool_calls})
        messages += [
            {"role": "tool", "tool_call_id": c["id"], "content": f"result {n}"}
            for n, c in enumerate(calls.values())
        ]


def test_streaming_chat_loop_with_an_orphan_tool_message_completes_when_guarded(
    shared_emulator: Emulator, plain: OpenAI
) -> None:
    """A transcript trimmed past a call leaves its tool message: 400 bare, done when guarded."""
    trimmed = [
        {"role": "tool", "tool_call_id": "call_trimmed", "content": "old result"},
        {"role": "user", "content": 'weather({"city": "Paris"}) weather({"city": "Rome"})'},
    ]
    with pytest.raises(openai.BadRequestError, match="preceeding message with 'tool_calls'"):
        stream_chat_loop(plain, list(trimmed))
    text = stream_chat_loop(guard(plain), list(trimmed))
    assert "Done. weather -> result 0; weather -> result 1" == text
    last = shared_emulator.requests_to("/v1/chat/completions")[-1]
    assert ["result 0", "result 1"] == [content for _, content in tool_messages(last)]


def test_guarding_a_guarded_client_replaces_its_guard(
    plain: OpenAI, reports: list[GuardReport]
) -> None:
    """guard(guard(c)) checks each request once, with the newer settings."""
    older: list[GuardReport] = []
    inner = guard(plain, policy="report", on_report=older.append)
    twice = guard(inner, policy="report", on_report=reports.append)
    with pytest.raises(openai.BadRequestError):
        twice.chat.completions.create(model="emu-1", messages=ORPHAN)
    assert ([], ["reported"]) == (older, [r.outcome for r in reports])


async def test_async_raw_response_create_retries_after_a_dropped_output(
    shared_emulator: Emulator, reports: list[GuardReport]
) -> None:
    """The path agent-framework takes (async with_raw_response.create) retries once too."""
    async with AsyncOpenAI(base_url=shared_emulator.base_url, api_key="x", max_retries=0) as c:
        guarded = guard(c, retry_on_400=True, on_report=reports.append)
        r1 = await c.responses.create(
            model="emu-1", input='weather({"city": "Oslo"}) weather({"city": "Bern"})', tools=TOOLS
        )
        first, second = (item.call_id for item in r1.output)
        delta = [{"type": "function_call_output", "call_id": second, "output": "cold"}]
        raw = await guarded.responses.with_raw_response.create(
            model="emu-1", input=delta, tools=TOOLS, previous_response_id=r1.id
        )
        assert 200 == raw.http_response.status_code
    assert [(first, None)] == [(a.call_id, a.index) for r in reports for a in r.actions]


def test_a_one_shot_iterable_history_is_checked_and_sent_as_a_list(
    shared_emulator: Emulator, plain: OpenAI
) -> None:
    """A generator of messages is read once by the guard; the list it read is what is sent."""
    guard(plain).chat.completions.create(model="emu-1", messages=(m for m in ORPHAN))
    assert [{"role": "user", "content": "hello"}] == shared_emulator.requests_to(
        "/v1/chat/completions"
    )[-1]["messages"]


def test_a_400_that_is_not_about_pairing_is_raised_without_a_retry(
    shared_emulator: Emulator, plain: OpenAI, reports: list[GuardReport]
) -> None:
    """retry_on_400 retries only tool-pairing errors: anything else is raised at once."""
    guarded = guard(plain, retry_on_400=True, on_report=reports.append)
    before = len(shared_emulator.requests)
    with pytest.raises(openai.BadRequestError):
        guarded.responses.create(model="emu-1", input="hi", previous_response_id="resp_missing")
    assert (1, []) == (len(shared_emulator.requests) - before, reports)
