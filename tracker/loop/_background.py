"""Background responses, resumed streams and cancel, for the loop's generator (no I/O here).

Theory of operation
-------------------
``background=True`` (passed through to ``responses.create``) answers ``queued``: ``settle``
polls ``responses.retrieve`` every ``poll_interval`` seconds until the status is terminal, and
only then does the loop observe the response (the tracker never chains from a queued one). A
transient error while polling retries the *retrieve*, never the create: a second create would
be a sibling response paid for twice.

Terminal statuses are handled as the service defines them (``ResponseStatus`` in the SDK;
background guide [DOC]): ``completed`` and ``incomplete`` are stored, chainable responses and
are observed; ``failed`` raises ``ResponseFailedError`` (retried for a server-side code);
``cancelled`` raises ``TurnCancelledError``. In both of these the tracker is rewound, so the
failed or cancelled response never becomes ``previous_response_id`` (whether the service
would accept one is not in the public record; ``RuleOptions.chain_from_cancelled_response``)
and the request's input (tool outputs included) is sent again, once, by the retry or the next
turn.

A stream cut mid-way (the connection drops, or it ends before its terminal event) raises
``StreamCut`` with the response id (from ``response.created``) and the last
``sequence_number`` seen. ``resume`` then reads the rest with ``responses.retrieve(id,
stream=True, starting_after=N)``: the caller sees each delta once and the service makes one
response, not two. It resumes only a *background* stream (the service resumes no other
[DOC guide]; ``RuleOptions.resume_foreground_streams``) younger than ``STREAM_RESUME_SECONDS``
by the turn's clock, counted from when the request was sent (a little more than the service
counts, so never too late). Otherwise, or when resuming fails for good, the cut is retried as
before: the tracker is rewound and the request sent again (a ``Retrying`` event tells the
caller to discard that attempt's deltas).

Polling is bounded: ``settle`` stops once ``poll_timeout`` seconds (by the turn's clock) have
passed since the request was sent with the response still ``queued`` or ``in_progress`` (a
request cut right after it was accepted can leave it ``queued`` for good, community thread
1382584 [OBS]). It then cancels the response on the server, so that it never completes later
(in a conversation, a late completion would add the request's input a second time, next to
the retry's, and hold the conversation busy meanwhile). If the cancel answers the response
finished after all, it is used as if the last poll had found it; otherwise ``PollTimeoutError``
is raised (``.cancelled`` says whether the server confirmed the cancel; if not, the error says
to cancel or retrieve it by id). ``None`` polls without a bound.

A background request in a chain (not stateless, not in a conversation) that does not say
``store`` is sent with an explicit ``store: true`` (``store_chained_background``): the next
request names it as ``previous_response_id``, and in a modified-abuse-monitoring project a
background response is kept after the polling period *only* when ``store=true`` was given
explicitly; omitted, it is deleted after about 10 minutes and the chain breaks with
``previous_response_not_found`` (OpenAI background guide, localised editions [DOC];
``RuleOptions.expire_unstored_background``). Sending it costs nothing elsewhere: ``true`` is
the default. A caller's own ``store=True``/``store=False`` is sent as given; ``store=False``
with ``background=True`` runs a stateless turn (the transcript is replayed, nothing chains
from the response, so its deletion breaks nothing; the emulator accepts the pair, as the
guide's "omitted or false" does).

``CancelToken.cancel()`` (from any thread or task) stops the turn: before each model call,
between polls, and between the events of a background stream (the response is cancelled on the
server with ``responses.cancel``). Every wait of the loop waits on the token and ends at once:
a ``poll_interval``, the backoff before a resume (``Retrieve``/``Resume`` carry the token) or
before retrying a failed request, and the wait for a busy session's lease (``Sleep`` carries
it). A foreground request in flight cannot be cancelled on the server (the service cancels only
background responses), so the turn stops once it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Generator
from typing import Any

import attrs

from tracker._items import field
from tracker._responses import RUNNING
from tracker._rules import STREAM_RESUME_SECONDS

from ._results import IncompleteStreamError, PollTimeoutError, TextDelta, TurnCancelledError
from ._retry import RetryPolicy, is_transient

__all__ = [
    "ACTIVE",
    "DEFAULT_POLL_TIMEOUT",
    "CancelResponse",
    "CancelToken",
    "Resume",
    "Retrieve",
    "StreamCut",
    "StreamReader",
    "resume",
    "settle",
    "store_chained_background",
]

#: Statuses of a response the service is still working on (polled until they change; the
#: tracker refuses to observe one).
ACTIVE = RUNNING
_TERMINAL_EVENTS = frozenset({"response.completed", "response.failed", "response.incomplete"})
#: Default ``poll_timeout``: seconds a background response may stay queued or in progress.
DEFAULT_POLL_TIMEOUT = 600.0


def store_chained_background(kwargs: dict[str, Any], *, chained: bool) -> dict[str, Any]:
    """Add ``store: true`` to a ``background`` request that a chain will continue from
    (``chained``: the tracker chains by ``previous_response_id``) unless ``store`` is set."""
    if chained and kwargs.get("background") is True and "store" not in kwargs:
        kwargs["store"] = True
    return kwargs


class CancelToken:
    """Asks a running turn to stop: ``run_turn(..., cancel=token)``, then ``token.cancel()``.

    Thread-safe; one token may serve several turns (each stops once it is cancelled). A turn
    waiting between polls (``poll_interval``), before resuming a stream, before retrying a
    failed request or for a busy session's lease waits on the token, so ``cancel()`` ends the
    wait at once.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        # Async waits in progress: each is woken in its own loop (cancel() may run elsewhere).
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def cancel(self) -> None:
        """Ask the turn to stop (its background response is cancelled on the server)."""
        with self._lock:
            self._event.set()
            waiters = list(self._waiters)
        for loop, woken in waiters:
            with contextlib.suppress(RuntimeError):  # that loop is closed: nothing waits there
                loop.call_soon_threadsafe(woken.set)

    @property
    def cancelled(self) -> bool:
        """Whether ``cancel()`` was called."""
        return self._event.is_set()

    def _sleep(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if ``cancel()`` is called; return whether it was."""
        return self._event.wait(seconds)

    async def _asleep(self, seconds: float) -> bool:
        """``_sleep`` for a task: wait without blocking its event loop."""
        woken = asyncio.Event()
        waiter = (asyncio.get_running_loop(), woken)
        with self._lock:
            if self._event.is_set():
                return True
            self._waiters.append(waiter)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), seconds)
        finally:
            with self._lock:
                self._waiters.remove(waiter)
        return self._event.is_set()


@attrs.frozen
class Retrieve:
    """Wait ``wait`` seconds (less if ``cancel`` is cancelled meanwhile), then
    ``responses.retrieve(response_id)``; send back the Response."""

    response_id: str
    wait: float
    cancel: CancelToken | None = None


@attrs.frozen
class Resume:
    """Wait ``wait`` seconds (less if ``cancel`` is cancelled meanwhile), then stream
    ``responses.retrieve(response_id, stream=True, starting_after=starting_after)`` as
    ``Create`` streams; send back the final Response."""

    response_id: str
    starting_after: int
    index: int
    wait: float
    cancel: CancelToken | None


@attrs.frozen
class CancelResponse:
    """``responses.cancel(response_id)``; send back the Response it answers."""

    response_id: str


class StreamCut(IncompleteStreamError):
    """A stream stopped before its terminal event (raised by the drivers, handled by the loop).

    ``response_id`` (``None`` if the stream was cut before ``response.created``) and
    ``last_sequence`` (the last ``sequence_number`` delivered, -1 for none) say where to
    resume; ``background`` whether the service can resume it; ``cancelled`` that the caller's
    ``CancelToken`` stopped it.
    """

    def __init__(
        self,
        message: str,
        *,
        response_id: str | None,
        last_sequence: int,
        background: bool,
        cancelled: bool = False,
    ) -> None:
        super().__init__(message)
        self.response_id = response_id
        self.last_sequence = last_sequence
        self.background = background
        self.cancelled = cancelled


class StreamReader:
    """Reads one response's events, in one stream and its resumptions: each event once.

    ``feed(event)`` returns the ``TextDelta`` to hand on (or ``None``) and the final response
    once a terminal event arrives. An event whose ``sequence_number`` is not above the last one
    delivered is skipped, so a delta is never handed on twice.
    """

    def __init__(self, index: int, *, last_sequence: int = -1, response_id: str | None = None):
        self.index = index
        self.last_sequence = last_sequence
        self.response_id = response_id
        self.background = response_id is not None

    def feed(self, event: Any) -> tuple[TextDelta | None, Any]:
        """Read one event (see the class docstring)."""
        sequence = field(event, "sequence_number")
        if isinstance(sequence, int):
            if sequence <= self.last_sequence:
                return None, None
            self.last_sequence = sequence
        kind = field(event, "type")
        response = field(event, "response")
        if response is not None and self.response_id is None:
            self.response_id = field(response, "id")
            self.background = bool(field(response, "background"))
        if kind == "response.output_text.delta":
            return TextDelta(
                text=field(event, "delta") or "", item_id=field(event, "item_id")
            ), None
        if kind in _TERMINAL_EVENTS:
            return None, response
        return None, None

    def cut(self, *, cancelled: bool = False) -> StreamCut:
        """The error for this stream stopping here."""
        why = "was cancelled" if cancelled else "ended without response.completed"
        return StreamCut(
            f"The stream of request {self.index} (response {self.response_id}) {why} after "
            f"event {self.last_sequence}.",
            response_id=self.response_id,
            last_sequence=self.last_sequence,
            background=self.background,
            cancelled=cancelled,
        )

    def should_stop(self, cancel: CancelToken | None) -> bool:
        """Whether to stop reading because the caller cancelled (background streams only)."""
        return cancel is not None and cancel.cancelled and self.background


def _cancelled(response: Any) -> TurnCancelledError:
    response_id = field(response, "id")
    return TurnCancelledError(f"Response {response_id} was cancelled.", response_id=response_id)


def _timed_out(response_id: str, waited: float, *, cancelled: bool) -> PollTimeoutError:
    if cancelled:
        done = "The loop cancelled it on the server, so it will not complete later"
    else:
        done = (
            "The loop could not cancel it: it may still complete on the server. Cancel it "
            f"(client.responses.cancel({response_id!r})) before the next turn, or retrieve it "
            "later and continue from it"
        )
    return PollTimeoutError(
        f"Background response {response_id} was still queued or in progress after "
        f"{waited:.0f} s of polling (poll_timeout). {done}; the tracker never observed it. "
        "Retry the turn with tracker=exc.tracker and input=exc.outputs (the tool outputs it "
        "carried), or pass a larger poll_timeout (None: no bound) for long runs.",
        response_id=response_id,
        waited=waited,
        cancelled=cancelled,
    )


def _give_up(response_id: str, waited: float) -> Generator[CancelResponse, Any, Any]:
    """Cancel a response polled too long; return it if it finished after all, else raise."""
    try:
        final = yield CancelResponse(response_id)
    except Exception as exc:
        raise _timed_out(response_id, waited, cancelled=False) from exc
    status = field(final, "status")
    if status in ACTIVE or status == "cancelled":
        raise _timed_out(response_id, waited, cancelled=status == "cancelled")
    return final


def settle(
    response: Any,
    *,
    retry: RetryPolicy,
    poll_interval: float,
    cancel: CancelToken | None,
    errors: list[BaseException],
    started: float = 0.0,
    clock: Callable[[], float] | None = None,
    poll_timeout: float | None = None,
) -> Generator[Retrieve | CancelResponse, Any, Any]:
    """Poll a background response until it is terminal; return it (raise if cancelled).

    With ``clock`` and ``poll_timeout``, give up ``poll_timeout`` seconds after ``started``
    (see the module docstring).
    """
    failures = 0
    wait = poll_interval
    while field(response, "status") in ACTIVE:
        response_id = str(field(response, "id"))
        if cancel is not None and cancel.cancelled:
            response = yield CancelResponse(response_id)
            continue
        waited = clock() - started if clock is not None else 0.0
        if poll_timeout is not None and waited >= poll_timeout:
            return (yield from _give_up(response_id, waited))
        try:
            response = yield Retrieve(response_id, wait, cancel)
        except Exception as exc:
            failures += 1
            delay = retry.delay(exc, failures)
            if delay is None:
                raise
            errors.append(exc)
            wait = delay
            continue
        wait = poll_interval
    if field(response, "status") == "cancelled":
        raise _cancelled(response)
    return response


def resume(
    cut: StreamCut,
    *,
    started: float,
    clock: Callable[[], float],
    retry: RetryPolicy,
    cancel: CancelToken | None,
    errors: list[BaseException],
    index: int,
) -> Generator[Resume | CancelResponse, Any, Any]:
    """Read the rest of a cut stream; return its final response, or raise ``cut`` to retry."""
    failures = 0
    wait = 0.0
    while True:
        if cut.response_id is None or not cut.background:
            raise cut
        if cut.cancelled:
            return (yield CancelResponse(cut.response_id))
        if clock() - started >= STREAM_RESUME_SECONDS:
            raise cut
        try:
            return (yield Resume(cut.response_id, cut.last_sequence, index, wait, cancel))
        except StreamCut as again:
            failures += 1
            cut = again
            error: BaseException = again
        except Exception as exc:
            failures += 1
            if not is_transient(exc):
                raise cut from exc  # e.g. too old to stream: send the request again
            error = exc
        delay = retry.delay(error, failures)
        if delay is None:
            raise cut from error
        errors.append(error)
        wait = delay
