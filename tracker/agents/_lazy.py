"""``FingerprintSet``: the set of delivered-content fingerprints, filled lazily after a resume.

A resumed run restores thousands of items, and the SDK serialises each one to JSON while
hydrating, although a resumed turn asks about a handful of fingerprints at most (content is
the fallback key; identities and ids answer first). This set keeps the exact text the SDK
computes, but encodes a restored item only when a question could concern it.

Exactness. An item is deferred only when its payload (the dict the SDK would encode) has
string keys and immutable scalar values; the payload is a private copy, so encoding it later
gives the very text the SDK wrote at hydrate time even if the caller mutates the item in
between. Anything else (nested content, odd types) is encoded at once. Deferred payloads are
grouped by their ``call_id`` value, which is a necessary condition for a match: a membership
test or ``discard`` parses the queried text and encodes only that group. Iteration, ``len``
and equality encode everything first, so the set always reads as the SDK's plain set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, MutableSet
from typing import Any

from ._support import encode_payload, fingerprint_payload, sdk_fingerprint

__all__ = ["FingerprintSet"]

_SCALARS = frozenset({str, int, float, bool, type(None)})
_STR = frozenset({str})


def _group(call_id: object) -> str | None:
    """The group of a payload whose ``call_id`` is ``call_id`` (JSON round-trips strings)."""
    return call_id if type(call_id) is str else None


class FingerprintSet(MutableSet[str]):
    """A ``set[str]`` of SDK fingerprints that encodes restored items on first need."""

    __slots__ = ("_known", "_pending")

    def __init__(self, fingerprints: Iterable[str] = ()) -> None:
        self._known: set[str] = set(fingerprints)
        self._pending: dict[str | None, list[dict[str, Any]]] = {}

    def add_item(self, item: Any) -> None:
        """Add ``sdk_fingerprint(item)`` (if it has one), encoding it now or when first needed."""
        try:
            payload = fingerprint_payload(item)
        except Exception:  # the SDK's function decides (it yields None on failure)
            payload = None
        # A payload of string keys and scalar values is a snapshot nobody else can change.
        if (
            payload is not None
            and _STR.issuperset(map(type, payload))
            and _SCALARS.issuperset(map(type, payload.values()))
        ):
            self._pending.setdefault(_group(payload.get("call_id")), []).append(payload)
            return
        fingerprint = sdk_fingerprint(item, payload)
        if fingerprint:
            self._known.add(fingerprint)

    def _settle(self, group: str | None) -> None:
        payloads = self._pending.pop(group, None)
        if payloads:
            self._known.update(map(encode_payload, payloads))

    def _settle_for(self, fingerprint: object) -> None:
        """Encode the deferred items that could have ``fingerprint``."""
        if not self._pending or type(fingerprint) is not str or fingerprint[:1] != "{":
            return  # every deferred fingerprint is the text of a dict
        try:
            content = json.loads(fingerprint)
        except ValueError:
            return
        if type(content) is dict:
            self._settle(_group(content.get("call_id")))

    def _settle_all(self) -> None:
        for group in list(self._pending):
            self._settle(group)

    def __contains__(self, fingerprint: object) -> bool:
        if fingerprint in self._known:
            return True
        self._settle_for(fingerprint)
        return fingerprint in self._known

    def __iter__(self) -> Iterator[str]:
        self._settle_all()
        return iter(self._known)

    def __len__(self) -> int:
        self._settle_all()
        return len(self._known)

    def __eq__(self, other: object) -> bool:
        self._settle_all()
        if isinstance(other, FingerprintSet):
            other._settle_all()
            return self._known == other._known
        if isinstance(other, set | frozenset):
            return self._known == other
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the set it replaces

    def __repr__(self) -> str:
        self._settle_all()
        return f"FingerprintSet({self._known!r})"

    def __reduce__(self) -> tuple[type[FingerprintSet], tuple[list[str]]]:
        return type(self), (list(self),)

    def add(self, value: str) -> None:
        """Add one fingerprint."""
        self._known.add(value)

    def discard(self, value: str) -> None:
        """Remove one fingerprint if present (a deferred item with that text included)."""
        self._settle_for(value)
        self._known.discard(value)

    def update(self, fingerprints: Iterable[str]) -> None:
        """Add every fingerprint of ``fingerprints``."""
        self._known.update(fingerprints)

    def copy(self) -> FingerprintSet:
        """Return an independent copy."""
        return FingerprintSet(self)
