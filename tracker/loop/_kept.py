"""Sessions this process released, kept so its next turn of them claims without a load.

A worker that serves turn after turn of one session saved its tracker itself on the last
release. Reading the whole session back for the next claim costs O(history). So the loop keeps
each session it released (tracker and stored record as of that save, per store object) and
passes it to ``claim_session(reuse=...)``, which appends the new lease under compare-and-set on
the version and epoch it holds, and loads the session only if someone else wrote in between.

A kept session is taken out while a turn serves it (two threads serving the same session
cannot both reuse it; the second one claims as usual and finds the lease busy) and put back
only after a successful release. At most ``KEEP_PER_STORE`` sessions are kept per store, the
least recently released dropped first; a store that cannot be weakly referenced keeps none.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Final

from tracker.stores import LeasedSession

__all__ = ["KEEP_PER_STORE", "KeptSessions", "kept_sessions"]

KEEP_PER_STORE: Final = 16
"""Released sessions kept per store object (each holds its tracker in memory)."""


class KeptSessions:
    """Released sessions by store object and session id (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_store: weakref.WeakKeyDictionary[object, OrderedDict[str, LeasedSession]] = (
            weakref.WeakKeyDictionary()
        )

    def take(self, store: object, session_id: str) -> LeasedSession | None:
        """Remove and return the session kept for ``store``/``session_id``, if any."""
        with self._lock:
            try:
                sessions = self._by_store.get(store)
            except TypeError:  # not weakly referenceable: nothing is kept for it
                return None
            return None if sessions is None else sessions.pop(session_id, None)

    def put(self, store: object, session: LeasedSession) -> None:
        """Keep ``session`` (just released into ``store``) for the next turn."""
        with self._lock:
            try:
                sessions = self._by_store.setdefault(store, OrderedDict())
            except TypeError:
                return
            sessions[session.session_id] = session
            sessions.move_to_end(session.session_id)
            while len(sessions) > KEEP_PER_STORE:
                sessions.popitem(last=False)


kept_sessions: Final = KeptSessions()
"""The process's kept sessions, shared by ``run_turn`` and ``arun_turn``."""
