"""Incremental saves: the record a worker holds, and whether a save appends or compacts.

A worker remembers the session record as stored at the version it loaded or last saved
(``_Held``). Its next save diffs the new record against it and appends the change
(``IncrementalStore.append``); once the appended changes outweigh the base (past
``COMPACT_MIN_BYTES``) or number ``COMPACT_MAX_CHANGES`` (or one per
``COMPACT_BYTES_PER_CHANGE`` of the base, if more), the save writes the whole record as a new
base instead, which drops the log in the same atomic step (compaction). Both bounds grow with
the base, so a compaction, O(session), comes once per O(session) of saves: its share of a turn
does not grow with the session. Stores without ``append`` always get whole records. See
``_changes.py`` for the change format.
"""

from __future__ import annotations

import json
import weakref
from typing import Any, Final

import attrs

from tracker._tracker import Tracker

from ._base import AsyncStore, AsyncStoreAdapter, Loaded, Store, new_epoch
from ._changes import diff_ops, encode_change
from ._journal import apply_in_place, journal_ops
from ._record import RECORD_FORMAT, Lease, encode_record

__all__ = ["COMPACT_BYTES_PER_CHANGE", "COMPACT_MAX_CHANGES", "COMPACT_MIN_BYTES"]

COMPACT_MIN_BYTES: Final = 64 * 1024
"""A change log smaller than this is never compacted, however small its base."""
COMPACT_MAX_CHANGES: Final = 1000
"""A change log this long is compacted whatever its size (a load applies every change), unless
its base allows more (``COMPACT_BYTES_PER_CHANGE``)."""
COMPACT_BYTES_PER_CHANGE: Final = 512
"""A base of ``n`` bytes takes up to ``n // 512`` changes before a compaction (when more than
``COMPACT_MAX_CHANGES``): a load applying them costs about what decoding the base does, and a
5 MB base is rewritten every ~10,000 saves, not every 1,000."""


@attrs.define
class _Held:
    """The record as stored at a version this worker knows: what the next save diffs against.

    ``record`` is never handed out or mutated; ``base_bytes``/``log_bytes``/``log_count``
    estimate the stored base and change log, to decide when to compact; ``epoch`` is the
    session's epoch (``Loaded.epoch``), which every append names, or ``None`` if unknown.
    """

    record: dict[str, Any]
    base_bytes: int = 0
    log_bytes: int = 0
    log_count: int = 0
    epoch: str | None = None
    mark: object = None
    """The tracker's mark taken when ``record`` was stored (``_journal.py``), if any."""

    @classmethod
    def of(cls, loaded: Loaded | None) -> _Held | None:
        """What a load tells: the record as stored and the size of its parts."""
        if loaded is None:
            return None
        return cls(
            loaded.state, loaded.base_bytes, loaded.log_bytes, loaded.log_count, loaded.epoch
        )


def _can_append(store: Any) -> bool:
    if isinstance(store, AsyncStoreAdapter):
        store = store.store
    return callable(getattr(store, "append", None))


def _change(held: _Held | None, record: dict[str, Any]) -> tuple[dict[str, Any], int] | None:
    """The change to append to ``held`` to get ``record`` and its size; ``None``: save whole."""
    if held is None or held.record.get("format") != RECORD_FORMAT:
        return None  # a bare snapshot of an earlier release: rewrite it as a session record
    return _sized(held, diff_ops(held.record, record))


