"""Histories edited behind the chain: the caller's last whole history, and what changed in it.

Theory of operation
-------------------
A caller that passes its whole history to ``Tracker.prepare`` each turn may change an item the
chain already holds: a history processor rewrites a message, a trimming step drops the oldest
items, a UI lets the user edit an earlier turn. The delta the tracker would send holds only
what is *new*, so the edit would silently never reach the model. ``HeldHistory`` keeps the
whole history the caller passed last (``P``: held references, so identity is safe, and a
content fingerprint per position, computed only when needed) and ``check`` compares the next
one (``H``) with it:

- ``H`` continues ``P`` when it starts as ``P`` does (``H[0]`` is ``P[0]``; or ``H[1]`` is
  ``P[1]``, the first item changed; or ``H[1]`` is ``P[0]``, one item inserted before it), or
  when ``P``'s last item stands at ``H[i]`` and ``H[0]`` is ``P[last - i]`` (the front was
  trimmed; ``P``'s last item is found scanning back from ``H``'s end, past the new items),
  each the same object or the same content. Anything else (including a selection of ``P``'s
  items, such as every tool output) is a list of new items, as when the caller passes only
  what is new: it is checked no further and ``P`` stays.
- When ``H`` continues ``P``, ``H[:len(P)]`` must equal ``P`` position by position: the same
  object (one ``is`` per item, in C: the common turn costs no fingerprint at all), else the
  same content fingerprint. The first position that differs is the edit (a changed,
  inserted or removed item); a shorter ``H`` lost its last items.

So an unedited turn costs one identity pass over ``P`` (no hashing) plus the new items, and
only items that are not the very objects of last time are fingerprinted: a history rebuilt
from storage every turn costs one fingerprint per item; after ``from_state`` the objects are
gone and the first turn fingerprints ``H[:len(P)]`` once. An object changed *in place* after it
was passed is the same object and is not seen: pass a changed copy (what history processors
and trimming steps do), not a mutated original.

A restart sends the edited history whole, validated as the tracker validates any delta
(``check=``), and first keeps every reasoning item atomic with the items the service emitted
after it (rules A1-A3; ``reasoning_groups`` of ``P``, and of the transcript in stateless
mode): a group the edit split (its first item removed or given another id, or the reasoning
removed while any of its items stayed) is dropped whole under ``check="repair"`` and
reported (``drop_reasoning_group``), and raises ``HistoryError`` under ``check="raise"``. An
item edited in place of itself (same id) keeps its reasoning. The groups of every response
observed are added (``Restarts``), so a ``P`` that never held the reasoning items still has
them kept whole.

``P`` is adopted when the request that carried ``H`` is answered (``observe_response``), so it
is always a history the chain holds; a rewound request leaves it as it was. The first list a
tracker is given is kept as fingerprints only (it may be a delta, whose objects must not be
kept alive); from the first continuation on, ``P`` holds the caller's objects (one pointer
per item: the caller holds them anyway). The snapshot keeps
``P``'s fingerprints (16 hex digits per item), so the check survives ``to_state``.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from typing import Any, Final, Literal

import attrs

from ._errors import EditedHistoryError, HistoryError
from ._fingerprint import content_key
from ._items import field, read_item
from ._prepared import describe
from ._repair_actions import RepairAction
from ._rule_options import Provenance

__all__ = [
    "ON_EDIT",
    "HeldHistory",
    "HistoryEdit",
    "OnEdit",
    "Verdict",
    "broken_groups",
    "edited_error",
    "reasoning_groups",
    "regroup",
]

#: What ``Tracker.prepare`` does when a whole history changed an item the chain holds.
OnEdit = Literal["restart", "raise"]
ON_EDIT: Final[tuple[OnEdit, ...]] = ("restart", "raise")

#: Stands in for an object a restored history no longer has (never ``is`` any item).
_GONE: Final = object()
#: Hex digits kept of each fingerprint (64 bits: a chance collision is out of reach).
_FP_DIGITS: Final = 16


def _quick_key(item: Any) -> tuple[Any, Any, Any]:
    """Type, id and call id, read without validation: items that differ here differ in content
    (the easy message form, with no ``type``, is a ``message`` as in ``content_key``)."""
    if type(item) is dict:  # the common plain dict, read without ``field``'s dispatch
        kind, item_id, call_id = item.get("type"), item.get("id"), item.get("call_id")
        if kind is None and item.get("role") is not None:
            kind = "message"
        return kind, item_id, call_id
    kind, item_id, call_id = field(item, "type"), field(item, "id"), field(item, "call_id")
    if kind is None and field(item, "role") is not None:
        kind = "message"
    return kind, item_id, call_id


def _fp(item: Any, index: int) -> str:
    return content_key(item, index)[:_FP_DIGITS]


@attrs.frozen
class HistoryEdit:
    """Where a whole history differs from the last one passed: ``index`` in the new list.

    ``item`` labels the item found there (``"(end of history)"`` when items were removed at
    the end); ``item_id`` is its provider id or call id, if any.
    """

    index: int
    item: str
    item_id: str | None = None

    def __str__(self) -> str:
        return f"items[{self.index}] ({self.item})"


@attrs.frozen
class Verdict:
    """What ``HeldHistory.check`` found: ``whole`` (``H`` continues ``P``), the ``edit`` if
    any, ``same_prefix`` (every item of ``P`` is the same object in ``H``) and the
    fingerprints it computed, by position in ``H`` (reused when ``H`` is adopted)."""

    whole: bool
    edit: HistoryEdit | None = None
    same_prefix: bool = False
    fps: dict[int, str] = attrs.field(factory=dict)


_FIRST: Final = Verdict(whole=True)
_UNEDITED: Final = Verdict(whole=True, same_prefix=True)
_NEW_ITEMS: Final = Verdict(whole=False)


class HeldHistory:
    """The whole history the caller passed last, by position: held objects, lazy fingerprints."""

    __slots__ = ("_fps", "_objs", "_quick")

    def __init__(self, objs: Sequence[Any] = (), fps: Sequence[str | None] = ()) -> None:
        self._objs: list[Any] = list(objs) or [_GONE] * len(fps)
        self._fps: list[str | None] = list(fps) or [None] * len(self._objs)
        self._quick: dict[int, tuple[Any, Any, Any]] = {}  # for positions whose object is gone

    @classmethod
    def first(cls, items: Sequence[Any]) -> HeldHistory:
        """The first list passed, kept as fingerprints only: it may hold only new items (a
        caller passing deltas), whose objects the tracker must not keep alive."""
        held = cls(fps=[_fp(item, i) for i, item in enumerate(items)])
        ends = {0, 1, len(items) - 1} & set(range(len(items)))
        held._quick = {j: _quick_key(items[j]) for j in ends}
        return held

    def __len__(self) -> int:
        return len(self._objs)

    def fp_at(self, i: int) -> str:
        """The fingerprint of position ``i``, computed (once) if not known yet."""
        fp = self._fps[i]
        if fp is None:
            fp = self._fps[i] = _fp(self._objs[i], i)
        return fp

    def _quick_at(self, j: int) -> tuple[Any, Any, Any] | None:
        """The quick key of position ``j``, read once for the ends (0, 1, the last) that every
        check probes; ``None`` when the object is gone and the key was not kept."""
        quick = self._quick.get(j)
        if quick is None:
            obj = self._objs[j]
            if obj is _GONE:
                return None
            quick = _quick_key(obj)
            if j <= 1 or j == len(self._objs) - 1:
                self._quick[j] = quick
        return quick

    def groups(self) -> Provenance:
        """The reasoning groups of the history as passed last (``reasoning_groups``); empty
        after a restore (the objects are gone, only fingerprints remain)."""
        return reasoning_groups(o for o in self._objs if o is not _GONE)

    def fingerprints(self) -> list[str]:
        """Every position's fingerprint (the snapshot form); computes the missing ones."""
        return [self.fp_at(i) for i in range(len(self._objs))]

    # ---------------------------------------------------------------- comparing

    def check(self, items: Sequence[Any]) -> Verdict:
        """Compare the whole history ``items`` with this one (see the module docstring)."""
        objs = self._objs
        m = len(objs)
        if m == 0:
            return _FIRST
        if len(items) >= m and all(map(operator.is_, items, objs)):
            return _UNEDITED
        fps: dict[int, str] = {}
        if not self._continues(items, fps, {}):
            return _NEW_ITEMS
        edit = self._first_difference(items, fps)
        return Verdict(whole=True, edit=edit, fps=fps)

    def _matches(
        self,
        items: Sequence[Any],
        i: int,
        j: int,
        fps: dict[int, str],
        quick: dict[int, tuple[Any, Any, Any]],
    ) -> bool:
        """Whether ``items[i]`` is this history's item ``j``: the same object or content.

        ``fps`` and ``quick`` hold the fingerprints and quick keys of ``items`` read so far
        (each item is read once per check)."""
        if not (0 <= i < len(items) and 0 <= j < len(self._objs)):
            return False
        item = items[i]
        if item is self._objs[j]:
            return True
        held = self._quick.get(j) or self._quick_at(j)
        if held is not None:
            key = quick.get(i)
            if key is None:
                key = quick[i] = _quick_key(item)
            if key != held:
                return False  # ids and call ids are content: different keys, different content
        return self._fp(items, i, fps) == self.fp_at(j)

    @staticmethod
    def _fp(items: Sequence[Any], i: int, fps: dict[int, str]) -> str:
        if i not in fps:
            fps[i] = _fp(items[i], i)
        return fps[i]

    def _continues(
        self,
        items: Sequence[Any],
        fps: dict[int, str],
        quick: dict[int, tuple[Any, Any, Any]],
    ) -> bool:
        """Whether ``items`` is this history, maybe edited (else it is a list of new items).

        It is when it starts as this history does (its first item, or its second when the
        first changed or one was inserted before it), or when it ends with this history's
        last item at ``i`` and starts with the item ``i`` positions before that one (the
        front was trimmed; found scanning back from the end, past the new items only).
        """
        if self._matches(items, 0, 0, fps, quick) or (
            len(items) > 1
            and (self._matches(items, 1, 1, fps, quick) or self._matches(items, 1, 0, fps, quick))
        ):
            return True
        last = len(self._objs) - 1
        for i in range(len(items) - 1, -1, -1):
            if self._matches(items, i, last, fps, quick):
                return last > i and self._matches(items, 0, last - i, fps, quick)
        return False

    def _first_difference(self, items: Sequence[Any], fps: dict[int, str]) -> HistoryEdit | None:
        objs = self._objs
        m, n = len(objs), len(items)
        for i in range(min(m, n)):
            item = items[i]
            if item is objs[i]:
                continue
            if i not in fps:
                fps[i] = _fp(item, i)
            if fps[i] != self.fp_at(i):
                return _edit_at(items, i)
        if n < m:
            return HistoryEdit(index=n, item=f"end of history: {m - n} item(s) removed")
        return None

    # ---------------------------------------------------------------- adopting

    def adopted(self, items: Sequence[Any], verdict: Verdict) -> HeldHistory:
        """This history after the chain took ``items`` (checked by ``verdict``).

        An unedited continuation only appends the new objects (the prefix is the same
        objects); the first list is kept as fingerprints (``first``); anything else starts a
        new history that keeps the fingerprints computed by the check.
        """
        m = len(self._objs)
        if m == 0:
            return HeldHistory.first(items)
        if verdict.same_prefix:
            if m > 2 and self._objs[m - 1] is not _GONE:
                self._quick.pop(m - 1, None)  # no longer the last: read again if probed
            self._objs.extend(items[m:])
            self._fps.extend([None] * (len(items) - m))
            return self
        return HeldHistory(items, [verdict.fps.get(i) for i in range(len(items))])


