"""One factory for the store kinds the store test modules run against."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker.stores import (
    AsyncMemoryStore,
    AsyncPostgresStore,
    AsyncRedisStore,
    AsyncSQLiteStore,
    AsyncStore,
    AsyncStoreAdapter,
    MemoryStore,
    PostgresStore,
    RedisStore,
    SQLiteStore,
)

KINDS = ["memory", "sqlite", "redis", "postgres"]
KINDS += [f"async-{kind}" for kind in KINDS]


def open_store(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncStore:
    """A store of ``kind`` in its async form (sync stores wrapped in AsyncStoreAdapter)."""
    is_async = kind.startswith("async-")
    base = kind.removeprefix("async-")
    if base == "redis":
        url = request.getfixturevalue("redis_url")
        return AsyncRedisStore(url) if is_async else AsyncStoreAdapter(RedisStore(url))
    if base == "postgres":
        url = request.getfixturevalue("postgres_url")
        return AsyncPostgresStore(url) if is_async else AsyncStoreAdapter(PostgresStore(url))
    if base == "sqlite":
        path = tmp_path / "s.db"
        return AsyncSQLiteStore(path) if is_async else AsyncStoreAdapter(SQLiteStore(path))
    return AsyncMemoryStore() if is_async else AsyncStoreAdapter(MemoryStore())
