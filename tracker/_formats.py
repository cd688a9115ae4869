"""Which history format a list of items is in: Responses input items or Chat messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, Literal

from ._items import CALL_TO_OUTPUT, field

__all__ = ["detect_api"]

_RESPONSES_ONLY_TYPES: Final = frozenset(
    [*CALL_TO_OUTPUT, *CALL_TO_OUTPUT.values(), "reasoning", "item_reference"]
)


def detect_api(items: Sequence[Any]) -> Literal["responses", "chat"]:
    """Guess whether ``items`` are Chat Completions messages or Responses input items.

    Chat: a ``tool`` role, a ``tool_calls`` member, or a message without ``type`` whose
    content parts are not Responses parts. Responses otherwise (also when nothing tells).
    """
    for item in items:
        if isinstance(item, Mapping):
            if item.get("role") == "tool" or "tool_calls" in item or "tool_call_id" in item:
                return "chat"
            if item.get("type") in _RESPONSES_ONLY_TYPES:
                return "responses"
        elif hasattr(item, "tool_calls"):
            return "chat"
        elif field(item, "type") in _RESPONSES_ONLY_TYPES:
            return "responses"
    return "responses"
