"""Client calls sent without their item id, and reasoning left out with the ids that follow it.

Theory of operation
-------------------
Under ``RuleOptions.reject_referenced_client_calls`` the service may refuse a client-executed
call sent by its item id (``fc_...`` inline, or an ``item_reference``) when its output is in
the same input, paired by ``call_id`` (``P4``, vercel/ai PR #15795 and #11114 [3P]). A
whole-history request (a stateless replay, the restart after an edited history) carries
exactly that: each call as the server returned it, beside its output. ``without_client_call_ids``
is what such a request sends instead: the call without its id.

The reasoning rules then bite: a reasoning item must be directly followed by the item it was
emitted with, by id (A1), and an ``fc_``/``msg_`` with an id needs its reasoning (A2/A3). So the
reasoning item before such a call is left out too, and every item emitted with it (up to the
next reasoning item, tool output or user message) loses its id: ``leave_out``, the same walk
``Transcript.strip_encrypted`` uses to drop stale encrypted reasoning. The model loses that
reasoning's context; that is the price of the switch, which is off by default.

This is a projection of what is sent: the caller's items, the transcript and the snapshot keep
what the server returned, and every tool output is still sent once. Items are never changed in
place: a stripped item is a copy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._items import CALL_TO_OUTPUT, PAIRING_FIELD, field, read_item

__all__ = ["is_client_call", "leave_out", "without_client_call_ids"]


def is_client_call(item: Any) -> bool:
    """Whether ``item`` is a client-executed call paired with its output by ``call_id``.

    Every call type of the call/output table except an MCP approval request (paired by its own
    id) and a server-executed ``tool_search_call``. The public record names ``function_call``;
    the other types carry an item id and a ``call_id`` the same way [INF].
    """
    kind = field(item, "type")
    if kind not in CALL_TO_OUTPUT or kind in PAIRING_FIELD:
        return False
    return read_item(item).is_call


def _opens_turn(item: dict[str, Any]) -> bool:
    """Whether ``item`` ends the run of items a reasoning item was emitted with."""
    return (
        item.get("type") == "reasoning" or item.get("role") == "user" or read_item(item).is_output
    )


def leave_out(
    items: Sequence[dict[str, Any]], dropped: Callable[[int, dict[str, Any]], bool]
) -> tuple[list[dict[str, Any]], list[str]]:
    """``items`` without those ``dropped(index, item)`` selects; the items that followed a
    dropped reasoning item (up to the next reasoning item, tool output or user message) lose
    their ids, so the service finds no item missing its reasoning (A2/A3). Returns the kept
    items and the ids of the dropped ones."""
    kept: list[dict[str, Any]] = []
    ids: list[str] = []
    orphaned = False
    for index, item in enumerate(items):
        if dropped(index, item):
            ids.append(str(item.get("id")))
            orphaned = item.get("type") == "reasoning"
            continue
        if _opens_turn(item):
            orphaned = False
        kept.append(_without_id(item) if orphaned else item)
    return kept, ids


def _without_id(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "id"} if "id" in item else item


def without_client_call_ids(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``items`` (plain wire dicts) as sent under ``reject_referenced_client_calls``.

    A client call that carries its item id while its output is in ``items`` is sent without the
    id; the reasoning item it was emitted with is left out, and the other items emitted with
    that reasoning lose their ids (``leave_out``). Nothing changes (the same items, in a new
    list) when there is no such call.
    """
    answered = {
        info.call_id
        for info in (read_item(item, i) for i, item in enumerate(items))
        if info.is_output
    }
    strip: set[int] = set()  # positions of the calls sent without their id
    reasoning: set[int] = set()  # positions of the reasoning items left out
    current: int | None = None  # position of the reasoning the next items were emitted with
    for index, item in enumerate(items):
        if _opens_turn(item):
            current = index if item.get("type") == "reasoning" else None
        elif (
            isinstance(item.get("id"), str)
            and is_client_call(item)
            and field(item, "call_id") in answered
        ):
            strip.add(index)
            if current is not None:
                reasoning.add(current)
    if not strip:
        return list(items)
    stripped = [_without_id(item) if i in strip else item for i, item in enumerate(items)]
    kept, _ = leave_out(stripped, lambda index, _item: index in reasoning)
    return kept
