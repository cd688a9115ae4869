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

from ._items import to_plain

__all__ = ["fingerprint"]

# Top-level fields whose value changes between the copy sent and the copy the server returns.
_VOLATILE: Final = frozenset({"status"})


def _strip_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_strip_none(v) for v in value]
    return value


def fingerprint(item: Any, *, ignore_ids: bool = False) -> str:
    """Return a short, stable hex key for the item's content.

    The item is serialised exactly once. Raises ``ItemError`` if it is not a dict or SDK model.
    """
    plain = to_plain(item)
    skip = _VOLATILE | {"id"} if ignore_ids else _VOLATILE
    body = {k: _strip_none(v) for k, v in plain.items() if v is not None and k not in skip}
    if "type" not in body and "role" in body:
        body["type"] = "message"  # the easy form and the explicit form are the same item
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
