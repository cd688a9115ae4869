"""Incremental session records: a save appends what changed; a load reads base plus changes.

Every store (sync and async) is driven through the session functions, then read back raw:
what a save writes must not grow with the session, a load must give exactly the tracker's
snapshot, and a change log past its bound is compacted into a new base atomically.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from _examples import examples
from _store_kinds import KINDS, open_store
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker import ConflictError, CorruptStateError, SessionBusyError, Tracker, TrackerError
from tracker.stores import (
    AsyncStore,
    MemoryStore,
    SQLiteStore,
    _incremental,
    aclaim_session,
    aload_tracker,
    arelease_session,
    arenew_session,
    asave_tracker,
    load_tracker,
    save_tracker,
)
from tracker.stores._changes import apply_changes, diff_ops, encode_change
from tracker.stores._journal import apply_in_place, journal_ops
from tracker.stores._record import encode_record
from tracker.stores._sqlite import SCHEMA_VERSION


@pytest.fixture(params=KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncStore]:
    """Each store in its async form (sync stores wrapped in AsyncStoreAdapter)."""
    made = open_store(request.param, request, tmp_path)
    yield made
    await made.close()


def _turn(tracker: Tracker, n: int) -> None:
    """One round: a user message, a function call answered, an assistant message."""
    prepared = tracker.prepare([{"role": "user", "content": f"hi {n}"}], content_match=False)
    tracker.mark_sent(prepared)
    call = {"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}", "name": "f"}
    tracker.observe_response({"id": f"resp_{n}", "output": [{**call, "arguments": "{}"}]})
    output = {"type": "function_call_output", "call_id": f"call_{n}", "output": "ok"}
    prepared = tracker.prepare([output], content_match=False)
    tracker.mark_sent(prepared)
    message = {"type": "message", "id": f"msg_{n}", "role": "assistant", "content": []}
    tracker.observe_response({"id": f"resp_{n}b", "output": [message]})


async def test_lease_saves_append_changes_and_load_gives_the_snapshot(store: AsyncStore) -> None:
    """claim, renews and release append one change each; a load is the tracker's snapshot."""
    session = await aclaim_session(store, "chat", ttl=60)
    for n in range(3):
        _turn(session.tracker, n)
        await arenew_session(store, session, turn={"n": n})
    await arelease_session(store, session)
    loaded = await store.load("chat")
    assert loaded is not None
    assert (5, 4) == (loaded.version, loaded.log_count)
    assert session.tracker.to_state() == loaded.state["tracker"]
    assert (None, None) == (loaded.state["lease"], loaded.state["turn"])
    again, version = await aload_tracker(store, "chat")
    assert (5, session.tracker.to_state()) == (version, again.to_state())


async def test_a_released_session_is_claimed_again_from_what_the_worker_holds(
    store: AsyncStore,
) -> None:
    """claim(reuse=) appends the lease to the session this worker released, with its tracker;
    after another writer's save it loads the stored session instead."""
    first = await aclaim_session(store, "chat", ttl=60)
    _turn(first.tracker, 0)
    await arelease_session(store, first)
    again = await aclaim_session(store, "chat", ttl=60, reuse=first)
    loaded = await store.load("chat")
    assert loaded is not None and again.lease is not None
    assert (again.tracker, 3, 2) == (first.tracker, loaded.version, loaded.log_count)
    assert again.tracker is first.tracker
    assert again.lease.owner == loaded.state["lease"]["owner"]
    await arelease_session(store, again)
    other, version = await aload_tracker(store, "chat")
    _turn(other, 1)
    await asave_tracker(store, "chat", other, version)
    third = await aclaim_session(store, "chat", ttl=60, reuse=again)
    assert third.tracker is not again.tracker
    assert (6, other.to_state()) == (third.version, third.tracker.to_state())


