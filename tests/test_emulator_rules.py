"""Every validation rule, sent through the real openai client: exact class, status, code, param
and message, as the service answers them (docs/responses-api-rules.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tracker.emulator import Emulator, RuleOptions

TOOLS: list[Any] = [{"type": "function", "name": "f"}, {"type": "function", "name": "g"}]
CHAT_TOOLS: list[Any] = [{"type": "function", "function": {"name": "f"}}]


def expect(
    cls: type[openai.APIStatusError],
    call: Callable[[], Any],
    message: str,
    param: str | None = None,
    code: str | None = None,
) -> openai.APIStatusError:
    """Run ``call``; assert the exception the client raises, field by field."""
    with pytest.raises(openai.APIStatusError) as info:
        call()
    exc = info.value
    status = {openai.BadRequestError: 400, openai.NotFoundError: 404}[cls]
    assert (cls, status, code, param) == (type(exc), exc.status_code, exc.code, exc.param)
    assert {
        "message": message,
        "type": "invalid_request_error",
        "param": param,
        "code": code,
    } == exc.body
    assert f"Error code: {status} - {message}" == exc.message
    return exc


def create(client: OpenAI, items: Any, **kwargs: Any) -> Any:
    kwargs.setdefault("model", "emu-1")
    return client.responses.create(input=items, tools=TOOLS, **kwargs)


def outputs(response: Any) -> list[dict[str, Any]]:
    return [
        {"type": "function_call_output", "call_id": o.call_id, "output": "ok"}
        for o in response.output
        if o.type == "function_call"
    ]


def plain(item: Any) -> dict[str, Any]:
    dumped: dict[str, Any] = item.model_dump(exclude_none=True)
    return dumped


# ---------------------------------------------------------------- pairing


def test_p1_pending_call_previous_response_id(client: OpenAI) -> None:
    """Scenario 1: a user message sent without the pending call's output."""
    r1 = create(client, "f()")
    call_id = r1.output[0].call_id
    expect(
        openai.BadRequestError,
        lambda: create(client, "go on", previous_response_id=r1.id),
        f"No tool output found for function call {call_id}.",
        "input",
    )


def test_p1_streaming_is_a_plain_400(client: OpenAI) -> None:
    """Scenario 11: in stream mode a validation error is an HTTP 400 JSON body, not SSE."""
    r1 = create(client, "f()")
    call_id = r1.output[0].call_id
    expect(
        openai.BadRequestError,
        lambda: create(client, "go on", previous_response_id=r1.id, stream=True),
        f"No tool output found for function call {call_id}.",
        "input",
    )


async def test_p1_async_client(async_client: AsyncOpenAI) -> None:
    """The async client raises the same BadRequestError."""
    r1 = await async_client.responses.create(model="emu-1", input="f()", tools=TOOLS)
    with pytest.raises(openai.BadRequestError) as info:
        await async_client.responses.create(
            model="emu-1", input="x", tools=TOOLS, previous_response_id=r1.id
        )
    assert (
        f"No tool output found for function call {r1.output[0].call_id}."
        == info.value.body["message"]
    )  # type: ignore[index]


def test_p1_conversation_pending_call_appends_nothing(client: OpenAI, emulator: Emulator) -> None:
    """Scenario 10: a conversation left with a pending call; the failed turn appends nothing."""
    conv = client.conversations.create()
    r1 = create(client, "f()", conversation=conv.id)
    before = emulator.context_items(conversation_id=conv.id)
    expect(
        openai.BadRequestError,
        lambda: create(client, "next", conversation=conv.id),
        f"No tool output found for function call {r1.output[0].call_id}.",
        "input",
    )
    assert before == emulator.context_items(conversation_id=conv.id)


def test_p1b_custom_tool_call(client: OpenAI) -> None:
    """P1 for a custom tool call uses its own wording."""
    item = {"type": "custom_tool_call", "call_id": "call_c", "name": "t", "input": "x"}
    expect(
        openai.BadRequestError,
        lambda: create(client, [item]),
        "No tool output found for custom tool call call_c.",
        "input",
    )


