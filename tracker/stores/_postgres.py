"""Postgres: many workers on many machines, with the database's own transactions.

Tables (created if missing, under an advisory lock so concurrent first opens do not race):
``tracker_schema(version)`` the layout version (1); ``tracker_sessions(session_id, version,
state, updated_at, epoch)`` one row per session: its current version, its base record and its
epoch (``Loaded.epoch``; the column is added to tables created without it);
``tracker_changes(session_id, version, change)`` the changes appended since the base (see
``tracker/stores/_changes.py``), one row per version after the base's.

An append is one transaction: ``UPDATE ... SET version = version + 1 WHERE version =
expected`` (the row lock serialises writers; a stale one updates nothing: ``ConflictError``),
then the change row. A full save (compaction) locks the row (``FOR UPDATE``), reads and checks
the stored record, then writes the new base and deletes the change rows. A load is one
statement, so base and changes come from one snapshot, and it reads the base once. A worker
killed mid-transaction leaves the previous committed version: the server rolls the transaction
back.

psycopg 3 (``pip install 'tracker[postgres]'``) is imported when a store is created.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any, Self

import attrs

from tracker._errors import StoreError

from ._base import (
    AsyncStoreAdapter,
    Loaded,
    check_session_id,
    checked_write,
    conflict,
    keep_epoch,
    recreated,
)
from ._changes import decode_record

__all__ = ["AsyncPostgresStore", "PostgresStore"]

SCHEMA_VERSION = 1
"""Layout version of the tables this release reads and writes."""

_LOCK_KEY = 0x7472_6163_6B65_72  # pg_advisory_xact_lock key for schema setup ("tracker")
_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS tracker_schema (version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tracker_sessions (session_id TEXT PRIMARY KEY, "
    "version BIGINT NOT NULL, state TEXT NOT NULL, updated_at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS tracker_changes (session_id TEXT NOT NULL, "
    "version BIGINT NOT NULL, change TEXT NOT NULL, PRIMARY KEY (session_id, version))",
    "ALTER TABLE tracker_sessions ADD COLUMN IF NOT EXISTS epoch TEXT",
]


def _import_psycopg() -> Any:
    try:
        # An optional dependency: imported when a store is created, not with the package.
        import psycopg
    except ImportError as exc:
        raise ImportError(
            "PostgresStore needs psycopg 3: pip install 'tracker[postgres]' "
            "(or pip install 'psycopg[binary]')"
        ) from exc
    return psycopg


class PostgresStore:
    """An ``IncrementalStore`` in Postgres tables, for many workers on many machines.

    ``url`` is a libpq connection string or URL (``postgresql://user:pass@host:5432/db``).
    ``timeout`` bounds connecting and waiting for another writer's row lock, in seconds. One
    connection, guarded by a lock, serves all threads.
    """

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self._psycopg = _import_psycopg()
        self.url = url
        self._lock = threading.Lock()
        try:
            self._conn = self._psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=max(1, round(timeout)),
                options=f"-c lock_timeout={int(timeout * 1000)}",
            )
        except self._psycopg.Error as exc:
            raise StoreError(
                f"Postgres store could not connect to {self._where()}: {exc}. Check that the "
                "server in the URL is running and reachable"
            ) from exc
        with self._guard(None, "set up"), self._conn.transaction():
            self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            for statement in _SCHEMA:
                self._conn.execute(statement)
            rows = self._conn.execute("SELECT version FROM tracker_schema").fetchall()
            if not rows:
                self._conn.execute(
                    "INSERT INTO tracker_schema (version) VALUES (%s)", (SCHEMA_VERSION,)
                )
            elif rows != [(SCHEMA_VERSION,)]:
                raise StoreError(
                    f"Postgres store {self._where()} has schema version {rows[0][0]!r}; this "
                    f"release reads version {SCHEMA_VERSION}: upgrade tracker, or use another "
                    "database"
                )

    def _where(self) -> str:
        """The URL without its password, for messages."""
        return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", self.url)

    @contextlib.contextmanager
    def _guard(self, session_id: str | None, doing: str) -> Iterator[None]:
        """Turn psycopg's errors (connection lost, lock timeout, ...) into ``StoreError``."""
        what = "the session list" if session_id is None else f"session {session_id!r}"
        try:
            yield
        except self._psycopg.Error as exc:
            outcome = (
                " The save may or may not have been applied: load the session to see its version."
                if doing == "save"
                else ""
            )
            raise StoreError(
                f"Postgres store {self._where()} could not {doing} {what}: {exc}. Check that "
                f"the server is running and reachable, then retry.{outcome}",
                session_id=session_id,
            ) from exc

    def _before_commit(self, session_id: str) -> None:
        """Test seam: runs inside a save's transaction, after the write, before the commit."""

    def _read(self, session_id: str, *, lock: bool) -> Loaded | None:
        if lock:
            row = self._conn.execute(
                "SELECT version, state, epoch FROM tracker_sessions WHERE session_id = %s "
                "FOR UPDATE",
                (session_id,),
            ).fetchone()
            if row is None:
                return None
            changes = self._conn.execute(
                "SELECT version, change FROM tracker_changes WHERE session_id = %s "
                "ORDER BY version",
                (session_id,),
            ).fetchall()
            loaded = decode_record(session_id, row[0], row[1], changes)
            return attrs.evolve(loaded, epoch=row[2])
        # One statement (one snapshot) that fetches the base once: a join would repeat the
        # base, megabytes, in the row of every change.
        row = self._conn.execute(
            "SELECT s.version, s.state, s.epoch, "
            "ARRAY(SELECT c.version FROM tracker_changes c "
            "WHERE c.session_id = s.session_id ORDER BY c.version), "
            "ARRAY(SELECT c.change FROM tracker_changes c "
            "WHERE c.session_id = s.session_id ORDER BY c.version) "
            "FROM tracker_sessions s WHERE s.session_id = %s",
            (session_id,),
        ).fetchone()
        if row is None:
            return None
        changes = list(zip(row[3], row[4], strict=True))
        loaded = decode_record(session_id, row[0], row[1], changes)
        return attrs.evolve(loaded, epoch=row[2])

    def load(self, session_id: str) -> Loaded | None:
        """See ``Store.load``."""
        check_session_id(session_id)
        with self._guard(session_id, "load"), self._lock:
            return self._read(session_id, lock=False)

    def save(
        self,
        session_id: str,
        state: Mapping[str, Any],
        expected_version: int | None,
        *,
        epoch: str | None = None,
    ) -> int:
        """See ``IncrementalStore.save``: a new base, the change log dropped, in one transaction."""
        expected, text = checked_write(session_id, state, expected_version)
        with self._guard(session_id, "save"), self._lock, self._conn.transaction():
            # Never overwrite what we cannot read, even for a writer that guessed its version.
            loaded = self._read(session_id, lock=True)
            actual = 0 if loaded is None else loaded.version
            if actual != expected:
                raise conflict(session_id, expected, actual)
            kept = keep_epoch(session_id, actual, None if loaded is None else loaded.epoch, epoch)
            now = time.time()
            if loaded is None:
                created = self._conn.execute(
                    "INSERT INTO tracker_sessions (session_id, version, state, updated_at, epoch) "
                    "VALUES (%s, 1, %s, %s, %s) ON CONFLICT (session_id) DO NOTHING "
                    "RETURNING version",
                    (session_id, text, now, kept),
                ).fetchone()
                if created is None:  # another writer created it since our read
                    raise conflict(session_id, expected, self._version(session_id))
            else:
                self._conn.execute(
                    "UPDATE tracker_sessions SET version = %s, state = %s, updated_at = %s, "
                    "epoch = %s WHERE session_id = %s",
                    (actual + 1, text, now, kept, session_id),
                )
                self._conn.execute(
                    "DELETE FROM tracker_changes WHERE session_id = %s", (session_id,)
                )
            self._before_commit(session_id)
        return actual + 1

    def _version(self, session_id: str) -> int:
        row = self._conn.execute(
            "SELECT version FROM tracker_sessions WHERE session_id = %s", (session_id,)
        ).fetchone()
        return 0 if row is None else int(row[0])

    def append(
        self,
        session_id: str,
        change: Mapping[str, Any],
        expected_version: int,
        *,
        epoch: str | None = None,
    ) -> int:
        """See ``IncrementalStore.append``: one small transaction, whatever the session's size."""
        expected, text = checked_write(session_id, change, expected_version)
        with self._guard(session_id, "save"), self._lock, self._conn.transaction():
            row = self._conn.execute(
                "UPDATE tracker_sessions SET version = version + 1, updated_at = %s "
                "WHERE session_id = %s AND version = %s "
                "AND (%s::text IS NULL OR epoch IS NOT DISTINCT FROM %s::text) RETURNING version",
                (time.time(), session_id, expected, epoch, epoch),
            ).fetchone()
            if row is None:
                actual = self._version(session_id)
                if actual == expected:  # the version matched: the epoch did not
                    raise recreated(session_id, actual)
                raise conflict(session_id, expected, actual)
            self._conn.execute(
                "INSERT INTO tracker_changes (session_id, version, change) VALUES (%s, %s, %s)",
                (session_id, row[0], text),
            )
            self._before_commit(session_id)
        return int(row[0])

    def delete(self, session_id: str) -> bool:
        """See ``Store.delete``."""
        check_session_id(session_id)
        with self._guard(session_id, "delete"), self._lock, self._conn.transaction():
            self._conn.execute("DELETE FROM tracker_changes WHERE session_id = %s", (session_id,))
            cursor = self._conn.execute(
                "DELETE FROM tracker_sessions WHERE session_id = %s", (session_id,)
            )
            return bool(cursor.rowcount > 0)

    def list_sessions(self) -> list[str]:
        """See ``Store.list_sessions`` (sorted by code point, not by the database collation)."""
        with self._guard(None, "list"), self._lock:
            rows = self._conn.execute("SELECT session_id FROM tracker_sessions").fetchall()
        return sorted(row[0] for row in rows)

    def close(self) -> None:
        """See ``Store.close``."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncPostgresStore(AsyncStoreAdapter):
    """The ``AsyncStore`` form of ``PostgresStore``: same arguments; calls run in threads."""

    store: PostgresStore

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        super().__init__(PostgresStore(url, timeout=timeout))
