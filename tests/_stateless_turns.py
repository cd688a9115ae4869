"""Stateless turns driven by hand over the real client, here or in a fresh process.

``stateless_turn`` is one user turn of a ``Tracker(store=False)`` loop written by hand (the
replay, the echo tools' parallel rounds, to the answer). ``turns_from_sqlite`` runs a block of
them on the tracker a SQLite session holds and saves it back: the body of a ``FreshProcess``
worker, so a session is resumed in a new process (``tests/test_stateless.py``).
"""

from __future__ import annotations

from typing import Any

from _loop_helpers import PROMPT
from openai import OpenAI, Stream
from openai.types.responses import Response, ResponseStreamEvent

from tracker import Tracker
from tracker.stores import SQLiteStore, load_tracker, save_tracker

REASONING_MODEL = "emu-reason-1"


def _create(client: OpenAI, body: dict[str, Any], stream: bool) -> Any:
    """POST /responses with the real client, without its per-field param transform (slow on
    long inputs); a stream is read to its final response."""
    if not stream:
        return client.post("/responses", body=body, cast_to=Response)
    events = client.post(
        "/responses",
        body={**body, "stream": True},
        cast_to=Response,
        stream=True,
        stream_cls=Stream[ResponseStreamEvent],
    )
    with events:
        for event in events:
            if event.type == "response.completed":
                return event.response
    raise AssertionError("no response.completed")


def stateless_turn(client: OpenAI, t: Tracker, text: str, stream: bool) -> list[str]:
    """One user turn by hand: replay, run the (echo) tools in parallel rounds, to the answer."""
    history: list[Any] = [{"role": "user", "content": text}]
    calls: list[str] = []
    while True:
        p = t.prepare(history, content_match=False)
        t.mark_sent(p)
        body = {
            "model": REASONING_MODEL,
            "tools": [
                {"type": "function", "name": n, "parameters": {}} for n in ("weather", "add")
            ],
            "include": ["reasoning.encrypted_content"],
            "store": False,
            "prompt_cache_key": t.prompt_cache_key,
            **p.request_kwargs(),
        }
        response = _create(client, body, stream)
        t.observe_response(response)
        new = [o for o in response.output if o.type == "function_call"]
        if not new:
            return calls
        calls += [c.call_id for c in new]
        history = [
            {"type": "function_call_output", "call_id": c.call_id, "output": "ok"} for c in new
        ]


def block_turns(client: OpenAI, t: Tracker, first: int, count: int) -> None:
    """Turns ``first`` .. ``first + count - 1`` of the 50-turn session: the prompt with tool
    rounds every third turn, streamed every other turn."""
    for turn in range(first, first + count):
        stateless_turn(client, t, PROMPT if turn % 3 == 0 else f"turn {turn}", turn % 2 == 1)


def turns_from_sqlite(db: str, base_url: str, first: int, count: int) -> None:
    """In a worker: load session ``s`` from SQLite, run a block of turns, save it back."""
    store = SQLiteStore(db)
    t, version = load_tracker(store, "s")
    with OpenAI(base_url=base_url, api_key="k", max_retries=0) as client:
        block_turns(client, t, int(first), int(count))
    save_tracker(store, "s", t, version)
