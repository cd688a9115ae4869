"""Building blocks of the openai-agents adapter: item reading, fingerprints, identity views.

Fingerprints here must equal openai-agents' own (``fingerprint_input_item``), because the
SDK's session code compares them with the tracker's ``sent_item_fingerprints``: the SDK's
helpers are called for anything unusual, and ``sdk_fingerprint``'s fast path for dicts and
pydantic models is checked against the SDK's function by the tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from agents.items import InputItem, RunItemBase
from agents.items import _output_item_to_input_item as output_item_to_input_item
from agents.run_internal.items import (
    TOOL_CALL_SESSION_DESCRIPTION_KEY,
    TOOL_CALL_SESSION_TITLE_KEY,
    fingerprint_input_item,
)
from pydantic import BaseModel

from .._identity import IdentityMap
from .._items import FAKE_ID, field
from ._objects import TrackedObjects

__all__ = [
    "FingerprintCache",
    "SourceBuckets",
    "TrackedObjects",
    "anonymous_search_fingerprint",
    "attribute_reader",
    "encode_payload",
    "fingerprint_payload",
    "is_input_item",
    "is_tool_search",
    "read_keys",
    "sdk_fingerprint",
    "tracker_fingerprint",
    "untracked_run_items",
]

_TOOL_SEARCH_TYPES = frozenset({"tool_search_call", "tool_search_output"})
_KEY_NAMES = ("id", "call_id", "output")
_NO_EXTRA: dict[str, Any] = {}
_FAST_CLASSES: dict[type, bool] = {}
# Run item classes whose attribute lookup is RunItemBase's: reading ``raw_item`` with
# ``object.__getattribute__`` gives the same object without a Python call per item.
_SDK_GETATTRIBUTE = RunItemBase.__getattribute__
_PLAIN_RUN_ITEM_CLASSES: set[type] = set()
_INPUT_CLASSES: dict[type, bool] = {}

# What a prepared item came from: the caller's original object and its pending-input id.
Source = tuple[Any, "str | None"]


def _attribute_reader(cls: type) -> bool:
    """Whether instances of ``cls`` hold id/call_id/output only in ``__dict__`` or extras."""
    fast = _FAST_CLASSES.get(cls)
    if fast is None:
        fast = issubclass(cls, BaseModel) and not any(hasattr(cls, n) for n in _KEY_NAMES)
        _FAST_CLASSES[cls] = fast
    return fast


def read_keys(item: Any) -> tuple[str | None, str | None, bool]:
    """Return ``(provider item id, call_id, carries an output payload)`` of an item.

    The SDK's rules: the placeholder id of non-Responses providers reads as ``None``; an output
    is recognised by its payload (an ``output`` member), not by its type; type-less payloads
    such as ``{"call_id": ..., "output": ...}`` are fine. This runs for every item of a resumed
    run, so plain dicts and pydantic models (the SDK's items) are read without the generic,
    ABC-based ``tracker._items.field`` path, with the same results.
    """
    if type(item) is dict:
        raw_id, raw_call_id, has_output = item.get("id"), item.get("call_id"), "output" in item
    elif _attribute_reader(type(item)):
        members = item.__dict__
        extra = item.__pydantic_extra__ or _NO_EXTRA
        raw_id = members.get("id", extra.get("id"))
        raw_call_id = members.get("call_id", extra.get("call_id"))
        has_output = "output" in members or "output" in extra
    else:
        raw_id, raw_call_id = field(item, "id"), field(item, "call_id")
        has_output = "output" in item if isinstance(item, Mapping) else hasattr(item, "output")
    item_id = raw_id if isinstance(raw_id, str) and raw_id != FAKE_ID else None
    call_id = raw_call_id if isinstance(raw_call_id, str) else None
    return item_id, call_id, has_output


def item_type(item: Any) -> Any:
    """Return an item's ``type`` member (``None`` if it has none)."""
    if type(item) is dict:
        return item.get("type")
    return getattr(item, "type", None)


def is_tool_search(item: Any) -> bool:
    """Return True for tool_search items, which carry no stable provider identifiers."""
    return item_type(item) in _TOOL_SEARCH_TYPES


# Members the SDK strips before fingerprinting (session metadata, output-only fields).
_UNFINGERPRINTED = (TOOL_CALL_SESSION_DESCRIPTION_KEY, TOOL_CALL_SESSION_TITLE_KEY, "created_by")
# The SDK fingerprints with json.dumps(sort_keys=True, default=str), which builds an encoder
# per call; one prebuilt encoder with the same options gives the same text, faster.
_ENCODER = json.JSONEncoder(sort_keys=True, default=str)
# Encodes a ``fingerprint_payload`` to the SDK's exact text.
encode_payload = _ENCODER.encode


def fingerprint_payload(item: Any) -> dict[str, Any] | None:
    """Return what the SDK would serialise for a plain dict or pydantic item (else ``None``).

    ``None`` means "let the SDK's own function decide"; exceptions propagate to the caller.
    """
    if type(item) is dict:
        payload = item.copy()
    elif isinstance(item, BaseModel):
        payload = item.model_dump(exclude_unset=True, warnings=False)
        if type(payload) is not dict:
            return None
    else:
        return None
    for key in _UNFINGERPRINTED:
        payload.pop(key, None)
    return payload


def sdk_fingerprint(item: Any, payload: dict[str, Any] | None = None) -> str | None:
    """Return exactly ``agents``' ``fingerprint_input_item(item)``, faster for common items.

    Plain dicts and pydantic models (every item the runner holds) are serialised here, once,
    the way the SDK does; anything else, and any failure, is handed to the SDK's function.
    ``payload``, when given, is ``fingerprint_payload(item)`` computed by the caller.
    """
    try:
        if payload is None:
            payload = fingerprint_payload(item)
        if payload is None:
            return fingerprint_input_item(item)
        return _ENCODER.encode(payload)
    except Exception:  # the SDK's own rules decide odd cases (it returns None on failure)
        return fingerprint_input_item(item)


def tracker_fingerprint(item: Any) -> str | None:
    """Return the SDK-compatible dedupe fingerprint of an item, or ``None`` if it has none."""
    if not is_tool_search(item):
        return sdk_fingerprint(item)
    try:
        replayable = output_item_to_input_item(item)
    except Exception:  # the SDK treats an unconvertible item as having no fingerprint
        return None
    item_id, call_id, _ = read_keys(replayable)
    return fingerprint_input_item(
        replayable, ignore_ids_for_matching=item_id is None and call_id is None
    )


def anonymous_search_fingerprint(item: Any) -> str | None:
    """Return a content-only fingerprint of a tool_search item (``None`` for other items)."""
    if not is_tool_search(item):
        return None
    try:
        return fingerprint_input_item(output_item_to_input_item(item), ignore_ids_for_matching=True)
    except Exception:  # same rule as tracker_fingerprint
        return None


class FingerprintCache:
    """Fingerprints by object identity, so each object is serialised once per turn.

    Cleared at the start of every turn: items are mutable, and a turn is the span in which
    the runner hands the same prepared objects back without changing them.
    """

    __slots__ = ("_known",)

    def __init__(self) -> None:
        self._known: IdentityMap[str | None] = IdentityMap()

    def __call__(self, item: Any) -> str | None:
        """Return ``tracker_fingerprint(item)``, computing it at most once per object."""
        known = self._known
        if item in known:
            return known.get(item)
        fingerprint = tracker_fingerprint(item)
        known.set(item, fingerprint)
        return fingerprint

    def clear(self) -> None:
        """Forget every cached fingerprint (and release the objects)."""
        self._known.clear()


def untracked_run_items(
    run_items: Iterable[Any], sent: TrackedObjects, server: TrackedObjects
) -> Iterator[tuple[Any, Any]]:
    """Yield ``(run_item, raw_item)`` for run items whose raw item neither tracker holds.

    This is a turn's whole per-old-item cost, so it is one loop with no call per item: the
    raw item is read past the SDK's Python-level ``RunItemBase.__getattribute__`` (which only
    redirects ``agent``) and both identity tables are probed directly.
    """
    read = object.__getattribute__
    plain = _PLAIN_RUN_ITEM_CLASSES
    sent_get, server_get = sent._objects.get, server._objects.get
    for run_item in run_items:
        if type(run_item) in plain:
            raw = read(run_item, "raw_item")
        else:
            raw = run_item.raw_item
            _learn_run_item_class(type(run_item))
        if raw is None:
            continue
        key = id(raw)
        if sent_get(key) is not raw and server_get(key) is not raw:
            yield run_item, raw


def _learn_run_item_class(cls: type) -> None:
    """Remember ``cls`` if its attribute lookup is the SDK's (``agent`` aside, the default)."""
    if getattr(cls, "__getattribute__", None) is _SDK_GETATTRIBUTE:
        _PLAIN_RUN_ITEM_CLASSES.add(cls)


def is_input_item(run_item: Any) -> bool:
    """``isinstance(run_item, InputItem)``, without an ABC check per item."""
    cls = type(run_item)
    known = _INPUT_CLASSES.get(cls)
    if known is None:
        known = _INPUT_CLASSES[cls] = issubclass(cls, InputItem)
    return known


def attribute_reader(cls: type) -> Callable[[Any, str], Any]:
    """Return a ``getattr`` for instances of run item class ``cls`` (other than ``agent``).

    That is ``object.__getattribute__`` when ``cls`` keeps the SDK's attribute lookup, which
    differs from the default only for ``agent``, and plain ``getattr`` otherwise.
    """
    if cls not in _PLAIN_RUN_ITEM_CLASSES:
        _learn_run_item_class(cls)
        if cls not in _PLAIN_RUN_ITEM_CLASSES:
            return getattr
    return object.__getattribute__


class SourceBuckets:
    """Prepared-item sources grouped by fingerprint, for items rebuilt by an input filter.

    Each bucket is an insertion-ordered multiset of ``(source object, input_id)``: adding,
    removing a given source and taking the oldest are O(1). Keys pair ``id(source)`` with the
    source itself in the value, so the address stays reserved while the entry exists.
    """

    __slots__ = ("_buckets",)

    def __init__(self) -> None:
        self._buckets: dict[str, dict[tuple[int, str | None], list[Any]]] = {}

    def __len__(self) -> int:
        return len(self._buckets)

    def __contains__(self, fingerprint: object) -> bool:
        return fingerprint in self._buckets

    def add(self, fingerprint: str, source: Any, input_id: str | None) -> None:
        """Record one occurrence of ``source`` under ``fingerprint``."""
        bucket = self._buckets.setdefault(fingerprint, {})
        entry = bucket.get((id(source), input_id))
        if entry is None:
            bucket[(id(source), input_id)] = [source, input_id, 1]
        else:
            entry[2] += 1

    def count(self, fingerprint: str | None) -> int:
        """Return how many occurrences are recorded under ``fingerprint``."""
        bucket = self._buckets.get(fingerprint) if fingerprint is not None else None
        return sum(entry[2] for entry in bucket.values()) if bucket else 0

    def input_ids(self, fingerprint: str) -> set[str | None]:
        """Return the distinct input ids recorded under ``fingerprint``."""
        return {entry[1] for entry in self._buckets.get(fingerprint, {}).values()}

    def first(self, fingerprint: str) -> Source | None:
        """Return the oldest source recorded under ``fingerprint`` (``None`` if none)."""
        bucket = self._buckets.get(fingerprint)
        if not bucket:
            return None
        entry = next(iter(bucket.values()))
        return entry[0], entry[1]

    def remove(self, fingerprint: str, source: Source) -> None:
        """Remove one occurrence of ``source`` from its bucket (no-op if absent)."""
        bucket = self._buckets.get(fingerprint)
        if bucket is None:
            return
        key = (id(source[0]), source[1])
        entry = bucket.get(key)
        if entry is not None and entry[0] is source[0]:
            entry[2] -= 1
            if entry[2] == 0:
                del bucket[key]
        if not bucket:
            del self._buckets[fingerprint]

    def clone(self) -> SourceBuckets:
        """Return an independent copy (sharing the source objects, not the counts)."""
        twin = SourceBuckets()
        twin._buckets = {
            fp: {key: list(entry) for key, entry in bucket.items()}
            for fp, bucket in self._buckets.items()
        }
        return twin

    def clear(self) -> None:
        """Forget every bucket."""
        self._buckets.clear()
