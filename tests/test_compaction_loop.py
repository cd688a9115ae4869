"""The loop's compaction end to end (issue 12): ``compact=True`` / ``compact=N`` and the one
recovery from encrypted items the service no longer verifies, over HTTP with the real client."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import openai
import pytest
from _fresh import FreshProcess
from _loop_helpers import PROMPT, TOOLS, request_bodies
from openai import AsyncOpenAI, OpenAI

from tracker import Tracker, UsageError
from tracker._rules import RuleOptions
from tracker.emulator import Emulator, Fault
from tracker.loop import EncryptedDropped, LoopEvent, MaxTurnsError, arun_turn, run_turn
from tracker.stores import SQLiteStore

#: A PROMPT turn's final response reads ~340 tokens (emulator count): so 250 compacts it.
AT = 250


def _outputs_once(emulator: Emulator) -> None:
    """Every call the model issued was answered exactly once, over every request received."""
    assert Counter(dict.fromkeys(emulator.issued_calls(), 1)) == emulator.received_outputs()


def _compaction_id(compacted: Any) -> str:
    return str(compacted.output[-1].id)


def test_compact_setting_is_a_bool_or_a_positive_int(client: OpenAI) -> None:
    """compact=0, -1 or "yes" is a UsageError naming the setting, before any request."""
    for bad in (0, -1, "yes"):
        with pytest.raises(UsageError, match="compact must be"):
            run_turn(client, model="emu-1", input="hi", compact=bad)  # type: ignore[arg-type]


def test_stale_compaction_after_a_key_rotation_is_dropped_once(
    client: OpenAI, emulator: Emulator
) -> None:
    """compact=N compacts after the answer; after rotate_keys the next turn's window is refused
    once (400), resent without the cmp_ item and answered; recover_encrypted=False raises."""
    tracker = Tracker()
    events: list[LoopEvent] = []
    first = run_turn(client, model="emu-1", input=PROMPT, tools=TOOLS, tracker=tracker, compact=AT)
    assert "response.compaction" == first.compacted.object
    stale = _compaction_id(first.compacted)
    emulator.rotate_keys()
    second = run_turn(
        client,
        model="emu-1",
        input=PROMPT,
        tools=TOOLS,
        tracker=tracker,
        compact=AT,
        on_event=events.append,
    )
    dropped = [e for e in events if isinstance(e, EncryptedDropped)]
    assert [(0, 1, (stale,), stale)] == [(e.index, e.attempt, e.item_ids, e.named) for e in dropped]
    assert (stale,) == second.dropped_encrypted
    assert "invalid_encrypted_content" == second.errors[0].code  # type: ignore[attr-defined]
    assert [2, 1, 1] == [r.attempts for r in second.requests]
    failed, resent = request_bodies(emulator)[3:5]
    assert ["message", "compaction", "message"] == [
        i.get("type", "message") for i in failed["input"]
    ]
    assert failed["input"][:1] + failed["input"][2:] == resent["input"]
    emulator.rotate_keys()  # the second turn compacted again: its window is stale too
    state = tracker.to_state()
    with pytest.raises(openai.BadRequestError, match="could not be verified"):
        run_turn(client, model="emu-1", input="go on", tracker=tracker, recover_encrypted=False)
    assert state == tracker.to_state()
    assert (
        "Done" in run_turn(client, model="emu-1", input=PROMPT, tools=TOOLS, tracker=tracker).text
    )
    _outputs_once(emulator)


def test_stale_items_of_a_stateless_transcript_are_dropped_once(
    client: OpenAI, emulator: Emulator
) -> None:
    """store=False with compact=N, the whole history replayed (replay_before_compaction): the
    trigger's cmp_ item joins the transcript; after a key rotation the replay is refused once,
    resent without its rs_/cmp_ items (the calls after a dropped reasoning item sent without
    their fc_ ids, so no A2), and holds every output once."""
    tracker = Tracker(rules=RuleOptions(replay_before_compaction=True))
    model = "emu-reason-1"  # emits a reasoning item before each answer or batch of calls

    def turn(**kw: Any) -> Any:
        return run_turn(
            client, model=model, input=PROMPT, tools=TOOLS, tracker=tracker, store=False, **kw
        )

    first = turn(compact=AT)
    assert "compaction_trigger" == request_bodies(emulator)[-1]["input"][-1]["type"]
    reasoning = [i.id for r in first.responses for i in r.output if i.type == "reasoning"]
    emulator.rotate_keys()
    second = turn()
    assert (*reasoning, _compaction_id(first.compacted)) == second.dropped_encrypted
    assert [] == [i for i in second.dropped_encrypted if i in json.dumps(tracker.transcript)]
    last = request_bodies(emulator)[-1]["input"]
    outputs = Counter(i["call_id"] for i in last if i.get("type") == "function_call_output")
    assert dict.fromkeys(emulator.issued_calls(), 1) == dict(outputs)
    assert [] == [i for i in last if i.get("type") in ("compaction", "compaction_trigger")]


async def test_a_stale_item_in_a_compaction_request_is_dropped_once(
    async_client: AsyncOpenAI, emulator: Emulator
) -> None:
    """arun_turn, store=False, compact=True after a key rotation: the compaction_trigger
    request carries the transcript's stale rs_ item, is refused once, resent without it and
    compacts; the turn then runs (the async driver recovers as run_turn does)."""
    tracker = Tracker()
    events: list[LoopEvent] = []
    first = await arun_turn(
        async_client, model="emu-reason-1", input="hi", tracker=tracker, store=False
    )
    stale = first.responses[0].output[0].id
    emulator.rotate_keys()
    second = await arun_turn(
        async_client,
        model="emu-reason-1",
        input="again",
        tracker=tracker,
        store=False,
        compact=True,
        on_event=events.append,
    )
    dropped = [(e.index, e.item_ids) for e in events if isinstance(e, EncryptedDropped)]
    assert ([(-1, (stale,))], (stale,)) == (dropped, second.dropped_encrypted)
    assert "compaction" == second.compacted.output[0].type
    assert "You said: again" in second.text


def test_compact_true_with_calls_pending_waits_for_their_outputs(
    client: OpenAI, emulator: Emulator
) -> None:
    """After MaxTurnsError the calls are pending: compact=True delivers their outputs first and
    compacts after the answer (never refused, never summarising an unanswered call)."""
    tracker = Tracker()
    with pytest.raises(MaxTurnsError):
        run_turn(client, model="emu-1", input=PROMPT, tools=TOOLS, tracker=tracker, max_turns=1)
    pending = tracker.pending_call_ids
    result = run_turn(
        client, model="emu-1", input="go on", tools=TOOLS, tracker=tracker, compact=True
    )
    assert pending and () == tracker.pending_call_ids
    assert "response.compaction" == result.compacted.object
    assert [] == emulator.requests_to("/v1/responses/compact")[0].get("input", [])
    _outputs_once(emulator)


def test_a_compaction_after_the_answer_that_fails_is_skipped_then_done(
    client: OpenAI, emulator: Emulator
) -> None:
    """A 500, or a 400 (a model without compaction), on responses.compact after the answer
    loses no answer (the error is in errors, the turn is not raised and re-run); the next
    turn's end compacts; outputs once."""
    tracker = Tracker()
    emulator.inject(Fault(status=500), path="/v1/responses/compact")
    first = run_turn(client, model="emu-1", input=PROMPT, tools=TOOLS, tracker=tracker, compact=AT)
    unsupported = Fault(status=400, message="Compaction is not supported for model emu-1.")
    emulator.inject(unsupported, path="/v1/responses/compact")
    second = run_turn(client, model="emu-1", input="hi", tracker=tracker, compact=AT)
    assert ("Done" in first.text, "You said: hi") == (True, second.text)
    assert [None, None] == [first.compacted, second.compacted]
    statuses = [e.status_code for r in (first, second) for e in r.errors]  # type: ignore[attr-defined]
    assert [500, 400] == statuses
    third = run_turn(client, model="emu-1", input=PROMPT, tools=TOOLS, tracker=tracker, compact=AT)
    assert "response.compaction" == third.compacted.object
    _outputs_once(emulator)


