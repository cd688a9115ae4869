"""Session leases: claim with compare-and-set, renew, release, expiry and the record format."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tracker import ConflictError, CorruptStateError, SessionBusyError, Tracker, UsageError
from tracker.stores import (
    AsyncRedisStore,
    AsyncSQLiteStore,
    AsyncStore,
    AsyncStoreAdapter,
    Lease,
    MemoryStore,
    RedisStore,
    SQLiteStore,
    Store,
    aclaim_session,
    aload_tracker,
    arelease_session,
    arenew_session,
    asave_tracker,
    claim_session,
    load_tracker,
    open_store,
    release_session,
    renew_session,
    save_tracker,
)

KINDS = ["memory", "sqlite", "redis", "async-sqlite", "async-redis"]


class Clock:
    """A settable clock: tests move time instead of sleeping."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncStore]:
    """Each store in its async form (sync stores wrapped in AsyncStoreAdapter)."""
    kind: str = request.param
    url = request.getfixturevalue("redis_url") if kind.endswith("redis") else ""
    made: AsyncStore
    if kind == "memory":
        made = AsyncStoreAdapter(MemoryStore())
    elif kind == "sqlite":
        made = AsyncStoreAdapter(SQLiteStore(tmp_path / "s.db"))
    elif kind == "redis":
        made = AsyncStoreAdapter(RedisStore(url))
    elif kind == "async-sqlite":
        made = AsyncSQLiteStore(tmp_path / "s.db")
    else:
        made = AsyncRedisStore(url)
    yield made
    await made.close()


async def test_claim_writes_a_lease_and_a_second_owner_is_busy(store: AsyncStore) -> None:
    """A claimed session refuses another owner with SessionBusyError naming holder and expiry."""
    clock = Clock()
    mine = await aclaim_session(store, "s", owner="a", ttl=30, clock=clock)
    assert (1, Lease("a", 1030.0)) == (mine.version, mine.lease)
    clock.now += 10
    with pytest.raises(SessionBusyError) as info:
        await aclaim_session(store, "s", owner="b", ttl=30, clock=clock)
    assert ("s", "a", 20.0) == (info.value.session_id, info.value.owner, info.value.expires_in)
    assert "'s'" in str(info.value) and "'a'" in str(info.value)
    assert isinstance(info.value, ConflictError)
    assert 1 == (await store.load("s") or pytest.fail("gone")).version  # nothing written


async def test_an_expired_lease_is_taken_over_and_the_old_holder_loses(store: AsyncStore) -> None:
    """After the ttl anyone may claim; the old holder's next save fails, writing nothing."""
    clock = Clock()
    old = await aclaim_session(store, "s", owner="a", ttl=5, clock=clock)
    clock.now += 6
    new = await aclaim_session(store, "s", owner="b", ttl=5, clock=clock)
    assert (2, "b") == (new.version, new.lease.owner if new.lease else None)
    with pytest.raises(ConflictError, match="lease"):
        await arenew_session(store, old, turn={"x": 1})
    with pytest.raises(ConflictError, match="lease"):
        await arelease_session(store, old)
    assert 1 == old.version
    assert 2 == (await store.load("s") or pytest.fail("gone")).version


async def test_renew_saves_progress_and_release_frees_the_lease(store: AsyncStore) -> None:
    """Renew keeps the lease (later expiry) with the turn progress; release frees it."""
    clock = Clock()
    mine = await aclaim_session(store, "s", owner="a", ttl=30, clock=clock)
    mine.tracker.observe_response({"id": "resp_1", "output": []})
    clock.now += 20
    assert 2 == await arenew_session(store, mine, turn={"input": "k", "outputs": []})
    assert (Lease("a", 1050.0), {"input": "k", "outputs": []}) == (mine.lease, mine.turn)
    clock.now += 20  # 40 s after the claim: the renewal keeps the others out
    with pytest.raises(SessionBusyError):
        await aclaim_session(store, "s", owner="b", clock=clock)
    assert 3 == await arelease_session(store, mine)
    other = await aclaim_session(store, "s", owner="b", clock=clock)
    assert ("resp_1", None) == (other.tracker.previous_response_id, other.turn)


async def test_release_keeps_progress_for_whoever_comes_next(store: AsyncStore) -> None:
    """Progress released with the lease (a failed turn) is handed to the next claim."""
    mine = await aclaim_session(store, "s", owner="a")
    await arelease_session(store, mine, turn={"input": "k", "outputs": [{"call_id": "c"}]})
    other = await aclaim_session(store, "s", owner="b")
    assert {"input": "k", "outputs": [{"call_id": "c"}]} == other.turn


