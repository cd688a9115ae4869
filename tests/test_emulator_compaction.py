"""Compaction in the emulator, end to end with the real openai client: server-side compaction in
a chain and a conversation (plain and streaming), ``compaction_trigger``, ``/responses/compact``,
stale ``cmp_`` content, and the compaction boundary in the rules."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import openai
import pytest
from _examples import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai import OpenAI

from tracker._rules import check_context
from tracker.emulator import Emulator, RuleOptions
from tracker.emulator._service import Service

TOOLS: list[Any] = [{"type": "function", "name": "f"}, {"type": "function", "name": "g"}]
#: A small threshold (the 1000 minimum is switched off). With TASK's padding the window holds
#: about 100 tokens on turn 1, 190 on turn 2 (compacts) and 130 on turn 3 (a compacted window).
SMALL: Any = [{"type": "compaction", "compact_threshold": 150}]
TASK = "Please " + "x" * 200 + ' f({"a": 1}) then g({"b": 2})'
SMALL_OPTIONS = RuleOptions(enforce_min_compact_threshold=False)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    """An emulator that accepts tiny compaction thresholds."""
    with Emulator(seed=3, options=SMALL_OPTIONS) as emulator:
        yield emulator


def connect(emu: Emulator) -> OpenAI:
    """The real client on ``emu``, no retries."""
    return OpenAI(base_url=emu.base_url, api_key="x", max_retries=0)


@pytest.fixture
def api(emu: Emulator) -> Iterator[OpenAI]:
    """The real client on ``emu``, no retries."""
    with connect(emu) as c:
        yield c


def answers(response: Any) -> list[Any]:
    """A ``function_call_output`` for every call in ``response``."""
    return [
        {"type": "function_call_output", "call_id": o.call_id, "output": f"out-{o.name}"}
        for o in response.output
        if o.type == "function_call"
    ]


def plain(item: Any) -> dict[str, Any]:
    """An output item as an input item dict."""
    # The SDK types a compacted window's user messages as output messages: no warnings.
    dumped: dict[str, Any] = item.model_dump(exclude_none=True, warnings=False)
    return dumped


def create(api: OpenAI, items: Any, **kwargs: Any) -> Any:
    """``responses.create`` with the test tools and the small compaction threshold."""
    kwargs.setdefault("context_management", SMALL)
    return api.responses.create(model="emu-1", input=items, tools=TOOLS, **kwargs)


def expect_400(call: Any, message: str, param: str | None, code: str | None) -> None:
    """``call`` raises BadRequestError with exactly this envelope."""
    with pytest.raises(openai.BadRequestError) as info:
        call()
    body = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    assert body == info.value.body


def test_chain_compacts_when_the_window_crosses_the_threshold(emu: Emulator, api: OpenAI) -> None:
    """The turn whose window passes compact_threshold starts its output with a sealed cmp_ item,
    and the chain continues from the compacted window with every output delivered once."""
    r1 = create(api, TASK)
    assert ["function_call"] == [o.type for o in r1.output]
    r2 = create(api, answers(r1), previous_response_id=r1.id)
    assert ["compaction", "function_call"] == [o.type for o in r2.output]
    cmp = r2.output[0]
    assert cmp.id.startswith("cmp_") and cmp.encrypted_content.startswith("gAAAAA")
    r3 = create(api, answers(r2), previous_response_id=r2.id)
    assert "Done. f -> out-f; g -> out-g" == r3.output_text
    assert r3.usage is not None and r2.usage is not None
    assert r3.usage.input_tokens < r2.usage.input_tokens  # usage counts the compacted window
    window = emu.window_items(response_id=r3.id)
    assert cmp.id == window[0]["id"]
    assert {r1.output[0].call_id: 1, r2.output[1].call_id: 1} == emu.context_outputs(
        response_id=r3.id
    )


def test_no_compaction_below_the_threshold_or_without_context_management(api: OpenAI) -> None:
    """A small window, or no context_management, never compacts."""
    r1 = create(api, TASK, context_management=[{"type": "compaction", "compact_threshold": 5000}])
    r2 = create(api, answers(r1), previous_response_id=r1.id, context_management=None)
    assert ["function_call"] == [o.type for o in r2.output]


def test_output_whose_call_lies_before_the_compaction_is_p2(api: OpenAI) -> None:
    """After a compaction, an output for a call before it answers nothing: P2."""
    r1 = create(api, TASK)
    r2 = create(api, answers(r1), previous_response_id=r1.id)
    stale = {**answers(r1)[0], "output": "again"}
    call_id = stale["call_id"]
    expect_400(
        lambda: create(api, [*answers(r2), stale], previous_response_id=r2.id),
        f"No tool call found for function call output with call_id {call_id}.",
        "input",
        None,
    )


def test_rules_check_pairing_from_the_latest_compaction_item_only() -> None:
    """A call before the boundary needs no output; an output after it needs its call after it."""
    call = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}
    out = {"type": "function_call_output", "call_id": "call_1", "output": "x"}
    cmp = {"type": "compaction", "id": "cmp_1", "encrypted_content": "gAAAAA"}
    assert [] == check_context([call, cmp])
    assert ["P2"] == [v.rule for v in check_context([call, cmp, out])]
    off = RuleOptions(compaction_boundary=False)
    assert [] == check_context([call, cmp, out], options=off)


def test_conversation_compacts_and_lists_every_item(emu: Emulator, api: OpenAI) -> None:
    """In a conversation the turn that crosses the threshold compacts; the conversation keeps
    every item, and the next turn sees the window from the compaction item on."""
    conv = api.conversations.create()
    r1 = create(api, TASK, conversation=conv.id)
    r2 = create(api, answers(r1), conversation=conv.id)
    assert "compaction" == r2.output[0].type
    r3 = create(api, answers(r2), conversation=conv.id)
    assert "Done. f -> out-f; g -> out-g" == r3.output_text
    listed = [i.type for i in api.conversations.items.list(conv.id, order="asc")]
    assert ["message", "function_call", "function_call_output", "compaction"] == listed[:4]
    assert r2.output[0].id == emu.window_items(conversation_id=conv.id)[0]["id"]


def test_streamed_compaction_announces_compacting_then_the_item(api: OpenAI) -> None:
    """A streamed turn that compacts emits response.compaction.compacting, then the compaction
    item's output_item.added/done; responses.stream() assembles the final response."""
    r1 = create(api, TASK)
    with api.responses.stream(
        model="emu-1",
        input=answers(r1),
        tools=TOOLS,
        previous_response_id=r1.id,
        context_management=SMALL,
    ) as stream:
        kinds = [(e.type, getattr(getattr(e, "item", None), "type", None)) for e in stream]
        final = stream.get_final_response()
    at = kinds.index(("response.compaction.compacting", None))
    assert ("response.output_item.added", "compaction") == kinds[at + 1]
    assert ("response.output_item.done", "compaction") == kinds[at + 2]
    assert ["compaction", "function_call"] == [o.type for o in final.output]


