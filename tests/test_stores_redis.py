"""RedisStore specifics: key prefix, TTL, caller-owned clients, lazy import of redis-py."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from tracker import UsageError
from tracker.stores import Loaded, RedisStore


@pytest.fixture
def client(redis_url: str) -> Iterator[object]:
    """A raw redis-py client on the test database."""
    import redis

    with redis.Redis.from_url(redis_url) as raw:
        yield raw


def test_keys_live_under_the_prefix(redis_url: str, client: object) -> None:
    """Sessions are hashes at <prefix><id>; stores with other prefixes do not see them."""
    import redis

    assert isinstance(client, redis.Redis)
    with RedisStore(redis_url, prefix="app[1]:") as a, RedisStore(redis_url, prefix="app*") as b:
        a.save("s", {"n": 1}, None)
        b.save("t", {"n": 2}, None)
        assert (["s"], ["t"]) == (a.list_sessions(), b.list_sessions())
        assert None is b.load("s")
    assert [b"app*t", b"app[1]:s"] == sorted(client.keys("*"))
    fields = client.hgetall("app[1]:s")
    assert {b"version": b"1", b"state": b'{"n":1}'} == {
        k: fields[k] for k in (b"version", b"state")
    }
    assert [b"epoch", b"state", b"version"] == sorted(fields)


def test_ttl_expires_sessions_and_is_refreshed_by_each_save(redis_url: str, client: object) -> None:
    """With ttl, each save sets the expiry; a store without ttl makes the key persistent."""
    import redis

    assert isinstance(client, redis.Redis)
    with RedisStore(redis_url, ttl=100) as store, RedisStore(redis_url) as forever:
        store.save("s", {}, None)
        assert 0 < client.pttl("tracker:session:s") <= 100_000
        client.pexpire("tracker:session:s", 5_000)
        store.save("s", {}, 1)
        assert 5_000 < client.pttl("tracker:session:s")
        forever.save("s", {}, 2)
        assert -1 == client.pttl("tracker:session:s")


def test_a_client_passed_in_stays_open(redis_url: str) -> None:
    """close() does not close a client the caller owns."""
    import redis

    with redis.Redis.from_url(redis_url) as raw:
        RedisStore(client=raw).close()
        with RedisStore(client=raw) as store:
            store.save("s", {"n": 1}, None)
        assert Loaded({"n": 1}, 1) == RedisStore(client=raw).load("s")


@pytest.mark.parametrize("ttl", [0, -1])
def test_bad_options_are_refused(ttl: float) -> None:
    """A non-positive ttl, or both/neither of url and client, raise UsageError."""
    with pytest.raises(UsageError, match="ttl"):
        RedisStore("redis://127.0.0.1:1/0", ttl=ttl)
    with pytest.raises(UsageError, match="exactly one"):
        RedisStore()


def test_importing_stores_does_not_import_redis() -> None:
    """`import tracker.stores` (and opening a SQLite store by URL) leaves redis-py unimported."""
    code = (
        "import sys, tracker.stores as s; s.open_store('sqlite:///:memory:').close(); "
        "print('redis' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "False" == out.stdout.strip()


def test_unreachable_server_raises_store_error_naming_the_session(refused_port: int) -> None:
    """Connection failures surface as StoreError (session named, outcome of a save stated)."""
    from tracker import StoreError
    from tracker.stores import RedisStore

    with RedisStore(f"redis://127.0.0.1:{refused_port}/0") as store:
        with pytest.raises(StoreError, match="could not load session 's1'") as info:
            store.load("s1")
        assert "s1" == info.value.session_id
        with pytest.raises(StoreError, match="may or may not have been applied"):
            store.save("s1", {"x": 1}, None)


async def test_unreachable_server_raises_store_error_async(refused_port: int) -> None:
    """The async Redis store wraps connection failures the same way."""
    from tracker import StoreError
    from tracker.stores import AsyncRedisStore

    async with AsyncRedisStore(f"redis://127.0.0.1:{refused_port}/0") as store:
        with pytest.raises(StoreError, match="could not list"):
            await store.list_sessions()
