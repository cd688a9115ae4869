"""tracker.loop with background responses, resumed streams and cancel: real client, emulator."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import openai
import pytest
from _loop_helpers import ANSWER, NO_WAIT, PROMPT, TOOLS, counting_weather
from openai import AsyncOpenAI, OpenAI

from tracker import Tracker, UsageError
from tracker.emulator import Emulator, Fault, RuleOptions
from tracker.loop import (
    CancelToken,
    PollTimeoutError,
    RequestSent,
    ResponseFailedError,
    Retrying,
    StreamCut,
    TextDelta,
    TurnCancelledError,
    arun_turn,
    run_turn,
)
from tracker.stores import MemoryStore


class FakeClock:
    """Seconds that move only when a test moves them (``step`` per reading, if set)."""

    def __init__(self, step: float = 0.0) -> None:
        self.now = 1000.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture(scope="module")
def emu_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def emu(emu_clock: FakeClock) -> Iterator[Emulator]:
    with Emulator(clock=emu_clock) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def api(emu: Emulator) -> Iterator[OpenAI]:
    with OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as c:
        yield c


def _once(emu: Emulator, response_id: str | None) -> None:
    """Every tool output the chain holds, once; every call of the chain answered."""
    outputs = emu.context_outputs(response_id=response_id)
    calls = [i["call_id"] for i in emu.context_items(response_id=response_id) if "arguments" in i]
    assert dict.fromkeys(calls, 1) == outputs


def _gets(emu: Emulator, response_ids: list[str]) -> list[str]:
    return [
        r.path for r in emu.requests if r.method == "GET" and r.path.split("/")[-1] in response_ids
    ]


def test_background_turn_is_polled_to_completion(api: OpenAI, emu: Emulator) -> None:
    """Each request is polled queued -> completed, then observed; the tool round goes through."""
    result = run_turn(
        api, model="emu-1", input=PROMPT, tools=TOOLS, background=True, poll_interval=0
    )
    ids = [r.id for r in result.responses]
    assert ANSWER == result.text
    assert ["completed"] * 3 == [r.status for r in result.responses]
    assert [None, ids[0], ids[1]] == [r.previous_response_id for r in result.requests]
    assert 6 == len(_gets(emu, ids))  # two polls each (background_polls=2), no second create
    assert ids[-1] == result.tracker.previous_response_id
    _once(emu, ids[-1])


def test_failed_background_response_is_sent_again_once(api: OpenAI, emu: Emulator) -> None:
    """A background response ending failed (server_error) is never chained from: the request
    with the tool outputs is sent again from the same response, each output once."""

    def on_event(event: Any) -> None:
        if isinstance(event, RequestSent) and (event.index, event.attempt) == (1, 0):
            emu.inject(Fault(fail="server_error"))

    result = run_turn(
        api,
        model="emu-1",
        input=PROMPT,
        tools=TOOLS,
        background=True,
        poll_interval=0,
        on_event=on_event,
        retry=NO_WAIT,
    )
    assert (ANSWER, [1, 2, 1]) == (result.text, [r.attempts for r in result.requests])
    assert result.responses[0].id == result.requests[1].previous_response_id
    failed = [e for e in result.errors if isinstance(e, ResponseFailedError)]
    assert ["server_error"] == [e.code for e in failed]
    assert "failed" == api.responses.retrieve(str(failed[0].response_id)).status
    _once(emu, result.last_response_id)


def test_failed_background_response_keeps_the_outputs_it_carried(
    api: OpenAI, emu: Emulator
) -> None:
    """A response that ends failed for good (invalid_prompt) is raised with the tool outputs
    it carried and the rewound tracker: passed back, each output is delivered once."""
    ran: list[str] = []
    tools: list[Any] = [counting_weather(ran), TOOLS[1]]

    def on_event(event: Any) -> None:
        if isinstance(event, RequestSent) and (event.index, event.attempt) == (1, 0):
            emu.inject(Fault(fail="invalid_prompt"))

    with pytest.raises(ResponseFailedError) as info:
        run_turn(
            api,
            model="emu-1",
            input=PROMPT,
            tools=tools,
            background=True,
            poll_interval=0,
            on_event=on_event,
        )
    err = info.value
    assert err.result is not None and err.tracker is err.result.tracker
    assert ("invalid_prompt", str(err.response_id)) == (err.code, str(err.response_id))
    assert str(err.response_id) in str(err) and "input=exc.outputs" in str(err)
    assert err.result.responses[0].id == err.tracker.previous_response_id
    assert ["sunny in Paris", "sunny in Rome"] == [o["output"] for o in err.outputs]
    result = run_turn(api, model="emu-1", input=list(err.outputs), tools=tools, tracker=err.tracker)
    assert (ANSWER, 0, ["Paris", "Rome"]) == (result.text, result.abandoned_calls, ran)
    _once(emu, result.last_response_id)


@pytest.mark.parametrize("mode", ["chain", "conversation", "stateless"])
def test_cut_stream_is_resumed_not_sent_again(api: OpenAI, emu: Emulator, mode: str) -> None:
    """A background stream cut after 2 deltas is resumed from its last event, in every mode: one
    POST per response, every delta once, no Retrying, each output once in what the server holds
    (the chain, the conversation) or in the last replay (stateless)."""
    events: list[Any] = []

    def on_event(event: Any) -> None:
        events.append(event)
        if isinstance(event, RequestSent) and (event.index, event.attempt) == (2, 0):
            emu.inject(Fault(cut_after=7))

    where: dict[str, Any] = {"store": False} if mode == "stateless" else {}
    if mode == "conversation":
        where = {"conversation": api.conversations.create().id}
    posts = len(emu.requests_to("/v1/responses"))
    result = run_turn(
        api,
        model="emu-1",
        input=PROMPT,
        tools=TOOLS,
        stream=True,
        background=True,
        poll_interval=0,
        on_event=on_event,
        retry=NO_WAIT,
        **where,
    )
    deltas = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert (ANSWER, ANSWER) == (result.text, deltas)
    assert [] == [e for e in events if isinstance(e, Retrying)]
    assert [StreamCut] == [type(e) for e in result.errors]
    assert 1 == len(_gets(emu, [result.responses[2].id]))  # the resume; no polls needed
    bodies = emu.requests_to("/v1/responses")[posts:]
    assert 3 == len(bodies)
    if mode == "chain":
        _once(emu, result.last_response_id)
        return
    if mode == "conversation":
        items = emu.context_items(conversation_id=where["conversation"])
        outputs = emu.context_outputs(conversation_id=where["conversation"])
    else:
        items = bodies[-1]["input"]
        outputs = Counter(i["call_id"] for i in items if i.get("type") == "function_call_output")
    calls = [i["call_id"] for i in items if i.get("type") == "function_call"]
    assert (3, dict.fromkeys(calls, 1)) == (len(calls), outputs)


def test_cut_foreground_stream_is_sent_again_not_resumed(api: OpenAI, emu: Emulator) -> None:
    """Without background the service resumes no stream: a cut is retried at once (no
    retrieve), and the Retrying event marks the deltas to discard."""
    events: list[Any] = []

    def on_event(event: Any) -> None:
        events.append(event)
        if isinstance(event, RequestSent) and event.attempt == 0:
            emu.inject(Fault(cut_after=7))

    result = run_turn(
        api,
        model="emu-1",
        input="tell me about the sea please",
        stream=True,
        on_event=on_event,
        retry=NO_WAIT,
    )
    (retried,) = [i for i, e in enumerate(events) if isinstance(e, Retrying)]
    after = "".join(e.text for e in events[retried:] if isinstance(e, TextDelta))
    cut = result.errors[0]
    assert isinstance(cut, StreamCut) and cut.response_id is not None
    assert (result.text, 2, []) == (
        after,
        result.requests[0].attempts,
        _gets(emu, [cut.response_id]),
    )


@pytest.mark.parametrize("late", ["loop", "service"])
def test_old_stream_is_sent_again_instead(
    api: OpenAI, emu: Emulator, emu_clock: FakeClock, late: str
) -> None:
    """Past 5 minutes (the loop's clock, or the service's 400) a cut stream is retried: the
    Retrying event says to discard its deltas; the turn's chain still holds each output once."""
    events: list[Any] = []

    def on_event(event: Any) -> None:
        events.append(event)
        if isinstance(event, RequestSent) and event.attempt == 0:
            emu.inject(Fault(cut_after=7))
        if late == "service" and isinstance(event, TextDelta):
            emu_clock.now += 301

    result = run_turn(
        api,
        model="emu-1",
        input="tell me about the sea please",
        stream=True,
        background=True,
        poll_interval=0,
        on_event=on_event,
        retry=NO_WAIT,
        clock=FakeClock(step=301 if late == "loop" else 0),
    )
    retried = [i for i, e in enumerate(events) if isinstance(e, Retrying)]
    assert 1 == len(retried)
    after = "".join(e.text for e in events[retried[0] :] if isinstance(e, TextDelta))
    assert (result.text, 2) == (after, result.requests[0].attempts)
    cut = result.errors[0]
    assert isinstance(cut, StreamCut) and cut.response_id is not None
    tried = 1 if late == "service" else 0  # the loop's own clock says too old: no resume sent
    assert tried == len(_gets(emu, [cut.response_id]))
    _once(emu, result.last_response_id)


