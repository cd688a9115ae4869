"""The emulator's state file: restarts keep chains and conversations; bad files are reported."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _builders import output
from openai import OpenAI

from tracker import StateError, StateVersionError
from tracker.cli import main
from tracker.emulator import Emulator, _journal
from tracker.emulator._journal import load_journal

ROOT = Path(__file__).resolve().parents[1]
TOOLS: Any = [{"type": "function", "name": "weather"}, {"type": "function", "name": "add"}]
ASK = 'weather({"city": "Paris"}) then add({"a": 1, "b": 2})'


def _call_id(response: Any) -> str:
    return str(next(o.call_id for o in response.output if o.type == "function_call"))


def _all_ids(state_file: Path) -> set[str]:
    data = json.loads(state_file.read_text())
    ids = {r["id"] for r in data["responses"]} | {c["id"] for c in data["conversations"]}
    return ids | set(data["items"]) | set(data["issued_calls"])


def test_chain_continues_across_restarts(tmp_path: Path) -> None:
    """A response chain started on one emulator continues on the next one with the same file,
    every output is stored once, and (same seed) no id of the first run is issued again."""
    path = tmp_path / "emu.json"
    with Emulator(seed=7, state_path=path) as emu, OpenAI(base_url=emu.base_url, api_key="x") as c:
        r1 = c.responses.create(model="emu-reason-1", input=ASK, tools=TOOLS)
    before = _all_ids(path)
    with Emulator(seed=7, state_path=path) as emu, OpenAI(base_url=emu.base_url, api_key="x") as c:
        out1 = output(_call_id(r1), "sunny")
        r2 = c.responses.create(
            model="emu-reason-1", input=[out1], tools=TOOLS, previous_response_id=r1.id
        )
        out2 = output(_call_id(r2), "3")
        r3 = c.responses.create(
            model="emu-reason-1", input=[out2], tools=TOOLS, previous_response_id=r2.id
        )
        assert {out1["call_id"]: 1, out2["call_id"]: 1} == emu.context_outputs(response_id=r3.id)
        assert [out1["call_id"], out2["call_id"]] == emu.issued_calls()
    assert "Done. weather -> sunny; add -> 3" in r3.output_text
    new = {r2.id, r3.id, out2["call_id"]} | {o.id for o in r2.output + r3.output}
    assert set() == before & new


def test_conversation_continues_across_restarts(tmp_path: Path) -> None:
    """A conversation's items survive a restart and the next turn appends to them."""
    path = tmp_path / "emu.json"
    with Emulator(state_path=path) as emu, OpenAI(base_url=emu.base_url, api_key="x") as c:
        conv = c.conversations.create(metadata={"topic": "weather"})
        r1 = c.responses.create(model="emu-1", input=ASK, tools=TOOLS, conversation=conv.id)
        held = [i.id for i in c.conversations.items.list(conv.id, order="asc")]
    with Emulator(state_path=path) as emu, OpenAI(base_url=emu.base_url, api_key="x") as c:
        assert {"topic": "weather"} == c.conversations.retrieve(conv.id).metadata
        assert held == [i.id for i in c.conversations.items.list(conv.id, order="asc")]
        out = output(_call_id(r1), "sunny")
        c.responses.create(model="emu-1", input=[out], tools=TOOLS, conversation=conv.id)
        assert {out["call_id"]: 1} == emu.context_outputs(conversation_id=conv.id)
        assert held == [i["id"] for i in emu.context_items(conversation_id=conv.id)][:2]


def test_reasoning_sealed_before_a_restart_still_verifies(tmp_path: Path) -> None:
    """encrypted_content issued before a restart is accepted after it (the secret is kept)."""
    path = tmp_path / "emu.json"
    ask = {"role": "user", "content": 'weather({"city": "Oslo"})'}
    with Emulator(state_path=path) as emu, OpenAI(base_url=emu.base_url, api_key="x") as c:
        r1 = c.responses.create(model="emu-reason-1", input=[ask], tools=TOOLS, store=False)
    history = [ask, *(o.model_dump(exclude_none=True) for o in r1.output)]
    with Emulator(state_path=path) as emu, OpenAI(base_url=emu.base_url, api_key="x") as c:
        r2 = c.responses.create(
            model="emu-reason-1",
            input=[*history, output(_call_id(r1), "cold")],
            tools=TOOLS,
            store=False,
        )
    assert "Done. weather -> cold" in r2.output_text