def test_compaction_trigger_compacts_now_and_must_be_last(api: OpenAI) -> None:
    """A final compaction_trigger makes the output one compaction item; anywhere else, 400."""
    r1 = create(api, "hello", context_management=None)
    trigger = {"type": "compaction_trigger"}
    expect_400(
        lambda: create(api, [trigger, {"role": "user", "content": "x"}]),
        "Invalid 'input[0]': an item of type 'compaction_trigger' must be the final input item.",
        "input[0]",
        "invalid_value",
    )
    r2 = create(api, [trigger], previous_response_id=r1.id, context_management=None)
    assert ["compaction"] == [o.type for o in r2.output]
    r3 = create(api, "again", previous_response_id=r2.id, context_management=None)
    assert "You said: again" == r3.output_text


def test_replayed_compaction_verifies_until_the_keys_rotate(emu: Emulator, api: OpenAI) -> None:
    """A cmp_ item replayed statelessly is accepted; after rotate_keys() the same item gets the
    service's invalid_encrypted_content 400."""
    r1 = create(api, TASK, store=False)
    history = [{"role": "user", "content": TASK}, *map(plain, r1.output), *answers(r1)]
    lower = [{"type": "compaction", "compact_threshold": 120}]  # the replay has fewer ids
    r2 = create(api, history, store=False, context_management=lower)
    assert "compaction" == r2.output[0].type
    window = [*map(plain, r2.output), *answers(r2)]
    r3 = create(api, window, store=False, context_management=None)
    assert "Done. f -> out-f; g -> out-g" == r3.output_text
    emu.rotate_keys()
    expect_400(
        lambda: create(api, window, store=False),
        f"The encrypted content for item {r2.output[0].id} could not be verified. Reason: "
        "Encrypted content could not be decrypted or parsed.",
        None,
        "invalid_encrypted_content",
    )