def _sized(held: _Held, ops: list[list[Any]]) -> tuple[dict[str, Any], int] | None:
    """The change of ``ops`` and its size; ``None`` when the log is due for compaction."""
    change = encode_change(ops)
    size = _size(change)
    most = max(COMPACT_MAX_CHANGES, held.base_bytes // COMPACT_BYTES_PER_CHANGE)
    if held.log_count >= most or held.log_bytes + size > max(COMPACT_MIN_BYTES, held.base_bytes):
        return None  # compaction: this save writes a new base
    return change, size


def _journal_plan(
    store: object,
    tracker: Tracker,
    version: int,
    held: _Held | None,
    *,
    lease: Lease | None,
    turn: dict[str, Any] | None,
) -> tuple[list[list[Any]], dict[str, Any], int] | None:
    """The ops, change and size to append, from the tracker's journal; ``None``: see _write."""
    if version < 1 or held is None or held.record.get("format") != RECORD_FORMAT:
        return None
    if not _can_append(store):
        return None
    ops = journal_ops(tracker, held.mark, held.record, lease, turn)
    sized = None if ops is None else _sized(held, ops)
    return None if ops is None or sized is None else (ops, *sized)


def _appended(held: _Held, ops: list[list[Any]], size: int, tracker: Tracker) -> _Held:
    apply_in_place(held.record, ops)
    after = _after_append(held, held.record, size)
    after.mark = tracker._mark_state()
    return after


def _marked(written: tuple[int, _Held], tracker: Tracker) -> tuple[int, _Held]:
    written[1].mark = tracker._mark_state()
    return written


def _write_tracker(
    store: Store,
    session_id: str,
    tracker: Tracker,
    version: int,
    held: _Held | None,
    *,
    lease: Lease | None,
    turn: dict[str, Any] | None,
) -> tuple[int, _Held]:
    """Save the record of ``tracker``, ``lease`` and ``turn`` at ``version``: append what the
    tracker's journal says changed since ``held``, else diff or write it whole (``_write``)."""
    plan = _journal_plan(store, tracker, version, held, lease=lease, turn=turn)
    if plan is None or held is None:
        record = encode_record(tracker.to_state(), lease, turn)
        return _marked(_write(store, session_id, record, version, held), tracker)
    ops, change, size = plan
    new_version: int = store.append(session_id, change, version, epoch=held.epoch)  # type: ignore[attr-defined]
    return new_version, _appended(held, ops, size, tracker)


async def _awrite_tracker(
    store: AsyncStore,
    session_id: str,
    tracker: Tracker,
    version: int,
    held: _Held | None,
    *,
    lease: Lease | None,
    turn: dict[str, Any] | None,
) -> tuple[int, _Held]:
    """The ``AsyncStore`` form of ``_write_tracker``."""
    plan = _journal_plan(store, tracker, version, held, lease=lease, turn=turn)
    if plan is None or held is None:
        record = encode_record(tracker.to_state(), lease, turn)
        return _marked(await _awrite(store, session_id, record, version, held), tracker)
    ops, change, size = plan
    new_version: int = await store.append(session_id, change, version, epoch=held.epoch)  # type: ignore[attr-defined]
    return new_version, _appended(held, ops, size, tracker)


def _after_append(held: _Held, record: dict[str, Any], size: int) -> _Held:
    return _Held(record, held.base_bytes, held.log_bytes + size, held.log_count + 1, held.epoch)


def _after_save(record: dict[str, Any], epoch: str | None) -> _Held:
    # Measured, not estimated from the old base and log: a record written whole may be far
    # bigger than what it replaced (a session created from a long history, go_stateless), and
    # an estimate too small would compact it every COMPACT_MIN_BYTES of changes. The encoding
    # costs one more pass over a record the save has just written whole (a compaction: rare).
    return _Held(record, _size(record), epoch=epoch)


def _size(document: dict[str, Any]) -> int:
    """The length of ``document`` as compact JSON (as stores keep it)."""
    return len(json.dumps(document, separators=(",", ":"), ensure_ascii=False, default=str))


def _save_epoch(held: _Held | None, version: int) -> str | None:
    """The epoch a full save names: the held one; a new one when creating the session or
    when the stored record has none yet; ``None`` (unknown, not checked) otherwise."""
    if held is not None and held.epoch is not None:
        return held.epoch
    return new_epoch() if version == 0 or held is not None else None


def _write(
    store: Store, session_id: str, record: dict[str, Any], version: int, held: _Held | None
) -> tuple[int, _Held]:
    """Save ``record`` at ``version``: append the change to ``held`` or write it whole."""
    incremental = _can_append(store)
    plan = _change(held, record) if version > 0 and incremental else None
    if not incremental:
        return store.save(session_id, record, version), _after_save(record, None)
    if plan is None or held is None:
        epoch = _save_epoch(held, version)
        new_version: int = store.save(session_id, record, version, epoch=epoch)  # type: ignore[call-arg]
        return new_version, _after_save(record, epoch)
    new_version = store.append(session_id, plan[0], version, epoch=held.epoch)  # type: ignore[attr-defined]
    return new_version, _after_append(held, record, plan[1])


async def _awrite(
    store: AsyncStore, session_id: str, record: dict[str, Any], version: int, held: _Held | None
) -> tuple[int, _Held]:
    """The ``AsyncStore`` form of ``_write``."""
    incremental = _can_append(store)
    plan = _change(held, record) if version > 0 and incremental else None
    if not incremental:
        return await store.save(session_id, record, version), _after_save(record, None)
    if plan is None or held is None:
        epoch = _save_epoch(held, version)
        new_version: int = await store.save(session_id, record, version, epoch=epoch)  # type: ignore[call-arg]
        return new_version, _after_save(record, epoch)
    new_version = await store.append(session_id, plan[0], version, epoch=held.epoch)  # type: ignore[attr-defined]
    return new_version, _after_append(held, record, plan[1])


# tracker -> (store, session id, version, record) it was loaded or saved with by *_tracker.
_BASES: weakref.WeakKeyDictionary[Tracker, tuple[object, str, int, _Held]] = (
    weakref.WeakKeyDictionary()
)


def _known(store: object, session_id: str, tracker: Tracker, version: int) -> _Held | None:
    entry = _BASES.get(tracker)
    if entry is None or entry[0] is not store or entry[1:3] != (session_id, version):
        return None
    return entry[3]


def _remember(
    store: object, session_id: str, tracker: Tracker, version: int, held: _Held | None
) -> None:
    if held is None:
        _BASES.pop(tracker, None)
    else:
        _BASES[tracker] = (store, session_id, version, held)
