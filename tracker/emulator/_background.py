"""Background responses and resumable streams: queued -> in_progress -> completed, cancel, resume.

Theory of operation
-------------------
A ``background: true`` request is validated and its output decided when it arrives (the
script is deterministic), but it is *stored* (put in its chain or conversation, its tool
outputs counted as delivered) only when it completes. Time is a step count, so tests need no
sleeps: the create answer says ``queued``, each ``GET /v1/responses/{id}`` moves the response one
step, and the ``polls``-th retrieve finds it ``completed`` (``Emulator(background_polls=N)``).
A streamed background request (``stream: true`` too) runs to the end at once: its stream is the
whole run, ``response.created`` (``queued``), ``response.queued``, ``response.in_progress``, ...,
``response.completed``.

``GET /v1/responses/{id}?stream=true&starting_after=N`` replays that response's events whose
``sequence_number`` is above ``N`` (a resumed stream may begin with deltas, no
``response.created``; background guide, "Streaming a background response" [DOC]; pydantic-ai
2.68 and openai-ruby PR #548 [3P]); a response still queued is run to the end first. A stream
older than ``STREAM_RESUME_SECONDS`` by the emulator's clock (``Emulator(clock=...)``) is the
400 ``This response can no longer be streamed because it is more than 5 minutes old``
(openai-python#2828 [OBS]; ``param``/``code`` are not in the record: ``None``). Only background
responses can be streamed again unless ``RuleOptions.resume_foreground_streams``.

``Fault(fail="server_error")`` makes a queued background response end ``failed`` with that
code (``error.code``; the message is [INF]) instead of completing; it is not stored.
``Fault(stall=True)`` keeps one ``queued`` until it is cancelled (a stream of it still runs).

``POST /v1/responses/{id}/cancel`` stops a queued or in-progress background response
(``cancelled``, no output; its conversation is free again); on a finished background response
it answers the final object unchanged ("Cancelling twice is idempotent", background guide
[DOC]); on any other response it is a 400 (the SDK's docstring: "Only responses created with
the ``background`` parameter set to ``true`` can be cancelled"; the exact text is [INF]).
A cancelled response cannot be continued (``previous_response_not_found``) unless
``RuleOptions.chain_from_cancelled_response``, which stores its input with an empty output.

With ``RuleOptions.expire_unstored_background`` (on with ``Emulator(zdr=True)``) a background
response created without an explicit ``store: true`` (or any, under ``zdr``, which stores
nothing) is deleted ``UNSTORED_BACKGROUND_SECONDS`` after it was created, by the same clock:
retrieve, cancel and ``input_items`` are then the 404 ``Response with id 'resp_X' not found.``
and a ``previous_response_id`` naming it is ``previous_response_not_found`` (background guide,
localised editions [DOC]; see the switch). ``expire`` runs before every request; it finishes a
run still queued or in progress first (the service would have), and keeps a stalled one.

Runs are state like any other: with a state file (``state_path``) each change of one (its
creation, a poll that moves it, its end, a cancel) is journaled, a retrieve that changed one
included, so a restarted emulator goes on polling it where it was. A run loaded from the file
keeps its request as JSON and rebuilds its context from the chain or conversation when it
finishes; its conversation is not held busy across the restart.
"""

from __future__ import annotations

import copy
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from .._errors import UsageError
from .._rules import STREAM_RESUME_SECONDS, UNSTORED_BACKGROUND_SECONDS, RuleOptions
from ._context import Context, ContextIndex
from ._reply import Reply, error_reply
from ._responses import Turn, finish, response_object
from ._schema import bad_request, not_found
from ._state import Run, State
from ._stream import response_events

__all__ = ["CANCEL_NOT_BACKGROUND", "NOT_RESUMABLE", "TOO_OLD_TO_STREAM", "Background"]

#: [OBS] openai-python#2828: the text the service answers a resume of an old stream.
TOO_OLD_TO_STREAM = "This response can no longer be streamed because it is more than 5 minutes old"
#: [INF] from the SDK's docstring of ``responses.cancel``; the service's exact text is unknown.
CANCEL_NOT_BACKGROUND = "Only responses created with background=true can be cancelled."
#: [INF] no public record shows the service's text for streaming a foreground response again.
NOT_RESUMABLE = "Only responses created with background=true can be streamed again."

#: The service's text for a failed response's server error [INF]: the SDK documents the codes
#: (``ResponseError.code``), not the messages.
_FAILED = "The model failed to generate a response."

_ACTIVE = frozenset({"queued", "in_progress"})