async def test_a_session_deleted_and_created_again_refuses_the_old_ones_writer(
    store: AsyncStore,
) -> None:
    """A worker of a session deleted and created again up to the same version cannot append
    to the new one (its epoch differs): ConflictError, nothing written; its claim loads it."""
    old = await aclaim_session(store, "chat", ttl=60)
    _turn(old.tracker, 0)
    await arelease_session(store, old)
    assert await store.delete("chat")
    new = await aclaim_session(store, "chat", ttl=60)
    _turn(new.tracker, 7)
    await arenew_session(store, new)
    before = await store.load("chat")
    assert before is not None
    assert old.version == before.version
    with pytest.raises(ConflictError, match="deleted"):
        await arenew_session(store, old)
    with pytest.raises(SessionBusyError):
        await aclaim_session(store, "chat", ttl=60, reuse=old)
    assert old.held is not None and old.held.epoch != before.epoch
    with pytest.raises(ConflictError, match="deleted and created again"):
        await store.append("chat", encode_change([]), old.version, epoch=old.held.epoch)  # type: ignore[attr-defined]
    assert before == await store.load("chat")


async def test_save_tracker_appends_what_changed_since_its_load(store: AsyncStore) -> None:
    """save_tracker on a tracker it loaded writes a change, not the snapshot."""
    tracker, version = await aload_tracker(store, "s")
    for n in range(30):
        _turn(tracker, n)
    version = await asave_tracker(store, "s", tracker, version)
    sizes = []
    for n in range(30, 33):
        _turn(tracker, n)
        version = await asave_tracker(store, "s", tracker, version)
        loaded = await store.load("s")
        assert loaded is not None
        sizes.append(loaded.log_bytes)
    assert 3 == loaded.log_count
    assert loaded.base_bytes > 5 * (sizes[1] - sizes[0])  # a change is a fraction of the base
    assert tracker.to_state() == loaded.state["tracker"]


async def test_a_save_writes_the_same_bytes_at_any_session_length(store: AsyncStore) -> None:
    """The change one more round appends is as big at 40 rounds as at 5 (O(changes) writes)."""
    grown = []
    for rounds in (5, 40):  # 5 and 40 rounds: 2-digit response counts in both
        tracker, version = await aload_tracker(store, f"s{rounds}")
        for n in range(rounds):
            _turn(tracker, n)
        version = await asave_tracker(store, f"s{rounds}", tracker, version)
        _turn(tracker, 1000 + rounds)  # same id lengths in both sessions
        await asave_tracker(store, f"s{rounds}", tracker, version)
        loaded = await store.load(f"s{rounds}")
        assert loaded is not None
        grown.append(loaded.log_bytes)
    assert grown[0] == grown[1]