def test_cancel_stops_a_background_turn_on_the_server(api: OpenAI, emu: Emulator) -> None:
    """cancel() while the second request is queued: the response is cancelled on the server,
    never observed; the next turn continues from the first response and answers every call."""
    token = CancelToken()

    def on_event(event: Any) -> None:
        if isinstance(event, RequestSent) and event.index == 1:
            token.cancel()

    with pytest.raises(TurnCancelledError) as info:
        run_turn(
            api,
            model="emu-1",
            input=PROMPT,
            tools=TOOLS,
            background=True,
            poll_interval=0,
            cancel=token,
            on_event=on_event,
        )
    err = info.value
    assert err.response_id is not None and err.result is not None
    assert "cancelled" == api.responses.retrieve(err.response_id).status
    first = err.result.responses[0].id
    assert first == err.result.tracker.previous_response_id
    follow = run_turn(api, model="emu-1", input="go on", tools=TOOLS, tracker=err.result.tracker)
    assert first == follow.requests[0].previous_response_id
    _once(emu, follow.last_response_id)


#: A poll_interval no test may sleep out: only a cancel ends the wait in time.
LONG_POLL = 3600.0
#: Not a timing assertion: it bounds a hang (the whole poll_interval without the fix).
WATCHDOG = 60.0


def _cancel_when_polled(emu: Emulator, cancel: Callable[[], Any]) -> Callable[[], float]:
    """A turn clock that calls ``cancel`` once the response exists on the emulator: the loop
    reads it after its cancel check, right before the poll_interval wait."""
    posts = len(emu.requests_to("/v1/responses"))

    def clock() -> float:
        if len(emu.requests_to("/v1/responses")) > posts:
            cancel()
        return 0.0

    return clock


