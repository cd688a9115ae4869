"""What a turn reports: events while it runs, a ``TurnResult`` when it ends, and its errors."""

from __future__ import annotations

import warnings
from typing import Any

import attrs

from tracker._errors import TrackerError
from tracker._items import field
from tracker._tracker import Tracker

__all__ = [
    "EncryptedDropped",
    "IncompleteStreamError",
    "LoopEvent",
    "MaxTurnsError",
    "PollTimeoutError",
    "RequestRecord",
    "RequestSent",
    "ResponseFailedError",
    "ResponseReceived",
    "Retrying",
    "TextDelta",
    "ToolCalled",
    "ToolFinished",
    "TurnCancelledError",
    "TurnResult",
]


class MaxTurnsError(TrackerError, RuntimeError):
    """The model was still calling tools after ``max_turns`` model calls.

    ``max_turns`` is the limit, ``result`` the partial ``TurnResult``, and ``tracker`` (also
    ``result.tracker``) the tracker to continue with: pass it as ``tracker=`` to the next turn.
    It holds every response so far; its pending calls get a placeholder output at the start of
    the next turn.
    """

    def __init__(self, message: str, *, max_turns: int, result: TurnResult) -> None:
        super().__init__(message)
        self.max_turns = max_turns
        self.result = result
        self.tracker: Tracker = result.tracker


class TurnCancelledError(TrackerError, RuntimeError):
    """The caller's ``CancelToken`` stopped the turn, or the service cancelled its response.

    ``response_id`` names the cancelled response (``None`` if none was in flight). ``result``
    is the partial ``TurnResult`` and ``tracker`` the tracker to continue with: it holds
    exactly what the server holds (a cancelled response is never observed, so the request's
    input is sent again by the next turn). ``outputs`` are the tool outputs (and approval
    answers) computed for calls the tracker still has pending: pass ``input=exc.outputs`` (plus
    any new input) with ``tracker=exc.tracker`` to deliver them; calls left without one get a
    placeholder output. A session store keeps them by itself (its next turn delivers them).
    A turn cancelled while it waited for a busy session's lease has no ``result`` (``None``):
    it held nothing and the session is unchanged in its store.
    """

    def __init__(
        self,
        message: str,
        *,
        response_id: str | None,
        result: TurnResult | None = None,
        outputs: tuple[Any, ...] = (),
    ) -> None:
        super().__init__(message)
        self.response_id = response_id
        self.outputs = outputs
        self.result = result
        self.tracker: Tracker | None = result.tracker if result is not None else None


class PollTimeoutError(TrackerError, TimeoutError):
    """A background response was still ``queued``/``in_progress`` after ``poll_timeout`` seconds.

    ``response_id`` names it, ``waited`` the seconds polled (by the turn's clock), and
    ``cancelled`` whether the loop cancelled it on the server (it tries, so that it never lands
    later). The response is never observed: ``tracker`` (also ``result.tracker``) holds exactly
    what the server holds, and ``outputs`` are the tool outputs (and approval answers) the
    request carried, which no stored response holds yet: pass ``input=exc.outputs`` (plus any
    new input) with ``tracker=exc.tracker`` to deliver them, once. A session store keeps them by
    itself: its next turn with the same input delivers them.
    """

    def __init__(
        self,
        message: str,
        *,
        response_id: str,
        waited: float,
        cancelled: bool,
        outputs: tuple[Any, ...] = (),
        result: TurnResult | None = None,
    ) -> None:
        super().__init__(message)
        self.response_id = response_id
        self.waited = waited
        self.cancelled = cancelled
        self.outputs = outputs
        self.result = result
        self.tracker: Tracker | None = result.tracker if result is not None else None


class IncompleteStreamError(TrackerError, ConnectionError):
    """A stream ended without ``response.completed``; retried like a dropped connection."""


