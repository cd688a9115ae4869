"""``tracker demo``: in a new process (twice on one session) and in-process."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import pytest
from _fresh import FreshProcess

from tracker import Tracker
from tracker.cli import main
from tracker.cli._demo import continue_hint, emulator_state_path
from tracker.cli._demo_view import _short
from tracker.emulator import Emulator
from tracker.emulator._persist import restore_state
from tracker.stores import SQLiteStore, load_tracker

ROOT = Path(__file__).resolve().parents[1]
SUMMARY = (
    "summary: 3 turns, 8 requests, 11 items sent, 31 already on the server (not re-sent), "
    "{retries} retries, 0 tool errors, errors: 0"
)


def _demo(*args: str, env: dict[str, str] | None = None) -> str:
    """``python -m tracker demo ARGS`` in a new process (forked from the preloaded server)."""
    done = FreshProcess("_fresh", "run_module", env or {}, None, "tracker", "demo", *args, cwd=ROOT)
    out, err = done.communicate(timeout=120)
    assert 0 == done.returncode, out + err
    return out


def _version(db: Path, session: str) -> tuple[int, Tracker]:
    store = SQLiteStore(db)
    try:
        tracker, version = load_tracker(store, session)
    finally:
        store.close()
    assert version > 0
    return version, tracker


def _chain_length(state_file: Path, response_id: str | None) -> int:
    responses = restore_state(json.loads(state_file.read_text())).responses
    length = 0
    while response_id is not None:
        length += 1
        response_id = responses[response_id].previous_response_id
    return length


def test_demo_twice_on_one_session_with_the_embedded_emulator(tmp_path: Path) -> None:
    """The default demo (store in $XDG_CACHE_HOME) runs clean; a second run on the session
    continues the first run's chain on the embedded emulator, whose state file kept it."""
    env = {"XDG_CACHE_HOME": str(tmp_path)}
    first = _demo("--session", "s", env=env)
    state_file = tmp_path / "tracker" / "demo.emulator.json"
    assert first.splitlines()[0].endswith(f"(state in {state_file}), model emu-1")
    assert "session s: new, in a new chain" in first
    assert SUMMARY.format(retries=0) in first.splitlines()
    db = tmp_path / "tracker" / "demo.db"
    version, saved = _version(db, "s")
    last = saved.previous_response_id
    assert last is not None
    second = _demo("--session", "s", env=env)
    lines = second.splitlines()
    assert f"continuing at version {version} from previous_response_id {last}" in second
    first_request = next(line for line in lines if line.startswith("  request 1:"))
    assert first_request.endswith(f"previous_response_id {_short(last)}")
    assert "note:" not in second
    assert SUMMARY.format(retries=0) in lines
    assert version < _version(db, "s")[0]
    assert 16 == _chain_length(state_file, _version(db, "s")[1].previous_response_id)


def test_demo_starts_a_new_chain_when_the_state_file_is_gone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the emulator's state file deleted the second run says so and starts a new chain."""
    db = tmp_path / "f.db"
    args = ["demo", "--store", f"sqlite:///{db}", "--session", "f"]
    assert 0 == main(args)
    last = _version(db, "f")[1].previous_response_id
    (tmp_path / "f.emulator.json").unlink()
    capsys.readouterr()
    assert 0 == main(args)
    out = capsys.readouterr().out
    assert f"  note: the server no longer holds response {last}: the embedded emulator's" in out
    assert SUMMARY.format(retries=0) in out.splitlines()
    assert 8 == _chain_length(
        tmp_path / "f.emulator.json", _version(db, "f")[1].previous_response_id
    )


def test_emulator_state_path_follows_the_store(tmp_path: Path) -> None:
    """Next to a SQLite file, in the cache for Redis, nowhere for stores that die with us."""
    assert tmp_path / "x.emulator.json" == emulator_state_path(f"sqlite:///{tmp_path}/x.db")
    assert None is emulator_state_path("memory://")
    assert None is emulator_state_path("sqlite:///:memory:")
    redis = emulator_state_path("redis://localhost:6379/0")
    assert redis is not None
    assert redis.name.startswith("emulator-")