class Background:
    """The runs of one emulator: queue, advance on polls, finish, cancel, replay streams."""

    def __init__(
        self,
        state: Callable[[], State],
        options: RuleOptions,
        *,
        polls: int = 2,
        clock: Callable[[], float],
    ) -> None:
        if polls < 1:
            raise UsageError(
                f"Emulator(background_polls={polls!r}): a background response needs at least one "
                "retrieve to complete; pass background_polls=1 or more."
            )
        self._state = state
        self.options = options
        self.polls = polls
        self.clock = clock
        self._dirty = False
        #: Background runs that expire (``expire_unstored_background``), oldest first, and the
        #: state they were read from (a state loaded from a file is read again).
        self._expiring: deque[tuple[float, str]] = deque()
        self._expiring_in: State | None = None

    def take_dirty(self) -> bool:
        """Whether a run changed since the last call (a retrieve that moved one is saved)."""
        dirty, self._dirty = self._dirty, False
        return dirty

    def _touch(self, state: State, run: Run) -> None:
        """Record that ``run`` changed (for the state journal); hold the lock."""
        state.runs[run.id] = run
        self._dirty = True

    def _turn(self, state: State, run: Run) -> Turn:
        """The run's request; rebuilt from its JSON for a run loaded from a state file."""
        if run.turn is not None:
            turn: Turn = run.turn
            return turn
        request = run.request or {}
        conv = state.conversations.get(request.get("conversation_id") or "")
        previous = request.get("previous")
        if previous:
            index = state.chain_index(previous, self.options)
        elif conv is not None:
            index = state.conversation_index(conv, self.options)
        else:
            index = ContextIndex(self.options)
        resolved = list(request.get("resolved") or [])
        rebuilt = Turn(
            body=dict(request.get("body") or {}),
            store=bool(request.get("store")),
            previous=previous,
            conv=conv,
            resolved=resolved,
            context=Context.of(index, resolved),
        )
        run.turn = rebuilt
        return rebuilt

    # creating ---------------------------------------------------------------------------------

    def queue(self, turn: Turn, output: list[dict[str, Any]], created: int) -> Reply:
        """Answer a validated ``background: true`` request (hold nothing; takes the lock)."""
        state = self._state()
        with state.lock:
            run = Run(
                id=state.ids.response_id(),
                turn=turn,
                output=output,
                started=self.clock(),
                created_at=created,
                background=True,
                polls_left=self.polls,
            )
            state.runs[run.id] = run
            if self._expires(run):
                self._expiring.append((run.started, run.id))
            if not turn.body.get("stream"):
                return Reply(body=self._current(run))
            self._finish(state, run)
            return Reply(events=response_events(run.response or {}, queued=True))

    def streamed(self, response: Mapping[str, Any]) -> None:
        """Remember a foreground streamed response, for ``resume_foreground_streams``."""
        if not self.options.resume_foreground_streams:
            return
        state = self._state()
        with state.lock:
            state.runs[response["id"]] = Run(
                id=response["id"],
                turn=None,
                output=[],
                started=self.clock(),
                created_at=int(response["created_at"]),
                background=False,
                polls_left=0,
                status=str(response["status"]),
                response=dict(response),
            )

    # expiring ---------------------------------------------------------------------------------

    def _expires(self, run: Run) -> bool:
        """Whether ``run`` is deleted after ``UNSTORED_BACKGROUND_SECONDS``: a background
        response not stored for good (no explicit ``store: true``, or ``zdr``)."""
        if not (self.options.expire_unstored_background and run.background):
            return False
        request = run.request or {}
        body = run.turn.body if run.turn is not None else request.get("body") or {}
        stored = run.turn.store if run.turn is not None else bool(request.get("store"))
        return not (body.get("store") is True and stored)

    def expire(self) -> None:
        """Delete the background responses whose time is up (``expire_unstored_background``);
        takes the lock. Constant time when none is due."""
        if not self.options.expire_unstored_background:
            return
        state = self._state()
        with state.lock:
            if self._expiring_in is not state:  # a fresh or loaded state: read its runs
                self._expiring_in = state
                runs = sorted(state.runs.values(), key=lambda run: run.started)
                self._expiring = deque((r.started, r.id) for r in runs if self._expires(r))
            deadline = self.clock() - UNSTORED_BACKGROUND_SECONDS
            kept: list[tuple[float, str]] = []
            while self._expiring and self._expiring[0][0] < deadline:
                entry = self._expiring.popleft()
                run = state.runs.get(entry[1])
                if run is not None and run.stalled and run.status in _ACTIVE:
                    kept.append(entry)  # Fault(stall=True): queued until cancelled
                elif run is not None:
                    self._forget(state, run)
            self._expiring.extendleft(reversed(kept))

    def _forget(self, state: State, run: Run) -> None:
        """Delete ``run`` and its stored response, as ``DELETE /v1/responses/{id}`` does."""
        if run.status in _ACTIVE:
            self._finish(state, run)
        self._touch(state, run)
        del state.runs[run.id]
        if state.responses.pop(run.id, None) is not None:
            state.indexes.clear()  # a chain through it now ends there: rebuild them

    # reading ----------------------------------------------------------------------------------

    def retrieve(self, response_id: str, query: Mapping[str, str]) -> Reply | None:
        """``GET /v1/responses/{id}`` for a run (``None``: not a run, the stored response
        answers). One poll moves a background response one step."""
        state = self._state()
        with state.lock:
            run = state.runs.get(response_id)
            if run is None:
                return None
            if query.get("stream") != "true":
                self._step(state, run)
                return Reply(body=self._current(run))
            return self._replay(state, run, query.get("starting_after"))

    def _replay(self, state: State, run: Run, starting_after: str | None) -> Reply:
        if not run.background and not self.options.resume_foreground_streams:
            return error_reply(bad_request(NOT_RESUMABLE, "stream", None))
        if self.clock() - run.started > STREAM_RESUME_SECONDS:
            return error_reply(bad_request(TOO_OLD_TO_STREAM, None, None))
        try:
            after = int(starting_after) if starting_after is not None else -1
        except ValueError:
            return error_reply(
                bad_request(
                    f"Invalid 'starting_after': expected an integer, got {starting_after!r}.",
                    "starting_after",
                    "invalid_type",
                )
            )
        if run.status in _ACTIVE:
            self._finish(state, run)
        response = run.response or self._current(run)
        events = response_events(response, queued=run.background)
        return Reply(events=[event for event in events if event["sequence_number"] > after])

    def fail(self, response_id: str, code: str) -> None:
        """Make a queued background response end ``failed`` with ``code`` (``Fault(fail=)``)."""
        state = self._state()
        with state.lock:
            run = state.runs.get(response_id)
            if run is not None and run.status in _ACTIVE:
                run.fail_code = code
                self._touch(state, run)

    def stall(self, response_id: str) -> None:
        """Keep a queued background response queued until it is cancelled (``Fault(stall=)``)."""
        state = self._state()
        with state.lock:
            run = state.runs.get(response_id)
            if run is not None and run.status == "queued":
                run.stalled = True
                self._touch(state, run)

    def cancel(self, response_id: str) -> Reply:
        """``POST /v1/responses/{id}/cancel``."""
        state = self._state()
        with state.lock:
            run = state.runs.get(response_id)
            if run is None:
                if response_id in state.responses:
                    return error_reply(bad_request(CANCEL_NOT_BACKGROUND, None, None))
                return error_reply(not_found(f"Response with id '{response_id}' not found."))
            if not run.background:
                return error_reply(bad_request(CANCEL_NOT_BACKGROUND, None, None))
            if run.status in _ACTIVE:
                self._cancel(state, run)
            return Reply(body=self._current(run))

    # state changes (hold the lock) ------------------------------------------------------------

    def _step(self, state: State, run: Run) -> None:
        if run.status not in _ACTIVE or run.stalled:
            return
        self._touch(state, run)
        run.polls_left -= 1
        if run.polls_left <= 0 and run.fail_code is not None:
            self._end(state, run, "failed")
        elif run.polls_left <= 0:
            self._finish(state, run)
        else:
            run.status = "in_progress"

    def _finish(self, state: State, run: Run) -> None:
        self._touch(state, run)
        if run.fail_code is not None:
            self._end(state, run, "failed")
            return
        turn = self._turn(state, run)
        run.response = finish(
            state, turn, run.output, self.options, run.created_at, response_id=run.id
        )
        run.status = run.response["status"]  # completed, or incomplete (``_incomplete``)

    def _cancel(self, state: State, run: Run) -> None:
        self._touch(state, run)
        if self.options.chain_from_cancelled_response:
            turn = self._turn(state, run)
            finish(state, turn, [], self.options, run.created_at, response_id=run.id)
            run.status = "cancelled"
            run.response = self._current(run)
        else:
            self._end(state, run, "cancelled")

    def _end(self, state: State, run: Run, status: str) -> None:
        """End a run without storing it (failed, or cancelled): its conversation is free."""
        self._touch(state, run)
        turn: Turn | None = run.turn  # a run loaded from a file holds no conversation busy
        if turn is not None and turn.conv is not None:
            turn.conv.busy = False
        run.status = status
        run.response = self._current(run)
        if run.fail_code is not None and status == "failed":
            run.response["error"] = {"code": run.fail_code, "message": _FAILED}

    def _current(self, run: Run) -> dict[str, Any]:
        if run.response is not None:
            return copy.deepcopy(run.response)
        body = run.turn.body if run.turn is not None else (run.request or {}).get("body", {})
        return response_object(run.id, body, [], None, status=run.status, created_at=run.created_at)