@pytest.mark.parametrize(
    ("place", "stream"), [("chain", True), ("conversation", False), ("conversation", True)]
)
async def test_arun_turn_compacts_before_a_turn_and_at_a_threshold(
    async_client: AsyncOpenAI, emulator: Emulator, place: str, stream: bool
) -> None:
    """arun_turn: compact=True compacts before the turn, compact=N after it; a chain with
    responses.compact, a conversation with a compaction_trigger request; outputs once."""
    conv = (await async_client.conversations.create()).id if place == "conversation" else None
    tracker = Tracker(conversation_id=conv)

    async def turn(compact: bool | int) -> Any:
        return await arun_turn(
            async_client,
            model="emu-1",
            input=PROMPT,
            tools=TOOLS,
            tracker=tracker,
            stream=stream,
            compact=compact,
        )

    await turn(False)
    before = await turn(True)
    after = await turn(AT)
    last = await turn(False)
    kinds = {"chain": "response.compaction", "conversation": "response"}
    assert [kinds[place]] * 2 == [before.compacted.object, after.compacted.object]
    assert _compaction_id(after.compacted) == tracker.last_compaction_id
    if conv is None:
        assert [None, None] == [r.requests[0].previous_response_id for r in (before, last)]
    else:
        trigger = [
            b
            for b in request_bodies(emulator)
            if b["input"][-1].get("type") == "compaction_trigger"
        ]
        assert [[{"type": "compaction_trigger"}]] * 2 == [b["input"] for b in trigger]
        assert "compaction" == emulator.window_items(conversation_id=conv)[0]["type"]
    _outputs_once(emulator)


def test_a_session_restored_across_a_compaction_in_a_new_process(
    client: OpenAI, emulator: Emulator, tmp_path: Path
) -> None:
    """A turn compacts at its end (SQLite session); a new process restores the session, starts
    the new chain with the window, continues it, and every output is delivered once."""
    db = str(tmp_path / "s.db")
    store = SQLiteStore(db)
    try:
        first = run_turn(
            client,
            model="emu-1",
            input=PROMPT,
            tools=TOOLS,
            session_store=store,
            session_id="chat",
            compact=AT,
        )
    finally:
        store.close()
    child = FreshProcess("_compaction_worker", "main", emulator.base_url, db)
    out, err = child.communicate(timeout=120)
    assert 0 == child.returncode, err
    opened, continued = json.loads(out.splitlines()[-1])
    window = [item.type for item in first.compacted.output]
    child_first = request_bodies(emulator)[3]
    assert None is opened and continued is not None
    assert window == [i.get("type", "message") for i in child_first["input"][: len(window)]]
    assert "previous_response_id" not in child_first
    _outputs_once(emulator)