def _edit_at(items: Sequence[Any], i: int) -> HistoryEdit:
    info = read_item(items[i], i)  # fingerprinted already, so it reads
    return HistoryEdit(index=i, item=describe(items[i]), item_id=info.id or info.call_id)


def _ends_group(item_type: str | None, role: Any) -> bool:
    """Whether an item of this kind is the caller's (an input), so no model output follows."""
    return (
        item_type is None
        or item_type.endswith("_output")
        or item_type == "mcp_approval_response"
        or (item_type == "message" and role != "assistant")
    )


def reasoning_groups(items: Iterable[Any]) -> Provenance:
    """The reasoning groups in ``items``, as the service emitted them (rules A1-A3).

    A reasoning item's group is every model output item with an id after it, up to the next
    reasoning item or the caller's next item (an input message, a tool output, an id-less
    item): parallel calls emitted after one reasoning item all need it (A2/A3), and the first
    must follow it directly (A1). ``following`` maps each reasoning id to that first item's id,
    ``reasoning_for`` each member's id to its reasoning id.
    """
    following: dict[str, str] = {}
    reasoning_for: dict[str, str] = {}
    current: str | None = None
    for item in items:
        info = read_item(item)
        if info.type == "reasoning":
            current = info.id
        elif info.id is None or _ends_group(info.type, field(item, "role")):
            current = None
        elif current is not None:
            following.setdefault(current, info.id)
            reasoning_for[info.id] = current
    return Provenance(following=following, reasoning_for=reasoning_for)


