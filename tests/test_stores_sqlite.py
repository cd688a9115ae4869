"""SQLiteStore specifics: one WAL file, a schema version table, shared by several connections."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tracker import ConflictError, StoreError, UsageError
from tracker.stores import Loaded, SQLiteStore, claim_session, release_session
from tracker.stores._sqlite import SCHEMA_VERSION


def _query(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_file_is_in_wal_mode_with_a_schema_version(tmp_path: Path) -> None:
    """A new store file uses WAL and records its schema version once."""
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    SQLiteStore(path).close()
    assert [("wal",)] == _query(path, "PRAGMA journal_mode")
    assert [(SCHEMA_VERSION,)] == _query(path, "SELECT version FROM tracker_schema")


def test_newer_schema_is_refused_and_left_alone(tmp_path: Path) -> None:
    """A file written with an unknown schema version raises StoreError saying to upgrade."""
    path = tmp_path / "s.db"
    SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE tracker_schema SET version = 99")
    conn.close()
    with pytest.raises(StoreError, match="schema version 99.*upgrade tracker"):
        SQLiteStore(path)
    assert [(99,)] == _query(path, "SELECT version FROM tracker_schema")


def test_two_connections_share_sessions_and_versions(tmp_path: Path) -> None:
    """Two stores on one file (as two processes would be) see each other's saves and conflict."""
    with SQLiteStore(tmp_path / "s.db") as a, SQLiteStore(tmp_path / "s.db") as b:
        a.save("s", {"by": "a"}, None)
        assert Loaded({"by": "a"}, 1) == b.load("s")
        b.save("s", {"by": "b"}, 1)
        with pytest.raises(ConflictError):
            a.save("s", {"by": "a again"}, 1)
        assert Loaded({"by": "b"}, 2) == a.load("s")


def test_failed_save_leaves_no_transaction_open(tmp_path: Path) -> None:
    """After a conflict the connection is idle, so another connection can write at once."""
    with SQLiteStore(tmp_path / "s.db") as a, SQLiteStore(tmp_path / "s.db", timeout=0.2) as b:
        a.save("s", {}, None)
        with pytest.raises(ConflictError):
            a.save("s", {}, None)
        assert not a._conn.in_transaction
        assert 2 == b.save("s", {"n": 2}, 1)


def test_a_write_lock_held_too_long_names_the_file_and_session(tmp_path: Path) -> None:
    """A save that cannot get the write lock in time is StoreError naming the file and the
    session and saying to retry; nothing is written and the store works once the lock is free."""
    path = tmp_path / "s.db"
    with SQLiteStore(path, timeout=0.05) as store:
        store.save("chat-7", {"n": 1}, None)
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError) as caught:
            store.append("chat-7", {"change": 1, "ops": []}, 1)
        other.execute("ROLLBACK")
        other.close()
        assert ("chat-7", True, True) == (
            caught.value.session_id,
            str(path) in str(caught.value) and "'chat-7'" in str(caught.value),
            "retry" in str(caught.value),
        )
        assert Loaded({"n": 1}, 1) == store.load("chat-7")
        assert 2 == store.save("chat-7", {"n": 2}, 1)


def test_memory_database_works(tmp_path: Path) -> None:
    """':memory:' gives a private in-memory SQLite store."""
    with SQLiteStore(":memory:") as store:
        assert 1 == store.save("s", {}, None)
        assert ["s"] == store.list_sessions()


def test_bad_synchronous_option_is_refused(tmp_path: Path) -> None:
    """Only FULL and NORMAL are accepted for synchronous."""
    with pytest.raises(UsageError, match="synchronous"):
        SQLiteStore(tmp_path / "s.db", synchronous="OFF")  # type: ignore[arg-type]


