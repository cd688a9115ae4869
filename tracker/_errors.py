"""One exception tree for the whole package.

Every error names the offending id (item, call, response, session) and says what to do.
Each refines a builtin so callers can catch either ``TrackerError`` or the builtin. Classes
marked with a module live in that integration (the core never imports one) and are imported
from there; the rest are exported by ``tracker``::

    TrackerError(Exception)
    ├── ItemError(ValueError)                  an item that cannot be read (not a dict or SDK
    │                                          model, no ``type`` that can be inferred, content
    │                                          that cannot be serialised); ``.index`` names it
    ├── ContinuationError(ValueError)          bad continuation settings or ids
    │                                          (previous_response_id and conversation_id
    │                                          together, a malformed or foreign response id)
    ├── UsageError(RuntimeError)               a bad argument or a call out of order (not a
    │                                          response, rewinding a request never marked
    │                                          sent, marking one twice, ...)
    │   └── CompactionError                    a compaction asked for while tool calls are
    │                                          pending; ``.call_ids`` names them
    ├── StateError(ValueError)                 a snapshot that cannot be restored
    │   └── StateVersionError                  ... because of its format version
    ├── HistoryError(ValueError)               a tool-call history the service would reject;
    │   │                                      ``.violations`` lists each problem
    │   └── CompactedCallError                 an output for a call a compaction summarised
    │                                          (``No tool call found``); ``.call_ids``
    ├── TranscriptError(ValueError)            stateless mode: an item the service would have
    │                                          to look up, or a chain whose items the tracker
    │                                          never saw; ``.item_id``
    ├── EditedHistoryError(ValueError)         a whole history changed an item the chain
    │                                          holds (``on_edit="raise"``, or in a
    │                                          conversation); ``.index``, ``.item_id``
    ├── StoreError(RuntimeError)               a durable store failed
    │   ├── ConflictError                      compare-and-set lost: reload and retry
    │   │   └── SessionBusyError               another worker holds the session's lease
    │   └── CorruptStateError                  a stored snapshot is unreadable; left untouched
    ├── MaxTurnsError(RuntimeError)            [tracker.loop] still calling tools after
    │                                          ``max_turns`` model calls; ``.result``
    ├── ResponseFailedError(RuntimeError)      [tracker.loop] the service reported the
    │                                          response ``failed``; ``.code``,
    │                                          ``.outputs``, ``.result``
    ├── IncompleteStreamError(ConnectionError) [tracker.loop] a stream ended before
    │   │                                      ``response.completed`` (retried)
    │   └── StreamCut [tracker.loop]           ... with where to resume it: ``.response_id``,
    │                                          ``.last_sequence`` (resumed, else retried)
    ├── TurnCancelledError(RuntimeError)       [tracker.loop] a ``CancelToken`` stopped the
    │                                          turn, or its response was cancelled;
    │                                          ``.response_id``, ``.result``
    ├── PollTimeoutError(TimeoutError)         [tracker.loop] a background response still
    │                                          queued/in_progress after ``poll_timeout``;
    │                                          ``.response_id``, ``.outputs``, ``.result``
    └── UnsupportedVersionError(ImportError)   [tracker.agents] the installed openai-agents
                                               release is not supported; ``.version``

After any of these is raised by a ``Tracker`` method, the tracker's state is unchanged.
(``tests/test_tracker_errors.py`` checks that this drawing matches every exception class
defined in ``tracker``.)
"""

from __future__ import annotations

import reprlib
from typing import Any

__all__ = [
    "CompactedCallError",
    "CompactionError",
    "ConflictError",
    "ContinuationError",
    "CorruptStateError",
    "EditedHistoryError",
    "HistoryError",
    "ItemError",
    "SessionBusyError",
    "StateError",
    "StateVersionError",
    "StoreError",
    "TrackerError",
    "TranscriptError",
    "UsageError",
    "shown",
]

_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother = 3, 80, 80


def shown(value: object) -> str:
    """A short repr of ``value`` for an error message: bounded in size and depth, never raising.

    Messages quote the offending value; a value from hostile input may be deeply nested,
    circular, huge, or have a ``__repr__`` that raises.
    """
    try:
        return _SHOWN.repr(value)
    except Exception:  # a failing __repr__ (or a too-deep one) is the value's own problem
        return f"<{type(value).__name__}>"


