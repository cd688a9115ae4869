"""Compaction benchmark: a long ``run_turn`` session with tool rounds, with and without
server-side compaction, side by side against the emulator in one run.

    python benchmarks/bench_compaction.py [--turns 1000] [--threshold 2000] [--every 100]

Two sessions in one emulator, their turns interleaved (so machine noise hits both alike): one
passes ``context_management=[{"type": "compaction", "compact_threshold": N}]`` to every
request, the other does not. Each turn is one user message whose answer needs a tool round
(the model calls ``weather``, the loop answers, the model replies): two requests. Per block of
``--every`` turns it prints, for each session:

- the largest request the client sent in the block: its ``input`` items and its body bytes
  (measured on the wire, an httpx request hook);
- the server's context: the largest ``usage.input_tokens`` of the block (the emulator counts
  the rendered window, four characters of JSON a token) and the window's items at the end of
  the block (``Emulator.window_items``: the context from its latest compaction item on);
- the median CPU time of a turn (client and in-process emulator together: ``process_time``).

At the end: compactions, errors, and whether every tool output is in the server's context
exactly once. Writes ``benchmarks/charts/compaction.svg`` (CPU per turn against turns) and
``compaction_context.svg`` (server context and largest request against turns), log axes, when
matplotlib is installed (the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai

from tracker import Tracker
from tracker.emulator import Emulator
from tracker.loop import function_tool, run_turn

CITIES = ("Paris", "Rome", "Tokyo", "Oslo", "Lima", "Cairo", "Quito", "Seoul", "Dakar", "Perth")


def weather(city: str) -> str:
    """Current weather in a city (deterministic)."""
    return f"{10 + sum(map(ord, city)) % 20} C, {('sunny', 'cloudy', 'rainy')[len(city) % 3]}"


TOOLS = (function_tool(weather),)


@dataclass
class Session:
    """One of the two sessions: its client, tracker and what was measured."""

    label: str
    options: dict[str, Any]
    client: openai.OpenAI
    tracker: Tracker = field(default_factory=Tracker)
    requests: list[tuple[int, int]] = field(default_factory=list)  # (input items, bytes)
    tokens: list[int] = field(default_factory=list)  # usage.input_tokens per response
    cpu: list[float] = field(default_factory=list)  # seconds per turn
    compactions: int = 0
    errors: int = 0
    rows: list[dict[str, float]] = field(default_factory=list)


def make_session(label: str, base_url: str, options: dict[str, Any]) -> Session:
    """A session whose client records each request's input items and body bytes."""
    sizes: list[tuple[int, int]] = []

    def record(request: httpx.Request) -> None:
        if request.url.path.endswith("/responses"):
            body = json.loads(request.content)
            items = body.get("input")
            sizes.append((len(items) if isinstance(items, list) else 1, len(request.content)))

    http = httpx.Client(event_hooks={"request": [record]})
    client = openai.OpenAI(base_url=base_url, api_key="bench", http_client=http)
    session = Session(label, options, client)
    session.requests = sizes
    return session


