"""Stateless turns (issue 13): store=False, zero data retention, the replayed transcript."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import Counter
from pathlib import Path
from typing import Any

import openai
import pytest
from _builders import said_as, user
from _fresh import FreshProcess
from _loop_helpers import ANSWER, NO_WAIT, PROMPT, TOOLS, add, counting_weather, request_bodies
from _stateless_turns import block_turns
from openai import AsyncOpenAI, OpenAI

from tracker import (
    ContinuationError,
    HistoryError,
    Tracker,
    TranscriptError,
    UsageError,
    validate_history,
)
from tracker._rules import RuleOptions, check_input_references
from tracker.emulator import Emulator, Fault
from tracker.emulator._state import IdGen
from tracker.loop import RequestSent, ResponseReceived, TurnResult, arun_turn, run_turn
from tracker.stores import MemoryStore, SQLiteStore, load_tracker, save_tracker

REASONING_MODEL = "emu-reason-1"


def _response(rid: str, *output: dict[str, Any]) -> dict[str, Any]:
    return {"id": rid, "store": False, "output": list(output)}


def _reasoning(item_id: str, sealed: str | None = "gAAAAAsealed") -> dict[str, Any]:
    item: dict[str, Any] = {"type": "reasoning", "id": item_id, "summary": []}
    if sealed is not None:
        item["encrypted_content"] = sealed
    return item


@pytest.fixture
def zdr() -> Any:
    """A started zero-data-retention emulator."""
    with Emulator(seed=7, zdr=True) as emu:
        yield emu


@pytest.fixture
def zdr_client(zdr: Emulator) -> Any:
    """A real client talking to the ZDR emulator."""
    with OpenAI(base_url=zdr.base_url, api_key="k", max_retries=0) as c:
        yield c


def _outputs_once(body: dict[str, Any], issued: list[str]) -> bool:
    """Whether ``body``'s input answers every issued call exactly once."""
    outs = Counter(i["call_id"] for i in body["input"] if i.get("type") == "function_call_output")
    return dict.fromkeys(issued, 1) == dict(outs)


# ---------------------------------------------------------------- the tracker, sans IO


def test_stateless_prepare_replays_transcript_then_new_items() -> None:
    """Turn two carries turn one's input and output, then only the caller's new message."""
    t = Tracker(store=False)
    first = t.prepare("hi")
    t.mark_sent(first)
    t.observe_response(_response("resp_1", _reasoning("rs_1"), said_as("msg_1", "yo")))
    history = [user("hi"), said_as("msg_1", "yo"), user("again")]
    second = t.prepare(history)
    expected = [user("hi"), _reasoning("rs_1"), said_as("msg_1", "yo"), user("again")]
    assert expected == second.request_input()
    assert {"input": expected} == second.request_kwargs()
    assert 3 == second.replayed


def test_stateless_rewind_drops_the_failed_request_from_the_transcript() -> None:
    """A rewound request's items leave the transcript; the next prepare sends them once."""
    t = Tracker(store=False)
    p = t.prepare("hi")
    t.mark_sent(p)
    t.rewind(p)
    assert () == t.transcript
    assert [user("hi")] == t.prepare("hi").request_input()


def test_stateless_snapshot_carries_transcript_and_cache_key() -> None:
    """to_state()/from_state() keep the transcript (JSON) and the prompt_cache_key."""
    t = Tracker(store=False)
    p = t.prepare("hi")
    t.mark_sent(p)
    t.observe_response(_response("resp_1", said_as("msg_1", "yo")))
    state = json.loads(json.dumps(t.to_state()))
    restored = Tracker.from_state(state)
    assert (t.transcript, t.prompt_cache_key) == (restored.transcript, restored.prompt_cache_key)
    assert restored.prepare([user("more")]).request_input() == [*t.transcript, user("more")]


def test_stateless_snapshot_leaves_out_unanswered_request() -> None:
    """A request marked but not answered is not in the snapshot: it is sent again once."""
    t = Tracker(store=False)
    t.mark_sent(t.prepare("hi"))
    restored = Tracker.from_state(t.to_state())
    assert [user("hi")] == restored.prepare("hi").request_input()


