"""Serving a turn of a store session: claim its lease, run, save progress, release.

Two workers that load the same session version must never both send its delta: the second
one's save would fail, but only after the server got (and billed, and ran tools for) the same
items twice. So a turn claims the session's lease *before* its first model call
(``tracker.stores.claim_session``: compare-and-set, one winner). While it holds the lease it
saves progress after each model call and after each batch of tools (renewing the lease), and
frees the lease with its final save. A busy session is waited for, with backoff, up to
``lease_wait`` seconds, then ``SessionBusyError`` (the turn's ``CancelToken`` ends that wait at
once with ``TurnCancelledError``); a conflict never re-runs a tool or re-sends a delta.

A worker that crashes mid-turn leaves the last progress saved: the tracker (a restored tracker
re-sends deltas that were in flight) and the turn's record ``{"input": <input_key>,
"outputs": [tool outputs not yet delivered]}``. When its lease expires, the next worker sends
those outputs (placeholders for calls whose tools never finished) before anything else; if it
serves the same input, it resumes that turn instead of sending the user's input again.
Only the request in flight at the crash can reach the server twice, and only in a chain, as a
sibling response nobody continues from. A conversation would append it twice, so a turn there
is marked started before its first request, and a worker taking over an unfinished one lists
the conversation first, as a retry does, and uses a stored response instead of re-sending.
"""

from __future__ import annotations

import random
from collections.abc import Generator, Mapping
from typing import Any

import attrs

from tracker._errors import ConflictError, SessionBusyError, StoreError, UsageError
from tracker._tracker import Tracker
from tracker.stores import AsyncStore, LeasedSession, Store

from ._background import CancelToken
from ._core import Checkpoint, Sleep, TurnSpec, drive, input_key
from ._ops import Op
from ._results import TurnCancelledError, TurnResult

__all__ = [
    "DEFAULT_LEASE_WAIT",
    "Claim",
    "Release",
    "Renew",
    "SessionOp",
    "check_lease",
    "check_sources",
    "check_store_option",
    "fresh_tracker",
    "serve_session",
]

DEFAULT_LEASE_WAIT = 5.0
"""Seconds a turn waits for a busy session before ``SessionBusyError``."""

_FIRST_WAIT = 0.02
_MAX_WAIT = 1.0


def check_sources(
    tracker: Tracker | None, session_store: Any, session_id: str | None, conversation: str | None
) -> None:
    """Raise ``UsageError`` unless the turn has exactly one source of state."""
    if session_store is not None and tracker is not None:
        raise UsageError(
            "Pass either tracker=... or session_store=... with session_id=..., not both: "
            "with a session store the loop loads the session's tracker itself."
        )
    if (session_store is None) != (session_id is None):
        raise UsageError("session_store=... and session_id=... go together: pass both or neither.")
    if tracker is not None and conversation not in (None, tracker.conversation_id):
        raise UsageError(
            f"conversation={conversation!r} does not match the tracker's conversation "
            f"{tracker.conversation_id!r}: drop conversation=... or use a matching tracker."
        )


def check_store_option(options: Mapping[str, Any]) -> None:
    """Raise ``UsageError`` for a ``store=`` the loop cannot pass to ``responses.create``.

    ``store`` is the Responses API's flag. A session store passed there (the loop's keyword
    before it was ``session_store``) is named as such. ``store=False`` runs stateless turns
    (``tracker.loop._stateless``).
    """
    if "store" not in options:
        return
    value = options["store"]
    if isinstance(value, Store | AsyncStore):
        raise UsageError(
            f"store={type(value).__name__}(...) is a session store, but store= is the Responses "
            "API's own flag (store=True/False) and goes to responses.create: pass the session "
            "store as session_store=... (with session_id=...)."
        )


def check_lease(lease_ttl: object, lease_wait: object) -> None:
    """Raise ``UsageError`` unless the lease settings are usable numbers of seconds."""
    for name, value, low in (("lease_ttl", lease_ttl, "> 0"), ("lease_wait", lease_wait, ">= 0")):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        ok = ok and (value > 0 if low == "> 0" else value >= 0)  # type: ignore[operator]
        if not ok:
            raise UsageError(f"{name} must be a number of seconds {low}, got {value!r}.")


def fresh_tracker(conversation: str | None) -> Tracker:
    """A tracker for a new chain, or for the conversation ``conversation``."""
    return Tracker(conversation_id=conversation)


def _check_place(tracker: Tracker, conversation: str | None, session_id: str) -> None:
    if conversation is not None and tracker.conversation_id != conversation:
        raise UsageError(
            f"Session {session_id!r} runs in {tracker.conversation_id or 'a response chain'}, "
            f"not in conversation {conversation!r}: drop conversation=... or use another session."
        )


@attrs.frozen
class Claim:
    """Claim the session's lease (``claim_session``): send back the ``LeasedSession``."""


