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
    except transient: tracker.rewind(p); wait; try again (prepare sends the same delta)
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

import copy
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Any

import attrs

from tracker._errors import UsageError
from tracker._fingerprint import fingerprint
from tracker._items import field, read_item
from tracker._prepared import Prepared
from tracker._repair_actions import placeholder_text
from tracker._tracker import Tracker

from ._approvals import ApprovalHandler, AskApproval, approval_requests, approval_responses
from ._background import (
    DEFAULT_POLL_TIMEOUT,
    CancelResponse,
    CancelToken,
    Resume,
    Retrieve,
    StreamCut,
    resume,
    settle,
)
from ._compaction import (
    compact_setting,
    crossed,
    is_stale_encrypted,
    named_item,
    strip_sent,
)
from ._recovery import stored_response_start
from ._results import (
    EncryptedDropped,
    LoopEvent,
    MaxTurnsError,
    PollTimeoutError,
    RequestRecord,
    RequestSent,
    ResponseFailedError,
    ResponseReceived,
    Retrying,
    ToolCalled,
    ToolFinished,
    TurnCancelledError,
    TurnResult,
)
from ._retry import RetryPolicy, is_transient
from ._stateless import enter_stateless, stateless_kwargs
from ._tools import FunctionTool, Invocation, function_tool, plan_call

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

DEFAULT_TOOL_WORKERS = 8
"""How many tool calls of one response run at the same time, by default."""

#: Keyword arguments the loop sets itself on every ``responses.create`` call.
_RESERVED = frozenset({"model", "input", "tools", "stream", "previous_response_id", "conversation"})


@attrs.frozen
class Create:
    """Call ``responses.create(**kwargs)`` (streamed when ``stream``); send back the Response.

    A stream that stops before its terminal event raises ``StreamCut`` (``StreamReader``);
    so does a background stream whose ``cancel`` token is set.
    """

    kwargs: Mapping[str, Any]
    stream: bool
    index: int
    cancel: CancelToken | None = None


@attrs.frozen
class Compact:
    """Call ``responses.compact(**kwargs)``; send back the ``CompactedResponse``."""

    kwargs: Mapping[str, Any]


@attrs.frozen
class ListNewItems:
    """List the conversation's items newest first, stopping at the first one ``known``.

    Send back the items not known, oldest first.
    """

    conversation_id: str
    known: Callable[[Any], bool]


@attrs.frozen
class RunTools:
    """Run the invocations, at most ``max_workers`` at once; send back ``(output, is_error)``s.

    A ``str`` plan is already the (error) output for that call. The outcomes keep the plans'
    order, whatever order the tools finish in.
    """

    plans: tuple[Invocation | str, ...]
    max_workers: int


@attrs.frozen
class Sleep:
    """Wait ``seconds`` before the next try."""

    seconds: float


@attrs.frozen
class Emit:
    """Hand ``event`` to the caller's callback."""

    event: LoopEvent


@attrs.frozen
class Checkpoint:
    """The turn made progress worth saving (a store session saves it; others ignore it).

    ``outputs`` are the tool outputs computed for the calls now pending, not yet delivered:
    after a crash, whoever resumes the session sends them instead of running the tools again.
    """

    outputs: tuple[Mapping[str, Any], ...]


Op = (
    Create
    | Compact
    | ListNewItems
    | RunTools
    | Sleep
    | Emit
    | Checkpoint
    | Retrieve
    | Resume
    | CancelResponse
    | AskApproval
)


@attrs.frozen
class TurnSpec:
    """Everything about a turn except the tracker and the input; see ``make_spec``."""

    model: str
    tools: Mapping[str, FunctionTool]
    tool_specs: tuple[Mapping[str, Any], ...]
    stream: bool
    max_turns: int
    retry: RetryPolicy
    options: Mapping[str, Any]
    max_tool_workers: int
    compact: bool = False
    poll_interval: float = 1.0
    cancel: CancelToken | None = None
    clock: Callable[[], float] = time.monotonic
    #: Seconds a background response may stay queued/in progress (``None``: no bound).
    poll_timeout: float | None = DEFAULT_POLL_TIMEOUT
    #: Compact after the turn when its final response's ``usage.input_tokens`` reaches this.
    compact_after: int | None = None
    recover_encrypted: bool = True
    #: Answers each ``mcp_approval_request`` (``_approvals``); ``None``: the turn ends there.
    on_approval: ApprovalHandler | None = None


