"""JSON-safe, versioned snapshots of a tracker, and their strict restore.

Format (version 1)::

    {
      "format": "tracker.state",
      "version": 1,
      "previous_response_id": "resp_..." | null,
      "conversation_id": "conv_..." | null,
      "server_item_ids": ["fc_...", "msg_...", ...],         # sorted
      "calls": {"call_...": "fc_..." | null, ...},           # call_id -> provider item id
      "answered_call_ids": ["call_...", ...],                # sorted
      "pending_call_ids": ["call_...", ...],                 # in arrival order
      "fingerprints": {"<hex>": count, ...},                 # id-less items sent, by content
      "responses_observed": 3,
      "whole_chain": true                                    # every held call was seen
    }

Restore validates everything before building anything, so a bad snapshot raises and leaves no
half-restored tracker behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from ._errors import ContinuationError, StateError, StateVersionError

if TYPE_CHECKING:
    from ._tracker import Tracker

__all__ = ["FORMAT", "STATE_VERSION", "dump_state", "load_state"]

FORMAT: Final = "tracker.state"
STATE_VERSION: Final = 1

_KEYS: Final = frozenset(
    {
        "format",
        "version",
        "previous_response_id",
        "conversation_id",
        "server_item_ids",
        "calls",
        "answered_call_ids",
        "pending_call_ids",
        "fingerprints",
        "responses_observed",
        "whole_chain",
    }
)


def dump_state(t: Tracker) -> dict[str, Any]:
    """Return the snapshot of ``t`` (see the module docstring for the format)."""
    return {
        "format": FORMAT,
        "version": STATE_VERSION,
        "previous_response_id": t._previous_response_id,
        "conversation_id": t._conversation_id,
        "server_item_ids": sorted(t._server_ids),
        "calls": dict(t._calls),
        "answered_call_ids": sorted(t._answered),
        "pending_call_ids": list(t._pending),
        "fingerprints": dict(t._fp_counts),
        "responses_observed": t._responses,
        "whole_chain": t._whole_chain,
    }


def _fail(path: str, what: str) -> StateError:
    return StateError(
        f"Invalid tracker state: {path} {what}. Pass the dict from Tracker.to_state() "
        "(after json.loads if it was stored as text), unmodified.",
        path=path,
    )


def _str_list(state: Mapping[str, Any], key: str) -> list[str]:
    value = state[key]
    if not isinstance(value, list):
        raise _fail(key, f"must be a list of strings, got {type(value).__name__}")
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v:
            raise _fail(f"{key}[{i}]", f"must be a non-empty string, got {v!r}")
    return value


def _opt_str(state: Mapping[str, Any], key: str) -> str | None:
    value = state[key]
    if value is not None and not isinstance(value, str):
        raise _fail(key, f"must be a string or null, got {type(value).__name__}")
    return value


def load_state(cls: type[Tracker], state: Mapping[str, Any], **settings: Any) -> Tracker:
    """Build a new ``cls`` from a snapshot, validating every field first."""
    if not isinstance(state, Mapping):
        raise StateError(
            f"Invalid tracker state: expected a dict from Tracker.to_state(), got "
            f"{type(state).__name__}.",
            path="",
        )
    if state.get("format") != FORMAT:
        raise _fail("format", f"must be {FORMAT!r}, got {state.get('format')!r}")
    version = state.get("version")
    if type(version) is not int:
        raise StateVersionError(
            f"Invalid tracker state: version must be an integer, got {version!r}.",
            version=version,
        )
    if version != STATE_VERSION:
        newer = version > STATE_VERSION
        raise StateVersionError(
            f"Tracker state version {version} is "
            + (
                f"newer than this release supports ({STATE_VERSION}): upgrade tracker."
                if newer
                else f"unknown (this release reads version {STATE_VERSION})."
            ),
            version=version,
        )
    missing = sorted(_KEYS - state.keys())
    if missing:
        raise _fail(missing[0], "is missing")
    unknown = sorted(state.keys() - _KEYS)
    if unknown:
        raise _fail(unknown[0], "is not a field of version 1")

    prev = _opt_str(state, "previous_response_id")
    conv = _opt_str(state, "conversation_id")
    server_ids = _str_list(state, "server_item_ids")
    answered = _str_list(state, "answered_call_ids")
    pending = _str_list(state, "pending_call_ids")
    calls = state["calls"]
    if not isinstance(calls, Mapping):
        raise _fail("calls", f"must be an object, got {type(calls).__name__}")
    for call_id, item_id in calls.items():
        if not isinstance(call_id, str) or not call_id:
            raise _fail("calls", f"has a non-string key {call_id!r}")
        if item_id is not None and not isinstance(item_id, str):
            raise _fail(f"calls[{call_id!r}]", f"must be a string or null, got {item_id!r}")
    for call_id in pending:
        if call_id not in calls or call_id in answered:
            raise _fail("pending_call_ids", f"names {call_id!r}, which is not an open call")
    fps = state["fingerprints"]
    if not isinstance(fps, Mapping):
        raise _fail("fingerprints", f"must be an object, got {type(fps).__name__}")
    for fp, count in fps.items():
        if not isinstance(fp, str) or type(count) is not int or count < 1:
            raise _fail(f"fingerprints[{fp!r}]", f"must be a positive count, got {count!r}")
    responses = state["responses_observed"]
    if type(responses) is not int or responses < 0:
        raise _fail("responses_observed", f"must be a non-negative integer, got {responses!r}")

    whole_chain = state["whole_chain"]
    if type(whole_chain) is not bool:
        raise _fail("whole_chain", f"must be true or false, got {whole_chain!r}")

    try:
        t = cls(previous_response_id=prev, conversation_id=conv, **settings)
    except ContinuationError as exc:
        raise StateError(f"Invalid tracker state: {exc}", path="previous_response_id") from exc
    t._server_ids = set(server_ids)
    t._answered = set(answered)
    t._calls = dict(calls)
    t._pending = dict.fromkeys(pending)
    t._fp_counts = dict(fps)
    t._responses = responses
    t._whole_chain = whole_chain
    return t
