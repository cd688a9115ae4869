"""Canonical, stable content keys for items.

Two items that the service would treat as the same content get the same fingerprint: key order
does not matter, a dict and the SDK model of the same item agree, ``None`` members are ignored
(SDK dumps carry them, hand-written dicts do not), and volatile fields that the service rewrites
(``status``) are left out. With ``ignore_ids=True`` the provider ``id`` is left out too, so an
item rebuilt without its id still matches.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

from ._items import to_plain, unreadable

__all__ = ["content_key", "fingerprint"]

# Top-level fields whose value changes between the copy sent and the copy the server returns.
_VOLATILE: Final = frozenset({"status"})


def _strip_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_strip_none(v) for v in value]
    return value


def _text(value: Any) -> str:
    """A JSON stand-in for a value JSON cannot hold (``json.dumps``'s ``default``)."""
    try:
        return str(value)
    except Exception as exc:  # any str() failure is a property of the item: report it so
        raise TypeError(f"str() of a {type(value).__name__} failed: {exc!r}") from None


def _problem(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "is nested too deeply or contains itself (a circular reference)"
    if isinstance(exc, ValueError) and "ircular" in str(exc):
        return "contains itself (a circular reference)"
    return f"holds content JSON cannot serialise ({type(exc).__name__}: {str(exc)[:200]})"


def content_key(item: Any, index: int | None = None, *, ignore_ids: bool = False) -> str:
    """``fingerprint``, with any error naming the item's ``index`` in its list."""
    plain = to_plain(item, index)
    skip = _VOLATILE | {"id"} if ignore_ids else _VOLATILE
    try:
        body = {k: _strip_none(v) for k, v in plain.items() if v is not None and k not in skip}
        if "type" not in body and "role" in body:
            body["type"] = "message"  # the easy form and the explicit form are the same item
        text = json.dumps(
            body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_text
        )
        data = text.encode("utf-8")
    except (RecursionError, ValueError, TypeError) as exc:  # all caused by the item's content
        raise unreadable(
            item,
            index,
            _problem(exc),
            "give it JSON content: string keys, no cycles, nested at most a few hundred levels.",
        ) from None
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def fingerprint(item: Any, *, ignore_ids: bool = False) -> str:
    """Return a short, stable hex key for the item's content.

    The item is serialised exactly once. Raises ``ItemError`` if it is not a dict or SDK
    model, or its content cannot be serialised (a cycle, non-string keys, nested too deeply).
    """
    return content_key(item, ignore_ids=ignore_ids)