def test_cancel_during_a_long_poll_interval_ends_the_wait(api: OpenAI, emu: Emulator) -> None:
    """cancel() after the last check, as the loop starts an hour's poll_interval wait: the
    wait ends at once, the turn raises TurnCancelledError, the response is cancelled."""
    emu.inject(Fault(stall=True))
    token = CancelToken()
    raised: list[BaseException] = []

    def turn() -> None:
        try:
            run_turn(
                api,
                model="emu-1",
                input="hello",
                background=True,
                poll_interval=LONG_POLL,
                cancel=token,
                clock=_cancel_when_polled(emu, token.cancel),
            )
        except BaseException as exc:
            raised.append(exc)

    runner = threading.Thread(target=turn, daemon=True)
    runner.start()
    runner.join(WATCHDOG)
    assert [TurnCancelledError] == [type(exc) for exc in raised]
    err = raised[0]
    assert isinstance(err, TurnCancelledError) and err.response_id is not None
    assert "cancelled" == api.responses.retrieve(err.response_id).status


async def test_async_cancel_during_a_long_poll_interval_ends_the_wait(emu: Emulator) -> None:
    """arun_turn: cancel() from a task while the loop awaits an hour's poll_interval wakes
    the wait; TurnCancelledError, and the response is cancelled on the server."""
    emu.inject(Fault(stall=True))
    token = CancelToken()

    def cancel_soon() -> None:  # runs once the driver awaits its wait
        asyncio.get_running_loop().call_soon(token.cancel)

    async with AsyncOpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as c:
        turn = arun_turn(
            c,
            model="emu-1",
            input="hello",
            background=True,
            poll_interval=LONG_POLL,
            cancel=token,
            clock=_cancel_when_polled(emu, cancel_soon),
        )
        with pytest.raises(TurnCancelledError) as info:
            await asyncio.wait_for(turn, WATCHDOG)
        response_id = info.value.response_id
        assert response_id is not None
        assert "cancelled" == (await c.responses.retrieve(response_id)).status


