"""Bad stored data: reported with the session id, left untouched, never overwritten silently.

Each backend gets raw bad records written behind the store's back (as a bug, a manual edit or
another program would), then the store is asked to load and save over them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tracker import ConflictError, CorruptStateError, StoreError
from tracker.stores import (
    Loaded,
    MemoryStore,
    PostgresStore,
    RedisStore,
    SQLiteStore,
    Store,
    load_tracker,
    save_tracker,
)

# name -> (version, state text) as written raw into the backend
BAD_RECORDS: dict[str, tuple[Any, str]] = {
    "not-json": (1, '{"format": "tracker.state", "vers'),
    "json-array": (2, "[1, 2, 3]"),
    "bad-version": ("two", "{}"),
    "zero-version": (0, "{}"),
}


class Backend:
    """A store plus raw access to what it keeps, bypassing the store."""

    def __init__(
        self,
        store: Store,
        put: Callable[[str, Any, str], None],
        raw: Callable[[str], Any],
    ) -> None:
        self.store = store
        self.put = put
        self.raw = raw


def _memory(_: pytest.FixtureRequest, __: Path) -> Backend:
    store = MemoryStore()

    def put(sid: str, version: Any, text: str) -> None:
        store._records[sid] = (version, text, (), None)

    return Backend(store, put, store._records.get)


def _sqlite(_: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    path = tmp_path / "bad.db"
    store = SQLiteStore(path)

    def put(sid: str, version: Any, text: str) -> None:
        with sqlite3.connect(path) as conn:
            conn.execute(
                "INSERT OR REPLACE INTO tracker_sessions VALUES (?, ?, 0, NULL)", (sid, version)
            )
            conn.execute("INSERT OR REPLACE INTO tracker_bases VALUES (?, ?)", (sid, text))
        conn.close()

    def raw(sid: str) -> Any:
        conn = sqlite3.connect(path)
        try:
            return conn.execute(
                "SELECT version, state FROM tracker_sessions JOIN tracker_bases USING "
                "(session_id) WHERE session_id = ?",
                (sid,),
            ).fetchone()
        finally:
            conn.close()

    return Backend(store, put, raw)


def _redis(request: pytest.FixtureRequest, _: Path) -> Backend:
    import redis

    url = request.getfixturevalue("redis_url")
    client = redis.Redis.from_url(url)
    request.addfinalizer(client.close)
    store = RedisStore(url)
    key = "tracker:session:{}".format

    def put(sid: str, version: Any, text: str) -> None:
        client.hset(key(sid), mapping={"version": version, "state": text})

    def raw(sid: str) -> Any:
        kind = client.type(key(sid))
        return kind, client.hgetall(key(sid)) if kind == b"hash" else client.get(key(sid))

    return Backend(store, put, raw)


def _postgres(request: pytest.FixtureRequest, _: Path) -> Backend:
    import psycopg

    url = request.getfixturevalue("postgres_url")
    store = PostgresStore(url)
    conn = psycopg.connect(url, autocommit=True)
    request.addfinalizer(conn.close)

    def put(sid: str, version: Any, text: str) -> None:
        if type(version) is not int:
            pytest.skip("a BIGINT version column cannot hold a non-integer")
        conn.execute(
            "INSERT INTO tracker_sessions VALUES (%s, %s, %s, 0) ON CONFLICT (session_id) "
            "DO UPDATE SET version = excluded.version, state = excluded.state",
            (sid, version, text),
        )

    def raw(sid: str) -> Any:
        return conn.execute(
            "SELECT version, state FROM tracker_sessions WHERE session_id = %s", (sid,)
        ).fetchone()

    return Backend(store, put, raw)


@pytest.fixture(
    params=[_memory, _sqlite, _redis, _postgres], ids=["memory", "sqlite", "redis", "postgres"]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each durable backend with raw access to its records."""
    made: Backend = request.param(request, tmp_path)
    yield made
    made.store.close()


