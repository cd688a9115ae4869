"""Choosing the turn's tracker: given, fresh, or loaded from (and saved to) a store session."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import attrs

from tracker._errors import ConflictError, StoreError, UsageError
from tracker._tracker import Tracker

from ._results import TurnResult

__all__ = [
    "Load",
    "RunTurn",
    "Save",
    "SessionOp",
    "check_sources",
    "fresh_tracker",
    "serve_session",
]


def check_sources(
    tracker: Tracker | None, store: Any, session_id: str | None, conversation: str | None
) -> None:
    """Raise ``UsageError`` unless the turn has exactly one source of state."""
    if store is not None and tracker is not None:
        raise UsageError(
            "Pass either tracker=... or store=... with session_id=..., not both: "
            "with a store the loop loads the session's tracker itself."
        )
    if (store is None) != (session_id is None):
        raise UsageError("store=... and session_id=... go together: pass both or neither.")
    if tracker is not None and conversation not in (None, tracker.conversation_id):
        raise UsageError(
            f"conversation={conversation!r} does not match the tracker's conversation "
            f"{tracker.conversation_id!r}: drop conversation=... or use a matching tracker."
        )


def fresh_tracker(conversation: str | None) -> Tracker:
    """A tracker for a new chain, or for the conversation ``conversation``."""
    return Tracker(conversation_id=conversation)


def check_session(tracker: Tracker, conversation: str | None, session_id: str) -> Tracker:
    """Return the session's loaded ``tracker``; raise ``UsageError`` if it is in another place."""
    if conversation is not None and tracker.conversation_id != conversation:
        raise UsageError(
            f"Session {session_id!r} runs in {tracker.conversation_id or 'a response chain'}, "
            f"not in conversation {conversation!r}: drop conversation=... or use another session."
        )
    return tracker


def note_unsaved(exc: BaseException, session_id: str, save_error: BaseException) -> None:
    """Attach to ``exc`` the reason the session could not be saved after it."""
    exc.add_note(
        f"tracker.loop: session {session_id!r} could not be saved after this error either "
        f"({save_error}); the next turn continues from its last saved state."
    )


@attrs.frozen
class Load:
    """Load the session: send back ``(tracker, version)`` (``load_tracker``)."""


@attrs.frozen
class Save:
    """Save ``tracker`` at ``version`` (``save_tracker``): send back the new version."""

    tracker: Tracker
    version: int


@attrs.frozen
class RunTurn:
    """Run the turn on ``tracker``: send back its ``TurnResult``."""

    tracker: Tracker


SessionOp = Load | Save | RunTurn


def serve_session(
    session_id: str, conversation: str | None, max_conflicts: int
) -> Generator[SessionOp, Any, TurnResult]:
    """One turn of a store session: load, run, save with compare-and-set; I/O left to a driver.

    On ``ConflictError`` the turn is re-run on the reloaded session, at most ``max_conflicts``
    times. A failed turn that observed responses is saved before its error is re-raised, so
    the session holds what the server holds (pending calls get placeholders next turn).
    """
    conflicts = 0
    while True:
        loaded, version = yield Load()
        tracker = check_session(loaded, conversation, session_id)
        before = tracker.responses_observed
        try:
            result: TurnResult = yield RunTurn(tracker)
        except BaseException as exc:
            if tracker.responses_observed != before:
                try:
                    yield Save(tracker, version)
                except StoreError as save_error:
                    note_unsaved(exc, session_id, save_error)
            raise
        try:
            saved = yield Save(tracker, version)
        except ConflictError:
            conflicts += 1
            if conflicts > max_conflicts:
                raise
            continue
        return attrs.evolve(result, session_version=saved)
