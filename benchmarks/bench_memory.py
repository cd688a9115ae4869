"""Memory benchmark: a long-lived tracker against one restored from its snapshot.

A live tracker used to hold every item object it ever saw; it now holds only the id-less ones
(the only items matched by identity). This prints, side by side in one run at 1k, 10k and 50k
items, what the tracker alone keeps alive (``tracemalloc``: the caller drops its own item
lists) for

* ``live``: the tracker that ran the session turn by turn;
* ``restored``: ``Tracker.from_state`` of that tracker's JSON snapshot (the same decisions);
* ``baseline live``: the same session on the tracker of ``--baseline`` (default the commit
  before this change), loaded from git into a temporary package next to ours;

and the per-turn cost of ``tracker bench`` (``bench_core``'s method: ``observe_response`` +
``prepare`` + ``mark_sent``, with only the new items and with the whole history) for ours and
the baseline. Target: live within 2x of restored, and ``prepare`` no slower than the baseline.

Each turn is a run_turn round: a user message (id-less), a ``function_call`` (``fc_`` id),
its ``function_call_output`` and an assistant message (``msg_`` id), so four items a turn.
Run: ``python benchmarks/bench_memory.py [--sizes 1000,10000,50000] [--baseline REV]``; writes
``benchmarks/charts/memory.svg``.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import subprocess
import sys
import tarfile
import tempfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _plot import chart

from tracker import Tracker
from tracker.cli._bench import per_turn

SIZES = (1_000, 10_000, 50_000)
#: The last commit of ``main`` whose tracker held every item object it saw.
BASELINE = "1e1bf4f"
ROOT = Path(__file__).resolve().parent.parent


def _turn(t: Any, k: int) -> None:
    """One run_turn round: four items, one of them id-less."""
    user = {"role": "user", "content": f"question {k}: " + "please look this up " * 5}
    t.mark_sent(t.prepare([user]))
    call = {
        "type": "function_call",
        "id": f"fc_{k:048x}",
        "call_id": f"call_{k:024x}",
        "name": "lookup",
        "arguments": '{"q": "x"}',
        "status": "completed",
    }
    t.observe_response({"id": f"resp_{k:046x}a", "output": [call]})
    output = {"type": "function_call_output", "call_id": call["call_id"], "output": "r " * 100}
    t.mark_sent(t.prepare([output]))
    text = [{"type": "output_text", "text": "answer " * 40, "annotations": []}]
    answer = {
        "type": "message",
        "id": f"msg_{k:048x}",
        "role": "assistant",
        "status": "completed",
        "content": text,
    }
    t.observe_response({"id": f"resp_{k:046x}b", "output": [answer]})


def _kept(build: Callable[[], Any]) -> tuple[int, Any]:
    """Bytes still allocated after ``build()`` (its result alive, everything else dropped)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        built = build()
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before, built
    finally:
        tracemalloc.stop()


def _session(make: Callable[[], Any], items: int) -> Any:
    t = make()
    for k in range(items // 4):
        _turn(t, k)
    return t


def load_baseline(rev: str) -> type[Any] | None:
    """The ``Tracker`` class of ``rev`` (from git, as package ``tracker_baseline``), or None."""
    target = Path(tempfile.mkdtemp(prefix="tracker-baseline-"))
    archive = target / "core.tar"
    try:
        with archive.open("wb") as out:
            subprocess.run(
                ["git", "-C", str(ROOT), "archive", rev, "tracker"],
                stdout=out,
                stderr=subprocess.DEVNULL,
                check=True,
            )
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    except (OSError, subprocess.CalledProcessError, tarfile.TarError):
        return None
    (target / "tracker").rename(target / "tracker_baseline")
    sys.path.insert(0, str(target))
    module = importlib.import_module("tracker_baseline._tracker")
    cls: type[Any] = module.Tracker
    return cls


def _mb(n: float | None) -> str:
    return "-" if n is None else f"{n / 1e6:.1f} MB"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:.3f} ms"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a / b:.2f}x"


def measure_memory(size: int, baseline: type[Any] | None) -> dict[str, Any]:
    """Bytes kept by a live tracker, its restored copy and the baseline's live tracker."""
    live_bytes, live = _kept(lambda: _session(Tracker, size))
    snapshot = json.dumps(live.to_state())
    restored_bytes, restored = _kept(lambda: Tracker.from_state(json.loads(snapshot)))
    probe = [{"role": "user", "content": "question 0: " + "please look this up " * 5}]
    same = live.prepare(probe).input == restored.prepare(probe).input
    del live, restored
    old = _kept(lambda: _session(baseline, size))[0] if baseline is not None else None
    return {"size": size, "live": live_bytes, "restored": restored_bytes, "old": old, "same": same}


def measure_prepare(size: int, baseline: type[Any] | None, rounds: int = 5) -> dict[str, Any]:
    """``bench_core``'s per-turn cost for ours and the baseline, interleaved, best of rounds."""
    makes: dict[str, Callable[[], Any]] = {"": Tracker}
    if baseline is not None:
        makes["old_"] = baseline
    best: dict[str, float] = {}
    for _ in range(rounds):  # alternate the two, so a busy spell slows both alike
        for prefix, make in makes.items():
            for full, turns in ((False, 200), (True, 20)):
                key = prefix + ("full" if full else "delta")
                seconds = per_turn(size, turns, full=full, make=make)
                best[key] = min(best.get(key, seconds), seconds)
    return {"size": size, "old_delta": None, "old_full": None, **best}


def main(argv: list[str]) -> int:
    """Print the memory table and the prepare-cost table."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--sizes", type=lambda s: tuple(int(x) for x in s.split(",")), default=SIZES
    )
    parser.add_argument("--baseline", default=BASELINE, help="git revision to compare with")
    args = parser.parse_args(argv)
    baseline = load_baseline(args.baseline)
    label = args.baseline if baseline is not None else f"{args.baseline} (unavailable)"
    print(f"Memory kept by the tracker alone (tracemalloc), baseline {label}:\n")
    print("| items | live | restored | live / restored | baseline live | baseline / live |")
    print("|---:|---:|---:|---:|---:|---:|")
    rows = []
    for size in args.sizes:
        m = measure_memory(size, baseline)
        rows.append(m)
        assert m["same"], "the live and restored trackers decided differently"
        print(
            f"| {size:,} | {_mb(m['live'])} | {_mb(m['restored'])} "
            f"| {_ratio(m['live'], m['restored'])} | {_mb(m['old'])} "
            f"| {_ratio(m['old'], m['live'])} |"
        )
    chart(
        "memory",
        "Memory kept by a tracker (four items a turn)",
        [m["size"] for m in rows],
        {
            "live": [m["live"] / 1e6 for m in rows],
            "restored from its snapshot": [m["restored"] / 1e6 for m in rows],
            f"live, baseline {args.baseline}": [
                None if m["old"] is None else m["old"] / 1e6 for m in rows
            ],
        },
        x_label="items seen",
        y_label="MB (tracemalloc)",
    )
    print("\nPer-turn cost (median CPU time, bench_core's method), ours beside the baseline:\n")
    print(
        "| items | delta | baseline delta | delta / baseline | full history "
        "| baseline full | full / baseline |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        p = measure_prepare(size, baseline)
        print(
            f"| {size:,} | {_ms(p['delta'])} | {_ms(p['old_delta'])} "
            f"| {_ratio(p['delta'], p['old_delta'])} | {_ms(p['full'])} "
            f"| {_ms(p['old_full'])} | {_ratio(p['full'], p['old_full'])} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
