"""The store contract: every store, sync and async, behaves the same way.

Sync stores are driven through ``AsyncStoreAdapter`` (each call in a worker thread), so one
suite covers both forms and the concurrency test really runs sync saves in parallel threads.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from _store_kinds import KINDS, open_store

from tracker import ConflictError, StoreError, Tracker, UsageError
from tracker.stores import (
    AsyncMemoryStore,
    AsyncStore,
    AsyncStoreAdapter,
    Loaded,
    MemoryStore,
    SQLiteStore,
    Store,
    aload_tracker,
    asave_tracker,
)


@pytest.fixture(params=KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncStore]:
    """Each store in its async form (sync stores wrapped in AsyncStoreAdapter)."""
    made = open_store(request.param, request, tmp_path)
    yield made
    await made.close()


async def test_missing_session_loads_as_none(store: AsyncStore) -> None:
    """A session never saved loads as None."""
    assert None is await store.load("nope")


@pytest.mark.parametrize("new", [None, 0])
async def test_first_save_creates_version_1(store: AsyncStore, new: int | None) -> None:
    """The first save (expected None or 0) creates version 1 holding the state."""
    assert 1 == await store.save("s", {"a": [1, "x", None, True, 1.5]}, new)
    assert Loaded({"a": [1, "x", None, True, 1.5]}, 1) == await store.load("s")


async def test_each_save_advances_the_version_by_one(store: AsyncStore) -> None:
    """Saves chained on the returned version give 1, 2, 3 and the last state wins."""
    versions = [await store.save("s", {"n": 0}, None)]
    for n in (1, 2):
        versions.append(await store.save("s", {"n": n}, versions[-1]))
    assert [1, 2, 3] == versions
    assert Loaded({"n": 2}, 3) == await store.load("s")


async def test_stale_writer_gets_conflict_and_writes_nothing(store: AsyncStore) -> None:
    """Saving on an old version raises a retryable ConflictError naming both versions."""
    await store.save("s", {"n": 1}, None)
    await store.save("s", {"n": 2}, 1)
    with pytest.raises(ConflictError) as info:
        await store.save("s", {"n": "stale"}, 1)
    assert ("s", 1, 2) == (
        info.value.session_id,
        info.value.expected_version,
        info.value.actual_version,
    )
    assert "'s'" in str(info.value)
    assert "reload and retry" in str(info.value)
    assert Loaded({"n": 2}, 2) == await store.load("s")


async def test_creating_an_existing_session_conflicts(store: AsyncStore) -> None:
    """A save expecting no session (None) fails once the session exists."""
    await store.save("s", {"n": 1}, None)
    with pytest.raises(ConflictError) as info:
        await store.save("s", {"n": 2}, None)
    assert (0, 1) == (info.value.expected_version, info.value.actual_version)
    assert Loaded({"n": 1}, 1) == await store.load("s")


async def test_updating_a_missing_session_conflicts(store: AsyncStore) -> None:
    """A save expecting a version of a session that does not exist fails and creates nothing."""
    with pytest.raises(ConflictError) as info:
        await store.save("s", {"n": 1}, 3)
    assert (3, 0) == (info.value.expected_version, info.value.actual_version)
    assert None is await store.load("s")


async def test_delete_removes_and_reports_existence(store: AsyncStore) -> None:
    """delete returns True once, the session is gone, and it can be created anew at version 1."""
    await store.save("s", {"n": 1}, None)
    await store.save("s", {"n": 2}, 1)
    assert [True, False] == [await store.delete("s"), await store.delete("s")]
    assert None is await store.load("s")
    assert 1 == await store.save("s", {"n": 3}, None)


async def test_list_sessions_is_sorted_and_complete(store: AsyncStore) -> None:
    """list_sessions returns every stored session id, sorted, and forgets deleted ones."""
    assert [] == await store.list_sessions()
    for sid in ("b", "a", "c:1", "*"):
        await store.save(sid, {}, None)
    await store.delete("c:1")
    assert ["*", "a", "b"] == await store.list_sessions()


async def test_sessions_are_independent(store: AsyncStore) -> None:
    """Versions count per session; saving one leaves another unchanged."""
    await store.save("a", {"who": "a"}, None)
    await store.save("a", {"who": "a2"}, 1)
    assert 1 == await store.save("b", {"who": "b"}, None)
    assert Loaded({"who": "a2"}, 2) == await store.load("a")


async def test_loaded_state_is_a_private_copy(store: AsyncStore) -> None:
    """Mutating a saved or loaded dict never changes what is stored."""
    state: dict[str, Any] = {"items": [1]}
    await store.save("s", state, None)
    state["items"].append(2)
    loaded = await store.load("s")
    assert loaded is not None
    loaded.state["items"].append(3)
    assert Loaded({"items": [1]}, 1) == await store.load("s")


async def test_unicode_ids_and_state_round_trip(store: AsyncStore) -> None:
    """Non-ASCII session ids and text are stored and listed exactly."""
    await store.save("séance-日本", {"text": "naïve ✓ \u2028"}, None)
    assert Loaded({"text": "naïve ✓ \u2028"}, 1) == await store.load("séance-日本")
    assert ["séance-日本"] == await store.list_sessions()


@pytest.mark.parametrize("bad", [{"obj": object()}, {"nan": float("nan")}, ["not", "a", "dict"]])
async def test_state_that_is_not_a_json_object_is_refused(store: AsyncStore, bad: Any) -> None:
    """A state that is not a JSON-safe dict raises StoreError naming the session; writes nothing."""
    with pytest.raises(StoreError, match="'s'"):
        await store.save("s", bad, None)
    assert None is await store.load("s")


@pytest.mark.parametrize(
    ("session_id", "expected", "error"),
    [("", None, "non-empty"), (7, None, "int"), ("s", -1, ">= 0"), ("s", "1", "str")],
)
async def test_bad_arguments_raise_usage_error_before_writing(
    store: AsyncStore, session_id: Any, expected: Any, error: str
) -> None:
    """Empty or non-str ids and negative or non-int versions raise UsageError, write nothing."""
    with pytest.raises(UsageError, match=error):
        await store.save(session_id, {}, expected)
    assert [] == await store.list_sessions()


async def test_session_id_with_a_lone_surrogate_is_refused_by_every_store(
    store: AsyncStore,
) -> None:
    """An id no durable store can encode raises UsageError naming it, on load, save and delete."""
    bad = "chat-\udcff"
    for call in (store.load(bad), store.save(bad, {}, None), store.delete(bad)):
        with pytest.raises(UsageError, match=re.escape(repr(bad))):
            await call
    assert [] == await store.list_sessions()


async def test_state_with_a_lone_surrogate_is_refused_by_every_store(store: AsyncStore) -> None:
    """A state holding text that is not valid Unicode raises StoreError naming the session."""
    await store.save("s", {"text": "ok"}, None)
    with pytest.raises(StoreError, match="'s'.*not valid Unicode") as info:
        await store.save("s", {"text": "caf\udce9"}, 1)
    assert "s" == info.value.session_id
    assert Loaded({"text": "ok"}, 1) == await store.load("s")


async def test_concurrent_writers_on_one_version_exactly_one_wins(store: AsyncStore) -> None:
    """Eight parallel saves from the same version: one succeeds, seven conflict."""
    await store.save("s", {"n": 0}, None)
    results = await asyncio.gather(
        *(store.save("s", {"n": i}, 1) for i in range(8)), return_exceptions=True
    )
    winners = [r for r in results if r == 2]
    assert 1 == len(winners)
    assert 7 == sum(isinstance(r, ConflictError) for r in results)
    loaded = await store.load("s")
    assert loaded is not None
    assert 2 == loaded.version


async def test_tracker_round_trips_through_the_store(store: AsyncStore) -> None:
    """aload_tracker/asave_tracker restore the call_id -> item id mapping and continuation."""
    tracker, version = await aload_tracker(store, "chat", previous_response_id="resp_0")
    assert 0 == version
    tracker.observe_response(
        {
            "id": "resp_1",
            "object": "response",
            "output": [
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "call_1",
                    "name": "f",
                    "arguments": "{}",
                }
            ],
        }
    )
    assert 1 == await asave_tracker(store, "chat", tracker, version)
    restored, version = await aload_tracker(store, "chat")
    assert (1, "resp_1", "fc_1", ("call_1",)) == (
        version,
        restored.previous_response_id,
        restored.item_id_for_call("call_1"),
        restored.pending_call_ids,
    )
    assert tracker.to_state() == restored.to_state()


def test_stores_satisfy_the_protocols(tmp_path: Path) -> None:
    """Every store class is recognised as a Store or an AsyncStore."""
    with SQLiteStore(tmp_path / "p.db") as sqlite_store:
        assert isinstance(sqlite_store, Store)
    assert isinstance(MemoryStore(), Store)
    assert isinstance(AsyncMemoryStore(), AsyncStore)
    assert isinstance(AsyncStoreAdapter(MemoryStore()), AsyncStore)


def test_a_new_session_takes_the_tracker_arguments() -> None:
    """load_tracker on a missing session builds Tracker(**kwargs) at version 0."""
    from tracker.stores import load_tracker

    tracker, version = load_tracker(MemoryStore(), "new", conversation_id="conv_1")
    assert (0, "conv_1") == (version, tracker.conversation_id)
    assert isinstance(tracker, Tracker)
