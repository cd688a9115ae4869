"""Choosing a request's delta: which of the items a turn passes the server lacks.

``Tracker.prepare`` reads the items in two passes (``skip_held``: held objects and items the
ledger knows by id or call_id, one lookup each; ``select``: the rest, read and matched by key or
counted content fingerprint), then applies the compaction boundary (``drop_compacted_outputs``),
refuses a compaction while calls stay pending (``refuse_pending``) and runs the per-delta
tool-call check (``checked_delta``). Each function reads the tracker's ledger and changes
nothing of it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from ._delta_check import DeltaCheck, check_delta
from ._errors import CompactedCallError, CompactionError
from ._fingerprint import content_key
from ._identity import IdentityMap
from ._items import COMPACTION_TRIGGER, field, is_async_call, read_item
from ._prepared import (
    Key,
    SkipReason,
    anon_fingerprint,
    anon_key,
    keys_of,
    known_dict,
    known_object,
)
from ._repair_actions import RepairAction, RepairPolicy
from ._snapshot import Ledger

Keys = tuple[Key, ...]
TRIGGER_KEYS: Keys = (("trigger", ""),)


#: Key kinds the ledger remembers by string (provider id, output or call call_id): an item
#: carrying one is matched by it, so its object need not be held.
_STRING_KEYS = frozenset({"id", "out", "call"})


class Held:
    """An id-less object this tracker sent or observed: how often, when last recorded."""

    __slots__ = ("fp", "serial", "times")

    def __init__(self, keys: Keys, serial: int) -> None:
        self.fp = anon_fingerprint(keys)  # set for an anonymous item: it may be sent again
        self.times = 1
        self.serial = serial


def needs_identity(keys: Keys) -> bool:
    """Whether an item with ``keys`` can only be recognised by identity (so must be held).

    Anonymous items (no provider id, no call_id), ``compaction_trigger``s and a compaction
    window's items: everything else is matched by the ledger's string keys.
    """
    return not keys or keys[0][0] not in _STRING_KEYS


def split_triggers(seq: list[Any]) -> tuple[list[Any], Any]:
    """``seq`` without its ``compaction_trigger`` items, and the final one (if it is last).

    A trigger must be the final input item; one elsewhere was sent with an earlier turn.
    """

    def is_trigger(item: Any) -> bool:
        kind = item.get("type") if type(item) is dict else field(item, "type")
        return bool(kind == COMPACTION_TRIGGER)

    for item in seq:  # one pass over a whole history: plain dicts read inline
        kind = item.get("type") if type(item) is dict else field(item, "type")
        if kind == COMPACTION_TRIGGER:
            break
    else:
        return seq, None
    last = seq[-1] if is_trigger(seq[-1]) else None
    return [item for item in seq if not is_trigger(item)], last


def trigger_keys(trigger: Any, ledger: Ledger, held: bool) -> tuple[Keys, SkipReason | None]:
    """The keys a final ``compaction_trigger`` is recorded under, and why it is not sent again.

    A trigger carrying an id (SDK 3.36+) is keyed by it like any item the server holds, so the
    ledger (and a snapshot) knows it was sent (``"server_id"``). An id-less one is only
    recognised by identity (``TRIGGER_KEYS``; ``held``: this tracker sent that object).
    """
    keys = keys_of(read_item(trigger)) or TRIGGER_KEYS
    return keys, "held_object" if held else ledger.knows(keys)


def drop_compacted_outputs(
    ledger: Ledger, check: DeltaCheck, send: list[Any], keys: list[Keys]
) -> tuple[list[Any], list[Keys], tuple[RepairAction, ...]]:
    """Outputs for calls a compaction summarised: raise, drop (``check="repair"``) or keep.

    Sent, each would be answered ``No tool call found for function call output``.
    """
    compacted = ledger.compacted_call_ids
    if not compacted or check == "off":
        return send, keys, ()
    hits = {
        i: value
        for i, item_keys in enumerate(keys)
        for kind, value in item_keys
        if kind == "out" and value in compacted
    }
    if not hits:
        return send, keys, ()
    call_ids = tuple(hits.values())
    if check == "raise":
        raise CompactedCallError(
            f"Output(s) for call(s) {', '.join(call_ids)} answer calls a compaction "
            f"(latest {ledger.last_compaction_id or 'unknown'}) summarised before they "
            "were answered; the service would reject them (No tool call found for function "
            "call output). Leave them out, or let the tracker drop them (check='repair').",
            call_ids=call_ids,
        )
    actions = tuple(
        RepairAction(
            kind="drop_compacted_output",
            index=i,
            call_id=cid,
            detail="its call was compacted before it was answered",
        )
        for i, cid in hits.items()
    )
    kept = [i for i in range(len(send)) if i not in hits]
    return [send[i] for i in kept], [keys[i] for i in kept], actions


def refuse_pending(ledger: Ledger, send: list[Any], keys: list[Keys], what: str) -> None:
    """Raise ``CompactionError`` if a call would still be pending after ``send``."""
    open_calls = dict.fromkeys(ledger.pending_call_ids)
    for item, item_keys in zip(send, keys, strict=True):
        for kind, value in item_keys:
            if kind == "call" and not is_async_call(item):
                open_calls[value] = None
            elif kind == "out":
                open_calls.pop(value, None)
    if open_calls:
        names = ", ".join(open_calls)
        raise CompactionError(
            f"Refusing {what}: tool call(s) {names} are pending, and the service would "
            "summarise them without their outputs. Send their outputs first (or with this "
            "request), then compact.",
            call_ids=tuple(open_calls),
        )


def skip_held(
    held: IdentityMap[Held],
    ledger: Ledger,
    seq: list[Any],
    used: dict[str, int],
    reasons: dict[SkipReason, int],
) -> list[tuple[int, Any]]:
    """Pass 1, one lookup per item: skip held objects and items known by a string key.

    Held id-less objects claim their fingerprint occurrences first, wherever they stand,
    so a rebuilt copy elsewhere only matches what remains. An object occurring more often
    than it was sent is new from its (M+1)-th occurrence on. An item the ledger knows by its
    id or call_id is skipped here too (``known_dict``), without a full read.
    """
    unknown: list[tuple[int, Any]] = []
    seen: dict[int, int] = {}  # id() is safe here: seq keeps every object alive
    keyed: list[SkipReason] = []
    for index, item in enumerate(seq):
        # A keyed item is never held: look it up by its keys first.
        reason = (known_dict if type(item) is dict else known_object)(item, ledger)
        if reason is not None:
            keyed.append(reason)
            continue
        entry = held.get(item)
        if entry is None:
            unknown.append((index, item))
        elif entry.fp is not None:
            n = seen[id(item)] = seen.get(id(item), 0) + 1
            if n > entry.times:
                unknown.append((index, item))
            else:
                used[entry.fp] = used.get(entry.fp, 0) + 1
    if keyed:  # a delta of new items has none: no Counter to build
        for reason, count in Counter(keyed).items():
            reasons[reason] = reasons.get(reason, 0) + count
    if len(unknown) + len(keyed) < len(seq):
        reasons["held_object"] = len(seq) - len(unknown) - len(keyed)
    return unknown


def select(
    ledger: Ledger,
    unknown: list[tuple[int, Any]],
    used: dict[str, int],
    reasons: dict[SkipReason, int],
    *,
    content_match: bool,
) -> tuple[list[Any], list[Keys]]:
    """Pass 2, over the rest only: read, match by id / call_id / counted fingerprint."""
    knows = ledger.knows
    sent_fps = ledger.fingerprints
    send: list[Any] = []
    keys: list[Keys] = []
    batch: set[Key] = set()
    for index, item in unknown:
        item_keys = keys_of(read_item(item, index))
        reason: SkipReason | None
        if item_keys:
            reason = knows(item_keys)
            if reason is None and not batch.isdisjoint(item_keys):
                reason = "duplicate_in_input"  # the service refuses a repeated id
        else:
            fp = content_key(item, index)
            item_keys = anon_key(fp)
            reason = None
            if content_match and sent_fps.get(fp, 0) > used.get(fp, 0):
                used[fp] = used.get(fp, 0) + 1
                reason = "content"
        if reason is not None:
            reasons[reason] = reasons.get(reason, 0) + 1
            continue
        batch.update(item_keys)
        send.append(item)
        keys.append(item_keys)
    return send, keys


def checked_delta(
    ledger: Ledger,
    check: DeltaCheck,
    policy: RepairPolicy,
    send: list[Any],
    keys: list[Keys],
) -> tuple[list[Any], list[Keys], tuple[RepairAction, ...]]:
    """Apply the per-delta tool-call check (``check=``); repairs keep each item's keys."""
    if check == "off" or _clearly_valid(ledger, send, keys):
        return send, keys, ()
    checked, repairs = check_delta(
        send,
        pending_call_ids={c: ledger.call_types.get(c, "") for c in ledger.pending_call_ids},
        known_call_ids=ledger.calls if ledger.whole_chain else None,
        answered_call_ids=ledger.answered_call_ids,
        mode=check,
        policy=policy,
    )
    if not repairs:
        return send, keys, ()
    key_of: IdentityMap[Keys] = IdentityMap()
    for item, item_keys in zip(send, keys, strict=True):
        key_of.set(item, item_keys)
    return checked, [key_of.get(i) or keys_of(read_item(i)) for i in checked], repairs


def _clearly_valid(ledger: Ledger, send: list[Any], keys: list[Keys]) -> bool:
    """True only when the delta surely passes the tool-call rules (the common turn).

    Every call in the delta is answered after it, every pending call is answered, and
    every output answers one of those. Anything else goes to the full check, which
    decides (and words the error) exactly as the service would.
    """
    pending = ledger.pending_call_ids
    open_calls: set[str] = set()
    answered_pending = 0
    for item, item_keys in zip(send, keys, strict=True):
        for kind, value in item_keys:
            if kind == "call" and not is_async_call(item):
                open_calls.add(value)
            elif kind == "out":
                if value in open_calls:
                    open_calls.discard(value)
                elif value in pending:
                    answered_pending += 1
                else:
                    return False
    return not open_calls and answered_pending == len(pending)
