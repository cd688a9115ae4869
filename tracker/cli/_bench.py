"""``tracker bench``: per-turn tracker cost as the history grows, beside openai-agents' tracker.

Each turn the model returns one ``function_call`` and the caller answers it with a fresh
``function_call_output``, so the history grows by two items a turn. Three ways are timed in
one run at each history size:

* ``ours (delta)``: ``observe_response`` + ``prepare(new items)`` + ``mark_sent``;
* ``ours (full history)``: the same with the whole history passed to ``prepare``;
* ``openai-agents``: its ``OpenAIServerConversationTracker`` as its runner drives it
  (``track_server_items``, ``prepare_input`` with every generated item, ``mark_input_as_sent``).

The history is primed to the target size first (upstream's lists are filled directly: priming
them turn by turn costs O(n^2)). It also counts fresh outputs dropped under allocation churn.
Timings are CPU time (``time.process_time``), which other processes on a shared machine
disturb less than wall time; this module is not part of the sans-IO core.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

from tracker._tracker import Tracker

__all__ = ["add_arguments", "churn_drops", "measure", "per_turn", "report", "run"]

SIZES = (100, 1_000, 5_000, 20_000)


def _call(n: int) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": f"fc_{n:08x}",
        "call_id": f"call_{n:08x}",
        "name": "lookup",
        "arguments": '{"q": 1}',
    }


def _output(n: int) -> dict[str, Any]:
    return {"type": "function_call_output", "call_id": f"call_{n:08x}", "output": f"r{n}"}


def _time_turns(turn: Callable[[int], None], first: int, turns: int) -> float:
    """Median CPU seconds per turn over ``turns`` turns (CPU time: steadier on a shared box)."""
    samples = []
    gc.disable()
    try:
        for k in range(turns):
            start = time.process_time()
            turn(first + k)
            samples.append(time.process_time() - start)
    finally:
        gc.enable()
    return statistics.median(samples)


def per_turn(size: int, turns: int, *, full: bool, make: Callable[[], Any] = Tracker) -> float:
    """Median seconds per turn of a tracker from ``make`` (ours by default) at ``size`` items."""
    t = make()
    pairs = size // 2
    history: list[Any] = []
    calls = [_call(n) for n in range(pairs)]
    t.observe_response({"id": "resp_prime", "output": calls})
    outputs = [_output(n) for n in range(pairs)]
    for c, o in zip(calls, outputs, strict=True):
        history += (c, o)
    t.mark_sent(t.prepare(history if full else outputs))  # full: the history check's baseline

    def turn(n: int) -> None:
        call = _call(n)
        t.observe_response({"id": f"resp_{n}", "output": [call]})
        out = _output(n)
        history.append(call)
        history.append(out)
        p = t.prepare(history if full else [out])
        t.mark_sent(p)

    return _time_turns(turn, pairs, turns)


def _upstream(size: int, turns: int) -> float | None:
    try:
        from agents import Agent
        from agents.items import ModelResponse, ToolCallItem, ToolCallOutputItem
        from agents.run_internal.oai_conversation import OpenAIServerConversationTracker
        from agents.usage import Usage
        from openai.types.responses import ResponseFunctionToolCall
    except ImportError:  # pragma: no cover - no `agents` extra, or a release before 0.8
        return None
    agent = Agent(name="bench")
    t = OpenAIServerConversationTracker(previous_response_id="resp_0")
    original: list[Any] = [{"role": "user", "content": "go"}]
    generated: list[Any] = []

    def items_for(n: int) -> tuple[Any, Any]:
        raw = ResponseFunctionToolCall.model_validate(_call(n))
        return (
            ToolCallItem(agent=agent, raw_item=raw),
            ToolCallOutputItem(agent=agent, raw_item=_output(n), output=f"r{n}"),
        )

    pairs = size // 2
    for n in range(pairs):
        call_item, out_item = items_for(n)
        generated += (call_item, out_item)
        t.server_items.append(call_item.raw_item)
        t.server_item_ids.add(call_item.raw_item.id)
        t.sent_items.append(out_item.raw_item)
        t.server_tool_call_ids.add(out_item.raw_item["call_id"])
    t.sent_initial_input = True

    def turn(n: int) -> None:
        call_item, out_item = items_for(n)
        response = ModelResponse(output=[call_item.raw_item], usage=Usage(), response_id=f"r{n}")
        t.track_server_items(response)
        generated.append(call_item)
        generated.append(out_item)
        prepared = t.prepare_input(original, generated)
        t.mark_input_as_sent(prepared)

    return _time_turns(turn, pairs, turns)


def measure(sizes: tuple[int, ...] = SIZES, *, upstream: bool = True) -> list[dict[str, Any]]:
    """Per-turn seconds at each history size for each way (``None`` where not measured)."""
    rows = []
    for size in sizes:
        turns_ours = 200
        turns_up = max(3, min(50, 20_000 // size))
        rows.append(
            {
                "size": size,
                # Best of three medians: the first run in a fresh process is often slowed by
                # page faults and allocator growth that have nothing to do with the tracker.
                "delta": min(per_turn(size, turns_ours, full=False) for _ in range(3)),
                "full": min(per_turn(size, max(20, turns_ours // 10), full=True) for _ in range(3)),
                "upstream": _upstream(size, turns_up) if upstream else None,
            }
        )
    return rows


class _NaiveIds:
    """openai-agents <= 0.17.6's bug: remembers bare id() integers."""

    def __init__(self) -> None:
        self.sent: set[int] = set()

    def send(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        delta = [i for i in items if id(i) not in self.sent]
        self.sent.update(id(i) for i in delta)
        return delta

    def observe(self, response: dict[str, Any]) -> None:
        self.sent.update(id(i) for i in response["output"])


class _Ours:
    def __init__(self) -> None:
        self.t = Tracker()

    def send(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        p = self.t.prepare(items)
        self.t.mark_sent(p)
        return list(p.input)

    def observe(self, response: dict[str, Any]) -> None:
        self.t.observe_response(response)


def churn_drops(make: Callable[[], Any], runs: int = 100, turns: int = 12) -> int:
    """Fresh outputs never delivered over ``runs`` multi-turn runs with allocation churn."""
    dropped = 0
    for r in range(runs):
        s = make()
        records: list[int] = []
        delivered: set[str] = set()
        for turn in range(turns):
            items = [{"role": "user", "content": f"run {r}"}]
            for n in records:
                items += (_call(n), _output(n))
            delivered.update(
                i["call_id"] for i in s.send(items) if i.get("type") == "function_call_output"
            )
            del items
            gc.collect(0)
            n = r * 1000 + turn
            s.observe({"id": f"resp_{n}", "output": [_call(n)]})
            records.append(n)
        delivered.update(i["call_id"] for i in s.send([_output(n) for n in records]))
        dropped += sum(1 for n in records if f"call_{n:08x}" not in delivered)
    return dropped


def _fmt(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def format_table(rows: list[dict[str, Any]]) -> str:
    """The measurements as a Markdown table with ratios."""
    base = rows[0]["delta"]
    lines = [
        "| history items | ours (delta) | vs 100 items | ours (full history) "
        "| openai-agents | agents / ours (delta) | agents / ours (full) |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        up = row["upstream"]
        vs_delta = f"{up / row['delta']:,.0f}x" if up else "-"
        vs_full = f"{up / row['full']:,.1f}x" if up else "-"
        lines.append(
            f"| {row['size']:,} | {_fmt(row['delta'])} | {row['delta'] / base:.2f}x "
            f"| {_fmt(row['full'])} | {_fmt(up)} | {vs_delta} | {vs_full} |"
        )
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``tracker bench``."""
    parser.add_argument(
        "--sizes",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        default=SIZES,
        help="comma-separated history sizes (default: 100,1000,5000,20000)",
    )
    parser.add_argument("--no-upstream", action="store_true", help="skip openai-agents' tracker")


def run(args: argparse.Namespace) -> int:
    """Print the per-turn cost table and the GC-churn drop counts."""
    report(measure(args.sizes, upstream=not args.no_upstream))
    return 0


def report(rows: list[dict[str, Any]]) -> None:
    """Print ``measure``'s rows as a table, then measure and print the GC-churn drop counts."""
    print("Per-turn tracker cost (median CPU time), one call + one output per turn:\n")
    print(format_table(rows))
    print("\nFresh outputs dropped under GC churn (100 runs x 12 turns):")
    print(f"  ours: {churn_drops(_Ours)}   naive id() integers: {churn_drops(_NaiveIds)}")