def test_demo_twice_against_a_lasting_server(tmp_path: Path) -> None:
    """With --base-url the second run continues the first run's chain for real."""
    db = tmp_path / "d.db"
    with Emulator() as emu:
        args = ("--base-url", emu.base_url, "--model", "emu-1", "--store", f"sqlite:///{db}")
        _demo(*args, "--session", "chat")
        last = _version(db, "chat")[1].previous_response_id
        second = _demo(*args, "--session", "chat")
        bodies = emu.requests_to("/v1/responses")
    assert "note:" not in second
    assert last == bodies[8]["previous_response_id"]
    assert 16 == len(bodies)


def test_demo_shows_retries_and_recovery_in_a_conversation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--faults in a conversation: two retries, one response recovered, still no errors."""
    store = f"sqlite:///{tmp_path / 'c.db'}"
    assert 0 == main(["demo", "--store", store, "--conversation", "--faults", "--session", "c"])
    out = capsys.readouterr().out
    assert re.search(r"session c: new, in conversation conv_\w+", out)
    assert "  ! InternalServerError: Error code: 500" in out
    assert "  (response recovered from the conversation: nothing re-sent)" in out
    assert SUMMARY.format(retries=2) in out.splitlines()


def test_demo_reports_a_failing_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], refused_port: int
) -> None:
    """An endpoint that is not there ends the demo with exit status 1 and the error."""
    store = f"sqlite:///{tmp_path / 'e.db'}"
    dead = f"http://127.0.0.1:{refused_port}/v1"
    assert 1 == main(["demo", "--base-url", dead, "--store", store, "--session", "x"])
    out = capsys.readouterr().out
    assert "error: APIConnectionError: Connection error." in out
    assert out.rstrip().endswith("errors: 1")


@pytest.mark.parametrize("store", ["memory://", "sqlite:///:memory:"])
def test_demo_on_a_store_that_dies_with_it_gives_no_continue_hint(
    store: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A session kept in memory cannot be continued: the demo says so instead of a hint."""
    assert 0 == main(["demo", "--store", store, "--session", "m"])
    last = capsys.readouterr().out.splitlines()[-1]
    assert f"session m was kept in {store}, which ends with this run: pass --store" in last
    assert "continue it" not in last


def test_continue_hint_repeats_what_the_next_run_needs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hint names the store, endpoint and model the next run must reach (never the key)."""
    monkeypatch.delenv("TRACKER_DEMO_COMMAND", raising=False)
    args = argparse.Namespace(
        store="sqlite:///x.db", base_url="http://h/v1", model="m1", api_key="sk-secret"
    )
    expected = (
        "continue it: tracker demo --session s --store sqlite:///x.db --base-url http://h/v1 "
        "--model m1"
    )
    assert expected == continue_hint(args, "sqlite:///x.db", "s")


def test_demo_compacts_on_the_server_and_continues_with_every_output_once(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--compact-threshold: the context is compacted mid-session (shown with its size before
    and after), tool rounds continue after it, each output is in the server's context once."""
    args = ["demo", "--store", "memory://", "--session", "k", "--compact-threshold", "1000"]
    assert 0 == main([*args, "--turns", "4"])
    out = capsys.readouterr().out
    lines = out.splitlines()
    compacted = [i for i, line in enumerate(lines) if "compacted on the server (cmp_" in line]
    assert compacted, out
    after = re.search(r"context after the compaction: ([\d,]+) tokens \(was ([\d,]+);", out)
    assert after is not None, out
    small, large = (int(n.replace(",", "")) for n in after.groups())
    assert small < 1000 < large
    assert any(line.startswith("    tool ") for line in lines[compacted[0] + 1 :])
    assert "tool outputs: 9 calls in the server's context, each answered exactly once" in lines
    assert lines[-2].startswith("summary: 4 turns, ") and lines[-2].endswith("errors: 0")
