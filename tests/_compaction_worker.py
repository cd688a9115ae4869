"""The next turns of a compacted SQLite session, run in a fresh process (``tests/_fresh.py``)
by ``tests/test_compaction_loop.py``: prints the first request's ``previous_response_id`` of
each turn as one JSON line."""

from __future__ import annotations

import json

from _loop_helpers import PROMPT, TOOLS
from openai import OpenAI

from tracker.loop import run_turn
from tracker.stores import SQLiteStore


def main(base_url: str, db: str) -> None:
    """Run two turns of session ``chat`` in ``db`` against the emulator at ``base_url``."""
    store = SQLiteStore(db)
    try:
        with OpenAI(base_url=base_url, api_key="k", max_retries=0) as client:
            opened = [
                run_turn(
                    client,
                    model="emu-1",
                    input=PROMPT,
                    tools=TOOLS,
                    session_store=store,
                    session_id="chat",
                )
                .requests[0]
                .previous_response_id
                for _ in range(2)
            ]
    finally:
        store.close()
    print(json.dumps(opened))
