"""Snapshots: JSON-safe, versioned, strict on restore."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tracker import STATE_VERSION, StateError, StateVersionError, Tracker


def _played() -> tuple[Tracker, list[Any]]:
    t = Tracker(check="off")  # leaves call_2 pending on purpose
    history: list[Any] = [{"role": "user", "content": "hi"}, {"role": "user", "content": "yes"}]
    p = t.prepare(history)
    t.mark_sent(p)
    out = [
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {
            "type": "function_call",
            "id": "fc_1",
            "call_id": "call_1",
            "name": "f",
            "arguments": "{}",
        },
        {
            "type": "function_call",
            "id": "fc_2",
            "call_id": "call_2",
            "name": "f",
            "arguments": "{}",
        },
    ]
    t.observe_response({"id": "resp_1", "output": out})
    history += [*out, {"type": "function_call_output", "call_id": "call_1", "output": "1"}]
    t.mark_sent(t.prepare(history))
    t.observe_response({"id": "resp_2", "output": []})
    return t, history


def _restored(t: Tracker) -> Tracker:
    return Tracker.from_state(json.loads(json.dumps(t.to_state())), check="off")


def test_round_trip_decides_like_the_original() -> None:
    """A tracker restored from JSON makes the same decisions on the same and on rebuilt items."""
    t, history = _played()
    t2 = _restored(t)
    more = [
        *history,
        {"role": "user", "content": "yes"},
        {"type": "function_call_output", "call_id": "call_2", "output": "2"},
    ]
    for items in (more, copy.deepcopy(more)):
        assert t.prepare(items).request_kwargs() == t2.prepare(items).request_kwargs()
    assert t.to_state() == t2.to_state()


def test_call_to_item_id_mapping_survives_restore() -> None:
    """The call_id -> fc_ id mapping (the durable-agent KeyError) is in the snapshot."""
    t2 = _restored(_played()[0])
    assert ("fc_1", ("call_2",)) == (t2.item_id_for_call("call_1"), t2.pending_call_ids)


def test_snapshot_is_plain_json_and_versioned() -> None:
    """to_state() is JSON-serialisable and names its format and version."""
    state = _played()[0].to_state()
    assert ("tracker.state", STATE_VERSION) == (state["format"], state["version"])
    assert state == json.loads(json.dumps(state))


def test_newer_version_asks_to_upgrade() -> None:
    """A snapshot from a newer release is refused with StateVersionError saying to upgrade."""
    state = {**Tracker().to_state(), "version": STATE_VERSION + 1}
    with pytest.raises(StateVersionError, match="newer.*upgrade tracker") as info:
        Tracker.from_state(state)
    assert STATE_VERSION + 1 == info.value.version


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"format": "other"}, "format"),
        ({"server_item_ids": "fc_1"}, "server_item_ids"),
        ({"server_item_ids": [""]}, "server_item_ids[0]"),
        ({"calls": {"call_1": 3}}, "calls['call_1']"),
        ({"pending_call_ids": ["call_9"]}, "pending_call_ids"),
        ({"fingerprints": {"ab": 0}}, "fingerprints['ab']"),
        ({"responses_observed": -1}, "responses_observed"),
        ({"whole_chain": "yes"}, "whole_chain"),
        ({"extra": 1}, "extra"),
        ({"previous_response_id": "bad id!"}, "previous_response_id"),
    ],
)
def test_malformed_snapshot_names_the_field(change: dict[str, Any], path: str) -> None:
    """Each malformed field raises StateError naming that field."""
    with pytest.raises(StateError) as info:
        Tracker.from_state({**Tracker().to_state(), **change})
    assert path == info.value.path


def test_missing_field_and_non_dict_are_refused() -> None:
    """A snapshot missing a field, or not a dict at all, raises StateError."""
    state = Tracker().to_state()
    del state["calls"]
    with pytest.raises(StateError, match="calls is missing"):
        Tracker.from_state(state)
    with pytest.raises(StateError, match="got str"):
        Tracker.from_state("{}")  # type: ignore[arg-type]


def test_snapshot_leaves_out_requests_still_in_flight() -> None:
    """A delta marked sent but not answered is not in the snapshot: a restore re-sends it."""
    t = Tracker()
    t.observe_response(
        {
            "id": "resp_1",
            "output": [
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "call_1",
                    "name": "f",
                    "arguments": "{}",
                }
            ],
        }
    )
    settled = t.to_state()
    answer = {"type": "function_call_output", "call_id": "call_1", "output": "1"}
    t.mark_sent(t.prepare([answer]))
    assert settled == t.to_state()
    restored = Tracker.from_state(t.to_state())
    assert ([answer], "resp_1") == (
        list(restored.prepare([answer]).input),
        restored.previous_response_id,
    )


def test_id_lists_are_written_in_first_seen_order() -> None:
    """Snapshots list ids as the tracker first saw them (nothing sorted), so they only extend."""
    t = Tracker()
    t.observe_response({"id": "resp_1", "output": [_msg("msg_z"), _msg("msg_a")]})
    first = t.to_state()
    t.observe_response({"id": "resp_2", "output": [_msg("msg_m")]})
    second = t.to_state()
    assert ["msg_z", "msg_a"] == first["server_item_ids"]
    assert ["msg_z", "msg_a", "msg_m"] == second["server_item_ids"]


def test_sorted_and_first_seen_snapshots_restore_the_same_decisions() -> None:
    """A snapshot with sorted id lists (as older releases wrote) restores to the same decisions."""
    t, history = _played()
    state = json.loads(json.dumps(t.to_state()))
    old = {
        k: sorted(v) if k.endswith("_ids") and k != "pending_call_ids" else v
        for k, v in state.items()
    }
    more = [*history, {"type": "function_call_output", "call_id": "call_2", "output": "2"}]
    a, b = Tracker.from_state(state, check="off"), Tracker.from_state(old, check="off")
    assert a.prepare(more).request_kwargs() == b.prepare(more).request_kwargs()


def _msg(item_id: str) -> dict[str, Any]:
    return {"type": "message", "id": item_id, "role": "assistant", "content": []}
