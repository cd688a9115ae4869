"""The context of a request in O(its input): what the emulator keeps of a chain or conversation.

A request's context is the stored items of its chain (or conversation) followed by its input.
Rebuilding that list and checking it whole made a request cost O(context): 320 ms of handler
CPU at a 5,000-response chain. Instead, the emulator keeps one ``ContextIndex`` per chain tail
and per conversation (``State.indexes``): the items in order, the rules' view of them
(``tracker._rules.CheckedPrefix``: ids, the window's calls, the calls still waiting for an
output) and running character counts for the token estimates. A request then reads a
``Context`` (the index's first ``length`` items, then its input): the held prefix already
passed the rules, so only the input is checked against it (``check_appended``), the token
counts are two subtractions, and the script reads the window through a view that copies an
item only when the script reads it.

Ownership: an index belongs to the latest response of its chain. When a response continues the
tail, the index is extended by that response's items and moves to it (O(input)). Continuing an
older response (a branch, a retry) rebuilds that response's index from its chain once (O(n)),
as does the first request after a restart. A conversation's index follows its items; deleting
an item drops it. Whatever the index does not cover exactly (a prefix that breaks a rule, e.g.
items added to a conversation directly; options changed since it was built) falls back to the
whole-context path, so answers never depend on the index.
"""

from __future__ import annotations

import bisect
import copy
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final, overload

import attrs

from .._items import CALL_TO_OUTPUT, OUTPUT_TO_CALL
from .._rules import (
    CheckedPrefix,
    Provenance,
    RuleOptions,
    Violation,
    check_appended,
    check_context,
)

__all__ = ["MAX_INDEXES", "Context", "ContextIndex"]

#: How many chain tails and conversations keep an index; the oldest is dropped beyond it.
MAX_INDEXES: Final = 256

_COMPACT = (",", ":")


def _chars(item: Mapping[str, Any]) -> tuple[int, int]:
    """Length of the item's compact JSON (token counts) and of its default JSON (usage)."""
    return len(json.dumps(item, separators=_COMPACT)), len(json.dumps(item))


class ContextIndex:
    """The items of one chain or conversation, in order, with what a request needs of them.

    Append-only: ``items`` and the running counts only grow, so a ``Context`` made before an
    ``extend`` still reads its own prefix. ``rules`` is at ``len(items)``.
    """

    def __init__(self, options: RuleOptions) -> None:
        self.items: list[dict[str, Any]] = []
        self.rules = CheckedPrefix(options=options)
        self.compact_chars = [0]  # running sum: compact JSON length of items[:i]
        self.json_chars = [0]  # running sum: default JSON length of items[:i]
        self.compactions: list[int] = []  # indexes of compaction items
        self.specials: list[int] = []  # indexes of compaction and compaction_trigger items

    @classmethod
    def build(
        cls, items: Sequence[dict[str, Any]], options: RuleOptions, provenance: Provenance
    ) -> ContextIndex:
        """An index of ``items`` (O(len(items)))."""
        index = cls(options)
        index.extend(items, provenance)
        return index

    def extend(
        self, items: Sequence[dict[str, Any]], provenance: Provenance, *, passed: bool = False
    ) -> None:
        """Append stored items (O(len(items))); ``passed`` as ``CheckedPrefix.extend``."""
        self.rules.extend(items, provenance, passed=passed)
        for item in items:
            at = len(self.items)
            kind = item.get("type")
            if kind == "compaction":
                self.compactions.append(at)
            if kind in ("compaction", "compaction_trigger"):
                self.specials.append(at)
            compact, plain = _chars(item)
            self.compact_chars.append(self.compact_chars[-1] + compact)
            self.json_chars.append(self.json_chars[-1] + plain)
            self.items.append(item)

    def last_compaction(self, length: int) -> int | None:
        """Index of the latest compaction item among the first ``length`` items."""
        i = bisect.bisect_left(self.compactions, length)
        return self.compactions[i - 1] if i else None