def test_stateless_refuses_item_reference() -> None:
    """An item_reference, or a new reasoning item without encrypted_content, cannot be
    resolved under store=False: TranscriptError names it and the fix."""
    t = Tracker(store=False)
    with pytest.raises(TranscriptError, match="msg_9.*Pass the item itself"):
        t.prepare([{"type": "item_reference", "id": "msg_9"}])
    with pytest.raises(TranscriptError, match="'rs_9' without encrypted_content.*include="):
        t.prepare([_reasoning("rs_9", None), said_as("msg_9", "yo")])
    assert [user("hi")] == t.prepare("hi").request_input()


def test_stateless_reasoning_without_encrypted_content_is_left_out_with_its_ids() -> None:
    """Unreplayable reasoning is dropped and its message loses its id (no R0, no A3)."""
    t = Tracker(store=False)
    t.mark_sent(t.prepare("hi"))
    t.observe_response(_response("resp_1", _reasoning("rs_1", None), said_as("msg_1", "yo")))
    plain = said_as("msg_1", "yo")
    del plain["id"]
    assert (user("hi"), plain) == t.transcript


def test_stateless_checks_the_service_rules_before_sending() -> None:
    """An output for a call the transcript never held is refused before sending (P2)."""
    t = Tracker(store=False, check="off")
    orphan = {"type": "function_call_output", "call_id": "call_x", "output": "1"}
    with pytest.raises(HistoryError, match="call_x"):
        t.prepare([orphan])


def test_stateless_replay_never_sends_a_client_call_by_its_id_beside_its_output() -> None:
    """With reject_referenced_client_calls, the replayed call and its output pass P4."""
    t = Tracker(store=False, rules=RuleOptions(reject_referenced_client_calls=True))
    t.mark_sent(t.prepare("hi"))
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f"}
    t.observe_response(_response("resp_1", {**call, "arguments": "{}"}))
    p = t.prepare([{"type": "function_call_output", "call_id": "call_1", "output": "ok"}])
    assert [] == check_input_references(p.request_input())


def _fc(item_id: str, call_id: str) -> dict[str, Any]:
    return {"type": "function_call", "id": item_id, "call_id": call_id, "name": "f"}


