"""Core benchmark: per-turn tracker cost at 100, 1k, 5k and 20k history items.

Ours beside openai-agents' ``OpenAIServerConversationTracker``, in one run, with ratios, plus
fresh outputs dropped under GC churn. Run: ``python benchmarks/bench_core.py`` (or
``tracker bench``, which draws no chart); writes ``benchmarks/charts/core.svg``. Targets: ours
(delta) at 20k within 1.5x of ours at 100 items, and at least 20x below openai-agents at 20k.
"""

from __future__ import annotations

import argparse
import sys

from _plot import chart

from tracker.cli import _bench


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    _bench.add_arguments(parser)
    args = parser.parse_args(argv)
    rows = _bench.measure(args.sizes, upstream=not args.no_upstream)
    _bench.report(rows)
    chart(
        "core",
        "Per-turn tracker cost (one call + one output a turn)",
        [r["size"] for r in rows],
        {
            "ours (delta)": [r["delta"] for r in rows],
            "ours (full history)": [r["full"] for r in rows],
            "openai-agents": [r["upstream"] for r in rows],
        },
        x_label="history items",
        y_label="CPU seconds per turn (median)",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
