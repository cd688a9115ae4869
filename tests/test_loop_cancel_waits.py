"""CancelToken ends the loop's other waits at once: the backoff before retrying a failed
request and the wait for a busy session's lease, in both drivers (real client, emulator)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from openai import AsyncOpenAI, OpenAI

from tracker.emulator import Emulator, Fault
from tracker.loop import (
    CancelToken,
    LoopEvent,
    Retrying,
    RetryPolicy,
    ToolFinished,
    TurnCancelledError,
    arun_turn,
    run_turn,
)
from tracker.stores import MemoryStore, claim_session

#: A wait no test may sit out: only a cancel ends it in time.
LONG_WAIT = 3600.0
#: Not a timing assertion: it bounds a hang (the whole wait without the fix).
WATCHDOG = 60.0
#: Each retry waits an hour.
SLOW_RETRY = RetryPolicy(initial_delay=LONG_WAIT, max_delay=LONG_WAIT, jitter=0.0)

CALL = 'weather({"city": "Paris"})'


def weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def api(emu: Emulator) -> Iterator[OpenAI]:
    with OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as c:
        yield c


def _turn_in(driver: str, emu: Emulator, token: CancelToken, **kwargs: Any) -> list[BaseException]:
    """Run one turn with ``driver`` (``run_turn`` in a thread, or ``arun_turn`` in a loop of
    its own), bounded by the watchdog; return what it raised. The turn's ``on_event`` gets a
    ``cancel`` that calls ``token.cancel()`` (from a task of the turn's loop, when async)."""
    raised: list[BaseException] = []
    on_cancel: Callable[[LoopEvent, Callable[[], None]], None] | None = kwargs.pop("on_event", None)

    if driver == "sync":

        def sync_turn() -> None:
            with OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as c:
                try:
                    run_turn(c, **kwargs, cancel=token, on_event=_events(on_cancel, token.cancel))
                except BaseException as exc:
                    raised.append(exc)

        runner = threading.Thread(target=sync_turn, daemon=True)
        runner.start()
        runner.join(WATCHDOG)
        return raised

    async def async_turn() -> None:
        def cancel_soon() -> None:  # runs once the driver awaits its wait
            asyncio.get_running_loop().call_soon(token.cancel)

        async with AsyncOpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as c:
            turn = arun_turn(c, **kwargs, cancel=token, on_event=_events(on_cancel, cancel_soon))
            try:
                await asyncio.wait_for(turn, WATCHDOG)
            except BaseException as exc:
                raised.append(exc)

    asyncio.run(async_turn())
    return raised


def _events(
    handler: Callable[[LoopEvent, Callable[[], None]], None] | None, cancel: Callable[[], None]
) -> Callable[[LoopEvent], None] | None:
    if handler is None:
        return None
    return lambda event: handler(event, cancel)


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_cancel_during_a_retry_backoff_ends_it_and_keeps_the_tool_output(
    driver: str, emu: Emulator, api: OpenAI
) -> None:
    """cancel() as the loop starts an hour's backoff after a 500 on the request carrying a
    tool output: TurnCancelledError at once, with the output; the lease is released and the
    session's next turn delivers that output."""
    store = MemoryStore()
    token = CancelToken()
    retries: list[Retrying] = []

    def on_event(event: LoopEvent, cancel: Callable[[], None]) -> None:
        if isinstance(event, ToolFinished):
            emu.inject(Fault(status=500))  # the request carrying the output fails
        if isinstance(event, Retrying):
            retries.append(event)
            cancel()

    raised = _turn_in(
        driver,
        emu,
        token,
        model="emu-1",
        input=CALL,
        tools=[weather],
        session_store=store,
        session_id="s",
        retry=SLOW_RETRY,
        on_event=on_event,
    )
    assert [TurnCancelledError] == [type(exc) for exc in raised]
    err = raised[0]
    assert isinstance(err, TurnCancelledError) and err.result is not None
    assert [LONG_WAIT] == [r.delay for r in retries]
    assert ["sunny in Paris"] == [o["output"] for o in err.outputs]
    call_id = err.outputs[0]["call_id"]
    assert [call_id] == list(err.result.tracker.pending_call_ids)
    # lease_wait=0: a lease left held would raise SessionBusyError here.
    follow = run_turn(
        api,
        model="emu-1",
        input="go on",
        tools=[weather],
        session_store=store,
        session_id="s",
        lease_wait=0,
    )
    sent = emu.requests_to("/v1/responses")[-1]["input"]
    delivered = [i["output"] for i in sent if i.get("call_id") == call_id]
    assert ["sunny in Paris"] == delivered
    assert 0 == follow.abandoned_calls


@pytest.mark.parametrize("driver", ["sync", "async"])
def test_cancel_while_waiting_for_a_busy_lease_ends_the_wait(driver: str, emu: Emulator) -> None:
    """A turn waiting (up to an hour) for a session another worker holds stops at once with
    TurnCancelledError when its token is cancelled; nothing is sent and the session and the
    other worker's lease are left as they were."""
    store = MemoryStore()
    claim_session(store, "s", owner="other", ttl=LONG_WAIT)
    before = store.load("s")
    posts = len(emu.requests_to("/v1/responses"))
    token = CancelToken()
    token.cancel()  # the claim is still tried (the session may be free); busy, it must not wait
    raised = _turn_in(
        driver,
        emu,
        token,
        model="emu-1",
        input="hello",
        session_store=store,
        session_id="s",
        lease_wait=LONG_WAIT,
    )
    assert [TurnCancelledError] == [type(exc) for exc in raised]
    err = raised[0]
    assert isinstance(err, TurnCancelledError)
    assert (None, None, ()) == (err.result, err.response_id, err.outputs)
    assert "'s'" in str(err) and "other" in str(err)
    assert before == store.load("s")
    assert posts == len(emu.requests_to("/v1/responses"))
