"""The session record a store holds: the tracker's snapshot, a lease, and turn progress.

    {"format": "tracker.session", "version": 1,
     "tracker": <Tracker.to_state()>,
     "lease": null | {"owner": "host:pid:token", "expires_at": <unix seconds>},
     "turn": null | <JSON object owned by the loop: progress of an unfinished turn>}

A record without ``"format": "tracker.session"`` is read as a bare ``Tracker.to_state()``
snapshot with no lease (what releases before the lease existed wrote), so old sessions keep
working; the next save writes the new form. Pure functions only: the clock is an argument.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import attrs

from tracker._errors import CorruptStateError, SessionBusyError, StateError
from tracker._tracker import Tracker

from ._base import Loaded, corrupt

__all__ = [
    "RECORD_FORMAT",
    "RECORD_VERSION",
    "Lease",
    "Record",
    "busy",
    "encode_record",
    "parse_record",
    "restore_tracker",
]

RECORD_FORMAT: Final = "tracker.session"
RECORD_VERSION: Final = 1


@attrs.frozen
class Lease:
    """Who serves the session's turn now (``owner``) and until when (``expires_at``, unix s)."""

    owner: str
    expires_at: float

    def expires_in(self, now: float) -> float:
        """Seconds left at ``now`` (``<= 0``: expired, anyone may take the session over)."""
        return self.expires_at - now


@attrs.frozen
class Record:
    """A session record as read: tracker snapshot (not yet restored), lease, turn progress."""

    tracker_state: dict[str, Any] | None
    lease: Lease | None
    turn: dict[str, Any] | None


def parse_record(session_id: str, loaded: Loaded | None) -> Record:
    """Read a stored record (either form); raise ``CorruptStateError`` naming the session."""
    if loaded is None:
        return Record(None, None, None)
    state = loaded.state
    if state.get("format") != RECORD_FORMAT:
        return Record(state, None, None)  # a bare snapshot, written before leases existed
    where = f"version {loaded.version}"
    if state.get("version") != RECORD_VERSION:
        raise corrupt(
            session_id,
            f"{where} is a session record of format version {state.get('version')!r}; this "
            f"release reads version {RECORD_VERSION} (upgrade tracker if a newer one wrote it)",
        )
    tracker_state, lease, turn = state.get("tracker"), state.get("lease"), state.get("turn")
    if not isinstance(tracker_state, dict):
        raise corrupt(session_id, f"{where} has no tracker snapshot object")
    if turn is not None and not isinstance(turn, dict):
        raise corrupt(session_id, f"{where} has a turn that is not an object")
    return Record(tracker_state, _lease(session_id, where, lease), turn)


def _lease(session_id: str, where: str, raw: Any) -> Lease | None:
    if raw is None:
        return None
    owner = raw.get("owner") if isinstance(raw, dict) else None
    expires = raw.get("expires_at") if isinstance(raw, dict) else None
    if (
        not isinstance(owner, str)
        or isinstance(expires, bool)
        or not isinstance(expires, int | float)
        or not math.isfinite(expires)
    ):
        raise corrupt(session_id, f"{where} has a malformed lease {raw!r}")
    return Lease(owner, float(expires))


def encode_record(
    tracker_state: Mapping[str, Any], lease: Lease | None, turn: Mapping[str, Any] | None
) -> dict[str, Any]:
    """The record to save: a tracker snapshot, the ``lease`` and the ``turn`` progress."""
    return {
        "format": RECORD_FORMAT,
        "version": RECORD_VERSION,
        "tracker": dict(tracker_state),
        "lease": None if lease is None else attrs.asdict(lease),
        "turn": None if turn is None else dict(turn),
    }


def restore_tracker(
    session_id: str, version: int, state: dict[str, Any] | None, new_tracker: dict[str, Any]
) -> Tracker:
    """The session's tracker (``Tracker(**new_tracker)`` when there is none yet)."""
    if state is None:
        return Tracker(**new_tracker)
    try:
        return Tracker.from_state(state)
    except StateError as exc:
        raise CorruptStateError(
            f"stored state of session {session_id!r} (version {version}) cannot be "
            f"restored: {exc} It was left untouched; inspect it, then delete the session "
            f"(store.delete({session_id!r})) to start it over, or upgrade tracker if a newer "
            "release wrote it",
            session_id=session_id,
        ) from exc


def busy(session_id: str, lease: Lease, now: float) -> SessionBusyError:
    """The retryable error for a session whose valid lease another worker holds."""
    left = lease.expires_in(now)
    return SessionBusyError(
        f"session {session_id!r} is busy: worker {lease.owner!r} holds its lease for another "
        f"{left:.1f} s (serving a turn). Nothing was written; retry after it saves, or after "
        "the lease expires if that worker crashed",
        session_id=session_id,
        owner=lease.owner,
        expires_in=left,
    )
