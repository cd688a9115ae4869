"""MCP approvals in the loop: ask ``on_approval`` about each ``mcp_approval_request``.

A response may stop to ask the client's approval before the server runs an MCP tool: an
``mcp_approval_request`` item (``id`` ``mcpr_...``, ``name``, ``arguments``, ``server_label``).
The next request must carry an ``mcp_approval_response`` for it (``approval_request_id``,
``approve``, optional ``reason``), or the service answers 400 ``The following MCP approval
requests do not have an approval: mcpr_...`` (rule M1). With ``on_approval`` the loop asks the
callable about each request (in output order), sends the answers with the next request, like
tool outputs, and goes on; without it the turn ends with the requests pending (they are in
``TurnResult.responses``): answer them in the next turn's ``input``. Tool calls made beside
them are run first and their outputs kept in ``TurnResult.outputs`` (a request carrying them
without the answers would be refused, M1): pass them with the answers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs

from tracker._errors import UsageError
from tracker._items import field

__all__ = ["ApprovalHandler", "AskApproval", "approval_requests", "approval_responses"]

#: ``on_approval(request) -> bool`` (approve?) or ``(bool, reason)``; may be async in
#: ``arun_turn``. ``request`` is the ``mcp_approval_request`` item as the response gave it.
ApprovalHandler = Callable[[Any], Any]

REQUEST = "mcp_approval_request"


@attrs.frozen
class AskApproval:
    """Ask ``decide`` about each request, in order; send back the answers (awaited if async)."""

    requests: tuple[Any, ...]
    decide: ApprovalHandler


def approval_requests(output: Sequence[Any]) -> list[Any]:
    """The ``mcp_approval_request`` items of a response's output, in order."""
    return [item for item in output if field(item, "type") == REQUEST]


def _answer(request: Any, answer: Any) -> dict[str, Any]:
    request_id = field(request, "id")
    reason: Any = None
    if isinstance(answer, tuple) and len(answer) == 2:
        answer, reason = answer
    if type(answer) is not bool or not (reason is None or isinstance(reason, str)):
        raise UsageError(
            f"on_approval must return True / False or (approve, reason) for MCP approval "
            f"request {request_id} (tool {field(request, 'name')!r}); it returned "
            f"{answer!r}" + ("" if reason is None else f" with reason {reason!r}") + "."
        )
    response: dict[str, Any] = {
        "type": "mcp_approval_response",
        "approval_request_id": request_id,
        "approve": answer,
    }
    if reason:
        response["reason"] = reason
    return response


def approval_responses(requests: Sequence[Any], answers: Sequence[Any]) -> list[dict[str, Any]]:
    """The ``mcp_approval_response`` items for ``on_approval``'s answers; ``UsageError``
    naming the request when an answer is neither a bool nor ``(bool, reason)``."""
    return [_answer(request, answer) for request, answer in zip(requests, answers, strict=True)]
