"""Histories edited behind the chain (issue 13): detected on prepare, restarted or raised."""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import pytest
from _builders import said_as, user
from _examples import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from openai import OpenAI

from tracker import EditedHistoryError, HistoryError, Tracker, UsageError
from tracker._rules import RuleOptions, check_input_references
from tracker.emulator import Emulator


def _run(t: Tracker, history: list[Any], rid: str, *output: dict[str, Any]) -> Any:
    """One whole-history turn: prepare, mark sent, observe ``output`` as response ``rid``."""
    p = t.prepare(history)
    t.mark_sent(p)
    t.observe_response({"id": rid, "output": list(output)})
    return p


def _two_turns(t: Tracker) -> list[Any]:
    """Run two turns; return the history the chain then holds (inputs and outputs)."""
    history: list[Any] = [user("hi")]
    _run(t, history, "resp_1", said_as("msg_1", "yo"))
    history += [said_as("msg_1", "yo"), user("again")]
    _run(t, history, "resp_2", said_as("msg_2", "ok"))
    return [*history, said_as("msg_2", "ok")]


def test_unedited_whole_history_sends_only_the_new_items() -> None:
    """No edit: the delta is the new message, the chain continues, nothing is restarted."""
    t = Tracker()
    history = [*_two_turns(t), user("three")]
    p = t.prepare(history)
    assert ((user("three"),), "resp_2", None) == (p.input, p.previous_response_id, p.restarted)


def test_edited_item_restarts_the_chain_with_the_whole_history() -> None:
    """An edited message: the request is the whole edited history, with no previous response."""
    t = Tracker()
    history = _two_turns(t)
    history[1] = said_as("msg_1", "EDITED")
    history.append(user("three"))
    p = t.prepare(history)
    assert (tuple(history), None) == (p.input, p.previous_response_id)
    assert (1, "msg_1") == (p.restarted.index, p.restarted.item_id)
    t.mark_sent(p)
    t.observe_response({"id": "resp_3", "output": [said_as("msg_3", "fine")]})
    nxt = t.prepare([*history, said_as("msg_3", "fine"), user("four")])
    assert ((user("four"),), "resp_3", None) == (
        nxt.input,
        nxt.previous_response_id,
        nxt.restarted,
    )


def test_on_edit_raise_names_the_item_and_leaves_the_tracker_unchanged() -> None:
    """on_edit='raise': EditedHistoryError names index and id and the fix; state unchanged."""
    t = Tracker(on_edit="raise")
    history = _two_turns(t)
    before = t.to_state()
    history[1] = said_as("msg_1", "EDITED")
    with pytest.raises(EditedHistoryError) as info:
        t.prepare(history)
    assert (1, "msg_1") == (info.value.index, info.value.item_id)
    assert "items[1] (message id=msg_1)" in str(info.value)
    assert "on_edit='restart'" in str(info.value)
    assert before == t.to_state()


@pytest.mark.parametrize(
    ("edit", "index"),
    [
        (lambda h: h[1:], 0),  # a trimming step drops the oldest item
        (lambda h: h[:2] + h[3:], 2),  # an item removed in the middle
        (lambda h: [user("system says"), *h], 0),  # an item inserted at the front
        (lambda h: h[:2], 2),  # the last item passed removed
        (lambda h: [{**h[0], "content": "HI"}, *h[1:]], 0),  # the first item changed
    ],
    ids=["trim-front", "remove-middle", "insert-front", "remove-last", "change-first"],
)
def test_every_kind_of_edit_is_detected(edit: Any, index: int) -> None:
    """Trimmed, removed, inserted and changed items are each an edit at the first difference."""
    t = Tracker(on_edit="raise")
    history = _two_turns(t)
    with pytest.raises(EditedHistoryError) as info:
        t.prepare(edit(history))
    assert index == info.value.index


def test_rebuilt_copies_of_the_history_are_not_an_edit() -> None:
    """A history rebuilt from storage (equal copies, not the same objects) is unedited."""
    t = Tracker(on_edit="raise")
    history = copy.deepcopy(_two_turns(t))
    p = t.prepare([*history, user("three")])
    assert ((user("three"),), None) == (p.input, p.restarted)