def one_turn(session: Session, turn: int) -> None:
    """One user turn with a tool round; record its CPU time, context and compactions."""
    city = CITIES[turn % len(CITIES)]
    text = f'Turn {turn}: how is the weather in {city}? weather({{"city": "{city}"}})'
    start = time.process_time()
    try:
        result = run_turn(
            session.client,
            model="emu-1",
            input=text,
            tools=TOOLS,
            tracker=session.tracker,
            **session.options,
        )
    except openai.OpenAIError as exc:
        session.errors += 1
        print(f"  {session.label} turn {turn}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return
    session.cpu.append(time.process_time() - start)
    for response in result.responses:
        usage = getattr(response, "usage", None)
        if usage is not None:
            session.tokens.append(usage.input_tokens)
        kinds = [item.type for item in getattr(response, "output", ())]
        session.compactions += kinds.count("compaction")


def close_block(session: Session, emu: Emulator, turns: int) -> None:
    """Record the block just finished and start the next one."""
    window = emu.window_items(response_id=session.tracker.previous_response_id)
    session.rows.append(
        {
            "turns": turns,
            "items": max((n for n, _ in session.requests), default=0),
            "bytes": max((b for _, b in session.requests), default=0),
            "tokens": max(session.tokens, default=0),
            "window": len(window),
            "ms": statistics.median(session.cpu) * 1e3 if session.cpu else 0.0,
        }
    )
    session.requests.clear()
    session.tokens.clear()
    session.cpu.clear()


def exactly_once(session: Session, emu: Emulator) -> str:
    """Whether the server's context holds one output per call of the session's chain."""
    items = emu.context_items(response_id=session.tracker.previous_response_id)
    calls = [i["call_id"] for i in items if i.get("type") == "function_call"]
    outputs = Counter(i["call_id"] for i in items if i.get("type") == "function_call_output")
    wrong = [c for c in {*calls, *outputs} if outputs[c] != 1 or c not in calls]
    if wrong:
        return f"{len(wrong)} calls NOT answered exactly once"
    return f"{len(calls)} calls, each output exactly once"


HEADER = (
    "| turns | largest request: compaction | no compaction "
    "| server context: compaction | no compaction | CPU/turn: compaction | no compaction |\n"
    "|---:|---:|---:|---:|---:|---:|---:|"
)


def print_row(a: dict[str, float], b: dict[str, float]) -> None:
    """One row of the side-by-side markdown table (printed as each block ends)."""
    print(
        f"| {a['turns']:,.0f} | {a['items']:.0f} items, {a['bytes']:,.0f} B "
        f"| {b['items']:.0f} items, {b['bytes']:,.0f} B "
        f"| {a['tokens']:,.0f} tok, {a['window']:,.0f} items "
        f"| {b['tokens']:,.0f} tok, {b['window']:,.0f} items "
        f"| {a['ms']:.1f} ms | {b['ms']:.1f} ms |",
        flush=True,
    )


def draw(with_c: Session, without: Session, args: argparse.Namespace) -> None:
    """Two charts (skipped without matplotlib): per-turn cost, and context and request size."""
    from _plot import chart

    x = [r["turns"] for r in with_c.rows]
    what = f"{args.turns:,} turns with tool rounds, compact_threshold {args.threshold:,}"
    chart(
        "compaction",
        "CPU per turn (client + in-process emulator)",
        x,
        {
            "compaction": [r["ms"] for r in with_c.rows],
            "no compaction": [r["ms"] for r in without.rows],
        },
        x_label="turns so far",
        y_label="milliseconds per turn (median of the block)",
        note=what,
    )
    chart(
        "compaction_context",
        "Server context (peak usage.input_tokens) and largest request body",
        x,
        {
            "server context, compaction (tokens)": [r["tokens"] for r in with_c.rows],
            "server context, no compaction (tokens)": [r["tokens"] for r in without.rows],
            "largest request, compaction (bytes)": [r["bytes"] for r in with_c.rows],
            "largest request, no compaction (bytes)": [r["bytes"] for r in without.rows],
        },
        x_label="turns so far",
        y_label="tokens (context) / bytes (request)",
        note=what,
    )


def main(argv: list[str]) -> int:
    """Run both sessions; print the table and the totals; draw the chart."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--threshold", type=int, default=2000, help="compact_threshold (tokens)")
    parser.add_argument("--every", type=int, default=100, help="turns per table row")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with Emulator(record_requests=False) as emu:
        management = [{"type": "compaction", "compact_threshold": args.threshold}]
        with_c = make_session("compaction", emu.base_url, {"context_management": management})
        without = make_session("no compaction", emu.base_url, {})
        print(HEADER, flush=True)
        for turn in range(1, args.turns + 1):
            for session in (with_c, without):
                one_turn(session, turn)
            if turn % args.every == 0 or turn == args.turns:
                for session in (with_c, without):
                    close_block(session, emu, turn)
                print_row(with_c.rows[-1], without.rows[-1])
        print()
        for session in (with_c, without):
            print(
                f"{session.label}: {session.compactions} compactions, {session.errors} errors, "
                f"{exactly_once(session, emu)}"
            )
    print(f"wall time {time.perf_counter() - started:.0f} s")
    draw(with_c, without, args)
    return 1 if with_c.errors or without.errors else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
