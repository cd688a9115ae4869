"""``run_turn``: the blocking driver of the loop (``openai.OpenAI`` client)."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

import openai

from tracker._tracker import Tracker
from tracker.stores import Store, load_tracker, save_tracker

from ._core import (
    Create,
    Emit,
    ListNewItems,
    Op,
    RunTools,
    Sleep,
    drive,
    incomplete_stream,
    make_spec,
    stream_step,
)
from ._results import LoopEvent, TurnResult
from ._retry import RetryPolicy
from ._session import Load, Save, SessionOp, check_sources, fresh_tracker, serve_session

__all__ = ["run_turn"]

EventHandler = Callable[[LoopEvent], object]


def run_turn(
    client: openai.OpenAI,
    *,
    model: str,
    input: Any,
    tools: Sequence[Any] = (),
    tracker: Tracker | None = None,
    store: Store | None = None,
    session_id: str | None = None,
    conversation: str | None = None,
    stream: bool = False,
    on_event: EventHandler | None = None,
    max_turns: int = 10,
    retry: RetryPolicy | None = None,
    max_conflicts: int = 3,
    **options: Any,
) -> TurnResult:
    """Run one user turn: call the model, run its tool calls, until it answers without tools.

    ``input`` is the user's new input (a string, or a list of items). ``tools`` holds plain or
    async callables (schema from their type hints), ``FunctionTool``s, or tool dicts passed
    through. State comes from ``tracker`` (updated in place), from ``store`` + ``session_id``
    (loaded, then saved with compare-and-set; on ``ConflictError`` the turn is re-run on the
    reloaded state, at most ``max_conflicts`` times), or is a fresh tracker (in
    ``conversation`` if given). ``stream=True`` streams each response, handing ``TextDelta``
    events to ``on_event``, which also gets request, response, tool and retry events.
    Remaining keyword arguments go to every ``responses.create`` call (``instructions``,
    ``reasoning``, ``timeout`` ...).

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
    )
    check_sources(tracker, store, session_id, conversation)
    api = client.with_options(max_retries=0)

    def turn(chosen: Tracker) -> TurnResult:
        return _step(drive(chosen, input, spec), lambda op: _perform(api, op, on_event))

    if store is None or session_id is None:
        return turn(tracker if tracker is not None else fresh_tracker(conversation))

    def session_io(op: SessionOp) -> Any:
        if isinstance(op, Load):
            return load_tracker(store, session_id, conversation_id=conversation)
        if isinstance(op, Save):
            return save_tracker(store, session_id, op.tracker, op.version)
        return turn(op.tracker)

    return _step(serve_session(session_id, conversation, max_conflicts), session_io)


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
    if isinstance(op, Emit):
        if on_event is not None:
            on_event(op.event)
        return None
    if isinstance(op, Create):
        if not op.stream:
            return api.responses.create(**op.kwargs)
        return _stream(api, op, on_event)
    if isinstance(op, RunTools):
        return [plan.run() if not isinstance(plan, str) else (plan, True) for plan in op.plans]
    if isinstance(op, Sleep):
        time.sleep(op.seconds)
        return None
    if isinstance(op, ListNewItems):
        newest_first = []
        for item in api.conversations.items.list(op.conversation_id, order="desc", limit=100):
            if op.known(item):
                break
            newest_first.append(item)
        return newest_first[::-1]
    raise AssertionError(f"unknown operation {op!r}")  # pragma: no cover


def _stream(api: openai.OpenAI, op: Create, on_event: EventHandler | None) -> Any:
    with api.responses.create(stream=True, **op.kwargs) as events:
        for event in events:
            delta, final = stream_step(event)
            if delta is not None and on_event is not None:
                on_event(delta)
            if final is not None:
                return final
    raise incomplete_stream(op.index)
