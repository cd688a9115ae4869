"""tracker.agents._lazy: the fingerprint set reads as the SDK's plain set, however lazily filled."""

from __future__ import annotations

import copy
import pickle
from typing import Any

from _examples import examples
from agents.run_internal.items import fingerprint_input_item
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

from tracker.agents._lazy import FingerprintSet


def call(n: int) -> ResponseFunctionToolCall:
    """The model's n-th function call (a pydantic item with scalar fields: deferred)."""
    return ResponseFunctionToolCall(
        id=f"fc_{n}", type="function_call", call_id=f"call_{n}", name="f", arguments="{}"
    )


def items() -> list[Any]:
    """Items of every shape a resumed run restores, deferred or encoded at once."""
    return [
        call(1),
        {"type": "function_call_output", "call_id": "call_1", "output": "42"},
        {"role": "user", "content": "hi"},
        {"type": "function_call_output", "call_id": 7, "output": 1.5},
        {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text"}]},
        ResponseOutputMessage(
            id="msg_1",
            type="message",
            role="assistant",
            status="completed",
            content=[ResponseOutputText(type="output_text", text="t", annotations=[])],
        ),
        {1: "non-string key", "call_id": "call_3"},
        {"type": "message", "created_by": "x", "content": "stripped member"},
    ]


def sdk_set(restored: list[Any]) -> set[str]:
    """The set openai-agents' class builds from ``restored``."""
    return {fp for fp in map(fingerprint_input_item, restored) if fp}


def filled(restored: list[Any]) -> FingerprintSet:
    """A FingerprintSet holding the fingerprints of ``restored``."""
    fingerprints = FingerprintSet()
    for item in restored:
        fingerprints.add_item(item)
    return fingerprints


def test_every_restored_fingerprint_is_a_member_before_anything_is_listed() -> None:
    """Each restored item's SDK fingerprint is found by ``in``; a stranger's is not."""
    restored = items()
    fingerprints = filled(restored)
    for item in restored:
        expected = fingerprint_input_item(item)
        assert (expected is not None) == (expected in fingerprints)
    assert fingerprint_input_item(call(9)) not in fingerprints


def test_listing_gives_exactly_the_sdk_set() -> None:
    """Iteration, len and == give exactly the SDK's set, compared either way round."""
    restored = items()
    expected = sdk_set(restored)
    fingerprints = filled(restored)
    assert expected == fingerprints
    assert fingerprints == expected
    assert len(expected) == len(fingerprints)
    assert sorted(expected) == sorted(fingerprints)


def test_an_item_mutated_after_it_was_added_keeps_its_fingerprint_of_that_time() -> None:
    """Deferred items are snapshots: the SDK encodes at hydrate, so later edits do not count."""
    output = {"type": "function_call_output", "call_id": "call_1", "output": "42"}
    model_call = call(1)
    before = sdk_set([output, model_call])
    fingerprints = filled([output, model_call])
    output["output"] = "changed"
    model_call.arguments = '{"changed": true}'
    assert fingerprint_input_item(output) not in fingerprints
    assert before == fingerprints


def test_discard_removes_a_deferred_fingerprint_and_add_restores_it() -> None:
    """discard() finds a fingerprint that was never encoded; add() puts it back."""
    item = {"type": "function_call_output", "call_id": "call_1", "output": "42"}
    fingerprint = fingerprint_input_item(item)
    assert fingerprint is not None
    fingerprints = filled([item, call(2)])
    fingerprints.discard(fingerprint)
    assert fingerprint not in fingerprints
    fingerprints.add(fingerprint)
    assert sdk_set([item, call(2)]) == fingerprints


def test_copies_and_pickles_are_independent_equal_sets() -> None:
    """copy, deepcopy, .copy() and pickle give equal sets that do not share state."""
    restored = items()
    fingerprints = filled(restored)
    twins = [
        copy.copy(fingerprints),
        copy.deepcopy(fingerprints),
        fingerprints.copy(),
        pickle.loads(pickle.dumps(fingerprints)),
    ]
    assert [sdk_set(restored)] * 4 == twins
    twins[0].add("only in the copy")
    assert "only in the copy" not in fingerprints


scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6)


@settings(max_examples=examples(100), deadline=None)
@given(
    st.lists(
        st.dictionaries(
            st.sampled_from(["call_id", "id", "type", "output", "created_by", "x"]),
            scalars | st.sampled_from(["call_1", "call_2"]),
            max_size=5,
        ),
        max_size=8,
    ),
    st.dictionaries(st.sampled_from(["call_id", "output"]), scalars, max_size=2),
)
def test_membership_and_listing_match_the_sdk_on_random_items(
    restored: list[dict[str, Any]], stranger: dict[str, Any]
) -> None:
    """For any scalar dicts, ``in`` and listing agree with the SDK's eager set."""
    expected = sdk_set(restored)
    fingerprints = filled(restored)
    queries = [fingerprint_input_item(item) for item in [*restored, stranger]]
    assert [q in expected for q in queries] == [q in fingerprints for q in queries]
    assert expected == fingerprints
