"""Store benchmark: the store time of one more turn of a long session, full vs incremental.

A turn here is what ``run_turn`` does to a session it holds: three saves (the lease renewed
after the model call and after the tools, then released), with one more round of history
(5 items: a user message, a function call, its output, two assistant messages) in between.
"store time" is the wall time spent in ``renew_session``/``release_session`` (snapshot, diff,
encoding and the store round trip), median over turns. ``full`` forces every save to rewrite
the whole record, as releases before incremental records did; ``incr`` appends the change.

    python benchmarks/bench_stores.py [--stores sqlite,redis,postgres] [--sizes 100,1000,...]

Redis and Postgres need their servers: the benchmark starts them as the tests do (Debian's
``redis-server``, ``initdb``/``postgres``) and skips a store it cannot start. Targets: ``incr``
at 50k items within 2x of ``incr`` at 100; growing a session to 5k items ~5x the cost of
growing it to 1k (not ~25x).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from _plot import chart

from tracker import Tracker
from tracker.stores import (
    LeasedSession,
    Store,
    _incremental,
    claim_session,
    open_store,
    release_session,
    renew_session,
)

ITEMS_PER_ROUND = 5


def one_round(tracker: Tracker, n: int) -> None:
    """Round ``n``: a user message, a call and its output, two assistant messages."""
    prepared = tracker.prepare([{"role": "user", "content": f"hi {n}"}], content_match=False)
    tracker.mark_sent(prepared)
    call = {"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}", "name": "f"}
    message = {"type": "message", "id": f"msg_{n}", "role": "assistant", "content": []}
    tracker.observe_response({"id": f"resp_{n}", "output": [{**call, "arguments": "{}"}, message]})
    output = {"type": "function_call_output", "call_id": f"call_{n}", "output": "ok"}
    tracker.mark_sent(tracker.prepare([output], content_match=False))
    answer = {"type": "message", "id": f"msg_{n}b", "role": "assistant", "content": []}
    tracker.observe_response({"id": f"resp_{n}b", "output": [answer]})


@contextmanager
def full_saves(on: bool) -> Iterator[None]:
    """Make every save rewrite the whole record (``on``), as before incremental records."""
    saved = _incremental._can_append
    if on:
        _incremental._can_append = lambda store: False  # type: ignore[assignment]
    try:
        yield
    finally:
        _incremental._can_append = saved


def turn(store: Store, session: LeasedSession, n: int) -> float:
    """One more turn of a held session; return its store time in seconds."""
    spent = 0.0
    start = time.perf_counter()
    renew_session(store, session, turn={"input": f"k{n}", "outputs": []})
    spent += time.perf_counter() - start
    one_round(session.tracker, n)
    for keep in (True, False):
        start = time.perf_counter()
        if keep:
            renew_session(store, session, turn={"input": f"k{n}", "outputs": [{"call_id": "x"}]})
        else:
            release_session(store, session)
        spent += time.perf_counter() - start
    return spent  # released: the next turn's first renew takes the lease again, as a claim


def held_session(store: Store, sid: str, rounds: int) -> tuple[LeasedSession, float]:
    """A session of ``rounds`` rounds this worker holds; also the time its claim took (a load)."""
    tracker = Tracker()
    for n in range(rounds):
        one_round(tracker, n)
    first = claim_session(store, sid, ttl=600)
    first.tracker = tracker
    release_session(store, first)
    start = time.perf_counter()
    session = claim_session(store, sid, ttl=600)
    return session, time.perf_counter() - start


def per_turn(store: Store, items: int, full: bool, turns: int) -> tuple[float, float]:
    """Median store time of one more turn at ``items`` items, and the claim (load) time."""
    sid = f"{'full' if full else 'incr'}-{items}"
    with full_saves(full):
        session, load = held_session(store, sid, items // ITEMS_PER_ROUND)
        base = items // ITEMS_PER_ROUND
        times = [turn(store, session, base + n) for n in range(turns)]
    return statistics.median(times), load


def grow(store: Store, items: int, full: bool) -> float:
    """Total store time of growing a new session to ``items`` items, one round per turn."""
    sid = f"grow-{'full' if full else 'incr'}-{items}"
    with full_saves(full):
        session = claim_session(store, sid, ttl=600)
        return sum(turn(store, session, n) for n in range(items // ITEMS_PER_ROUND))


def _servers(stack: ExitStack, names: list[str]) -> dict[str, str]:
    """Store URLs, starting a real redis-server / postgres for those asked for."""
    urls: dict[str, str] = {}
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-stores-")))
    for name in names:
        try:
            if name == "sqlite":
                urls[name] = f"sqlite:///{tmp}/bench.db"
            elif name == "redis":
                from _redis_server import RedisServer

                server = RedisServer(tmp)
                stack.callback(server.stop)
                urls[name] = server.url()
            elif name == "postgres":
                from _postgres_server import PostgresServer

                pg = PostgresServer()
                stack.callback(pg.stop)
                urls[name] = pg.url
        except BaseException as exc:  # pytest.skip/fail are BaseExceptions
            print(f"  {name}: skipped ({exc})")
    return urls


def _table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  " + "  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))


def main(argv: list[str]) -> int:
    """Run the benchmark; print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="sqlite,redis,postgres")
    parser.add_argument("--sizes", default="100,1000,10000,50000")
    parser.add_argument("--turns", type=int, default=7, help="turns per cell (median)")
    parser.add_argument("--grow", default="1000,5000", help="two session sizes to grow to")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    small, big = (int(s) for s in args.grow.split(","))
    series: dict[str, list[float | None]] = {}
    with ExitStack() as stack:
        urls = _servers(stack, args.stores.split(","))
        for name, url in urls.items():
            store = open_store(url)
            stack.callback(store.close)
            rows = []
            first: dict[bool, float] = {}
            for items in sizes:
                cells: list[str] = [f"{items:,}"]
                for full in (True, False):
                    t, load = per_turn(store, items, full, args.turns)
                    first.setdefault(full, t)
                    series.setdefault(f"{name} {'full' if full else 'incr'}", []).append(t * 1000)
                    cells += [f"{t * 1000:.2f}", f"{t / first[full]:.1f}x"]
                cells.append(f"{load * 1000:.1f}")
                rows.append(cells)
            header = ["items", "full ms", "vs 100", "incr ms", "vs 100", "load ms"]
            _table(
                f"{name}: store time of one more turn (3 saves), median of {args.turns}",
                header,
                rows,
            )
            growth = []
            for full in (True, False):
                a, b = grow(store, small, full), grow(store, big, full)
                growth.append(["full" if full else "incr", f"{a:.2f}", f"{b:.2f}", f"{b / a:.1f}x"])
            _table(
                f"{name}: store time of growing a session",
                ["saves", f"to {small:,} s", f"to {big:,} s", "ratio"],
                growth,
            )
    chart(
        "stores",
        "Store time of one more run_turn turn (3 saves): full rewrite vs incremental",
        sizes,
        series,
        x_label="session items",
        y_label="milliseconds (median)",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
