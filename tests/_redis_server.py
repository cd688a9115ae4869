"""A real ``redis-server`` on a free loopback port, for the Redis store tests.

Never a mock: the tests start Debian's ``redis-server`` binary themselves. Without one (or
without redis-py) the Redis tests skip and say why; with ``TRACKER_REQUIRE_REDIS=1`` (set by
``.ci/run``) they fail instead, so CI cannot pass with the Redis tests silently skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

_INSTALL = "install it (Debian: apt-get install redis-server; redis-py: pip install redis)"


def _unavailable(reason: str) -> None:
    if os.environ.get("TRACKER_REQUIRE_REDIS") == "1":
        pytest.fail(f"TRACKER_REQUIRE_REDIS=1 but {reason}", pytrace=False)
    pytest.skip(f"Redis tests skipped: {reason}; {_INSTALL}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process; ``url(db)`` addresses it, ``stop()`` ends it."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            _unavailable("no redis-server on PATH")
        try:
            import redis  # noqa: F401
        except ImportError:
            _unavailable("redis-py is not installed")
        self.workdir = workdir
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        for _attempt in range(3):  # another process may take the free port before we bind it
            if self._start(str(binary)):
                return
        pytest.fail(f"redis-server did not start; see {workdir / 'redis.log'}", pytrace=False)

    def _start(self, binary: str) -> bool:
        self.port = _free_port()
        log = self.workdir / "redis.log"
        cmd = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        cmd += ["--appendonly", "no", "--dir", str(self.workdir), "--logfile", str(log)]
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if _ping(self.port):
                if self._answering_is_ours():
                    return True
                # Another run's server took the port first (ours exits): the ping reached it,
                # and flush() would have emptied its databases. Try another port.
                break
            if self.process.poll() is not None:
                return False
            time.sleep(0.02)
        self.stop()
        return False

    def _answering_is_ours(self) -> bool:
        """Whether the redis-server answering on ``port`` is the process this object started."""
        import redis

        assert self.process is not None
        with redis.Redis(port=self.port, socket_timeout=10) as client:
            return int(client.info("server")["process_id"]) == self.process.pid

    def url(self, db: int = 0) -> str:
        """The ``redis://`` URL of database ``db`` on this server."""
        return f"redis://127.0.0.1:{self.port}/{db}"

    def flush(self) -> None:
        """Empty every database, so each test starts from nothing."""
        import redis

        with redis.Redis(port=self.port) as client:
            client.flushall()

    def stop(self) -> None:
        """Terminate the server and wait for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server for the whole session (skips, or fails under TRACKER_REQUIRE_REDIS)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The URL of an emptied database on the session's redis-server."""
    redis_server.flush()
    return redis_server.url()