@attrs.frozen
class Context:
    """A request's context: the first ``length`` items of ``index``, then ``new`` (its input).

    Every method costs O(``new``) plus what it returns, except where it says otherwise.
    """

    index: ContextIndex
    length: int
    new: list[dict[str, Any]]

    @classmethod
    def of(cls, index: ContextIndex, new: list[dict[str, Any]]) -> Context:
        """The context of ``new`` after everything ``index`` holds now."""
        return cls(index, len(index.items), new)

    def items(self) -> list[dict[str, Any]]:
        """The whole context as a list (O(context): for rare paths only)."""
        return self.index.items[: self.length] + self.new

    def _incremental(self, options: RuleOptions) -> bool:
        rules = self.index.rules
        return rules.clean and rules.length == self.length and rules.options == options

    def check(self, options: RuleOptions, provenance: Provenance) -> list[Violation]:
        """``check_context`` of the whole context; O(``new``) when the prefix is clean."""
        if self._incremental(options):
            return check_appended(self.index.rules, self.new, provenance=provenance)
        return check_context(self.items(), options=options, provenance=provenance)

    def window_start(self, boundary: bool = True) -> int:
        """Where the window starts: the latest compaction item (``window_start``); 0 when
        ``boundary`` is off or there is none."""
        if not boundary:
            return 0
        for i in range(len(self.new) - 1, -1, -1):
            if self.new[i].get("type") == "compaction":
                return self.length + i
        found = self.index.last_compaction(self.length)
        return found if found is not None else 0

    def window(self, boundary: bool = True) -> list[dict[str, Any]]:
        """The window's items (O(window))."""
        start = self.window_start(boundary)
        if start >= self.length:
            return self.new[start - self.length :]
        return self.index.items[start : self.length] + self.new

    def window_chars(self, boundary: bool = True, *, compact: bool = True) -> tuple[int, int]:
        """(item count, JSON characters of its items) of the window; ``compact``: separators
        ``(",", ":")`` as in token counts, else ``json.dumps``' default as in usage."""
        start = self.window_start(boundary)
        sums = self.index.compact_chars if compact else self.index.json_chars
        held = sums[self.length] - sums[start] if start < self.length else 0
        fresh = self.new[max(0, start - self.length) :]
        chars = held + sum(_chars(item)[0 if compact else 1] for item in fresh)
        return max(0, self.length - start) + len(fresh), chars

    def pending(self, boundary: bool = True) -> bool:
        """Whether a call in the window has no output after it."""
        start = self.window_start(boundary)
        rules = self.index.rules
        if start >= self.length:
            waiting: list[Any] = []
            fresh = self.new[start - self.length :]
        elif rules.length == self.length and rules.window_start == start:
            waiting = [item for calls in rules.pending.values() for _, item in calls]
            fresh = self.new
        else:
            waiting, fresh = [], self.window(boundary)
        open_calls: set[Any] = {item.get("call_id") for item in waiting}
        for item in fresh:
            kind = item.get("type")
            if kind in CALL_TO_OUTPUT:
                open_calls.add(item.get("call_id"))
            elif kind in OUTPUT_TO_CALL:
                open_calls.discard(item.get("call_id"))
        return bool(open_calls)

    def held_view(self, start: int) -> Sequence[dict[str, Any]] | None:
        """The held items from ``start`` on as a copy-on-read view, or ``None`` when one of
        them is a compaction or ``compaction_trigger`` item (the script sees those rewritten)."""
        specials = self.index.specials
        if bisect.bisect_left(specials, start) != bisect.bisect_left(specials, self.length):
            return None
        return _HeldView(self.index.items, start, self.length)


class _IndexedView(Sequence[dict[str, Any]]):
    """A read-only sequence of items: slicing and negative indices on top of ``_at``."""

    def __len__(self) -> int:
        raise NotImplementedError  # pragma: no cover - every view defines it

    def _at(self, i: int) -> dict[str, Any]:
        """The item at ``0 <= i < len(self)``."""
        raise NotImplementedError  # pragma: no cover - every view defines it

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [self._at(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("context index out of range")
        return self._at(i)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in range(len(self)):
            yield self._at(i)


class _HeldView(_IndexedView):
    """``items[start:stop]``, each item deep-copied when read (the script may change it)."""

    def __init__(self, items: list[dict[str, Any]], start: int, stop: int) -> None:
        self._items, self._start, self._stop = items, start, max(start, stop)

    def __len__(self) -> int:
        return self._stop - self._start

    def _at(self, i: int) -> dict[str, Any]:
        return copy.deepcopy(self._items[self._start + i])


class ScriptContext(_IndexedView):
    """What the script reads: ``head`` (copies), then a held view, then ``tail`` (copies).

    A ``Sequence``, as the ``Script`` protocol says: indexing and slicing return plain dicts,
    copied when read, so a long chain costs the script only what it reads.
    """

    def __init__(
        self,
        head: list[dict[str, Any]],
        held: Sequence[dict[str, Any]],
        tail: list[dict[str, Any]],
    ) -> None:
        self._parts = (head, held, tail)
        self._len = len(head) + len(held) + len(tail)

    def __len__(self) -> int:
        return self._len

    def _at(self, i: int) -> dict[str, Any]:
        for part in self._parts:
            if i < len(part):
                return part[i]
            i -= len(part)
        raise IndexError("context index out of range")  # pragma: no cover - bounds checked

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]
