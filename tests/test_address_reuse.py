"""Address reuse, the way it happens in production.

openai-agents <= 0.17.6 remembered sent items by ``id(obj)``. Each turn the runner converts the
generated items into fresh dicts, sends the delta, and drops the dicts; CPython hands their
addresses to the next turn's fresh ``function_call_output`` dicts, which then look "already
sent". The driver below reproduces that allocation pattern. It runs the same scenario against
our tracker and against a deliberately naive id()-integer strategy, which must drop outputs:
that proves the scenario can catch the bug.
"""

from __future__ import annotations

import gc
import weakref
from collections import Counter
from collections.abc import Callable
from typing import Any

from tracker import Tracker
from tracker._tracker_chain import Chain
from tracker._tracker_restart import Restarts


class NaiveIdTracker:
    """The 0.17.6 bug, kept on purpose: remembers bare ``id()`` integers of sent items."""

    def __init__(self) -> None:
        self.sent: set[int] = set()

    def send(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        delta = [item for item in items if id(item) not in self.sent]
        self.sent.update(id(item) for item in delta)
        return delta

    def observe(self, response: dict[str, Any]) -> None:
        self.sent.update(id(item) for item in response["output"])


class OurTracker:
    """Our tracker behind the same two calls the driver makes."""

    def __init__(self) -> None:
        self.tracker = Tracker()

    def send(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        prepared = self.tracker.prepare(items)
        self.tracker.mark_sent(prepared)
        return list(prepared.input)

    def observe(self, response: dict[str, Any]) -> None:
        self.tracker.observe_response(response)


def _run(make: Callable[[], Any], turns: int, run_index: int) -> tuple[int, int]:
    """Drive one multi-turn run; return (outputs never delivered, outputs delivered twice)."""
    strategy = make()
    # What the runner keeps between turns: the generated items as plain records.
    generated: list[tuple[str, ...]] = [("user", f"run {run_index}: call the tool please")]
    delivered: Counter[str] = Counter()
    expected: set[str] = set()
    for turn in range(turns):
        # Fresh dicts every turn (the runner's conversion), old ones die right after the send.
        converted: list[dict[str, Any]] = []
        for record in generated:
            if record[0] == "user":
                converted.append({"role": "user", "content": record[1]})
            elif record[0] == "call":
                converted.append(
                    {
                        "type": "function_call",
                        "id": record[1],
                        "call_id": record[2],
                        "name": "lookup",
                        "arguments": "{}",
                    }
                )
            else:
                converted.append(
                    {"type": "function_call_output", "call_id": record[1], "output": record[2]}
                )
        delta = strategy.send(converted)
        delivered.update(
            item["call_id"] for item in delta if item.get("type") == "function_call_output"
        )
        del converted, delta
        # Allocation churn between turns, as tool execution and response parsing cause.
        churn = [{"k": i} for i in range(turn % 7)]
        del churn
        gc.collect(0)  # young-generation pass: cheap, and frees cycles as a real run would
        call_id = f"call_{run_index}_{turn}"
        response = {
            "id": f"resp_{run_index}_{turn}",
            "output": [
                {
                    "type": "function_call",
                    "id": f"fc_{run_index}_{turn}",
                    "call_id": call_id,
                    "name": "lookup",
                    "arguments": "{}",
                }
            ],
        }
        strategy.observe(response)
        generated.append(("call", f"fc_{run_index}_{turn}", call_id))
        generated.append(("output", call_id, f"result {turn}"))
        expected.add(call_id)
    # Final send carries the last output.
    final = [
        {"type": "function_call_output", "call_id": r[1], "output": r[2]}
        for r in generated
        if r[0] == "output"
    ]
    delivered.update(item["call_id"] for item in strategy.send(final))
    return len(expected - delivered.keys()), sum(1 for n in delivered.values() if n > 1)


def test_fresh_outputs_survive_address_reuse() -> None:
    """Across 100 churned multi-turn runs, our tracker delivers every fresh output exactly once."""
    results = [_run(OurTracker, turns=12, run_index=i) for i in range(100)]
    assert [(0, 0)] * 100 == results


def test_naive_id_strategy_is_caught_dropping_outputs() -> None:
    """The same driver catches the id()-integer strategy dropping fresh outputs."""
    dropped_runs = sum(1 for i in range(100) if _run(NaiveIdTracker, turns=12, run_index=i)[0] > 0)
    assert dropped_runs > 50


def _output(call_id: str) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": call_id, "output": "done"}


def test_fresh_output_at_a_released_outputs_address_is_delivered() -> None:
    """An output the tracker released (keyed by call_id) leaves an address a fresh one reuses."""
    tracker = Tracker()
    call = {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "f"}
    tracker.observe_response({"id": "resp_1", "output": [call]})
    sent = _output("call_1")
    tracker.mark_sent(tracker.prepare([sent]))
    call_2 = {"type": "function_call", "id": "fc_2", "call_id": "call_2", "name": "f"}
    tracker.observe_response({"id": "resp_2", "output": [call_2]})
    address = id(sent)
    drained = [{} for _ in range(200)]  # empty CPython's dict free list: sent's address tops it
    del sent
    misses: list[dict[str, Any]] = [*drained]  # kept alive, so each try gets another address
    fresh = _output("call_2")
    while id(fresh) != address and len(misses) < 10_000:
        misses.append(fresh)
        fresh = _output("call_2")
    assert address == id(fresh)  # the released output's address was reused
    assert (fresh,) == tracker.prepare([fresh]).input


def test_requests_in_flight_are_held_where_they_are_keyed() -> None:
    """The transcript and the restarts hold each request in flight: none born later gets its id."""
    tracker = Tracker(store=False)
    chain = Chain.start(None, None, store=False, rules=None)
    restarts = Restarts("restart")
    transcript = chain.transcript
    assert transcript is not None
    sent = tracker.prepare([{"role": "user", "content": "hi"}])
    chain.record_sent(sent, 1)
    restarts.restart(sent, chain, unchanged=True, rules=None)
    held, address = weakref.ref(sent), id(sent)
    del sent
    gc.collect()
    strangers = [tracker.prepare([{"role": "user", "content": "hi"}]) for _ in range(50)]
    assert address not in {id(p) for p in strangers}  # it would be, were the request dead
    assert (None, False) == (restarts.rewound(strangers[0]), transcript.unmark(strangers[0]))
    prepared = held()
    assert prepared is not None
    assert (chain, True, 0) == (
        restarts.rewound(prepared),
        transcript.unmark(prepared),
        len(transcript),
    )
