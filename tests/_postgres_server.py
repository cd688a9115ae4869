"""A real ``postgres`` server on a free loopback port, for the Postgres store tests.

Never a mock: the tests run Debian's ``initdb`` and ``postgres`` binaries themselves, in a
temporary directory (``fsync=off``: a test cluster need not survive a power loss). Postgres
refuses to run as root, so under root (as in CI) the cluster belongs to the ``postgres``
system user and the server runs as that user. Without the binaries, a usable user, or
psycopg, the Postgres tests skip and say why; with ``TRACKER_REQUIRE_POSTGRES=1`` (set by
``.ci/run``) they fail instead.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_INSTALL = "install it (Debian: apt-get install postgresql; psycopg: pip install 'psycopg[binary]')"
_TABLES = ("tracker_changes", "tracker_sessions", "tracker_schema")


def _unavailable(reason: str) -> None:
    if os.environ.get("TRACKER_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"TRACKER_REQUIRE_POSTGRES=1 but {reason}", pytrace=False)
    pytest.skip(f"Postgres tests skipped: {reason}; {_INSTALL}")


def _bindir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    return Path(dirs[-1]) if dirs and Path(dirs[-1], "postgres").exists() else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _run_as() -> dict[str, Any]:
    """Popen arguments that drop root for the ``postgres`` user (none when not root)."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        _unavailable("running as root and there is no 'postgres' user to run the server as")
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


class PostgresServer:
    """One ``postgres`` cluster and server; ``url`` addresses it, ``stop()`` ends it."""

    def __init__(self) -> None:
        bindir = _bindir()
        if bindir is None:
            _unavailable("no initdb/postgres binaries (PATH, /usr/lib/postgresql/*/bin)")
        try:
            import psycopg  # noqa: F401
        except ImportError:
            _unavailable("psycopg is not installed")
        assert bindir is not None
        self.bindir = bindir
        self.as_user = _run_as()
        # Not under pytest's tmp dir: that is private to root, and the server may run as postgres.
        self.workdir = Path(tempfile.mkdtemp(prefix="tracker-pg-"))
        if self.as_user:
            os.chown(self.workdir, self.as_user["user"], self.as_user["group"])
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._initdb()
        for _attempt in range(3):  # another process may take the free port before we bind it
            if self._start():
                return
        pytest.fail(f"postgres did not start; see {self.workdir / 'postgres.log'}", pytrace=False)

    def _initdb(self) -> None:
        cmd = [str(self.bindir / "initdb"), "-D", str(self.workdir / "data"), "-U", "tracker"]
        cmd += ["--auth=trust", "--encoding=UTF8", "--no-sync", "--locale=C"]
        done = subprocess.run(cmd, capture_output=True, check=False, **self.as_user)
        if done.returncode != 0:
            pytest.fail(f"initdb failed: {done.stderr.decode(errors='replace')}", pytrace=False)

    def _start(self) -> bool:
        self.port = _free_port()
        log = open(self.workdir / "postgres.log", "ab")  # noqa: SIM115 - the server writes it
        cmd = [str(self.bindir / "postgres"), "-D", str(self.workdir / "data")]
        cmd += ["-p", str(self.port), "-c", "listen_addresses=127.0.0.1"]
        cmd += ["-c", f"unix_socket_directories={self.workdir}", "-c", "fsync=off"]
        cmd += ["-c", "full_page_writes=off", "-c", "synchronous_commit=off"]
        self.process = subprocess.Popen(cmd, stdout=log, stderr=log, **self.as_user)
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._ready():
                return True
            if self.process.poll() is not None:
                return False
            time.sleep(0.05)
        self.stop()
        return False

    def _ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url, connect_timeout=1) as conn:
                # Another run's server may have taken the port first (ours then exits): ours
                # is the one serving our data directory.
                shown = conn.execute("SHOW data_directory").fetchone()
                return shown is not None and str(self.workdir / "data") == shown[0]
        except psycopg.OperationalError:
            return False

    @property
    def url(self) -> str:
        """The ``postgresql://`` URL of the cluster's ``postgres`` database."""
        return f"postgresql://tracker@127.0.0.1:{self.port}/postgres"

    def reset(self) -> None:
        """Drop the store's tables, so each test starts from nothing."""
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"DROP TABLE IF EXISTS {', '.join(_TABLES)}")

    def stop(self) -> None:
        """Stop the server (fast shutdown), wait for it, and remove its directory."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real postgres for the session (skips, or fails under TRACKER_REQUIRE_POSTGRES)."""
    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The URL of an emptied database on the session's postgres server."""
    postgres_server.reset()
    return postgres_server.url