def test_stress_many_connections_opening_a_new_file_at_once(tmp_path: Path) -> None:
    """Opening one new file from many threads at once never fails with 'database is locked'."""
    import threading

    from tracker.stores import SQLiteStore

    path = tmp_path / "race.db"
    errors: list[BaseException] = []
    start = threading.Barrier(12)

    def open_and_save(n: int) -> None:
        start.wait()
        try:
            with SQLiteStore(path) as store:
                store.save(f"s{n}", {"n": n}, None)
        except BaseException as exc:  # collected: a thread's exception would be lost
            errors.append(exc)

    threads = [threading.Thread(target=open_and_save, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [] == errors


_LAYOUT_3 = Path(__file__).parent / "data" / "sqlite_layout3.sql"


def _layout_3_file(path: Path) -> None:
    """The file the release before layout 4 wrote (its ``.dump`` is tests/data): session 'chat'
    at version 4 (epoch '267c01984ba14392'), a base and 3 changes, the last two a claim and a
    release of its lease."""
    conn = sqlite3.connect(path)
    conn.executescript(_LAYOUT_3.read_text())
    conn.close()


def _chat(loaded: Loaded | None) -> tuple[object, ...]:
    assert loaded is not None
    tracker = loaded.state["tracker"]
    return (loaded.version, loaded.epoch, loaded.state["lease"], tracker["previous_response_id"])


def test_a_layout_3_file_opens_upgraded_and_keeps_working(tmp_path: Path) -> None:
    """A previous release's file: its record loads as it was, then claims, appends and a
    compaction work on layout 4, the base in a table of its own."""
    path = tmp_path / "l3.db"
    _layout_3_file(path)
    with SQLiteStore(path) as store:
        assert (4, "267c01984ba14392", None, "resp_2b") == _chat(store.load("chat"))
        session = claim_session(store, "chat", ttl=60)
        session.tracker.mark_sent(session.tracker.prepare("hi", content_match=False))
        session.tracker.observe_response({"id": "resp_3", "output": []})
        release_session(store, session)
        assert (6, "267c01984ba14392", None, "resp_3") == _chat(store.load("chat"))
        loaded = store.load("chat")
        assert loaded is not None
        assert 7 == store.save("chat", loaded.state, 6, epoch="267c01984ba14392")
        compacted = store.load("chat")
        assert compacted is not None
        assert (7, 0, loaded.state) == (compacted.version, compacted.log_count, compacted.state)
    assert [(SCHEMA_VERSION,)] == _query(path, "SELECT version FROM tracker_schema")
    heads = _query(path, "SELECT session_id, version, epoch FROM tracker_sessions")
    assert [("chat", 7, "267c01984ba14392")] == heads
    assert [("chat",)] == _query(path, "SELECT session_id FROM tracker_bases")
    assert [(0,)] == _query(path, "SELECT count(*) FROM tracker_changes")


def test_a_crash_mid_upgrade_leaves_the_old_layout_loadable(tmp_path: Path) -> None:
    """SIGKILL inside the upgrade's transaction: the file is still layout 3, and the next
    open upgrades it with its record whole."""
    path = tmp_path / "l3.db"
    _layout_3_file(path)
    script = (
        "import os, signal, sys\n"
        "from tracker.stores import SQLiteStore\n"
        "SQLiteStore._upgrading = lambda self, layout: os.kill(os.getpid(), signal.SIGKILL)\n"
        "SQLiteStore(sys.argv[1])\n"
    )
    killed = subprocess.run([sys.executable, "-c", script, str(path)], check=False)
    assert -signal.SIGKILL == killed.returncode
    assert [(3,)] == _query(path, "SELECT version FROM tracker_schema")
    with SQLiteStore(path) as store:
        assert (4, "267c01984ba14392", None, "resp_2b") == _chat(store.load("chat"))
    assert [(SCHEMA_VERSION,)] == _query(path, "SELECT version FROM tracker_schema")


def test_an_append_never_writes_the_base_row(tmp_path: Path) -> None:
    """Appends touch only the head and the change log; only a full save rewrites the base."""
    path = tmp_path / "s.db"
    with SQLiteStore(path) as store:
        store.save("s", {"items": []}, None)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE base_writes (session_id TEXT)")
        conn.execute(
            "CREATE TRIGGER count_base_writes AFTER UPDATE ON tracker_bases "
            "BEGIN INSERT INTO base_writes VALUES (new.session_id); END"
        )
    conn.close()
    change = {"change": 1, "ops": [["extend", ["items"], [1]]]}
    with SQLiteStore(path) as store:
        store.append("s", change, 1)
        store.append("s", change, 2)
        assert [] == _query(path, "SELECT * FROM base_writes")
        store.save("s", {"items": [1, 1, 2]}, 3)
        assert Loaded({"items": [1, 1, 2]}, 4) == store.load("s")
    assert [("s",)] == _query(path, "SELECT * FROM base_writes")