def test_foreign_compaction_content_is_rejected(api: OpenAI) -> None:
    """encrypted_content this emulator never sealed is invalid_encrypted_content."""
    foreign = {"type": "compaction", "id": "cmp_x", "encrypted_content": "gAAAAAcmp_x.00"}
    expect_400(
        lambda: create(api, [foreign, {"role": "user", "content": "hi"}]),
        "The encrypted content for item cmp_x could not be verified. Reason: Encrypted content "
        "could not be decrypted or parsed.",
        None,
        "invalid_encrypted_content",
    )


def test_created_by_on_an_input_compaction_item_is_unknown(emu: Emulator, api: OpenAI) -> None:
    """created_by is output-only: rejected on input by default, accepted with the switch off."""
    r = api.responses.compact(model="emu-1", input="hello")
    item = {**plain(r.output[-1]), "created_by": "user_1"}
    expect_400(
        lambda: create(api, [item, {"role": "user", "content": "hi"}]),
        "Unknown parameter: 'input[0].created_by'.",
        "input[0].created_by",
        "unknown_parameter",
    )
    emu.service.options = attrs.evolve(SMALL_OPTIONS, reject_compaction_created_by=False)
    assert "You said: hi" == create(api, [item, {"role": "user", "content": "hi"}]).output_text


def test_standalone_compact_returns_user_messages_then_one_compaction(api: OpenAI) -> None:
    """responses.compact() answers a CompactedResponse: the user messages, one compaction item;
    a new chain started from that window continues the task."""
    r1 = create(api, TASK, context_management=None)
    r2 = create(api, answers(r1), previous_response_id=r1.id, context_management=None)
    compacted = api.responses.compact(model="emu-1", previous_response_id=r2.id, input=answers(r2))
    assert "response.compaction" == compacted.object
    assert [("message", "user"), ("compaction", None)] == [
        (o.type, getattr(o, "role", None)) for o in compacted.output
    ]
    assert compacted.usage.input_tokens > 0
    window = [plain(o) for o in compacted.output]
    r3 = create(api, [*window, {"role": "user", "content": "thanks"}], context_management=None)
    assert "You said: thanks" == r3.output_text


def test_compact_response_id_is_not_a_previous_response_id(emu: Emulator, api: OpenAI) -> None:
    """The compacted response id as previous_response_id is previous_response_not_found; with
    chain_from_compacted_response the chain starts from the compacted window."""
    compacted = api.responses.compact(model="emu-1", input="hello")
    expect_400(
        lambda: create(api, "next", previous_response_id=compacted.id),
        f"Previous response with id '{compacted.id}' not found.",
        "previous_response_id",
        "previous_response_not_found",
    )
    emu.service.options = attrs.evolve(SMALL_OPTIONS, chain_from_compacted_response=True)
    r = create(api, "next", previous_response_id=compacted.id, context_management=None)
    assert compacted.output[-1].id == emu.window_items(response_id=r.id)[0]["id"]


