"""tracker.agents: the drop-in tracker decides exactly as openai-agents' class, in O(1) checks."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

import agents.run
import agents.run_internal.agent_runner_helpers as helpers_module
import agents.run_internal.oai_conversation as sdk_module
import agents.run_internal.run_loop as run_loop_module
import agents.run_internal.session_persistence as session_module
import pytest
from _examples import examples
from agents import Agent
from agents.exceptions import UserError
from agents.items import (
    InputItem,
    MessageOutputItem,
    ModelResponse,
    ToolApprovalItem,
    ToolCallItem,
    ToolCallOutputItem,
)
from agents.usage import Usage
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

import tracker.agents
from tracker import TrackerError
from tracker.agents import OpenAIServerConversationTracker as Ours
from tracker.agents import TrackedObjects, UnsupportedVersionError

Sdk = sdk_module.OpenAIServerConversationTracker
AGENT = Agent(name="unit")
SDK_USERS = (agents.run, run_loop_module, session_module, helpers_module, sdk_module)


def fc(n: int) -> ResponseFunctionToolCall:
    """The model's n-th function call."""
    return ResponseFunctionToolCall(
        id=f"fc_{n:04d}",
        type="function_call",
        call_id=f"call_{n:04d}",
        name="add",
        arguments=f'{{"a": {n}}}',
        status="completed",
    )


def output_item(n: int, text: str | None = None) -> ToolCallOutputItem:
    """The tool's output for call n, as the runner holds it (a fresh dict)."""
    raw = {"type": "function_call_output", "call_id": f"call_{n:04d}", "output": text or str(n)}
    return ToolCallOutputItem(agent=AGENT, raw_item=raw, output=raw["output"])


def message(n: int) -> ResponseOutputMessage:
    """An assistant message from the model."""
    return ResponseOutputMessage(
        id=f"msg_{n:04d}",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(type="output_text", text=f"m{n}", annotations=[])],
    )


def respond(items: list[Any], n: int, response_id: str | None = "auto") -> ModelResponse:
    """A model response carrying ``items``."""
    rid = f"resp_{n:04d}" if response_id == "auto" else response_id
    return ModelResponse(output=list(items), usage=Usage(), response_id=rid)


def plain(item: Any) -> Any:
    """An item's content, for comparing objects held by two different trackers."""
    return item.model_dump() if hasattr(item, "model_dump") else item


def snapshot(t: Any) -> dict[str, Any]:
    """Everything a tracker decided, in a form both classes can be compared by."""
    return {
        "sent_items": [plain(x) for x in t.sent_items],
        "server_items": [plain(x) for x in t.server_items],
        "server_item_ids": set(t.server_item_ids),
        "server_tool_call_ids": set(t.server_tool_call_ids),
        "server_output_fingerprints": set(t.server_output_fingerprints),
        "sent_item_fingerprints": set(t.sent_item_fingerprints),
        "accepted_input_item_ids": set(t.accepted_input_item_ids),
        "remaining_initial_input": t.remaining_initial_input,
        "sent_initial_input": t.sent_initial_input,
        "primed_from_state": t.primed_from_state,
        "previous_response_id": t.previous_response_id,
    }


# ---- install / uninstall ---------------------------------------------------------------


def test_install_swaps_every_module_and_uninstall_restores_exactly() -> None:
    """install() puts our class in every agents module holding the SDK's; uninstall() undoes it."""
    assert not tracker.agents.is_installed()
    tracker.agents.install()
    try:
        assert [Ours] * len(SDK_USERS) == [m.OpenAIServerConversationTracker for m in SDK_USERS]
        assert tracker.agents.is_installed()
    finally:
        tracker.agents.uninstall()
    assert [Sdk] * len(SDK_USERS) == [m.OpenAIServerConversationTracker for m in SDK_USERS]
    assert not tracker.agents.is_installed()


def test_installed_context_nests_and_restores_on_error() -> None:
    """Nested installed() blocks restore only at the outermost exit, also after an exception."""
    with pytest.raises(KeyError), tracker.agents.installed():
        with tracker.agents.installed():
            assert tracker.agents.is_installed()
        assert tracker.agents.is_installed()
        raise KeyError("boom")
    assert Sdk is agents.run.OpenAIServerConversationTracker


def test_uninstall_without_install_changes_nothing() -> None:
    """uninstall() when nothing is installed leaves the SDK's class in place."""
    tracker.agents.uninstall()
    assert Sdk is agents.run.OpenAIServerConversationTracker


def test_import_tracker_does_not_import_tracker_agents() -> None:
    """``import tracker`` alone never loads the openai-agents adapter."""
    code = (
        "import sys, tracker; sys.exit('tracker.agents' in sys.modules or 'agents' in sys.modules)"
    )
    import subprocess

    assert 0 == subprocess.run([sys.executable, "-c", code], check=False).returncode