def test_cancel_during_a_background_stream_keeps_what_the_server_finished(
    api: OpenAI, emu: Emulator
) -> None:
    """cancel() mid-stream: the loop stops reading and cancels; the service had finished the
    response, so cancel answers it completed and the tracker holds it."""
    token = CancelToken()

    def on_event(event: Any) -> None:
        if isinstance(event, TextDelta):
            token.cancel()

    tracker = Tracker()
    with pytest.raises(TurnCancelledError) as info:
        run_turn(
            api,
            model="emu-1",
            input="a long enough answer please",
            tracker=tracker,
            stream=True,
            background=True,
            cancel=token,
            on_event=on_event,
        )
    result = info.value.result
    assert result is not None
    assert ["completed"] == [r.status for r in result.responses]
    response_id = result.responses[0].id
    assert response_id == tracker.previous_response_id
    assert 1 == len(emu.requests_to(f"/v1/responses/{response_id}/cancel"))
    assert "You said: a long enough answer please" == result.text


async def test_async_background_turns_resumed_polled_and_cancelled(emu: Emulator) -> None:
    """The async driver: a cut background stream resumes (deltas once, one response); a polled
    background turn cancelled at its second request is cancelled on the server."""
    deltas: list[str] = []
    token = CancelToken()

    async def on_event(event: Any) -> None:
        if isinstance(event, TextDelta):
            deltas.append(event.text)
        if isinstance(event, RequestSent) and event.index == 2:
            emu.inject(Fault(cut_after=7))

    def cancel_second(event: Any) -> None:
        if isinstance(event, RequestSent) and event.index == 1:
            token.cancel()

    async with AsyncOpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as c:
        posts = len(emu.requests_to("/v1/responses"))
        result = await arun_turn(
            c,
            model="emu-1",
            input=PROMPT,
            tools=TOOLS,
            stream=True,
            background=True,
            poll_interval=0,
            on_event=on_event,
            retry=NO_WAIT,
        )
        assert (ANSWER, ANSWER) == (result.text, "".join(deltas))
        assert 3 == len(emu.requests_to("/v1/responses")) - posts
        _once(emu, result.last_response_id)
        with pytest.raises(TurnCancelledError) as info:
            await arun_turn(
                c,
                model="emu-1",
                input=PROMPT,
                tools=TOOLS,
                background=True,
                poll_interval=0,
                cancel=token,
                on_event=cancel_second,
            )
        err = info.value
        assert err.response_id is not None and err.result is not None
        assert "cancelled" == (await c.responses.retrieve(err.response_id)).status
        assert err.result.responses[0].id == err.result.tracker.previous_response_id


def test_cancelled_session_turn_keeps_its_tool_outputs(api: OpenAI, emu: Emulator) -> None:
    """With a session store, the outputs of the cancelled request are saved and delivered,
    once, by the next turn with the same input (no placeholders, no tool run twice)."""
    store = MemoryStore()
    token = CancelToken()
    ran: list[str] = []
    weather = counting_weather(ran)

    def on_event(event: Any) -> None:
        if isinstance(event, RequestSent) and event.index == 1:
            token.cancel()

    common: Any = {"model": "emu-1", "input": PROMPT, "tools": [weather, TOOLS[1]]}
    common.update(session_store=store, session_id="s", background=True, poll_interval=0)
    with pytest.raises(TurnCancelledError):
        run_turn(api, cancel=token, on_event=on_event, **common)
    result = run_turn(api, **common)
    assert (ANSWER, 0, ["Paris", "Rome"]) == (result.text, result.abandoned_calls, ran)
    _once(emu, result.last_response_id)


def test_response_stuck_queued_times_out_cancelled_and_outputs_are_retried_once(
    api: OpenAI, emu: Emulator
) -> None:
    """A background response left queued is polled for poll_timeout seconds (the turn's
    clock), then cancelled on the server; the error's tracker and outputs retry it, once."""
    with pytest.raises(UsageError, match="poll_timeout"):
        run_turn(api, model="emu-1", input="hi", background=True, poll_timeout=0)
    ran: list[str] = []
    weather = counting_weather(ran)

    def on_event(event: Any) -> None:
        if isinstance(event, RequestSent) and event.index == 1:
            emu.inject(Fault(stall=True))

    tools: list[Any] = [weather, TOOLS[1]]
    with pytest.raises(PollTimeoutError, match="cancelled it on the server") as info:
        run_turn(
            api,
            model="emu-1",
            input=PROMPT,
            tools=tools,
            background=True,
            poll_interval=0,
            poll_timeout=5,
            clock=FakeClock(step=1.0),
            on_event=on_event,
        )
    err = info.value
    assert err.result is not None and err.tracker is err.result.tracker
    assert (True, 5.0) == (err.cancelled, err.waited)
    assert err.response_id in str(err)
    assert "cancelled" == api.responses.retrieve(err.response_id).status
    assert 4 == len(_gets(emu, [err.response_id])) - 1  # polls at 1..4 s, then the check
    assert err.result.responses[0].id == err.tracker.previous_response_id
    assert ["sunny in Paris", "sunny in Rome"] == [o["output"] for o in err.outputs]
    result = run_turn(api, model="emu-1", input=list(err.outputs), tools=tools, tracker=err.tracker)
    assert (ANSWER, 0, ["Paris", "Rome"]) == (result.text, result.abandoned_calls, ran)
    _once(emu, result.last_response_id)