@pytest.mark.parametrize("case", list(BAD_RECORDS))
def test_unreadable_record_is_reported_and_left_untouched(backend: Backend, case: str) -> None:
    """load raises CorruptStateError naming the session; saves cannot overwrite the record."""
    version, text = BAD_RECORDS[case]
    backend.put("bad", version, text)
    backend.store.save("good", {"ok": True}, None)
    before = backend.raw("bad")

    with pytest.raises(CorruptStateError) as info:
        backend.store.load("bad")
    assert "bad" == info.value.session_id
    assert "'bad'" in str(info.value)
    assert "left untouched" in str(info.value)
    for expected in (None, 1, 2):
        with pytest.raises((ConflictError, CorruptStateError)):
            backend.store.save("bad", {"fresh": True}, expected)

    assert before == backend.raw("bad")
    assert Loaded({"ok": True}, 1) == backend.store.load("good")
    assert ["bad", "good"] == backend.store.list_sessions()


def test_delete_is_the_way_out_of_a_corrupt_session(backend: Backend) -> None:
    """After an operator deletes a corrupt session, it starts over at version 1."""
    backend.put("bad", 1, "{not json")
    assert backend.store.delete("bad")
    assert 1 == backend.store.save("bad", {"fresh": True}, None)


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda s: s.update(version=99), "version"),
        (lambda s: s.update(calls="not a dict"), "calls"),
        (lambda s: s.pop("format"), "format"),
    ],
    ids=["unknown-version", "malformed-field", "missing-format"],
)
def test_snapshot_the_tracker_rejects_is_reported_and_left_untouched(
    backend: Backend, mutate: Callable[[dict[str, Any]], Any], needle: str
) -> None:
    """load_tracker turns a rejected snapshot into CorruptStateError; the record stays as is."""
    from tracker import Tracker

    state = Tracker(previous_response_id="resp_1").to_state()
    mutate(state)
    backend.store.save("old", state, None)
    before = backend.raw("old")

    with pytest.raises(CorruptStateError) as info:
        load_tracker(backend.store, "old")
    assert "old" == info.value.session_id
    assert "'old'" in str(info.value)
    assert needle in str(info.value)
    with pytest.raises(ConflictError):
        save_tracker(backend.store, "old", Tracker(), 0)
    assert before == backend.raw("old")


def test_save_tracker_at_the_version_of_a_rejected_snapshot_overwrites_nothing(
    backend: Backend,
) -> None:
    """A writer guessing the version of a snapshot load_tracker refuses gets CorruptStateError."""
    from tracker import Tracker

    state = Tracker(previous_response_id="resp_1").to_state()
    state["calls"] = "not a dict"
    backend.store.save("old", state, None)
    before = backend.raw("old")

    with pytest.raises(CorruptStateError) as info:
        save_tracker(backend.store, "old", Tracker(), 1)
    assert ("old", True) == (info.value.session_id, "calls" in str(info.value))
    assert before == backend.raw("old")


def _put_bytes(request: pytest.FixtureRequest, tmp_path: Path, kind: str) -> Store:
    """A store whose session 'bin' holds state bytes that are not UTF-8, written raw."""
    text = b'{"text": "caf\xe9"}'
    if kind == "sqlite":
        store: Store = SQLiteStore(tmp_path / "bin.db")
        with sqlite3.connect(tmp_path / "bin.db") as conn:
            conn.execute("INSERT INTO tracker_sessions VALUES ('bin', 1, 0, NULL)")
            conn.execute("INSERT INTO tracker_bases VALUES ('bin', CAST(? AS TEXT))", (text,))
        conn.close()
        return store
    import redis

    url = request.getfixturevalue("redis_url")
    with redis.Redis.from_url(url) as client:
        client.hset("tracker:session:bin", mapping={"version": 1, "state": text})
    return RedisStore(url)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_state_bytes_load_cannot_decode_are_never_overwritten(
    request: pytest.FixtureRequest, tmp_path: Path, kind: str
) -> None:
    """Stored state that is not UTF-8: load and a save at its version raise CorruptStateError."""
    store = _put_bytes(request, tmp_path, kind)
    with pytest.raises(CorruptStateError, match="'bin'"):
        store.load("bin")
    with pytest.raises(CorruptStateError, match="'bin'"):
        store.save("bin", {"fresh": True}, 1)
    with pytest.raises(CorruptStateError, match="'bin'"):
        store.load("bin")
    store.close()


