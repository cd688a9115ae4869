"""An O(1) identity index that holds the objects it remembers.

Keying by ``id(obj)`` alone is the bug this package exists to prevent: once the object dies,
CPython reuses its address for a fresh object, which then looks "already seen". Here every
entry keeps a reference to its object, so the address cannot be reused while the entry exists,
and each lookup confirms the match with ``is``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, TypeVar

__all__ = ["IdentityMap", "IdentitySet"]

V = TypeVar("V")


class IdentityMap(Generic[V]):
    """A mapping from objects (by identity, not equality) to values. Holds its keys alive."""

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[int, tuple[Any, V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, obj: object) -> bool:
        entry = self._entries.get(id(obj))
        return entry is not None and entry[0] is obj

    def get(self, obj: object, default: V | None = None) -> V | None:
        """Return the value stored for exactly this object, or ``default``."""
        entry = self._entries.get(id(obj))
        if entry is not None and entry[0] is obj:
            return entry[1]
        return default

    def set(self, obj: object, value: V) -> None:
        """Remember ``obj`` (holding a reference to it) with ``value``."""
        self._entries[id(obj)] = (obj, value)

    def pop(self, obj: object, default: V | None = None) -> V | None:
        """Forget ``obj``; return its value, or ``default`` if it was not held."""
        key = id(obj)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is obj:
            del self._entries[key]
            return entry[1]
        return default

    def clear(self) -> None:
        """Forget every object."""
        self._entries.clear()

    def objects(self) -> Iterator[Any]:
        """Iterate over the held objects."""
        return (entry[0] for entry in self._entries.values())

    def items(self) -> Iterator[tuple[Any, V]]:
        """Iterate over ``(object, value)`` pairs."""
        return iter(self._entries.values())


class IdentitySet:
    """A set of objects by identity. Holds its members alive; every operation is O(1)."""

    __slots__ = ("_map",)

    def __init__(self) -> None:
        self._map: IdentityMap[None] = IdentityMap()

    def __len__(self) -> int:
        return len(self._map)

    def __contains__(self, obj: object) -> bool:
        return obj in self._map

    def __iter__(self) -> Iterator[Any]:
        return self._map.objects()

    def add(self, obj: object) -> None:
        """Hold ``obj``."""
        self._map.set(obj, None)

    def discard(self, obj: object) -> None:
        """Release ``obj`` if held."""
        self._map.pop(obj)

    def clear(self) -> None:
        """Release every object."""
        self._map.clear()