def make_spec(
    model: str,
    tools: Sequence[Any],
    *,
    stream: bool,
    max_turns: int,
    retry: RetryPolicy,
    options: Mapping[str, Any],
    max_tool_workers: int = DEFAULT_TOOL_WORKERS,
    compact: bool | int = False,
    recover_encrypted: bool = True,
    poll_interval: float = 1.0,
    cancel: CancelToken | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_approval: ApprovalHandler | None = None,
    poll_timeout: float | None = DEFAULT_POLL_TIMEOUT,
) -> TurnSpec:
    """Check the turn's settings; raise ``UsageError`` naming the bad one.

    ``tools`` holds callables, ``FunctionTool``s, or tool dicts passed through unchanged (for
    tools the server runs, such as ``{"type": "web_search"}``).
    """
    if not isinstance(model, str) or not model:
        raise UsageError(f"model must be a non-empty model name, got {model!r}.")
    _check_positive("max_turns", max_turns, "model calls per turn")
    _check_positive("max_tool_workers", max_tool_workers, "tool calls run at once")
    _check_polling(poll_interval, poll_timeout)
    if cancel is not None and not isinstance(cancel, CancelToken):
        raise UsageError(f"cancel must be a tracker.loop.CancelToken, got {cancel!r}.")
    if on_approval is not None and not callable(on_approval):
        raise UsageError(f"on_approval must be a callable, got {on_approval!r}.")
    before, threshold = compact_setting(compact)
    clash = sorted(_RESERVED & set(options))
    if clash:
        raise UsageError(
            f"Option(s) {', '.join(clash)} are set by the loop itself: pass input=..., "
            "tools=..., stream=..., and a tracker (or conversation=...) instead."
        )
    functions: dict[str, FunctionTool] = {}
    specs: list[Mapping[str, Any]] = []
    for tool in tools:
        if isinstance(tool, Mapping):
            specs.append(tool)
            continue
        if not (callable(tool) or isinstance(tool, FunctionTool)):
            raise UsageError(f"Tool {tool!r} is neither a callable nor a tool dict.")
        ft: FunctionTool = function_tool(tool)
        if ft.name in functions:
            raise UsageError(f"Two tools are named {ft.name!r}: pass name=... to function_tool.")
        functions[ft.name] = ft
        specs.append(ft.spec())
    return TurnSpec(
        model=model,
        tools=functions,
        tool_specs=tuple(specs),
        stream=bool(stream),
        max_turns=max_turns,
        retry=retry,
        options=dict(options),
        max_tool_workers=max_tool_workers,
        poll_interval=float(poll_interval),
        poll_timeout=None if poll_timeout is None else float(poll_timeout),
        cancel=cancel,
        clock=clock,
        compact=before,
        compact_after=threshold,
        recover_encrypted=bool(recover_encrypted),
        on_approval=on_approval,
    )


def _check_polling(poll_interval: object, poll_timeout: object) -> None:
    """``poll_interval`` seconds >= 0; ``poll_timeout`` seconds > 0 or ``None``."""
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, int | float):
        raise UsageError(f"poll_interval must be seconds (a number), got {poll_interval!r}.")
    if poll_interval < 0:
        raise UsageError(f"poll_interval must be >= 0 seconds, got {poll_interval!r}.")
    if poll_timeout is not None and (
        isinstance(poll_timeout, bool)
        or not isinstance(poll_timeout, int | float)
        or not poll_timeout > 0
    ):
        raise UsageError(
            f"poll_timeout must be seconds > 0 (or None: no bound), got {poll_timeout!r}."
        )


