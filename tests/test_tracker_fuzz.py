"""Fuzz: random malformed input to every public entry point of the core (issue 11).

Each entry point either succeeds or raises a ``TrackerError`` (which refines the builtin it
documents), and a tracker that raised is unchanged: its ``to_state()`` is the same. What a
tracker accepts, it can snapshot and restore.
"""

from __future__ import annotations

import os
from typing import Any

from _examples import examples
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tracker import (
    Prepared,
    Tracker,
    TrackerError,
    fingerprint,
    read_item,
    repair_history,
    validate_history,
)

FUZZ = settings(  # TRACKER_FUZZ_EXAMPLES=5000 for a longer hunt
    max_examples=int(os.environ.get("TRACKER_FUZZ_EXAMPLES", examples(60))),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


class _Deep(list[Any]):
    """Content nested thousands of lists deep, with a short repr for failure reports."""

    def __repr__(self) -> str:
        return "<deeply nested list>"


def _deep(depth: int) -> dict[str, Any]:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return {"role": "user", "content": _Deep([value])}


def _circular() -> dict[str, Any]:
    item: dict[str, Any] = {"type": "message", "role": "user", "content": []}
    item["content"].append(item)
    return item


class _Opaque:
    """An object that is no item, no response and no snapshot."""


class _BadRepr:
    """An object whose repr and str raise, quoted by no error message unguarded."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    __str__ = __repr__


def _deep_list(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


scalars = (
    st.none()
    | st.booleans()
    | st.integers(-2, 2)
    | st.floats(allow_nan=True)
    | st.text(max_size=6)
    | st.binary(max_size=3)
)
json_like = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner)
        | st.dictionaries(st.text(max_size=6) | st.integers(0, 2), inner, max_size=3)
    ),
    max_leaves=8,
)
_ODD = {
    "deep item": lambda: _deep(3000),
    "deep list": lambda: _deep_list(3000),  # a failure report cannot print it: short-circuits
    "circular": _circular,
    "opaque": _Opaque,
    "bad repr": _BadRepr,
}
odd = st.sampled_from(sorted(_ODD)).map(lambda kind: _ODD[kind]())
ids = st.sampled_from(["fc_1", "call_1", "call_2", "msg_1", "", "fc 1", "__fake_id__"]) | scalars
types = (
    st.sampled_from(
        ["message", "function_call", "function_call_output", "reasoning", "x_call", "x_output"]
    )
    | scalars
)
item_like = st.fixed_dictionaries(
    {},
    optional={
        "type": types,
        "role": st.sampled_from(["user", "assistant", "tool", "system"]) | scalars,
        "id": ids,
        "call_id": ids,
        "output": json_like,
        "content": json_like,
        "name": scalars,
        "arguments": json_like,
        "async": st.booleans() | scalars,
        "tool_calls": json_like,
        "tool_call_id": ids,
    },
)
items_st = st.lists(item_like | json_like | odd, max_size=5)
responses = (
    json_like
    | odd
    | st.fixed_dictionaries(
        {},
        optional={
            "id": ids | st.sampled_from(["resp_2", "resp 2", "r" * 129]),
            "output": items_st | json_like,
            "conversation": json_like | st.sampled_from(["conv_1", {"id": "conv_2"}]),
            "store": st.booleans() | scalars,
        },
    )
)


def in_flight() -> tuple[Tracker, Prepared]:
    """A tracker with history, a pending call and a request marked sent but unanswered."""
    t = Tracker()
    t.mark_sent(t.prepare([{"role": "user", "content": "hi"}]))
    t.observe_response(
        {
            "id": "resp_1",
            "output": [
                {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f"},
                {"type": "function_call", "id": "fc_2", "call_id": "call_2", "name": "f"},
            ],
        }
    )
    p = t.prepare(
        [
            {"type": "function_call_output", "call_id": "call_1", "output": "ok"},
            {"type": "function_call_output", "call_id": "call_2", "output": "ok"},
        ]
    )
    t.mark_sent(p)  # its snapshot leaves both calls pending
    return t, p


def assert_refused_cleanly(t: Tracker, before: dict[str, Any], exc: BaseException) -> None:
    """A refusal is a TrackerError and changes nothing."""
    assert isinstance(exc, TrackerError), f"{type(exc).__name__}: {exc}"
    assert before == t.to_state()


def assert_restorable(t: Tracker) -> None:
    """What the tracker accepted, its snapshot keeps: the snapshot restores to itself."""
    state = t.to_state()
    assert state == Tracker.from_state(state).to_state()


@FUZZ
@given(items=items_st, content_match=st.booleans(), check=st.sampled_from(["raise", "repair"]))
def test_prepare_refuses_cleanly_and_changes_nothing(
    items: list[Any], content_match: bool, check: Any
) -> None:
    """prepare: a TrackerError or a delta; the tracker is unchanged either way."""
    t, p = in_flight()
    t.rewind(p)  # both calls pending
    t = Tracker.from_state(t.to_state(), check=check)
    before = t.to_state()
    try:
        p = t.prepare(items, content_match=content_match)
    except Exception as exc:
        assert_refused_cleanly(t, before, exc)
        return
    assert before == t.to_state()
    t.mark_sent(p)
    assert_restorable(t)


@FUZZ
@given(items=items_st | json_like | odd)
def test_observe_items_refuses_cleanly(items: Any) -> None:
    """observe_items: a TrackerError (tracker unchanged) or a restorable tracker."""
    t, _ = in_flight()
    before = t.to_state()
    try:
        t.observe_items(items)
    except Exception as exc:
        assert_refused_cleanly(t, before, exc)
        return
    assert_restorable(t)


@FUZZ
@given(response=responses)
def test_observe_response_refuses_cleanly(response: Any) -> None:
    """observe_response: a TrackerError (the request still rewindable) or a restorable tracker."""
    t, p = in_flight()
    before = t.to_state()
    try:
        t.observe_response(response)
    except Exception as exc:
        assert_refused_cleanly(t, before, exc)
        t.rewind(p)
        return
    assert_restorable(t)


@FUZZ
@given(value=json_like | odd | st.just("other tracker"))
def test_mark_sent_and_rewind_refuse_what_prepare_did_not_make(value: Any) -> None:
    """mark_sent / rewind of anything but this tracker's Prepared: UsageError, nothing changed."""
    t, _ = in_flight()
    if value == "other tracker":
        value = Tracker().prepare([])
    before = t.to_state()
    for method in (t.mark_sent, t.rewind):
        try:
            method(value)
        except Exception as exc:
            assert_refused_cleanly(t, before, exc)
        else:
            raise AssertionError(f"{method.__name__} accepted {value!r}")


def _mutate(state: dict[str, Any], how: str, key: str, value: Any) -> Any:
    state = dict(state)
    if how == "set":
        state[key] = value
    elif how == "drop":
        state.pop(key, None)
    elif how == "add":
        state[f"x_{key}"] = value
    else:
        return value
    return state


@FUZZ
@given(
    how=st.sampled_from(["set", "set", "drop", "add", "replace"]),
    key=st.sampled_from(sorted(in_flight()[0].to_state())),
    value=json_like | odd,
)
@example(how="set", key="call_types", value={"0": []})  # an unhashable call type (found here)
def test_from_state_refuses_cleanly(how: str, key: str, value: Any) -> None:
    """from_state: a StateError (a TrackerError) or a tracker whose snapshot restores again."""
    snapshot = _mutate(in_flight()[0].to_state(), how, key, value)
    try:
        t = Tracker.from_state(snapshot)
    except Exception as exc:
        assert isinstance(exc, TrackerError), f"{type(exc).__name__}: {exc}"
        return
    assert_restorable(t)


@FUZZ
@given(value=item_like | json_like | odd)
def test_read_item_and_fingerprint_refuse_cleanly(value: Any) -> None:
    """read_item and fingerprint: a result or an ItemError, never a raw builtin error."""
    for function in (read_item, fingerprint):
        try:
            function(value)
        except Exception as exc:
            assert isinstance(exc, TrackerError), f"{function.__name__}: {exc!r}"


@FUZZ
@given(items=items_st, api=st.sampled_from(["responses", "chat", None]))
def test_validate_and_repair_history_refuse_cleanly(items: list[Any], api: Any) -> None:
    """validate_history and repair_history (api given or detected): a result or a TrackerError."""
    for function in (validate_history, repair_history):
        try:
            function(items) if api is None else function(items, api=api)
        except Exception as exc:
            assert isinstance(exc, TrackerError), f"{function.__name__}: {exc!r}"
