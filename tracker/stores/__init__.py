"""Durable, shareable tracker state: memory, SQLite (the embedded default) and Redis.

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

Every store comes in a sync form (``Store``) and an async one (``AsyncStore``). Importing this
package does not import redis-py; creating a ``RedisStore`` does.
"""

from ._base import AsyncStore, AsyncStoreAdapter, Loaded, Store
from ._memory import AsyncMemoryStore, MemoryStore
from ._redis import AsyncRedisStore, RedisStore
from ._session import aload_tracker, asave_tracker, load_tracker, save_tracker
from ._sqlite import AsyncSQLiteStore, SQLiteStore
from ._url import open_async_store, open_store

__all__ = [
    "AsyncMemoryStore",
    "AsyncRedisStore",
    "AsyncSQLiteStore",
    "AsyncStore",
    "AsyncStoreAdapter",
    "Loaded",
    "MemoryStore",
    "RedisStore",
    "SQLiteStore",
    "Store",
    "aload_tracker",
    "asave_tracker",
    "load_tracker",
    "open_async_store",
    "open_store",
    "save_tracker",
]
