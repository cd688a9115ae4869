"""tracker.loop with stores: each turn loads, runs and saves a session with compare-and-set."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from _fresh import FreshProcess
from _loop_helpers import ANSWER, PROMPT, TOOLS, request_bodies
from openai import AsyncOpenAI, OpenAI

from tracker import SessionBusyError, Tracker, UsageError
from tracker.emulator import Emulator
from tracker.loop import MaxTurnsError, RequestSent, arun_turn, run_turn
from tracker.stores import (
    AsyncMemoryStore,
    AsyncSQLiteStore,
    MemoryStore,
    SQLiteStore,
    load_tracker,
)

ROOT = Path(__file__).resolve().parents[1]


def test_turns_continue_through_the_store(client: OpenAI, emulator: Emulator) -> None:
    """Each turn saves claim, progress and release; the next continues from the saved response."""
    store = MemoryStore()
    first = run_turn(
        client, model="emu-1", input=PROMPT, tools=TOOLS, session_store=store, session_id="s"
    )
    second = run_turn(
        client, model="emu-1", input="ok", tools=TOOLS, session_store=store, session_id="s"
    )
    # claim, 2 x (after the model call, after the tools), release; then claim, release
    assert (6, 8) == (first.session_version, second.session_version)
    assert first.last_response_id == second.requests[0].previous_response_id
    assert second.last_response_id == load_tracker(store, "s")[0].previous_response_id
    # The second turn claimed with the tracker this process released, without a reload.
    assert first.tracker is second.tracker
    store.save("s", store.load("s").state, 8)  # type: ignore[union-attr]  # another writer
    third = run_turn(client, model="emu-1", input="ok", session_store=store, session_id="s")
    assert third.tracker is not second.tracker  # so the third turn loaded what it wrote
    assert second.last_response_id == third.requests[0].previous_response_id


def test_a_busy_session_is_refused_and_nothing_is_sent_twice(
    client: OpenAI, emulator: Emulator
) -> None:
    """While a turn holds the lease, another worker's turn is refused (SessionBusyError)."""
    store = MemoryStore()
    other: list[BaseException] = []

    def another_worker(event: Any) -> None:
        if isinstance(event, RequestSent) and not other:
            with pytest.raises(SessionBusyError) as info:
                run_turn(
                    client,
                    model="emu-1",
                    input="other",
                    session_store=store,
                    session_id="s",
                    lease_wait=0.05,
                )
            other.append(info.value)

    result = run_turn(
        client,
        model="emu-1",
        input=PROMPT,
        tools=TOOLS,
        session_store=store,
        session_id="s",
        on_event=another_worker,
        lease_owner="worker-a",
    )
    assert ANSWER == result.text
    assert ("s", "worker-a") == (other[0].session_id, other[0].owner)  # type: ignore[attr-defined]
    assert 3 == len(request_bodies(emulator))
    assert all("other" not in str(body["input"]) for body in request_bodies(emulator))
    again = run_turn(client, model="emu-1", input="other", session_store=store, session_id="s")
    assert result.last_response_id == again.requests[0].previous_response_id


def test_a_failed_turn_saves_what_the_server_holds(client: OpenAI, emulator: Emulator) -> None:
    """After max_turns the session keeps the pending call; the next turn answers it."""
    store = MemoryStore()
    with pytest.raises(MaxTurnsError):
        run_turn(
            client,
            model="emu-1",
            input=PROMPT,
            tools=TOOLS,
            session_store=store,
            session_id="s",
            max_turns=1,
        )
    tracker, version = load_tracker(store, "s")
    assert 3 == version  # claim, progress after the model call, release
    assert 2 == len(tracker.pending_call_ids)
    result = run_turn(
        client, model="emu-1", input="hi", tools=TOOLS, session_store=store, session_id="s"
    )
    assert (2, 5) == (result.abandoned_calls, result.session_version)
    assert "You said: hi" == result.text


def test_state_sources_are_exclusive(client: OpenAI) -> None:
    """A tracker and a store together, or a store without a session id, are usage errors."""
    with pytest.raises(UsageError, match="not both"):
        run_turn(
            client,
            model="emu-1",
            input="x",
            tracker=Tracker(),
            session_store=MemoryStore(),
            session_id="s",
        )
    with pytest.raises(UsageError, match="go together"):
        run_turn(client, model="emu-1", input="x", session_store=MemoryStore())


def test_store_true_reaches_the_api_beside_a_session_store(
    client: OpenAI, emulator: Emulator
) -> None:
    """store= is the Responses API's flag: store=True goes to every request, session or not."""
    run_turn(client, model="emu-1", input="hi", store=True)
    run_turn(
        client, model="emu-1", input="hi", store=True, session_store=MemoryStore(), session_id="s"
    )
    assert [True, True] == [body.get("store") for body in request_bodies(emulator)]


