"""SQLite: the embedded default. One file, many processes on one machine, safe under crashes.

The file runs in WAL mode and every save is one ``BEGIN IMMEDIATE`` transaction: the version
check and the write happen under SQLite's write lock, so two processes can never both win a
compare-and-set, and a process killed mid-save leaves the previous committed version (SQLite
rolls the unfinished transaction back on the next open). ``synchronous=FULL`` by default makes
a committed save survive a power loss too.

Tables (file layout 4): ``tracker_schema(version)`` holds the layout version of this file;
``tracker_sessions(session_id, version, updated_at, epoch)`` one small *head* row per session:
its current version and its epoch (``Loaded.epoch``); ``tracker_bases(session_id, state)`` its
base record, written whole; ``tracker_changes(session_id, version, change)`` the changes
appended since the base (see ``tracker/stores/_changes.py``), one row per version after the
base's. An append is one transaction that touches only the head and the change log (check the
version and epoch, insert the change, bump the version): the base, megabytes for a long
stateless session, is never rewritten by it. A full save (compaction) writes the new base,
bumps the head and deletes the session's changes in one transaction.

Earlier layouts kept the base in the head row (1: no change table; 2: no epoch; 3: an epoch
column), so SQLite rewrote the whole base on every version bump. A file of layout 1, 2 or 3 is
upgraded in place when a store opens it, in one transaction (a crash midway leaves the old
layout, upgraded on the next open); its records load as they are. Every process sharing a file
must run a release that reads its layout.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, Literal, Self

import attrs

from tracker._errors import CorruptStateError, StoreError, UsageError

from ._base import (
    AsyncStoreAdapter,
    Loaded,
    check_session_id,
    checked_write,
    conflict,
    corrupt,
    keep_epoch,
    recreated,
)
from ._changes import decode_record

__all__ = ["SCHEMA_VERSION", "AsyncSQLiteStore", "SQLiteStore"]

SCHEMA_VERSION = 4
"""Layout version of the database file this release reads and writes."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tracker_schema (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tracker_sessions (
    session_id TEXT PRIMARY KEY NOT NULL,
    version INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    epoch TEXT
);
CREATE TABLE IF NOT EXISTS tracker_bases (
    session_id TEXT PRIMARY KEY NOT NULL,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tracker_changes (
    session_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    change TEXT NOT NULL,
    PRIMARY KEY (session_id, version)
) WITHOUT ROWID;
"""

# Layouts 1-3 -> 4: the base moves out of the head row into tracker_bases, and the head table
# is rebuilt without it (the portable form of DROP COLUMN). {epoch}: the epoch column, or NULL.
_UPGRADE = """
INSERT INTO tracker_bases (session_id, state) SELECT session_id, state FROM tracker_sessions;
CREATE TABLE tracker_heads (
    session_id TEXT PRIMARY KEY NOT NULL,
    version INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    epoch TEXT
);
INSERT INTO tracker_heads (session_id, version, updated_at, epoch)
    SELECT session_id, version, updated_at, {epoch} FROM tracker_sessions;
DROP TABLE tracker_sessions;
ALTER TABLE tracker_heads RENAME TO tracker_sessions;
"""


class SQLiteStore:
    """A ``Store`` in one SQLite file, shareable by the processes of one machine.

    ``path`` is the database file (created if missing) or ``":memory:"``. ``timeout`` is how
    long, in seconds, a save waits for another process's write lock before failing with
    ``StoreError``. ``synchronous`` trades durability on power loss for speed (``"NORMAL"`` still
    never tears a save). One connection, guarded by a lock, serves all threads.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 10.0,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise UsageError(
                f"SQLiteStore {os.fspath(path)!r}: synchronous must be 'FULL' or 'NORMAL', "
                f"got {synchronous!r}"
            )
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a save is exactly one
        # transaction and nothing is left open between calls.
        self._conn = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._enable_wal(timeout)
            self._conn.execute(f"PRAGMA synchronous = {synchronous}")
            self._init_schema()
        except sqlite3.OperationalError as exc:  # locked by another process, I/O, read-only
            self._conn.close()
            raise StoreError(
                f"SQLite store {self.path!r} could not be opened: {exc}; if another process "
                "holds its write lock, retry later; else check the file's permissions and disk"
            ) from exc
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise StoreError(f"{self.path!r} is not a usable SQLite store: {exc}") from exc
        except BaseException:
            self._conn.close()
            raise

    def _enable_wal(self, timeout: float) -> None:
        # Switching a file into WAL needs an exclusive lock, and SQLite may refuse it at once
        # (without its busy handler) while other processes open the same new file: retry.
        # Once in WAL the mode is stored in the file, and reading it takes no lock.
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            mode = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() == "wal":
                return
            try:
                mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() + delay > deadline:
                    raise
            else:
                if str(mode).lower() in ("wal", "memory"):  # "memory": a :memory: database
                    return
                if time.monotonic() + delay > deadline:
                    raise StoreError(f"SQLite store {self.path!r} could not switch to WAL mode")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def _init_schema(self) -> None:
        with self._transaction():
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._conn.execute(statement)
            rows = self._conn.execute("SELECT version FROM tracker_schema").fetchall()
            if not rows:
                self._conn.execute(
                    "INSERT INTO tracker_schema (version) VALUES (?)", (SCHEMA_VERSION,)
                )
            elif rows in ([(1,)], [(2,)], [(3,)]):  # the base in the head row: move it
                self._upgrade(rows[0][0])
            elif rows != [(SCHEMA_VERSION,)]:
                raise StoreError(
                    f"SQLite store {self.path!r} has schema version {rows[0][0]!r}; this release "
                    f"reads version {SCHEMA_VERSION}: upgrade tracker, or use another file"
                )

    def _upgrade(self, layout: int) -> None:
        """Rewrite a layout-1/2/3 file as layout 4, inside ``_init_schema``'s transaction."""
        epoch = "epoch" if layout == 3 else "NULL"  # 1 and 2 had no epoch column
        for statement in _UPGRADE.format(epoch=epoch).split(";"):
            if statement.strip():
                self._conn.execute(statement)
        self._conn.execute("UPDATE tracker_schema SET version = ?", (SCHEMA_VERSION,))
        self._upgrading(layout)

    def _upgrading(self, layout: int) -> None:
        """Test seam: runs inside the upgrade's transaction, after the rewrite, before commit."""

    def _transaction(self) -> _Transaction:
        return _Transaction(self._conn)

    @contextlib.contextmanager
    def _guard(self, session_id: str | None, doing: str) -> Iterator[None]:
        """Turn sqlite3's errors into ``StoreError`` (busy, I/O) or ``CorruptStateError``."""
        what = "the session list" if session_id is None else f"session {session_id!r}"
        try:
            yield
        except sqlite3.OperationalError as exc:  # locked, I/O error, disk full: retryable
            raise StoreError(
                f"SQLite store {self.path!r} could not {doing} {what}: {exc}; retry later, and "
                "check the disk if it persists",
                session_id=session_id,
            ) from exc
        except sqlite3.DatabaseError as exc:  # SQLITE_CORRUPT, SQLITE_NOTADB: damaged pages
            raise CorruptStateError(
                f"SQLite store {self.path!r} is damaged ({exc}) where it keeps {what}; nothing "
                f"was written. Check it with: sqlite3 {self.path} 'PRAGMA integrity_check', "
                "then restore the file from a backup (or recover it with sqlite3's .recover)",
                session_id=session_id,
            ) from exc

    def _before_commit(self, session_id: str) -> None:
        """Test seam: runs inside a save's transaction, after the write, before the commit."""

    def _read(self, session_id: str) -> Loaded | None:
        """The session's record (base and changes), inside the caller's transaction."""
        row = self._conn.execute(
            "SELECT h.version, CAST(b.state AS BLOB), h.epoch FROM tracker_sessions AS h "
            "LEFT JOIN tracker_bases AS b USING (session_id) WHERE h.session_id = ?",
            (session_id,),
        ).fetchone()
        if row is None:
            return None
        changes = self._conn.execute(
            "SELECT version, CAST(change AS BLOB) FROM tracker_changes WHERE session_id = ? "
            "ORDER BY version",
            (session_id,),
        ).fetchall()
        loaded = decode_record(session_id, row[0], row[1], changes)
        return attrs.evolve(loaded, epoch=row[2] if isinstance(row[2], str) else None)

    def load(self, session_id: str) -> Loaded | None:
        """See ``Store.load``."""
        check_session_id(session_id)
        with self._guard(session_id, "load"), self._lock:
            # One read transaction: the base and its changes come from the same commit.
            self._conn.execute("BEGIN")
            try:
                return self._read(session_id)
            finally:
                self._conn.execute("COMMIT")

    def save(
        self,
        session_id: str,
        state: Mapping[str, Any],
        expected_version: int | None,
        *,
        epoch: str | None = None,
    ) -> int:
        """See ``IncrementalStore.save``: a new base, the change log dropped, in one transaction.

        Raises ``StoreError`` if the write lock is not had in time.
        """
        expected, text = checked_write(session_id, state, expected_version)
        with self._guard(session_id, "save"), self._lock, self._transaction():
            # Never overwrite what we cannot read, even for a writer that guessed its version:
            # that is how silent data loss starts.
            loaded = self._read(session_id)
            actual = 0 if loaded is None else loaded.version
            if actual != expected:
                raise conflict(session_id, expected, actual)
            kept = keep_epoch(session_id, actual, None if loaded is None else loaded.epoch, epoch)
            self._conn.execute(
                "INSERT INTO tracker_bases (session_id, state) VALUES (?, ?) "
                "ON CONFLICT (session_id) DO UPDATE SET state = excluded.state",
                (session_id, text),
            )
            self._conn.execute(
                "INSERT INTO tracker_sessions (session_id, version, updated_at, epoch) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (session_id) DO UPDATE SET "
                "version = excluded.version, updated_at = excluded.updated_at, "
                "epoch = excluded.epoch",
                (session_id, actual + 1, time.time(), kept),
            )
            self._conn.execute("DELETE FROM tracker_changes WHERE session_id = ?", (session_id,))
            self._before_commit(session_id)
        return actual + 1

    def append(
        self,
        session_id: str,
        change: Mapping[str, Any],
        expected_version: int,
        *,
        epoch: str | None = None,
    ) -> int:
        """See ``IncrementalStore.append``: one small transaction, whatever the session's size
        (the head row and one change row; the base is not touched)."""
        expected, text = checked_write(session_id, change, expected_version)
        with self._guard(session_id, "save"), self._lock, self._transaction():
            row = self._conn.execute(
                "SELECT version, epoch FROM tracker_sessions WHERE session_id = ?", (session_id,)
            ).fetchone()
            if row is None:
                raise conflict(session_id, expected, 0)
            actual = row[0]
            if type(actual) is not int or actual < 1:
                raise corrupt(session_id, f"its version is {actual!r}, not a positive integer")
            if actual != expected:
                raise conflict(session_id, expected, actual)
            if epoch is not None and epoch != row[1]:
                raise recreated(session_id, actual)
            self._conn.execute(
                "INSERT INTO tracker_changes (session_id, version, change) VALUES (?, ?, ?)",
                (session_id, actual + 1, text),
            )
            self._conn.execute(
                "UPDATE tracker_sessions SET version = ?, updated_at = ? WHERE session_id = ?",
                (actual + 1, time.time(), session_id),
            )
            self._before_commit(session_id)
        return actual + 1

    def delete(self, session_id: str) -> bool:
        """See ``Store.delete``."""
        check_session_id(session_id)
        with self._guard(session_id, "delete"), self._lock, self._transaction():
            self._conn.execute("DELETE FROM tracker_changes WHERE session_id = ?", (session_id,))
            self._conn.execute("DELETE FROM tracker_bases WHERE session_id = ?", (session_id,))
            cursor = self._conn.execute(
                "DELETE FROM tracker_sessions WHERE session_id = ?", (session_id,)
            )
            return cursor.rowcount > 0

    def list_sessions(self) -> list[str]:
        """See ``Store.list_sessions``."""
        with self._guard(None, "list"), self._lock:
            rows = self._conn.execute(
                "SELECT session_id FROM tracker_sessions ORDER BY session_id"
            ).fetchall()
        return [row[0] for row in rows]

    def close(self) -> None:
        """See ``Store.close``."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on any exception (including SIGINT)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def __enter__(self) -> None:
        # IMMEDIATE takes the write lock now, so the version we read cannot change under us.
        # A lock not had in time ("database is locked") is sqlite3.OperationalError, which the
        # caller's guard reports naming the file and the session.
        self._conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is None:
            try:
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        else:
            self._conn.execute("ROLLBACK")


class AsyncSQLiteStore(AsyncStoreAdapter):
    """The ``AsyncStore`` form of ``SQLiteStore``: same arguments; calls run in worker threads."""

    store: SQLiteStore

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 10.0,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
    ) -> None:
        super().__init__(SQLiteStore(path, timeout=timeout, synchronous=synchronous))
