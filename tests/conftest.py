"""Fixtures shared across test modules.

The suite must stay under 3 minutes of wall time on 2 cores (`python3 dev.py test` runs one
pytest-xdist worker per core; session fixtures are per worker). Keep it so: talk to the
in-process emulator (`emulator` / `client`, or `shared_emulator` where accumulated state does
not matter), use the worker's `redis_server` (`redis_url` empties it), move an injected clock
instead of sleeping, and build items with `tests/_builders.py`. Start a Python process only
when the process boundary is what the test is about: each pays 1.5 s (openai) to 4.5 s
(openai-agents) of CPU just importing. Where the process need not be a new interpreter (a
worker restoring state from a store, a worker to SIGKILL), fork it with
`tests/_fresh.py`'s `FreshProcess` (milliseconds: openai, tracker, redis, psycopg preloaded).
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest
from _examples import examples
from _postgres_server import postgres_server, postgres_url  # noqa: F401 - real postgres
from _redis_server import redis_server, redis_url  # noqa: F401 - real redis-server fixtures
from hypothesis import HealthCheck, settings

from tracker.emulator import Emulator

if TYPE_CHECKING:  # imported by the fixtures: the xdist controller, which also loads this
    # file, never needs openai (an xdist worker has it already, from tests/_preload.py)
    from openai import AsyncOpenAI, OpenAI

# Property tests without a count of their own run the default 100 examples, scaled like the
# others (tests/_examples.py). No timing checks (the machine may be busy): Hypothesis' default
# 200 ms deadline per example and its too_slow health check (1 s of wall time to draw the first
# examples; with the cores busy, test_json_depth_from_bytes_matches_the_parsed_value failed
# with 'only generated 9 valid inputs after 1.03 seconds') are off.
settings.register_profile(
    "tracker",
    max_examples=examples(100),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("tracker")

# --- isolation for parallel runs (pytest-xdist: one process per worker) --------------------


@pytest.fixture(scope="session", autouse=True)
def _test_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The environment of this worker's tests and of the processes they start.

    - Its own ``$XDG_CACHE_HOME``: the demo's default store and emulator state live there, and
      neither the user's cache nor another worker's runs may be touched.
    - The system CA store as a directory (``SSL_CERT_DIR``) rather than one bundle file
      (``SSL_CERT_FILE``): with a file, every ``OpenAI()`` client parses the whole bundle when
      it is made (~40-90 ms of CPU, hundreds of times a run); a directory is read lazily, at a
      TLS handshake, which these tests never make (the emulator is plain HTTP on loopback).
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        ca_dir = ssl.get_default_verify_paths().capath
        if ca_dir and os.path.isdir(ca_dir):
            patch.delenv("SSL_CERT_FILE", raising=False)
            patch.setenv("SSL_CERT_DIR", ca_dir)
        yield


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that refuses connections for the whole test: bound, never listening.

    A port found free and closed again may be taken by another worker's server before the
    test connects; a bound socket keeps it (without SO_REUSEADDR nobody can share it).
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


# --- emulator fixtures (issue 3) ------------------------------------------------------------


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh, started emulator (default script and rules) for one test."""
    with Emulator(seed=1) as emu:
        yield emu


@pytest.fixture(scope="session")
def shared_emulator() -> Iterator[Emulator]:
    """One emulator for the whole session: cheaper, but state accumulates across tests."""
    with Emulator(seed=2) as emu:
        yield emu


@pytest.fixture
def client(emulator: Emulator) -> Iterator[OpenAI]:
    """A real ``openai.OpenAI`` client talking to ``emulator``; no retries."""
    from openai import OpenAI

    with OpenAI(base_url=emulator.base_url, api_key="test-key", max_retries=0) as c:
        yield c


@pytest.fixture
async def async_client(emulator: Emulator) -> AsyncIterator[AsyncOpenAI]:
    """A real ``openai.AsyncOpenAI`` client talking to ``emulator``; no retries."""
    from openai import AsyncOpenAI

    async with AsyncOpenAI(base_url=emulator.base_url, api_key="test-key", max_retries=0) as c:
        yield c
