"""Reasoning inputs the emulator withholds from its model: ``Response.input_transformations``.

The service may drop reasoning input items instead of rendering them to the model, and says so
on the response: ``input_transformations``, "Reasoning inputs withheld from the model, in input
order", each ``{"id": <the reasoning item id>, "action": "removed", "reason": ..., "type":
"reasoning"}``, reason one of ``organization_mismatch``, ``end_user_mismatch``,
``model_mismatch``, ``prefix_mismatch``, ``turn_boundary`` (openai SDK 3.50+, ``response.py``
[DOC]). The emulator models the one case it can decide from the request alone:
``reasoning.context: "current_turn"`` ("controls which reasoning items are rendered back to the
model on later turns", SDK ``Reasoning.context`` [DOC]) withholds every reasoning item of the
request's input that comes before the latest user message of the context, with reason
``turn_boundary``. Pairing that setting with that reason is our inference [INF]; the other
reasons need facts the emulator does not track (organisations, end users, the model that wrote
an item). Reasoning items the chain or conversation holds are not the request's input and are
not reported. The scripted model reads no reasoning, so nothing else changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["withheld_reasoning"]


def withheld_reasoning(
    body: Mapping[str, Any], context: Sequence[Mapping[str, Any]], input_count: int
) -> list[dict[str, Any]]:
    """The ``input_transformations`` of a request whose resolved input is the last
    ``input_count`` items of ``context``; empty unless ``reasoning.context`` is
    ``"current_turn"``."""
    reasoning = body.get("reasoning")
    if not isinstance(reasoning, Mapping) or reasoning.get("context") != "current_turn":
        return []
    users = [
        i
        for i, item in enumerate(context)
        if item.get("type", "message") == "message" and item.get("role") == "user"
    ]
    boundary = users[-1] if users else 0
    first_input = len(context) - input_count
    return [
        {"id": item["id"], "action": "removed", "reason": "turn_boundary", "type": "reasoning"}
        for item in context[first_input:boundary]
        if item.get("type") == "reasoning" and isinstance(item.get("id"), str)
    ]
