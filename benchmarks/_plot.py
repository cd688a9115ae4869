"""One SVG chart per benchmark: cost against size, one line per way measured, log axes.

    from _plot import chart
    chart("core", "Per-turn tracker cost", sizes, {"ours": ours_s, "openai-agents": sdk_s},
          x_label="history items", y_label="seconds per turn")

writes ``benchmarks/charts/core.svg`` and prints where. matplotlib comes with the ``bench``
extra (``pip install -e '.[bench]'``) and is imported only here, only when a chart is drawn:
without it the benchmark still prints its table and says the chart was skipped. ``None`` in
a series is a point not measured (left out of the line). The SVG carries no date and a fixed
hash salt, so drawing the same figures again gives the same file.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["CHARTS", "chart"]

#: Where the charts go (committed; the README shows them next to the tables).
CHARTS = Path(__file__).resolve().parent / "charts"


def chart(
    name: str,
    title: str,
    x: Sequence[float],
    series: Mapping[str, Sequence[float | None]],
    *,
    x_label: str,
    y_label: str,
    log_x: bool = True,
    log_y: bool = True,
    note: str = "",
) -> Path | None:
    """Draw ``series`` (label -> one y per ``x``) to ``charts/<name>.svg``; ``None`` if skipped.

    ``note`` is a line under the title (e.g. the machine and run size).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    except ImportError:
        print(f"chart {name}.svg skipped: matplotlib is not installed (pip install '.[bench]')")
        return None
    matplotlib.rcParams["svg.hashsalt"] = "tracker-bench"
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: smaller, greppable
    fig, ax = plt.subplots(figsize=(6.4, 4.0), layout="constrained")
    markers = "osD^vP*X"
    for i, (label, ys) in enumerate(series.items()):
        points = [
            (a, b)
            for a, b in zip(x, ys, strict=True)
            if b is not None and _drawable(a, log_x) and _drawable(b, log_y)
        ]
        if points:
            xs, vs = zip(*points, strict=True)
            marker = markers[i % len(markers)] if len(points) <= 40 else None
            ax.plot(xs, vs, marker=marker, markersize=4, label=label)
    if log_x:
        ax.set_xscale("log")
    if log_y:
        ax.set_yscale("log")
    for axis, log in ((ax.xaxis, log_x), (ax.yaxis, log_y)):
        if log:  # ticks at 1, 2, 5 x 10^k, written as plain numbers (2,000, not 2x10^3)
            axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            axis.set_minor_formatter(NullFormatter())
        axis.set_major_formatter(FuncFormatter(_plain))
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    ax.set_title(textwrap.fill(title, 72) + (f"\n{note}" if note else ""), fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    CHARTS.mkdir(exist_ok=True)
    path = CHARTS / f"{name}.svg"
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)
    print(f"chart: {path.relative_to(CHARTS.parent.parent)}")
    return path


def _plain(value: float, _pos: object = None) -> str:
    if value >= 1 and float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _drawable(value: float, log: bool) -> bool:
    return math.isfinite(value) and (value > 0 or not log)