def test_p2_output_against_older_response(client: OpenAI) -> None:
    """Scenario 2: the output points at the response before the one that made the call."""
    r0 = create(client, "hello")
    r1 = create(client, "f()", previous_response_id=r0.id)
    call_id = r1.output[0].call_id
    expect(
        openai.BadRequestError,
        lambda: create(client, outputs(r1), previous_response_id=r0.id),
        f"No tool call found for function call output with call_id {call_id}.",
        "input",
    )


def test_p2_output_before_call_strict_by_default(client: OpenAI) -> None:
    """[INF] An output placed before its call is rejected (P2) while strict_order is on."""
    items = [
        {"type": "function_call_output", "call_id": "call_1", "output": "x"},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
    ]
    expect(
        openai.BadRequestError,
        lambda: create(client, items),
        "No tool call found for function call output with call_id call_1.",
        "input",
    )


def test_strict_order_switch_off_accepts_output_before_call() -> None:
    """RuleOptions(strict_order=False) accepts the same request."""
    items = [
        {"type": "function_call_output", "call_id": "call_1", "output": "x"},
        {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
    ]
    with (
        Emulator(options=RuleOptions(strict_order=False)) as emu,
        OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as c,
    ):
        assert "completed" == create(c, items).status


def test_async_call_needs_no_output(client: OpenAI) -> None:
    """[INF] a pending call with async: true is not P1."""
    item = {
        "type": "function_call",
        "call_id": "call_a",
        "name": "f",
        "arguments": "{}",
        "async": True,
    }
    assert "completed" == create(client, [item, {"role": "user", "content": "hi"}]).status


# ---------------------------------------------------------------- duplicates


def test_d1_resent_call_with_id(client: OpenAI) -> None:
    """Scenario 3: re-sending the function_call (with its fc_ id) alongside previous_response_id."""
    r1 = create(client, "f()")
    fc = plain(r1.output[0])
    expect(
        openai.BadRequestError,
        lambda: create(client, [fc, *outputs(r1)], previous_response_id=r1.id),
        f"Duplicate item found with id {fc['id']}. Remove duplicate items from your input and "
        "try again.",
        "input",
    )


def test_resent_items_without_ids_double_the_context(client: OpenAI, emulator: Emulator) -> None:
    """Scenario 4: the same items without ids are accepted and held twice."""
    r1 = create(client, "f()")
    fc = plain(r1.output[0])
    del fc["id"]
    r2 = create(client, [fc, *outputs(r1)], previous_response_id=r1.id)
    assert 2 == [i["type"] for i in emulator.context_items(response_id=r2.id)].count(
        "function_call"
    )


def test_d1_item_resent_into_conversation(client: OpenAI) -> None:
    """An item the conversation already holds, sent again inline, is D1."""
    conv = client.conversations.create(items=[{"role": "user", "content": "hello"}])
    held = client.conversations.items.list(conv.id).data[0]
    item = {"type": "message", "role": "user", "id": held.id, "content": "hello"}
    expect(
        openai.BadRequestError,
        lambda: create(client, [item], conversation=conv.id),
        f"Duplicate item found with id {held.id}. Remove duplicate items from your input and "
        "try again.",
        "input",
    )


# ---------------------------------------------------------------- reasoning


@pytest.fixture
def reasoning_turn(client: OpenAI) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A reasoning model's turn: (user message, reasoning item, function call)."""
    first = {"role": "user", "content": "f()"}
    r1 = create(client, [first], model="emu-reason-1")
    rs_item, fc = (plain(o) for o in r1.output)
    return first, rs_item, fc


def test_a1_reasoning_without_following_item(
    client: OpenAI, reasoning_turn: tuple[dict[str, Any], ...]
) -> None:
    """Scenario 8: stateless replay that keeps rs_ but drops the following fc_."""
    first, rs_item, fc = reasoning_turn
    out = {"type": "function_call_output", "call_id": fc["call_id"], "output": "ok"}
    expect(
        openai.BadRequestError,
        lambda: create(client, [first, rs_item, out], model="emu-reason-1"),
        f"Item '{rs_item['id']}' of type 'reasoning' was provided without its required "
        "following item.",
        "input",
    )


def test_a2_function_call_without_reasoning(
    client: OpenAI, reasoning_turn: tuple[dict[str, Any], ...]
) -> None:
    """Scenario 8: keeping the fc_ (with its id) but dropping the rs_."""
    first, rs_item, fc = reasoning_turn
    out = {"type": "function_call_output", "call_id": fc["call_id"], "output": "ok"}
    expect(
        openai.BadRequestError,
        lambda: create(client, [first, fc, out], model="emu-reason-1"),
        f"Item '{fc['id']}' of type 'function_call' was provided without its required "
        f"'reasoning' item: '{rs_item['id']}'.",
        "input",
    )


def test_a3_message_without_reasoning(client: OpenAI) -> None:
    """A3: the final assistant message replayed with its msg_ id, its reasoning dropped."""
    r1 = create(client, "hello", model="emu-reason-1")
    rs_item, msg = (plain(o) for o in r1.output)
    expect(
        openai.BadRequestError,
        lambda: create(client, [msg, {"role": "user", "content": "x"}]),
        f"Item '{msg['id']}' of type 'message' was provided without its required "
        f"'reasoning' item: '{rs_item['id']}'.",
        "input",
    )


def test_full_stateless_replay_is_valid(
    client: OpenAI, reasoning_turn: tuple[dict[str, Any], ...]
) -> None:
    """Replaying every output item in order, with ids, is accepted."""
    first, rs_item, fc = reasoning_turn
    out = {"type": "function_call_output", "call_id": fc["call_id"], "output": "ok"}
    r2 = create(client, [first, rs_item, fc, out], model="emu-reason-1")
    assert r2.output_text.startswith("Done. f -> ok")


# ---------------------------------------------------------------- stored items


def test_r0_unknown_reasoning_under_store_false(client: OpenAI) -> None:
    """Scenario 9: an id-only reasoning item the server does not hold, store:false: 404 + hint."""
    item = {"type": "reasoning", "id": "rs_missing", "summary": []}
    expect(
        openai.NotFoundError,
        lambda: create(client, [item], store=False),
        "Item with id 'rs_missing' not found. Items are not persisted when `store` is set to "
        "false. Try again with `store` set to true, or remove this item from your input.",
        "input",
    )


def test_r0_unknown_item_reference(client: OpenAI) -> None:
    """An item_reference to an unknown id: 404 without the store hint when storing."""
    expect(
        openai.NotFoundError,
        lambda: create(client, [{"type": "item_reference", "id": "msg_nope"}]),
        "Item with id 'msg_nope' not found.",
        "input",
    )


def test_item_reference_resolves_stored_item(client: OpenAI, emulator: Emulator) -> None:
    """A reference to a stored item pulls that item into the context."""
    r1 = create(client, "hello")
    r2 = create(client, [{"type": "item_reference", "id": r1.output[0].id}])
    assert "You said: hello" == emulator.context_items(response_id=r2.id)[0]["content"][0]["text"]


def test_r1_tampered_encrypted_content(client: OpenAI) -> None:
    """Encrypted content the emulator did not issue cannot be verified: the 2026 text names the
    rs_ item, or shows the content's ends for an item without an id."""
    item = {"type": "reasoning", "id": "rs_x", "summary": [], "encrypted_content": "gAAAAforged"}
    reason = " could not be verified. Reason: Encrypted content could not be decrypted or parsed."
    expect(
        openai.BadRequestError,
        lambda: create(client, [item]),
        "The encrypted content for item rs_x" + reason,
        None,
        "invalid_encrypted_content",
    )
    del item["id"]
    expect(
        openai.BadRequestError,
        lambda: create(client, [item]),
        "The encrypted content gAAA...ed" + reason,
        None,
        "invalid_encrypted_content",
    )


# ---------------------------------------------------------------- continuation state


def test_s1_unknown_previous_response(client: OpenAI) -> None:
    """S1: unknown previous_response_id."""
    expect(
        openai.BadRequestError,
        lambda: create(client, "x", previous_response_id="resp_nope"),
        "Previous response with id 'resp_nope' not found.",
        "previous_response_id",
        "previous_response_not_found",
    )


def test_s1_store_false_cannot_be_chained(client: OpenAI) -> None:
    """Scenario 7: chaining onto a store:false response is S1."""
    r1 = create(client, "hello", store=False)
    expect(
        openai.BadRequestError,
        lambda: create(client, "x", previous_response_id=r1.id),
        f"Previous response with id '{r1.id}' not found.",
        "previous_response_id",
        "previous_response_not_found",
    )


def test_s1_deleted_response(client: OpenAI) -> None:
    """A deleted response can neither be fetched (404) nor chained (S1)."""
    r1 = create(client, "hello")
    client.responses.delete(r1.id)
    expect(
        openai.NotFoundError,
        lambda: client.responses.retrieve(r1.id),
        f"Response with id '{r1.id}' not found.",
    )
    expect(
        openai.BadRequestError,
        lambda: create(client, "x", previous_response_id=r1.id),
        f"Previous response with id '{r1.id}' not found.",
        "previous_response_id",
        "previous_response_not_found",
    )


def test_s2_previous_response_and_conversation(client: OpenAI) -> None:
    """Scenario 5: both continuations at once, with the live API's odd text."""
    conv = client.conversations.create()
    r1 = create(client, "hello")
    expect(
        openai.BadRequestError,
        lambda: create(client, "x", previous_response_id=r1.id, conversation=conv.id),
        "Mutually exclusive parameters: ''. Ensure you are only providing one of: "
        "'pre..._id' or 'conversation'.",
        None,
        "mutually_exclusive_parameters",
    )


def test_s3_unknown_conversation(client: OpenAI) -> None:
    """Scenario 6: a well-formed conv_ id never created is a 404 with null param and code."""
    expect(
        openai.NotFoundError,
        lambda: create(client, "x", conversation="conv_nope"),
        "Conversation with id 'conv_nope' not found.",
    )


def test_s4_conversation_prefix(client: OpenAI) -> None:
    """S4: a conversation id with the wrong prefix."""
    expect(
        openai.BadRequestError,
        lambda: create(client, "x", conversation="abc"),
        "Invalid 'conversation': 'abc'. Expected an ID that begins with 'conv'.",
        "conversation",
        "invalid_value",
    )


def test_s5_conversation_locked(client: OpenAI) -> None:
    """S5: a second turn on a conversation while one is running (a background turn, held
    running until polled: no timing), and the conversation free again once it completed."""
    conv = client.conversations.create()
    running = create(client, "hello", conversation=conv.id, background=True)
    expect(
        openai.BadRequestError,
        lambda: create(client, "again", conversation=conv.id),
        "Another process is currently operating on this conversation. Please retry in a "
        "few seconds.",
        "conversation",
        "conversation_locked",
    )
    polled = [client.responses.retrieve(running.id).status for _ in range(2)]
    assert ["in_progress", "completed"] == polled
    assert "completed" == create(client, "again", conversation=conv.id).status


def test_s7_previous_response_id_type(client: OpenAI) -> None:
    """S7: previous_response_id must be a string."""
    expect(
        openai.BadRequestError,
        lambda: create(client, "x", extra_body={"previous_response_id": {"id": "resp_1"}}),
        "Invalid type for 'previous_response_id': expected a string, but got an object instead.",
        "previous_response_id",
        "invalid_type",
    )


def test_max_output_tokens_below_16_is_refused(client: OpenAI) -> None:
    """max_output_tokens below 16 is the service's integer_below_min_value (an Azure capture)."""
    expect(
        openai.BadRequestError,
        lambda: create(client, "x", max_output_tokens=10),
        "Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, "
        "but got 10 instead.",
        "max_output_tokens",
        "integer_below_min_value",
    )


# ---------------------------------------------------------------- ids


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            {"type": "message", "role": "user", "content": "x", "id": "abc"},
            "Invalid 'input[0].id': 'abc'. Expected an ID that begins with 'msg'.",
        ),
        (
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}", "id": "x_1"},
            "Invalid 'input[0].id': 'x_1'. Expected an ID that begins with 'fc'.",
        ),
        (
            {"type": "reasoning", "summary": [], "id": "fc_1"},
            "Invalid 'input[0].id': 'fc_1'. Expected an ID that begins with 'rs'.",
        ),
    ],
)
def test_input_id_prefix(client: OpenAI, item: dict[str, Any], message: str) -> None:
    """A client-supplied id must start with its type's prefix."""
    expect(
        openai.BadRequestError,
        lambda: create(client, [item]),
        message,
        "input[0].id",
        "invalid_value",
    )


