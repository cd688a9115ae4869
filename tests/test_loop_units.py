"""tracker.loop pieces without a server: tool schemas and checks, retry policy, recovery match."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import httpx2
import openai
import pytest

from tracker import Tracker, UsageError
from tracker.loop import (
    FunctionTool,
    IncompleteStreamError,
    ResponseFailedError,
    RetryPolicy,
    function_tool,
    is_transient,
    schema_for,
)
from tracker.loop._background import StreamReader, settle
from tracker.loop._core import final_text, make_spec
from tracker.loop._recovery import stored_response_start
from tracker.loop._tools import Invocation, plan_call, run_plans


class Unit(enum.Enum):
    """Temperature units."""

    C = "celsius"
    F = "fahrenheit"


def forecast(
    city: Annotated[str, "City name"],
    *,
    days: int = 3,
    unit: Unit = Unit.C,
    hours: list[int] | None = None,
    mode: Literal["brief", "full"] = "brief",
    extra: dict[str, float] | None = None,
    tags: tuple[str, ...] = (),
    anything: Any = None,
) -> str:
    """Forecast for a city.

    Longer text that the model does not need.
    """
    return city


def test_schema_from_type_hints() -> None:
    """Hints become JSON schema; parameters without a default are required."""
    assert {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "City name"},
            "days": {"type": "integer", "default": 3},
            "unit": {"enum": ["celsius", "fahrenheit"]},
            "hours": {
                "anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}],
                "default": None,
            },
            "mode": {"type": "string", "enum": ["brief", "full"], "default": "brief"},
            "extra": {
                "anyOf": [
                    {"type": "object", "additionalProperties": {"type": "number"}},
                    {"type": "null"},
                ],
                "default": None,
            },
            "tags": {"type": "array", "items": {"type": "string"}, "default": []},
            "anything": {"default": None},
        },
        "required": ["city"],
        "additionalProperties": False,
    } == schema_for(forecast)


def test_function_tool_spec_and_decorator_forms() -> None:
    """function_tool names and describes the tool; it works bare and with arguments."""
    tool = function_tool(forecast)
    assert "Forecast for a city." == tool.spec()["description"]
    assert "forecast" == tool.spec()["name"]

    @function_tool(name="wx", parameters={"type": "object", "properties": {}})
    def with_args(**kwargs: Any) -> str:
        return "x"

    assert isinstance(with_args, FunctionTool)
    assert ("wx", {"type": "object", "properties": {}}) == (with_args.name, with_args.parameters)
    assert tool is function_tool(tool)


def test_unknown_hints_and_star_args_are_usage_errors() -> None:
    """A hint without a JSON schema, or *args, names the parameter and the fix."""

    def bad(when: complex) -> None: ...

    def star(*cities: str) -> None: ...

    with pytest.raises(UsageError, match=r"parameter 'when'.*parameters=\.\.\."):
        schema_for(bad)
    with pytest.raises(UsageError, match=r"parameter 'cities'"):
        schema_for(star)


def test_plan_call_checks_arguments() -> None:
    """Valid arguments give an Invocation; anything else an error text for the model."""
    tools = {"forecast": function_tool(forecast)}
    plan = plan_call(tools, "forecast", '{"city": "Oslo"}')
    assert isinstance(plan, Invocation)
    assert ("Oslo", False) == plan.run()
    assert isinstance(plan_call(tools, "forecast", ""), str)  # missing city
    assert "no tool named 'x'" in str(plan_call(tools, "x", "{}"))
    assert "not valid JSON" in str(plan_call(tools, "forecast", "{"))
    assert "must be a JSON object" in str(plan_call(tools, "forecast", "[1]"))
    assert "unexpected keyword argument 'town'" in str(
        plan_call(tools, "forecast", '{"city": "a", "town": "b"}')
    )


def test_tool_results_are_text_or_json() -> None:
    """A str result is sent as is, anything else as JSON; an exception as an error text."""

    def many(n: int) -> Any:
        if n < 0:
            raise ValueError("negative")
        return {"n": n, "items": [1, 2]}

    tools = {"many": function_tool(many)}
    assert ('{"n": 1, "items": [1, 2]}', False) == _run(tools, '{"n": 1}')
    assert ("Error: tool many raised ValueError: negative", True) == _run(tools, '{"n": -1}')


def _run(tools: dict[str, FunctionTool], arguments: str) -> tuple[str, bool]:
    plan = plan_call(tools, next(iter(tools)), arguments)
    assert isinstance(plan, Invocation)
    return plan.run()


def test_async_tool_runs_in_the_sync_driver() -> None:
    """An async tool called from run_turn's thread runs on a fresh event loop."""

    async def later(x: int) -> int:
        return x * 2

    plan = plan_call({"later": function_tool(later)}, "later", '{"x": 4}')
    assert isinstance(plan, Invocation)
    assert ("8", False) == plan.run()


