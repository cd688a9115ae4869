"""A worker process for the durable-state end-to-end tests (run as a script, not collected).

    python _store_worker.py step STORE_URL SESSION BASE_URL [MESSAGE] [--hang-in-save MARKER]
    python _store_worker.py many STORE_URL BASE_URL WORKER_NAME SESSIONS_JSON
    python _store_worker.py churn STORE_URL SESSION
    python _store_worker.py grow STORE_URL SESSION MAX_CHANGES [HANG_MARKER]

``step`` serves one request of a session, as one short-lived process (a serverless function):
load the tracker, send the pending calls' outputs (or MESSAGE as a new user turn), observe the
response, save with compare-and-set, exit. With ``--hang-in-save`` it writes MARKER inside the
save (after the write, before the commit) and hangs there, so the test can SIGKILL it mid-save.

``many`` serves interleaved turns of several sessions, competing with other workers: a turn
is claimed with a compare-and-set on a lease before anything is sent, so no two workers ever
send the same delta; a lost claim (ConflictError) is retried from a fresh load.

``churn`` saves bigger and bigger states in a tight loop until killed.

``grow`` adds one round to a tracker and saves it with ``save_tracker`` (incremental: appends,
and a compaction every MAX_CHANGES saves) in a tight loop until killed, printing each
acknowledged version; version ``v`` holds rounds ``0 .. v - 1``. With HANG_MARKER it writes
the marker inside its first compaction (the new base written, not committed) and hangs there.

Every mode prints one JSON line with what it did; a 400 from the server exits with status 3.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracker import ConflictError, Tracker
from tracker.stores import (
    PostgresStore,
    RedisStore,
    SQLiteStore,
    Store,
    load_tracker,
    open_store,
    save_tracker,
)

if TYPE_CHECKING:
    from openai import OpenAI

TOOLS: list[Any] = [
    {"type": "function", "name": "weather", "parameters": {"type": "object", "properties": {}}},
    {"type": "function", "name": "add", "parameters": {"type": "object", "properties": {}}},
]
MODEL = "emu-1"


def output_for(call_id: str) -> str:
    """The tool result of a call: derived from its id, so any worker computes the same one."""
    return f"result-of-{call_id}"


def outputs(tracker: Tracker) -> list[dict[str, Any]]:
    """One function_call_output per call the server holds without an output."""
    return [
        {"type": "function_call_output", "call_id": c, "output": output_for(c)}
        for c in tracker.pending_call_ids
    ]


def _hanging(store: Store, marker: str) -> Store:
    """Make ``store`` write ``marker`` inside its save and then hang until killed."""

    def hang(session_id: str) -> None:
        Path(marker).write_text(session_id)
        time.sleep(120)

    assert isinstance(store, SQLiteStore | RedisStore | PostgresStore)
    store._before_commit = hang  # type: ignore[method-assign]
    return store


def step(url: str, session: str, base_url: str, rest: list[str]) -> dict[str, Any]:
    """Serve one request of ``session``; see the module docstring."""
    message = rest[0] if rest and not rest[0].startswith("--") else None
    store = open_store(url)
    if "--hang-in-save" in rest:
        store = _hanging(store, rest[rest.index("--hang-in-save") + 1])
    tracker, version = load_tracker(store, session)
    # The #3187 crash: turn 2 needs the call_id -> item id mapping of turn 1's calls.
    restored = {c: tracker.item_id_for_call(c) for c in tracker.pending_call_ids}
    items = outputs(tracker) or [{"role": "user", "content": message}]
    prepared = tracker.prepare(items, content_match=False)
    tracker.mark_sent(prepared)
    from openai import OpenAI

    with OpenAI(base_url=base_url, api_key="test", max_retries=0) as client:
        response = client.responses.create(model=MODEL, tools=TOOLS, **prepared.request_kwargs())
    tracker.observe_response(response)
    new_version = save_tracker(store, session, tracker, version)
    store.close()
    return {
        "response_id": response.id,
        "version": new_version,
        "restored_item_ids": restored,
        "sent": prepared.request_input(),
        "calls": list(tracker.pending_call_ids),
        "text": response.output_text,
    }


def many(url: str, base_url: str, me: str, sessions_json: str) -> dict[str, Any]:
    """Serve turns of every session until all are answered; see the module docstring."""
    from openai import OpenAI

    scripts: dict[str, list[str]] = json.loads(sessions_json)
    rng = random.Random(me)
    with OpenAI(base_url=base_url, api_key="test", max_retries=0) as client:
        worker = Worker(open_store(url), client, me)
        while len(worker.done) < len(scripts):
            todo = [s for s in scripts if s not in worker.done]
            rng.shuffle(todo)
            for session in todo:
                worker.serve_turn(session, scripts[session])
        worker.store.close()
    return worker.stats


class Worker:
    """One competing worker: its store, client, name, and what it counted."""

    def __init__(self, store: Store, client: OpenAI, me: str) -> None:
        self.store = store
        self.client = client
        self.me = me
        self.done: set[str] = set()
        self.stats = {"requests": 0, "conflicts": 0, "busy": 0}

    def serve_turn(self, session: str, script: list[str]) -> None:
        """Serve the next request of ``session`` unless another worker has it in flight."""
        loaded = self.store.load(session)
        record = loaded.state if loaded else {"tracker": None, "turn": 0, "lease": None}
        version = loaded.version if loaded else 0
        if record["lease"] is not None:
            self.stats["busy"] += 1
            time.sleep(0.001)
            return
        state = record["tracker"]
        tracker = Tracker() if state is None else Tracker.from_state(state)
        items = outputs(tracker)
        turn = record["turn"]
        if not items:
            if turn == len(script):
                self.done.add(session)
                return
            items, turn = [{"role": "user", "content": script[turn]}], turn + 1
        try:
            # Claim first, send second: of all workers that loaded this version, one gets here.
            version = self.store.save(session, {**record, "lease": self.me}, version)
        except ConflictError:
            self.stats["conflicts"] += 1
            return
        prepared = tracker.prepare(items, content_match=False)
        tracker.mark_sent(prepared)
        response = self.client.responses.create(
            model=MODEL, tools=TOOLS, **prepared.request_kwargs()
        )
        self.stats["requests"] += 1
        tracker.observe_response(response)
        # Holding the lease, nobody else writes this session: this save cannot conflict.
        new = {"tracker": tracker.to_state(), "turn": turn, "lease": None}
        self.store.save(session, new, version)


def churn(url: str, session: str) -> None:
    """Save ever-growing states until killed: state ``n`` is saved as version ``n + 1``."""
    store = open_store(url)
    loaded = store.load(session)
    n = 0 if loaded is None else loaded.version
    started = False
    while True:
        store.save(session, {"n": n, "pad": ["x" * 1000] * (n % 200)}, n)
        n += 1
        if not started:
            print(json.dumps({"started": True}), flush=True)
            started = True


def one_round(tracker: Tracker, n: int) -> None:
    """Round ``n``: a user message, a call answered, an assistant message (ids from ``n``)."""
    prepared = tracker.prepare([{"role": "user", "content": f"hi {n}"}], content_match=False)
    tracker.mark_sent(prepared)
    call = {"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}", "name": "f"}
    tracker.observe_response({"id": f"resp_{n}", "output": [{**call, "arguments": "{}"}]})
    output = {"type": "function_call_output", "call_id": f"call_{n}", "output": "ok"}
    tracker.mark_sent(tracker.prepare([output], content_match=False))
    message = {"type": "message", "id": f"msg_{n}", "role": "assistant", "content": []}
    tracker.observe_response({"id": f"resp_{n}b", "output": [message]})


def _hanging_in_compaction(store: Store, marker: str) -> Store:
    """Make ``store`` write ``marker`` inside its first compaction, then hang until killed."""
    save = store.save
    compacting: list[bool] = []

    def flagged(session_id: str, state: Any, expected_version: Any, **options: Any) -> int:
        compacting.append(bool(expected_version))  # a full save of an existing session
        try:
            return save(session_id, state, expected_version, **options)
        finally:
            compacting.pop()

    def hang(session_id: str) -> None:
        if compacting and compacting[-1]:
            Path(marker).write_text(session_id)
            time.sleep(120)

    assert isinstance(store, SQLiteStore | RedisStore | PostgresStore)
    store.save = flagged  # type: ignore[method-assign]
    store._before_commit = hang  # type: ignore[method-assign]
    return store


def grow(url: str, session: str, max_changes: str, marker: str | None = None) -> None:
    """Grow the session one round per save until killed; print each acknowledged version."""
    from tracker.stores import _incremental

    _incremental.COMPACT_MAX_CHANGES = int(max_changes)
    _incremental.COMPACT_BYTES_PER_CHANGE = 1 << 30  # the count alone decides
    store = open_store(url)
    if marker is not None:
        store = _hanging_in_compaction(store, marker)
    tracker, version = load_tracker(store, session)
    print(json.dumps({"started": version}), flush=True)
    while True:
        one_round(tracker, version)
        version = save_tracker(store, session, tracker, version)
        print(version, flush=True)


def main(argv: list[str]) -> int:
    """Run one mode; print its JSON report; 3 if the server answered 400."""
    mode, args = argv[0], argv[1:]
    if mode == "churn":
        churn(*args)  # without importing openai: the kill loop wants a fast start
    if mode == "grow":
        grow(*args)
    from openai import BadRequestError

    try:
        report = step(args[0], args[1], args[2], args[3:]) if mode == "step" else many(*args)
    except BadRequestError as exc:
        print(json.dumps({"error": 400, "message": str(exc)}), flush=True)
        return 3
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
