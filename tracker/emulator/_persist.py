"""The emulator's state file: versioned JSON, written atomically, locked to one emulator.

Why after every change: the emulator writes the file after each state-changing request (a POST
or DELETE that succeeded) *before* it answers, so any id a client has received is on disk; a
process killed at any moment (even SIGKILL) leaves the previous or the new complete file,
never a torn one (temp file + ``os.replace``). There is no fsync: a power cut may lose the
last writes. A ``<file>.lock`` (``flock``) keeps two live emulators from overwriting each other.

The id generator's random state and reasoning secret are saved too, so ids issued after a
restart continue the same sequence (never repeating one in the file, even with ``seed=``) and
``encrypted_content`` issued before it still verifies.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import IO, Any

from .._errors import StateError, StateVersionError
from ._state import IdGen, State, StoredConversation, StoredResponse

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, one emulator per file is on you
    fcntl = None  # type: ignore[assignment]

__all__ = ["FORMAT", "VERSION", "StateFile", "dump_state", "restore_state"]

FORMAT = "tracker.emulator.state"
VERSION = 1


def dump_state(state: State) -> dict[str, Any]:
    """The JSON-safe form of ``state`` (hold ``state.lock``)."""
    rng_version, rng_words, rng_gauss = state.ids.random_state()
    return {
        "format": FORMAT,
        "version": VERSION,
        "ids": {
            "random": [rng_version, list(rng_words), rng_gauss],
            "secret": state.ids.secret.hex(),
        },
        "responses": [
            {
                "id": r.id,
                "body": r.body,
                "input_items": r.input_items,
                "output": r.output,
                "previous_response_id": r.previous_response_id,
                "conversation_id": r.conversation_id,
                "store": r.store,
            }
            for r in state.responses.values()
        ],
        # ``busy`` is not saved: a turn cut short by a kill must not lock its conversation.
        "conversations": [
            {"id": c.id, "created_at": c.created_at, "metadata": c.metadata, "items": c.items}
            for c in state.conversations.values()
        ],
        "items": state.items,
        "following": state.following,
        "reasoning_for": state.reasoning_for,
        "delivered_outputs": dict(state.delivered_outputs),
        "issued_calls": state.issued_calls,
        "compaction_memory": state.compaction_memory,
        "compacted": state.compacted,
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
    if data.get("version") != VERSION:
        raise StateVersionError(
            f"unknown emulator state version {data.get('version')!r} (this release reads "
            f"{VERSION})",
            version=data.get("version"),
        )
    ids = _get(data, "ids", dict, "")
    rng = _get(ids, "random", list, "ids.")
    secret = _get(ids, "secret", str, "ids.")
    try:
        gen = IdGen.restored((int(rng[0]), tuple(rng[1]), rng[2]), bytes.fromhex(secret))
    except (TypeError, ValueError, IndexError) as exc:
        raise StateError(f"field ids is unreadable: {exc}", path="ids") from None
    state = State(ids=gen)
    for i, r in enumerate(_get(data, "responses", list, "")):
        at = f"responses[{i}]."
        stored = StoredResponse(
            id=_get(r, "id", str, at),
            body=_get(r, "body", dict, at),
            input_items=_objects(r, "input_items", at),
            output=_objects(r, "output", at),
            previous_response_id=_get(r, "previous_response_id", (str, type(None)), at),
            conversation_id=_get(r, "conversation_id", (str, type(None)), at),
            store=_get(r, "store", bool, at),
        )
        state.responses[stored.id] = stored
    for i, c in enumerate(_get(data, "conversations", list, "")):
        at = f"conversations[{i}]."
        conv = StoredConversation(
            id=_get(c, "id", str, at),
            created_at=_get(c, "created_at", int, at),
            metadata=_get(c, "metadata", dict, at),
            items=_objects(c, "items", at),
        )
        state.conversations[conv.id] = conv
    state.items.update(_strings(data, "items", dict))
    state.following.update(_strings(data, "following", str))
    state.reasoning_for.update(_strings(data, "reasoning_for", str))
    state.delivered_outputs.update(Counter(_strings(data, "delivered_outputs", int)))
    calls = _get(data, "issued_calls", list, "")
    if not all(isinstance(c, str) for c in calls):
        raise StateError("field issued_calls holds a non-string", path="issued_calls")
    state.issued_calls.extend(calls)
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


class StateFile:
    """One emulator's state file: ``open`` locks and loads it, ``write`` replaces it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock: IO[bytes] | None = None

    def _fail(self, why: str) -> StateError:
        return StateError(
            f"Emulator state file {self.path} is unreadable: {why}. It was left untouched; move "
            "it aside (or delete it) to start with an empty state."
        )

    def open(self, fresh: State) -> State:
        """Lock the file, then return the state it holds (``fresh`` when it does not exist).

        Raises ``StateError`` for a corrupt or unknown file and ``OSError`` (naming the path)
        when another emulator holds the lock or the file cannot be read.
        """
        try:
            lock = open(self.path.with_name(self.path.name + ".lock"), "ab")  # noqa: SIM115
        except OSError as exc:
            raise self._os_error("cannot be opened", exc) from None
        if fcntl is not None:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()
                raise OSError(
                    f"Emulator state file {self.path} is in use by another emulator; stop it "
                    "or pass a different state file."
                ) from None
        try:
            state = self._read(fresh)
        except BaseException:
            lock.close()
            raise
        self._lock = lock
        return state

    def _os_error(self, what: str, exc: OSError) -> OSError:
        return OSError(f"Emulator state file {self.path} {what}: {exc.strerror or exc}.")

    def _read(self, fresh: State) -> State:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return fresh
        except OSError as exc:
            raise self._os_error("cannot be read", exc) from None
        except UnicodeDecodeError as exc:
            raise self._fail(f"byte {exc.start} is not UTF-8") from None
        try:
            return restore_state(json.loads(text))
        except RecursionError:
            raise self._fail("JSON nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError and StateError are both ValueErrors
            error = self._fail(str(exc))
            if isinstance(exc, StateVersionError):
                error = StateVersionError(str(error), version=exc.version)
            raise error from None

    def write(self, state: State) -> None:
        """Replace the file with ``state`` atomically (hold ``state.lock``)."""
        data = json.dumps(dump_state(state), separators=(",", ":"))
        try:
            fd, tmp = tempfile.mkstemp(
                dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
            )
        except OSError as exc:
            raise self._os_error("cannot be written", exc) from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(data)
            os.replace(tmp, self.path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise self._os_error("cannot be written", exc) from None
            raise

    def close(self) -> None:
        """Release the lock (the file stays)."""
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()