class ResponseFailedError(TrackerError, RuntimeError):
    """The service reported the response as ``failed``. ``code``/``response_id`` come from it.

    Retried when ``code`` is ``server_error`` or ``rate_limit_exceeded``; raised otherwise (or
    once the retries are spent). The response is never observed: ``tracker`` (also
    ``result.tracker``, the partial ``TurnResult``) holds exactly what the server holds, and
    ``outputs`` are the tool outputs (and approval answers) the failed request carried, which
    no stored response holds: pass ``input=exc.outputs`` (plus any new input) with
    ``tracker=exc.tracker`` to deliver them, once. A session store keeps them by itself.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None,
        response_id: str | None,
        outputs: tuple[Any, ...] = (),
        result: TurnResult | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.response_id = response_id
        self.outputs = outputs
        self.result = result
        self.tracker: Tracker | None = result.tracker if result is not None else None


@attrs.frozen
class RequestRecord:
    """One model call of a turn, as finally delivered.

    ``sent`` items went over the wire (the request's ``input``, as ``Prepared.request_input``
    sends it: a stateless replay included, the reasoning a projection leaves out not counted);
    ``skipped`` of the items handed to the tracker were already on the server, so not sent
    again (the loop hands it every item of the turn so far, so an item counts again at each
    later request); ``attempts`` counts tries (1 = no retry).
    ``recovered`` is true when a retry found the response already stored in the conversation
    and used it instead of sending again (``response_id`` is then ``None``).
    """

    index: int
    previous_response_id: str | None
    conversation_id: str | None
    sent: int
    skipped: int
    attempts: int
    response_id: str | None
    recovered: bool
    tool_calls: int


@attrs.frozen
class TurnResult:
    """The outcome of ``run_turn``/``arun_turn``.

    ``text`` is the final answer; ``responses`` holds each response (SDK ``Response``, or a
    dict rebuilt from the conversation when ``recovered``), ``requests`` one ``RequestRecord``
    each; ``errors`` the transient errors that were retried. ``tracker`` is the tracker after
    the turn (pass it to the next turn). ``session_version`` is the store version saved, if any.
    ``compacted`` is the compaction the turn ran (``compact=``), ``dropped_encrypted`` the
    items left out to recover from a 400 ``invalid_encrypted_content``.
    """

    text: str
    responses: tuple[Any, ...]
    requests: tuple[RequestRecord, ...]
    tracker: Tracker
    tool_calls: int = 0
    tool_errors: int = 0
    abandoned_calls: int = 0
    errors: tuple[BaseException, ...] = ()
    session_version: int | None = None
    #: The compaction this turn ran (``compact=``): a ``CompactedResponse`` from
    #: ``responses.compact`` (a stored chain), or the response of the ``compaction_trigger``
    #: request (a conversation, a stateless turn); ``None`` when it did not compact.
    compacted: Any = None
    #: Ids of the reasoning/compaction items left out after a 400
    #: ``invalid_encrypted_content`` (recovered once, see ``recover_encrypted``).
    dropped_encrypted: tuple[str, ...] = ()
    #: Tool outputs computed but not delivered: the turn ended on MCP approval requests only
    #: the caller can answer (no ``on_approval``) made beside tool calls, so the outputs wait
    #: for the answers. Pass them with the answers as the next turn's ``input`` (calls left
    #: without one get a placeholder output).
    outputs: tuple[Any, ...] = ()

    @property
    def items_sent(self) -> int:
        """Items sent over all requests of the turn."""
        return sum(r.sent for r in self.requests)

    @property
    def items_not_resent(self) -> int:
        """Items already on the server, so not sent again, summed over the turn's requests.

        Each request hands the tracker every item of the turn so far, so an item the server
        holds counts once per later request: this is what re-sending the turn's items on every
        request would have added, not a count of distinct duplicates prevented.
        """
        return sum(r.skipped for r in self.requests)

    @property
    def duplicates_avoided(self) -> int:
        """Deprecated alias of ``items_not_resent`` (the old name overstated what it counts)."""
        warnings.warn(
            "TurnResult.duplicates_avoided is deprecated: use items_not_resent (the same "
            "figure: items already on the server, not re-sent, counted per request).",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.items_not_resent

    @property
    def retries(self) -> int:
        """Requests re-tried after a transient error (recoveries included)."""
        return sum(r.attempts - 1 for r in self.requests)

    @property
    def last_response_id(self) -> str | None:
        """The id of the last response received (``None`` if it was recovered)."""
        return self.requests[-1].response_id if self.requests else None

    @property
    def input_transformations(self) -> tuple[Any, ...]:
        """Reasoning inputs the service withheld from the model, over the turn's responses.

        Each response's ``input_transformations`` (SDK 3.50+: ``{id, action: "removed",
        reason, type: "reasoning"}``, in input order), concatenated in response order; empty
        when the service used every reasoning input.
        """
        found: list[Any] = []
        for response in self.responses:
            withheld = field(response, "input_transformations")
            if isinstance(withheld, list | tuple):
                found.extend(withheld)
        return tuple(found)


# ---------------------------------------------------------------------- events


@attrs.frozen
class RequestSent:
    """A request is about to go out (``attempt`` 0 first, then 1, 2 ... on retries) with
    ``sent`` items in its ``input`` (as ``RequestRecord.sent``)."""

    index: int
    attempt: int
    sent: int
    skipped: int
    previous_response_id: str | None
    conversation_id: str | None


@attrs.frozen
class ResponseReceived:
    """A response was received (or recovered), and the tracker observed it."""

    record: RequestRecord
    response: Any


@attrs.frozen
class TextDelta:
    """A piece of the answer's text, as streamed (``stream=True`` only).

    After a ``Retrying`` event, discard the deltas of the failed attempt.
    """

    text: str
    item_id: str | None


@attrs.frozen
class ToolCalled:
    """The model called ``name`` with ``arguments`` (a JSON string); it runs next."""

    call_id: str
    name: str
    arguments: str


@attrs.frozen
class ToolFinished:
    """A tool call produced ``output``; ``is_error`` when it is an error output for the model."""

    call_id: str
    name: str
    output: str
    is_error: bool


@attrs.frozen
class Retrying:
    """A transient error; the request is re-tried after ``delay`` seconds."""

    index: int
    attempt: int
    delay: float
    error: BaseException


@attrs.frozen
class EncryptedDropped:
    """A 400 ``invalid_encrypted_content``: the request is re-sent at once without ``item_ids``.

    ``item_ids`` are the reasoning/compaction items with ``encrypted_content`` that the failed
    request carried inline (all of them: after a key rotation none verifies); ``named`` is the
    one the service's message names, if any. ``index`` is the request's in the turn, -1 for
    the turn's compaction request. Happens at most once per turn.
    """

    index: int
    attempt: int
    item_ids: tuple[str, ...]
    named: str | None
    error: BaseException


LoopEvent = (
    RequestSent
    | ResponseReceived
    | TextDelta
    | ToolCalled
    | ToolFinished
    | Retrying
    | EncryptedDropped
)