@attrs.frozen
class Renew:
    """Save ``session`` with its ``turn`` progress, renewing the lease (``renew_session``)."""

    session: LeasedSession
    turn: Mapping[str, Any] | None


@attrs.frozen
class Release:
    """Save ``session`` with ``turn`` progress and free the lease (``release_session``).

    Send back the new version.
    """

    session: LeasedSession
    turn: Mapping[str, Any] | None


SessionOp = Claim | Renew | Release


def serve_session(
    session_id: str, user_input: Any, spec: TurnSpec, conversation: str | None, lease_wait: float
) -> Generator[SessionOp | Op, Any, TurnResult]:
    """One turn of a store session; see the module docstring. I/O is left to a driver.

    Yields the turn's own operations (see ``drive``) and ``Claim``/``Renew``/``Release``.
    A failed turn releases the session with its last progress before the error is re-raised,
    so the session holds what the server holds.
    """
    session: LeasedSession = yield from _claim(session_id, lease_wait, spec.cancel)
    key = input_key(user_input)
    lost: list[ConflictError] = []
    try:
        _check_place(session.tracker, conversation, session_id)
        progress = session.turn or {}
        carried = [o for o in progress.get("outputs") or () if isinstance(o, dict)]
        in_conversation = session.tracker.conversation_id is not None
        unfinished = session.turn is not None  # the last worker did not release it cleanly
        if in_conversation and not unfinished:
            # Mark the turn started before its first request, so that whoever takes over after
            # a crash knows to look in the conversation for a request this worker had stored.
            try:
                yield Renew(session, {"outputs": [], "started": key})
            except ConflictError as exc:
                lost.append(exc)
                raise
        gen = drive(
            session.tracker,
            user_input,
            spec,
            carried=carried,
            resume=progress.get("input") == key,
            reconcile=in_conversation and unfinished,
        )
        result: TurnResult = yield from _relay(gen, session, key, lost)
    except GeneratorExit:
        raise
    except BaseException as exc:
        if not lost:  # after a lost lease the session is not ours to save
            try:
                yield Release(session, session.turn)
            except StoreError as save_error:
                exc.add_note(
                    f"tracker.loop: session {session_id!r} could not be saved after this error "
                    f"either ({save_error}); its lease expires by itself and the next turn "
                    "continues from its last saved progress."
                )
        raise
    saved = yield Release(session, None)
    return attrs.evolve(result, session_version=saved)


def _claim(
    session_id: str, lease_wait: float, cancel: CancelToken | None
) -> Generator[SessionOp | Op, Any, LeasedSession]:
    """Claim the lease, waiting with backoff while the session is busy (up to ``lease_wait``).

    The waits wait on ``cancel``: its ``cancel()`` ends them at once with ``TurnCancelledError``
    (nothing was claimed, so the session is left as its store holds it).
    """
    waited = 0.0
    tries = 0
    while True:
        try:
            session: LeasedSession = yield Claim()
            return session
        except ConflictError as exc:  # busy, or another worker claimed between load and write
            tries += 1
            left = lease_wait - waited
            if left <= 0:
                raise
            delay = min(_FIRST_WAIT * 2 ** (tries - 1), _MAX_WAIT, left)
            if isinstance(exc, SessionBusyError):
                delay = min(delay, max(exc.expires_in, 0.0) + 0.001)
            # Jitter, so workers waiting on one session do not all retry at the same instant.
            delay *= 1.0 - 0.5 * random.random()
            yield Sleep(delay, cancel)
            waited += delay
            if cancel is not None and cancel.cancelled:
                raise TurnCancelledError(
                    f"The turn was cancelled while waiting for session {session_id!r}, busy "
                    f"with another worker ({exc}). Nothing was claimed or sent: the session is "
                    "unchanged in its store; run the turn again to serve it.",
                    response_id=None,
                ) from exc


def _relay(
    gen: Generator[Op, Any, TurnResult],
    session: LeasedSession,
    key: str,
    lost: list[ConflictError],
) -> Generator[SessionOp | Op, Any, TurnResult]:
    """Pass ``gen``'s operations through, turning its checkpoints into lease renewals.

    A renewal that fails with ``ConflictError`` (the lease was lost) is appended to ``lost``.
    """
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = gen.send(value) if error is None else gen.throw(error)
        except StopIteration as stop:
            result: TurnResult = stop.value
            return result
        out: SessionOp | Op = op
        if isinstance(op, Checkpoint):
            out = Renew(session, {"input": key, "outputs": [dict(o) for o in op.outputs]})
        try:
            value, error = (yield out), None
        except BaseException as exc:  # handed on: the turn rewinds and decides
            if isinstance(out, Renew) and isinstance(exc, ConflictError):
                lost.append(exc)
            value, error = None, exc
