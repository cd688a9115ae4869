"""``run_turn``: the blocking driver of the loop (``openai.OpenAI`` client)."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

import openai

from tracker._tracker import Tracker
from tracker.stores import (
    DEFAULT_LEASE_TTL,
    Store,
    claim_session,
    new_owner,
    release_session,
    renew_session,
)

from ._approvals import ApprovalHandler, AskApproval
from ._background import (
    DEFAULT_POLL_TIMEOUT,
    CancelResponse,
    CancelToken,
    Resume,
    Retrieve,
    StreamReader,
)
from ._core import (
    DEFAULT_TOOL_WORKERS,
    Checkpoint,
    Compact,
    Create,
    Emit,
    ListNewItems,
    RunTools,
    Sleep,
    drive,
    make_spec,
)
from ._kept import kept_sessions
from ._ops import Op
from ._results import LoopEvent, TurnResult
from ._retry import RetryPolicy
from ._session import (
    DEFAULT_LEASE_WAIT,
    Claim,
    Release,
    Renew,
    SessionOp,
    check_lease,
    check_sources,
    check_store_option,
    fresh_tracker,
    serve_session,
)
from ._tools import run_plans

__all__ = ["run_turn"]

EventHandler = Callable[[LoopEvent], object]


def run_turn(
    client: openai.OpenAI,
    *,
    model: str,
    input: Any,
    tools: Sequence[Any] = (),
    tracker: Tracker | None = None,
    session_store: Store | None = None,
    session_id: str | None = None,
    conversation: str | None = None,
    stream: bool = False,
    on_event: EventHandler | None = None,
    max_turns: int = 10,
    max_tool_workers: int = DEFAULT_TOOL_WORKERS,
    compact: bool | int = False,
    recover_encrypted: bool = True,
    on_approval: ApprovalHandler | None = None,
    cancel: CancelToken | None = None,
    poll_interval: float = 1.0,
    poll_timeout: float | None = DEFAULT_POLL_TIMEOUT,
    clock: Callable[[], float] = time.monotonic,
    retry: RetryPolicy | None = None,
    lease_ttl: float = DEFAULT_LEASE_TTL,
    lease_wait: float = DEFAULT_LEASE_WAIT,
    lease_owner: str | None = None,
    **options: Any,
) -> TurnResult:
    """Run one user turn: call the model, run its tool calls, until it answers without tools.

    ``input`` is the user's new input (a string, or a list of items). ``tools`` holds plain or
    async callables (schema from their type hints), ``FunctionTool``s, or tool dicts passed
    through. The parallel calls of one response run concurrently on a thread pool of at most
    ``max_tool_workers`` threads (default 8; 1 runs them one after another); their outputs keep
    the calls' order. State comes from ``tracker`` (updated in place), from ``session_store`` +
    ``session_id`` (a ``tracker.stores`` store and a session in it), or is a fresh tracker (in
    ``conversation`` if given).

    With a session store, the turn first claims the session's lease (valid ``lease_ttl``
    seconds, renewed by the progress saved after each model call and each batch of tools; freed
    by the final save), so no two workers ever send the same delta or run the same tool call.
    A session this process released last is claimed back without reading it (the tracker it
    holds, if no other writer saved since: ``tracker.loop._kept``), so a turn's store time does
    not grow with the session. A busy session is waited for up to ``lease_wait`` seconds, then
    ``tracker.SessionBusyError`` (retryable). If a worker crashed mid-turn, the next one takes
    over once its lease expires: it delivers the tool outputs that worker saved (placeholders
    for calls it never finished), and resumes that turn when given the same input.
    ``lease_owner`` names this worker in the lease (default: host, pid and a random token).

    ``stream=True`` streams each response, handing ``TextDelta`` events to ``on_event``,
    which also gets request, response, tool and retry events.
    Remaining keyword arguments go to every ``responses.create`` call (``instructions``,
    ``reasoning``, ``timeout``, ``store=True`` ...). ``store=`` is the API's flag: a session
    store passed there is a ``UsageError`` naming ``session_store=``. ``store=False`` runs the
    turn statelessly: the tracker keeps the transcript and every request replays it (with
    ``include=["reasoning.encrypted_content"]`` and a stable ``prompt_cache_key``); with a
    session store the transcript is saved with the session.

    ``background=True`` (passed through like any option) polls each response with
    ``responses.retrieve`` every ``poll_interval`` seconds until it is terminal, and the tracker
    observes it only then; a ``failed`` or ``cancelled`` one is never chained from (its input is
    sent again, once). ``poll_timeout`` (default 600 s by ``clock``; ``None``: no bound) caps
    how long after sending a response may stay queued or in progress: then the loop cancels it
    on the server and raises ``PollTimeoutError`` (``.response_id``; ``.tracker`` holds what the
    server holds; ``.outputs`` are the tool outputs it carried: pass them as the next turn's
    input). Deep-research runs or a ``background_options.completion_window`` need a larger
    one. With ``stream=True`` too, a stream cut mid-way is resumed with
    ``retrieve(id, stream=True, starting_after=N)``, so each ``TextDelta`` is delivered once and
    the server makes one response; a stream older than the service's 5 minutes by ``clock``
    (default ``time.monotonic``; tests inject one), or one the service will not resume, is
    retried as before. ``cancel``: a ``CancelToken``; ``token.cancel()`` from another thread
    stops the turn with ``TurnCancelledError`` (its ``.result`` and ``.tracker``), cancelling
    a background response on the server (``tracker/loop/_background.py``); a wait in progress
    (a ``poll_interval``, a retry's backoff, a busy session's ``lease_wait``) ends at once, with
    the tracker rewound and a lease taken released (``.outputs``: the tool outputs not yet
    delivered).

    ``compact=True`` compacts before the turn: a stored chain with ``responses.compact`` (the
    turn's first request then starts a new chain carrying the window), a conversation or a
    stateless turn with a ``compaction_trigger`` request. With calls pending it waits until
    the turn delivered their outputs and compacts after the final answer. ``compact=N`` (an
    int) compacts after the turn when the final response's ``usage.input_tokens`` reached
    ``N``. ``TurnResult.compacted`` holds the compaction's result. Server-side compaction is
    ``context_management=[{"type": "compaction", "compact_threshold": N}]``, passed through
    like any option. ``tracker/loop/_compaction.py`` has the details.

    ``on_approval(request)`` answers each ``mcp_approval_request`` a response makes (the
    server asks before it runs an MCP tool): it returns ``True`` / ``False`` or ``(approve,
    reason)``, and the loop sends the ``mcp_approval_response``s with the next request, as it
    sends tool outputs (``arun_turn`` also awaits an async one). Without it, the turn ends with
    the requests pending (in ``TurnResult.responses``): answer them in the next turn's input,
    with ``TurnResult.outputs`` (the outputs of tool calls made beside them, run but not sent).

    A 400 ``invalid_encrypted_content`` (a reasoning or compaction item the service cannot
    verify, e.g. after a key rotation) is recovered once per turn when ``recover_encrypted``
    (the default): the reasoning/compaction items with ``encrypted_content`` the request
    carried inline are dropped (``Tracker.strip_encrypted``) and the request is sent again at
    once; ``TurnResult.dropped_encrypted`` lists them and an ``EncryptedDropped`` event
    reports it. An item the server holds in the chain or conversation cannot be dropped: the
    400 is raised, with a note saying so. ``recover_encrypted=False`` raises it always.

    Transient errors are retried per ``retry`` after rewinding the tracker (the client is used
    with ``max_retries=0``). A 400 re-raises the SDK's ``openai.BadRequestError`` with the
    server's message; ``MaxTurnsError`` after ``max_turns`` model calls. After an error the
    tracker holds exactly what the server holds, and a session is saved as such.
    """
    spec = make_spec(
        model,
        tools,
        stream=stream,
        max_turns=max_turns,
        retry=retry or RetryPolicy(),
        options=options,
        max_tool_workers=max_tool_workers,
        compact=compact,
        poll_interval=poll_interval,
        poll_timeout=poll_timeout,
        cancel=cancel,
        clock=clock,
        recover_encrypted=recover_encrypted,
        on_approval=on_approval,
    )
    check_store_option(options)
    check_sources(tracker, session_store, session_id, conversation)
    check_lease(lease_ttl, lease_wait)
    api = client.with_options(max_retries=0)

    def turn(chosen: Tracker) -> TurnResult:
        return _step(drive(chosen, input, spec), lambda op: _perform(api, op, on_event))

    if session_store is None or session_id is None:
        return turn(tracker if tracker is not None else fresh_tracker(conversation))

    owner = new_owner() if lease_owner is None else lease_owner

    def session_io(op: SessionOp | Op) -> Any:
        if isinstance(op, Claim):
            return claim_session(
                session_store,
                session_id,
                owner=owner,
                ttl=lease_ttl,
                reuse=kept_sessions.take(session_store, session_id),
                conversation_id=conversation,
            )
        if isinstance(op, Renew):
            return renew_session(session_store, op.session, turn=op.turn)
        if isinstance(op, Release):
            version = release_session(session_store, op.session, turn=op.turn)
            kept_sessions.put(session_store, op.session)  # the next turn claims without a load
            return version
        return _perform(api, op, on_event)

    served = serve_session(session_id, input, spec, conversation, lease_wait)
    return _step(served, session_io)


_T = TypeVar("_T")
_Op = TypeVar("_Op")


def _step(gen: Generator[_Op, Any, _T], perform: Callable[[_Op], Any]) -> _T:
    """Run ``gen`` to its end, performing each operation it yields (errors are thrown in)."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = gen.send(value) if error is None else gen.throw(error)
        except StopIteration as stop:
            result: _T = stop.value
            return result
        try:
            value, error = perform(op), None
        except BaseException as exc:  # handed to the generator, which rewinds and decides
            value, error = None, exc


def _perform(api: openai.OpenAI, op: Op, on_event: EventHandler | None) -> Any:
    if isinstance(op, Checkpoint):
        return None  # progress is saved only by a store session (serve_session)
    if isinstance(op, Emit):
        if on_event is not None:
            on_event(op.event)
        return None
    if isinstance(op, Create):
        if not op.stream:
            return api.responses.create(**op.kwargs)
        reader = StreamReader(op.index)
        return _read(lambda: api.responses.create(stream=True, **op.kwargs), reader, op, on_event)
    if isinstance(op, Retrieve | Resume | CancelResponse):
        return _background(api, op, on_event)
    if isinstance(op, Compact):
        return api.responses.compact(**op.kwargs)
    if isinstance(op, RunTools):
        return run_plans(op.plans, op.max_workers)
    if isinstance(op, AskApproval):
        return [op.decide(request) for request in op.requests]
    if isinstance(op, Sleep):
        _wait(op.seconds, op.cancel)
        return None
    if isinstance(op, ListNewItems):
        newest_first = []
        for item in api.conversations.items.list(op.conversation_id, order="desc", limit=100):
            if op.known(item):
                break
            newest_first.append(item)
        return newest_first[::-1]
    raise AssertionError(f"unknown operation {op!r}")  # pragma: no cover


def _background(
    api: openai.OpenAI, op: Retrieve | Resume | CancelResponse, on_event: EventHandler | None
) -> Any:
    if isinstance(op, CancelResponse):
        return api.responses.cancel(op.response_id)
    if op.wait > 0:  # a poll_interval, or a backoff before resuming: cancel() ends it at once
        _wait(op.wait, op.cancel)
    if isinstance(op, Retrieve):
        return api.responses.retrieve(op.response_id)
    reader = StreamReader(op.index, last_sequence=op.starting_after, response_id=op.response_id)

    def open_stream() -> Any:
        return api.responses.retrieve(op.response_id, stream=True, starting_after=op.starting_after)

    return _read(open_stream, reader, op, on_event)


def _wait(seconds: float, cancel: CancelToken | None) -> None:
    """Sleep ``seconds``; with a token, wait on it instead, so ``cancel()`` ends the wait."""
    if cancel is None:
        time.sleep(seconds)
    else:
        cancel._sleep(seconds)


def _read(
    open_stream: Callable[[], Any],
    reader: StreamReader,
    op: Create | Resume,
    on_event: EventHandler | None,
) -> Any:
    """Read a stream to its terminal event; ``StreamCut`` if it stops (or is cancelled) first.

    An error opening the stream is raised as it is (a 400 stays a 400); once events flow, a
    dropped connection is a cut.
    """
    with open_stream() as events:
        try:
            for event in events:
                delta, final = reader.feed(event)
                if delta is not None and on_event is not None:
                    on_event(delta)
                if final is not None:
                    return final
                if reader.should_stop(op.cancel):
                    raise reader.cut(cancelled=True)
        except openai.APIConnectionError as exc:
            raise reader.cut() from exc
    raise reader.cut()