def _status_error(
    status: int, headers: dict[str, str] | None = None, code: str | None = None
) -> Any:
    request = httpx2.Request("POST", "http://x/v1/responses")
    response = httpx2.Response(status, headers=headers or {}, request=request)
    cls = openai.InternalServerError if status >= 500 else openai.APIStatusError
    return cls("boom", response=response, body={"code": code, "message": "boom"})


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (openai.APIConnectionError(request=httpx2.Request("POST", "http://x")), True),
        (openai.APITimeoutError(request=httpx2.Request("POST", "http://x")), True),
        (IncompleteStreamError("cut"), True),
        (ResponseFailedError("f", code="server_error", response_id="r"), True),
        (ResponseFailedError("f", code="invalid_prompt", response_id="r"), False),
        (_status_error(500), True),
        (_status_error(503, {"x-should-retry": "false"}), True),
        (_status_error(429), True),
        (_status_error(409), True),
        (_status_error(400), False),
        (_status_error(400, code="conversation_locked"), True),
        (_status_error(404), False),
        (_status_error(400, {"x-should-retry": "true"}), True),
        (ValueError("x"), False),
    ],
)
def test_transient_errors(error: BaseException, transient: bool) -> None:
    """Connection errors, timeouts, 408/409/429/5xx and locked conversations are transient."""
    assert transient == is_transient(error)


def test_backoff_grows_caps_and_follows_retry_after() -> None:
    """Delays double up to max_delay; Retry-After wins; the last attempt gives up."""
    policy = RetryPolicy(max_attempts=4, initial_delay=1, max_delay=3, jitter=0)
    err = _status_error(500)
    assert [1, 2, 3, None] == [policy.delay(err, n) for n in (1, 2, 3, 4)]
    assert 0.25 == policy.delay(_status_error(429, {"retry-after": "0.25"}), 1)
    assert 3 == policy.delay(_status_error(429, {"retry-after": "60"}), 1)
    assert None is policy.delay(_status_error(400), 1)


def test_polling_ends_at_incomplete_and_the_tracker_chains_from_it() -> None:
    """A background response polled to `incomplete` is terminal (stored and chainable, SDK
    ResponseStatus): returned without another poll or an error, and then observed."""
    queued = {"id": "resp_1", "status": "queued", "output": []}
    polls = settle(queued, retry=RetryPolicy(), poll_interval=0.0, cancel=None, errors=[])
    assert "resp_1" == next(polls).response_id
    incomplete = {**queued, "status": "incomplete", "incomplete_details": {"reason": "x"}}
    with pytest.raises(StopIteration) as done:
        polls.send(incomplete)
    assert incomplete is done.value.value
    tracker = Tracker()
    tracker.mark_sent(tracker.prepare("hi"))
    tracker.observe_response(incomplete)
    assert "resp_1" == tracker.prepare("more").previous_response_id


def test_a_resumed_stream_hands_on_each_delta_once() -> None:
    """Events a resumed stream repeats (sequence_number not above the last one delivered) are
    skipped: each delta once, then the final response."""

    def delta(n: int) -> dict[str, Any]:
        return {"type": "response.output_text.delta", "sequence_number": n, "delta": str(n)}

    done = {"type": "response.completed", "sequence_number": 5, "response": {"id": "r"}}
    first = StreamReader(0)
    fed = [first.feed(delta(n)) for n in range(3)]
    again = StreamReader(0, last_sequence=first.last_sequence, response_id="r")
    fed += [again.feed(event) for event in [delta(1), delta(2), delta(3), delta(4), done]]
    texts = [d.text for d, _ in fed if d is not None]
    assert (["0", "1", "2", "3", "4"], {"id": "r"}) == (texts, fed[-1][1])