@pytest.mark.parametrize(
    "version", ["0.4.0", "0.7.0", "0.8.0", "0.14.8", "0.17.6", "0.19.4", "0.20.0", "0.24.9"]
)
def test_supported_versions_pass_the_check(version: str) -> None:
    """Versions in the supported range are accepted."""
    assert version == tracker.agents.check_version(version)


@pytest.mark.parametrize("version", ["0.3.3", "0.2.0", "0.25.0", "1.0.0", "garbage"])
def test_unsupported_versions_fail_loudly(version: str) -> None:
    """Versions outside the range raise UnsupportedVersionError naming the version and the fix."""
    with pytest.raises(UnsupportedVersionError, match=version) as info:
        tracker.agents.check_version(version)
    assert isinstance(info.value, TrackerError)
    assert isinstance(info.value, ImportError)
    assert "pip install" in str(info.value)


def test_install_on_an_unsupported_version_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """install() refuses an unsupported openai-agents and leaves the SDK's class in place."""
    monkeypatch.setattr(tracker.agents.metadata, "version", lambda _name: "0.3.0")
    with pytest.raises(UnsupportedVersionError):
        tracker.agents.install()
    assert Sdk is agents.run.OpenAIServerConversationTracker


def test_import_on_a_release_without_the_tracker_class_names_the_supported_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A release whose tracker class is missing (0.3.x) is refused at import with the range."""
    import importlib.util
    from importlib import metadata

    real = metadata.version
    monkeypatch.setattr(
        metadata, "version", lambda name: "0.3.0" if name == "openai-agents" else real(name)
    )
    path = Path(tracker.agents.__file__)
    spec = importlib.util.spec_from_file_location(
        "tracker.agents", path, submodule_search_locations=[str(path.parent)]
    )
    assert spec is not None and spec.loader is not None
    fresh = importlib.util.module_from_spec(spec)  # run beside the loaded one, not over it
    with pytest.raises(UnsupportedVersionError) as info:
        spec.loader.exec_module(fresh)
    assert "0.3.0" == info.value.version
    assert "agents.run._ServerConversationTracker" in str(info.value)
    assert "pip install 'openai-agents>=0.4.0,<0.25'" in str(info.value)
    assert Sdk is agents.run.OpenAIServerConversationTracker


# ---- TrackedObjects ----------------------------------------------------------------------


def test_tracked_objects_behave_like_the_sdk_list_by_identity() -> None:
    """Equal-but-distinct dicts are different members; append is idempotent; == compares lists."""
    a, b = {"x": 1}, {"x": 1}
    tracked = TrackedObjects([a])
    tracked.append(a)
    assert 1 == len(tracked)
    assert a in tracked
    assert b not in tracked
    tracked.append(b)
    assert [a, b] == list(tracked)
    assert [a, b] == tracked
    tracked.remove(a)
    assert [b] == tracked
    with pytest.raises(ValueError, match="not tracked"):
        tracked.remove(a)
    tracked.discard(a)
    tracked.clear()
    assert [] == tracked


def test_tracked_objects_never_match_by_a_reused_address() -> None:
    """A fresh object at a freed address is not 'tracked': members are held alive."""
    tracked = TrackedObjects()
    tracked.append({"type": "function_call_output", "call_id": "call_old", "output": "1"})
    for _ in range(200):
        fresh = {"type": "function_call_output", "call_id": "call_new", "output": "2"}
        assert fresh not in tracked
    gc.collect()
    assert 1 == len(tracked)


def test_a_run_item_class_with_its_own_attribute_lookup_is_read_through_it() -> None:
    """The fast raw_item read is used only for the SDK's lookup; an override is honoured."""

    class Redirected(ToolCallOutputItem):
        def __getattribute__(self, name: str) -> Any:
            if name == "raw_item":
                return object.__getattribute__(self, "output_raw")
            return super().__getattribute__(name)

    held = output_item(1)
    redirected = Redirected(agent=AGENT, raw_item={"stale": True}, output="2")
    object.__setattr__(redirected, "output_raw", output_item(2).raw_item)
    for cls in (Sdk, Ours):
        t = cls(previous_response_id="resp_0")
        t.mark_input_as_sent(t.prepare_input([], [held]))
        assert [redirected.raw_item] == t.prepare_input([], [held, redirected])


# ---- decisions: same as the SDK's class -------------------------------------------------


