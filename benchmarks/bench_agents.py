"""openai-agents' conversation tracker vs ``tracker.agents``, side by side, in one run.

    python benchmarks/bench_agents.py [--quick]

Two measurements at 100, 1k, 5k and 20k generated items (a run of tool rounds: one
``function_call`` from the model and its ``function_call_output`` per round):

- per turn: the runner's own call pattern on a live run that has already sent ``n`` items:
  ``prepare_input(original_input, <the whole generated-item list>)``, then
  ``mark_input_as_sent`` and ``track_server_items`` for the model's next call, and the new call
  and output appended to the history (one round = one turn);
- per hydrate: ``hydrate_from_state`` for a resumed run of ``n`` items (restored objects).
  ``tracker.agents`` encodes restored content fingerprints when a question first concerns
  them, so the time to encode all of them (the most any later use can cost) is printed too.

A turn's cost is one identity lookup per old item, so it grows with the history as fast as
any pass over the run items does; at 20k items that includes cache and TLB misses. The
"bare pass" (reading every run item's ``raw_item`` over the same list, nothing else) is
measured in the same run as the baseline for that memory effect.

Both classes are driven with the same objects and must make the same decisions (checked).
The live state is built by the same call pattern, with everything sent in one first turn.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents import Agent
from agents.items import ModelResponse, ToolCallItem, ToolCallOutputItem
from agents.run_internal.oai_conversation import OpenAIServerConversationTracker as SdkTracker
from agents.usage import Usage
from openai.types.responses import ResponseFunctionToolCall

from tracker.agents import OpenAIServerConversationTracker as OurTracker

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _plot import chart

AGENT = Agent(name="bench")
PROMPT = "Check the weather in every city, then add the numbers."


def make_round(i: int) -> tuple[ResponseFunctionToolCall, ToolCallItem, ToolCallOutputItem]:
    """One tool round as the runner holds it: the model's call and the tool's output."""
    call_id = f"call_{i:024d}"
    call = ResponseFunctionToolCall(
        id=f"fc_{i:050x}",
        type="function_call",
        call_id=call_id,
        name="weather",
        arguments=f'{{"city": "City {i}"}}',
        status="completed",
    )
    output = {"type": "function_call_output", "call_id": call_id, "output": f"sunny, {i} C"}
    return (
        call,
        ToolCallItem(agent=AGENT, raw_item=call),
        ToolCallOutputItem(agent=AGENT, raw_item=output, output=output["output"]),
    )


def response(calls: list[ResponseFunctionToolCall], index: int) -> ModelResponse:
    """A model response carrying ``calls``."""
    return ModelResponse(output=list(calls), usage=Usage(), response_id=f"resp_{index:048x}")


def live_tracker(cls: type, n: int) -> tuple[Any, list[Any]]:
    """A tracker in a live run that has sent ``n`` items, and that run's generated items."""
    rounds = [make_round(i) for i in range(n // 2)]
    generated = [
        item for _call, call_item, output_item in rounds for item in (call_item, output_item)
    ]
    tracker = cls(previous_response_id="resp_0", auto_previous_response_id=True)
    tracker.mark_input_as_sent(tracker.prepare_input(PROMPT, generated))
    tracker.track_server_items(response([call for call, _, _ in rounds], 0))
    return tracker, generated


def time_turns(tracker: Any, generated: list[Any], turns: int) -> tuple[float, list[Any]]:
    """Median seconds per turn of the runner's pattern, and the inputs each turn prepared."""
    sent: list[Any] = []
    elapsed: list[float] = []
    for turn in range(turns):
        call, call_item, output_item = make_round(10**6 + turn)
        started = time.perf_counter()
        prepared = tracker.prepare_input(PROMPT, generated)
        tracker.mark_input_as_sent(prepared)
        tracker.track_server_items(response([call], turn + 1))
        elapsed.append(time.perf_counter() - started)
        generated.extend((call_item, output_item))
        sent.append(prepared)
    return statistics.median(elapsed), sent


def time_bare_pass(generated: list[Any], repeats: int = 21) -> float:
    """Median seconds of reading every run item's ``raw_item``: the memory-effect baseline."""
    elapsed: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        for run_item in generated:
            run_item.raw_item  # noqa: B018  # the access is what is timed
        elapsed.append(time.perf_counter() - started)
    return statistics.median(elapsed)


def time_settle(hydrated: Any) -> float:
    """Seconds to encode every fingerprint ``tracker.agents`` deferred at hydrate."""
    started = time.perf_counter()
    len(hydrated.sent_item_fingerprints)
    return time.perf_counter() - started


def time_hydrate(cls: type, n: int, repeats: int) -> tuple[float, Any]:
    """Best-of-``repeats`` seconds of ``hydrate_from_state`` for a resumed run of ``n`` items."""
    rounds = [make_round(i) for i in range(n // 2)]
    generated = [
        item for _call, call_item, output_item in rounds for item in (call_item, output_item)
    ]
    responses = [response([call], i) for i, (call, _, _) in enumerate(rounds)]
    times = []
    tracker = None
    for _ in range(repeats):
        tracker = cls(previous_response_id="resp_0")
        started = time.perf_counter()
        tracker.hydrate_from_state(
            original_input=PROMPT,
            generated_items=generated,
            model_responses=responses,
            session_items=None,
            unsent_tool_call_ids=set(),
        )
        times.append(time.perf_counter() - started)
    return min(times), tracker


def plan(n: int, quick: bool, sdk: bool) -> tuple[int, int]:
    """(turns, hydrate repeats) at size ``n``: few for the SDK where it is slow."""
    if not sdk:
        return (5 if quick else 20), (3 if quick else 5)
    if n >= 20_000:
        return 3, 1
    if n >= 5_000:
        return 3, 1
    return (5 if quick else 20), 3


def fmt(seconds: float) -> str:
    """Seconds in a readable unit."""
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds * 1e6:.0f} us"


def measure(n: int, quick: bool, log: Callable[[str], None]) -> dict[str, float]:
    """Run both measurements for both classes at size ``n``; check they decide the same."""
    row: dict[str, float] = {}
    decisions = {}
    for label, cls in (("sdk", SdkTracker), ("ours", OurTracker)):
        turns, repeats = plan(n, quick, sdk=label == "sdk")
        gc.collect()
        tracker, generated = live_tracker(cls, n)
        row[f"turn_{label}"], decisions[label] = time_turns(tracker, generated, turns)
        if label == "ours":
            row["bare"] = time_bare_pass(generated)
        del tracker, generated
        row[f"hydrate_{label}"], hydrated = time_hydrate(cls, n, repeats)
        if label == "ours":
            row["settle"] = time_settle(hydrated)
        decisions[f"hydrated_{label}"] = (
            sorted(hydrated.sent_item_fingerprints),
            sorted(hydrated.server_item_ids),
            hydrated.previous_response_id,
        )
        log(
            f"  n={n:>6} {label:>4}: turn {fmt(row[f'turn_{label}'])}, hydrate "
            f"{fmt(row[f'hydrate_{label}'])}"
        )
    if decisions["sdk"] != decisions["ours"][: len(decisions["sdk"])]:
        raise SystemExit(f"n={n}: the two classes prepared different inputs")
    if decisions["hydrated_sdk"] != decisions["hydrated_ours"]:
        raise SystemExit(f"n={n}: the two classes hydrated different state")
    return row


def main(argv: list[str] | None = None) -> int:
    """Measure, then print the table (markdown) with the speed-up ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and sizes <= 5k")
    args = parser.parse_args(argv)
    sizes = (100, 1_000, 5_000) if args.quick else (100, 1_000, 5_000, 20_000)
    log = print if sys.stdout.isatty() else (lambda _m: None)
    rows = {n: measure(n, args.quick, log) for n in sizes}

    print(
        "| items | turn: openai-agents | turn: tracker.agents | speed-up "
        "| hydrate: openai-agents | hydrate: tracker.agents | speed-up |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n, r in rows.items():
        print(
            f"| {n:,} | {fmt(r['turn_sdk'])} | {fmt(r['turn_ours'])} "
            f"| {r['turn_sdk'] / r['turn_ours']:.0f}x | {fmt(r['hydrate_sdk'])} "
            f"| {fmt(r['hydrate_ours'])} | {r['hydrate_sdk'] / r['hydrate_ours']:.0f}x |"
        )
    first, last = sizes[-2], sizes[-1]
    growth = rows[last]["turn_ours"] / rows[first]["turn_ours"]
    bare = rows[last]["bare"] / rows[first]["bare"]
    print(
        f"\nper-turn growth, {first:,} -> {last:,} items (linear would be {last / first:.0f}x): "
        f"tracker.agents {growth:.1f}x; a bare pass over the same run items "
        f"({fmt(rows[first]['bare'])} -> {fmt(rows[last]['bare'])}) {bare:.1f}x; "
        f"ratio {growth / bare:.2f}; openai-agents "
        f"{rows[last]['turn_sdk'] / rows[first]['turn_sdk']:.1f}x"
    )
    r = rows[last]
    total = r["hydrate_ours"] + r["settle"]
    chart(
        "agents",
        "openai-agents' conversation tracker vs tracker.agents",
        list(rows),
        {
            f"{what}: {who}": [row[f"{key}_{side}"] for row in rows.values()]
            for what, key in (("turn", "turn"), ("hydrate", "hydrate"))
            for who, side in (("openai-agents", "sdk"), ("tracker.agents", "ours"))
        },
        x_label="run items",
        y_label="seconds (median turn, best hydrate)",
    )
    print(
        f"hydrate at {last:,} items, every deferred fingerprint then encoded: "
        f"{fmt(r['hydrate_ours'])} + {fmt(r['settle'])} = {fmt(total)} "
        f"({r['hydrate_sdk'] / total:.0f}x faster than openai-agents)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
