"""Sessions: a ``Tracker`` in a store, and a lease that lets one worker at a time serve a turn.

Compare-and-set alone lets two workers that loaded the same version both *send* the same delta
(only the second save fails, after the fact). So a worker claims the session first::

    session = claim_session(store, "chat-42", ttl=120)      # SessionBusyError: retry later
    ...  # prepare, send, observe; after each model call:
    renew_session(store, session, turn=progress)            # saves the tracker, renews the lease
    release_session(store, session)                         # final save; the lease is freed

``claim_session`` writes the lease with compare-and-set on the version it loaded, so of all
workers that loaded a version exactly one wins; the others get ``ConflictError`` (lost the race)
or, on their next try, ``SessionBusyError`` (a ``ConflictError`` naming the holder and the
seconds until its lease expires). A lease nobody renews expires: a crashed worker blocks its
session for at most ``ttl`` seconds, then any worker takes it over from the last saved state.
Workers' clocks must agree to well within ``ttl``; ``clock=`` is injectable for tests.

``load_tracker``/``save_tracker`` are the lease-free pair (one process, or CAS-only callers);
``save_tracker`` refuses to overwrite a session whose valid lease another worker holds. Stored
snapshots the tracker cannot restore are reported as ``CorruptStateError`` naming the session,
and stay in the store. The record format is described in ``tracker/stores/_record.py``.

Saves are incremental on a store that can append (every store of this package): a save
appends only what changed since the record this worker loaded or last saved at that version
(``tracker/stores/_changes.py``), as the tracker's journal tells it (``_journal.py``: no
``to_state()``, no whole-snapshot diff), or else by a diff; once the appended changes outweigh
the base (or are too many: ``_incremental.py``), the save writes the whole record as a new base
instead (``_incremental.py``). Every write names the session's epoch, so a session deleted and
created again is never written as if it were the one read. ``save_tracker`` remembers, per
tracker object, the record it was loaded or saved with; for a tracker it has not seen at that
version it first reads the stored record and checks that ``load_tracker`` could restore it.
``claim_session(reuse=...)`` claims back a session this worker released without reading it.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from tracker._errors import ConflictError, UsageError
from tracker._tracker import Tracker

from ._base import AsyncStore, Loaded, Store
from ._incremental import _awrite_tracker, _Held, _known, _remember, _write_tracker
from ._journal import journal_ops
from ._record import Lease, busy, parse_record, restore_tracker

__all__ = [
    "DEFAULT_LEASE_TTL",
    "LeasedSession",
    "aclaim_session",
    "aload_tracker",
    "arelease_session",
    "arenew_session",
    "asave_tracker",
    "claim_session",
    "load_tracker",
    "new_owner",
    "release_session",
    "renew_session",
    "save_tracker",
]

DEFAULT_LEASE_TTL = 120.0
"""Seconds a lease lasts unless renewed: well above one model call or one batch of tools."""

Clock = Callable[[], float]


def new_owner() -> str:
    """A lease owner name unique to this claim: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


@attrs.define
class LeasedSession:
    """A session this worker has claimed: its tracker, stored version, lease and turn progress.

    ``renew_session``/``release_session`` update ``version``, ``lease`` and ``turn`` in place
    after each successful save (and leave them unchanged when the save fails).
    """

    session_id: str
    tracker: Tracker
    version: int
    lease: Lease | None
    turn: dict[str, Any] | None
    ttl: float
    clock: Clock = attrs.field(repr=False)
    held: _Held | None = attrs.field(default=None, repr=False, eq=False)
    """The record as stored at ``version`` (what the next save appends a change to)."""


# ---------------------------------------------------------------------- pure steps


def _claim(
    session_id: str,
    loaded: Loaded | None,
    new_tracker: dict[str, Any],
    *,
    owner: str | None,
    ttl: float,
    clock: Clock,
) -> LeasedSession:
    if not ttl > 0:
        raise UsageError(
            f"lease ttl for session {session_id!r} must be a positive number of seconds "
            f"(how long a turn may take), got {ttl!r}"
        )
    owner = new_owner() if owner is None else owner
    record = parse_record(session_id, loaded)
    version = 0 if loaded is None else loaded.version
    now = clock()
    current = record.lease
    if current is not None and current.owner != owner and current.expires_in(now) > 0:
        raise busy(session_id, current, now)
    tracker = restore_tracker(session_id, version, record.tracker_state, new_tracker)
    lease = Lease(owner, now + ttl)
    held = _Held.of(loaded)
    if held is not None and record.tracker_state is not None:
        held.mark = tracker._mark_state()  # restored from this very record
    return LeasedSession(session_id, tracker, version, lease, _copy(record.turn), ttl, clock, held)