def test_runner_pattern_sends_only_new_items_and_matches_the_sdk() -> None:
    """Many turns of the runner's pattern: same deltas and state as the SDK; each output once."""
    trackers = [Sdk(auto_previous_response_id=True), Ours(auto_previous_response_id=True)]
    generated: list[Any] = []
    sent_outputs: list[list[str]] = [[], []]
    for turn in range(15):
        response = respond([fc(turn)], turn)
        for index, t in enumerate(trackers):
            prepared = t.prepare_input("hello", generated)
            t.mark_input_as_sent(prepared)
            t.track_server_items(response)
            sent_outputs[index] += [
                i["call_id"] for i in prepared if isinstance(i, dict) and "output" in i
            ]
        generated += [ToolCallItem(agent=AGENT, raw_item=fc(turn)), output_item(turn)]
        gc.collect(0)  # young generation: the dead objects are freed by refcount already
        assert snapshot(trackers[0]) == snapshot(trackers[1])
    assert [f"call_{n:04d}" for n in range(14)] == sent_outputs[1]
    assert sent_outputs[0] == sent_outputs[1]
    assert "resp_0014" == trackers[1].previous_response_id


def test_fresh_output_is_sent_after_old_objects_die() -> None:
    """GC churn between turns never makes a fresh function_call_output look already sent."""
    t = Ours(previous_response_id="resp_0")
    history: list[Any] = []
    for turn in range(20):
        history.append(output_item(turn))
        prepared = t.prepare_input([], history)
        assert [f"call_{turn:04d}"] == [i["call_id"] for i in prepared]
        t.mark_input_as_sent(prepared)
        # Free many item-shaped dicts so the next fresh output likely reuses an address.
        garbage = [output_item(-1 - n).raw_item for n in range(200)]
        del prepared, garbage
        gc.collect(0)


def test_rewind_queues_items_again_exactly_as_the_sdk_does() -> None:
    """A rewound request is queued for resending; the next turns decide exactly as the SDK's."""
    trackers = [Sdk(previous_response_id="resp_0"), Ours(previous_response_id="resp_0")]
    generated = [output_item(1), output_item(2)]
    results = []
    for t in trackers:
        first = t.prepare_input([{"role": "user", "content": "hi"}], generated)
        t.mark_input_as_sent(first)
        t.rewind_input(first)
        second = t.prepare_input([{"role": "user", "content": "hi"}], generated)
        t.mark_input_as_sent(second)
        third = t.prepare_input([{"role": "user", "content": "hi"}], generated)
        results.append((first, second, third, snapshot(t)))
    assert results[0] == results[1]
    assert {"call_0001", "call_0002"} <= {i.get("call_id") for i in results[1][1]}
    assert [] == results[1][2]


def test_hydrate_matches_the_sdk_and_keeps_unsent_outputs() -> None:
    """hydrate_from_state seeds the same ids, fingerprints and chain; unsent outputs stay unsent."""
    generated: list[Any] = [InputItem(agent=AGENT, raw_item={"role": "user", "content": "more"})]
    responses = []
    for n in range(6):
        generated += [ToolCallItem(agent=AGENT, raw_item=fc(n)), output_item(n)]
        responses.append(respond([fc(n)], n, response_id=None if n == 5 else "auto"))
    generated.append(MessageOutputItem(agent=AGENT, raw_item=message(9)))
    approval = ToolApprovalItem(agent=AGENT, raw_item=fc(7))
    generated += [approval, output_item(7)]
    results = []
    for cls in (Sdk, Ours):
        t = cls(previous_response_id="resp_x")
        t.hydrate_from_state(
            original_input=[{"role": "user", "content": "start"}],
            generated_items=generated,
            model_responses=responses,
            session_items=[{"id": "msg_s", "type": "message", "role": "user", "content": "s"}],
            unsent_tool_call_ids={"call_0007"},
        )
        rebuilt = [ToolCallItem(agent=AGENT, raw_item=fc(3)), output_item(3), output_item(8)]
        prepared = t.prepare_input("ignored after hydrate", generated + rebuilt)
        results.append((snapshot(t) | {"sent_items": len(t.sent_items)}, prepared))
    assert results[0] == results[1]
    assert ["call_0007", "call_0008"] == [i["call_id"] for i in results[1][1]]
    assert "resp_0004" == results[1][0]["previous_response_id"]


def test_filter_that_rebuilds_items_maps_back_to_their_sources() -> None:
    """Items rebuilt by an input filter are marked on their original objects, like the SDK."""
    for cls in (Sdk, Ours):
        t = cls(previous_response_id="resp_0")
        raw_history = [output_item(1), output_item(2)]
        prepared = t.prepare_input([], raw_history)
        rebuilt = [dict(item) for item in prepared]
        t.validate_pending_input_filter(rebuilt)
        t.mark_input_as_sent(rebuilt)
        assert [id(i.raw_item) for i in raw_history] == [id(x) for x in t.sent_items]
        assert [] == t.prepare_input([], raw_history)


