"""Fixtures shared across test modules."""

from collections.abc import AsyncIterator, Iterator

import pytest
from _redis_server import redis_server, redis_url  # noqa: F401 - real redis-server fixtures
from openai import AsyncOpenAI, OpenAI

from tracker.emulator import Emulator

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
    with OpenAI(base_url=emulator.base_url, api_key="test-key", max_retries=0) as c:
        yield c


@pytest.fixture
async def async_client(emulator: Emulator) -> AsyncIterator[AsyncOpenAI]:
    """A real ``openai.AsyncOpenAI`` client talking to ``emulator``; no retries."""
    async with AsyncOpenAI(base_url=emulator.base_url, api_key="test-key", max_retries=0) as c:
        yield c
