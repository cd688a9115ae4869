"""Hostile input at the tracker's edges: never a silent loss, always a named error (issue 11)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _builders import numbered_call as call
from _builders import numbered_output as output
from _builders import user

from tracker import (
    ContinuationError,
    ItemError,
    StateError,
    Tracker,
    TrackerError,
    UsageError,
    fingerprint,
)


def reply(n: int) -> dict[str, Any]:
    return {"type": "message", "id": f"msg_{n}", "role": "assistant", "content": "done"}


def in_flight() -> tuple[Tracker, Any]:
    """A tracker with a request marked sent and not yet answered."""
    t = Tracker()
    t.observe_response({"id": "resp_1", "output": [call(1)]})
    p = t.prepare([output(1), user("next")])
    t.mark_sent(p)
    return t, p


# ---------------------------------------------------------------- 1. only responses observed


class _StreamManager:
    """Shaped like the SDK's ``responses.stream(...)`` manager: a response only at the end."""

    def get_final_response(self) -> None:
        """Stand-in: never called by the tracker."""


def _events() -> Iterator[dict[str, Any]]:
    yield {"type": "response.created"}


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (None, "NoneType"),
        ("resp_1", "not text"),
        ([call(2)], "observe_items"),
        (ValueError("boom"), "rewind(prepared)"),
        (_StreamManager(), "get_final_response()"),
        ({"id": "resp_2"}, "no 'output'"),
        ({"id": "resp_2", "output": None}, "not a list"),
        ({"id": 7, "output": []}, "'id' is a int"),
    ],
)
def test_observe_response_refuses_what_is_not_a_response(value: Any, words: str) -> None:
    """A non-response is a UsageError naming its type; the request can still be rewound."""
    t, p = in_flight()
    before = t.to_state()
    with pytest.raises(UsageError, match=type(value).__name__) as info:
        t.observe_response(value)
    assert words in str(info.value)
    assert before == t.to_state()
    t.rewind(p)  # still in flight: the items are sent again, not lost
    assert [output(1), user("next")] == list(t.prepare([output(1), user("next")]).input)


def test_observe_response_refuses_an_unconsumed_stream() -> None:
    """An event iterator (``create(stream=True)`` not consumed) is refused as a stream."""
    t, _ = in_flight()
    with pytest.raises(UsageError, match="stream: consume it"):
        t.observe_response(_events())


def test_observe_response_refuses_and_closes_an_unawaited_coroutine() -> None:
    """An un-awaited ``create(...)`` says to await it and is closed (no never-awaited warning)."""

    async def create() -> dict[str, Any]:
        return {"id": "resp_2", "output": []}

    t, _ = in_flight()
    before = t.to_state()
    coroutine = create()
    with pytest.raises(UsageError, match="coroutine: it was not awaited.*await it"):
        t.observe_response(coroutine)
    assert coroutine.cr_frame is None  # closed
    assert before == t.to_state()


@pytest.mark.parametrize("status", ["queued", "in_progress"])
def test_observe_response_refuses_a_background_response_not_yet_finished(status: str) -> None:
    """A background response still queued / in progress is refused naming its id and how to
    poll it; the tracker is unchanged and observes the completed response afterwards."""
    t, _ = in_flight()
    before = t.to_state()
    running = {"id": "resp_2", "status": status, "output": []}
    with pytest.raises(UsageError, match=f"resp_2 is still {status}.*retrieve\\('resp_2'\\)"):
        t.observe_response(running)
    assert before == t.to_state()
    t.observe_response({**running, "status": "completed", "output": [reply(2)]})
    assert "resp_2" == t.previous_response_id


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_observe_response_refuses_a_response_that_ended_without_a_result(status: str) -> None:
    """A failed or cancelled (background) response is never chained from: refused naming its
    id and the fix (rewind, send again); unchanged, the request is then sent again, once."""
    t, p = in_flight()
    before = t.to_state()
    ended = {"id": "resp_2", "status": status, "output": []}
    with pytest.raises(UsageError, match=f"resp_2 ended {status}.*rewind\\(prepared\\)"):
        t.observe_response(ended)
    assert before == t.to_state()
    t.rewind(p)
    assert p.input == t.prepare([output(1), user("next")]).input


# ---------------------------------------------------------------- 5. one object, many turns


def test_the_same_dict_reused_as_a_later_turn_is_sent_again() -> None:
    """A constant message object appended twice to the history is sent on both turns."""
    cont = user("continue")
    t = Tracker()
    history: list[Any] = [cont]
    assert [cont] == list(t.prepare(history).input)
    t.mark_sent(t.prepare(history))
    t.observe_response({"id": "resp_1", "output": [reply(1)]})
    history += [reply(1), cont]
    p = t.prepare(history)
    assert ([cont], {"held_object": 1, "server_id": 1}) == (list(p.input), dict(p.skip_reasons))
    t.mark_sent(p)
    t.observe_response({"id": "resp_2", "output": [reply(2)]})
    history += [reply(2)]
    assert [] == list(t.prepare(history).input)
    assert [cont] == list(t.prepare([*history, cont]).input)