class TrackerError(Exception):
    """Base class of every error this package raises on purpose."""


class ItemError(TrackerError, ValueError):
    """An input or output item cannot be read.

    ``index`` is the item's position in the list it came from (or ``None``), ``item_type`` the
    Python type name of the offending value.
    """

    def __init__(self, message: str, *, index: int | None = None, item_type: str = "") -> None:
        super().__init__(message)
        self.index = index
        self.item_type = item_type


class ContinuationError(TrackerError, ValueError):
    """The continuation settings are contradictory or malformed."""


class UsageError(TrackerError, RuntimeError):
    """A method was called out of order; the message says which call was expected."""


class CompactionError(UsageError):
    """A compaction was asked for while tool calls are pending. ``call_ids`` names them.

    The service would summarise the calls without their outputs; answer them first.
    """

    def __init__(self, message: str, *, call_ids: tuple[str, ...]) -> None:
        super().__init__(message)
        self.call_ids = call_ids


class StateError(TrackerError, ValueError):
    """A state snapshot cannot be restored. ``path`` names the offending field."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class StateVersionError(StateError):
    """A snapshot's format version is unknown (for example written by a newer release)."""

    def __init__(self, message: str, *, version: Any) -> None:
        super().__init__(message, path="version")
        self.version = version


class HistoryError(TrackerError, ValueError):
    """A tool-call history that the service would reject.

    ``violations`` holds one entry per problem (see ``tracker.validate_history``).
    """

    def __init__(self, message: str, *, violations: Any = ()) -> None:
        super().__init__(message)
        self.violations = tuple(violations)


class CompactedCallError(HistoryError):
    """Tool outputs answer calls that a compaction summarised: the service no longer holds them.

    Sent, each would be answered 400 ``No tool call found for function call output``.
    ``call_ids`` names them; ``check="repair"`` drops them and reports each as a repair.
    """

    def __init__(self, message: str, *, call_ids: tuple[str, ...]) -> None:
        super().__init__(message)
        self.call_ids = call_ids


class TranscriptError(TrackerError, ValueError):
    """Stateless mode cannot build a valid request: ``item_id`` names the offending item."""

    def __init__(self, message: str, *, item_id: Any = None) -> None:
        super().__init__(message)
        self.item_id = item_id


class EditedHistoryError(TrackerError, ValueError):
    """A whole history passed to ``prepare`` changed an item the chain already holds.

    A delta would hide the edit, so the tracker raises (``on_edit="raise"``, or always in a
    conversation, which it cannot restart). ``index`` is the first position in the list that
    differs from the history passed last; ``item_id`` the provider id or call id found there.
    """

    def __init__(self, message: str, *, index: int, item_id: str | None = None) -> None:
        super().__init__(message)
        self.index = index
        self.item_id = item_id


class StoreError(TrackerError, RuntimeError):
    """A durable store failed. ``session_id`` names the session concerned."""

    def __init__(self, message: str, *, session_id: str | None = None) -> None:
        super().__init__(message)
        self.session_id = session_id


class ConflictError(StoreError):
    """Compare-and-set lost: another writer saved first. Reload the session and retry."""

    def __init__(
        self,
        message: str,
        *,
        session_id: str | None = None,
        expected_version: int | None = None,
        actual_version: int | None = None,
    ) -> None:
        super().__init__(message, session_id=session_id)
        self.expected_version = expected_version
        self.actual_version = actual_version


class SessionBusyError(ConflictError):
    """Another worker holds the session's lease: it is serving a turn. Retry later.

    ``owner`` names the holder, ``expires_in`` the seconds until its lease runs out (a crashed
    holder's lease can be taken over then).
    """

    def __init__(
        self, message: str, *, session_id: str | None = None, owner: str, expires_in: float
    ) -> None:
        super().__init__(message, session_id=session_id)
        self.owner = owner
        self.expires_in = expires_in


class CorruptStateError(StoreError):
    """A stored snapshot cannot be read. It is left untouched for inspection."""
