"""``arun_turn``: the asyncio driver of the loop (``openai.AsyncOpenAI`` client)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, TypeVar, cast

import openai

from tracker._tracker import Tracker
from tracker.stores import (
    DEFAULT_LEASE_TTL,
    AsyncStore,
    AsyncStoreAdapter,
    Store,
    aclaim_session,
    arelease_session,
    arenew_session,
    new_owner,
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
from ._tools import arun_plans

__all__ = ["arun_turn"]

AsyncEventHandler = Callable[[LoopEvent], object]


async def arun_turn(
    client: openai.AsyncOpenAI,
    *,
    model: str,
    input: Any,
    tools: Sequence[Any] = (),
    tracker: Tracker | None = None,
    session_store: AsyncStore | Store | None = None,
    session_id: str | None = None,
    conversation: str | None = None,
    stream: bool = False,
    on_event: AsyncEventHandler | None = None,
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
    """The async form of ``run_turn``: same arguments, same result, same guarantees.

    The parallel calls of one response run concurrently, at most ``max_tool_workers`` at once
    (async tools awaited together, plain ones in worker threads); their outputs keep the calls'
    order. ``on_event`` may be a plain or an async callable. ``session_store`` may be an
    ``AsyncStore`` or a sync ``Store`` (its calls then run in a worker thread).
    ``cancel`` is the same ``CancelToken`` (``cancel()`` from a task or a thread); it wakes
    the awaited waits (poll, backoff, lease) at once, as in ``run_turn``.
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

    async def turn(chosen: Tracker) -> TurnResult:
        return await _step(drive(chosen, input, spec), lambda op: _perform(api, op, on_event))

    if session_store is None or session_id is None:
        return await turn(tracker if tracker is not None else fresh_tracker(conversation))
    # Protocol isinstance checks only see method names, so look at what load() is.
    astore: AsyncStore = (
        cast(AsyncStore, session_store)
        if inspect.iscoroutinefunction(session_store.load)
        else AsyncStoreAdapter(cast(Store, session_store))
    )

    owner = new_owner() if lease_owner is None else lease_owner

    async def session_io(op: SessionOp | Op) -> Any:
        if isinstance(op, Claim):
            return await aclaim_session(
                astore,
                session_id,
                owner=owner,
                ttl=lease_ttl,
                reuse=kept_sessions.take(session_store, session_id),
                conversation_id=conversation,
            )
        if isinstance(op, Renew):
            return await arenew_session(astore, op.session, turn=op.turn)
        if isinstance(op, Release):
            version = await arelease_session(astore, op.session, turn=op.turn)
            kept_sessions.put(session_store, op.session)  # the next turn claims without a load
            return version
        return await _perform(api, op, on_event)

    served = serve_session(session_id, input, spec, conversation, lease_wait)
    return await _step(served, session_io)


_T = TypeVar("_T")
_Op = TypeVar("_Op")


async def _step(gen: Generator[_Op, Any, _T], perform: Callable[[_Op], Awaitable[Any]]) -> _T:
    """Run ``gen`` to its end, awaiting each operation it yields (errors are thrown in)."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = gen.send(value) if error is None else gen.throw(error)
        except StopIteration as stop:
            result: _T = stop.value
            return result
        try:
            value, error = await perform(op), None
        except BaseException as exc:  # handed to the generator, which rewinds and decides
            value, error = None, exc


async def _emit(on_event: AsyncEventHandler | None, event: LoopEvent) -> None:
    if on_event is not None:
        outcome = on_event(event)
        if inspect.isawaitable(outcome):
            await outcome


async def _perform(api: openai.AsyncOpenAI, op: Op, on_event: AsyncEventHandler | None) -> Any:
    if isinstance(op, Checkpoint):
        return None  # progress is saved only by a store session (serve_session)
    if isinstance(op, Emit):
        await _emit(on_event, op.event)
        return None
    if isinstance(op, Create):
        if not op.stream:
            return await api.responses.create(**op.kwargs)
        events = await api.responses.create(stream=True, **op.kwargs)
        return await _read(events, StreamReader(op.index), op, on_event)
    if isinstance(op, Retrieve | Resume | CancelResponse):
        return await _background(api, op, on_event)
    if isinstance(op, Compact):
        return await api.responses.compact(**op.kwargs)
    if isinstance(op, RunTools):
        return await arun_plans(op.plans, op.max_workers)
    if isinstance(op, AskApproval):
        answers = [op.decide(request) for request in op.requests]
        return [await a if inspect.isawaitable(a) else a for a in answers]
    if isinstance(op, Sleep):
        await _wait(op.seconds, op.cancel)
        return None
    if isinstance(op, ListNewItems):
        return await _new_items(api, op)
    raise AssertionError(f"unknown operation {op!r}")  # pragma: no cover


async def _new_items(api: openai.AsyncOpenAI, op: ListNewItems) -> list[Any]:
    """The conversation's items newer than the newest one the tracker knows, oldest first.

    Page by page, not ``async for`` over the paginator: stopping at a known item would leave
    its async generators suspended (see ``_read``).
    """
    newest_first: list[Any] = []
    page = await api.conversations.items.list(op.conversation_id, order="desc", limit=100)
    while True:
        for item in page.data:
            if op.known(item):
                return newest_first[::-1]
            newest_first.append(item)
        if not page.has_next_page():
            return newest_first[::-1]
        page = await page.get_next_page()


async def _background(
    api: openai.AsyncOpenAI,
    op: Retrieve | Resume | CancelResponse,
    on_event: AsyncEventHandler | None,
) -> Any:
    if isinstance(op, CancelResponse):
        return await api.responses.cancel(op.response_id)
    if op.wait > 0:  # a poll_interval, or a backoff before resuming: cancel() ends it at once
        await _wait(op.wait, op.cancel)
    if isinstance(op, Retrieve):
        return await api.responses.retrieve(op.response_id)
    reader = StreamReader(op.index, last_sequence=op.starting_after, response_id=op.response_id)
    events = await api.responses.retrieve(
        op.response_id, stream=True, starting_after=op.starting_after
    )
    return await _read(events, reader, op, on_event)


async def _wait(seconds: float, cancel: CancelToken | None) -> None:
    """Sleep ``seconds``; with a token, wait on it instead, so ``cancel()`` ends the wait."""
    if cancel is None:
        await asyncio.sleep(seconds)
    else:
        await cancel._asleep(seconds)


async def _read(
    events: Any, reader: StreamReader, op: Create | Resume, on_event: AsyncEventHandler | None
) -> Any:
    """Read a stream to its terminal event; ``StreamCut`` if it stops (or is cancelled) first.

    After the terminal event the stream is still read to its end (the service closes it there):
    leaving early would leave the client's chain of async generators (openai's and httpx's)
    suspended, to be finalized whenever and wherever the garbage collector meets them, possibly
    in another thread or after this event loop closed ("Exception ignored in ...
    BoundAsyncStream.__aiter__": ``async generator already executing``).
    """
    final: Any = None
    async with events:
        try:
            async for event in events:
                if final is not None:
                    continue
                delta, final = reader.feed(event)
                if delta is not None:
                    await _emit(on_event, delta)
                if final is None and reader.should_stop(op.cancel):
                    raise reader.cut(cancelled=True)
        except openai.APIConnectionError as exc:
            if final is None:
                raise reader.cut() from exc
    if final is not None:
        return final
    raise reader.cut()