def _out(call_id: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": "ok"}


def test_stateless_replay_under_the_switch_leaves_out_the_reasoning_of_answered_calls() -> None:
    """Switch on: parallel calls go without ids, their reasoning is left out and the message
    emitted with it loses its id; the transcript keeps what the server returned."""
    rules = RuleOptions(reject_referenced_client_calls=True)
    t = Tracker(store=False, rules=rules)
    t.mark_sent(t.prepare("hi"))
    first = (
        _reasoning("rs_1"),
        said_as("msg_1", "let me see"),
        _fc("fc_1", "c1"),
        _fc("fc_2", "c2"),
    )
    t.observe_response(_response("resp_1", *first))
    p = t.prepare([_out("c1"), _out("c2")])
    t.mark_sent(p)
    t.observe_response(_response("resp_2", _reasoning("rs_2"), said_as("msg_2", "done")))
    bare = [{k: v for k, v in i.items() if k != "id"} for i in first[1:]]
    expected = [user("hi"), *bare, _out("c1"), _out("c2"), _reasoning("rs_2")]
    expected.append(said_as("msg_2", "done"))
    sent = t.prepare("more").request_input()
    assert [*expected, user("more")] == sent
    assert [] == validate_history(sent, reject_referenced_client_calls=True)
    assert (user("hi"), *first, _out("c1"), _out("c2")) == t.transcript[:7]


def test_stateless_replay_with_the_switch_off_keeps_ids_and_reasoning() -> None:
    """Switch off (the default): the replay sends the calls as returned, reasoning kept."""
    t = Tracker(store=False)
    t.mark_sent(t.prepare("hi"))
    t.observe_response(_response("resp_1", _reasoning("rs_1"), _fc("fc_1", "c1")))
    sent = t.prepare([_out("c1")]).request_input()
    assert [user("hi"), _reasoning("rs_1"), _fc("fc_1", "c1"), _out("c1")] == sent


def test_go_stateless_without_history_names_the_fix() -> None:
    """A chain whose items the tracker does not keep cannot switch without its history."""
    t = Tracker()
    t.mark_sent(t.prepare("hi"))
    t.observe_response({"id": "resp_1", "output": [said_as("msg_1", "yo")]})
    with pytest.raises(TranscriptError, match="go_stateless\\(history=...\\)"):
        t.go_stateless()
    with pytest.raises(TranscriptError, match="lacks what chain 'resp_1' holds \\(item msg_1\\)"):
        t.go_stateless([user("hi")])
    with pytest.raises(TranscriptError) as info:
        t.go_stateless([user("hi")])
    assert "msg_1" == info.value.item_id
    assert ("resp_1", True) == (t.previous_response_id, t.store)


def test_go_stateless_refuses_an_empty_history_for_a_chain_it_joined() -> None:
    """A tracker that joined a chain by previous_response_id never saw its items: switching
    with an empty history would drop them silently, so it is a TranscriptError naming it."""
    t = Tracker(previous_response_id="resp_old")
    with pytest.raises(TranscriptError, match="history is empty but chain 'resp_old'"):
        t.go_stateless([])
    assert ("resp_old", True) == (t.previous_response_id, t.store)


def test_go_stateless_with_a_history_the_service_would_reject_names_the_fix() -> None:
    """A history with an output whose call it lacks is a HistoryError worded for go_stateless
    (not for new items of a request); the tracker stays a chain."""
    t = Tracker()
    t.mark_sent(t.prepare("hi"))
    t.observe_response({"id": "resp_1", "output": [said_as("msg_1", "yo")]})
    history = [user("hi"), said_as("msg_1", "yo"), _out("call_9")]
    with pytest.raises(HistoryError, match=r"go_stateless\(\): the history of chain 'resp_1'"):
        t.go_stateless(history)
    assert ("resp_1", True) == (t.previous_response_id, t.store)


def test_go_stateless_in_a_conversation_or_in_flight_names_the_fix() -> None:
    """A conversation cannot switch (the message names it and what to do instead); nor can a
    tracker with a request in flight; a stateless one given a history refuses it. The tracker
    is unchanged either way."""
    t = Tracker(conversation_id="conv_1")
    with pytest.raises(UsageError, match="conversation 'conv_1'.*Drop store=False"):
        t.go_stateless([])
    chain = Tracker()
    chain.mark_sent(chain.prepare("hi"))
    with pytest.raises(UsageError, match="1 request\\(s\\) in flight"):
        chain.go_stateless([user("hi")])
    stateless = Tracker(store=False)
    stateless.go_stateless()  # already stateless: nothing to do
    with pytest.raises(UsageError, match="already stateless"):
        stateless.go_stateless([user("other")])  # would be silently ignored
    assert (True, True, "conv_1", ()) == (
        t.store,
        chain.store,
        t.conversation_id,
        stateless.transcript,
    )


def test_go_stateless_with_history_replays_it() -> None:
    """With the chain's history the tracker continues statelessly from it."""
    t = Tracker()
    t.mark_sent(t.prepare("hi"))
    t.observe_response({"id": "resp_1", "output": [said_as("msg_1", "yo")]})
    t.go_stateless([user("hi"), said_as("msg_1", "yo")])
    p = t.prepare([user("hi"), said_as("msg_1", "yo"), user("next")])
    assert (None, [user("hi"), said_as("msg_1", "yo"), user("next")]) == (
        p.previous_response_id,
        p.request_input(),
    )


# ---------------------------------------------------------------- the ZDR emulator


def test_zdr_emulator_item_reference_is_the_zdr_404(zdr_client: OpenAI) -> None:
    """Under ZDR nothing is stored, even asked with store=True: the response cannot be
    retrieved, and an item_reference to its output is 404 with the ZDR text."""
    first = zdr_client.responses.create(model="emu-1", input="hi", store=True)
    assert first.store is False
    with pytest.raises(openai.NotFoundError):
        zdr_client.responses.retrieve(first.id)
    ref = {"type": "item_reference", "id": first.output[0].id}
    with pytest.raises(openai.NotFoundError) as info:
        zdr_client.responses.create(model="emu-1", input=[ref])
    expected = (
        f"Item with id '{first.output[0].id}' not found. Items are not persisted for Zero Data "
        "Retention organizations."
    )
    assert expected == info.value.body["message"]  # type: ignore[index]


def test_chain_tracker_refuses_a_zdr_response(zdr_client: OpenAI) -> None:
    """A chain tracker cannot continue a ZDR (store=False) response: ContinuationError."""
    t = Tracker()
    p = t.prepare("hi")
    t.mark_sent(p)
    response = zdr_client.responses.create(model="emu-1", **p.request_kwargs())
    with pytest.raises(ContinuationError, match="store=False"):
        t.observe_response(response)


def test_tampered_reasoning_is_the_real_400(zdr_client: OpenAI) -> None:
    """Replayed reasoning with a tampered encrypted_content, or one another organisation (an
    emulator with another key) sealed for the same id, is 400 invalid_encrypted_content."""
    first = zdr_client.responses.create(model=REASONING_MODEL, input="hi", store=False)
    rs = first.output[0].model_dump(exclude_none=True)
    tampered = rs["encrypted_content"][:-3] + "xyz"
    foreign = IdGen(seed=99).seal(rs["id"])
    for sealed in (tampered, foreign):
        with pytest.raises(openai.BadRequestError) as info:
            replay = [{**rs, "encrypted_content": sealed}, user("x")]
            zdr_client.responses.create(model=REASONING_MODEL, input=replay, store=False)
        assert "invalid_encrypted_content" == info.value.code


# ---------------------------------------------------------------- the loop, end to end


@pytest.mark.parametrize("stream", [False, True])
def test_run_turn_store_false_replays_whole_history(
    zdr_client: OpenAI, zdr: Emulator, stream: bool
) -> None:
    """Two stateless turns with parallel tool rounds: every request replays, outputs once; the
    caller's include and prompt_cache_key are kept (the loop only adds to them). The request
    carrying the first tool outputs fails twice (dropped after the service ran it, then a
    500): each retry sends the same bytes, nothing twice, nothing lost."""
    t = Tracker(store=False)

    def fail_the_outputs_request(event: object) -> None:
        if isinstance(event, ResponseReceived) and not request_bodies(zdr)[1:]:
            zdr.inject(Fault(drop="after"))
            zdr.inject(Fault(status=500, should_retry=True))

    first = run_turn(
        zdr_client,
        model=REASONING_MODEL,
        input=PROMPT,
        tools=TOOLS,
        tracker=t,
        stream=stream,
        store=False,
        retry=NO_WAIT,
        on_event=fail_the_outputs_request,
    )
    second = run_turn(
        zdr_client,
        model=REASONING_MODEL,
        input="thanks",
        tracker=t,
        stream=stream,
        store=False,
        include=["message.output_text.logprobs"],
        prompt_cache_key="callers-key",
    )
    assert (ANSWER, "You said: thanks") == (first.text, second.text)
    assert [1, 3, 1] == [r.attempts for r in first.requests]
    bodies = request_bodies(zdr)
    assert {False} == {b["store"] for b in bodies}
    keys = [b["prompt_cache_key"] for b in bodies]
    assert [t.prompt_cache_key] * (len(bodies) - 1) + ["callers-key"] == keys
    assert ["message.output_text.logprobs", "reasoning.encrypted_content"] == bodies[-1]["include"]
    assert all("previous_response_id" not in b for b in bodies)
    seen = [o.call_id for r in first.responses for o in r.output if o.type == "function_call"]
    assert _outputs_once(bodies[-1], seen)  # the dropped response's call was never seen
    for body in bodies:  # no item twice in any request (a retry replays the rewound transcript)
        assert len(body["input"]) == len({json.dumps(i) for i in body["input"]})
    sent = [json.dumps(b["input"])[:-1] for b in bodies]  # without the closing bracket
    for before, after in itertools.pairwise(sent):  # byte-stable replay, key order included
        assert before == after[: len(before)]


def test_stateless_turns_on_an_emulator_refusing_referenced_client_calls() -> None:
    """Switch on in emulator and tracker: stateless turns with parallel client calls over
    several steps on a reasoning model, sync plain then async streamed: no 400, outputs once,
    no client call sent by its id beside its output, each request a prefix of the next, and
    each RequestRecord.sent counts the items its body carried (not the reasoning left out)."""
    rules = RuleOptions(reject_referenced_client_calls=True)
    t = Tracker(store=False, rules=rules)
    with Emulator(seed=5, options=rules) as emu:
        with OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as client:
            kwargs: dict[str, Any] = {"model": REASONING_MODEL, "tools": TOOLS, "store": False}
            results = [run_turn(client, input=PROMPT, tracker=t, **kwargs)]

        async def streamed_turn() -> TurnResult:
            async with AsyncOpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as aio:
                return await arun_turn(aio, input=PROMPT, tracker=t, stream=True, **kwargs)

        results.append(asyncio.run(streamed_turn()))
        bodies = request_bodies(emu)
        issued = list(emu.issued_calls())
    assert [ANSWER] * 2 == [r.text for r in results]
    assert [len(b["input"]) for b in bodies] == [q.sent for r in results for q in r.requests]
    assert (6, 6) == (len(bodies), len(issued))  # 3 requests and 3 calls a turn
    assert _outputs_once(bodies[-1], issued)
    assert [] == [v for b in bodies for v in check_input_references(b["input"])]
    assert 1 == sum(i.get("type") == "reasoning" for i in bodies[-1]["input"])  # the answer's
    for before, after in itertools.pairwise(bodies):
        assert before["input"] == after["input"][: len(before["input"])]


class _Killed(BaseException):
    """Stops a worker where a SIGKILL would."""


def test_stateless_session_of_a_killed_worker_is_taken_over(
    zdr_client: OpenAI, zdr: Emulator
) -> None:
    """A worker killed as it sends its tool outputs leaves its last save (lease held): the
    worker taking the session over replays the transcript, runs no tool again and sends the
    turn's input and every output once."""
    ran: list[str] = []
    store, left = MemoryStore(), MemoryStore()

    def killed_while_sending_outputs(event: object) -> None:
        if isinstance(event, RequestSent) and event.index == 1:
            loaded = store.load("s")
            assert loaded is not None
            state = {**loaded.state, "lease": {**loaded.state["lease"], "expires_at": 0.0}}
            left.save("s", state, None)  # what the killed worker left, its lease now expired
            raise _Killed

    kwargs: dict[str, Any] = {"model": REASONING_MODEL, "input": PROMPT, "store": False}
    with pytest.raises(_Killed):
        run_turn(
            zdr_client,
            tools=TOOLS,
            session_store=store,
            session_id="s",
            on_event=killed_while_sending_outputs,
            **kwargs,
        )
    tools = [counting_weather(ran), add]
    result = run_turn(zdr_client, tools=tools, session_store=left, session_id="s", **kwargs)
    bodies = request_bodies(zdr)
    assert (ANSWER, [], 3) == (result.text, ran, len(bodies))  # no weather call run again
    assert 1 == sum(i.get("role") == "user" for i in bodies[-1]["input"])
    assert _outputs_once(bodies[-1], list(zdr.issued_calls()))


def test_stateless_turns_where_complete_items_ids_are_looked_up() -> None:
    """lookup_complete_items_store_false in emulator and tracker: a replayed item's id is the
    404; the tracker strips every id (reasoning's too: kept, its stripped follower would be
    A1), so a stateless turn with a reasoning model and parallel tool rounds has no 4xx."""
    rules = RuleOptions(lookup_complete_items_store_false=True)
    with (
        Emulator(seed=5, options=rules) as emu,
        OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as client,
    ):
        first = client.responses.create(model="emu-1", input="hi", store=False)
        with pytest.raises(openai.NotFoundError, match=first.output[0].id):
            replay = [user("hi"), first.output[0].model_dump(exclude_none=True), user("x")]
            client.responses.create(model="emu-1", input=replay, store=False)
        t = Tracker(store=False, rules=rules)
        kwargs: dict[str, Any] = {"model": REASONING_MODEL, "tools": TOOLS, "store": False}
        result = run_turn(client, input=PROMPT, tracker=t, **kwargs)
        bodies = request_bodies(emu)[2:]
    assert (ANSWER, 3) == (result.text, len(bodies))
    assert [] == [i["id"] for b in bodies for i in b["input"] if "id" in i]
    assert 2 == sum(i.get("type") == "reasoning" for i in bodies[-1]["input"])
    assert _outputs_once(bodies[-1], list(emu.issued_calls()))


def test_run_turn_store_false_refuses_a_stored_chain_without_its_history(
    client: OpenAI, emulator: Emulator
) -> None:
    """store=False on a tracker that continued or joined a stored chain names
    go_stateless(history=...); nothing is sent."""
    t = Tracker()
    first = run_turn(client, model="emu-1", input="hi", tracker=t)
    sent = len(request_bodies(emulator))
    with pytest.raises(TranscriptError, match="go_stateless"):
        run_turn(client, model="emu-1", input="again", tracker=t, store=False)
    joined = Tracker(previous_response_id=first.last_response_id)  # never saw the chain's items
    with pytest.raises(TranscriptError, match="go_stateless"):
        run_turn(client, model="emu-1", input="again", tracker=joined, store=False)
    assert (True, sent) == (joined.store, len(request_bodies(emulator)))


_WORKER = """
import sys
from openai import OpenAI, Stream
from openai.types.responses import Response, ResponseStreamEvent
from tracker.loop import run_turn
from tracker.stores import SQLiteStore, load_tracker, save_tracker
sys.path.insert(0, sys.argv[3])
from _loop_helpers import PROMPT, TOOLS
with OpenAI(base_url=sys.argv[2], api_key="k", max_retries=0) as client:
    r = run_turn(client, model="emu-reason-1", input=PROMPT, tools=TOOLS, store=False,
                 session_store=SQLiteStore(sys.argv[1]), session_id="s")
print(r.text)
"""


@pytest.mark.slow
def test_run_turn_store_false_session_continues_in_another_process(
    zdr_client: OpenAI, zdr: Emulator, tmp_path: Path
) -> None:
    """A stateless session in SQLite: turn 2 runs in a new process, turn 3 back here."""
    store = SQLiteStore(str(tmp_path / "s.db"))
    kwargs: dict[str, Any] = {"model": REASONING_MODEL, "tools": TOOLS, "store": False}
    first = run_turn(zdr_client, input="hi", session_store=store, session_id="s", **kwargs)
    here = str(Path(__file__).parent)
    worker = FreshProcess("_fresh", "run_code", _WORKER, str(tmp_path / "s.db"), zdr.base_url, here)
    out, err = worker.communicate(timeout=120)
    assert 0 == worker.returncode, err
    third = run_turn(zdr_client, input="bye", session_store=store, session_id="s", **kwargs)
    assert ["You said: hi", ANSWER, "You said: bye"] == [
        first.text,
        out.strip(),
        third.text,
    ]
    bodies = request_bodies(zdr)
    assert _outputs_once(bodies[-1], list(zdr.issued_calls()))
    assert 1 == len({b["prompt_cache_key"] for b in bodies})


@pytest.mark.slow
def test_fifty_stateless_turns_resumed_from_sqlite_every_ten_in_a_new_process(
    zdr_client: OpenAI, zdr: Emulator, tmp_path: Path
) -> None:
    """50 stateless turns (reasoning, parallel tool rounds, plain and streamed) on a ZDR
    emulator: the first 10 here, then every 10 in a new process that resumes the session from
    SQLite and saves it back: no error, every output once in what the emulator received."""
    db = str(tmp_path / "s.db")
    store = SQLiteStore(db)
    t = Tracker(store=False)
    block_turns(zdr_client, t, 0, 10)
    save_tracker(store, "s", t, 0)
    for first in range(10, 50, 10):
        worker = FreshProcess("_stateless_turns", "turns_from_sqlite", db, zdr.base_url, first, 10)
        _, err = worker.communicate(timeout=300)
        assert 0 == worker.returncode, err
    t, _ = load_tracker(store, "s")
    bodies = request_bodies(zdr)
    assert 50 + 2 * len(range(0, 50, 3)) == len(bodies)  # a request a turn, 2 per tool round
    assert _outputs_once(bodies[-1], list(zdr.issued_calls()))
    assert bodies[-1]["input"] == list(t.transcript[: len(bodies[-1]["input"])])
    assert {False} == {b["store"] for b in bodies}
    assert 1 == len({b["prompt_cache_key"] for b in bodies})


def test_chain_migrated_to_stateless_continues_over_http(
    client: OpenAI, emulator: Emulator
) -> None:
    """A stored chain handed its history by go_stateless() continues with store=False."""
    t = Tracker()
    first = run_turn(client, model=REASONING_MODEL, input=PROMPT, tools=TOOLS, tracker=t)
    chain: list[Any] = []
    for r in first.responses:  # each response's input items, then its output
        listed = client.responses.input_items.list(r.id, order="asc")
        chain += [i.model_dump(exclude_none=True) for i in listed]
        chain += [i.model_dump(exclude_none=True) for i in r.output]
    t.go_stateless(chain)
    second = run_turn(client, model=REASONING_MODEL, input="bye", tracker=t, store=False)
    assert "You said: bye" == second.text
    last = request_bodies(emulator)[-1]
    assert (False, None) == (last["store"], last.get("previous_response_id"))
    assert _outputs_once(last, list(emulator.issued_calls()))


def test_stateless_compaction_keeps_every_request_bounded(
    zdr_client: OpenAI, zdr: Emulator
) -> None:
    """20 stateless turns with tool rounds and server-side compaction: the transcript keeps only
    what follows the latest compaction item, so no request (nor the snapshot) grows with the
    turns; 0 errors; every call answered, no output twice in a request or after its call's
    boundary."""
    t = Tracker(store=False)
    manage = [{"type": "compaction", "compact_threshold": 1000}]
    for _ in range(20):
        result = run_turn(
            zdr_client,
            model=REASONING_MODEL,
            input=PROMPT,
            tools=TOOLS,
            tracker=t,
            store=False,
            context_management=manage,
        )
        assert (ANSWER, []) == (result.text, list(result.errors))
    bodies = request_bodies(zdr)
    sizes = [len(b["input"]) for b in bodies]
    compacted = [i for i, b in enumerate(bodies) if b["input"][0].get("type") == "compaction"]
    third = len(bodies) // 3
    assert compacted and compacted[0] < third  # compaction started early and kept going
    assert max(sizes[third:]) <= max(sizes[:third])  # bounded: no growth after the first third
    answered: Counter[str] = Counter()
    for body in bodies:
        calls = {i["call_id"] for i in body["input"] if i.get("type") == "function_call"}
        outs = Counter(
            i["call_id"] for i in body["input"] if i.get("type") == "function_call_output"
        )
        assert set(outs) <= calls and {1} >= set(outs.values())  # no orphan, none twice
        answered.update(outs.keys())
    assert set(zdr.issued_calls()) == set(answered)
    assert len(t.transcript) <= max(sizes)