def test_previous_response_id_characters(client: OpenAI) -> None:
    """Ids may hold only letters, digits, '_' and '-'."""
    expect(
        openai.BadRequestError,
        lambda: create(client, "x", previous_response_id="@results.ress"),
        "Invalid 'previous_response_id': '@results.ress'. Expected an ID that contains "
        "letters, numbers, underscores, or dashes, but this value contained additional "
        "characters.",
        "previous_response_id",
        "invalid_value",
    )


def test_previous_response_id_prefix(client: OpenAI) -> None:
    """previous_response_id must begin with 'resp'."""
    expect(
        openai.BadRequestError,
        lambda: create(client, "x", previous_response_id="gen-123"),
        "Invalid 'previous_response_id': 'gen-123'. Expected an ID that begins with 'resp'.",
        "previous_response_id",
        "invalid_value",
    )


def test_require_reasoning_id_switch(client: OpenAI) -> None:
    """A reasoning item without id is accepted by default, rejected when the switch is on."""
    item = {"type": "reasoning", "summary": [], "encrypted_content": None}
    assert "completed" == create(client, [item, {"role": "user", "content": "x"}]).status
    with (
        Emulator(options=RuleOptions(require_reasoning_id=True)) as emu,
        OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as strict,
    ):
        expect(
            openai.BadRequestError,
            lambda: create(strict, [item, {"role": "user", "content": "x"}]),
            "Missing required parameter: 'input[0].id'.",
            "input[0].id",
            "missing_required_parameter",
        )


