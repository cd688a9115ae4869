"""In-process stores: one process, no restarts (tests, notebooks, a single long-lived worker)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Self, TypeVar

import attrs

from ._base import (
    AsyncStoreAdapter,
    Loaded,
    check_session_id,
    checked_write,
    conflict,
    corrupt,
    keep_epoch,
    recreated,
)
from ._changes import decode_record

_T = TypeVar("_T")

__all__ = ["AsyncMemoryStore", "MemoryStore"]


class MemoryStore:
    """A thread-safe ``IncrementalStore`` in a dict.

    Snapshots are kept as JSON text, as in the durable stores, so a caller that mutates a loaded
    or saved dict never changes what is stored, and a state that is not JSON-safe (or holds
    text that is not valid Unicode) fails here, not first in production. A session is a base
    text plus the change texts appended since (see ``tracker/stores/_changes.py``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # session id -> (version, base JSON, change JSONs appended since the base, in order,
        # epoch)
        self._records: dict[str, tuple[Any, str, tuple[str, ...], str | None]] = {}

    def _decode(
        self, session_id: str, record: tuple[Any, str, tuple[str, ...], str | None]
    ) -> Loaded:
        version, base, changes, epoch = record
        first = version - len(changes) + 1 if isinstance(version, int) else 0
        loaded = decode_record(session_id, version, base, list(enumerate(changes, first)))
        return attrs.evolve(loaded, epoch=epoch)

    def load(self, session_id: str) -> Loaded | None:
        """See ``Store.load``."""
        check_session_id(session_id)
        with self._lock:
            record = self._records.get(session_id)
        return None if record is None else self._decode(session_id, record)

    def save(
        self,
        session_id: str,
        state: Mapping[str, Any],
        expected_version: int | None,
        *,
        epoch: str | None = None,
    ) -> int:
        """See ``IncrementalStore.save``: writes a new base and drops the change log."""
        expected, text = checked_write(session_id, state, expected_version)
        with self._lock:
            record = self._records.get(session_id)
            # Never overwrite what we cannot read (see SQLiteStore.save).
            actual = 0 if record is None else self._decode(session_id, record).version
            if actual != expected:
                raise conflict(session_id, expected, actual)
            stored = None if record is None else record[3]
            kept = keep_epoch(session_id, actual, stored, epoch)
            self._records[session_id] = (actual + 1, text, (), kept)
        return actual + 1

    def append(
        self,
        session_id: str,
        change: Mapping[str, Any],
        expected_version: int,
        *,
        epoch: str | None = None,
    ) -> int:
        """See ``IncrementalStore.append``."""
        expected, text = checked_write(session_id, change, expected_version)
        with self._lock:
            record = self._records.get(session_id)
            if record is None:
                raise conflict(session_id, expected, 0)
            actual = record[0]
            if type(actual) is not int or actual < 1:
                raise corrupt(session_id, f"its version is {actual!r}, not a positive integer")
            if actual != expected:
                raise conflict(session_id, expected, actual)
            if epoch is not None and epoch != record[3]:
                raise recreated(session_id, actual)
            self._records[session_id] = (actual + 1, record[1], (*record[2], text), record[3])
        return actual + 1

    def delete(self, session_id: str) -> bool:
        """See ``Store.delete``."""
        check_session_id(session_id)
        with self._lock:
            return self._records.pop(session_id, None) is not None

    def list_sessions(self) -> list[str]:
        """See ``Store.list_sessions``."""
        with self._lock:
            return sorted(self._records)

    def close(self) -> None:
        """Nothing to release; kept for the ``Store`` protocol."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncMemoryStore(AsyncStoreAdapter):
    """The ``AsyncStore`` form of ``MemoryStore`` (``store`` is the sync one it serves)."""

    store: MemoryStore

    def __init__(self, store: MemoryStore | None = None) -> None:
        super().__init__(MemoryStore() if store is None else store)

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        # A dict behind a lock never blocks long enough to be worth a thread hop.
        return fn(*args)
