"""Incremental session records: a base document plus a log of changes, and how to diff them.

A store keeps each session as a *base* (one JSON object, written whole) and a *change log*:
one JSON change per save since the base, keyed by the version that save produced. A load reads
the base and applies the changes in version order; a save that knows the record it is building
on appends only what changed. When the log grows past a bound, the next save writes the whole
record as a new base and drops the log in the same atomic step (compaction).

A change (format version 1)::

    {"change": 1, "ops": [
        ["set", ["lease"], {"owner": "...", "expires_at": 1.0}],    # set a key of an object
        ["del", ["turn", "started"]],                               # remove a key
        ["extend", ["tracker", "server_item_ids"], ["fc_9", ...]],  # append to a list
        ["merge", ["tracker", "answered_call_ids"], ["call_7"]]     # sorted(list + values)
    ]}                                                              # (read, no longer written)

Every path is a list of object keys from the top of the record. Lists that only grow (the
snapshot's id lists, which trackers write in first-seen order, a transcript) are extended,
found by one prefix comparison; any other changed value, a list included, is set whole. Changes
written by earlier releases may also hold ``merge`` ops (new values merged into a sorted list,
for the sorted id lists snapshots held then): they still apply. Values
equal under Python's ``==`` are unchanged (a snapshot never turns ``1`` into ``true``). A change
that does not apply (bad JSON, an unknown op, a path that is not there) makes the record
unreadable: ``CorruptStateError`` naming the session and the version of the change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from ._base import Loaded, corrupt, decode_state

__all__ = ["CHANGE_VERSION", "apply_changes", "decode_record", "diff_ops", "encode_change"]

CHANGE_VERSION: Final = 1
_Path = list[str]


def diff_ops(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[list[Any]]:
    """The ops that turn ``old`` into ``new`` (both JSON objects); ``[]`` when they are equal.

    Cheap on what a session record is: the id lists only grow, so a list is compared to the
    old one as a prefix in one C-level pass, and an object whose old keys and values are a
    prefix of the new ones gives one ``set`` per new key without a per-key Python loop.
    """
    ops: list[list[Any]] = []
    _object_ops(old, new, [], ops)
    return ops


def _object_ops(
    old: Mapping[str, Any], new: Mapping[str, Any], path: _Path, ops: list[Any]
) -> None:
    count = len(old)
    if len(new) >= count:
        keys = list(new)
        if keys[:count] == list(old) and list(new.values())[:count] == list(old.values()):
            ops.extend(["set", [*path, key], new[key]] for key in keys[count:])
            return
    for key, value in new.items():
        if key not in old:
            ops.append(["set", [*path, key], value])
        else:
            _value_ops(old[key], value, [*path, key], ops)
    ops.extend(["del", [*path, key]] for key in old.keys() - new.keys())


def _value_ops(before: Any, after: Any, path: _Path, ops: list[Any]) -> None:
    if before is after:
        return
    if type(before) is dict and type(after) is dict:
        _object_ops(before, after, path, ops)
    elif type(before) is list and type(after) is list:
        count = len(before)
        if len(after) >= count and after[:count] == before:
            if len(after) > count:
                ops.append(["extend", path, after[count:]])
        else:
            ops.append(["set", path, after])
    elif type(before) is not type(after) or before != after:
        ops.append(["set", path, after])


def encode_change(ops: list[list[Any]]) -> dict[str, Any]:
    """The change document for ``ops`` (what ``Store.append`` stores)."""
    return {"change": CHANGE_VERSION, "ops": ops}


def apply_changes(
    session_id: str, state: dict[str, Any], changes: Iterable[tuple[int, str | bytes]]
) -> None:
    """Apply raw ``(version, change JSON)`` pairs to ``state`` in place, in the order given."""
    for version, raw in changes:
        try:
            change = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            raise corrupt(
                session_id, f"the change of version {version} is not JSON ({exc})"
            ) from exc
        if not isinstance(change, dict) or change.get("change") != CHANGE_VERSION:
            raise corrupt(
                session_id,
                f"the change of version {version} is not a change of format version "
                f"{CHANGE_VERSION} (upgrade tracker if a newer release wrote it)",
            )
        ops = change.get("ops")
        if not isinstance(ops, list):
            raise corrupt(session_id, f"the change of version {version} has no list of ops")
        for op in ops:
            why = _apply(state, op)
            if why:
                raise corrupt(session_id, f"the change of version {version} cannot apply: {why}")


def _apply(state: dict[str, Any], op: Any) -> str:
    """Apply one op; return why it cannot apply (``""`` when it did)."""
    if not isinstance(op, list) or len(op) not in (2, 3) or not isinstance(op[0], str):
        return f"malformed op {op!r:.80}"
    path = op[1]
    if not isinstance(path, list) or not path or not all(isinstance(k, str) for k in path):
        return f"malformed path {path!r:.80}"
    parent: Any = state
    for key in path[:-1]:
        parent = parent.get(key) if isinstance(parent, dict) else None
    if not isinstance(parent, dict):
        return f"no object at {path[:-1]!r:.80}"
    return _OPS.get((op[0], len(op)), _malformed)(parent, path[-1], op)


def _set(parent: dict[str, Any], key: str, op: list[Any]) -> str:
    parent[key] = op[2]
    return ""


def _del(parent: dict[str, Any], key: str, op: list[Any]) -> str:
    if key not in parent:
        return f"no key {key!r:.80} to delete"
    del parent[key]
    return ""


def _grow(parent: dict[str, Any], key: str, op: list[Any]) -> str:
    target, values = parent.get(key), op[2]
    if not isinstance(target, list) or not isinstance(values, list):
        return f"no list at {op[1]!r:.80} (or no list of values)"
    if op[0] == "extend":
        target.extend(values)
        return ""
    try:
        parent[key] = sorted(target + values)
    except TypeError:
        return f"merge into a list of values that do not sort at {op[1]!r:.80}"
    return ""


def _malformed(parent: dict[str, Any], key: str, op: list[Any]) -> str:
    return f"malformed {op[0]!r:.20} op at {op[1]!r:.80}"


_OPS: Final = {("set", 3): _set, ("del", 2): _del, ("extend", 3): _grow, ("merge", 3): _grow}


def decode_record(
    session_id: str, version: object, base: str | bytes | None, changes: list[tuple[Any, Any]]
) -> Loaded:
    """Read a stored record: the base at ``version - len(changes)`` plus its change log.

    ``changes`` are ``(version, change JSON)`` pairs in version order; they must be exactly the
    versions after the base's, up to ``version``. Raises ``CorruptStateError`` otherwise.
    """
    loaded = decode_state(session_id, version, base)
    if not changes:
        return Loaded(loaded.state, loaded.version, base_bytes=len(base or ""))
    head = loaded.version
    first = head - len(changes) + 1
    numbers = [_int(v) for v, _ in changes]
    if numbers != list(range(first, head + 1)):
        raise corrupt(
            session_id,
            f"its change log holds versions {numbers[:3]}...{numbers[-1:]}, not {first}..{head}",
        )
    apply_changes(
        session_id,
        loaded.state,
        zip(range(first, head + 1), [raw for _, raw in changes], strict=True),
    )
    return Loaded(
        loaded.state,
        head,
        base_bytes=len(base or ""),
        log_bytes=sum(len(raw or "") for _, raw in changes),
        log_count=len(changes),
    )


def _int(value: Any) -> int | None:
    if isinstance(value, bytes | str):
        try:
            return int(value)
        except ValueError:
            return None
    return value if type(value) is int else None