def _check_positive(name: str, value: object, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{name} must be a positive int ({meaning}), got {value!r}.")


# ---------------------------------------------------------------------- reading responses


def _output_items(response: Any) -> list[Any]:
    output = field(response, "output")
    return list(output) if output else []


def final_text(output: Sequence[Any]) -> str:
    """The text of the assistant messages in ``output`` (what ``Response.output_text`` gives)."""
    parts: list[str] = []
    for item in output:
        if field(item, "type") == "message" and field(item, "role") == "assistant":
            for part in field(item, "content") or ():
                if field(part, "type") == "output_text":
                    parts.append(field(part, "text") or "")
    return "".join(parts)


def _raise_if_failed(response: Any) -> None:
    if field(response, "status") != "failed":
        return
    error = field(response, "error")
    code = field(error, "code") if error is not None else None
    message = field(error, "message") if error is not None else None
    response_id = field(response, "id")
    raise ResponseFailedError(
        f"Response {response_id} failed ({code}): {message or 'no message'}.",
        code=code,
        response_id=response_id,
    )


# ---------------------------------------------------------------------- the turn


def _as_items(user_input: Any) -> list[Any]:
    """The user's input as new item objects.

    Copied, so an object the tracker already sent (a constant "continue" message reused as a
    later turn) is still new input: prepare() would skip the held object itself.
    """
    if isinstance(user_input, str):
        return [{"role": "user", "content": user_input}]
    if isinstance(user_input, Mapping) or hasattr(user_input, "type"):
        return [copy.copy(user_input)]
    return [copy.copy(item) for item in user_input]


def input_key(user_input: Any) -> str:
    """A stable key of the user's input: the same input, in any process, gives the same key."""
    return ",".join(fingerprint(item) for item in _as_items(user_input))


def _unanswered_approval(request_id: str) -> UsageError:
    """A pending MCP approval request (keyed by its own ``mcpr_`` id, unlike a tool call) that
    the turn's input does not answer: the loop never invents an approval."""
    answer = {"type": "mcp_approval_response", "approval_request_id": request_id, "approve": True}
    return UsageError(
        f"MCP approval request {request_id} is still pending and the loop never answers one "
        f"on its own: pass the answer in this turn's input ([{answer!r}], approve True or "
        "False), or on_approval=... to the turn that receives the request."
    )


def _turn_input(
    tracker: Tracker, user_input: Any, carried: Sequence[Mapping[str, Any]], resume: bool
) -> tuple[list[Any], int]:
    """The turn's first items: outputs for the pending calls, then the user's input.

    A pending call gets its ``carried`` output (computed by an interrupted turn) if there is
    one, else a placeholder. ``resume``: the server already holds the input; not sent again.
    """
    # Resuming needs something to send; with no call left pending, serve the input afresh.
    resume = resume and bool(tracker.pending_call_ids)
    items = [] if resume else _as_items(user_input)
    answered = {info.call_id for info in map(read_item, items) if info.is_output}
    saved = {read_item(output).call_id: output for output in carried}  # approvals: by request
    first: list[Any] = []
    for call_id in tracker.pending_call_ids:
        if call_id not in answered:
            output = saved.get(call_id)
            if output is None and tracker.item_id_for_call(call_id) == call_id:
                raise _unanswered_approval(call_id)
            first.append(
                dict(output)
                if output is not None
                else {
                    "type": "function_call_output",
                    "call_id": call_id,
                    "output": placeholder_text(call_id),
                }
            )
    abandoned = sum(1 for item in first if read_item(item).call_id not in saved)
    return first + items, abandoned


@attrs.define
class _Turn:
    tracker: Tracker
    spec: TurnSpec
    items: list[Any]
    abandoned: int
    responses: list[Any] = attrs.Factory(list)
    records: list[RequestRecord] = attrs.Factory(list)
    errors: list[BaseException] = attrs.Factory(list)
    tool_calls: int = 0
    tool_errors: int = 0
    reconcile: bool = False
    compacted: Any = None
    dropped_encrypted: tuple[str, ...] = ()

    def compact(self) -> Generator[Op, Any, None]:
        """Compact now (see ``_compaction``): a standalone compaction in a stored chain, else a
        ``compaction_trigger`` request. Raises ``CompactionError`` while calls are pending."""
        tracker = self.tracker
        standalone = tracker.conversation_id is None and tracker.store
        if standalone:
            prepared = tracker.prepare_compact()
        else:
            prepared = tracker.prepare([], content_match=False, compact=True)
        tracker.mark_sent(prepared)
        try:
            if standalone:
                compacted = yield Compact({"model": self.spec.model, **prepared.request_kwargs()})
            else:
                compacted = yield from self.deliver(prepared, -1)
                _raise_if_failed(compacted)
            tracker.observe_response(compacted)
        except BaseException:
            tracker.rewind(prepared)
            raise
        self.compacted = compacted

    def compact_after(self) -> Generator[Op, Any, None]:
        """Compact after the final answer; a transient failure skips it (noted in errors)."""
        if self.tracker.pending_call_ids:  # only async calls can be left: wait for them
            return
        try:
            yield from self.compact()
        except Exception as exc:
            if not is_transient(exc):
                raise
            self.errors.append(exc)

    def drop_stale(
        self, index: int, attempt: int, exc: BaseException, sent: Prepared
    ) -> Generator[Op, Any, bool]:
        """Recover once from a 400 ``invalid_encrypted_content`` (see ``_compaction``).

        Returns whether the request is to be sent again (the items were dropped).
        """
        if not (self.spec.recover_encrypted and is_stale_encrypted(exc)):
            return False
        if self.dropped_encrypted:
            exc.add_note(
                "tracker.loop: this turn already dropped the encrypted items it carried "
                f"({', '.join(self.dropped_encrypted)}) once; not again."
            )
            return False
        dropped = list(self.tracker.strip_encrypted())
        self.items, own = strip_sent(self.items, sent.delta)
        dropped.extend(own)
        if not dropped:
            where = sent.conversation_id or sent.previous_response_id or "the request"
            exc.add_note(
                f"tracker.loop: the request carried no encrypted item inline, so the one refused "
                f"is held by the server in {where} and cannot be dropped by the client: continue "
                "from your history in a new chain, or go_stateless(history) then "
                "strip_encrypted()."
            )
            return False
        self.dropped_encrypted = tuple(dropped)
        self.errors.append(exc)
        yield Emit(
            EncryptedDropped(
                index=index,
                attempt=attempt,
                item_ids=self.dropped_encrypted,
                named=named_item(exc),
                error=exc,
            )
        )
        return True

    def result(self, text: str) -> TurnResult:
        return TurnResult(
            text=text,
            responses=tuple(self.responses),
            requests=tuple(self.records),
            tracker=self.tracker,
            tool_calls=self.tool_calls,
            tool_errors=self.tool_errors,
            abandoned_calls=self.abandoned,
            errors=tuple(self.errors),
            compacted=self.compacted,
            dropped_encrypted=self.dropped_encrypted,
        )

    def kwargs(self, prepared: Prepared) -> dict[str, Any]:
        kwargs: dict[str, Any] = {**self.spec.options, "model": self.spec.model}
        if self.spec.tool_specs:
            kwargs["tools"] = [dict(t) for t in self.spec.tool_specs]
        kwargs.update(prepared.request_kwargs())
        return stateless_kwargs(kwargs, self.tracker)

    def record(self, p: Prepared, index: int, tries: int, response: Any, recovered: bool) -> None:
        output = _output_items(response)
        rec = RequestRecord(
            index=index,
            previous_response_id=p.previous_response_id,
            conversation_id=p.conversation_id,
            sent=len(p.input),
            skipped=p.skipped,
            attempts=tries,
            response_id=None if recovered else field(response, "id"),
            recovered=recovered,
            tool_calls=sum(1 for item in output if field(item, "type") == "function_call"),
        )
        self.records.append(rec)
        self.responses.append(response)
        self.items.extend(output)

    def recover(self, sent: Prepared, new_items: list[Any]) -> dict[str, Any] | None:
        """Observe the conversation's new items; return the stored response, if there is one."""
        start = stored_response_start(new_items, sent.input)
        if start is None:
            self.tracker.observe_items(new_items)
            return None
        self.tracker.observe_items(new_items[:start])
        held = self.tracker.prepare(list(sent.input), content_match=False)
        self.tracker.mark_sent(held)  # the id-less input (a user message) is now held
        response = {
            "id": None,
            "object": "response",
            "status": "completed",
            "output": list(new_items[start:]),
            "conversation": {"id": sent.conversation_id},
        }
        self.tracker.observe_response(response)
        return response

    def request(self, index: int) -> Generator[Op, Any, Any]:
        """Deliver one model call, retrying transient errors; return its response."""
        failures = 0
        failed: Prepared | None = None
        if self.reconcile and index == 0 and self.tracker.conversation_id is not None:
            # Taking over a turn another worker left unfinished: it may have had this very
            # request stored in the conversation. Check before sending, as after a failure.
            failed = self.tracker.prepare(self.items, content_match=False)
        while True:
            if failed is not None and failed.conversation_id is not None:
                try:
                    new_items = yield ListNewItems(failed.conversation_id, self.tracker.holds)
                except Exception as exc:
                    failures += 1
                    delay = self.spec.retry.delay(exc, failures)
                    if delay is None:
                        raise
                    yield from self.backoff(index, failures, delay, exc)
                    continue
                stored = self.recover(failed, new_items)
                if stored is not None:
                    self.record(failed, index, failures + 1, stored, recovered=True)
                    return stored
            p = self.tracker.prepare(self.items, content_match=False)
            self.tracker.mark_sent(p)
            try:
                yield Emit(
                    RequestSent(
                        index=index,
                        attempt=failures,
                        sent=len(p.input),
                        skipped=p.skipped,
                        previous_response_id=p.previous_response_id,
                        conversation_id=p.conversation_id,
                    )
                )
                response = yield from self.deliver(p, index)
                _raise_if_failed(response)
                self.tracker.observe_response(response)
            except BaseException as exc:
                self.tracker.rewind(p)
                failures += 1
                if (yield from self.drop_stale(index, failures, exc, p)):
                    failed = None  # a 400 stored nothing: send the rest again, at once
                    continue
                delay = self.spec.retry.delay(exc, failures)
                if delay is None:
                    raise
                failed = p
                yield from self.backoff(index, failures, delay, exc)
                continue
            self.record(p, index, failures + 1, response, recovered=False)
            return response

    def deliver(self, p: Prepared, index: int) -> Generator[Op, Any, Any]:
        """Send one request; resume its stream if cut, poll it while queued (``_background``).

        Returns the response once terminal; raises ``TurnCancelledError`` if it was cancelled.
        """
        spec = self.spec
        started = spec.clock()
        try:
            response = yield Create(self.kwargs(p), spec.stream, index, spec.cancel)
        except StreamCut as cut:
            response = yield from resume(
                cut,
                started=started,
                clock=spec.clock,
                retry=spec.retry,
                cancel=spec.cancel,
                errors=self.errors,
                index=index,
            )
            self.errors.append(cut)  # resumed: no Retrying event, the deltas seen stand
        return (
            yield from settle(
                response,
                retry=spec.retry,
                poll_interval=spec.poll_interval,
                cancel=spec.cancel,
                errors=self.errors,
                started=started,
                clock=spec.clock,
                poll_timeout=spec.poll_timeout,
            )
        )

    def cancelled(self, response_id: str | None) -> TurnCancelledError:
        """The error that ends a cancelled turn, with the partial result."""
        last = _output_items(self.responses[-1]) if self.responses else []
        return TurnCancelledError(
            f"The turn was cancelled after {len(self.responses)} model call(s)"
            + (f"; response {response_id} was cancelled" if response_id else "")
            + ". The tracker holds what the server holds (a cancelled response is not chained "
            "from): pass exc.tracker to the next turn; calls left pending get a placeholder "
            "output there.",
            response_id=response_id,
            result=self.result(final_text(last)),
        )

    def timed_out(self, exc: PollTimeoutError) -> PollTimeoutError:
        """``exc`` with the partial result and the outputs the unanswered request carried."""
        pending = set(self.tracker.pending_call_ids)
        outputs = tuple(
            item
            for item in self.items
            if (info := read_item(item)).is_output and info.call_id in pending
        )
        last = _output_items(self.responses[-1]) if self.responses else []
        error = PollTimeoutError(
            str(exc),
            response_id=exc.response_id,
            waited=exc.waited,
            cancelled=exc.cancelled,
            outputs=outputs,
            result=self.result(final_text(last)),
        )
        error.__cause__ = exc.__cause__
        return error

    def backoff(
        self, index: int, failures: int, delay: float, exc: BaseException
    ) -> Generator[Op, Any, None]:
        self.errors.append(exc)
        yield Emit(Retrying(index=index, attempt=failures, delay=delay, error=exc))
        yield Sleep(delay)

    def run_tools(self, calls: list[Any], approvals: list[Any]) -> Generator[Op, Any, None]:
        """Answer the approval requests (``_approvals``) and run the calls; the answers and
        outputs go with the next request."""
        answers: list[Any] = []
        if approvals:
            assert self.spec.on_approval is not None
            decided = yield AskApproval(tuple(approvals), self.spec.on_approval)
            answers = approval_responses(approvals, decided)
        plans: list[Invocation | str] = []
        for call in calls:
            call_id, name = field(call, "call_id"), field(call, "name")
            if field(call, "type") == "function_call":
                arguments = field(call, "arguments") or ""
                plans.append(plan_call(self.spec.tools, name, arguments))
            else:
                arguments = str(field(call, "input") or "")
                plans.append(f"Error: {name!r} is a custom tool; this loop runs function tools.")
            yield Emit(ToolCalled(call_id=call_id, name=name, arguments=arguments))
        outcomes: list[tuple[str, bool]] = (
            (yield RunTools(tuple(plans), self.spec.max_tool_workers)) if plans else []
        )
        outputs: list[Mapping[str, Any]] = list(answers)
        for call, (output, is_error) in zip(calls, outcomes, strict=True):
            call_id, name = field(call, "call_id"), field(call, "name")
            out_type = (
                "function_call_output"
                if field(call, "type") == "function_call"
                else ("custom_tool_call_output")
            )
            outputs.append({"type": out_type, "call_id": call_id, "output": output})
            self.tool_calls += 1
            self.tool_errors += is_error
            yield Emit(ToolFinished(call_id=call_id, name=name, output=output, is_error=is_error))
        self.items.extend(outputs)
        yield Checkpoint(tuple(outputs))


def _client_work(output: Sequence[Any], spec: TurnSpec) -> tuple[list[Any], list[Any]]:
    """The response's tool calls to run, and its approval requests to answer (if asked to)."""
    calls = [
        item for item in output if field(item, "type") in ("function_call", "custom_tool_call")
    ]
    return calls, approval_requests(output) if spec.on_approval is not None else []


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
        try:
            response = yield from turn.request(index)
        except TurnCancelledError as exc:
            raise turn.cancelled(exc.response_id) from None
        except PollTimeoutError as exc:
            raise turn.timed_out(exc) from None
        yield Emit(ResponseReceived(record=turn.records[-1], response=response))
        output = _output_items(response)
        calls, approvals = _client_work(output, spec)
        if not calls and cancel is not None and cancel.cancelled:
            raise turn.cancelled(None)  # finished as it was cancelled: the caller still asked
        if not calls and not approvals:
            if deferred or crossed(response, spec.compact_after):
                yield from turn.compact_after()
            return turn.result(final_text(output))
        yield Checkpoint(())
        if index + 1 < spec.max_turns:
            yield from turn.run_tools(calls, approvals)
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
