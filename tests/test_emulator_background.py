"""Background responses, resumed streams, the 5-minute limit and cancel, with the real client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI

from tracker import UsageError
from tracker.emulator import Emulator, Fault, RuleOptions
from tracker.emulator._background import CANCEL_NOT_BACKGROUND, NOT_RESUMABLE, TOO_OLD_TO_STREAM


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="module")
def emu(clock: FakeClock) -> Iterator[Emulator]:
    with Emulator(clock=clock, background_polls=2) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def api(emu: Emulator) -> Iterator[OpenAI]:
    with OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as c:
        yield c


def _texts(events: list[Any]) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


def test_background_response_is_queued_then_in_progress_then_completed(
    api: OpenAI, emu: Emulator
) -> None:
    """Polling shows queued -> in_progress -> completed; only the completed one is chainable."""
    r = api.responses.create(model="emu-1", input="hi", background=True)
    with pytest.raises(openai.BadRequestError) as early:
        api.responses.create(model="emu-1", input="more", previous_response_id=r.id)
    polled = [api.responses.retrieve(r.id) for _ in range(3)]
    assert ["queued", "in_progress", "completed", "completed"] == [r.status] + [
        p.status for p in polled
    ]
    assert ("previous_response_not_found", "You said: hi", True) == (
        early.value.code,
        polled[-1].output_text,
        polled[-1].background,
    )
    follow = api.responses.create(model="emu-1", input="more", previous_response_id=r.id)
    assert "completed" == follow.status


def test_background_tool_output_is_delivered_when_the_response_completes(
    api: OpenAI, emu: Emulator
) -> None:
    """A tool output sent in a background request counts only once it completes."""
    tools: Any = [{"type": "function", "name": "f"}]
    first = api.responses.create(model="emu-1", input="f()", tools=tools)
    call_id = first.output[0].call_id  # type: ignore[union-attr]
    out: Any = [{"type": "function_call_output", "call_id": call_id, "output": "x"}]
    r = api.responses.create(
        model="emu-1", input=out, tools=tools, previous_response_id=first.id, background=True
    )
    before = emu.received_outputs()[call_id]
    while api.responses.retrieve(r.id).status != "completed":
        pass
    assert (0, 1, {call_id: 1}) == (
        before,
        emu.received_outputs()[call_id],
        emu.context_outputs(response_id=r.id),
    )


def test_cut_stream_is_resumed_after_its_last_sequence_number(api: OpenAI, emu: Emulator) -> None:
    """A background stream cut mid-way resumes with deltas, no response.created; one response."""
    stored_before = len(emu.state.responses)
    emu.inject(Fault(cut_after=6))
    seen: list[Any] = []
    with pytest.raises(openai.APIConnectionError):  # the SDK wraps the transport error
        for event in api.responses.create(
            model="emu-1", input="tell me a long story", background=True, stream=True
        ):
            seen.append(event)
    assert ["response.created", "response.queued"] == [e.type for e in seen[:2]]
    response_id = seen[0].response.id
    rest = list(
        api.responses.retrieve(response_id, stream=True, starting_after=seen[-1].sequence_number)
    )
    assert rest[0].sequence_number == seen[-1].sequence_number + 1
    assert "response.created" not in [e.type for e in rest]
    assert rest[-1].type == "response.completed"
    assert rest[-1].response.output_text == _texts(seen) + _texts(rest)
    assert stored_before + 1 == len(emu.state.responses)


def test_stream_older_than_five_minutes_cannot_be_resumed(
    api: OpenAI, emu: Emulator, clock: FakeClock
) -> None:
    """Past 300 s by the emulator's clock, a resume is the service's 400 with its text."""
    events = list(api.responses.create(model="emu-1", input="hi", background=True, stream=True))
    response_id = events[0].response.id
    last = events[-3].sequence_number
    assert 2 == len(list(api.responses.retrieve(response_id, stream=True, starting_after=last)))
    clock.now += 301
    with pytest.raises(openai.BadRequestError) as info:
        api.responses.retrieve(response_id, stream=True, starting_after=3)
    assert TOO_OLD_TO_STREAM == info.value.body["message"]  # type: ignore[index]


def test_foreground_stream_is_not_resumable_unless_switched_on(api: OpenAI) -> None:
    """Only background responses stream again by default; the switch allows any streamed one."""
    events = list(api.responses.create(model="emu-1", input="hi", stream=True))
    with pytest.raises(openai.BadRequestError) as info:
        api.responses.retrieve(events[0].response.id, stream=True, starting_after=0)
    assert NOT_RESUMABLE == info.value.body["message"]  # type: ignore[index]
    options = RuleOptions(resume_foreground_streams=True)
    with Emulator(options=options) as emu, OpenAI(base_url=emu.base_url, api_key="k") as c:
        first = list(c.responses.create(model="emu-1", input="hi", stream=True))
        again = list(c.responses.retrieve(first[0].response.id, stream=True, starting_after=3))
    assert [e.sequence_number for e in first[4:]] == [e.sequence_number for e in again]


def test_cancel_stops_a_background_response_and_is_idempotent(api: OpenAI, emu: Emulator) -> None:
    """Cancel: cancelled, no output, twice the same; not chainable; its conversation is free."""
    conv = api.conversations.create()
    r = api.responses.create(model="emu-1", input="hi", background=True, conversation=conv.id)
    cancelled = api.responses.cancel(r.id)
    again = api.responses.cancel(r.id)
    assert ("cancelled", [], "cancelled") == (cancelled.status, cancelled.output, again.status)
    assert "cancelled" == api.responses.retrieve(r.id).status
    with pytest.raises(openai.BadRequestError) as info:
        api.responses.create(model="emu-1", input="x", previous_response_id=r.id)
    assert "previous_response_not_found" == info.value.code
    assert (
        "completed" == api.responses.create(model="emu-1", input="y", conversation=conv.id).status
    )
    assert [] == [i for i in api.conversations.items.list(conv.id) if i.type == "message"][:-2]


def test_cancel_refuses_a_foreground_response(api: OpenAI) -> None:
    """Only background responses can be cancelled; an unknown id is a 404."""
    r = api.responses.create(model="emu-1", input="hi")
    with pytest.raises(openai.BadRequestError) as info:
        api.responses.cancel(r.id)
    assert CANCEL_NOT_BACKGROUND == info.value.body["message"]  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        api.responses.cancel("resp_" + "0" * 48)


def test_cancelled_response_chains_when_switched_on() -> None:
    """chain_from_cancelled_response keeps a cancelled response's input in its chain."""
    options = RuleOptions(chain_from_cancelled_response=True)
    with Emulator(options=options) as emu, OpenAI(base_url=emu.base_url, api_key="k") as c:
        r = c.responses.create(model="emu-1", input="hi", background=True)
        c.responses.cancel(r.id)
        follow = c.responses.create(model="emu-1", input="again", previous_response_id=r.id)
        items = emu.context_items(response_id=follow.id)
    assert ["user", "user", "assistant"] == [i["role"] for i in items]


