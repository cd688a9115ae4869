"""``POST /v1/chat/completions``: the chat tool-message rules, then the same scripted model.

Messages are translated to Responses-style items for the script (assistant ``tool_calls`` ->
``function_call``, ``tool`` messages -> ``function_call_output``) and the script's output back
to one assistant message. Nothing is stored: Chat Completions is stateless.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .._rules import RuleOptions, Violation, check_chat
from ._reply import Reply, error_reply
from ._schema import bad_request, invalid_type, missing
from ._script import Script, message_text
from ._state import State
from ._stream import chat_chunks

__all__ = ["create_chat_completion"]

_KEYS = frozenset(
    [
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "messages",
        "metadata",
        "modalities",
        "model",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "prompt_cache_key",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    ]
)


def _to_items(messages: list[Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role")
        if role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.get("tool_call_id"),
                    "output": message.get("content"),
                }
            )
            continue
        text = message_text(message)
        if text or role != "assistant":
            items.append({"type": "message", "role": role, "content": text})
        for call in message.get("tool_calls") or []:
            fn = call.get("function") or {}
            items.append(
                {
                    "type": "function_call",
                    "call_id": call.get("id"),
                    "name": fn.get("name"),
                    "arguments": fn.get("arguments", "{}"),
                }
            )
    return items


def _check_tool_calls(messages: list[Any]) -> Violation | None:
    """Each ``tool_calls`` is an array of objects whose ``function`` is an object."""
    for i, message in enumerate(messages):
        calls = message.get("tool_calls")
        if calls is None:
            continue
        where = f"messages[{i}].tool_calls"
        if not isinstance(calls, list):
            return invalid_type(where, "an array", calls)
        for j, call in enumerate(calls):
            if not isinstance(call, Mapping):
                return invalid_type(f"{where}[{j}]", "an object", call)
            if not isinstance(call.get("function"), Mapping):
                return invalid_type(f"{where}[{j}].function", "an object", call.get("function"))
    return None


def _check_request(body: Any, options: RuleOptions) -> Violation | None:
    """The first problem of a Chat Completions body: its shape, then the tool-message rules."""
    if not isinstance(body, Mapping):
        return invalid_type("body", "an object", body)
    if body.get("model") is None:
        return missing("model")
    if body.get("messages") is None:
        return missing("messages")
    for key in body:
        if key not in _KEYS:
            return bad_request(f"Unrecognized request argument supplied: {key}")
    messages = body["messages"]
    if not isinstance(messages, list) or not all(isinstance(m, Mapping) for m in messages):
        return invalid_type("messages", "an array of messages", messages)
    found = _check_tool_calls(messages)
    if found is not None:
        return found
    violations = check_chat(messages, options)
    return violations[0] if violations else None


def create_chat_completion(
    state: State, body: Any, *, script: Script, options: RuleOptions
) -> Reply:
    """Handle one ``POST /v1/chat/completions`` body."""
    found = _check_request(body, options)
    if found is not None:
        return error_reply(found)
    messages = body["messages"]
    output = list(script(_to_items(messages), body))
    with state.lock:
        completion_id = "chatcmpl-" + state.ids.hex(29)
        tool_calls = []
        text_parts: list[str] = []
        for raw in output:
            item = {"type": "message", "text": raw} if isinstance(raw, str) else raw
            if item.get("type") == "function_call":
                call_id = item.get("call_id") or state.ids.call_id()
                state.issued_calls.append(call_id)
                tool_calls.append(
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {
                            "name": item["name"],
                            "arguments": item.get("arguments", "{}"),
                        },
                    }
                )
            elif item.get("type", "message") == "message":
                text_parts.append(item.get("text") or message_text(item))
    message: dict[str, Any] = {
        "role": "assistant",
        "content": " ".join(text_parts) if text_parts else None,
        "refusal": None,
    }
    if tool_calls:
        message["tool_calls"] = tool_calls
    completion = {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if tool_calls else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": len(str(messages)) // 4,
            "completion_tokens": len(str(message)) // 4,
            "total_tokens": (len(str(messages)) + len(str(message))) // 4,
        },
    }
    if body.get("stream"):
        return Reply(events=chat_chunks(completion), named_events=False, sse_done=True)
    return Reply(body=completion)
