"""What a long-lived tracker keeps alive: only the id-less items it matches by identity.

Items with a provider id or a call_id are matched by those strings (as a restored tracker
matches them), so their objects are released; an id-less item is matched by its held object.
``known_by_key``, the fast lookup ``prepare`` uses for keyed items, must decide exactly as
reading the item in full would.
"""

from __future__ import annotations

import gc
import weakref
from typing import Any

import pytest
from _examples import examples
from hypothesis import example, given, settings
from hypothesis import strategies as st
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage

from tracker import ItemError, Tracker
from tracker._items import read_item
from tracker._prepared import keys_of, known_by_key
from tracker._snapshot import Ledger


class Item(dict[str, Any]):
    """A plain item that a test can hold a weak reference to (a dict cannot have one)."""


def _turn(tracker: Tracker) -> dict[str, weakref.ref[Any]]:
    """One round (user message, call, output, answer); weak references to each object."""
    user = Item(role="user", content="look it up")
    tracker.mark_sent(tracker.prepare([user]))
    call = ResponseFunctionToolCall(
        type="function_call", id="fc_1", call_id="call_1", name="f", arguments="{}"
    )
    tracker.observe_response({"id": "resp_1", "output": [call]})
    output = Item(type="function_call_output", call_id="call_1", output="r")
    # only the new item: a whole history sent (and answered) stays referenced until the next
    # one replaces it, to see edits behind the chain (tracker._edits)
    tracker.mark_sent(tracker.prepare([output]))
    answer = ResponseOutputMessage.model_validate(
        {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": "ok", "annotations": []}]}
    )  # fmt: skip
    tracker.observe_response({"id": "resp_2", "output": [answer]})
    history = [user, call, output, answer]
    prepared = tracker.prepare(history)
    assert () == prepared.delta  # the same objects passed back: nothing is sent again
    assert {"held_object": 1, "server_id": 2, "answered_output": 1} == prepared.skip_reasons
    names = ("user", "call", "output", "answer")
    return {name: weakref.ref(obj) for name, obj in zip(names, history, strict=True)}


@pytest.mark.parametrize("store", [True, False], ids=["chain", "stateless"])
def test_tracker_keeps_only_the_id_less_items_alive(store: bool) -> None:
    """Keyed items (calls, outputs, answers) are released; the user message stays held."""
    tracker = Tracker(store=store)
    refs = _turn(tracker)
    gc.collect()
    assert {"user": True, "call": False, "output": False, "answer": False} == {
        name: ref() is not None for name, ref in refs.items()
    }
    assert () == tracker.prepare([refs["user"]()]).delta  # still matched by identity


def test_rewound_output_is_sent_again_though_its_object_was_not_held() -> None:
    """A failed request's output is forgotten by its call_id and sent once more."""
    tracker = Tracker()
    tracker.observe_response({"id": "resp_1", "output": [{"type": "function_call",
                              "id": "fc_1", "call_id": "call_1", "name": "f"}]})  # fmt: skip
    output = {"type": "function_call_output", "call_id": "call_1", "output": "r"}
    prepared = tracker.prepare([output])
    tracker.mark_sent(prepared)
    tracker.rewind(prepared)
    assert (output,) == tracker.prepare([output]).input
    assert ("call_1",) == tracker.pending_call_ids


TYPES = st.sampled_from(
    ["message", "function_call", "function_call_output", "reasoning", "tool_search_call",
     "tool_search_output", "mcp_approval_request", "mcp_approval_response", "future_output",
     "", None, 7]
)  # fmt: skip
KEYS = st.sampled_from(
    ["fc_1", "call_1", "call_2", "call_3", "mcpr_1", "mcpr_2", "", "__fake_id__", None, 3]
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "type": TYPES,
        "id": KEYS,
        "call_id": KEYS,
        "approval_request_id": KEYS,
        "role": st.just("user"),
        "output": st.just("x"),
        "execution": st.sampled_from(["server", "client"]),
    },
)
#: What the ledger knows: a call with its id, an answered output, approvals, a client search.
KNOWN = [
    {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f"},
    {"type": "function_call_output", "call_id": "call_2", "output": "x"},
    {"type": "mcp_approval_request", "id": "mcpr_1", "name": "f", "server_label": "s"},
    {"type": "mcp_approval_response", "approval_request_id": "mcpr_2", "approve": True},
    {"type": "tool_search_call", "call_id": "call_3", "execution": "client"},
]


class Model:
    """An item read by attribute, as an SDK model is."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.__dict__.update(fields)


@settings(max_examples=examples(200), deadline=None)
@given(fields=FIELDS, as_model=st.booleans())
@example(fields={"type": "", "id": "fc_1"}, as_model=False)  # unreadable, with a known id
@example(fields={"type": 7, "id": "fc_1"}, as_model=True)
def test_fast_key_lookup_decides_as_a_full_read(fields: dict[str, Any], as_model: bool) -> None:
    """``known_by_key`` is ``None`` or the ledger's answer for the item read in full."""
    ledger = Ledger()
    for recorded in KNOWN:
        ledger.add(keys_of(read_item(recorded)), recorded)
    item: Any = Model(fields) if as_model else fields
    fast = known_by_key(item, ledger)
    try:
        full = ledger.knows(keys_of(read_item(item)))
    except ItemError:
        full = None
        assert fast is None  # an unreadable item is never skipped unread
    assert fast in (None, full)


def test_fast_key_lookup_answers_for_each_known_kind() -> None:
    """Each known item, as a dict and read by attribute, is found without a full read."""
    ledger = Ledger()
    for recorded in KNOWN:
        ledger.add(keys_of(read_item(recorded)), recorded)
    expected = ["server_id", "answered_output", "server_id", "answered_output", None]
    assert expected == [known_by_key(item, ledger) for item in KNOWN]
    assert expected == [known_by_key(Model(item), ledger) for item in KNOWN]