def test_new_items_alone_are_never_taken_for_an_edit() -> None:
    """A caller passing only new items (the default content_match) is never restarted."""
    t = Tracker(on_edit="raise")
    _run(t, [user("one")], "resp_1", said_as("msg_1", "a"))
    _run(t, [said_as("msg_1", "a"), user("two")], "resp_2", said_as("msg_2", "b"))
    p = t.prepare([user("three")])
    assert ((user("three"),), "resp_2", None) == (p.input, p.previous_response_id, p.restarted)


def test_conversation_edit_raises_even_under_restart() -> None:
    """A conversation cannot be restarted by the tracker: the edit raises, naming the fix."""
    t = Tracker(conversation_id="conv_1")
    history = _two_turns(t)
    history[0] = user("HI")
    with pytest.raises(EditedHistoryError, match="start a new conversation"):
        t.prepare(history)


def test_stateless_edit_replaces_the_transcript_and_keeps_the_cache_key() -> None:
    """store=False: the edited history is sent as is (no stale replay), same cache key."""
    t = Tracker(store=False)
    key = t.prompt_cache_key
    history = _two_turns(t)
    history[2] = user("AGAIN")
    p = t.prepare(history)
    assert (tuple(history), 0, 2) == (p.input, p.replayed, p.restarted.index)
    t.mark_sent(p)
    t.observe_response({"id": "resp_3", "store": False, "output": [said_as("msg_3", "c")]})
    assert ([*history, said_as("msg_3", "c")], key) == (list(t.transcript), t.prompt_cache_key)


def test_rewound_restart_returns_to_the_old_chain() -> None:
    """A restart whose request failed is rewound: the old chain and history are back."""
    t = Tracker()
    history = _two_turns(t)
    before = t.to_state()
    edited = [user("HI"), *history[1:]]
    p = t.prepare(edited)
    t.mark_sent(p)
    t.rewind(p)
    assert before == t.to_state()
    assert (tuple(edited), 0) == (t.prepare(edited).input, t.prepare(edited).restarted.index)


def test_restart_refused_while_another_request_is_in_flight() -> None:
    """Marking a restart while another request awaits its response is a UsageError."""
    t = Tracker()
    history = _two_turns(t)
    restart = t.prepare([user("HI"), *history[1:]])
    t.mark_sent(t.prepare([*history, user("other")]))
    with pytest.raises(UsageError, match="another request is in flight"):
        t.mark_sent(restart)


def test_edit_check_survives_the_snapshot() -> None:
    """from_state(to_state()) (JSON) still sees an edit, and an unedited history is not one."""
    t = Tracker()
    history = _two_turns(t)
    state = json.loads(json.dumps(t.to_state()))
    assert 3 == len(state["history"])  # the items passed (msg_2 never was)
    restored = Tracker.from_state(state, on_edit="raise")
    assert (user("x"),) == restored.prepare([*history, user("x")]).input
    with pytest.raises(EditedHistoryError):
        restored.prepare([history[0], said_as("msg_1", "EDITED"), *history[2:]])


def test_version_2_snapshot_without_history_still_loads() -> None:
    """A snapshot written before the history field (version 2) restores; no edit check yet."""
    t = Tracker()
    history = _two_turns(t)
    state = t.to_state()
    del state["history"], state["call_types"]
    state["version"] = 2
    restored = Tracker.from_state(state)
    assert (user("x"),) == restored.prepare([*history, user("x")]).input


def test_on_edit_must_be_restart_or_raise() -> None:
    """An unknown on_edit value is refused, naming the choices."""
    with pytest.raises(UsageError, match="'restart' or 'raise'"):
        Tracker(on_edit="ignore")  # type: ignore[arg-type]


def _reasoning(item_id: str) -> dict[str, Any]:
    return {"type": "reasoning", "id": item_id, "summary": [], "encrypted_content": "gAAA"}


def _reasoned_chain(t: Tracker) -> list[Any]:
    """Two turns whose answers each follow a reasoning item; the history the caller holds."""
    history: list[Any] = [user("hi")]
    _run(t, history, "resp_1", _reasoning("rs_1"), said_as("msg_1", "yo"))
    history += [_reasoning("rs_1"), said_as("msg_1", "yo"), user("again")]
    _run(t, history, "resp_2", _reasoning("rs_2"), said_as("msg_2", "ok"))
    return [*history, _reasoning("rs_2"), said_as("msg_2", "ok"), user("three")]