async def test_a_long_change_log_is_compacted_into_a_new_base(
    store: AsyncStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past COMPACT_MAX_CHANGES the next save writes a new base and the log starts over."""
    monkeypatch.setattr(_incremental, "COMPACT_MAX_CHANGES", 3)
    monkeypatch.setattr(_incremental, "COMPACT_BYTES_PER_CHANGE", 1 << 30)
    tracker, version = await aload_tracker(store, "s")
    counts = []
    for n in range(6):
        _turn(tracker, n)
        version = await asave_tracker(store, "s", tracker, version)
        loaded = await store.load("s")
        assert loaded is not None
        counts.append(loaded.log_count)
    assert [0, 1, 2, 3, 0, 1] == counts
    assert (6, tracker.to_state()) == (loaded.version, loaded.state["tracker"])


async def test_a_log_outweighing_its_base_is_compacted(
    store: AsyncStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the appended changes outweigh the base (past the floor), a save compacts."""
    monkeypatch.setattr(_incremental, "COMPACT_MIN_BYTES", 1)
    tracker, version = await aload_tracker(store, "s")
    _turn(tracker, 0)
    version = await asave_tracker(store, "s", tracker, version)
    counts = []
    for n in range(1, 12):
        _turn(tracker, n)
        version = await asave_tracker(store, "s", tracker, version)
        loaded = await store.load("s")
        assert loaded is not None
        assert tracker.to_state() == loaded.state["tracker"]
        counts.append(loaded.log_count)
    assert 0 in counts[1:]
    assert max(counts) < 11


def test_a_base_written_whole_is_compacted_only_once_the_log_outweighs_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A session first written whole from a long history keeps appending until its log
    outweighs that base, as a session loaded from the store does (not after 64 KiB)."""
    monkeypatch.setattr(_incremental, "COMPACT_MIN_BYTES", 1)
    store = MemoryStore()
    tracker = Tracker()
    for n in range(40):
        _turn(tracker, n)
    version = save_tracker(store, "s", tracker, 0)  # written whole: a 40-round base
    for n in range(40, 50):
        _turn(tracker, n)
        version = save_tracker(store, "s", tracker, version)
    loaded = store.load("s")
    assert loaded is not None
    assert (11, 10) == (loaded.version, loaded.log_count)
    assert tracker.to_state() == loaded.state["tracker"]


def test_a_big_base_takes_more_changes_before_a_compaction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The change-count bound grows with the base (one change per COMPACT_BYTES_PER_CHANGE of
    it), so a long session is not rewritten whole every COMPACT_MAX_CHANGES saves."""
    monkeypatch.setattr(_incremental, "COMPACT_MAX_CHANGES", 3)
    store = MemoryStore()
    tracker = Tracker()
    for n in range(60):
        _turn(tracker, n)
    version = save_tracker(store, "s", tracker, 0)  # a base of ~5.4 KB: room for 10 changes
    for n in range(60, 68):
        _turn(tracker, n)
        version = save_tracker(store, "s", tracker, version)
    loaded = store.load("s")
    assert loaded is not None
    assert (9, 8) == (loaded.version, loaded.log_count)
    assert loaded.base_bytes // _incremental.COMPACT_BYTES_PER_CHANGE >= 8


async def test_a_tracker_restored_elsewhere_is_checked_then_appended(store: AsyncStore) -> None:
    """save_tracker of a tracker it never loaded reads the stored record, then appends to it."""
    tracker, version = await aload_tracker(store, "s")
    _turn(tracker, 0)
    version = await asave_tracker(store, "s", tracker, version)
    _turn(tracker, 1)
    version = await asave_tracker(store, "s", tracker, version)
    stranger = Tracker.from_state(tracker.to_state())
    _turn(stranger, 2)
    assert 3 == await asave_tracker(store, "s", stranger, version)
    loaded = await store.load("s")
    assert loaded is not None
    assert (stranger.to_state(), 2) == (loaded.state["tracker"], loaded.log_count)


def test_diff_of_equal_records_is_empty() -> None:
    """Nothing changed: no ops."""
    state = Tracker().to_state()
    assert [] == diff_ops(state, json.loads(json.dumps(state)))


def test_grown_lists_are_extended_and_changed_values_set() -> None:
    """An id list that grew gives one extend op; a changed scalar a set; a gone key a del."""
    old = {"t": {"ids": ["a", "b"], "prev": "r1", "calls": {"c1": None}}, "gone": 1}
    new = {"t": {"ids": ["a", "b", "c"], "prev": "r2", "calls": {"c1": "fc_1", "c2": None}}}
    ops = diff_ops(old, new)
    assert [
        ["extend", ["t", "ids"], ["c"]],
        ["set", ["t", "prev"], "r2"],
        ["set", ["t", "calls", "c1"], "fc_1"],
        ["set", ["t", "calls", "c2"], None],
        ["del", ["gone"]],
    ] == ops
    state = json.loads(json.dumps(old))
    apply_changes("s", state, [(2, json.dumps(encode_change(ops)))])
    assert new == state


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=12,
)


