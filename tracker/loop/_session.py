"""Choosing the turn's tracker: given, fresh, or loaded from a store session."""

from __future__ import annotations

from typing import Any

from tracker._errors import UsageError
from tracker._tracker import Tracker

__all__ = ["check_session", "check_sources", "fresh_tracker", "note_unsaved"]


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
