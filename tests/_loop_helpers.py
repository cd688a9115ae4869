"""Tools and prompts shared by the loop and demo tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracker.loop import RetryPolicy

PROMPT = 'weather({"city": "Paris"}) weather({"city": "Rome"}) then add({"a": 2, "b": 3})'
ANSWER = "Done. weather -> sunny in Paris; weather -> sunny in Rome; add -> 5"
NO_WAIT = RetryPolicy(initial_delay=0.0, jitter=0.0)


def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


TOOLS: list[Any] = [weather, add]


def counting_weather(ran: list[str]) -> Callable[[str], str]:
    """A ``weather`` tool that appends each city it is asked about to ``ran``."""

    def weather(city: str) -> str:
        """Weather, counting its runs."""
        ran.append(city)
        return f"sunny in {city}"

    return weather


def request_bodies(emulator: Any) -> list[dict[str, Any]]:
    """The bodies of every POST /v1/responses the emulator received."""
    return list(emulator.requests_to("/v1/responses"))