@settings(max_examples=examples(100), deadline=None)
@given(
    st.dictionaries(st.text(max_size=2), _JSON, max_size=4),
    st.dictionaries(st.text(max_size=2), _JSON, max_size=4),
)
def test_applying_the_diff_gives_the_new_record(old: dict[str, Any], new: dict[str, Any]) -> None:
    """For any two JSON objects, old + diff(old, new) == new, through JSON text."""
    state = json.loads(json.dumps(old))
    apply_changes("s", state, [(2, json.dumps(encode_change(diff_ops(old, new))))])
    assert json.dumps(new, sort_keys=True) == json.dumps(state, sort_keys=True)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ("{not json", "not JSON"),
        ('{"change": 99, "ops": []}', "format version"),
        ('{"change": 1, "ops": [["set", ["nope", "x"], 1]]}', "no object"),
        ('{"change": 1, "ops": [["extend", ["lease"], [1]]]}', "no list"),
        ('{"change": 1, "ops": [["zap", ["x"], 1]]}', "malformed"),
    ],
)
def test_a_corrupt_change_is_corrupt_state_naming_the_session_and_version(
    tmp_path: Path, change: str, needle: str
) -> None:
    """A change that cannot apply: CorruptStateError naming the session and the version."""
    path = tmp_path / "c.db"
    with SQLiteStore(path) as store:
        tracker, version = load_tracker(store, "chat")
        _turn(tracker, 0)
        version = save_tracker(store, "chat", tracker, version)
        _turn(tracker, 1)
        save_tracker(store, "chat", tracker, version)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE tracker_changes SET change = ? WHERE version = 2", (change,))
    conn.close()
    with SQLiteStore(path) as store:
        with pytest.raises(CorruptStateError, match=f"'chat'.*version 2.*{needle}") as info:
            store.load("chat")
        assert "chat" == info.value.session_id
        with pytest.raises(CorruptStateError):
            save_tracker(store, "chat", Tracker(), 2)
        with pytest.raises(CorruptStateError):
            store.save("chat", {}, 2)
    conn = sqlite3.connect(path)
    assert [(change,)] == conn.execute("SELECT change FROM tracker_changes").fetchall()
    conn.close()


