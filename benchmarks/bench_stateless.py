"""Stateless benchmark: one ``store=False`` turn's cost as the transcript grows.

Ours (``Tracker(store=False)``: prepare the new message, mark it sent, observe the reply; the
whole input checked against the service rules) beside a hand-written full-history replay
(``history + [new]``, then ``history.extend(output)``), in one run. Both include serialising
the request body (``json.dumps``), which any replay pays. Run:
``python benchmarks/bench_stateless.py`` (``--sizes 100,1000`` for a quick look).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from _plot import chart

from tracker import Tracker


def _history(n: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for i in range(n // 2):
        items.append({"role": "user", "content": f"question {i}"})
        items.append(
            {
                "type": "message",
                "id": f"msg_{i:08d}",
                "role": "assistant",
                "content": [{"type": "output_text", "text": f"answer {i}"}],
            }
        )
    return items


def _reply(i: int) -> dict[str, Any]:
    text = [{"type": "output_text", "text": "ok"}]
    item = {"type": "message", "id": f"msg_new{i}", "role": "assistant", "content": text}
    return {"id": f"resp_{i}", "store": False, "output": [item]}


def _ours(n: int) -> Callable[[int], None]:
    t = Tracker(store=False)
    p = t.prepare(_history(n), content_match=False)
    t.mark_sent(p)
    t.observe_response({"id": "resp_0", "store": False, "output": []})

    def turn(i: int) -> None:
        p = t.prepare([{"role": "user", "content": f"new {i}"}], content_match=False)
        json.dumps({"model": "m", **p.request_kwargs()})
        t.mark_sent(p)
        t.observe_response(_reply(i))

    return turn


def _by_hand(n: int) -> Callable[[int], None]:
    history = _history(n)

    def turn(i: int) -> None:
        body = {"model": "m", "input": [*history, {"role": "user", "content": f"new {i}"}]}
        json.dumps(body)
        history.append(body["input"][-1])
        history.extend(_reply(i)["output"])

    return turn


def _median_us(make: Callable[[int], Callable[[int], None]], n: int, turns: int) -> float:
    best = float("inf")
    for _ in range(3):
        turn = make(n)
        times = []
        gc.collect()
        for i in range(turns):
            start = time.process_time()
            turn(i)
            times.append(time.process_time() - start)
        times.sort()
        best = min(best, times[len(times) // 2])
    return best * 1e6


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100,1000,5000,20000")
    parser.add_argument("--turns", type=int, default=15)
    args = parser.parse_args(argv)
    print("| transcript items | ours | by hand | ours / by hand |")
    print("|---:|---:|---:|---:|")
    sizes = [int(s) for s in args.sizes.split(",")]
    series: dict[str, list[float | None]] = {"ours": [], "by hand": []}
    for n in sizes:
        ours = _median_us(_ours, n, args.turns)
        hand = _median_us(_by_hand, n, args.turns)
        print(f"| {n:,} | {ours / 1000:.2f} ms | {hand / 1000:.2f} ms | {ours / hand:.1f}x |")
        series["ours"].append(ours / 1000)
        series["by hand"].append(hand / 1000)
    chart(
        "stateless",
        "One store=False turn: ours (checked replay) vs a full replay by hand",
        sizes,
        series,
        x_label="transcript items",
        y_label="CPU milliseconds per turn (median)",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
