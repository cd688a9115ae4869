"""The emulator's state, as JSON: the whole state (``dump_state``/``restore_state``) and the
pieces the state journal (``_journal``) appends (one response, one conversation, the ids).

Version 2 files are a journal: this base on the first line, then change records; a version 1
file is this base alone, and still loads.

The id generator's random state and reasoning secret are saved too, so ids issued after a
restart continue the same sequence (never repeating one in the file, even with ``seed=``) and
``encrypted_content`` issued before it still verifies.
"""

from __future__ import annotations

import array
import base64
from collections import Counter
from typing import Any

from .._errors import StateError, StateVersionError
from ._state import IdGen, Run, State, StoredConversation, StoredResponse

__all__ = [
    "FORMAT",
    "VERSION",
    "conversation_record",
    "dump_ids",
    "dump_state",
    "read_conversation",
    "read_ids",
    "read_response",
    "read_run",
    "response_record",
    "restore_state",
    "run_record",
]

FORMAT = "tracker.emulator.state"
VERSION = 2  # 2: a journal (base + change records); 1: the base alone, still read
READS = (1, 2)


def response_record(r: StoredResponse) -> dict[str, Any]:
    """The JSON form of one stored response (``incomplete_details`` only when it ended so)."""
    record = {
        "id": r.id,
        "body": r.body,
        "input_items": r.input_items,
        "output": r.output,
        "previous_response_id": r.previous_response_id,
        "conversation_id": r.conversation_id,
        "store": r.store,
    }
    if r.incomplete_details is not None:
        record["incomplete_details"] = r.incomplete_details
    return record


def conversation_record(c: StoredConversation) -> dict[str, Any]:
    """The JSON form of one conversation (``busy`` is not saved: a turn cut short by a kill
    must not lock its conversation)."""
    return {"id": c.id, "created_at": c.created_at, "metadata": c.metadata, "items": c.items}


def run_record(run: Run) -> dict[str, Any]:
    """The JSON form of one background run: its lifecycle and its request (``Turn``) as JSON.

    ``started`` is the emulator clock's reading; with ``time.monotonic`` a restarted process
    reads another base, so the 5-minute stream limit of a run from before a restart is loose.
    """
    turn = run.turn
    request = run.request
    if turn is not None:
        request = {
            "body": dict(turn.body),
            "store": turn.store,
            "previous": turn.previous,
            "conversation_id": turn.conv.id if turn.conv is not None else None,
            "resolved": turn.resolved,
        }
    return {
        "id": run.id,
        "request": request,
        "output": run.output,
        "started": run.started,
        "created_at": run.created_at,
        "background": run.background,
        "polls_left": run.polls_left,
        "status": run.status,
        "response": run.response,
        "fail_code": run.fail_code,
        "stalled": run.stalled,
    }


def read_run(r: Any, at: str) -> Run:
    """A ``Run`` from ``run_record`` output (its ``turn`` is rebuilt when needed)."""
    return Run(
        id=_get(r, "id", str, at),
        turn=None,
        request=_get(r, "request", (dict, type(None)), at),
        output=_objects(r, "output", at),
        started=float(_get(r, "started", (int, float), at)),
        created_at=_get(r, "created_at", int, at),
        background=_get(r, "background", bool, at),
        polls_left=_get(r, "polls_left", int, at),
        status=_get(r, "status", str, at),
        response=_get(r, "response", (dict, type(None)), at),
        fail_code=_get(r, "fail_code", (str, type(None)), at),
        stalled=_get(r, "stalled", bool, at),
    )


def dump_ids(ids: IdGen, *, packed: bool = False) -> dict[str, Any]:
    """The id generator's random state and secret; ``packed``: the state words as base64 of
    32-bit little-endian words (journal records), else a list of integers (the base)."""
    rng_version, rng_words, rng_gauss = ids.random_state()
    words: Any = list(rng_words)
    if packed:
        words = base64.b64encode(array.array("I", rng_words).tobytes()).decode()
    return {"random": [rng_version, words, rng_gauss], "secret": ids.secret.hex()}


def read_ids(ids: Any, where: str = "") -> IdGen:
    """The ``IdGen`` that ``dump_ids`` saved; raises ``StateError`` on bad input."""
    rng = _get(ids, "random", list, f"{where}ids.")
    secret = _get(ids, "secret", str, f"{where}ids.")
    try:
        words = rng[1]
        if isinstance(words, str):
            packed = array.array("I")
            packed.frombytes(base64.b64decode(words, validate=True))
            words = packed.tolist()
        return IdGen.restored((int(rng[0]), tuple(words), rng[2]), bytes.fromhex(secret))
    except (TypeError, ValueError, IndexError) as exc:
        raise StateError(f"field {where}ids is unreadable: {exc}", path=f"{where}ids") from None