# ---------------------------------------------------------------- request shape


@pytest.mark.parametrize("items", [[], ""])
def test_empty_input(client: OpenAI, items: Any) -> None:
    """An empty input with no continuation is the 'One of ...' error (mixed quotes kept)."""
    expect(
        openai.BadRequestError,
        lambda: create(client, items),
        "One of \"input\" or \"previous_response_id\" or 'prompt' or 'conversation' must be "
        "provided.",
        None,
        "missing_required_parameter",
    )


@pytest.mark.parametrize(
    ("body", "message", "param", "code"),
    [
        (
            {"input": "x"},
            "Missing required parameter: 'model'.",
            "model",
            "missing_required_parameter",
        ),
        (
            {"model": "m"},
            "Missing required parameter: 'input'.",
            "input",
            "missing_required_parameter",
        ),
        (
            {"model": "m", "input": "x", "zzz": 1},
            "Unknown parameter: 'zzz'.",
            "zzz",
            "unknown_parameter",
        ),
        (
            {"model": "m", "input": "x", "stor": True},
            "Unknown parameter: 'stor'. Did you mean 'store'?",
            "stor",
            "unknown_parameter",
        ),
        (
            {"model": "m", "messages": []},
            "Unsupported parameter: 'messages'. In the Responses API, this parameter has moved to "
            "'input'. Try again with the new parameter. See the API documentation for more "
            "information: https://platform.openai.com/docs/api-reference/responses/create.",
            None,
            "unsupported_parameter",
        ),
        (
            {"model": "m", "input": {}},
            "Invalid type for 'input': expected one of a string or "
            "array of input items, but got an object instead.",
            "input",
            "invalid_type",
        ),
        (
            {"model": "m", "input": [1]},
            "Invalid type for 'input[0]': expected an input item, but got an integer instead.",
            "input[0]",
            "invalid_type",
        ),
        (
            {"model": "m", "input": [{"role": "bogus", "content": "x"}]},
            "Invalid value: 'bogus'. Supported values are: 'assistant', 'system', 'developer', "
            "and 'user'.",
            "input[0]",
            "invalid_value",
        ),
        (
            {"model": "m", "input": [{"role": "user"}]},
            "Missing required parameter: 'input[0].content'.",
            "input[0].content",
            "missing_required_parameter",
        ),
        (
            {"model": "m", "input": [{"role": "user", "content": [{"type": "input_text"}]}]},
            "Missing required parameter: 'input[0].content[0].text'.",
            "input[0].content[0].text",
            "missing_required_parameter",
        ),
        (
            {
                "model": "m",
                "input": [{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}],
            },
            "Invalid value: 'input_text'. Supported values are: 'output_text' and 'refusal'.",
            "input[0].content[0]",
            "invalid_value",
        ),
        (
            {"model": "m", "input": [{"role": "user", "content": "x", "phase": "commentary"}]},
            "Unknown parameter: 'input[0].phase'.",
            "input[0].phase",
            "unknown_parameter",
        ),
        (
            {"model": "m", "input": [{"role": "user", "content": "x", "bogus": 1}]},
            "Unknown parameter: 'input[0].bogus'.",
            "input[0].bogus",
            "unknown_parameter",
        ),
        (
            {"model": "m", "input": "x", "store": "yes"},
            "Invalid type for 'store': expected a boolean, but got a string instead.",
            "store",
            "invalid_type",
        ),
        (
            {"model": "m", "input": "x", "tools": [{"type": "function", "function": {}}]},
            "Missing required parameter: 'tools[0].name'.",
            "tools[0].name",
            "missing_required_parameter",
        ),
        (
            {"model": "m", "input": "x", "tool_choice": "bogus"},
            "Invalid value: 'bogus'. Supported values are: 'none', 'auto', and 'required'.",
            "tool_choice",
            "invalid_value",
        ),
        (
            {"model": "m", "input": "x", "truncation": "bogus"},
            "Invalid value: 'bogus'. Supported values are: 'auto' and 'disabled'.",
            "truncation",
            "invalid_value",
        ),
    ],
)
def test_request_schema(
    client: OpenAI, body: dict[str, Any], message: str, param: str | None, code: str
) -> None:
    """Schema errors carry the service's exact text, param and code."""
    expect(
        openai.BadRequestError,
        lambda: client.post("/responses", cast_to=object, body=body),
        message,
        param,
        code,
    )