def broken_groups(items: Sequence[Any], groups: Provenance) -> dict[int, str]:
    """The positions of ``items`` whose reasoning group an edit broke, each with its reason.

    A group (``reasoning_groups``) must stay whole: its reasoning item present and followed
    directly by its first item, every other member present after it. When the reasoning or
    its first item was removed, moved apart or given another id, or a member moved before
    the reasoning, every member still present is listed with the reasoning item.
    """
    at = {}
    for i, item in enumerate(items):
        item_id = read_item(item, i).id
        if item_id is not None:
            at[item_id] = i
    members: dict[str, list[int]] = {}
    for item_id, rs_id in groups.reasoning_for.items():
        if item_id in at:
            members.setdefault(rs_id, []).append(at[item_id])
    broken: dict[int, str] = {}
    for rs_id, first_id in groups.following.items():
        rs_at, present = at.get(rs_id), members.get(rs_id, [])
        if rs_at is None and not present:
            continue
        if rs_at is not None and at.get(first_id) == rs_at + 1 and min(present) > rs_at:
            continue
        why = f"reasoning {rs_id} and {first_id} belong together and the edit split them"
        for j in (*present, *(() if rs_at is None else (rs_at,))):
            broken[j] = why
    return broken


def regroup(
    items: list[Any], groups: Provenance, check: str
) -> tuple[list[Any], tuple[RepairAction, ...]]:
    """``items`` without the reasoning groups an edit broke (``check="repair"``).

    ``check="raise"`` raises ``HistoryError`` naming the first broken group (the service
    would answer 400); ``"off"`` leaves ``items`` as they are.
    """
    broken = broken_groups(items, groups) if check != "off" and groups.following else {}
    if not broken:
        return items, ()
    if check == "raise":
        first = min(broken)
        raise HistoryError(
            f"The edited history cannot be sent as is: items[{first}]: {broken[first]} "
            "(the service answers 400 for a reasoning item without its item, or an item "
            "without its reasoning). Remove both, or let the tracker drop the whole group "
            "(check='repair')."
        )
    actions = tuple(
        RepairAction(
            kind="drop_reasoning_group",
            index=i,
            item_id=read_item(items[i], i).id,
            call_id=read_item(items[i], i).call_id,
            detail=why,
        )
        for i, why in sorted(broken.items())
    )
    return [item for i, item in enumerate(items) if i not in broken], actions


def edited_error(edit: HistoryEdit, *, conversation_id: str | None) -> EditedHistoryError:
    """The error for ``edit`` under ``on_edit="raise"`` (or in a conversation)."""
    where = (
        f"conversation {conversation_id} holds"
        if conversation_id is not None
        else "the chain (or stateless transcript) holds"
    )
    fix = (
        "a conversation cannot be restarted by the tracker: start a new conversation (and "
        "tracker) with the edited history, or pass the history unedited"
        if conversation_id is not None
        else "pass the history unedited, or let the tracker restart the chain with the whole "
        "edited history (Tracker(on_edit='restart'), the default)"
    )
    return EditedHistoryError(
        f"History edited behind the chain: {edit} differs from the item {where} at that "
        f"position, and a delta would hide the edit. Fix: {fix}. (If you pass only new items, "
        "pass content_match=False.)",
        index=edit.index,
        item_id=edit.item_id,
    )
