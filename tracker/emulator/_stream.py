"""SSE event sequences, built from a finished response (the state change already happened).

Responses: ``response.created`` (in_progress, empty output) -> ``response.in_progress`` ->
per output item ``output_item.added`` ... ``output_item.done`` (reasoning summary parts,
message content parts and text deltas, function-call argument deltas; a compaction item is
announced by ``response.compaction.compacting`` first) -> ``response.completed`` (or
``response.incomplete`` / ``response.failed`` for a response with that status).
Each event carries ``sequence_number`` from 0. No ``[DONE]`` sentinel (Chat Completions has one).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

__all__ = ["chat_chunks", "chunks", "response_events"]

_TERMINAL = {"failed": "response.failed", "incomplete": "response.incomplete"}
_DELTA = 12  # characters per delta: small enough that every reply streams in several pieces


def chunks(text: str, size: int = _DELTA) -> Iterator[str]:
    """``text`` in pieces of ``size`` characters (nothing for an empty string)."""
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _item_events(item: dict[str, Any], index: int) -> Iterator[dict[str, Any]]:
    item_type = item.get("type")
    item_id = item.get("id")
    added = copy.deepcopy(item)
    if item_type == "message":
        added.update(status="in_progress", content=[])
    elif item_type == "function_call":
        added.update(status="in_progress", arguments="")
    elif item_type == "reasoning":
        added["summary"] = []
        added.pop("encrypted_content", None)
    yield {"type": "response.output_item.added", "output_index": index, "item": added}
    if item_type == "message":
        for c, part in enumerate(item.get("content") or []):
            text = part.get("text", "")
            empty = {**part, "text": ""} if part.get("type") == "output_text" else part
            base = {"item_id": item_id, "output_index": index, "content_index": c}
            yield {"type": "response.content_part.added", **base, "part": empty}
            if part.get("type") == "output_text":
                for delta in chunks(text):
                    yield {
                        "type": "response.output_text.delta",
                        **base,
                        "delta": delta,
                        "logprobs": [],
                    }
                yield {"type": "response.output_text.done", **base, "text": text, "logprobs": []}
            yield {"type": "response.content_part.done", **base, "part": part}
    elif item_type == "function_call":
        base = {"item_id": item_id, "output_index": index}
        arguments = item.get("arguments", "")
        for delta in chunks(arguments):
            yield {"type": "response.function_call_arguments.delta", **base, "delta": delta}
        yield {
            "type": "response.function_call_arguments.done",
            **base,
            "arguments": arguments,
            "name": item.get("name"),
        }
    elif item_type == "reasoning":
        for s, part in enumerate(item.get("summary") or []):
            text = part.get("text", "")
            base = {"item_id": item_id, "output_index": index, "summary_index": s}
            yield {
                "type": "response.reasoning_summary_part.added",
                **base,
                "part": {"type": "summary_text", "text": ""},
            }
            for delta in chunks(text):
                yield {"type": "response.reasoning_summary_text.delta", **base, "delta": delta}
            yield {"type": "response.reasoning_summary_text.done", **base, "text": text}
            yield {"type": "response.reasoning_summary_part.done", **base, "part": part}
    yield {"type": "response.output_item.done", "output_index": index, "item": item}


def response_events(response: dict[str, Any], *, queued: bool = False) -> list[dict[str, Any]]:
    """The full event sequence for a completed response, numbered from 0.

    ``queued`` (a background response): it is created ``queued`` and a ``response.queued``
    event comes before ``response.in_progress``.
    """
    start = {
        **copy.deepcopy(response),
        "status": "in_progress",
        "output": [],
        "usage": None,
        "completed_at": None,
    }
    events: list[dict[str, Any]] = []
    if queued:
        waiting = {**start, "status": "queued"}
        events += [
            {"type": "response.created", "response": waiting},
            {"type": "response.queued", "response": waiting},
        ]
    else:
        events.append({"type": "response.created", "response": start})
    events.append({"type": "response.in_progress", "response": start})
    for index, item in enumerate(response.get("output") or []):
        if item.get("type") == "compaction":
            compacting = {"item_id": item.get("id"), "output_index": index}
            events.append({"type": "response.compaction.compacting", **compacting})
        events.extend(_item_events(item, index))
    # The SDK has terminal events for failed and incomplete; none for cancelled, so a replayed
    # cancelled response ends with response.completed carrying its status [INF].
    terminal = _TERMINAL.get(str(response.get("status")), "response.completed")
    events.append({"type": terminal, "response": response})
    return [{**event, "sequence_number": n} for n, event in enumerate(events)]


def chat_chunks(completion: dict[str, Any]) -> list[dict[str, Any]]:
    """``chat.completion.chunk`` objects for a finished chat completion (no ``[DONE]``)."""
    choice = completion["choices"][0]
    message = choice["message"]
    base = {
        "id": completion["id"],
        "object": "chat.completion.chunk",
        "created": completion["created"],
        "model": completion["model"],
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **base,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    out = [chunk({"role": "assistant", "content": ""})]
    for piece in chunks(message.get("content") or ""):
        out.append(chunk({"content": piece}))
    for i, call in enumerate(message.get("tool_calls") or []):
        fn = call["function"]
        out.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": i,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": fn["name"], "arguments": ""},
                        }
                    ]
                }
            )
        )
        for piece in chunks(fn["arguments"]):
            out.append(chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
    out.append(chunk({}, choice["finish_reason"]))
    return out