@pytest.mark.parametrize(
    "kind", [MemoryStore, SQLiteStore, AsyncMemoryStore, AsyncSQLiteStore], ids=lambda k: k.__name__
)
async def test_a_session_store_passed_as_store_names_session_store(
    client: OpenAI, async_client: AsyncOpenAI, emulator: Emulator, kind: Any, tmp_path: Path
) -> None:
    """A sync or async store passed as store= (the API's flag) is a UsageError naming
    session_store=, in both drivers, before anything is sent."""
    store = kind() if kind in (MemoryStore, AsyncMemoryStore) else kind(str(tmp_path / "s.db"))
    expected = r"is a session store, but store= is the Responses API's own flag.*session_store="
    try:
        with pytest.raises(UsageError, match=expected):
            run_turn(client, model="emu-1", input="x", store=store, session_id="s")
        with pytest.raises(UsageError, match=expected):
            await arun_turn(async_client, model="emu-1", input="x", store=store, session_id="s")
    finally:
        closed = store.close()
        if closed is not None:
            await closed
    assert [] == request_bodies(emulator)


async def test_store_false_runs_stateless_turns(
    client: OpenAI, async_client: AsyncOpenAI, emulator: Emulator
) -> None:
    """store=False runs the turn statelessly (sync and async): the second request replays
    the first turn's items, with no previous_response_id. store=True on a stateless tracker or
    session is a UsageError, nothing sent (never a silent store=False); the session goes on."""
    tracker = Tracker()
    run_turn(client, model="emu-1", input="x", store=False, tracker=tracker)
    await arun_turn(async_client, model="emu-1", input="y", store=False, tracker=tracker)
    with pytest.raises(UsageError, match="store=True on a stateless tracker"):
        run_turn(client, model="emu-1", input="z", store=True, tracker=tracker)
    store = MemoryStore()
    run_turn(client, model="emu-1", input="a", store=False, session_store=store, session_id="s")
    with pytest.raises(UsageError, match="store=True on a stateless tracker"):
        run_turn(client, model="emu-1", input="b", store=True, session_store=store, session_id="s")
    run_turn(client, model="emu-1", input="c", session_store=store, session_id="s")
    bodies = request_bodies(emulator)
    assert [1, 3, 1, 3] == [len(b["input"]) for b in bodies]
    assert [False] * 4 == [b["store"] for b in bodies]
    assert all("previous_response_id" not in b for b in bodies)


_CHILD = textwrap.dedent(
    """
    import sys
    from openai import OpenAI
    from tracker.loop import run_turn
    from tracker.stores import SQLiteStore
    sys.path.insert(0, sys.argv[3])
    from _loop_helpers import TOOLS
    with OpenAI(base_url=sys.argv[1], api_key="k") as client:
        store = SQLiteStore(sys.argv[2])
        r = run_turn(client, model="emu-1", input=sys.argv[4], tools=TOOLS, session_store=store,
                     session_id="chat")
        store.close()
    print(r.last_response_id)
    """
)


def test_a_session_continues_in_another_process(
    client: OpenAI, emulator: Emulator, tmp_path: Path
) -> None:
    """A turn served by a child process is continued here from the SQLite session, and back."""
    db = str(tmp_path / "s.db")

    def child(text: str) -> str:
        proc = FreshProcess(
            "_fresh", "run_code", _CHILD, emulator.base_url, db, str(ROOT / "tests"), text
        )
        out, err = proc.communicate(timeout=60)
        assert 0 == proc.returncode, err
        return out.strip()

    first_id = child(PROMPT)
    store = SQLiteStore(db)
    try:
        here = run_turn(
            client, model="emu-1", input="more", tools=TOOLS, session_store=store, session_id="chat"
        )
    finally:
        store.close()
    assert first_id == here.requests[0].previous_response_id
    assert 2 + 6 == here.session_version  # after the child's 6 saves: claim, release
    child("last")
    assert here.last_response_id == request_bodies(emulator)[-1]["previous_response_id"]


async def test_async_sessions_with_async_and_sync_stores(
    async_client: AsyncOpenAI, emulator: Emulator, tmp_path: Path
) -> None:
    """arun_turn takes an AsyncStore or a sync Store (run in a worker thread)."""
    async with AsyncSQLiteStore(str(tmp_path / "a.db")) as astore:
        one = await arun_turn(
            async_client,
            model="emu-1",
            input=PROMPT,
            tools=TOOLS,
            session_store=astore,
            session_id="a",
        )
        two = await arun_turn(
            async_client,
            model="emu-1",
            input="x",
            tools=TOOLS,
            session_store=astore,
            session_id="a",
        )
    assert one.last_response_id == two.requests[0].previous_response_id
    sync_store = MemoryStore()
    three = await arun_turn(
        async_client, model="emu-1", input="y", session_store=sync_store, session_id="b"
    )
    assert 2 == three.session_version  # claim, release
    assert 2 == (sync_store.load("b") or pytest.fail("not saved")).version
