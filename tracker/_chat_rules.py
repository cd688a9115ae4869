"""Chat Completions' tool-message rules (``CHAT_*`` codes, tabled in ``tracker._rules``): each
assistant ``tool_calls`` message must be followed directly by its tool messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._items import field
from ._rule_options import RuleOptions, Violation

__all__ = ["check_chat"]


def _chat_tool_call_ids(message: Any) -> list[str]:
    calls = field(message, "tool_calls") or []
    ids: list[str] = []
    for call in calls:
        call_id = field(call, "id")
        if isinstance(call_id, str):
            ids.append(call_id)
    return ids


def check_chat(messages: Sequence[Any], options: RuleOptions | None = None) -> list[Violation]:
    """Check Chat Completions ``messages`` against the tool-message rules.

    Each assistant message with ``tool_calls`` must be followed directly by one tool message
    per ``tool_call_id``; a tool message must answer the assistant message right before its
    run of tool messages. Violations come in message order.
    """
    del options  # no chat rule is switchable yet; the parameter keeps one signature for both
    out: list[Violation] = []
    open_ids: list[str] | None = None  # ids of the assistant message the current run answers
    open_index = 0
    answered: set[str] = set()

    def close_run() -> None:
        nonlocal open_ids
        if open_ids is not None:
            missing = [c for c in open_ids if c not in answered]
            if missing:
                out.append(
                    Violation(
                        rule="CHAT_UNANSWERED",
                        status=400,
                        message=(
                            "An assistant message with 'tool_calls' must be followed by tool "
                            "messages responding to each 'tool_call_id'. The following "
                            f"tool_call_ids did not have response messages: {', '.join(missing)}"
                        ),
                        param=f"messages.[{open_index}].role",
                        code=None,
                        index=open_index,
                        call_id=missing[0],
                    )
                )
        open_ids = None

    for i, message in enumerate(messages):
        role = field(message, "role")
        if role == "tool":
            tool_call_id = field(message, "tool_call_id")
            if open_ids is None:
                out.append(
                    Violation(
                        rule="CHAT_ORPHAN_TOOL",
                        status=400,
                        message=(
                            "Invalid parameter: messages with role 'tool' must be a response "
                            "to a preceeding message with 'tool_calls'."
                        ),
                        param=f"messages.[{i}].role",
                        code=None,
                        index=i,
                        call_id=tool_call_id if isinstance(tool_call_id, str) else None,
                    )
                )
            elif tool_call_id not in open_ids:
                out.append(
                    Violation(
                        rule="CHAT_UNKNOWN_TOOL_CALL_ID",
                        status=400,
                        message=(
                            f"Invalid parameter: 'tool_call_id' of '{tool_call_id}' not found "
                            "in 'tool_calls' of previous message."
                        ),
                        param=f"messages.[{i}].tool_call_id",
                        code=None,
                        index=i,
                        call_id=tool_call_id if isinstance(tool_call_id, str) else None,
                    )
                )
            elif isinstance(tool_call_id, str):
                answered.add(tool_call_id)
            continue
        close_run()
        tool_calls = field(message, "tool_calls")
        if role == "assistant" and tool_calls is not None:
            if isinstance(tool_calls, list) and not tool_calls:
                out.append(
                    Violation(
                        rule="CHAT_EMPTY_TOOL_CALLS",
                        status=400,
                        message=(
                            f"Invalid 'messages[{i}].tool_calls': empty array. Expected an array "
                            "with minimum length 1, but got an empty array instead."
                        ),
                        param=f"messages[{i}].tool_calls",
                        code="empty_array",
                        index=i,
                    )
                )
                continue
            open_ids = _chat_tool_call_ids(message)
            open_index = i
            answered = set()
    close_run()
    return out