def test_a_layout_1_file_opens_upgraded_and_its_records_load(tmp_path: Path) -> None:
    """A file written before change logs existed: same records, then incremental saves."""
    path = tmp_path / "old.db"
    state = Tracker(previous_response_id="resp_1").to_state()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE tracker_schema (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO tracker_schema VALUES (1)")
        conn.execute(
            "CREATE TABLE tracker_sessions (session_id TEXT PRIMARY KEY NOT NULL, "
            "version INTEGER NOT NULL, state TEXT NOT NULL, updated_at REAL NOT NULL)"
        )
        conn.execute("INSERT INTO tracker_sessions VALUES ('old', 7, ?, 0)", (json.dumps(state),))
    conn.close()
    with SQLiteStore(path) as store:
        tracker, version = load_tracker(store, "old")
        assert (7, "resp_1") == (version, tracker.previous_response_id)
        _turn(tracker, 0)
        version = save_tracker(store, "old", tracker, version)  # bare snapshot: whole record
        _turn(tracker, 1)
        version = save_tracker(store, "old", tracker, version)
        loaded = store.load("old")
    assert loaded is not None
    assert (9, 1, tracker.to_state()) == (loaded.version, loaded.log_count, loaded.state["tracker"])
    conn = sqlite3.connect(path)
    assert [(SCHEMA_VERSION,)] == conn.execute("SELECT version FROM tracker_schema").fetchall()
    conn.close()


def test_a_turn_extends_the_snapshot_id_lists() -> None:
    """One more round of a tracker diffs to extend ops on its id lists, never a whole list."""
    tracker = Tracker()
    for n in range(3):
        _turn(tracker, n)
    old = json.loads(json.dumps(tracker.to_state()))
    _turn(tracker, 3)
    ops = diff_ops(old, tracker.to_state())
    grown = {op[1][-1]: op[0] for op in ops if op[1][-1].endswith("_ids")}
    assert {"server_item_ids": "extend", "answered_call_ids": "extend"} == grown


def test_a_stateless_turn_journals_only_its_transcript_items() -> None:
    """A store=False tracker's journal holds the transcript items of one more round, not the
    whole transcript, so its save costs what the turn added."""
    tracker = Tracker(store=False)
    for n in range(3):
        _turn(tracker, n)
    mark = tracker._mark_state()
    _turn(tracker, 3)
    changes = tracker._state_changes(mark)
    assert changes is not None
    expected = {
        "extend": list(tracker.transcript[-4:]),
        "prompt_cache_key": tracker.prompt_cache_key,
    }
    assert expected == changes["transcript"]


def test_merge_ops_of_earlier_releases_still_apply() -> None:
    """A change holding a ``merge`` op (written for sorted id lists) still loads."""
    state: dict[str, Any] = {"t": {"ids": ["a", "c"]}}
    change = {"change": 1, "ops": [["merge", ["t", "ids"], ["b", "d"]]]}
    apply_changes("s", state, [(2, json.dumps(change))])
    assert {"t": {"ids": ["a", "b", "c", "d"]}} == state


def _step(tracker: Tracker, kind: str, n: int) -> None:
    """One tracker change of ``kind`` (ids from ``n``), as a turn of a session makes them."""
    if kind == "round":
        _turn(tracker, n)
    elif kind == "call":  # a call left pending
        call = {"type": "function_call", "id": f"fc_p{n}", "call_id": f"cp{n}", "name": "f"}
        tracker.observe_response({"id": f"resp_p{n}", "output": [{**call, "arguments": "{}"}]})
    elif kind == "answer":  # answer every pending call
        outputs = [
            {"type": "function_call_output", "call_id": c, "output": "ok"}
            for c in tracker.pending_call_ids
        ]
        tracker.mark_sent(tracker.prepare(outputs, content_match=False))
        tracker.observe_response({"id": f"resp_a{n}", "output": []})
    elif kind == "rewind":  # a request that failed
        prepared = tracker.prepare([{"role": "user", "content": f"x{n}"}], content_match=False)
        tracker.mark_sent(prepared)
        tracker.rewind(prepared)
    elif kind == "in-flight":  # a request sent, its response not yet observed
        prepared = tracker.prepare([{"role": "user", "content": f"f{n}"}], content_match=False)
        tracker.mark_sent(prepared)
    elif kind == "compaction":  # a compaction item: pending calls summarised, transcript cut
        tracker.observe_response(
            {"id": f"resp_c{n}", "output": [{"type": "compaction", "id": f"cmp_{n}"}]}
        )
    elif kind == "reasoning":  # reasoning replayable under store=False, then its answer
        reasoning = {"type": "reasoning", "id": f"rs_{n}", "summary": [], "encrypted_content": "e"}
        message = {"type": "message", "id": f"msg_r{n}", "role": "assistant", "content": []}
        tracker.observe_response({"id": f"resp_r{n}", "output": [reasoning, message]})
    elif kind == "strip":  # a stateless transcript drops its encrypted reasoning
        tracker.strip_encrypted(None)


_KINDS = ["round", "call", "answer", "rewind", "in-flight", "compaction", "reasoning", "strip"]


@settings(max_examples=examples(40), deadline=None)
@given(st.lists(st.sampled_from(_KINDS), max_size=10), st.booleans())
def test_the_journal_change_gives_the_tracker_record(steps: list[str], stored: bool) -> None:
    """Ops from the tracker's journal, applied to the record saved at the mark, give exactly
    the record of to_state(), in a chain and in stateless mode (whose transcript is trimmed
    or stripped too); after a plain round they are known and only extend the transcript."""
    tracker = Tracker(store=stored)
    _turn(tracker, 0)
    record = encode_record(tracker.to_state(), None, None)
    mark = tracker._mark_state()
    for n, kind in enumerate(steps, 1):
        done = False
        with contextlib.suppress(TrackerError):  # e.g. answering a compacted call
            _step(tracker, kind, n)
            done = True
        ops = journal_ops(tracker, mark, record, None, {"n": n})
        expected = encode_record(tracker.to_state(), None, {"n": n})
        if done and kind == "round" and steps[n - 2 : n - 1] in (["round"], []):
            assert ops is not None
            transcript = [op[0] for op in ops if op[1][:2] == ["tracker", "transcript"]]
            assert ([] if stored else ["extend"]) == transcript
        if ops is None:
            record = expected
        else:
            apply_in_place(record, ops)
            assert expected == record
            assert json.dumps(expected) == json.dumps(record)  # the same order, too
        mark = tracker._mark_state()
