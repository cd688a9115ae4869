"""The plan-based repair and delta check give what the code before it gave, byte for byte.

Compares ``tracker`` with ``tests/_repair_old.py`` (the pre-rewrite code) on random, messy
histories: ids drawn from a small pool so calls, outputs and reasoning collide, misplace and
repeat. Delete this file with ``_repair_old.py`` once the rewrite is trusted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from _repair_old import check_delta_old, repair_history_old
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker import TrackerError
from tracker._delta_check import check_delta
from tracker._repair import repair_history

_CALL_IDS = st.sampled_from(["a", "b", "c", "d", ""])
_ITEM_IDS = st.one_of(st.none(), st.sampled_from(["fc_1", "fc_2", "rs_1", "msg_1", "fco_1"]))
_CHAT_IDS = st.sampled_from(["a", "a", "b", "b", "c", ""])
_POLICIES = st.sampled_from(["placeholder", "drop"])


@st.composite
def _responses_item(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(
        st.sampled_from(
            ["user", "said", "reasoning", "call", "custom", "computer", "output", "custom_out"]
        )
    )
    if kind == "user":
        return {"role": "user", "content": "hi"}
    if kind == "said":
        return {"type": "message", "role": "assistant", "content": "ok"}
    if kind == "reasoning":
        return {"type": "reasoning", "id": draw(st.sampled_from(["rs_1", "rs_2"])), "summary": []}
    item: dict[str, Any]
    if kind in ("call", "custom", "computer"):
        item_type = {"call": "function_call", "custom": "custom_tool_call"}.get(
            kind, "computer_call"
        )
        item = {"type": item_type, "call_id": draw(_CALL_IDS), "name": "f", "arguments": "{}"}
        if draw(st.booleans()):
            item["async"] = True
    else:
        item_type = "function_call_output" if kind == "output" else "custom_tool_call_output"
        item = {"type": item_type, "call_id": draw(_CALL_IDS), "output": "r"}
    item_id = draw(_ITEM_IDS)
    if item_id is not None:
        item["id"] = item_id
    return item


@st.composite
def _chat_message(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["user", "assistant", "calls", "calls", "tool", "tool", "tool"]))
    if kind in ("user", "system"):
        return {"role": kind, "content": "hi"}
    if kind == "assistant":
        return {"role": "assistant", "content": draw(st.sampled_from(["ok", "", None]))}
    if kind == "tool":
        result: dict[str, Any] = {"role": "tool", "content": "r"}
        if draw(st.integers(0, 9)) > 0:  # now and then a result with no id at all
            result["tool_call_id"] = draw(_CHAT_IDS)
        return result
    ids = draw(st.lists(st.one_of(_CHAT_IDS, st.none()), max_size=3))
    calls = [
        {"id": i, "type": "function", "function": {"name": f"f{n}", "arguments": "{}"}}
        for n, i in enumerate(ids)
    ]
    content = draw(st.sampled_from([None, "", "let me see"]))
    message: dict[str, Any] = {"role": "assistant", "content": content, "tool_calls": calls}
    if draw(st.integers(0, 4)) == 0:
        message["refusal"] = "no"
    return message


def _outcome(fn: Callable[[], tuple[list[Any], tuple[Any, ...]]], given: list[Any]) -> Any:
    """The result as bytes plus which output items are the very input objects, or the error."""
    try:
        items, actions = fn()
    except TrackerError as exc:
        return (type(exc).__name__, str(exc), repr(getattr(exc, "violations", ())))
    same = [next((n for n, x in enumerate(given) if x is item), None) for item in items]
    return json.dumps(items, sort_keys=True), same, [repr(a) for a in actions]


@settings(max_examples=400, deadline=None)
@given(items=st.lists(_responses_item(), max_size=12), policy=_POLICIES)
def test_responses_repair_matches_the_old_code(items: list[Any], policy: Any) -> None:
    """repair_history on Responses items: same items, same objects, same actions."""
    assert _outcome(lambda: repair_history_old(items, api="responses", policy=policy), items) == (
        _outcome(lambda: repair_history(items, api="responses", policy=policy), items)
    )


@settings(max_examples=400, deadline=None)
@given(items=st.lists(_chat_message(), max_size=14), policy=_POLICIES)
def test_chat_repair_matches_the_old_code(items: list[Any], policy: Any) -> None:
    """repair_history on Chat messages: same messages, same objects, same actions."""
    assert _outcome(lambda: repair_history_old(items, api="chat", policy=policy), items) == (
        _outcome(lambda: repair_history(items, api="chat", policy=policy), items)
    )


_ID_SETS = st.frozensets(st.sampled_from(["a", "b", "c", "d", "e"]))


_SERVER = st.fixed_dictionaries(
    {
        "pending_call_ids": st.one_of(
            st.lists(st.sampled_from(["a", "b", "e"]), unique=True),
            st.dictionaries(
                st.sampled_from(["a", "b", "e"]),
                st.sampled_from(["function_call", "custom_tool_call", "computer_call"]),
            ),
        ),
        "known_call_ids": st.one_of(st.none(), _ID_SETS),
        "answered_call_ids": _ID_SETS,
        "mode": st.sampled_from(["raise", "repair", "off"]),
        "policy": _POLICIES,
    }
)


@settings(max_examples=400, deadline=None)
@given(items=st.lists(_responses_item(), max_size=10), server=_SERVER)
def test_check_delta_matches_the_old_code(items: list[Any], server: dict[str, Any]) -> None:
    """check_delta in every mode and server state: same delta, same actions, or same error."""
    assert _outcome(lambda: check_delta_old(items, **server), items) == _outcome(
        lambda: check_delta(items, **server), items
    )