def read_response(r: Any, at: str) -> StoredResponse:
    """A ``StoredResponse`` from ``response_record`` output (``at`` names it in errors)."""
    return StoredResponse(
        id=_get(r, "id", str, at),
        body=_get(r, "body", dict, at),
        input_items=_objects(r, "input_items", at),
        output=_objects(r, "output", at),
        previous_response_id=_get(r, "previous_response_id", (str, type(None)), at),
        conversation_id=_get(r, "conversation_id", (str, type(None)), at),
        store=_get(r, "store", bool, at),
        incomplete_details=(
            _get(r, "incomplete_details", dict, at) if "incomplete_details" in r else None
        ),
    )


def read_conversation(c: Any, at: str) -> StoredConversation:
    """A ``StoredConversation`` from ``conversation_record`` output."""
    return StoredConversation(
        id=_get(c, "id", str, at),
        created_at=_get(c, "created_at", int, at),
        metadata=_get(c, "metadata", dict, at),
        items=_objects(c, "items", at),
    )


def dump_state(state: State) -> dict[str, Any]:
    """The JSON-safe form of ``state`` (hold ``state.lock``)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "ids": dump_ids(state.ids),
        "responses": [response_record(r) for r in state.responses.values()],
        "conversations": [conversation_record(c) for c in state.conversations.values()],
        "items": state.items,
        "following": state.following,
        "reasoning_for": state.reasoning_for,
        "delivered_outputs": dict(state.delivered_outputs),
        "issued_calls": state.issued_calls,
        "compaction_memory": state.compaction_memory,
        "compacted": state.compacted,
        "runs": [run_record(r) for r in state.runs.values()],
    }


def _get(data: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise StateError(f"missing field {where}{key}", path=where + key)
    value = data[key]
    # bool is an int subclass: a ``true`` where a count or timestamp belongs is corrupt.
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise StateError(f"field {where}{key} has the wrong type", path=where + key)
    return value


def _objects(data: Any, key: str, where: str) -> list[Any]:
    """A list field whose every element must be a JSON object (stored items)."""
    values: list[Any] = _get(data, key, list, where)
    for i, value in enumerate(values):
        if not isinstance(value, dict):
            raise StateError(f"field {where}{key}[{i}] is not an object", path=f"{where}{key}")
    return values


def _strings(data: Any, key: str, kind: type) -> dict[str, Any]:
    mapping = _get(data, key, dict, "")
    for k, v in mapping.items():
        if not isinstance(v, kind) or isinstance(v, bool):
            raise StateError(f"field {key}[{k!r}] has the wrong type", path=f"{key}.{k}")
    return dict(mapping)


def restore_state(data: Any) -> State:
    """Rebuild a ``State`` from ``dump_state`` output; raises ``StateError`` on bad input."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise StateError(f"not an emulator state (no 'format': {FORMAT!r})", path="format")
    if data.get("version") not in READS:
        raise StateVersionError(
            f"unknown emulator state version {data.get('version')!r} (this release reads "
            f"{' and '.join(map(str, READS))})",
            version=data.get("version"),
        )
    state = State(ids=read_ids(_get(data, "ids", dict, "")))
    for i, r in enumerate(_get(data, "responses", list, "")):
        stored = read_response(r, f"responses[{i}].")
        state.responses[stored.id] = stored
    for i, c in enumerate(_get(data, "conversations", list, "")):
        conv = read_conversation(c, f"conversations[{i}].")
        state.conversations[conv.id] = conv
    state.items.update(_strings(data, "items", dict))
    state.following.update(_strings(data, "following", str))
    state.reasoning_for.update(_strings(data, "reasoning_for", str))
    state.delivered_outputs.update(Counter(_strings(data, "delivered_outputs", int)))
    calls = _get(data, "issued_calls", list, "")
    if not all(isinstance(c, str) for c in calls):
        raise StateError("field issued_calls holds a non-string", path="issued_calls")
    state.issued_calls.extend(calls)
    for i, r in enumerate(data.get("runs") or []):  # runs came later: older files have none
        run = read_run(r, f"runs[{i}].")
        state.runs[run.id] = run
    # Compaction fields came later in version 1: a file without them holds no compaction.
    for key in ("compaction_memory", "compacted"):
        if key in data:
            target = getattr(state, key)
            for item_id, items in _strings(data, key, list).items():
                if not all(isinstance(item, dict) for item in items):
                    raise StateError(
                        f"field {key}[{item_id!r}] holds a non-object", path=f"{key}.{item_id}"
                    )
                target[item_id] = items
    return state
