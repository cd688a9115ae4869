"""Property tests: random runs of turns never drop, duplicate, or re-send.

Each run mixes user messages (from a tiny vocabulary, so the same text recurs), parallel tool
calls, reasoning items and assistant messages, failed requests that are rewound, restores from
``to_state()`` through JSON, histories rebuilt as fresh objects, and garbage collection. A
reference server (written here, independent of the tracker) receives each delta and checks:

* every tool output is delivered exactly once, and none is missing when the server needs it;
* no item the server already holds (by id) is sent again;
* no id-less item (one *occurrence*, traced through rebuilt copies) is sent twice.
"""

from __future__ import annotations

import copy
import gc
import json
from collections import Counter
from typing import Any

from _examples import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker import Tracker

WORDS = ("yes", "no", "go on", "yes")


class ReferenceServer:
    """Holds a single response chain; rejects what the real service would reject."""

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.answered: Counter[str] = Counter()
        self.pending: list[str] = []
        self.occurrences: Counter[int] = Counter()
        self.counter = 0

    def receive(self, delta: list[Any], lineage: dict[int, int]) -> dict[str, Any]:
        for item in delta:
            item_id = item.get("id")
            if item_id is not None:
                assert item_id not in self.ids, f"re-sent {item_id}"
                self.ids.add(item_id)
            if item.get("type") == "function_call_output":
                self.answered[item["call_id"]] += 1
                assert 1 == self.answered[item["call_id"]], f"output {item['call_id']} twice"
            elif item_id is None:
                self.occurrences[lineage[id(item)]] += 1
                assert 1 == self.occurrences[lineage[id(item)]], "id-less item sent twice"
        missing = [c for c in self.pending if c not in self.answered]
        assert [] == missing, f"no tool output found for {missing}"
        return self._respond()

    def _respond(self) -> dict[str, Any]:
        self.counter += 1
        n = self.counter
        calls = n % 3  # 0, 1 or 2 parallel calls
        out: list[dict[str, Any]] = []
        if n % 2:
            out.append({"type": "reasoning", "id": f"rs_{n}", "summary": []})
        for k in range(calls):
            out.append(
                {
                    "type": "function_call",
                    "id": f"fc_{n}_{k}",
                    "call_id": f"call_{n}_{k}",
                    "name": "f",
                    "arguments": "{}",
                }
            )
        if not calls:
            out.append(
                {
                    "type": "message",
                    "id": f"msg_{n}",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "ok", "annotations": []}],
                }
            )
        for item in out:
            self.ids.add(item["id"])
        self.pending = [item["call_id"] for item in out if item["type"] == "function_call"]
        return {"id": f"resp_{n}", "output": out}


turn_plans = st.lists(
    st.fixed_dictionaries(
        {
            "say": st.sampled_from((None, *WORDS)),
            "fail_first": st.booleans(),
            "rebuild": st.booleans(),
            "restore": st.booleans(),
            "collect": st.booleans(),
            "full_history": st.booleans(),
        }
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=examples(150), deadline=None)
@given(plans=turn_plans)
def test_random_runs_send_everything_exactly_once(plans: list[dict[str, Any]]) -> None:
    """Random turns with rewinds, restores, rebuilds and GC: each item reaches the server once."""
    server = ReferenceServer()
    tracker = Tracker()
    history: list[Any] = []  # the caller's history: (lineage, item) pairs
    lineage_of: list[int] = []
    new_from = 0
    for plan in plans:
        for call_id in server.pending:
            history.append({"type": "function_call_output", "call_id": call_id, "output": "r"})
            lineage_of.append(len(lineage_of))
        if plan["say"] is not None or not server.pending:
            history.append({"role": "user", "content": plan["say"] or "start"})
            lineage_of.append(len(lineage_of))
        if plan["restore"]:
            tracker = Tracker.from_state(json.loads(json.dumps(tracker.to_state())))
        start = 0 if plan["full_history"] else new_from
        view = history[start:]
        if plan["rebuild"]:
            view = copy.deepcopy(view)
        lineage = {id(obj): lineage_of[start + i] for i, obj in enumerate(view)}
        if plan["collect"]:
            gc.collect(0)
        if plan["fail_first"]:
            failed = tracker.prepare(view, content_match=plan["full_history"])
            tracker.mark_sent(failed)
            tracker.rewind(failed)
        prepared = tracker.prepare(view, content_match=plan["full_history"])
        tracker.mark_sent(prepared)
        reply = server.receive(list(prepared.input), lineage)
        tracker.observe_response(reply)
        history.extend(reply["output"])
        lineage_of.extend(range(len(lineage_of), len(lineage_of) + len(reply["output"])))
        new_from = len(history)
    # Nothing dropped: every message and output the caller added reached the server.
    created = {lin for lin, item in zip(lineage_of, history, strict=True) if "id" not in item}
    outputs = {i["call_id"] for i in history if i.get("type") == "function_call_output"}
    assert (created - _output_lineages(history, lineage_of), outputs) == (
        set(server.occurrences),
        set(server.answered),
    )


def _output_lineages(history: list[Any], lineage_of: list[int]) -> set[int]:
    return {
        lin
        for lin, item in zip(lineage_of, history, strict=True)
        if item.get("type") == "function_call_output"
    }


@settings(max_examples=examples(75), deadline=None)
@given(plans=turn_plans, extra=st.sampled_from(WORDS))
def test_restored_tracker_decides_like_the_original(
    plans: list[dict[str, Any]], extra: str
) -> None:
    """from_state(json(to_state())) makes the same decision as the live tracker."""
    server = ReferenceServer()
    tracker = Tracker()
    history: list[Any] = []
    for plan in plans:
        history += [
            {"type": "function_call_output", "call_id": c, "output": "r"} for c in server.pending
        ]
        history.append({"role": "user", "content": plan["say"] or "start"})
        prepared = tracker.prepare(history)
        tracker.mark_sent(prepared)
        lineage = {id(obj): i for i, obj in enumerate(history)}
        reply = server.receive(list(prepared.input), lineage)
        tracker.observe_response(reply)
        history.extend(reply["output"])
    restored = Tracker.from_state(json.loads(json.dumps(tracker.to_state())))
    answers = [
        {"type": "function_call_output", "call_id": c, "output": "r"} for c in server.pending
    ]
    nxt = [*history, *answers, {"role": "user", "content": extra}]
    assert (
        tracker.prepare(nxt).request_kwargs()
        == restored.prepare(copy.deepcopy(nxt)).request_kwargs()
    )
