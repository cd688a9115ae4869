"""Emulator benchmark: the handler time of one request at the end of a long chain.

"Handler time" is what the HTTP handler spends on one ``POST /v1/responses`` besides the
socket: ``Service.handle`` (validation, context resolution and checks, the script, storing,
the Response object) plus the ``--state`` save that follows it. Each request continues the
chain (``previous_response_id`` = the latest response) or the conversation with one user
message, so the chain grows by one per request. Chains are first built by writing stored
responses straight into the state (building a 5,000-response chain through requests took
minutes before the emulator scaled), then one warm-up request per chain (the first request
after a start indexes the chain once), then the measured requests, round-robin across sizes
so that every size sees the same machine noise. Median per cell.

    python benchmarks/bench_emulator.py [--sizes 10,100,1000,5000] [--requests 15]

Columns: ``chain`` (``previous_response_id``), ``chain+state`` (the same with ``state_path``,
the journal append included), ``conversation`` (a conversation with as many items as the
chain). Target: at 5,000 responses within 3x of at 10.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _plot import chart

from tracker.emulator import Emulator
from tracker.emulator._state import State, StoredConversation, StoredResponse

MODEL = "gpt-4.1-mini"


def _grow_chain(state: State, responses: int) -> str | None:
    """Store ``responses`` responses of a tool loop (user -> call, output -> answer)."""
    previous: str | None = None
    for n in range(responses):
        ids = state.ids
        call_id = f"call_{n // 2}"
        if n % 2 == 0:
            given = {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": f"question {n} lookup({{}})"}],
            }
            made = {
                "type": "function_call",
                "name": "lookup",
                "arguments": "{}",
                "call_id": call_id,
                "status": "completed",
            }
        else:
            given = {"type": "function_call_output", "call_id": call_id, "output": f"r{n}"}
            made = {
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {
                        "type": "output_text",
                        "text": f"answer {n}",
                        "annotations": [],
                        "logprobs": [],
                    }
                ],
            }
        given = {"id": ids.item_id(given["type"]), **given, "status": "completed"}
        made = {"id": ids.item_id(made["type"]), **made}
        response_id = ids.response_id()
        body = {"model": MODEL, "input": [given], "previous_response_id": previous}
        state.responses[response_id] = StoredResponse(
            response_id, body, [given], [made], previous, None, True
        )
        state.index_items([given, made])
        state.remember_output([made])
        previous = response_id
    return previous


def _conversation(state: State, responses: int) -> str:
    scratch = State(ids=state.ids)
    tail = _grow_chain(scratch, responses)
    items = scratch.chain(tail) if tail else []
    conv = StoredConversation(
        id=state.ids.conversation_id(), created_at=0, metadata={}, items=items
    )
    state.conversations[conv.id] = conv
    state.index_items(items)
    return conv.id


class Cell:
    """One emulator holding one chain (or conversation) of a given size."""

    def __init__(self, size: int, kind: str, tmp: Path) -> None:
        path = tmp / f"{kind}-{size}.state" if kind == "chain+state" else None
        self.emu = Emulator(seed=size, state_path=path)
        self.emu.start()
        state = self.emu.state
        self.conversation: str | None = None
        self.previous: str | None = None
        with state.lock:
            if kind == "conversation":
                self.conversation = _conversation(state, size)
            else:
                self.previous = _grow_chain(state, size)
        self.emu._save()  # the grown state on disk (with --state), not part of a request
        self.times: list[float] = []
        self.request()  # warm-up: the first request after a start may index the chain

    def request(self) -> float:
        """One handled request (service + save), in seconds."""
        body: dict[str, Any] = {"model": MODEL, "input": "hello again"}
        if self.conversation is not None:
            body["conversation"] = self.conversation
        else:
            body["previous_response_id"] = self.previous
        start = time.perf_counter()
        reply = self.emu.service.handle("POST", "/v1/responses", {}, body)
        self.emu._save()
        elapsed = time.perf_counter() - start
        if reply.status != 200:
            raise RuntimeError(f"request failed: {reply.body}")
        if self.conversation is None:
            self.previous = reply.body["id"]
        return elapsed


def _table(title: str, header: list[str], rows: list[list[str]]) -> None:
    print(f"\n{title}")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  " + "  ".join(cell.rjust(w) for cell, w in zip(row, widths, strict=True)))


def run(sizes: list[int], kinds: list[str], requests: int) -> dict[tuple[str, int], float]:
    """Median handler time (ms) per (kind, size), measured round-robin."""
    with tempfile.TemporaryDirectory() as tmp:
        cells = {(k, s): Cell(s, k, Path(tmp)) for k in kinds for s in sizes}
        try:
            for _ in range(requests):
                for cell in cells.values():
                    cell.times.append(cell.request())
        finally:
            for cell in cells.values():
                cell.emu.stop()
    return {key: statistics.median(cell.times) * 1000 for key, cell in cells.items()}


def main(argv: list[str]) -> int:
    """Run the benchmark; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000,5000")
    parser.add_argument("--kinds", default="chain,chain+state,conversation")
    parser.add_argument("--requests", type=int, default=30, help="requests per cell (median)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    kinds = args.kinds.split(",")
    medians = run(sizes, kinds, args.requests)
    base = sizes[0]
    header = ["responses", *(f"{k} ms" for k in kinds), *(f"{k} x{base}" for k in kinds)]
    rows = []
    for size in sizes:
        ms = [f"{medians[k, size]:.2f}" for k in kinds]
        ratio = [f"{medians[k, size] / medians[k, base]:.1f}" for k in kinds]
        rows.append([str(size), *ms, *ratio])
    _table(
        f"Handler time of one request at the end of a chain (median of {args.requests})",
        header,
        rows,
    )
    series = {k: [medians[k, size] for size in sizes] for k in kinds}
    chart(
        "emulator",
        "Emulator handler time per request",
        sizes,
        series,
        x_label="responses in the chain",
        y_label="ms per request (median)",
    )
    return 0


def profile(size: int, requests: int, sort: str = "cumulative") -> None:
    """cProfile ``requests`` chain requests at ``size`` responses (``--profile SIZE``)."""
    import cProfile
    import pstats

    with tempfile.TemporaryDirectory() as tmp:
        cell = Cell(size, "chain+state", Path(tmp))
        profiler = cProfile.Profile()
        call: Callable[[], float] = cell.request
        profiler.enable()
        for _ in range(requests):
            call()
        profiler.disable()
        cell.emu.stop()
    pstats.Stats(profiler).sort_stats(sort).print_stats(25)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--profile":
        profile(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 5)
        raise SystemExit(0)
    raise SystemExit(main(sys.argv[1:]))