def test_state_is_on_disk_before_the_answer_survives_sigkill(tmp_path: Path) -> None:
    """`tracker emulator --state` killed with SIGKILL right after answering loses nothing."""
    path = tmp_path / "emu.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracker", "emulator", "--port", "0", "--state", str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().split()[-1]
        assert f"state in {path}: 0 responses, 0 conversations\n" == proc.stdout.readline()
        with OpenAI(base_url=base_url, api_key="x", max_retries=0) as c:
            r1 = c.responses.create(model="emu-1", input=ASK, tools=TOOLS)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    with Emulator(state_path=path) as emu, OpenAI(base_url=emu.base_url, api_key="x") as c:
        out = output(_call_id(r1), "sunny")
        r2 = c.responses.create(model="emu-1", input=[out], tools=TOOLS, previous_response_id=r1.id)
        assert {out["call_id"]: 1} == emu.context_outputs(response_id=r2.id)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "Expecting property name"),
        ('{"format": "something.else", "version": 1}', "not an emulator state"),
        ("[]", "not an emulator state"),
    ],
)
def test_a_corrupt_state_file_is_reported_and_left_alone(
    tmp_path: Path, text: str, why: str
) -> None:
    """An unreadable file raises StateError naming the path and is not overwritten."""
    path = tmp_path / "emu.json"
    path.write_text(text)
    emu = Emulator(state_path=path)
    with pytest.raises(StateError) as caught:
        emu.start()
    assert str(path) in str(caught.value)
    assert why in str(caught.value)
    assert text == path.read_text()
    with Emulator(state_path=tmp_path / "other.json"):
        pass  # the failed start released the port and the lock


def test_an_unknown_version_and_a_bad_field_are_reported(tmp_path: Path) -> None:
    """A newer version raises StateVersionError; a field of the wrong type names the field."""
    path = tmp_path / "emu.json"
    with Emulator(state_path=path):
        pass
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "version": 99}))
    with pytest.raises(StateVersionError, match="unknown emulator state version 99") as caught:
        Emulator(state_path=path).start()
    assert 99 == caught.value.version
    path.write_text(json.dumps({**data, "responses": [{"id": 5}]}))
    with pytest.raises(StateError, match=r"field responses\[0\]\.id has the wrong type"):
        Emulator(state_path=path).start()