def test_compact_with_a_pending_call_is_p1(api: OpenAI) -> None:
    """Compacting a chain whose last call has no output is the service's P1."""
    r1 = create(api, TASK, context_management=None)
    call_id = r1.output[0].call_id
    expect_400(
        lambda: api.responses.compact(model="emu-1", previous_response_id=r1.id),
        f"No tool output found for function call {call_id}.",
        "input",
        None,
    )


def test_threshold_below_the_minimum_is_rejected_by_default(client: OpenAI) -> None:
    """compact_threshold under 1000 is a 400 unless enforce_min_compact_threshold is off."""
    expect_400(
        lambda: client.responses.create(
            model="emu-1",
            input="hi",
            context_management=[{"type": "compaction", "compact_threshold": 10}],
        ),
        "Invalid 'context_management[0].compact_threshold': integer below minimum value. "
        "Expected a value >= 1000, but got 10 instead.",
        "context_management[0].compact_threshold",
        "integer_below_min_value",
    )
    expect_400(
        lambda: client.responses.create(
            model="emu-1", input="hi", context_management=[{"type": "truncate"}]
        ),
        "Invalid value: 'truncate'. Supported values are: 'compaction'.",
        "context_management[0].type",
        "invalid_value",
    )


def test_state_file_keeps_compaction_across_a_restart(tmp_path: Path) -> None:
    """A chain compacted before a restart continues after it: the boundary, the item's seal and
    what it summarises are in the state file."""
    path = tmp_path / "emu.json"
    with Emulator(options=SMALL_OPTIONS, state_path=path) as emu, connect(emu) as api:
        r1 = create(api, TASK)
        r2 = create(api, answers(r1), previous_response_id=r1.id)
    assert "compaction" == r2.output[0].type
    with Emulator(options=SMALL_OPTIONS, state_path=path) as emu, connect(emu) as api:
        r3 = create(api, answers(r2), previous_response_id=r2.id)
        assert "Done. f -> out-f; g -> out-g" == r3.output_text
        assert r2.output[0].id == emu.window_items(response_id=r3.id)[0]["id"]
        window = [plain(r2.output[0]), {"role": "user", "content": "hi"}]
        assert "You said: hi" == create(api, window, store=False).output_text


def test_an_unanswered_async_call_defers_compaction(api: OpenAI) -> None:
    """Automatic compaction waits while an async call has no output: nothing is summarised away
    that a later request must still answer."""
    call = {"type": "function_call", "call_id": "call_a", "name": "f", "arguments": "{}"}
    pending = {**call, "async": True}
    text = {"role": "user", "content": "x" * 800}
    r1 = create(api, [pending, text], store=False)
    assert "compaction" not in [o.type for o in r1.output]
    r2 = create(
        api,
        [call, {"type": "function_call_output", "call_id": "call_a", "output": "o"}, text],
        store=False,
    )
    assert "compaction" == r2.output[0].type


_WORDS = [
    "", "x", "m", "user", "message", "compaction", "compaction_trigger", "function_call",
    "function_call_output", "resp_x", "cmp_x", "call_1", "gAAAAAcmp_x.y", "gAAAAA",
]  # fmt: skip
_KEYS = [
    "type", "role", "content", "id", "call_id", "output", "encrypted_content", "created_by",
    "model", "input", "previous_response_id", "instructions", "context_management",
    "compact_threshold", "conversation",
]  # fmt: skip
_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 2000) | st.sampled_from(_WORDS),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner),
    max_leaves=12,
)


@settings(max_examples=examples(80), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(["/v1/responses", "/v1/responses/compact"]),
    fields=st.dictionaries(st.sampled_from(_KEYS), _VALUE, max_size=5),
)
def test_no_compaction_body_gets_a_5xx(path: str, fields: dict[str, Any]) -> None:
    """Random compaction-shaped bodies on create and compact: an answer below 500, no exception."""
    body = {"model": "m", "input": [], **fields}
    assert Service(seed=5, options=SMALL_OPTIONS).handle("POST", path, {}, body).status < 500
