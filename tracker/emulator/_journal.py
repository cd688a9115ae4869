"""The emulator's state file: an append-only journal, compacted atomically, locked to one emulator.

Layout (version 2): one JSON document per line. The first line is the whole state as
``_persist.dump_state`` writes it (the *base*); every later line is one *change record*,
written after a state-changing request (a POST or DELETE that succeeded, or a retrieve that
moved a background run) *before* the answer,
so any id a client has received is on disk. A record holds only what that request changed:

- ``set`` / ``del``: per state map (``responses``, ``conversations``, ``items``, ``following``,
  ``reasoning_for``, ``delivered_outputs``, ``compaction_memory``, ``compacted``, ``runs``: the
  background responses, see ``_background``), the entries
  set (new value) and the keys deleted;
- ``append``: per conversation whose items only grew, ``[count before, new items]``;
- ``calls``: call ids issued since the last record; ``ids``: the id generator's state (its random
  words packed as base64), so ids after a restart continue the sequence.

A request therefore costs one ``write`` of its own size (plus a constant-time look at each
conversation, to see whether its items grew). Loading replays the records over the
base. When the records outgrow ``max(COMPACT_MIN_BYTES, size of the base)`` the file is
*compacted*: the whole state is written to a temporary file that replaces the journal
(``os.replace``), so a kill at any moment leaves the old journal or the new base, and the
rewrite costs O(1) amortised per byte appended. Opening and stopping compact too, so a file at
rest is one line (which is also what a version 1 file is: it still loads).

Crashes: a record is one ``write`` of a line ending in ``\\n``. A process killed in the middle
of it leaves a *torn* last line with no newline; loading ignores that line and reports it
(``StateFile.warning``, a ``RuntimeWarning``, and the command line prints it), since its request
was never answered. Anything else that does not parse, or a record that does not fit the state
before it, is corrupt: ``StateError`` naming the file and line, and the file is left alone.
There is no fsync: a power cut may lose the last records. A ``<file>.lock`` (``flock``) keeps
two live emulators from writing the same file.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import IO, Any, Final

from .._errors import StateError, StateVersionError
from ._persist import (
    conversation_record,
    dump_ids,
    dump_state,
    read_conversation,
    read_ids,
    read_response,
    read_run,
    response_record,
    restore_state,
    run_record,
)
from ._state import State
from ._tracked import TrackedCounter, TrackedDict

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no lock, one emulator per file is on you
    fcntl = None  # type: ignore[assignment]

__all__ = ["COMPACT_MIN_BYTES", "StateFile", "load_journal"]

#: Records may grow to this many bytes (or the size of the base, if larger) before compaction.
COMPACT_MIN_BYTES: Final = 1 << 20

#: The state maps a record carries, with how a value is written.
_MAPS: Final = (
    "responses",
    "conversations",
    "items",
    "following",
    "reasoning_for",
    "delivered_outputs",
    "compaction_memory",
    "compacted",
    "runs",
)
_SEPARATORS: Final = (",", ":")


def _value(name: str, value: Any) -> Any:
    if name == "responses":
        return response_record(value)
    if name == "conversations":
        return conversation_record(value)
    if name == "runs":
        return run_record(value)
    return value


class _Watch:
    """What the last record (or base) left each conversation and the call list at."""

    def __init__(self, state: State) -> None:
        self.convs = {c.id: _mark(c) for c in state.conversations.values()}
        self.calls = len(state.issued_calls)
        for name in _MAPS:
            target = getattr(state, name)
            if isinstance(target, (TrackedDict, TrackedCounter)):
                target.take_changes()


def _mark(conv: Any) -> tuple[int, Any, Any]:
    return len(conv.items), conv.items[-1] if conv.items else None, conv.metadata


def _conversation_change(conv: Any, before: tuple[int, Any, Any] | None) -> Any:
    """``("append", [n, items])`` when the items only grew, ``("set", record)`` when the
    conversation is new or changed otherwise, ``None`` when unchanged."""
    now = _mark(conv)
    if before == now:
        return None
    if before is not None and before[2] is now[2] and before[0] <= now[0]:
        count, last, _ = before
        if count == 0 or conv.items[count - 1] is last:
            return "append", [count, conv.items[count:]]
    return "set", conversation_record(conv)


def make_record(state: State, watch: _Watch) -> dict[str, Any] | None:
    """The change record since ``watch`` (updated), or ``None`` when it cannot say what
    changed (a map replaced by an untracked one, the call list shrunk): compact then."""
    record: dict[str, Any] = {"ids": dump_ids(state.ids, packed=True)}
    sets: dict[str, dict[str, Any]] = {}
    dels: dict[str, list[Any]] = {}
    for name in _MAPS:
        target = getattr(state, name)
        if not isinstance(target, (TrackedDict, TrackedCounter)):
            return None
        for key in target.take_changes():
            if key in target:
                sets.setdefault(name, {})[key] = _value(name, target[key])
            else:
                dels.setdefault(name, []).append(key)
    appends: dict[str, Any] = {}
    for conv_id, conv in state.conversations.items():
        change = _conversation_change(conv, watch.convs.get(conv_id))
        if conv_id in sets.get("conversations", {}):  # written whole already
            watch.convs[conv_id] = _mark(conv)
        elif change is not None:
            kind, value = change
            if kind == "append":
                appends[conv_id] = value
            else:
                sets.setdefault("conversations", {})[conv_id] = value
            watch.convs[conv_id] = _mark(conv)
    for conv_id in dels.get("conversations", []):
        watch.convs.pop(conv_id, None)
    if len(state.issued_calls) < watch.calls:
        return None
    if len(state.issued_calls) > watch.calls:
        record["calls"] = state.issued_calls[watch.calls :]
        watch.calls = len(state.issued_calls)
    for key, value in (("set", sets), ("del", dels), ("append", appends)):
        if value:
            record[key] = value
    return record


def _apply_maps(state: State, record: dict[str, Any], where: str) -> None:
    sets, dels = record.get("set", {}), record.get("del", {})
    if not isinstance(sets, dict) or not isinstance(dels, dict):
        raise StateError(f"{where}: 'set' and 'del' must be objects", path=where)
    for name, entries in sets.items():
        if name not in _MAPS or not isinstance(entries, dict):
            raise StateError(f"{where}: unknown map {name!r} in 'set'", path=where)
        target = getattr(state, name)
        for key, value in entries.items():
            if name == "responses":
                target[key] = read_response(value, f"{where}.set.responses.")
            elif name == "conversations":
                target[key] = read_conversation(value, f"{where}.set.conversations.")
            elif name == "runs":
                target[key] = read_run(value, f"{where}.set.runs.")
            else:
                target[key] = value
    for name, keys in dels.items():
        if name not in _MAPS or not isinstance(keys, list):
            raise StateError(f"{where}: unknown map {name!r} in 'del'", path=where)
        for key in keys:
            getattr(state, name).pop(key, None)


def apply_record(state: State, record: Any, where: str) -> None:
    """Replay one change record onto ``state``; ``StateError`` when it does not fit."""
    if not isinstance(record, dict):
        raise StateError(f"{where} is not an object", path=where)
    _apply_maps(state, record, where)
    for conv_id, change in (record.get("append") or {}).items():
        conv = state.conversations.get(conv_id)
        ok = isinstance(change, list) and len(change) == 2 and isinstance(change[1], list)
        if conv is None or not ok or change[0] != len(conv.items):
            raise StateError(
                f"{where}: items appended to conversation {conv_id!r} do not follow its items",
                path=where,
            )
        if not all(isinstance(item, dict) for item in change[1]):
            raise StateError(f"{where}: conversation {conv_id!r} gets a non-object", path=where)
        conv.items.extend(change[1])
    calls = record.get("calls", [])
    if not isinstance(calls, list) or not all(isinstance(c, str) for c in calls):
        raise StateError(f"{where}: 'calls' must be a list of strings", path=where)
    state.issued_calls.extend(calls)
    if "ids" in record:
        state.ids = read_ids(record["ids"], f"{where}.")


def load_journal(text: str) -> tuple[State, str | None]:
    """The state a journal holds, and a note when a torn last line was ignored.

    Raises ``StateError`` (a ``ValueError``) on anything else that cannot be read.
    """
    lines = text.split("\n")
    try:
        base = json.loads(lines[0])
    except ValueError:  # one document over several lines (a hand-formatted version 1 file)
        return restore_state(json.loads(text)), None
    torn = None
    if len(lines) > 1 and lines[-1]:  # a last record without its newline: cut short
        with contextlib.suppress(ValueError):
            json.loads(lines[-1])
            lines.append("")  # complete after all: only the newline is missing
        if lines[-1]:
            torn = f"line {len(lines)} ({len(lines[-1])} bytes)"
            lines[-1] = ""
    state = restore_state(base)
    for number, line in enumerate(lines[1:], start=2):
        if line:
            try:
                record = json.loads(line)
            except ValueError as exc:
                raise StateError(f"line {number}: {exc}", path=f"line {number}") from None
            apply_record(state, record, f"line {number}")
    return state, torn


class StateFile:
    """One emulator's state file: ``open`` locks and loads it, ``write`` appends a record."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock: IO[bytes] | None = None
        self._out: IO[bytes] | None = None
        self._watch: _Watch | None = None
        self._base_bytes = 0
        self._record_bytes = 0
        #: Set by ``open`` when a torn last record was ignored (also a ``RuntimeWarning``).
        self.warning: str | None = None

    def _fail(self, why: str) -> StateError:
        return StateError(
            f"Emulator state file {self.path} is unreadable: {why}. It was left untouched; move "
            "it aside (or delete it) to start with an empty state."
        )

    def _os_error(self, what: str, exc: OSError) -> OSError:
        return OSError(f"Emulator state file {self.path} {what}: {exc.strerror or exc}.")

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
            state, torn = load_journal(text)
        except RecursionError:
            raise self._fail("JSON nested too deeply") from None
        except ValueError as exc:  # JSONDecodeError and StateError are both ValueErrors
            error = self._fail(str(exc))
            if isinstance(exc, StateVersionError):
                error = StateVersionError(str(error), version=exc.version)
            raise error from None
        if torn is not None:
            self.warning = (
                f"Emulator state file {self.path}: ignored a torn last record at {torn}, "
                "written by a process killed mid-write (its request was never answered); "
                "the state before it is loaded."
            )
            warnings.warn(self.warning, RuntimeWarning, stacklevel=4)
        return state

    def write(self, state: State) -> None:
        """Append what changed since the last write (hold ``state.lock``); compact the file
        when the records outgrow the bound, or when the change cannot be described."""
        record = make_record(state, self._watch) if self._watch is not None else None
        if record is None:
            self.compact(state)
            return
        line = (json.dumps(record, separators=_SEPARATORS) + "\n").encode()
        if self._record_bytes + len(line) > max(COMPACT_MIN_BYTES, self._base_bytes):
            self.compact(state)
            return
        try:
            assert self._out is not None
            self._out.write(line)
            self._out.flush()
        except OSError as exc:
            raise self._os_error("cannot be written", exc) from None
        self._record_bytes += len(line)

    def compact(self, state: State) -> None:
        """Replace the file with one base line holding ``state``, atomically (hold its lock)."""
        data = (json.dumps(dump_state(state), separators=_SEPARATORS) + "\n").encode()
        try:
            fd, tmp = tempfile.mkstemp(
                dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
            )
        except OSError as exc:
            raise self._os_error("cannot be written", exc) from None
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, self.path)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise self._os_error("cannot be written", exc) from None
            raise
        self._close_out()
        try:
            self._out = open(self.path, "ab")  # noqa: SIM115
        except OSError as exc:
            raise self._os_error("cannot be written", exc) from None
        self._watch = _Watch(state)
        self._base_bytes, self._record_bytes = len(data), 0

    def _close_out(self) -> None:
        out, self._out = self._out, None
        if out is not None:
            with contextlib.suppress(OSError):
                out.close()

    def close(self) -> None:
        """Release the lock (the file stays)."""
        self._close_out()
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()
