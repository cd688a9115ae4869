"""What a handler answers: a status, a JSON body or a list of SSE events, and headers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .._rules import Violation

__all__ = ["Reply", "error_reply", "page"]


@attrs.frozen
class Reply:
    """One HTTP answer. ``events`` (for SSE) replaces ``body`` when set.

    ``sse_done`` appends the Chat Completions ``data: [DONE]`` sentinel; ``named_events`` writes
    an ``event:`` line before each ``data:`` line (Responses streams).
    """

    status: int = 200
    body: Any = None
    events: Sequence[Mapping[str, Any]] | None = None
    named_events: bool = True
    sse_done: bool = False
    headers: Mapping[str, str] = attrs.field(factory=dict)


def error_reply(violation: Violation) -> Reply:
    """The service's error envelope for a violation."""
    return Reply(status=violation.status, body=violation.envelope())


def page(
    items: Sequence[Mapping[str, Any]], query: Mapping[str, str], *, default_order: str = "desc"
) -> dict[str, Any]:
    """A cursor page (``after``, ``before``, ``limit`` 1-100 default 20, ``order``)."""
    order = query.get("order", default_order)
    ordered = list(items) if order == "asc" else list(reversed(items))
    after, before = query.get("after"), query.get("before")
    if after is not None:
        ids = [item.get("id") for item in ordered]
        ordered = ordered[ids.index(after) + 1 :] if after in ids else []
    if before is not None:
        ids = [item.get("id") for item in ordered]
        ordered = ordered[: ids.index(before)] if before in ids else ordered
    try:
        limit = max(1, min(100, int(query.get("limit", "20"))))
    except ValueError:
        limit = 20
    data = ordered[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0].get("id") if data else None,
        "last_id": data[-1].get("id") if data else None,
        "has_more": len(ordered) > limit,
    }
