"""Store benchmark: the store time of one more ``run_turn`` turn of a long session.

A turn here is what ``run_turn`` does to a session this worker served last: claim it (with
the session it released, ``claim_session(reuse=...)``, as the loop does), renew the lease after
the model call and after the tools, then release it, with one more round of history (5 items:
a user message, a function call, its output, two assistant messages) in between. "store time"
is the wall time of those four calls (snapshot, diff, encoding and the store round trip),
median over turns. ``load`` is a claim without ``reuse`` (a new process: reads the whole
session), after the timed turns, so it reads a base and the change log they appended.
``--full`` adds the same turn with every save rewriting the whole record and every claim
loading the session, as before incremental records; ``--stateless`` adds the same turn of a
``store=False`` session (its snapshot holds the whole transcript: every item, in full).

    python benchmarks/bench_stores.py [--stores sqlite,redis,postgres] [--sizes 100,1000,...]

Redis and Postgres need their servers: the benchmark starts them as the tests do (Debian's
``redis-server``, ``initdb``/``postgres``) and skips a store it cannot start. Targets: one more
turn at 50k items within 2x of at 100; growing a session to 5k items ~5x the cost of growing it
to 1k (not ~25x).
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
from typing import Any

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


#: The session kinds timed: incremental saves, whole-record saves, a stateless session's.
MODES = ("incr", "full", "stateless")


def round_items(n: int) -> list[list[dict[str, Any]]]:
    """Round ``n``: a user message; a call and a message; the call's output; a message."""
    call = {"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}", "name": "f"}
    message = {"type": "message", "role": "assistant", "content": []}
    return [
        [{"role": "user", "content": f"hi {n}"}],
        [{**call, "arguments": "{}"}, {**message, "id": f"msg_{n}"}],
        [{"type": "function_call_output", "call_id": f"call_{n}", "output": "ok"}],
        [{**message, "id": f"msg_{n}b"}],
    ]


def one_round(tracker: Tracker, n: int) -> None:
    """Round ``n`` of ``round_items``: two requests, each answered."""
    user, first, output, answer = round_items(n)
    tracker.mark_sent(tracker.prepare(user, content_match=False))
    tracker.observe_response({"id": f"resp_{n}", "output": first})
    tracker.mark_sent(tracker.prepare(output, content_match=False))
    tracker.observe_response({"id": f"resp_{n}b", "output": answer})


def grown_tracker(rounds: int, mode: str) -> Tracker:
    """A tracker after ``rounds`` rounds; a stateless one is handed its history at once (a
    stateless request replays, and checks, the whole transcript: growing it turn by turn to
    50k items would take the benchmark quadratic time outside what it measures)."""
    tracker = Tracker()
    for n in range(rounds):
        one_round(tracker, n)
    if mode == "stateless":
        history = []
        for n in range(rounds):
            history += [item for part in round_items(n) for item in part]
        tracker.go_stateless(history)
    return tracker


@contextmanager
def full_saves(mode: str) -> Iterator[None]:
    """Mode ``"full"``: every save rewrites the whole record, as before incremental records."""
    saved = _incremental._can_append
    if mode == "full":
        _incremental._can_append = lambda store: False  # type: ignore[assignment]
    try:
        yield
    finally:
        _incremental._can_append = saved


def turn(store: Store, session: LeasedSession, n: int, mode: str) -> tuple[LeasedSession, float]:
    """One more turn of a session this worker released; the session and its store time."""
    start = time.perf_counter()
    reuse = None if mode == "full" else session
    session = claim_session(store, session.session_id, ttl=600, reuse=reuse)
    renew_session(store, session, turn={"input": f"k{n}", "outputs": []})
    spent = time.perf_counter() - start
    one_round(session.tracker, n)
    start = time.perf_counter()
    renew_session(store, session, turn={"input": f"k{n}", "outputs": [{"call_id": "x"}]})
    release_session(store, session)
    return session, spent + time.perf_counter() - start


def held_session(store: Store, sid: str, rounds: int, mode: str) -> LeasedSession:
    """A released session of ``rounds`` rounds (written whole: a base, no change log)."""
    tracker = grown_tracker(rounds, mode)
    first = claim_session(store, sid, ttl=600)
    first.tracker = tracker
    release_session(store, first)
    return first