def test_sqlite_page_damage_is_corrupt_state_naming_the_session(tmp_path: Path) -> None:
    """Damaged pages under a session raise CorruptStateError naming it, not sqlite3's error."""
    path = tmp_path / "damaged.db"
    with SQLiteStore(path) as store:
        store.save("big", {"pad": "x" * 20000}, None)
    data = bytearray(path.read_bytes())
    for offset in range(3 * 4096, len(data), 4096):
        data[offset : offset + 100] = b"\xff" * 100
    path.write_bytes(bytes(data))

    with SQLiteStore(path) as store:
        for call in (lambda: store.load("big"), lambda: store.save("big", {}, 1)):
            with pytest.raises(CorruptStateError, match="'big'.*integrity_check") as info:
                call()
            assert "big" == info.value.session_id
        with pytest.raises(StoreError, match="damaged"):
            store.list_sessions()


def test_redis_key_of_the_wrong_type_is_reported_and_left_untouched(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A plain string where a session hash belongs is corrupt, and no save replaces it."""
    backend = _redis(request, tmp_path)
    import redis

    with redis.Redis.from_url(request.getfixturevalue("redis_url")) as client:
        client.set("tracker:session:str", "hello")
    with pytest.raises(CorruptStateError, match="'str'.*string"):
        backend.store.load("str")
    for expected in (None, 1):
        with pytest.raises(CorruptStateError, match="'str'"):
            backend.store.save("str", {}, expected)
    assert (b"string", b"hello") == backend.raw("str")
    backend.store.close()


def test_sqlite_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    """Opening a file that is not SQLite raises StoreError naming it, and leaves it as it was."""
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database" * 100)
    with pytest.raises(StoreError, match="notes.db"):
        SQLiteStore(path)
    assert b"these are my notes, not a database" * 100 == path.read_bytes()


def _change_backend(request: pytest.FixtureRequest, kind: str) -> tuple[Store, Backend]:
    """A Redis or Postgres store, and raw access to its change log (``put``: one change)."""
    if kind == "redis":
        import redis

        url = request.getfixturevalue("redis_url")
        client = redis.Redis.from_url(url)
        request.addfinalizer(client.close)

        def put(sid: str, version: Any, text: str) -> None:
            client.hset(f"tracker:session:{sid}", f"c:{version}", text)

        def raw(sid: str) -> Any:
            return client.hgetall(f"tracker:session:{sid}")

        return RedisStore(url), Backend(MemoryStore(), put, raw)
    import psycopg

    url = request.getfixturevalue("postgres_url")
    conn = psycopg.connect(url, autocommit=True)
    request.addfinalizer(conn.close)

    def put_row(sid: str, version: Any, text: str) -> None:
        conn.execute(
            "UPDATE tracker_changes SET change = %s WHERE session_id = %s AND version = %s",
            (text, sid, version),
        )

    def raw_rows(sid: str) -> Any:
        return conn.execute(
            "SELECT version, change FROM tracker_changes WHERE session_id = %s", (sid,)
        ).fetchall()

    return PostgresStore(url), Backend(MemoryStore(), put_row, raw_rows)


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_a_change_that_does_not_apply_is_corrupt_and_never_compacted_over(
    request: pytest.FixtureRequest, kind: str
) -> None:
    """A stored change that cannot apply: load and a full save (a compaction) at its version
    raise CorruptStateError naming the session and the change's version; it stays as stored."""
    store, raw = _change_backend(request, kind)
    store.save("chat", {"n": []}, None)
    store.append("chat", {"change": 1, "ops": [["extend", ["n"], [1]]]}, 1)  # type: ignore[attr-defined]
    raw.put("chat", 2, '{"change": 1, "ops": [["extend", ["n"], 1]]}')
    before = raw.raw("chat")
    for call in (lambda: store.load("chat"), lambda: store.save("chat", {"n": [1]}, 2)):
        with pytest.raises(CorruptStateError, match="'chat'.*version 2.*no list") as info:
            call()
        assert "chat" == info.value.session_id
    assert before == raw.raw("chat")
    store.close()