def _copy(turn: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A private deep copy of turn progress (small), so no caller can change a held record."""
    return None if turn is None else json.loads(json.dumps(turn))


def _next(
    session: LeasedSession, keep: bool, turn: Mapping[str, Any] | None
) -> tuple[Lease | None, dict[str, Any] | None, dict[str, Any] | None]:
    """The lease to write next, renewed (``keep``) or freed, and two copies of ``turn``."""
    owner = session.lease.owner if session.lease is not None else new_owner()
    lease = Lease(owner, session.clock() + session.ttl) if keep else None
    return lease, _copy(turn), _copy(turn)


def _saved(
    session: LeasedSession,
    written: tuple[int, _Held],
    lease: Lease | None,
    progress: dict[str, Any] | None,
) -> int:
    version, session.held = written
    session.version, session.lease, session.turn = version, lease, progress
    return version


def _lease_lost(session: LeasedSession, exc: ConflictError) -> ConflictError:
    owner = session.lease.owner if session.lease else "?"
    return ConflictError(
        f"session {session.session_id!r} changed while worker {owner!r} held its lease (it "
        f"ran past its {session.ttl:g} s lease and another worker took the session over, or "
        "the session was deleted). Nothing was saved; this turn stops here and the session "
        "continues from the other worker's state. Raise the lease ttl if turns take longer",
        session_id=session.session_id,
        expected_version=exc.expected_version,
        actual_version=exc.actual_version,
    )


def _check_free(
    session_id: str, loaded: Loaded | None, version: int, now: float
) -> dict[str, Any] | None:
    """The stored turn progress, after checking that nobody else holds a valid lease."""
    if loaded is None or loaded.version != version:
        return None  # the compare-and-set reports the mismatch
    record = parse_record(session_id, loaded)
    # Never overwrite what load_tracker refuses: that is how silent data loss starts.
    restore_tracker(session_id, version, record.tracker_state, {})
    if record.lease is not None and record.lease.expires_in(now) > 0:
        raise busy(session_id, record.lease, now)
    return record.turn


def _reclaim(
    session_id: str, kept: LeasedSession, owner: str | None, ttl: float
) -> LeasedSession | None:
    """The claim of a session this worker released, built from what it holds; ``None`` when
    it cannot be (held record or epoch unknown, or the tracker changed since its last save)."""
    held = kept.held
    if kept.session_id != session_id or held is None or held.epoch is None or not ttl > 0:
        return None
    record = parse_record(session_id, Loaded(held.record, kept.version))
    now = kept.clock()
    lease = record.lease
    if lease is not None and lease.owner != owner and lease.expires_in(now) > 0:
        return None  # not ours: the full claim reports it busy
    if journal_ops(kept.tracker, held.mark, held.record, lease, record.turn) != []:
        return None  # changed since it was saved (or not known): start from the stored record
    lease = Lease(new_owner() if owner is None else owner, now + ttl)
    return LeasedSession(
        session_id, kept.tracker, kept.version, lease, _copy(record.turn), ttl, kept.clock, held
    )


def _restored(loaded: Loaded | None, tracker: Tracker) -> _Held | None:
    """What a load tells, with the mark of the tracker just restored from it."""
    held = _Held.of(loaded)
    if held is not None:
        held.mark = tracker._mark_state()
    return held


def _restore(session_id: str, loaded: Loaded | None, new: dict[str, Any]) -> tuple[Tracker, int]:
    version = 0 if loaded is None else loaded.version
    state = parse_record(session_id, loaded).tracker_state
    return restore_tracker(session_id, version, state, new), version


# ---------------------------------------------------------------------- blocking


def claim_session(
    store: Store,
    session_id: str,
    *,
    owner: str | None = None,
    ttl: float = DEFAULT_LEASE_TTL,
    clock: Clock = time.time,
    reuse: LeasedSession | None = None,
    **new_tracker: Any,
) -> LeasedSession:
    """Take the session's lease for ``ttl`` seconds; return the claimed session.

    ``owner`` names this worker (default: ``new_owner()``); a lease already held by the same
    owner is re-taken. A missing session is created with ``Tracker(**new_tracker)``. Raises
    ``SessionBusyError`` while another owner's lease is valid, ``ConflictError`` when another
    worker claimed or saved between our load and our write (reload and retry), and
    ``CorruptStateError`` for a record that cannot be read (left untouched).

    ``reuse`` is a session this worker released earlier (its tracker unchanged since): if the
    store is still at its version and epoch (nobody wrote since; not deleted and created again),
    the lease is appended to it and its tracker is served on, without reading the session: a
    claim then costs what changed, not the session's length. Otherwise the session is loaded
    as without ``reuse``. ``clock`` applies to the new claim; ``reuse`` is not changed.
    """
    if reuse is not None:
        session = _reclaim(session_id, attrs.evolve(reuse, clock=clock), owner, ttl)
        if session is not None:
            try:
                session.version, session.held = _write_session(
                    store, session, session.lease, session.turn
                )
            except ConflictError:
                pass  # someone else wrote: load it below
            else:
                return session
    session = _claim(
        session_id, store.load(session_id), new_tracker, owner=owner, ttl=ttl, clock=clock
    )
    session.version, session.held = _write_session(store, session, session.lease, session.turn)
    return session


def _write_session(
    store: Store,
    session: LeasedSession,
    lease: Lease | None,
    turn: dict[str, Any] | None,
) -> tuple[int, _Held]:
    """Write the session's tracker with ``lease`` and ``turn`` at its version."""
    return _write_tracker(
        store,
        session.session_id,
        session.tracker,
        session.version,
        session.held,
        lease=lease,
        turn=turn,
    )


def renew_session(
    store: Store, session: LeasedSession, *, turn: Mapping[str, Any] | None = None
) -> int:
    """Save the session's tracker and ``turn`` progress and extend the lease; return the version.

    Raises ``ConflictError`` when the lease was lost (it expired and another worker took the
    session over): stop serving the turn, nothing more may be sent for it.
    """
    return _store_progress(store, session, turn, keep=True)


def release_session(
    store: Store, session: LeasedSession, *, turn: Mapping[str, Any] | None = None
) -> int:
    """Save the session's tracker and ``turn`` progress and free the lease; return the version.

    Raises ``ConflictError`` like ``renew_session`` when the lease was lost.
    """
    return _store_progress(store, session, turn, keep=False)


def _store_progress(
    store: Store, session: LeasedSession, turn: Mapping[str, Any] | None, *, keep: bool
) -> int:
    lease, record_turn, progress = _next(session, keep, turn)
    try:
        written = _write_session(store, session, lease, record_turn)
    except ConflictError as exc:
        raise _lease_lost(session, exc) from exc
    return _saved(session, written, lease, progress)


def load_tracker(store: Store, session_id: str, **new_tracker: Any) -> tuple[Tracker, int]:
    """Return the session's tracker and the version to pass to ``save_tracker``.

    A session that does not exist yet gives ``Tracker(**new_tracker)`` and version ``0``; the
    keyword arguments (``previous_response_id=``, ``conversation_id=``) apply only then. Reads
    both session records and bare snapshots of earlier releases. Raises ``CorruptStateError``
    for stored data that cannot be read or restored (left untouched).
    """
    loaded = store.load(session_id)
    tracker, version = _restore(session_id, loaded, new_tracker)
    _remember(store, session_id, tracker, version, _restored(loaded, tracker))
    return tracker, version


def _free_turn(session_id: str, held: _Held, version: int, now: float) -> dict[str, Any] | None:
    """The turn progress of a record this tracker was loaded or saved with, if nobody holds it."""
    record = parse_record(session_id, Loaded(held.record, version))
    if record.lease is not None and record.lease.expires_in(now) > 0:
        raise busy(session_id, record.lease, now)
    return record.turn


def save_tracker(
    store: Store, session_id: str, tracker: Tracker, version: int, *, clock: Clock = time.time
) -> int:
    """Save ``tracker`` if the session is still at ``version``; return the new version.

    Raises ``ConflictError`` (nothing written) when another worker saved in between: reload
    with ``load_tracker`` and serve the turn again from there; ``SessionBusyError`` when
    another worker holds the session's lease (it is serving a turn right now).
    """
    held = _known(store, session_id, tracker, version)
    if held is not None:
        turn = _free_turn(session_id, held, version, clock())
    else:
        loaded = store.load(session_id)
        turn = _check_free(session_id, loaded, version, clock())
        held = _Held.of(loaded) if loaded is not None and loaded.version == version else None
    written = _write_tracker(store, session_id, tracker, version, held, lease=None, turn=turn)
    _remember(store, session_id, tracker, *written)
    return written[0]


# ---------------------------------------------------------------------- async


async def aclaim_session(
    store: AsyncStore,
    session_id: str,
    *,
    owner: str | None = None,
    ttl: float = DEFAULT_LEASE_TTL,
    clock: Clock = time.time,
    reuse: LeasedSession | None = None,
    **new_tracker: Any,
) -> LeasedSession:
    """The ``AsyncStore`` form of ``claim_session``."""
    if reuse is not None:
        session = _reclaim(session_id, attrs.evolve(reuse, clock=clock), owner, ttl)
        if session is not None:
            try:
                session.version, session.held = await _awrite_session(
                    store, session, session.lease, session.turn
                )
            except ConflictError:
                pass  # someone else wrote: load it below
            else:
                return session
    loaded = await store.load(session_id)
    session = _claim(session_id, loaded, new_tracker, owner=owner, ttl=ttl, clock=clock)
    session.version, session.held = await _awrite_session(
        store, session, session.lease, session.turn
    )
    return session


async def _awrite_session(
    store: AsyncStore,
    session: LeasedSession,
    lease: Lease | None,
    turn: dict[str, Any] | None,
) -> tuple[int, _Held]:
    """The ``AsyncStore`` form of ``_write_session``."""
    return await _awrite_tracker(
        store,
        session.session_id,
        session.tracker,
        session.version,
        session.held,
        lease=lease,
        turn=turn,
    )


async def arenew_session(
    store: AsyncStore, session: LeasedSession, *, turn: Mapping[str, Any] | None = None
) -> int:
    """The ``AsyncStore`` form of ``renew_session``."""
    return await _astore_progress(store, session, turn, keep=True)


async def arelease_session(
    store: AsyncStore, session: LeasedSession, *, turn: Mapping[str, Any] | None = None
) -> int:
    """The ``AsyncStore`` form of ``release_session``."""
    return await _astore_progress(store, session, turn, keep=False)


async def _astore_progress(
    store: AsyncStore, session: LeasedSession, turn: Mapping[str, Any] | None, *, keep: bool
) -> int:
    lease, record_turn, progress = _next(session, keep, turn)
    try:
        written = await _awrite_session(store, session, lease, record_turn)
    except ConflictError as exc:
        raise _lease_lost(session, exc) from exc
    return _saved(session, written, lease, progress)


async def aload_tracker(
    store: AsyncStore, session_id: str, **new_tracker: Any
) -> tuple[Tracker, int]:
    """The ``AsyncStore`` form of ``load_tracker``."""
    loaded = await store.load(session_id)
    tracker, version = _restore(session_id, loaded, new_tracker)
    _remember(store, session_id, tracker, version, _restored(loaded, tracker))
    return tracker, version


async def asave_tracker(
    store: AsyncStore, session_id: str, tracker: Tracker, version: int, *, clock: Clock = time.time
) -> int:
    """The ``AsyncStore`` form of ``save_tracker``."""
    held = _known(store, session_id, tracker, version)
    if held is not None:
        turn = _free_turn(session_id, held, version, clock())
    else:
        loaded = await store.load(session_id)
        turn = _check_free(session_id, loaded, version, clock())
        held = _Held.of(loaded) if loaded is not None and loaded.version == version else None
    written = await _awrite_tracker(
        store, session_id, tracker, version, held, lease=None, turn=turn
    )
    _remember(store, session_id, tracker, *written)
    return written[0]
