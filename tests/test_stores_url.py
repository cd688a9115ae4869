"""open_store / open_async_store: the URL forms for the CLI and configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker import UsageError
from tracker.stores import (
    AsyncMemoryStore,
    AsyncPostgresStore,
    AsyncRedisStore,
    AsyncSQLiteStore,
    MemoryStore,
    PostgresStore,
    RedisStore,
    SQLiteStore,
    open_async_store,
    open_store,
)


def test_memory_url() -> None:
    """memory:// opens a MemoryStore."""
    assert isinstance(open_store("memory://"), MemoryStore)


def test_sqlite_three_slashes_is_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite:///a/b.db is a path relative to the working directory."""
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path)
    with open_store("sqlite:///a/b.db") as store:
        assert isinstance(store, SQLiteStore)
        assert "a/b.db" == store.path
    assert (tmp_path / "a" / "b.db").exists()


def test_sqlite_four_slashes_is_absolute(tmp_path: Path) -> None:
    """sqlite:////abs/path.db is an absolute path (%20 and friends are unquoted)."""
    with open_store(f"sqlite:///{tmp_path}/my%20file.db") as store:
        assert str(tmp_path / "my file.db") == store.path
    assert (tmp_path / "my file.db").exists()


def test_redis_url_selects_the_database(redis_url: str) -> None:
    """redis://host:port/3 opens a RedisStore on database 3, with prefix and ttl options."""
    import redis

    url = redis_url.rsplit("/", 1)[0] + "/3"
    with open_store(url, prefix="p:", ttl=60) as store:
        assert isinstance(store, RedisStore)
        store.save("s", {}, None)
    with redis.Redis.from_url(url) as client:
        assert [b"p:s"] == client.keys("*")


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
async def test_postgres_urls_open_a_postgres_store(postgres_url: str, scheme: str) -> None:
    """postgresql:// and postgres:// open a PostgresStore (async: AsyncPostgresStore)."""
    url = scheme + postgres_url.removeprefix("postgresql")
    with open_store(url, timeout=5) as store:
        assert isinstance(store, PostgresStore)
        assert 1 == store.save("s", {}, None)
    async_store = open_async_store(url)
    assert isinstance(async_store, AsyncPostgresStore)
    assert 2 == await async_store.save("s", {}, 1)
    await async_store.close()


async def test_async_forms(tmp_path: Path, redis_url: str) -> None:
    """open_async_store gives the async store of each scheme."""
    stores = [
        open_async_store("memory://"),
        open_async_store(f"sqlite:///{tmp_path}/x.db"),
        open_async_store(redis_url),
    ]
    assert [AsyncMemoryStore, AsyncSQLiteStore, AsyncRedisStore] == [type(s) for s in stores]
    for store in stores:
        assert 1 == await store.save("s", {}, None)
        await store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://db/x", "unknown store URL scheme 'mysql'.*postgresql://"),
        ("sessions.db", "has no scheme"),
        ("sqlite://host/x.db", "names a host"),
        ("sqlite://", "no file path"),
        ("memory://x", "takes no host"),
    ],
)
def test_bad_urls_say_what_to_use(url: str, message: str) -> None:
    """A malformed URL or unknown scheme raises UsageError naming it and listing the forms."""
    with pytest.raises(UsageError, match=message) as info:
        open_store(url)
    assert url in str(info.value)