def test_spec_rejects_reserved_options_and_bad_limits() -> None:
    """Reserved options, duplicate tool names, max_turns or max_tool_workers < 1 are refused."""
    kwargs: dict[str, Any] = {"stream": False, "retry": RetryPolicy(), "options": {}}
    with pytest.raises(UsageError, match="previous_response_id"):
        make_spec("m", [], max_turns=1, **{**kwargs, "options": {"previous_response_id": "r"}})
    with pytest.raises(UsageError, match="max_turns"):
        make_spec("m", [], max_turns=0, **kwargs)
    with pytest.raises(UsageError, match=r"max_tool_workers must be a positive int.*got 0"):
        make_spec("m", [], max_turns=1, max_tool_workers=0, **kwargs)
    with pytest.raises(UsageError, match="Two tools are named 'forecast'"):
        make_spec("m", [forecast, forecast], max_turns=1, **kwargs)
    spec = make_spec("m", [forecast, {"type": "web_search"}], max_turns=1, **kwargs)
    assert ["function", "web_search"] == [t["type"] for t in spec.tool_specs]


def _msg(role: str, text: str, **extra: Any) -> dict[str, Any]:
    kind = "output_text" if role == "assistant" else "input_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}], **extra}


def _out(call_id: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": "x", "id": "fco_1"}


def test_stored_response_is_found_after_its_input() -> None:
    """The stored copy of what was sent, followed by model output, marks a stored response."""
    sent: Sequence[Any] = [{"role": "user", "content": "hi"}]
    answer = _msg("assistant", "hello", id="msg_2")
    assert 1 == stored_response_start([_msg("user", "hi", id="msg_1"), answer], sent)
    assert None is stored_response_start([_msg("user", "hi", id="msg_1")], sent)  # no output
    assert None is stored_response_start([_msg("user", "other"), answer], sent)
    later_user = [_msg("user", "hi"), answer, _msg("user", "again")]
    assert None is stored_response_start(later_user, sent)
    outputs = [{"type": "function_call_output", "call_id": "c1", "output": "x"}]
    stored = [_msg("user", "hi"), _out("c1"), {"type": "function_call", "call_id": "c2"}]
    assert 2 == stored_response_start(stored, outputs)


def test_final_text_joins_assistant_text() -> None:
    """final_text reads output_text parts of assistant messages only."""
    assert "ab" == final_text([_msg("assistant", "a"), _msg("user", "x"), _msg("assistant", "b")])


class _Unprintable:
    """An object whose str() (and so its JSON fallback) raises."""

    def __str__(self) -> str:
        raise RuntimeError("no text for you")


class _UnprintableError(Exception):
    """An exception whose str() raises."""

    def __str__(self) -> str:
        raise RuntimeError("no text either")


def _cyclic() -> list[Any]:
    loop: list[Any] = [1]
    loop.append(loop)
    return loop


def _deep(depth: int = 5000) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


def _raise_unprintable() -> None:
    raise _UnprintableError


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (_cyclic, "Error: tool bad returned a list that cannot be sent as text (ValueError: "),
        (_Unprintable, "Error: tool bad returned a _Unprintable that cannot be sent as text ("),
        (_deep, "Error: tool bad returned a list that cannot be sent as text (RecursionError: "),
        (_raise_unprintable, "Error: tool bad raised _UnprintableError: <_UnprintableError whose"),
    ],
    ids=["self-referencing", "str-raises", "5000-deep", "exception-str-raises"],
)
@pytest.mark.parametrize("driver", ["sync", "async"])
def test_a_result_that_cannot_become_text_is_an_error_output(
    result: Any, expected: str, driver: str
) -> None:
    """Circular, unprintable or too deep results (or errors) become an error output, no crash."""

    def bad() -> Any:
        return result()

    plan = plan_call({"bad": function_tool(bad)}, "bad", "{}")
    assert isinstance(plan, Invocation)
    output, is_error = plan.run() if driver == "sync" else asyncio.run(plan.arun())
    assert (expected, True) == (output[: len(expected)], is_error)


def test_lone_surrogates_in_a_result_become_replacement_characters() -> None:
    """A result no request body can carry (lone surrogates) is sent with U+FFFD instead."""

    def odd() -> Any:
        return {"text": "a\ud800b\ud83d\ude00"}

    assert ('{"text": "a\ufffdb\U0001f600"}', False) == _run({"odd": function_tool(odd)}, "")


async def test_async_tools_are_refused_inside_a_running_loop_before_any_runs() -> None:
    """run_turn's tool runner refuses an async tool on an event loop thread, running nothing."""
    ran: list[str] = []

    def first() -> str:
        ran.append("first")
        return "x"

    async def second() -> str:
        return "y"

    tools = {"first": function_tool(first), "second": function_tool(second)}
    plans = [plan_call(tools, "first", "{}"), plan_call(tools, "second", "{}")]
    with pytest.raises(UsageError, match=r"Async tool second .* use `await arun_turn"):
        run_plans(plans, 8)
    assert [] == ran
