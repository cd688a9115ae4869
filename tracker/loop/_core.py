"""The loop's logic, free of I/O: a generator that yields operations for a driver to perform.

Theory of operation
-------------------
``drive(tracker, user_input, spec)`` runs one user turn. It yields an operation
(``Create``, ``ListNewItems``, ``RunTools``, ``Sleep``, ``Emit``; ``Retrieve``, ``Resume`` and
``CancelResponse`` for background responses, see ``_background``); the driver performs it and
sends the result back, or throws the exception it raised. ``run_turn`` and ``arun_turn`` are
two thin drivers of this one generator (the second awaits), so the retry and recovery rules
below exist once.

Each model call hands the tracker *every* item of the turn so far (the user's input, the
responses' output items, the tool outputs); the tracker keeps only what the server lacks.
Around each call::

    p = tracker.prepare(items); tracker.mark_sent(p)
    try: response = create(**p.request_kwargs()); tracker.observe_response(response)
    except transient: tracker.rewind(p); wait (cancel ends it); try again (same delta)
    except anything else: tracker.rewind(p); raise

A retried request cannot duplicate anything in a ``previous_response_id`` chain: a response
the server stored before the connection dropped is a sibling nobody continues from. In a
conversation the server *appends* the input and output of a completed response, so before
retrying the loop lists the conversation's newest items (down to the first one the tracker
knows): if they end with this request's input followed by model output, the response was
stored; the loop observes those items as the response and does not send again. Otherwise it
observes whatever new items it found (so none is re-sent) and sends the remaining delta.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from typing import Any

from tracker._items import field
from tracker._tracker import Tracker

from ._approvals import approval_requests
from ._compaction import crossed
from ._ops import Checkpoint, Compact, Create, Emit, ListNewItems, Op, RunTools, Sleep
from ._results import MaxTurnsError, ResponseReceived, TurnResult
from ._spec import DEFAULT_TOOL_WORKERS, TurnSpec, make_spec
from ._stateless import enter_stateless
from ._turn import _Turn
from ._turn_input import _output_items, _turn_input, final_text, input_key

__all__ = [
    "DEFAULT_TOOL_WORKERS",
    "Checkpoint",
    "Compact",
    "Create",
    "Emit",
    "ListNewItems",
    "RunTools",
    "Sleep",
    "TurnSpec",
    "drive",
    "final_text",
    "input_key",
    "make_spec",
]


def _client_work(output: Sequence[Any], spec: TurnSpec) -> tuple[list[Any], list[Any], bool]:
    """The response's tool calls to run, its approval requests to answer (with
    ``on_approval``), and whether it asks approvals only the caller can give (without)."""
    calls = [
        item for item in output if field(item, "type") in ("function_call", "custom_tool_call")
    ]
    requests = approval_requests(output)
    if spec.on_approval is not None:
        return calls, requests, False
    return calls, [], bool(requests)


def drive(
    tracker: Tracker,
    user_input: Any,
    spec: TurnSpec,
    *,
    carried: Sequence[Mapping[str, Any]] = (),
    resume: bool = False,
    reconcile: bool = False,
) -> Generator[Op, Any, TurnResult]:
    """Run one user turn against ``tracker``; see the module docstring for the protocol.

    ``carried`` and ``resume`` continue a turn a crashed worker left (see ``_turn_input``);
    ``reconcile`` makes the first request look in the conversation for a response that worker
    may have had stored, and use it instead of sending again.
    Returns the ``TurnResult``. Raises ``MaxTurnsError`` after ``spec.max_turns`` model calls
    that all called tools, and re-raises a non-transient error (a 400 is the SDK's
    ``BadRequestError``, with the server's message) after rewinding the tracker.
    """
    enter_stateless(tracker, spec.options)
    items, abandoned = _turn_input(tracker, user_input, carried, resume)
    turn = _Turn(tracker=tracker, spec=spec, items=items, abandoned=abandoned, reconcile=reconcile)
    # compact=True waits for the turn's end when calls are pending (their outputs go first).
    deferred = spec.compact and bool(tracker.pending_call_ids)
    if spec.compact and not deferred and _compactable(tracker):
        yield from turn.compact()
    cancel = spec.cancel
    for index in range(spec.max_turns):
        if cancel is not None and cancel.cancelled:
            raise turn.cancelled(None)
        response = yield from turn.model_call(index)
        yield Emit(ResponseReceived(record=turn.records[-1], response=response))
        output = _output_items(response)
        calls, approvals, waiting = _client_work(output, spec)
        if not calls and cancel is not None and cancel.cancelled:
            raise turn.cancelled(None)  # finished as it was cancelled: the caller still asked
        if not calls and not approvals:
            if deferred or crossed(response, spec.compact_after):
                yield from turn.compact_after()
            return turn.result(final_text(output))
        yield Checkpoint(())
        if index + 1 < spec.max_turns:
            yield from turn.run_tools(calls, approvals)
            if waiting:  # a request without its approvals would be refused (M1): end here
                return turn.result(final_text(output), outputs=turn.undelivered())
    names = ", ".join(sorted({str(field(c, "name")) for c in calls}))
    raise MaxTurnsError(
        f"The model still called tools ({names}) after max_turns={spec.max_turns} model calls; "
        f"raise max_turns or check the tools' outputs. Its {len(calls)} pending call(s) get a "
        "placeholder output at the start of the next turn.",
        max_turns=spec.max_turns,
        result=turn.result(final_text(output)),
    )


def _compactable(tracker: Tracker) -> bool:
    """Whether there is a context to compact: a chain, or a conversation or transcript with
    at least one response."""
    if tracker.conversation_id is None and tracker.store:
        return tracker.previous_response_id is not None
    return tracker.responses_observed > 0
