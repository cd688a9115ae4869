"""Core benchmark: per-turn tracker cost at 100, 1k, 5k and 20k history items.

Ours beside openai-agents' ``OpenAIServerConversationTracker``, in one run, with ratios, plus
fresh outputs dropped under GC churn. Run: ``python benchmarks/bench_core.py`` (or
``tracker bench``). Targets: ours (delta) at 20k within 1.5x of ours at 100 items, and at least
20x below openai-agents at 20k.
"""

from __future__ import annotations

import argparse
import sys

from tracker.cli import _bench


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    _bench.add_arguments(parser)
    return _bench.run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