def test_the_cli_reports_a_corrupt_state_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tracker emulator --state BAD` exits 2 with the path in the message, serving nothing."""
    path = tmp_path / "bad.json"
    path.write_text("garbage")
    assert 2 == main(["emulator", "--port", "0", "--state", str(path)])
    err = capsys.readouterr().err
    assert err.startswith(f"tracker emulator: Emulator state file {path} is unreadable")


def test_two_live_emulators_cannot_share_a_state_file(tmp_path: Path) -> None:
    """The second emulator on a file in use fails with an OSError naming it."""
    path = tmp_path / "emu.json"
    with Emulator(state_path=path), pytest.raises(OSError, match="is in use by another emulator"):
        Emulator(state_path=path).start()


def test_dump_and_restore_round_trip(tmp_path: Path) -> None:
    """load_journal(file), mid-run, holds what the live emulator held; a busy flag is not kept."""
    path = tmp_path / "emu.json"
    with Emulator(seed=3, state_path=path) as emu, OpenAI(base_url=emu.base_url, api_key="x") as c:
        conv = c.conversations.create()
        c.responses.create(model="emu-reason-1", input=ASK, tools=TOOLS, conversation=conv.id)
        r = c.responses.create(model="emu-1", input="hello", tools=TOOLS)
        restored, torn = load_journal(path.read_text())
        assert torn is None
        with emu.state.lock:
            assert emu.state.responses == restored.responses
            assert emu.state.conversations == restored.conversations
            assert emu.state.items == restored.items
            assert emu.state.provenance() == restored.provenance()
            assert emu.issued_calls() == restored.issued_calls
    assert r.id in restored.responses


def _held(state: Any) -> tuple[Any, ...]:
    return (
        state.responses,
        state.conversations,
        state.items,
        state.provenance(),
        dict(state.delivered_outputs),
        state.issued_calls,
        state.compaction_memory,
        state.compacted,
        state.ids.random_state(),
        state.ids.secret,
    )


def test_each_change_is_one_appended_record_and_replays_to_the_live_state(tmp_path: Path) -> None:
    """Every state-changing request appends one line; replaying the journal mid-run gives the
    live state (conversation appends, deletes, metadata, key rotation); stop compacts it."""
    path = tmp_path / "emu.json"
    with Emulator(seed=5, state_path=path) as emu, OpenAI(base_url=emu.base_url, api_key="x") as c:
        assert 1 == len(path.read_text().splitlines())  # the base
        conv = c.conversations.create(items=[{"role": "user", "content": "a"}])
        r1 = c.responses.create(model="emu-1", input=ASK, tools=TOOLS, conversation=conv.id)
        added = c.conversations.items.create(conv.id, items=[output(_call_id(r1), "sunny")])
        c.conversations.items.delete(added.data[0].id, conversation_id=conv.id)
        c.conversations.update(conv.id, metadata={"k": "v"})
        r2 = c.responses.create(model="emu-reason-1", input="hello")
        c.responses.create(model="emu-1", input="hi", previous_response_id=r2.id, store=False)
        c.responses.delete(r1.id)
        emu.rotate_keys()
        assert 1 + 9 == len(path.read_text().splitlines())  # one a change (store=False: the ids)
        restored, torn = load_journal(path.read_text())
        with emu.state.lock:
            assert (None, _held(emu.state)) == (torn, _held(restored))
    assert 1 == len(path.read_text().splitlines())


def test_a_torn_last_record_is_ignored_and_reported_and_a_corrupt_one_is_fatal(
    tmp_path: Path,
) -> None:
    """A last line cut short (a kill mid-append) loses only its own unanswered request, with
    a RuntimeWarning and state_warning; a bad line before the last is a StateError."""
    path = tmp_path / "emu.json"
    emu = Emulator(state_path=path).start()
    with OpenAI(base_url=emu.base_url, api_key="x") as c:
        r1 = c.responses.create(model="emu-1", input="one")
        r2 = c.responses.create(model="emu-1", input="two")
    text = path.read_text()
    emu._close_state = lambda: None  # type: ignore[method-assign]  # die without compacting
    emu.stop()
    assert emu._state_file is not None
    emu._state_file.close()
    path.write_text(text[: len(text) - 40])
    with pytest.warns(RuntimeWarning, match="ignored a torn last record at line 3"):
        again = Emulator(state_path=path).start()
    try:
        assert again.state_warning is not None and str(path) in again.state_warning
        assert [r1.id] == list(again.state.responses)
        assert r2.id not in again.state.responses
    finally:
        again.stop()
    lines = text.splitlines()
    path.write_text("\n".join([lines[0], "{oops", lines[1]]) + "\n")
    with pytest.raises(StateError, match="line 2"):
        Emulator(state_path=path).start()


def test_a_version_1_file_still_loads(tmp_path: Path) -> None:
    """A state file of the previous format (one JSON document, version 1) loads as it was."""
    path = tmp_path / "emu.json"
    with Emulator(state_path=path) as emu, OpenAI(base_url=emu.base_url, api_key="x") as c:
        r1 = c.responses.create(model="emu-1", input=ASK, tools=TOOLS)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "version": 1}, indent=1))  # no trailing newline
    with Emulator(state_path=path) as emu, OpenAI(base_url=emu.base_url, api_key="x") as c:
        r2 = c.responses.create(
            model="emu-1", input=[output(_call_id(r1))], tools=TOOLS, previous_response_id=r1.id
        )
        assert [r1.id, r2.id] == list(emu.state.responses)


def test_records_past_the_bound_compact_the_journal_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the records outgrow the base the file is rewritten as one base line (new file,
    then rename), and what it holds is unchanged."""
    monkeypatch.setattr(_journal, "COMPACT_MIN_BYTES", 0)
    path = tmp_path / "emu.json"
    with Emulator(state_path=path) as emu, OpenAI(base_url=emu.base_url, api_key="x") as c:
        previous = None
        counts = []
        for n in range(6):
            previous = c.responses.create(
                model="emu-1", input=f"turn {n}", previous_response_id=previous
            ).id
            counts.append(len(path.read_text().splitlines()))
        restored, _ = load_journal(path.read_text())
        with emu.state.lock:
            # (the random state moved on since: each answer's x-request-id is drawn after it)
            assert _held(emu.state)[:-2] == _held(restored)[:-2]
    assert 1 in counts[1:] and max(counts) < 6  # compacted along the way
    assert [] == [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_background_run_survives_a_restart_and_its_completing_poll_is_journaled(
    tmp_path: Path,
) -> None:
    """A queued background response keeps its step count across a restart, the poll that
    completes it is on disk at once, and after another restart it streams and chains."""
    path = tmp_path / "emu.json"
    common: Any = {"state_path": path, "background_polls": 3, "clock": lambda: 0.0}
    with Emulator(**common) as emu, OpenAI(base_url=emu.base_url, api_key="x") as c:
        r1 = c.responses.create(model="emu-1", input=ASK, tools=TOOLS)
        out1 = output(_call_id(r1), "sunny")
        queued = c.responses.create(
            model="emu-1", input=[out1], tools=TOOLS, previous_response_id=r1.id, background=True
        )
        polled = [queued.status, c.responses.retrieve(queued.id).status]
    with Emulator(**common) as emu, OpenAI(base_url=emu.base_url, api_key="x") as c:
        polled += [c.responses.retrieve(queued.id).status for _ in range(2)]
        on_disk, _ = load_journal(path.read_text())
        assert "completed" == on_disk.runs[queued.id].status and queued.id in on_disk.responses
    assert ["queued", "in_progress", "in_progress", "completed"] == polled
    with Emulator(**common) as emu, OpenAI(base_url=emu.base_url, api_key="x") as c:
        events = list(c.responses.retrieve(queued.id, stream=True, starting_after=2))
        assert "response.completed" == events[-1].type
        out2 = output(_call_id(events[-1].response), "3")
        r3 = c.responses.create(
            model="emu-1", input=[out2], tools=TOOLS, previous_response_id=queued.id
        )
        assert {out1["call_id"]: 1, out2["call_id"]: 1} == emu.context_outputs(response_id=r3.id)
