"""The change of a session record computed from the tracker's journal, in O(what changed).

A worker that holds the record as stored (``_Held``) and whose tracker was marked when that
record was written (``Tracker._mark_state``) does not need ``to_state()`` (which copies every
id) nor a diff of two whole snapshots to save: the tracker tells which ids were added, which
id sets lost an id, and which ``calls``/``fingerprints`` keys were set since the mark
(``Ledger.changes``); a stateless tracker tells which transcript items were appended
(``Transcript.saved_changes``; the whole transcript after a trim or ``strip_encrypted``).
These become the same ops ``diff_ops`` would give (``extend`` for grown id lists and the
transcript's items, ``set`` for the rest, see ``_changes.py``), and are applied to the held
record in place once the store has them, so it stays the record as stored.
"""

from __future__ import annotations

from typing import Any

from tracker._snapshot import FORMAT, STATE_VERSION
from tracker._tracker import Tracker

from ._changes import _apply, _value_ops, diff_ops
from ._record import Lease, encode_record

__all__ = ["apply_in_place", "journal_ops"]


def journal_ops(
    tracker: Tracker,
    mark: object,
    record: dict[str, Any],
    lease: Lease | None,
    turn: dict[str, Any] | None,
) -> list[list[Any]] | None:
    """The ops from ``record`` (as stored when ``mark`` was taken) to the tracker's record now,
    with ``lease`` and ``turn``; ``None`` when the journal cannot tell (save it whole)."""
    old = record.get("tracker")
    if mark is None or not isinstance(old, dict):
        return None
    if (old.get("format"), old.get("version")) != (FORMAT, STATE_VERSION):
        return None  # an older snapshot version: to_state() writes fields it lacks
    changes = tracker._state_changes(mark)
    if changes is None:
        return None
    ops = diff_ops(record, encode_record(old, lease, turn))  # lease and turn: small
    tracker_ops = _tracker_ops(old, changes)
    return None if tracker_ops is None else ops + tracker_ops


def _tracker_ops(old: dict[str, Any], changes: dict[str, Any]) -> list[list[Any]] | None:
    ops: list[list[Any]] = []
    for key, value in changes["scalars"].items():
        _value_ops(old.get(key, _MISSING), value, ["tracker", key], ops)
    if "transcript" in changes:
        if not _transcript_ops(old.get("transcript", _MISSING), changes["transcript"], ops):
            return None
    elif "transcript" in old:
        return None
    for key, values in changes["extend"].items():
        if not isinstance(old.get(key), list):
            return None
        if values:
            ops.append(["extend", ["tracker", key], values])
    for key, values in changes["whole"].items():
        if old.get(key) != values:
            ops.append(["set", ["tracker", key], values])
    for key, keyed in changes["keys"].items():
        stored = old.get(key)
        if not isinstance(stored, dict):
            return None
        ops.extend(
            ["set", ["tracker", key, name], value]
            for name, value in keyed.items()
            if name not in stored or stored[name] != value
        )
    return ops


def _transcript_ops(old: Any, change: dict[str, Any], ops: list[list[Any]]) -> bool:
    """Add the ops of a stateless transcript's ``change`` (``Transcript.saved_changes``):
    ``extend`` its items by those appended, or its whole dump diffed (after a trim).
    ``False`` when the stored transcript is not one they apply to (save the record whole)."""
    if "whole" in change:
        _value_ops(old, change["whole"], _TRANSCRIPT, ops)
        return True
    if not isinstance(old, dict) or not isinstance(old.get("items"), list):
        return False
    if change["extend"]:
        ops.append(["extend", [*_TRANSCRIPT, "items"], change["extend"]])
    key = change["prompt_cache_key"]
    _value_ops(old.get("prompt_cache_key", _MISSING), key, [*_TRANSCRIPT, "prompt_cache_key"], ops)
    return True


_MISSING: Any = object()  # never equal to a value: a field the old record lacks is set
_TRANSCRIPT = ["tracker", "transcript"]


def apply_in_place(record: dict[str, Any], ops: list[list[Any]]) -> None:
    """Apply ``ops`` (just stored) to the held ``record``; they were computed from it."""
    for op in ops:
        why = _apply(record, op)
        if why:  # pragma: no cover - ops computed from this very record always apply
            raise AssertionError(f"a change computed from the held record does not apply: {why}")