def test_poll_timeout_whose_cancel_failed_says_so_and_keeps_why(api: OpenAI, emu: Emulator) -> None:
    """The cancel after poll_timeout fails (a 500): PollTimeoutError says to cancel it by id,
    and its __cause__ is the cancel's error."""
    emu.inject(Fault(stall=True))
    posts = len(emu.requests_to("/v1/responses"))
    turn_clock, armed = FakeClock(step=1.0), []

    def clock() -> float:  # once the response exists, fail the next request: the cancel
        if not armed and len(emu.requests_to("/v1/responses")) > posts:
            armed.append(emu.inject(Fault(status=500), path=None))
        return turn_clock()

    with pytest.raises(PollTimeoutError, match="could not cancel it") as info:
        run_turn(
            api,
            model="emu-1",
            input="hi",
            background=True,
            poll_interval=0,
            poll_timeout=0.5,
            clock=clock,
        )
    err = info.value
    assert (False, openai.InternalServerError) == (err.cancelled, type(err.__cause__))
    assert "cancelled" == api.responses.cancel(err.response_id).status


async def test_async_poll_timeout_raises_with_the_tracker_unchanged(emu: Emulator) -> None:
    """arun_turn honours poll_timeout too: the stuck first request is cancelled, the fresh
    tracker observed nothing."""
    emu.inject(Fault(stall=True))
    async with AsyncOpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as c:
        with pytest.raises(PollTimeoutError) as info:
            await arun_turn(
                c,
                model="emu-1",
                input="hello",
                background=True,
                poll_interval=0,
                poll_timeout=3,
                clock=FakeClock(step=1.0),
            )
        assert "cancelled" == (await c.responses.retrieve(info.value.response_id)).status
    tracker = info.value.tracker
    assert tracker is not None
    assert (None, 0) == (tracker.previous_response_id, tracker.responses_observed)


def test_background_chain_outlives_the_ten_minute_deletion_of_unstored_responses() -> None:
    """A chained background request says store=true (the background guide keeps only those
    past ~10 minutes): 11 minutes later the next turn still chains; a stateless or
    conversation turn and a caller's own store are sent as they were."""
    clock = FakeClock()
    options = RuleOptions(expire_unstored_background=True)
    with (
        Emulator(options=options, clock=clock, background_polls=1) as emu,
        OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as c,
    ):
        common: dict[str, Any] = {"model": "emu-1", "background": True, "poll_interval": 0}
        first = run_turn(c, input="hi", **common)
        clock.now += 660
        second = run_turn(c, input="again", tracker=first.tracker, **common)
        run_turn(c, input="hi", store=False, **common)
        run_turn(c, input="hi", conversation=c.conversations.create().id, **common)
    posts = [r.body for r in emu.requests if r.method == "POST" and r.path == "/v1/responses"]
    assert [True, True, False, None] == [body.get("store") for body in posts]
    assert first.responses[-1].id == second.requests[0].previous_response_id
    assert "completed" == second.responses[-1].status


def test_incomplete_response_ends_the_turn_with_its_partial_answer(
    api: OpenAI, emu: Emulator
) -> None:
    """max_output_tokens cuts the answer, plain, streamed and in the background: each turn ends
    with the incomplete response's partial text, stored as incomplete, and chains from it."""
    text = "abcdefghij" * 10
    t = Tracker()
    turns: list[dict[str, Any]] = [{}, {"stream": True}, {"background": True, "poll_interval": 0}]
    results = [
        run_turn(api, model="emu-1", input=text, tracker=t, max_output_tokens=16, **kwargs)
        for kwargs in turns
    ]
    ends = [r.responses[-1] for r in results]
    assert [("You said: " + text)[:64]] * 3 == [r.text for r in results]  # 16 tokens of 4 chars
    assert [("incomplete", "max_output_tokens", "incomplete")] * 3 == [
        (r.status, r.incomplete_details.reason, r.output[0].status) for r in ends
    ]
    assert "incomplete" == api.responses.retrieve(ends[0].id).status
    bodies = emu.requests_to("/v1/responses")[-3:]
    assert [None, ends[0].id, ends[1].id] == [b.get("previous_response_id") for b in bodies]
