"""The store protocol, its value type, and the encoding and errors every store shares.

A store maps a session id to one JSON document (a ``Tracker.to_state()`` snapshot) and a
version. The version starts at 1 on the first save and grows by one on every save; a save names
the version it read (``None`` or ``0``: "the session must not exist yet") and fails with
``ConflictError`` when another writer got there first. That compare-and-set is the only
coordination workers need: nothing is locked while a turn is being served.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Protocol, Self, TypeVar, runtime_checkable

import attrs

from tracker._errors import ConflictError, CorruptStateError, StoreError, UsageError

_T = TypeVar("_T")

__all__ = [
    "AsyncStore",
    "AsyncStoreAdapter",
    "IncrementalStore",
    "Loaded",
    "Store",
]


@attrs.frozen
class Loaded:
    """A session as stored: its ``state`` (a fresh dict on every load) and its ``version``.

    ``base_bytes``, ``log_bytes`` and ``log_count`` say how it is kept (the base written whole
    and the changes appended since, see ``tracker/stores/_changes.py``); ``epoch`` names this
    incarnation of the session (set when it was created, kept by every later save, new after a
    delete; ``None`` for records written before epochs existed). They do not take part in
    comparisons.
    """

    state: dict[str, Any]
    version: int
    epoch: str | None = attrs.field(default=None, eq=False, repr=False)
    base_bytes: int = attrs.field(default=0, eq=False, repr=False)
    log_bytes: int = attrs.field(default=0, eq=False, repr=False)
    log_count: int = attrs.field(default=0, eq=False, repr=False)


@runtime_checkable
class Store(Protocol):
    """A durable, shareable home for session snapshots, with compare-and-set saves."""

    def load(self, session_id: str) -> Loaded | None:
        """Return the session's state and version, or ``None`` if it does not exist.

        Raises ``CorruptStateError`` when the stored data cannot be read; the data is left as is.
        """
        ...

    def save(self, session_id: str, state: Mapping[str, Any], expected_version: int | None) -> int:
        """Store ``state`` if the session is still at ``expected_version``; return the new version.

        ``expected_version`` is the version ``load`` returned, or ``None``/``0`` for a session that
        must not exist yet. Raises ``ConflictError`` (nothing written) when it does not match.
        """
        ...

    def delete(self, session_id: str) -> bool:
        """Remove the session (even a corrupt one); return whether it existed."""
        ...

    def list_sessions(self) -> list[str]:
        """Return the ids of all stored sessions, sorted."""
        ...

    def close(self) -> None:
        """Release connections and files; the store is unusable afterwards."""
        ...


@runtime_checkable
class IncrementalStore(Store, Protocol):
    """A ``Store`` that can also append a change to a session instead of rewriting it.

    Each session carries an *epoch*: an id given when it is created and kept by every later
    save, so a session deleted and created again up to the same version number is still told
    apart from the one a writer read (``Loaded.epoch``).
    """

    def save(
        self,
        session_id: str,
        state: Mapping[str, Any],
        expected_version: int | None,
        *,
        epoch: str | None = None,
    ) -> int:
        """See ``Store.save``; ``epoch`` names the session's incarnation.

        Creating a session (``expected_version`` ``None``/``0``) stores ``epoch`` (a fresh
        random one when ``None``). A later save with an ``epoch`` raises ``ConflictError``
        (nothing written) unless the stored epoch is the same; a record stored without one
        takes it.
        """
        ...

    def append(
        self,
        session_id: str,
        change: Mapping[str, Any],
        expected_version: int,
        *,
        epoch: str | None = None,
    ) -> int:
        """Append ``change`` (see ``_changes.py``) if the session is at ``expected_version``.

        ``load`` then returns the state with the change applied. Returns the new version;
        raises ``ConflictError`` (nothing written) when the version does not match, the
        session does not exist, or ``epoch`` is given and is not the stored one (the session
        was deleted and created again since it was read). ``save`` writes a new base and
        drops the log (compaction).
        """
        ...


@runtime_checkable
class AsyncStore(Protocol):
    """The awaitable form of ``Store``: the same methods and semantics, as coroutines."""

    async def load(self, session_id: str) -> Loaded | None:
        """See ``Store.load``."""
        ...

    async def save(
        self, session_id: str, state: Mapping[str, Any], expected_version: int | None
    ) -> int:
        """See ``Store.save``."""
        ...

    async def delete(self, session_id: str) -> bool:
        """See ``Store.delete``."""
        ...

    async def list_sessions(self) -> list[str]:
        """See ``Store.list_sessions``."""
        ...

    async def close(self) -> None:
        """See ``Store.close``."""
        ...


class AsyncStoreAdapter:
    """Serve a sync ``Store`` to async code, running each call in a worker thread.

    ``store`` is the wrapped sync store. Used for SQLite, whose driver blocks; a subclass whose
    store never blocks overrides ``_run`` to call it directly.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.to_thread(fn, *args)

    async def load(self, session_id: str) -> Loaded | None:
        """See ``Store.load``."""
        return await self._run(self.store.load, session_id)

    async def save(
        self,
        session_id: str,
        state: Mapping[str, Any],
        expected_version: int | None,
        *,
        epoch: str | None = None,
    ) -> int:
        """See ``Store.save`` (and ``IncrementalStore.save`` for ``epoch``)."""
        if epoch is None:
            return await self._run(self.store.save, session_id, state, expected_version)
        save = functools.partial(self.store.save, epoch=epoch)  # type: ignore[call-arg]
        return await self._run(save, session_id, state, expected_version)

    async def append(
        self,
        session_id: str,
        change: Mapping[str, Any],
        expected_version: int,
        *,
        epoch: str | None = None,
    ) -> int:
        """See ``IncrementalStore.append`` (sync stores without ``append``: ``AttributeError``)."""
        append = functools.partial(self.store.append, epoch=epoch)  # type: ignore[attr-defined]
        result: int = await self._run(append, session_id, change, expected_version)
        return result

    async def delete(self, session_id: str) -> bool:
        """See ``Store.delete``."""
        return await self._run(self.store.delete, session_id)

    async def list_sessions(self) -> list[str]:
        """See ``Store.list_sessions``."""
        return await self._run(self.store.list_sessions)

    async def close(self) -> None:
        """See ``Store.close``."""
        await self._run(self.store.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def check_session_id(session_id: object) -> str:
    """Return ``session_id`` if it is a usable id; raise ``UsageError`` naming it otherwise.

    Every store refuses the same ids: not a str, empty, or not encodable as UTF-8 (a lone
    surrogate, as ``os.fsdecode`` or ``surrogateescape`` produce), which SQLite, Redis and
    Postgres cannot store.
    """
    if not isinstance(session_id, str):
        raise UsageError(
            f"session id must be a str, not {type(session_id).__name__} ({session_id!r}): "
            "pass the id as text"
        )
    if not session_id:
        raise UsageError("session id must be a non-empty string: name the session")
    if "\x00" in session_id:
        raise UsageError(
            f"session id {session_id!r} holds a NUL character, which Postgres cannot store: "
            "use another id"
        )
    if not session_id.isascii():
        try:
            session_id.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise UsageError(
                f"session id {session_id!r} is not valid Unicode text (a lone surrogate at "
                f"index {exc.start}), which no durable store can keep: decode it with "
                "errors='replace' or use another id"
            ) from exc
    return session_id


def check_expected(session_id: str, expected_version: object) -> int:
    """Normalise ``expected_version`` to an int (0: must not exist) or raise before any write."""
    if expected_version is None:
        return 0
    if isinstance(expected_version, bool) or not isinstance(expected_version, int):
        raise UsageError(
            f"expected_version for session {session_id!r} must be an int or None, "
            f"not {type(expected_version).__name__}: pass the version load returned"
        )
    if expected_version < 0:
        raise UsageError(
            f"expected_version for session {session_id!r} must be >= 0 (0 or None: new session), "
            f"got {expected_version}"
        )
    return expected_version


def checked_write(
    session_id: str, state: Mapping[str, Any], expected_version: object
) -> tuple[int, str]:
    """Check a write's arguments before any I/O: the expected version and the encoded record.

    The checks every store's ``save`` and ``append`` make first: a valid session id, an
    ``expected_version`` normalised by ``check_expected``, ``state`` encoded by ``encode_state``.
    """
    check_session_id(session_id)
    return check_expected(session_id, expected_version), encode_state(session_id, state)


def encode_state(session_id: str, state: Mapping[str, Any]) -> str:
    """Serialise a snapshot as compact JSON; raise ``StoreError`` if it is not JSON-safe.

    Text that is not valid UTF-8 (a lone surrogate) is refused here, by every store alike.
    """
    if not isinstance(state, Mapping):
        raise StoreError(
            f"state for session {session_id!r} must be a dict (Tracker.to_state()), "
            f"not {type(state).__name__}",
            session_id=session_id,
        )
    try:
        text = json.dumps(state, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise StoreError(
            f"state for session {session_id!r} is not JSON-safe ({exc}); "
            "save Tracker.to_state(), never live objects",
            session_id=session_id,
        ) from exc
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise StoreError(
                f"state for session {session_id!r} holds text that is not valid Unicode (a "
                f"lone surrogate near {text[max(0, exc.start - 20) : exc.start]!r}); nothing "
                "was written: fix the item text, e.g. decode it with errors='replace'",
                session_id=session_id,
            ) from exc
    return text


def decode_state(session_id: str, version: object, raw: str | bytes | None) -> Loaded:
    """Parse a stored record; raise ``CorruptStateError`` (naming the session) if unreadable."""
    if isinstance(version, bytes | str):
        with contextlib.suppress(ValueError):
            version = int(version)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise corrupt(session_id, f"its version is {version!r}, not a positive integer")
    if raw is None:
        raise corrupt(session_id, "it has a version but no state")
    try:
        state = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise corrupt(session_id, f"version {version} is not valid JSON ({exc})") from exc
    if not isinstance(state, dict):
        raise corrupt(
            session_id, f"version {version} is a JSON {type(state).__name__}, not an object"
        )
    return Loaded(state=state, version=version)


def corrupt(session_id: str, reason: str) -> CorruptStateError:
    """Build the error for unreadable stored data; the data itself is never touched."""
    return CorruptStateError(
        f"stored state of session {session_id!r} is unreadable: {reason}. It was left untouched; "
        f"inspect it, then delete the session (store.delete({session_id!r})) to start it over",
        session_id=session_id,
    )


def new_epoch() -> str:
    """A fresh session epoch: 16 random hex digits."""
    return uuid.uuid4().hex[:16]


def keep_epoch(session_id: str, actual: int, stored: str | None, given: str | None) -> str:
    """The epoch a full save at ``actual`` (0: creating) stores, or ``recreated`` if stale.

    Creating takes ``given`` (or a fresh one); a later save keeps the stored epoch, and one that
    names another raises; a record stored without an epoch takes ``given`` (or a fresh one).
    """
    if actual == 0 or stored is None:
        return new_epoch() if given is None else given
    if given is not None and given != stored:
        raise recreated(session_id, actual)
    return stored


def recreated(session_id: str, version: int) -> ConflictError:
    """The retryable error for a writer whose session was deleted and created again."""
    return ConflictError(
        f"session {session_id!r} was deleted and created again since this writer read it: it "
        f"is at version {version} again, but it is another record (its epoch differs). Nothing "
        "was written; reload and retry",
        session_id=session_id,
        expected_version=version,
        actual_version=version,
    )


def conflict(session_id: str, expected: int, actual: int) -> ConflictError:
    """Build the retryable error for a stale writer (``0`` stands for "no such session")."""
    if expected == 0:
        what = f"expected it not to exist, but it is at version {actual}"
    elif actual == 0:
        what = f"expected version {expected}, but it does not exist (deleted?)"
    else:
        what = f"expected version {expected}, but it is at version {actual}"
    return ConflictError(
        f"session {session_id!r} was saved by another writer: {what}. Nothing was written; "
        "reload and retry",
        session_id=session_id,
        expected_version=expected,
        actual_version=actual,
    )
