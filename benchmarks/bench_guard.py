"""What the guard costs on a valid request: a round trip to the emulator, bare and guarded.

    python benchmarks/bench_guard.py [--sizes 10 100 1000] [--rounds 10]

For each history size (Chat messages: rounds of a user message, an assistant ``tool_calls``
message and its two tool results) it times ``chat.completions.create`` with the same client,
bare and through ``tracker.guard.guard``, interleaved in one run, and the guard's check alone.
Prints medians in milliseconds and the guarded / bare ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from _plot import chart
from openai import OpenAI

from tracker.emulator import Emulator
from tracker.guard import guard
from tracker.guard._request import check


def chat_history(n: int) -> list[dict[str, Any]]:
    """About ``n`` valid Chat messages."""
    messages: list[dict[str, Any]] = []
    k = 0
    while len(messages) < n:
        ids = [f"call_{k}a", f"call_{k}b"]
        messages.append({"role": "user", "content": f"turn {k}"})
        calls = [
            {"id": i, "type": "function", "function": {"name": "f", "arguments": "{}"}} for i in ids
        ]
        messages.append({"role": "assistant", "content": None, "tool_calls": calls})
        messages += [{"role": "tool", "tool_call_id": i, "content": "ok"} for i in ids]
        k += 1
    messages.append({"role": "user", "content": "thanks"})
    return messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    chart_rows: list[tuple[int, float, float, float]] = []
    print("| messages | bare | guarded | guarded / bare | check alone |")
    print("|---:|---:|---:|---:|---:|")
    with Emulator() as emu, OpenAI(base_url=emu.base_url, api_key="x", max_retries=0) as client:
        guarded = guard(client)
        for size in args.sizes:
            messages = chat_history(size)
            times: dict[str, list[float]] = {"bare": [], "guarded": [], "check": []}
            for _ in range(args.rounds):
                for name, target in (("bare", client), ("guarded", guarded)):
                    start = time.perf_counter()
                    target.chat.completions.create(model="emu-1", messages=messages)
                    times[name].append(time.perf_counter() - start)
                start = time.perf_counter()
                check("chat", {"messages": messages}, repair="placeholder")
                times["check"].append(time.perf_counter() - start)
            bare, guarded_ms, alone = (
                statistics.median(times[k]) * 1e3 for k in ("bare", "guarded", "check")
            )
            print(
                f"| {len(messages):,} | {bare:.2f} ms | {guarded_ms:.2f} ms | "
                f"{guarded_ms / bare:.2f}x | {alone:.3f} ms |"
            )
            chart_rows.append((len(messages), bare, guarded_ms, alone))
    chart(
        "guard",
        "Chat request round trip to the emulator, bare and guarded",
        [r[0] for r in chart_rows],
        {
            name: [r[i] for r in chart_rows]
            for i, name in enumerate(("bare", "guarded", "check alone"), 1)
        },
        x_label="messages in the request",
        y_label="milliseconds (median)",
    )


if __name__ == "__main__":
    main()