def load_time(store: Store, sid: str) -> tuple[float, LeasedSession]:
    """The time a claim without reuse takes (a new process: reads base and change log), and
    the session it claimed, released."""
    start = time.perf_counter()
    session = claim_session(store, sid, ttl=600)
    load = time.perf_counter() - start
    release_session(store, session)
    return load, session


def compaction(store: Store, session: LeasedSession, per_change: float) -> tuple[float, float]:
    """The time of one save that compacts ``session`` (writes its record as a new base), and
    the turns between two compactions: a log of as many changes as its base allows
    (``COMPACT_MAX_CHANGES``, ``COMPACT_BYTES_PER_CHANGE``) or one that outweighs the base, at
    ``per_change`` bytes a change (4 saves a turn)."""
    held = session.held
    assert held is not None
    inc = _incremental
    changes = min(
        max(inc.COMPACT_MAX_CHANGES, held.base_bytes // inc.COMPACT_BYTES_PER_CHANGE),
        max(inc.COMPACT_MIN_BYTES, held.base_bytes) / per_change,
    )
    session = claim_session(store, session.session_id, ttl=600, reuse=session)
    saved = inc.COMPACT_MAX_CHANGES, inc.COMPACT_BYTES_PER_CHANGE
    inc.COMPACT_MAX_CHANGES, inc.COMPACT_BYTES_PER_CHANGE = 0, 1 << 62  # type: ignore[misc]
    try:
        start = time.perf_counter()
        renew_session(store, session)
        spent = time.perf_counter() - start
    finally:
        inc.COMPACT_MAX_CHANGES, inc.COMPACT_BYTES_PER_CHANGE = saved  # type: ignore[misc]
    release_session(store, session)
    return spent, changes / 4


def per_turn(
    stores: dict[str, Store], sizes: list[int], modes: list[str], turns: int
) -> dict[tuple[str, str, int], tuple[float, float]]:
    """Median store time of one more turn and the load time, per (store, mode, items).

    The cells take turns (one turn of each in every round), so a change in the machine's
    load during the run weighs on every cell alike.
    """
    sessions: dict[tuple[str, str, int], LeasedSession] = {}
    times: dict[tuple[str, str, int], list[float]] = {}
    for name, store in stores.items():
        for mode in modes:
            for items in sizes:
                with full_saves(mode):
                    key = (name, mode, items)
                    rounds = items // ITEMS_PER_ROUND
                    sessions[key] = held_session(store, f"{mode}-{items}", rounds, mode)
                    times[key] = []
    logs = {key: _log(session) for key, session in sessions.items()}
    for n in range(turns):
        for key, session in sessions.items():
            name, mode, items = key
            with full_saves(mode):
                sessions[key], spent = turn(
                    stores[name], session, items // ITEMS_PER_ROUND + n, mode
                )
            times[key].append(spent)
    # Loaded after the turns, so with the change log they appended (4 changes a turn).
    loads = {key: load_time(stores[key[0]], f"{key[1]}-{key[2]}") for key in sessions}
    for key, (_load, session) in loads.items():
        if key[1] != "full":
            # The mean size of the changes the timed turns appended.
            (bytes_before, count_before), (bytes_after, count_after) = logs[key], _log(session)
            per_change = (bytes_after - bytes_before) / max(1, count_after - count_before)
            COMPACTIONS[key] = compaction(stores[key[0]], session, per_change)
    return {key: (statistics.median(times[key]), loads[key][0]) for key in sessions}


def _log(session: LeasedSession) -> tuple[int, int]:
    """The size and length of the change log of the record ``session`` holds."""
    held = session.held
    return (0, 0) if held is None else (held.log_bytes, held.log_count)


#: (store, mode, items) -> (seconds of one compacting save, turns between two compactions)
COMPACTIONS: dict[tuple[str, str, int], tuple[float, float]] = {}
_MEDIANS: dict[tuple[str, str, int], float] = {}


def grow(store: Store, small: int, big: int, mode: str) -> tuple[float, float]:
    """Total store time of growing a new session to ``small`` and another to ``big`` items,
    one round per turn. The small session's turns are spread evenly among the big one's, so
    both grow under the same machine load."""
    rounds = (small // ITEMS_PER_ROUND, big // ITEMS_PER_ROUND)
    totals = [0.0, 0.0]
    done = [0, 0]
    with full_saves(mode):
        sessions = []
        for size in (small, big):
            session = claim_session(store, f"grow-{mode}-{size}", ttl=600)
            if mode == "stateless":
                session.tracker.go_stateless(())
            release_session(store, session)
            sessions.append(session)
        for n in range(rounds[1]):
            small_due = done[0] < rounds[0] and done[0] * rounds[1] <= n * rounds[0]
            due = [1, 0] if small_due else [1]
            for which in due:
                sessions[which], spent = turn(store, sessions[which], done[which], mode)
                totals[which] += spent
                done[which] += 1
    return totals[0], totals[1]


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


def _tag(name: str, mode: str, full: str = " full") -> str:
    return name + {"incr": "", "full": full, "stateless": " stateless"}[mode]


_Cells = dict[str, dict[str, dict[int, tuple[float, float]]]]


def _turn_table(cells: _Cells, sizes: list[int], turns: int) -> None:
    """Print the one-more-turn table: per store and mode, the median and its ratio to the
    first size; then the load times."""
    names = list(cells)
    modes = list(cells[names[0]]) if names else []
    header = ["items"]
    for name in names:
        for mode in modes:
            header += [f"{_tag(name, mode)} ms", "vs first"]
    header += [f"{_tag(name, mode)} load ms" for name in names for mode in modes]
    rows = []
    for items in sizes:
        row = [f"{items:,}"]
        for name in names:
            for mode in modes:
                t, first = cells[name][mode][items][0], cells[name][mode][sizes[0]][0]
                row += [f"{t * 1000:.2f}", f"{t / first:.1f}x"]
        row += [f"{cells[name][mode][items][1] * 1000:.1f}" for name in names for mode in modes]
        rows.append(row)
    _table(
        f"store time of one more run_turn turn (claim, 2 renewals, release), median of {turns}",
        header,
        rows,
    )


def _compaction_table(sizes: list[int]) -> None:
    """Print what compactions cost: one compacting save, how often, per turn on average."""
    rows = []
    for (name, mode, items), (spent, turns) in sorted(COMPACTIONS.items()):
        median = _MEDIANS[(name, mode, items)]
        rows.append(
            [
                _tag(name, mode),
                f"{items:,}",
                f"{spent * 1000:.1f}",
                f"{turns:.0f}",
                f"{spent / turns * 1000:.2f}",
                f"{(median + spent / turns) / median:.2f}x",
            ]
        )
    _table(
        "compaction: one save writing a new base, the turns between two, its share of a turn",
        ["store", "items", "compaction ms", "every turns", "ms a turn", "turn with it"],
        rows,
    )


def main(argv: list[str]) -> int:
    """Run the benchmark; print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", default="sqlite,redis,postgres")
    parser.add_argument("--sizes", default="100,1000,10000,50000")
    parser.add_argument("--turns", type=int, default=15, help="turns per cell (median)")
    parser.add_argument("--grow", default="1000,5000", help="two session sizes to grow to")
    parser.add_argument("--full", action="store_true", help="also time whole-record saves")
    parser.add_argument("--stateless", action="store_true", help="also a store=False session")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    small, big = (int(s) for s in args.grow.split(","))
    modes = [m for m in MODES if m == "incr" or getattr(args, m)]
    with ExitStack() as stack:
        urls = _servers(stack, args.stores.split(","))
        stores = {name: open_store(url) for name, url in urls.items()}
        for store in stores.values():
            stack.callback(store.close)
        # cells[store][mode][items] = (turn s, load s)
        cells: _Cells = {name: {mode: {} for mode in modes} for name in stores}
        for (name, mode, items), cell in per_turn(stores, sizes, modes, args.turns).items():
            cells[name][mode][items] = cell
            _MEDIANS[(name, mode, items)] = cell[0]
        _turn_table(cells, sizes, args.turns)
        _compaction_table(sizes)
        chart(
            "stores",
            "Store time of one more run_turn turn (claim, 2 renewals, release)",
            sizes,
            {
                _tag(name, mode, " full rewrite"): [
                    cells[name][mode][items][0] * 1000 for items in sizes
                ]
                for name in stores
                for mode in modes
            },
            x_label="session items",
            y_label="milliseconds (median)",
        )
        growth = []
        for name, store in stores.items():
            for mode in modes:
                a, b = grow(store, small, big, mode)
                growth.append([_tag(name, mode), f"{a:.2f}", f"{b:.2f}", f"{b / a:.1f}x"])
        _table(
            "store time of growing a session, one round per turn",
            ["store", f"to {small:,} s", f"to {big:,} s", "ratio"],
            growth,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