# ---------------------------------------------------------------- chat completions


def chat(client: OpenAI, messages: list[Any]) -> Any:
    return client.chat.completions.create(model="emu-1", messages=messages, tools=CHAT_TOOLS)


def tool_calls(*ids: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "tool_calls": [
            {"id": i, "type": "function", "function": {"name": "f", "arguments": "{}"}} for i in ids
        ],
    }


def test_chat_orphan_tool_message(client: OpenAI) -> None:
    """A tool message without tool_calls right before it."""
    messages = [
        {"role": "user", "content": "x"},
        {"role": "tool", "tool_call_id": "call_a", "content": "ok"},
    ]
    expect(
        openai.BadRequestError,
        lambda: chat(client, messages),
        "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
        "message with 'tool_calls'.",
        "messages.[1].role",
    )


def test_chat_unanswered_tool_calls(client: OpenAI) -> None:
    """tool_calls not answered by the following tool messages."""
    messages = [
        {"role": "user", "content": "x"},
        tool_calls("call_a", "call_b"),
        {"role": "user", "content": "y"},
    ]
    expect(
        openai.BadRequestError,
        lambda: chat(client, messages),
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        "call_a, call_b",
        "messages.[1].role",
    )


def test_chat_unknown_tool_call_id(client: OpenAI) -> None:
    """A tool message whose tool_call_id is not in the previous tool_calls."""
    messages = [
        tool_calls("call_a"),
        {"role": "tool", "tool_call_id": "call_a", "content": "1"},
        {"role": "tool", "tool_call_id": "call_z", "content": "2"},
    ]
    expect(
        openai.BadRequestError,
        lambda: chat(client, messages),
        "Invalid parameter: 'tool_call_id' of 'call_z' not found in 'tool_calls' of previous "
        "message.",
        "messages.[2].tool_call_id",
    )


def test_chat_empty_tool_calls(client: OpenAI) -> None:
    """tool_calls: [] is rejected with code empty_array."""
    messages = [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": []}]
    expect(
        openai.BadRequestError,
        lambda: chat(client, messages),
        "Invalid 'messages[1].tool_calls': empty array. Expected an array with minimum length "
        "1, but got an empty array instead.",
        "messages[1].tool_calls",
        "empty_array",
    )
