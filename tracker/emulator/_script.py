"""The emulator's deterministic "model": the default script and the script protocol.

A script is any callable ``script(context, request) -> list[dict]``. ``context`` is a
``Sequence`` (not always a ``list``: on a long chain, a view that copies an item when it is
read, so read it from the end) of the resolved context as plain dicts in their stored form
(chain or conversation items, then the request input; messages always have ``type`` and a
list ``content``; after a compaction, the window with each compaction item replaced by what it
summarises), ``request`` the request body. It returns output items *without* ids: the
emulator assigns ``msg_``/``fc_``/``rs_`` ids, fills ``call_id`` on calls that lack one, and
sets ``status``. Shorthands accepted in the returned list: a ``str`` is an assistant text
message. A final ``{"type": "incomplete", "reason": "content_filter"}`` ends the response
``incomplete`` with that reason, the items before it as its output (``_incomplete``).

The default script reads the latest user message. Tool requests are written
``name({json args})`` or ``name()`` for declared function tools; rounds are separated by
`` then ``. It emits round k+1 when the context after that user message holds k answered
rounds of calls, and one assistant text message listing the outputs once all are answered.
Reasoning models (name containing ``reason``, or ``reasoning`` set) emit a ``reasoning`` item
before each round and before the final message. Without tool requests it echoes the user text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeAlias

__all__ = [
    "Script",
    "approval_script",
    "default_script",
    "is_reasoning_request",
    "message_text",
    "parse_rounds",
]

#: The script protocol: (context items, request body) -> output items.
Script: TypeAlias = Callable[[Sequence[Mapping[str, Any]], Mapping[str, Any]], Sequence[Any]]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")


def message_text(item: Mapping[str, Any]) -> str:
    """The text of a message item: its string content, or its text parts joined by spaces."""
    content = item.get("content")
    if isinstance(content, str):
        return content
    parts: list[str] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
    return " ".join(parts)


def output_text(output: Any) -> str:
    """A tool output (string or list of parts) as text."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return message_text({"content": output})
    return json.dumps(output)


def _parse_call(text: str, start: int, names: set[str]) -> tuple[tuple[str, str], int] | None:
    match = _NAME.match(text, start)
    if match is None or match.group() not in names:
        return None
    pos = match.end()
    if not text.startswith("(", pos):
        return None
    pos += 1
    while pos < len(text) and text[pos].isspace():
        pos += 1
    if text.startswith(")", pos):
        return (match.group(), "{}"), pos + 1
    try:
        args, end = json.JSONDecoder().raw_decode(text, pos)
    except ValueError:
        return None
    while end < len(text) and text[end].isspace():
        end += 1
    if not text.startswith(")", end) or not isinstance(args, dict):
        return None
    return (match.group(), json.dumps(args)), end + 1


def parse_rounds(text: str, tool_names: set[str]) -> list[list[tuple[str, str]]]:
    """Parse ``a({...}) b() then c()`` into rounds of ``(name, json arguments)``."""
    rounds: list[list[tuple[str, str]]] = []
    for chunk in text.split(" then "):
        calls: list[tuple[str, str]] = []
        pos = 0
        while pos < len(chunk):
            boundary = pos == 0 or not (chunk[pos - 1].isalnum() or chunk[pos - 1] in "_.-")
            parsed = _parse_call(chunk, pos, tool_names) if boundary else None
            if parsed is None:
                pos += 1
                continue
            call, pos = parsed
            calls.append(call)
        if calls:
            rounds.append(calls)
    return rounds


def is_reasoning_request(request: Mapping[str, Any]) -> bool:
    """Whether the request asks a reasoning model (name contains ``reason``, or ``reasoning``)."""
    model = request.get("model")
    return (isinstance(model, str) and "reason" in model) or request.get("reasoning") is not None


def _tool_names(request: Mapping[str, Any]) -> set[str]:
    names: set[str] = set()
    for tool in request.get("tools") or []:
        if not isinstance(tool, Mapping) or tool.get("type") != "function":
            continue
        name = tool.get("name")
        if name is None and isinstance(tool.get("function"), Mapping):
            name = tool["function"].get("name")  # Chat Completions tool shape
        if isinstance(name, str):
            names.add(name)
    return names


def _reasoning(text: str) -> dict[str, Any]:
    return {"type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}


def default_script(
    context: Sequence[Mapping[str, Any]], request: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The default scripted model (see the module docstring)."""
    last_user = -1
    for i in range(len(context) - 1, -1, -1):  # from the end: a long context costs one turn
        item = context[i]
        if item.get("type", "message") == "message" and item.get("role") == "user":
            last_user = i
            break
    user_text = message_text(context[last_user]) if last_user >= 0 else ""
    reasoning = is_reasoning_request(request)
    rounds = parse_rounds(user_text, _tool_names(request))
    out: list[dict[str, Any]] = []
    if not rounds:
        if reasoning:
            out.append(_reasoning("The user made no tool request; answering directly."))
        out.append({"type": "message", "text": f"You said: {user_text}"})
        return out
    after = context[last_user + 1 :]
    calls = [c for c in after if c.get("type") == "function_call"]
    outputs = {
        c.get("call_id"): c.get("output") for c in after if c.get("type") == "function_call_output"
    }
    done = 0
    issued = len(calls)
    while done < len(rounds) and issued >= len(rounds[done]):
        issued -= len(rounds[done])
        done += 1
    if done < len(rounds):
        todo = rounds[done]
        if reasoning:
            names = ", ".join(name for name, _ in todo)
            out.append(_reasoning(f"Round {done + 1} of {len(rounds)}: calling {names}."))
        out.extend({"type": "function_call", "name": n, "arguments": a} for n, a in todo)
        return out
    results = "; ".join(
        f"{c.get('name')} -> {output_text(outputs.get(c.get('call_id'), ''))}" for c in calls
    )
    if reasoning:
        out.append(_reasoning("All tool calls are answered; writing the final answer."))
    out.append({"type": "message", "text": f"Done. {results}"})
    return out


def approval_script(
    name: str, arguments: str = "{}", *, server_label: str = "mcp", then: Script = default_script
) -> Script:
    """A script whose model asks approval to run the MCP tool ``name`` once per user turn.

    After the latest user message it emits an ``mcp_approval_request`` (the emulator gives it
    an ``mcpr_`` id) until the context holds an ``mcp_approval_response`` for it; then it
    answers ``"MCP tool <name> approved."`` (or ``denied``, with the reason if one was given).
    Other turns, with no approval to ask, are left to ``then``.
    """

    def script(context: Sequence[Mapping[str, Any]], request: Mapping[str, Any]) -> Sequence[Any]:
        last_user = next(
            (i for i in range(len(context) - 1, -1, -1) if context[i].get("role") == "user"), -1
        )
        after = context[last_user + 1 :]
        asked = [c.get("id") for c in after if c.get("type") == "mcp_approval_request"]
        if not asked:
            return [
                {
                    "type": "mcp_approval_request",
                    "name": name,
                    "arguments": arguments,
                    "server_label": server_label,
                }
            ]
        for item in after:
            if (
                item.get("type") == "mcp_approval_response"
                and item.get("approval_request_id") in asked
            ):
                verdict = "approved" if item.get("approve") is True else "denied"
                reason = item.get("reason")
                suffix = f" ({reason})" if isinstance(reason, str) and reason else ""
                return [f"MCP tool {name} {verdict}{suffix}."]
        return then(context, request)

    return script
