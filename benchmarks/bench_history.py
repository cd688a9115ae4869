"""Validation and repair cost per item as the history grows (should stay flat: linear time).

    python benchmarks/bench_history.py [--sizes 1000 10000 100000] [--repeat 3]

Histories are rounds of parallel tool calls in both formats; one round in five is broken
(an output lost, an output duplicated, an orphan output, results after the wrong message), so
the repair has work to do. Prints the best of ``--repeat`` runs, in microseconds per item.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from _plot import chart

from tracker._repair import repair_history
from tracker._repair_actions import Api
from tracker._rules import validate_history


def responses_history(n: int) -> list[dict[str, Any]]:
    """About ``n`` Responses items."""
    items: list[dict[str, Any]] = []
    k = 0
    while len(items) < n:
        a, b = f"call_{k:024d}a", f"call_{k:024d}b"
        items.append({"role": "user", "content": f"turn {k}"})
        items.append({"type": "reasoning", "id": f"rs_{k:050x}", "summary": []})
        for cid, suffix in ((a, "a"), (b, "b")):
            items.append(
                {
                    "type": "function_call",
                    "id": f"fc_{k:049x}{suffix}",
                    "call_id": cid,
                    "name": "f",
                    "arguments": "{}",
                }
            )
        broken = k % 5
        if broken != 1:
            items.append({"type": "function_call_output", "call_id": a, "output": "1"})
        items.append({"type": "function_call_output", "call_id": b, "output": "2"})
        if broken == 2:
            items.append({"type": "function_call_output", "call_id": b, "output": "2"})
        if broken == 3:
            items.append({"type": "function_call_output", "call_id": f"ghost{k}", "output": "?"})
        items.append({"type": "message", "role": "assistant", "content": f"answer {k}"})
        k += 1
    return items


def chat_history(n: int) -> list[dict[str, Any]]:
    """About ``n`` Chat Completions messages."""
    items: list[dict[str, Any]] = []
    k = 0
    while len(items) < n:
        a, b = f"call_{k:024d}a", f"call_{k:024d}b"
        calls = [
            {"id": cid, "type": "function", "function": {"name": "f", "arguments": "{}"}}
            for cid in (a, b)
        ]
        items.append({"role": "user", "content": f"turn {k}"})
        items.append({"role": "assistant", "content": None, "tool_calls": calls})
        results = [{"role": "tool", "tool_call_id": a, "content": "1"}]
        results.append({"role": "tool", "tool_call_id": b, "content": "2"})
        broken = k % 5
        if broken == 1:
            results.pop(0)
        if broken == 2:
            results.append(dict(results[-1]))
        if broken == 3:
            results.append({"role": "tool", "tool_call_id": f"ghost{k}", "content": "?"})
        if broken == 4:
            items.append({"role": "assistant", "content": "still thinking"})
        items.extend(results)
        items.append({"role": "assistant", "content": f"answer {k}"})
        k += 1
    return items


def best(fn: Callable[[], object], repeat: int) -> float:
    """Best CPU time of ``repeat`` runs, in seconds (CPU time: steady on a shared machine)."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return min(times)


def main() -> None:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(
        f"{'api':<10} {'items':>8} {'violations':>10} {'validate us/item':>17} "
        f"{'repair us/item':>15} {'actions':>8}"
    )
    builders: tuple[tuple[Api, Callable[[int], list[dict[str, Any]]]], ...] = (
        ("responses", responses_history),
        ("chat", chat_history),
    )
    series: dict[str, list[float | None]] = {}
    for api, build in builders:
        for size in args.sizes:
            items = build(size)
            n = len(items)
            found = validate_history(items, api=api)
            _, actions = repair_history(items, api=api)
            t_validate = best(partial(validate_history, items, api=api), args.repeat)
            t_repair = best(partial(repair_history, items, api=api), args.repeat)
            print(
                f"{api:<10} {n:>8} {len(found):>10} {t_validate / n * 1e6:>17.2f} "
                f"{t_repair / n * 1e6:>15.2f} {len(actions):>8}"
            )
            series.setdefault(f"validate ({api})", []).append(t_validate / n * 1e6)
            series.setdefault(f"repair ({api})", []).append(t_repair / n * 1e6)
    chart(
        "history",
        "Validation and repair cost per item (flat: linear time)",
        args.sizes,
        series,
        x_label="history items (about)",
        y_label="CPU microseconds per item (best)",
    )


if __name__ == "__main__":
    main()