@pytest.mark.parametrize(
    ("cut", "gone"),
    [(2, ["rs_1"]), (1, ["msg_1"])],
    ids=["answer-trimmed", "reasoning-trimmed"],
)
def test_restart_drops_a_reasoning_group_the_edit_split(cut: int, gone: list[str]) -> None:
    """check='repair': a reasoning item whose answer was trimmed (or the answer whose
    reasoning was) is dropped with its group, reported as drop_reasoning_group."""
    t = Tracker(check="repair")
    history = _reasoned_chain(t)
    del history[cut]
    p = t.prepare(history)
    kept = [i for i in history if i.get("id") not in gone]
    assert (tuple(kept), None) == (p.input, p.previous_response_id)
    assert [("drop_reasoning_group", gone[0])] == [(a.kind, a.item_id) for a in p.repairs]


def test_restart_drops_every_parallel_call_of_a_trimmed_reasoning_item() -> None:
    """Parallel calls emitted after one reasoning item all need it (A2): trimming it drops
    each call of its group (their outputs then go as orphans), not only the first."""
    t = Tracker(check="repair")
    calls = [{**_CALL, "id": f"fc_{n}", "call_id": f"call_{n}"} for n in (1, 2)]
    outs = [{**_OUT, "call_id": f"call_{n}"} for n in (1, 2)]
    history: list[Any] = [user("hi")]
    _run(t, history, "resp_1", _reasoning("rs_1"), *calls)
    history += [_reasoning("rs_1"), *calls, *outs]
    _run(t, history, "resp_2", said_as("msg_2", "ok"))
    history += [said_as("msg_2", "ok"), user("more")]
    del history[1]  # a trimming step drops the reasoning item
    p = t.prepare(history)
    assert (user("hi"), said_as("msg_2", "ok"), user("more")) == p.input
    dropped = [a.item_id for a in p.repairs if a.kind == "drop_reasoning_group"]
    assert ["fc_1", "fc_2"] == dropped


def test_restart_with_a_split_reasoning_group_raises_under_check_raise() -> None:
    """check='raise' (the default): the split group is a HistoryError naming both items."""
    t = Tracker()
    history = _reasoned_chain(t)
    del history[2]  # msg_1: rs_1 would be sent without its following item (400 A1)
    with pytest.raises(HistoryError, match="reasoning rs_1 and msg_1"):
        t.prepare(history)


def test_an_answer_edited_in_its_place_keeps_its_reasoning() -> None:
    """An item edited under its own id stays with its reasoning: nothing is dropped."""
    t = Tracker(check="repair")
    history = _reasoned_chain(t)
    history[2] = said_as("msg_1", "EDITED")
    p = t.prepare(history)
    assert (tuple(history), ()) == (p.input, p.repairs)


_CALL = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f", "arguments": ""}
_OUT = {"type": "function_call_output", "call_id": "call_1", "output": "ok"}


@pytest.mark.parametrize("by_reference", [False, True], ids=["inline", "item_reference"])
def test_restart_under_the_switch_never_sends_a_client_call_by_its_id(by_reference: bool) -> None:
    """reject_referenced_client_calls: an inline call goes without its fc_ id; one passed as an
    item_reference (which the tracker cannot inline) is refused before sending (a fresh chain
    holds no such call: P2), tracker unchanged."""
    t = Tracker(rules=RuleOptions(reject_referenced_client_calls=True))
    history: list[Any] = [user("hi")]
    _run(t, history, "resp_1", said_as("msg_1", "yo"))
    history += [said_as("msg_1", "yo"), user("go")]
    _run(t, history, "resp_2", _CALL)
    history += [_CALL, _OUT]
    _run(t, history, "resp_3", said_as("msg_3", "ok"))
    call = {"type": "item_reference", "id": "fc_1"} if by_reference else _CALL
    edited = [
        user("hi"),
        said_as("msg_1", "EDITED"),
        user("go"),
        call,
        _OUT,
        said_as("msg_3", "ok"),
    ]
    before = t.to_state()
    if by_reference:
        with pytest.raises(HistoryError, match="call_1"):
            t.prepare(edited)
        assert before == t.to_state()
        return
    bare = {k: v for k, v in _CALL.items() if k != "id"}
    assert [*edited[:3], bare, *edited[4:]] == t.prepare(edited).request_input()


