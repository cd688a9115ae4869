"""Containers that remember objects by identity without ever matching a reused address.

``TrackedObjects`` replaces the SDK's identity lists (0.17.7 and later) with O(1) lookups;
``pinned_id`` replaces ``id()`` inside the SDK's trackers that remember bare ``id()`` integers
(0.4.0 through 0.17.6): the integer it returns keeps its object alive, so no later object can
be born at that address while the integer is remembered. Neither imports ``agents``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["PinnedId", "TrackedObjects", "pinned_id"]

_ABSENT = object()


class PinnedId(int):
    """``id(obj)`` as an ``int`` that holds ``obj``: equal and hashing to the bare integer.

    A set of these answers ``id(x) in s`` exactly like a set of integers, but an entry can
    never name a different object, because the object it names cannot be freed.
    """

    obj: Any


def pinned_id(obj: object) -> PinnedId:
    """Return ``id(obj)`` as a ``PinnedId`` holding ``obj``."""
    pinned = PinnedId(id(obj))
    pinned.obj = obj
    return pinned


class TrackedObjects:
    """The objects a tracker has delivered or seen, by identity, in O(1).

    Stands in for the SDK's plain lists ``sent_items`` / ``server_items``: it iterates in
    insertion order, has ``len``, ``in`` (by identity), ``append`` (which tracks an object once,
    as the SDK does), ``remove`` and ``discard``, and compares equal to a list holding the same
    objects. It holds references, so an address cannot be reused while an object is tracked.
    Entries map ``id(obj)`` straight to ``obj`` (no per-entry tuple): a turn looks up every
    old item here, so one object fewer to touch per lookup matters at 20k items.
    """

    __slots__ = ("_objects",)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the list it replaces

    def __init__(self, objects: Iterable[Any] = ()) -> None:
        self._objects: dict[int, Any] = {}
        self.extend(objects)

    def __len__(self) -> int:
        return len(self._objects)

    def __contains__(self, obj: object) -> bool:
        return self._objects.get(id(obj), _ABSENT) is obj

    def __iter__(self) -> Iterator[Any]:
        return iter(self._objects.values())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TrackedObjects | list | tuple):
            mine = list(self)
            return len(mine) == len(other) and all(
                a is b or a == b for a, b in zip(mine, other, strict=True)
            )
        return NotImplemented

    def __repr__(self) -> str:
        return f"TrackedObjects({list(self)!r})"

    def append(self, obj: Any) -> None:
        """Track ``obj`` (once: tracking it again keeps its place and changes nothing)."""
        self._objects.setdefault(id(obj), obj)

    def extend(self, objects: Iterable[Any]) -> None:
        """Track each of ``objects``."""
        for obj in objects:
            self.append(obj)

    def discard(self, obj: Any) -> None:
        """Stop tracking ``obj`` if it is tracked."""
        if obj in self:
            del self._objects[id(obj)]

    def remove(self, obj: Any) -> None:
        """Stop tracking ``obj``; raise ``ValueError`` if it is not tracked (as ``list`` does)."""
        if obj not in self:
            raise ValueError(f"{type(obj).__name__} object is not tracked")
        del self._objects[id(obj)]

    def clear(self) -> None:
        """Stop tracking every object."""
        self._objects.clear()
