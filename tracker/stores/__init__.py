"""Durable, shareable tracker state: memory, SQLite (the embedded default), Redis and Postgres.

A store keeps one JSON snapshot (``Tracker.to_state()``, never a pickle) per session id, with
a version that grows by one on every save. ``save`` is a compare-and-set: it names the version
the caller loaded, and a stale writer gets ``ConflictError`` (reload and retry) instead of
overwriting a newer turn. Unreadable stored data raises ``CorruptStateError`` naming the session
and is never overwritten silently.

    from tracker.stores import open_store, load_tracker, save_tracker

    store = open_store("sqlite:///sessions.db")
    tracker, version = load_tracker(store, "chat-42")
    ...  # serve the turn
    save_tracker(store, "chat-42", tracker, version)

Many workers on one session claim it before sending (``claim_session``: a lease written
with compare-and-set, so exactly one worker serves a turn; ``SessionBusyError`` for the others),
save progress while holding it (``renew_session``) and free it on the last save
(``release_session``); ``tracker.loop`` does this for you.

Every store comes in a sync form (``Store``) and an async one (``AsyncStore``). Importing this
package does not import redis-py or psycopg; creating a ``RedisStore`` or ``PostgresStore``
does. Saves are incremental: a save appends what changed since the version it builds on, and
a long change log is compacted into a new base (``tracker/stores/_changes.py``).
"""

from ._base import AsyncStore, AsyncStoreAdapter, IncrementalStore, Loaded, Store
from ._memory import AsyncMemoryStore, MemoryStore
from ._postgres import AsyncPostgresStore, PostgresStore
from ._record import Lease
from ._redis import AsyncRedisStore, RedisStore
from ._session import (
    DEFAULT_LEASE_TTL,
    LeasedSession,
    aclaim_session,
    aload_tracker,
    arelease_session,
    arenew_session,
    asave_tracker,
    claim_session,
    load_tracker,
    new_owner,
    release_session,
    renew_session,
    save_tracker,
)
from ._sqlite import AsyncSQLiteStore, SQLiteStore
from ._url import open_async_store, open_store

__all__ = [
    "DEFAULT_LEASE_TTL",
    "AsyncMemoryStore",
    "AsyncPostgresStore",
    "AsyncRedisStore",
    "AsyncSQLiteStore",
    "AsyncStore",
    "AsyncStoreAdapter",
    "IncrementalStore",
    "Lease",
    "LeasedSession",
    "Loaded",
    "MemoryStore",
    "PostgresStore",
    "RedisStore",
    "SQLiteStore",
    "Store",
    "aclaim_session",
    "aload_tracker",
    "arelease_session",
    "arenew_session",
    "asave_tracker",
    "claim_session",
    "load_tracker",
    "new_owner",
    "open_async_store",
    "open_store",
    "release_session",
    "renew_session",
    "save_tracker",
]