def test_a_rewound_second_occurrence_is_sent_again_once() -> None:
    """Rewinding the request that carried an object's second occurrence re-sends it once."""
    cont = user("continue")
    t = Tracker()
    t.mark_sent(t.prepare([cont]))
    t.observe_response({"id": "resp_1", "output": [reply(1)]})
    history = [cont, reply(1), cont]
    p = t.prepare(history)
    t.mark_sent(p)
    t.rewind(p)
    assert [cont] == list(t.prepare(history).input)
    assert {"fingerprints": {fingerprint(cont): 1}} == {
        "fingerprints": t.to_state()["fingerprints"]
    }


def test_a_reused_object_counts_by_content_after_a_restore() -> None:
    """After a restore, the two sends of a reused object match two occurrences by content."""
    cont = user("continue")
    t = Tracker()
    t.mark_sent(t.prepare([cont]))
    t.observe_response({"id": "resp_1", "output": [reply(1)]})
    t.mark_sent(t.prepare([cont, reply(1), cont]))
    t.observe_response({"id": "resp_2", "output": []})
    restored = Tracker.from_state(t.to_state())
    rebuilt = [user("continue"), reply(1), user("continue"), user("continue")]
    assert [rebuilt[3]] == list(restored.prepare(rebuilt).input)


# ---------------------------------------------------------------- 6. ids that restore


@pytest.mark.parametrize("rid", ["resp 1", "", "r" * 129, "resp/1", "résp"])
def test_a_response_id_that_would_not_restore_is_refused(rid: str) -> None:
    """observe_response checks the id with the restore rule: every snapshot restores."""
    t, _ = in_flight()
    before = t.to_state()
    with pytest.raises(ContinuationError, match="Invalid response id"):
        t.observe_response({"id": rid, "output": [reply(1)]})
    assert before == t.to_state()
    with pytest.raises(StateError, match="previous_response_id"):
        Tracker.from_state({**before, "previous_response_id": rid})


def test_every_accepted_response_id_restores() -> None:
    """The longest and oddest ids the rule accepts survive to_state / from_state."""
    for rid in ["r" * 128, "resp_-_1", "0"]:
        t = Tracker()
        t.observe_response({"id": rid, "output": []})
        assert rid == Tracker.from_state(t.to_state()).previous_response_id


# ---------------------------------------------------------------- 8. unserialisable content


def _deep(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


def _circular() -> dict[str, Any]:
    item: dict[str, Any] = {"role": "user", "content": []}
    item["content"].append(item)
    return item


BAD_CONTENT = {
    "deep": lambda: {"role": "user", "content": _deep(100_000)},
    "circular": _circular,
    "mixed keys": lambda: {"role": "user", "content": [{1: "a", "b": 2}]},
    "tuple key": lambda: {"role": "user", "content": {(1, 2): "a"}},
}


@pytest.mark.parametrize("kind", list(BAD_CONTENT))
def test_prepare_names_the_index_of_unserialisable_content(kind: str) -> None:
    """Deep, circular or non-string-keyed content is an ItemError naming the item's index."""
    t, _ = in_flight()
    before = t.to_state()
    with pytest.raises(ItemError, match="Item at index 1 ") as info:
        t.prepare([user("hi"), BAD_CONTENT[kind]()])
    assert 1 == info.value.index
    assert before == t.to_state()


@pytest.mark.parametrize("kind", list(BAD_CONTENT))
def test_observe_items_names_the_index_of_unserialisable_content(kind: str) -> None:
    """observe_items refuses the same content with the same error; the tracker is unchanged."""
    t, _ = in_flight()
    before = t.to_state()
    with pytest.raises(ItemError, match="Item at index 2 ") as info:
        t.observe_items([reply(5), user("a"), BAD_CONTENT[kind]()])
    assert (2, before) == (info.value.index, t.to_state())


@pytest.mark.parametrize("kind", list(BAD_CONTENT))
def test_fingerprint_refuses_unserialisable_content(kind: str) -> None:
    """fingerprint raises ItemError (a ValueError), never RecursionError or TypeError."""
    with pytest.raises(ItemError, match="JSON"):
        fingerprint(BAD_CONTENT[kind]())


@pytest.mark.parametrize("field", ["previous_response_id", "calls", "fingerprints", "version"])
def test_a_deep_value_in_a_snapshot_is_a_state_error(field: str) -> None:
    """Error messages quote a deep value briefly instead of failing with RecursionError."""
    state = Tracker().to_state()
    value = {"call_1": _deep(100_000)} if field in ("calls", "fingerprints") else _deep(100_000)
    with pytest.raises(StateError, match=field):
        Tracker.from_state({**state, field: value})


def test_a_deep_continuation_id_is_a_continuation_error() -> None:
    """A deep value passed as previous_response_id is refused with a short message."""
    with pytest.raises(ContinuationError, match="Invalid previous_response_id"):
        Tracker(previous_response_id=_deep(100_000))


# ---------------------------------------------------------------- item lists


@pytest.mark.parametrize("items", [None, 5, {"role": "user", "content": "hi"}, b"hi"])
def test_item_lists_must_be_lists(items: Any) -> None:
    """prepare and observe_items refuse a non-list with a UsageError naming its type."""
    t, _ = in_flight()
    before = t.to_state()
    for method in (t.prepare, t.observe_items):
        with pytest.raises(UsageError, match=type(items).__name__):
            method(items)
    assert before == t.to_state()
    assert isinstance(UsageError("x"), TrackerError)