def test_ambiguous_filter_rewrite_of_pending_input_is_rejected() -> None:
    """A filter output that cannot be traced to pending RunState input raises UserError."""
    messages = []
    for cls in (Sdk, Ours):
        t = cls(previous_response_id="resp_0", sent_initial_input=True)
        pending = InputItem(agent=AGENT, raw_item={"role": "user", "content": "again"})
        t.prepare_input([], [pending])
        with pytest.raises(UserError, match="cannot safely associate") as info:
            t.validate_pending_input_filter([{"role": "user", "content": "rewritten"}])
        messages.append(str(info.value))
        t.validate_pending_input_filter([])
    assert 2 == len(messages)


def test_mark_input_as_accepted_returns_pending_ids() -> None:
    """mark_input_as_accepted reports and records the pending-input ids it saw, like the SDK."""
    results = []
    for cls in (Sdk, Ours):
        t = cls(conversation_id="conv_1", sent_initial_input=True)
        pending = InputItem(
            agent=AGENT, raw_item={"role": "user", "content": "late"}, input_id="p1"
        )
        prepared = t.prepare_input([], [pending])
        t.mark_input_as_sent(prepared)
        results.append((t.mark_input_as_accepted(prepared), t.prepare_input([], [pending])))
    assert [({"p1"}, []), ({"p1"}, [])] == results


# ---- property: random runs decide the same as the SDK ------------------------------------

OPS = st.lists(
    st.sampled_from(["round", "turn", "retry", "input", "approval", "message", "churn"]),
    min_size=1,
    max_size=40,
)


@settings(max_examples=examples(30), deadline=None)
@given(ops=OPS, chained=st.sampled_from(["auto", "previous", "conversation"]))
def test_random_runs_decide_like_the_sdk(ops: list[str], chained: str) -> None:
    """Random interleavings of the runner's calls give identical deltas and state in both."""
    options = {
        "auto": {"auto_previous_response_id": True},
        "previous": {"previous_response_id": "resp_start"},
        "conversation": {"conversation_id": "conv_1"},
    }[chained]
    trackers = [Sdk(**options), Ours(**options)]
    original = [{"role": "user", "content": "go"}]
    generated: list[Any] = []
    for step, op in enumerate(ops):
        if op == "round":
            call = fc(step)
            for t in trackers:
                t.track_server_items(respond([call], step))
            generated += [ToolCallItem(agent=AGENT, raw_item=call), output_item(step)]
        elif op == "input":
            generated.append(InputItem(agent=AGENT, raw_item={"role": "user", "content": "x"}))
        elif op == "approval":
            generated.append(ToolApprovalItem(agent=AGENT, raw_item=fc(step)))
        elif op == "message":
            generated.append(MessageOutputItem(agent=AGENT, raw_item=message(step)))
        elif op == "churn":
            generated = [g for g in generated if not isinstance(g, ToolApprovalItem)]
            gc.collect(0)
        else:
            prepared = [t.prepare_input(original, generated) for t in trackers]
            assert prepared[0] == prepared[1]
            for t, items in zip(trackers, prepared, strict=True):
                t.mark_input_as_sent(items)
                if op == "retry":
                    t.rewind_input(items)
                else:
                    t.mark_input_as_accepted(items)
        assert snapshot(trackers[0]) == snapshot(trackers[1])


# ---- fingerprints equal the SDK's ---------------------------------------------------------

FINGERPRINT_CASES: list[Any] = [
    {"type": "function_call_output", "call_id": "call_1", "output": "42"},
    {"role": "user", "content": "héllo ✓", "id": None},
    {
        "type": "message",
        "created_by": "x",
        "_agents_tool_title": "t",
        "_agents_tool_description": "d",
    },
    {
        "type": "function_call_output",
        "call_id": "c",
        "output": [{"type": "input_text", "text": "t"}],
    },
    {"type": "weird", "value": {1, 2}, "when": object},
    fc(1),
    message(2),
    ResponseFunctionToolCall(type="function_call", call_id="c", name="n", arguments="{}"),
    "just a string",
    None,
]


@pytest.mark.parametrize("item", FINGERPRINT_CASES, ids=lambda item: type(item).__name__)
def test_fast_fingerprint_equals_the_sdk_fingerprint(item: Any) -> None:
    """sdk_fingerprint gives exactly agents' fingerprint_input_item text, odd items included."""
    from agents.run_internal.items import fingerprint_input_item

    from tracker.agents._support import sdk_fingerprint

    assert fingerprint_input_item(item) == sdk_fingerprint(item)


@settings(max_examples=examples(100), deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=8),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=5), inner, max_size=3)
            ),
            max_leaves=8,
        ),
        max_size=6,
    )
)
def test_fast_fingerprint_equals_the_sdk_fingerprint_on_random_dicts(item: dict[str, Any]) -> None:
    """For any JSON-like dict, the fast path and the SDK's function agree (or both give None)."""
    from agents.run_internal.items import fingerprint_input_item

    from tracker.agents._support import sdk_fingerprint

    assert fingerprint_input_item(item) == sdk_fingerprint(item)