# ---------------------------------------------------------------- properties


def _history(n: int) -> list[dict[str, Any]]:
    """``n`` items, user and assistant by turns, every content distinct."""
    return [user(f"u{i}") if i % 2 == 0 else said_as(f"msg_{i}", f"a{i}") for i in range(n)]


def _held_tracker(history: list[Any], turns: int) -> Tracker:
    """A raising tracker that passed ``history`` whole, in ``turns`` growing prefixes."""
    t = Tracker(on_edit="raise")
    cuts = sorted({max(1, len(history) * (k + 1) // turns) for k in range(turns)})
    for k, cut in enumerate(cuts):
        _run(t, history[:cut], f"resp_{k}")
    return t


@settings(max_examples=examples(60), deadline=None)
@given(
    n=st.integers(min_value=2, max_value=12),
    turns=st.integers(min_value=1, max_value=3),
    kind=st.sampled_from(["change", "remove", "insert"]),
    data=st.data(),
)
def test_random_edits_behind_the_chain_are_always_detected(
    n: int, turns: int, kind: str, data: st.DataObject
) -> None:
    """Any one changed, removed or inserted item at any held position raises, at its index."""
    history = _history(n)
    t = _held_tracker(history, turns)
    i = data.draw(st.integers(min_value=0, max_value=n - 1), label="position")
    edited = list(history)
    if kind == "change":
        edited[i] = {**edited[i], "content": "EDITED"}
    elif kind == "remove":
        del edited[i]
    else:
        edited.insert(i, user("inserted"))
    with pytest.raises(EditedHistoryError) as info:
        t.prepare([*edited, user("next")])
    assert i == info.value.index


@settings(max_examples=examples(40), deadline=None)
@given(
    n=st.integers(min_value=1, max_value=12),
    turns=st.integers(min_value=1, max_value=3),
    rebuilt=st.booleans(),
    restored=st.booleans(),
)
def test_unedited_histories_never_trigger(
    n: int, turns: int, rebuilt: bool, restored: bool
) -> None:
    """The same history (same objects, equal copies, or after a restore) is never an edit."""
    history = _history(n)
    t = _held_tracker(history, turns)
    if restored:
        t = Tracker.from_state(t.to_state(), on_edit="raise")
    again = copy.deepcopy(history) if rebuilt else history
    p = t.prepare([*again, user("next")])
    assert ((user("next"),), None) == (p.input, p.restarted)


# ---------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def emu() -> Any:
    """One emulator for this module's end-to-end test."""
    with Emulator(seed=3) as e:
        yield e


def test_edited_history_over_http_restarts_or_raises(emu: Emulator) -> None:
    """Real client, reasoning model: a trimmed history restarts as a new chain with the whole
    edited history (its split reasoning group dropped, no 4xx); on_edit='raise' raises and
    leaves the tracker unchanged, sending nothing."""
    with OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as client:
        trackers = {"restart": Tracker(check="repair"), "raise": Tracker(on_edit="raise")}
        histories: dict[str, list[Any]] = {}
        for policy, t in trackers.items():
            history: list[Any] = [user(f"hello {policy}")]
            for text in ("two", "three"):
                p = t.prepare(history)
                t.mark_sent(p)
                r = client.responses.create(model="emu-reason-1", **p.request_kwargs())
                t.observe_response(r)
                history += [*(o.model_dump(exclude_none=True) for o in r.output), user(text)]
            histories[policy] = history
        sent = len(emu.requests_to("/v1/responses"))
        # a trimming step drops the first message and reasoning item: the answer is orphaned
        edited = histories["restart"][2:]
        answer = edited[0]["id"]
        p = trackers["restart"].prepare(edited)
        trackers["restart"].mark_sent(p)
        r = client.responses.create(model="emu-reason-1", **p.request_kwargs())
        trackers["restart"].observe_response(r)
        body = emu.requests_to("/v1/responses")[-1]
        assert (0, None) == (p.restarted.index, body.get("previous_response_id"))
        assert [answer] == [a.item_id for a in p.repairs]
        assert [i for i in edited if i.get("id") != answer] == body["input"]
        assert r.id == trackers["restart"].previous_response_id
        before = trackers["raise"].to_state()
        with pytest.raises(EditedHistoryError):
            trackers["raise"].prepare(histories["raise"][2:])
        after = len(emu.requests_to("/v1/responses"))
        assert (before, sent + 1) == (trackers["raise"].to_state(), after)


_SPEC = [{"type": "function", "name": n, "parameters": {}} for n in ("weather", "add")]
_PROMPT = 'weather({"city": "Paris"}) weather({"city": "Rome"}) then add({"a": 2, "b": 3})'


def _tool_turn(
    client: OpenAI, t: Tracker, history: list[Any], *, keep_reasoning: bool = True, **kwargs: Any
) -> None:
    """Whole-history requests to the answer, each round of parallel calls answered "ok"
    (``kwargs`` go to each request; ``keep_reasoning=False``: ``history`` leaves it out)."""
    while True:
        p = t.prepare(history)
        t.mark_sent(p)
        r = client.responses.create(
            model="emu-reason-1", tools=_SPEC, **p.request_kwargs(), **kwargs
        )
        t.observe_response(r)
        output = [o.model_dump(exclude_none=True) for o in r.output]
        if not keep_reasoning:
            output = [o for o in output if o["type"] != "reasoning"]
        history += output
        calls = [o["call_id"] for o in output if o["type"] == "function_call"]
        if not calls:
            return
        history += [{"type": "function_call_output", "call_id": c, "output": "ok"} for c in calls]


def test_edit_restart_under_the_switch_sends_client_calls_without_ids() -> None:
    """reject_referenced_client_calls on both sides: a chain with parallel client calls over
    several steps, its first message edited: the restart is accepted, outputs once."""
    rules = RuleOptions(reject_referenced_client_calls=True)
    t = Tracker(rules=rules)
    with (
        Emulator(seed=6, options=rules) as e,
        OpenAI(base_url=e.base_url, api_key="k", max_retries=0) as client,
    ):
        history: list[Any] = [user(_PROMPT)]
        _tool_turn(client, t, history)
        history[0] = user(_PROMPT + " please")
        history.append(user("thanks"))
        p = t.prepare(history)
        t.mark_sent(p)
        r = client.responses.create(model="emu-reason-1", tools=_SPEC, **p.request_kwargs())
        t.observe_response(r)
        body = e.requests_to("/v1/responses")[-1]
        issued = list(e.issued_calls())
    outputs = [i["call_id"] for i in body["input"] if i.get("type") == "function_call_output"]
    assert (0, None, "You said: thanks") == (
        p.restarted.index,
        p.previous_response_id,
        r.output_text,
    )
    assert (3, dict.fromkeys(issued, 1)) == (len(issued), dict(Counter(outputs)))
    assert [] == check_input_references(body["input"])
    assert r.id == t.previous_response_id


@pytest.mark.parametrize("store", [True, False], ids=["chain", "stateless"])
def test_restart_keeps_reasoning_groups_the_callers_history_never_held(
    emu: Emulator, store: bool
) -> None:
    """A caller whose whole history leaves reasoning out: an edit restarts with the groups
    known from the responses observed (and the stateless transcript), so the items whose
    reasoning the history lacks are dropped (check='repair') and the service gets no A2/A3."""
    t = Tracker(store=store, check="repair")
    extra: dict[str, Any] = {} if store else {"store": False}
    with OpenAI(base_url=emu.base_url, api_key="k", max_retries=0) as client:
        history: list[Any] = [user(_PROMPT)]
        _tool_turn(client, t, history, keep_reasoning=False, **extra)
        history[0] = user(_PROMPT + " please")
        history.append(user("thanks"))
        p = t.prepare(history)
        t.mark_sent(p)
        r = client.responses.create(model="emu-reason-1", **p.request_kwargs(), **extra)
        t.observe_response(r)
    emitted = [i["id"] for i in history if "id" in i]  # 3 calls and the answer, each reasoned
    dropped = [a.item_id for a in p.repairs if a.kind == "drop_reasoning_group"]
    assert (0, "You said: thanks") == (p.restarted.index, r.output_text)
    assert (4, emitted) == (len(emitted), dropped)