async def test_of_many_concurrent_claims_exactly_one_wins(store: AsyncStore) -> None:
    """Workers that claim the same session at once: one lease, every other one is refused."""
    await asave_tracker(store, "s", Tracker(), 0)

    async def claim(n: int) -> str:
        try:
            await aclaim_session(store, "s", owner=f"w{n}")
        except ConflictError as exc:  # lost the race, or found the winner's lease
            return type(exc).__name__
        return "won"

    outcomes = await asyncio.gather(*(claim(n) for n in range(8)))
    assert 1 == outcomes.count("won")
    assert 2 == (await store.load("s") or pytest.fail("gone")).version


async def test_save_tracker_refuses_a_leased_session(store: AsyncStore) -> None:
    """The lease-free save cannot overwrite a session another worker is serving."""
    tracker, version = await aload_tracker(store, "s")
    await asave_tracker(store, "s", tracker, version)
    tracker, version = await aload_tracker(store, "s")
    await aclaim_session(store, "s", owner="a")
    with pytest.raises(ConflictError):  # the claim moved the version on
        await asave_tracker(store, "s", tracker, version)
    tracker, version = await aload_tracker(store, "s")
    with pytest.raises(SessionBusyError):
        await asave_tracker(store, "s", tracker, version)


def test_sync_forms_and_threads(tmp_path: Path) -> None:
    """Threads with their own connections claim at once: one wins, renews and releases."""
    path = tmp_path / "s.db"
    with SQLiteStore(path) as first:
        save_tracker(first, "s", Tracker(previous_response_id="resp_0"), 0)
    outcomes: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def worker(n: int) -> None:
        with SQLiteStore(path) as own:
            start.wait()
            try:
                session = claim_session(own, "s", owner=f"w{n}")
            except ConflictError as exc:
                outcome = type(exc).__name__
            else:
                renew_session(own, session, turn={"n": n})
                outcome = "won"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert 1 == outcomes.count("won")
    with SQLiteStore(path) as store:
        later = Clock(10.0**10)  # long after every lease
        session = claim_session(store, "s", owner="late", clock=later)
        assert 5 == release_session(store, session)
        tracker, version = load_tracker(store, "s")
    assert ("resp_0", 5) == (tracker.previous_response_id, version)


def _raw(store: Store, session: str) -> Any:
    loaded = store.load(session)
    return None if loaded is None else loaded.state


def test_the_record_format_and_old_bare_snapshots() -> None:
    """Records are versioned envelopes; a bare snapshot of an earlier release still loads."""
    store = MemoryStore()
    store.save("old", Tracker(previous_response_id="resp_9").to_state(), None)
    tracker, version = load_tracker(store, "old")
    assert ("resp_9", 1) == (tracker.previous_response_id, version)
    session = claim_session(store, "old", owner="a", clock=Clock())
    record = _raw(store, "old")
    assert {"format", "version", "tracker", "lease", "turn"} == set(record)
    assert ("tracker.session", 1) == (record["format"], record["version"])
    assert {"owner": "a", "expires_at": 1120.0} == record["lease"]
    assert Tracker(previous_response_id="resp_9").to_state() == record["tracker"]
    release_session(store, session)
    assert None is _raw(store, "old")["lease"]


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        ({"format": "tracker.session", "version": 2}, "format version 2"),
        ({"format": "tracker.session", "version": 1, "tracker": None}, "no tracker"),
        (
            {"format": "tracker.session", "version": 1, "tracker": {}, "lease": {"owner": 1}},
            "malformed lease",
        ),
    ],
    ids=["newer-version", "no-tracker", "bad-lease"],
)
def test_unreadable_records_are_reported_and_left_untouched(
    record: dict[str, Any], needle: str
) -> None:
    """A record this release cannot read: CorruptStateError naming the session; no overwrite."""
    store = open_store("memory://")
    store.save("bad", record, None)
    for attempt in (
        lambda: load_tracker(store, "bad"),
        lambda: claim_session(store, "bad"),
        lambda: save_tracker(store, "bad", Tracker(), 1),
    ):
        with pytest.raises(CorruptStateError, match=needle) as info:
            attempt()
        assert "bad" == info.value.session_id
    assert record == _raw(store, "bad")


def test_bad_ttl_is_refused_before_anything_is_written() -> None:
    """A lease ttl that is not a positive number of seconds is a UsageError."""
    store = MemoryStore()
    with pytest.raises(UsageError, match="ttl"):
        claim_session(store, "s", ttl=0)
    assert [] == store.list_sessions()
