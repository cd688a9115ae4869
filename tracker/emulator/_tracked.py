"""Containers that remember which keys changed, so the state journal writes only those.

``State`` keeps its dicts in ``TrackedDict`` and its output counts in ``TrackedCounter``. Every
way of setting or deleting a key (``d[k] = v``, ``del``, ``pop``, ``setdefault``, ``update``,
``clear``, ``+=`` on a count) records the key; ``take_changes`` hands the set over and starts a
new one. A value changed *in place* (a stored response's fields, say) is not seen: assign it
again (``state.responses[rid] = stored``) to have it written.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from typing import Any, TypeVar

__all__ = ["TrackedCounter", "TrackedDict"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TrackedDict(dict[K, V]):
    """A ``dict`` that records the keys set or deleted since the last ``take_changes``."""

    def _touch(self, key: Any) -> None:
        try:
            self._changed.add(key)
        except AttributeError:  # set before __init__ ran (copy, pickle)
            self._changed: set[Any] = {key}

    def take_changes(self) -> set[Any]:
        """The keys set or deleted since the last call (and forget them)."""
        changed: set[Any] = getattr(self, "_changed", set())
        self._changed = set()
        return changed

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self._touch(key)

    def __delitem__(self, key: K) -> None:
        super().__delitem__(key)
        self._touch(key)

    def pop(self, key: K, *default: Any) -> Any:
        """``dict.pop``, recorded."""
        self._touch(key)
        return super().pop(key, *default)

    def popitem(self) -> tuple[K, V]:
        """``dict.popitem``, recorded."""
        key, value = super().popitem()
        self._touch(key)
        return key, value

    def setdefault(self, key: K, default: Any = None) -> V:
        """``dict.setdefault``, recorded when it sets."""
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        """``dict.update``, recorded."""
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def clear(self) -> None:
        """``dict.clear``, recorded."""
        for key in self:
            self._touch(key)
        super().clear()

    def __ior__(self, other: Any) -> TrackedDict[K, V]:  # type: ignore[override,misc]
        self.update(other)
        return self


class TrackedCounter(Counter[K]):
    """A ``Counter`` that records the keys set or deleted since the last ``take_changes``."""

    def _touch(self, key: Any) -> None:
        try:
            self._changed.add(key)
        except AttributeError:
            self._changed: set[Any] = {key}

    def take_changes(self) -> set[Any]:
        """The keys set or deleted since the last call (and forget them)."""
        changed: set[Any] = getattr(self, "_changed", set())
        self._changed = set()
        return changed

    def __setitem__(self, key: K, value: int) -> None:
        super().__setitem__(key, value)
        self._touch(key)

    def __delitem__(self, key: object) -> None:
        super().__delitem__(key)
        self._touch(key)

    def pop(self, key: K, *default: Any) -> Any:
        """``dict.pop``, recorded."""
        self._touch(key)
        return super().pop(key, *default)

    def update(  # type: ignore[override]
        self, iterable: Iterable[K] | Mapping[K, int] | None = None, /, **kwds: int
    ) -> None:
        """``Counter.update`` (adds counts), recorded."""
        if isinstance(iterable, Mapping):
            for key, count in iterable.items():
                self[key] = self[key] + count
        elif iterable is not None:
            for key in iterable:
                self[key] = self[key] + 1
        for key, count in kwds.items():
            self[key] = self[key] + count  # type: ignore[index]

    def clear(self) -> None:
        """``Counter.clear``, recorded."""
        for key in self:
            self._touch(key)
        super().clear()