def test_fail_fault_ends_a_background_response_failed(api: OpenAI, emu: Emulator) -> None:
    """Fault(fail=code): polled to failed with that code, replayed as response.failed, and
    not stored (a failed response cannot be continued)."""
    emu.inject(Fault(fail="server_error"))
    r = api.responses.create(model="emu-1", input="hi", background=True)
    polled = [api.responses.retrieve(r.id) for _ in range(2)]
    assert ["in_progress", "failed"] == [p.status for p in polled]
    assert ("server_error", []) == (polled[-1].error.code, polled[-1].output)  # type: ignore[union-attr]
    events = list(api.responses.retrieve(r.id, stream=True, starting_after=2))
    assert ["response.failed"] == [e.type for e in events][-1:]
    with pytest.raises(openai.BadRequestError) as info:
        api.responses.create(model="emu-1", input="x", previous_response_id=r.id)
    assert "previous_response_not_found" == info.value.code


def test_background_polls_below_one_is_a_usage_error_naming_the_fix() -> None:
    """Emulator(background_polls=0) is refused before anything starts, naming the option."""
    with pytest.raises(UsageError, match=r"background_polls=0\).*pass background_polls=1 or more"):
        Emulator(background_polls=0)


def _gone(c: OpenAI, response_id: str) -> tuple[str, str | None]:
    """The 404 text of retrieving ``response_id`` and the code of chaining from it."""
    with pytest.raises(openai.NotFoundError) as found:
        c.responses.retrieve(response_id)
    with pytest.raises(openai.BadRequestError) as chained:
        c.responses.create(model="emu-1", input="x", previous_response_id=response_id)
    return found.value.body["message"], chained.value.code  # type: ignore[index]


def test_unstored_background_response_is_deleted_after_ten_minutes_when_switched_on(
    tmp_path: Path,
) -> None:
    """expire_unstored_background: 10 minutes after creation a background response without an
    explicit store=true is gone (404, not chainable, journaled); an explicit one stays."""
    clock, path = FakeClock(), tmp_path / "state.jsonl"
    options = RuleOptions(expire_unstored_background=True)
    with (
        Emulator(options=options, clock=clock, background_polls=1, state_path=path) as emu,
        OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as c,
    ):
        kept = c.responses.create(model="emu-1", input="hi", background=True, store=True)
        lost = c.responses.create(model="emu-1", input="hi", background=True)
        never_polled = c.responses.create(model="emu-1", input="hi", background=True)
        assert ["completed"] * 2 == [c.responses.retrieve(r.id).status for r in (kept, lost)]
        clock.now += 599
        assert "completed" == c.responses.retrieve(lost.id).status  # still within its time
        clock.now += 61  # 11 minutes after creation
        assert (f"Response with id '{lost.id}' not found.", "previous_response_not_found") == (
            _gone(c, lost.id)
        )
        with pytest.raises(openai.NotFoundError):
            c.responses.retrieve(never_polled.id)
        assert "completed" == c.responses.retrieve(kept.id).status
        assert "completed" == (
            c.responses.create(model="emu-1", input="x", previous_response_id=kept.id).status
        )
    with Emulator(state_path=path) as again, OpenAI(base_url=again.base_url, api_key="k") as c:
        with pytest.raises(openai.NotFoundError):  # the deletion was journaled
            c.responses.retrieve(lost.id)
        assert "completed" == c.responses.retrieve(kept.id).status


def test_zdr_background_response_is_retrievable_for_ten_minutes_only(
    api: OpenAI, clock: FakeClock
) -> None:
    """Emulator(zdr=True): a background response, even with store=true, polls for 10 minutes
    then is gone; with the switch off (the default) it stays retrievable."""
    zdr_clock = FakeClock()
    with (
        Emulator(zdr=True, clock=zdr_clock, background_polls=1) as emu,
        OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as c,
    ):
        r = c.responses.create(model="emu-1", input="hi", background=True, store=True)
        assert "completed" == c.responses.retrieve(r.id).status
        zdr_clock.now += 660
        with pytest.raises(openai.NotFoundError) as info:
            c.responses.retrieve(r.id)
    assert f"Response with id '{r.id}' not found." == info.value.body["message"]  # type: ignore[index]
    plain = api.responses.create(model="emu-1", input="hi", background=True)
    clock.now += 660
    assert "in_progress" == api.responses.retrieve(plain.id).status
