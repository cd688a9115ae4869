"""SQLiteStore specifics: one WAL file, a schema version table, shared by several connections."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tracker import ConflictError, StoreError, UsageError
from tracker.stores import Loaded, SQLiteStore
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
