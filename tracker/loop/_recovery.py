"""Finding, in a conversation's newest items, a response the server stored before a failure.

The service appends a completed response's input and output items to its conversation in one
step. So if the items the tracker does not know yet end with the request's input (as stored:
ids added, message content as parts) followed only by model output, the response was stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tracker._fingerprint import fingerprint
from tracker._items import field, read_item

__all__ = ["stored_response_start"]


def _texts(content: Any) -> tuple[str, ...]:
    if isinstance(content, str):
        return (content,)
    return tuple(str(field(part, "text") or "") for part in content or ())


def _same_item(sent: Any, stored: Any) -> bool:
    """Whether ``stored`` (a conversation item) is the server's copy of the ``sent`` item."""
    a, b = read_item(sent), read_item(stored)
    if a.type != b.type:
        return False
    if a.id is not None or a.call_id is not None:
        return (a.id is None or a.id == b.id) and a.call_id == b.call_id
    if a.type == "message":
        return field(sent, "role") == field(stored, "role") and _texts(
            field(sent, "content")
        ) == _texts(field(stored, "content"))
    return fingerprint(sent, ignore_ids=True) == fingerprint(stored, ignore_ids=True)


def _is_model_output(item: Any) -> bool:
    info = read_item(item)
    if info.type == "message":
        return bool(field(item, "role") == "assistant")
    return not info.is_output


def stored_response_start(new_items: Sequence[Any], sent: Sequence[Any]) -> int | None:
    """Where the stored output of the request that sent ``sent`` begins in ``new_items``.

    ``new_items`` are the conversation's newest items (oldest first). Returns ``None`` unless
    they end with ``sent`` (as stored) followed by at least one model-output item.
    """
    n = len(sent)
    for start in range(len(new_items) - n - 1, -1, -1):
        tail = new_items[start + n :]
        if not all(_is_model_output(item) for item in tail):
            continue
        if all(_same_item(sent[k], new_items[start + k]) for k in range(n)):
            return start + n
    return None
