"""Repair Chat Completions ``messages``: each ``tool_calls`` message followed by its results.

Chat Completions, unlike Responses, wants every tool message *directly* after the assistant
message that made the call. Two passes pair calls (owned by the first assistant message that
carries their id) and tool messages by id; one more writes the list, emitting each assistant
message followed by its block of results: those already there, then the moved ones, then any
placeholders, each in original order. All other messages keep their order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._items import field, to_plain
from ._repair_actions import PLACEHOLDER, RepairAction, RepairPolicy, by_index, placeholder_text

__all__ = ["repair_chat"]


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _has_content(message: Any) -> bool:
    content = field(message, "content")
    return content is not None and content not in ("", [])


def repair_chat(
    messages: Sequence[Any], policy: RepairPolicy
) -> tuple[list[Any], tuple[RepairAction, ...]]:
    """Repair a Chat Completions ``messages`` list; see ``tracker.repair_history``."""
    roles = [field(m, "role") for m in messages]
    actions: list[RepairAction] = []

    # Pass 1: calls. calls[i][pos] is the id of tool_calls[pos] of message i, "" for a call
    # that repeats an id already owned (dropped), None for a call with no id (left alone).
    owner: dict[str, int] = {}
    calls: dict[int, list[str | None]] = {}
    for i, message in enumerate(messages):
        tool_calls = field(message, "tool_calls") if roles[i] == "assistant" else None
        if not isinstance(tool_calls, list | tuple):
            continue
        ids: list[str | None] = []
        for tool_call in tool_calls:
            call_id = _str_or_none(field(tool_call, "id"))
            if call_id is not None and call_id in owner:
                ids.append("")
                actions.append(
                    RepairAction("drop_duplicate_call", i, call_id, None, "id already used")
                )
            else:
                if call_id is not None:
                    owner[call_id] = i
                ids.append(call_id)
        calls[i] = ids

    # Where the run of tool messages that starts at each index ends (exclusive).
    run_stop = [len(messages)] * (len(messages) + 1)
    for i in range(len(messages) - 1, -1, -1):
        run_stop[i] = run_stop[i + 1] if roles[i] == "tool" else i

    def in_place(t: int, call_id: str) -> bool:
        at = owner[call_id]
        return at < t < run_stop[at + 1]

    # Pass 2: results. Each call keeps one: the first in place, else the first.
    keep: dict[str, int] = {}
    for t, role in enumerate(roles):
        call_id = _str_or_none(field(messages[t], "tool_call_id")) if role == "tool" else None
        if call_id is None or call_id not in owner:
            continue
        current = keep.get(call_id)
        if current is None or (not in_place(current, call_id) and in_place(t, call_id)):
            keep[call_id] = t
    staying: dict[int, list[int]] = {}
    moving: dict[int, list[int]] = {}
    for t, role in enumerate(roles):
        if role != "tool":
            continue
        call_id = _str_or_none(field(messages[t], "tool_call_id"))
        if call_id is None or call_id not in owner:
            actions.append(
                RepairAction("drop_orphan_output", t, call_id, None, "no call with this call_id")
            )
        elif keep[call_id] != t:
            actions.append(
                RepairAction("drop_duplicate_output", t, call_id, None, "the call keeps one output")
            )
        elif in_place(t, call_id):
            staying.setdefault(owner[call_id], []).append(t)
        else:
            moving.setdefault(owner[call_id], []).append(t)
            detail = f"moved after its call [{owner[call_id]}]"
            actions.append(RepairAction("move_output", t, call_id, None, detail))

    out: list[Any] = []
    for i, message in enumerate(messages):
        if roles[i] == "tool":
            continue  # results are written in their call's block
        if i not in calls:
            out.append(message)
            continue
        ids = calls[i]
        missing = [pos for pos, c in enumerate(ids) if c and c not in keep]
        remove = {pos for pos, c in enumerate(ids) if c == ""}
        if policy != PLACEHOLDER:
            remove.update(missing)
            actions.extend(
                RepairAction("drop_call", i, ids[pos], None, "the call had no output")
                for pos in missing
            )
        kept = _without_calls(message, remove, i, actions)
        if kept is None:
            continue
        out.append(kept)
        out.extend(messages[t] for t in staying.get(i, ()))
        out.extend(messages[t] for t in moving.get(i, ()))
        if policy == PLACEHOLDER:
            tool_calls = field(message, "tool_calls")
            for pos in missing:
                call_id = ids[pos]
                assert call_id  # missing holds only calls with an id
                name = field(field(tool_calls[pos], "function"), "name")
                text = placeholder_text(call_id, name if isinstance(name, str) else None)
                out.append({"role": "tool", "tool_call_id": call_id, "content": text})
                actions.append(
                    RepairAction("add_placeholder", i, call_id, None, "the call had no output")
                )
    actions.sort(key=by_index)
    return out, tuple(actions)


def _without_calls(
    message: Any, remove: set[int], index: int, actions: list[RepairAction]
) -> Any | None:
    """The message without the tool calls at ``remove``; ``None`` if nothing is left of it."""
    tool_calls = field(message, "tool_calls")
    if tool_calls and not remove:
        return message
    plain = dict(to_plain(message, index))
    left = [c for pos, c in enumerate(plain.get("tool_calls") or ()) if pos not in remove]
    if left:
        plain["tool_calls"] = left
        return plain
    del plain["tool_calls"]
    if not tool_calls:
        actions.append(RepairAction("drop_empty_tool_calls", index, None, None, "tool_calls: []"))
    if _has_content(plain) or field(plain, "refusal") or field(plain, "audio"):
        return plain
    actions.append(RepairAction("drop_message", index, None, None, "no content and no calls left"))
    return None
