"""A turn's first items (outputs for the calls left pending, then the user's input), the
input's stable key, and reading a response's output, text and failure."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from tracker._errors import UsageError
from tracker._fingerprint import fingerprint
from tracker._items import CALL_TO_OUTPUT, field, read_item
from tracker._repair_actions import placeholder_text
from tracker._tracker import Tracker

from ._results import ResponseFailedError


def _output_items(response: Any) -> list[Any]:
    output = field(response, "output")
    return list(output) if output else []


def final_text(output: Sequence[Any]) -> str:
    """The text of the assistant messages in ``output`` (what ``Response.output_text`` gives)."""
    parts: list[str] = []
    for item in output:
        if field(item, "type") == "message" and field(item, "role") == "assistant":
            for part in field(item, "content") or ():
                if field(part, "type") == "output_text":
                    parts.append(field(part, "text") or "")
    return "".join(parts)


def _raise_if_failed(response: Any) -> None:
    if field(response, "status") != "failed":
        return
    error = field(response, "error")
    code = field(error, "code") if error is not None else None
    message = field(error, "message") if error is not None else None
    response_id = field(response, "id")
    said = str(message or "no message").rstrip(". ")
    raise ResponseFailedError(
        f"Response {response_id} failed ({code}): {said}. The tracker never observed it, so "
        "nothing chains from it and the request's input is sent again by a retry or the next "
        "turn.",
        code=code,
        response_id=response_id,
    )


def _as_items(user_input: Any) -> list[Any]:
    """The user's input as new item objects.

    Copied, so an object the tracker already sent (a constant "continue" message reused as a
    later turn) is still new input: prepare() would skip the held object itself.
    """
    if isinstance(user_input, str):
        return [{"role": "user", "content": user_input}]
    if isinstance(user_input, Mapping) or hasattr(user_input, "type"):
        return [copy.copy(user_input)]
    return [copy.copy(item) for item in user_input]


def input_key(user_input: Any) -> str:
    """A stable key of the user's input: the same input, in any process, gives the same key."""
    return ",".join(fingerprint(item) for item in _as_items(user_input))


def _unanswered_approval(request_id: str) -> UsageError:
    """A pending MCP approval request (keyed by its own ``mcpr_`` id, unlike a tool call) that
    the turn's input does not answer: the loop never invents an approval."""
    answer = {"type": "mcp_approval_response", "approval_request_id": request_id, "approve": True}
    return UsageError(
        f"MCP approval request {request_id} is still pending and the loop never answers one "
        f"on its own: pass the answer in this turn's input ([{answer!r}], approve True or "
        "False), or on_approval=... to the turn that receives the request."
    )


def _placeholder(tracker: Tracker, call_id: str) -> dict[str, Any]:
    """The placeholder output of a pending call, of its call's output type; ``UsageError``
    for a call no placeholder can answer (an approval request, a shell or computer call ...)."""
    call_type = tracker.call_type(call_id) or "function_call"
    if call_type == "mcp_approval_request":
        raise _unanswered_approval(call_id)
    if call_type not in ("function_call", "custom_tool_call"):
        raise UsageError(
            f"Call {call_id} ({call_type}) is still pending and the loop has no placeholder "
            f"for it: pass its {CALL_TO_OUTPUT[call_type]} (call_id {call_id!r}) in this "
            "turn's input."
        )
    return {
        "type": CALL_TO_OUTPUT[call_type],
        "call_id": call_id,
        "output": placeholder_text(call_id),
    }


def _turn_input(
    tracker: Tracker, user_input: Any, carried: Sequence[Mapping[str, Any]], resume: bool
) -> tuple[list[Any], int]:
    """The turn's first items: outputs for the pending calls, then the user's input.

    A pending call gets its ``carried`` output (computed by an interrupted turn) if there is
    one, else a placeholder. ``resume``: the server already holds the input; not sent again.
    """
    # Resuming needs something to send; with no call left pending, serve the input afresh.
    resume = resume and bool(tracker.pending_call_ids)
    items = [] if resume else _as_items(user_input)
    answered = {info.call_id for info in map(read_item, items) if info.is_output}
    saved = {read_item(output).call_id: output for output in carried}  # approvals: by request
    first: list[Any] = []
    for call_id in tracker.pending_call_ids:
        if call_id not in answered:
            output = saved.get(call_id)
            first.append(dict(output) if output is not None else _placeholder(tracker, call_id))
    abandoned = sum(1 for item in first if read_item(item).call_id not in saved)
    return first + items, abandoned
