"""``_Turn``: the state of one user turn and its steps (send a request with retries and
recovery, deliver it through streams and polling, compact, drop stale encrypted items, run the
tools), each a generator of ``Op``s that ``drive`` (``_core``) composes.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any

import attrs

from tracker._items import field, read_item
from tracker._prepared import Prepared
from tracker._tracker import Tracker

from ._approvals import AskApproval, approval_responses
from ._background import StreamCut, resume, settle, store_chained_background
from ._compaction import is_stale_encrypted, named_item, strip_sent
from ._ops import Checkpoint, Compact, Create, Emit, ListNewItems, Op, RunTools, Sleep
from ._recovery import stored_response_start
from ._results import (
    EncryptedDropped,
    PollTimeoutError,
    RequestRecord,
    RequestSent,
    ResponseFailedError,
    Retrying,
    ToolCalled,
    ToolFinished,
    TurnCancelledError,
    TurnResult,
)
from ._retry import is_transient
from ._spec import TurnSpec
from ._stateless import stateless_kwargs
from ._tools import Invocation, plan_call
from ._turn_input import _output_items, _raise_if_failed, final_text


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
        ``compaction_trigger`` request. Raises ``CompactionError`` while calls are pending.

        A 400 ``invalid_encrypted_content`` on it (a stateless transcript's stale item, a
        waiting window's) is recovered as a turn's request is (``drop_stale``, index -1)."""
        tracker = self.tracker
        standalone = tracker.conversation_id is None and tracker.store
        while True:
            if standalone:
                prepared = tracker.prepare_compact()
            else:
                prepared = tracker.prepare([], content_match=False, compact=True)
            tracker.mark_sent(prepared)
            try:
                if standalone:
                    kwargs = {"model": self.spec.model, **prepared.request_kwargs()}
                    compacted = yield Compact(kwargs)
                else:
                    compacted = yield from self.deliver(self.kwargs(prepared), -1)
                    _raise_if_failed(compacted)
                tracker.observe_response(compacted)
            except BaseException as exc:
                tracker.rewind(prepared)
                if (yield from self.drop_stale(-1, 1, exc, prepared)):
                    continue  # a 400 stored nothing: compact again without the stale items
                raise
            self.compacted = compacted
            return

    def compact_after(self) -> Generator[Op, Any, None]:
        """Compact after the final answer; a failed request (any API error, transient or not:
        a 5xx, a model without compaction) skips it, noted in errors, so the answer the tracker
        already holds is returned, never raised away (re-running the turn would send it all
        again). Anything else (a bug, a ``UsageError``) is raised."""
        if self.tracker.pending_call_ids:  # only async calls can be left: wait for them
            return
        try:
            yield from self.compact()
        except Exception as exc:
            if not (is_transient(exc) or getattr(exc, "status_code", None) is not None):
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

    def result(self, text: str, outputs: tuple[Any, ...] = ()) -> TurnResult:
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
            outputs=outputs,
        )

    def kwargs(self, prepared: Prepared) -> dict[str, Any]:
        kwargs: dict[str, Any] = {**self.spec.options, "model": self.spec.model}
        if self.spec.tool_specs:
            kwargs["tools"] = [dict(t) for t in self.spec.tool_specs]
        kwargs.update(prepared.request_kwargs())
        chained = self.tracker.store and self.tracker.conversation_id is None
        return store_chained_background(stateless_kwargs(kwargs, self.tracker), chained=chained)

    def record(
        self, p: Prepared, sent: int, tries: int, response: Any, *, index: int, recovered: bool
    ) -> None:
        """Record request ``index`` (``p``, ``sent`` items on the wire) and its response."""
        output = _output_items(response)
        rec = RequestRecord(
            index=index,
            previous_response_id=p.previous_response_id,
            conversation_id=p.conversation_id,
            sent=sent,
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

    def model_call(self, index: int) -> Generator[Op, Any, Any]:
        """``request(index)``; an error that ends the turn (cancelled, polled too long, failed
        for good) is raised carrying the partial result and the undelivered outputs."""
        try:
            return (yield from self.request(index))
        except TurnCancelledError as exc:
            raise self.cancelled(exc.response_id) from None
        except PollTimeoutError as exc:
            raise self.timed_out(exc) from exc.__cause__  # why a cancel failed, if it did
        except ResponseFailedError as exc:
            raise self.failed(exc) from None

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
                    sent = len(failed.request_input())  # as the request it recovers went
                    self.record(failed, sent, failures + 1, stored, index=index, recovered=True)
                    return stored
            p = self.tracker.prepare(self.items, content_match=False)
            self.tracker.mark_sent(p)
            try:
                kwargs = self.kwargs(p)
                sent = len(kwargs["input"])  # what goes over the wire (``request_input``)
                yield Emit(
                    RequestSent(
                        index=index,
                        attempt=failures,
                        sent=sent,
                        skipped=p.skipped,
                        previous_response_id=p.previous_response_id,
                        conversation_id=p.conversation_id,
                    )
                )
                response = yield from self.deliver(kwargs, index)
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
            self.record(p, sent, failures + 1, response, index=index, recovered=False)
            return response

    def deliver(self, kwargs: dict[str, Any], index: int) -> Generator[Op, Any, Any]:
        """Send one request (``kwargs``: ``kwargs(prepared)``); resume its stream if cut, poll
        it while queued (``_background``).

        Returns the response once terminal; raises ``TurnCancelledError`` if it was cancelled.
        """
        spec = self.spec
        started = spec.clock()
        try:
            response = yield Create(kwargs, spec.stream, index, spec.cancel)
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
        return TurnCancelledError(
            f"The turn was cancelled after {len(self.responses)} model call(s)"
            + (f"; response {response_id} was cancelled" if response_id else "")
            + ". The tracker holds what the server holds (a cancelled response is not chained "
            "from): pass exc.tracker to the next turn, with input=exc.outputs (the tool outputs "
            "not delivered yet) plus any new input; calls left without one get a placeholder.",
            response_id=response_id,
            outputs=self.undelivered(),
            result=self.result(final_text(self._last_output())),
        )

    def undelivered(self) -> tuple[Any, ...]:
        """The turn's outputs for calls the tracker still has pending (no response holds them)."""
        pending = set(self.tracker.pending_call_ids)
        return tuple(
            item
            for item in self.items
            if (info := read_item(item)).is_output and info.call_id in pending
        )

    def timed_out(self, exc: PollTimeoutError) -> PollTimeoutError:
        """``exc`` with the partial result and the outputs the unanswered request carried."""
        return PollTimeoutError(
            str(exc),
            response_id=exc.response_id,
            waited=exc.waited,
            cancelled=exc.cancelled,
            outputs=self.undelivered(),
            result=self.result(final_text(self._last_output())),
        )

    def failed(self, exc: ResponseFailedError) -> ResponseFailedError:
        """``exc`` with the partial result and the outputs the failed request carried."""
        return ResponseFailedError(
            f"{exc} Retry the turn with tracker=exc.tracker and input=exc.outputs (the tool "
            "outputs it carried, delivered once).",
            code=exc.code,
            response_id=exc.response_id,
            outputs=self.undelivered(),
            result=self.result(final_text(self._last_output())),
        )

    def _last_output(self) -> list[Any]:
        return _output_items(self.responses[-1]) if self.responses else []

    def backoff(
        self, index: int, failures: int, delay: float, exc: BaseException
    ) -> Generator[Op, Any, None]:
        """Wait ``delay`` before retrying after ``exc``; ``TurnCancelledError`` if the turn's
        token is cancelled (the wait waits on it, so it ends at once; the tracker was rewound)."""
        self.errors.append(exc)
        yield Emit(Retrying(index=index, attempt=failures, delay=delay, error=exc))
        cancel = self.spec.cancel
        yield Sleep(delay, cancel)
        if cancel is not None and cancel.cancelled:
            raise TurnCancelledError(
                f"The turn was cancelled while waiting {delay:g} s to retry request {index} "
                f"after {type(exc).__name__}.",
                response_id=None,
            ) from exc

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
