"""Load a ``Tracker`` from a session and save it back with compare-and-set.

A turn served from a store reads::

    tracker, version = load_tracker(store, session_id)
    ...  # prepare, mark_sent, create, observe_response
    version = save_tracker(store, session_id, tracker, version)   # ConflictError: reload, retry

A snapshot the tracker cannot restore (unknown format version, malformed field) is reported as
``CorruptStateError`` naming the session, exactly like unreadable JSON, and stays in the store.
"""

from __future__ import annotations

from typing import Any

from tracker._errors import CorruptStateError, StateError
from tracker._tracker import Tracker

from ._base import AsyncStore, Loaded, Store

__all__ = ["aload_tracker", "asave_tracker", "load_tracker", "save_tracker"]


def _restore(
    session_id: str, loaded: Loaded | None, new_kwargs: dict[str, Any]
) -> tuple[Tracker, int]:
    if loaded is None:
        return Tracker(**new_kwargs), 0
    try:
        return Tracker.from_state(loaded.state), loaded.version
    except StateError as exc:
        raise CorruptStateError(
            f"stored state of session {session_id!r} (version {loaded.version}) cannot be "
            f"restored: {exc} It was left untouched; inspect it, then delete the session "
            f"(store.delete({session_id!r})) to start it over, or upgrade tracker if a newer "
            "release wrote it",
            session_id=session_id,
        ) from exc


def load_tracker(store: Store, session_id: str, **new_tracker: Any) -> tuple[Tracker, int]:
    """Return the session's tracker and the version to pass to ``save_tracker``.

    A session that does not exist yet gives ``Tracker(**new_tracker)`` and version ``0``; the
    keyword arguments (``previous_response_id=``, ``conversation_id=``) apply only then. Raises
    ``CorruptStateError`` for stored data that cannot be read or restored (left untouched).
    """
    return _restore(session_id, store.load(session_id), new_tracker)


def save_tracker(store: Store, session_id: str, tracker: Tracker, version: int) -> int:
    """Save ``tracker.to_state()`` if the session is still at ``version``; return the new one.

    Raises ``ConflictError`` (nothing written) when another worker saved in between: reload
    with ``load_tracker`` and serve the turn again from there.
    """
    return store.save(session_id, tracker.to_state(), version)


async def aload_tracker(
    store: AsyncStore, session_id: str, **new_tracker: Any
) -> tuple[Tracker, int]:
    """The ``AsyncStore`` form of ``load_tracker``."""
    return _restore(session_id, await store.load(session_id), new_tracker)


async def asave_tracker(store: AsyncStore, session_id: str, tracker: Tracker, version: int) -> int:
    """The ``AsyncStore`` form of ``save_tracker``."""
    return await store.save(session_id, tracker.to_state(), version)
