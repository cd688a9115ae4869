"""Tests for `tracker check` and `tracker repair`, run as `python -m tracker` in new processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from _fresh import FreshProcess

from tracker._repair_actions import placeholder_text

ROOT = Path(__file__).resolve().parent.parent

CALL = {"type": "function_call", "call_id": "call_a", "name": "f", "arguments": "{}"}
OUT_B = {"type": "function_call_output", "call_id": "call_b", "output": "x"}
USER = {"role": "user", "content": "hi"}
ASKS = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ],
}
TOOL = {"role": "tool", "tool_call_id": "call_a", "content": "r"}
ORPHAN = "Invalid parameter: messages with role 'tool' must be a response to a preceeding message"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m tracker ARGS`` in a new process (forked from the preloaded server)."""
    proc = FreshProcess("_fresh", "run_module", {}, stdin, "tracker", *args, cwd=ROOT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode is not None
    return subprocess.CompletedProcess(["tracker", *args], proc.returncode, out, err)


def write(path: Path, items: Any, *, jsonl: bool = False) -> str:
    if jsonl:
        path.write_text("".join(json.dumps(x) + "\n" for x in items))
    else:
        path.write_text(json.dumps(items))
    return str(path)


@pytest.mark.parametrize("jsonl", [False, True])
def test_check_valid_file_exits_0(tmp_path: Path, jsonl: bool) -> None:
    """A valid history (JSON or JSONL) is reported valid with exit status 0."""
    path = write(tmp_path / "h", [USER, ASKS, TOOL], jsonl=jsonl)
    result = run("check", path)
    assert (0, f"{path}: 3 items (chat): valid\n") == (result.returncode, result.stdout)


@pytest.mark.parametrize("jsonl", [False, True])
def test_check_reports_each_violation_and_exits_1(tmp_path: Path, jsonl: bool) -> None:
    """Violations are listed with index, rule, status, param and the service's message."""
    path = write(tmp_path / "h", [USER, CALL, OUT_B], jsonl=jsonl)
    result = run("check", path)
    assert 1 == result.returncode
    assert [
        f"{path}: 3 items (responses): 2 violation(s); the service would answer the first",
        "  [1] P1 400 param=input",
        "      No tool output found for function call call_a.",
        "  [2] P2 400 param=input",
        "      No tool call found for function call output with call_id call_b.",
    ] == result.stdout.splitlines()


def test_check_detects_chat_and_honours_api(tmp_path: Path) -> None:
    """Without --api a tool message means Chat; --api responses reads the same file otherwise."""
    path = write(tmp_path / "h.json", [USER, TOOL])
    detected = run("check", path)
    assert (1, True) == (detected.returncode, ORPHAN in detected.stdout)
    forced = run("check", "--api", "responses", path)
    assert (0, f"{path}: 2 items (responses): valid\n") == (forced.returncode, forced.stdout)


def test_check_reads_a_request_body_and_stdin() -> None:
    """A request body with 'messages' is Chat; '-' reads standard input."""
    result = run("check", "-", stdin=json.dumps({"model": "m", "messages": [USER, TOOL]}))
    assert (1, "-: 2 items (chat): 1 violation(s)") == (
        result.returncode,
        result.stdout.splitlines()[0].split(";")[0],
    )


def test_check_unreadable_file_exits_2(tmp_path: Path) -> None:
    """A file that is neither JSON nor JSONL exits 2 with the line number on stderr."""
    path = tmp_path / "bad.jsonl"
    path.write_text('{"role": "user", "content": "x"}\nnot json\n')
    result = run("check", str(path))
    assert (2, "") == (result.returncode, result.stdout)
    assert f"{path}:2: not JSON or JSONL" in result.stderr


def test_repair_writes_a_valid_file_and_prints_actions(tmp_path: Path) -> None:
    """repair -o writes the repaired JSONL history, prints the actions and exits 0."""
    path = write(tmp_path / "h.jsonl", [USER, CALL, OUT_B], jsonl=True)
    target = tmp_path / "fixed.jsonl"
    result = run("repair", path, "--api", "responses", "-o", str(target))
    assert 0 == result.returncode
    assert [
        f"{path}: 3 items (responses), 2 action(s)",
        "  [1] add_placeholder call_a: the call had no output",
        "  [2] drop_orphan_output call_b: no call with this call_id",
        f"wrote 3 items to {target}",
    ] == result.stdout.splitlines()
    placeholder = {
        "type": "function_call_output",
        "call_id": "call_a",
        "output": placeholder_text("call_a", "f"),
    }
    written = [json.loads(line) for line in target.read_text().splitlines()]
    assert [USER, CALL, placeholder] == written
    assert 0 == run("check", str(target)).returncode


def test_repair_drop_policy_keeps_the_request_body(tmp_path: Path) -> None:
    """--policy drop removes the unanswered call; a request body keeps its other fields."""
    path = write(tmp_path / "req.json", {"model": "m", "input": [USER, CALL]})
    target = tmp_path / "out.json"
    result = run("repair", path, "--policy", "drop", "-o", str(target))
    assert 0 == result.returncode
    assert {"model": "m", "input": [USER]} == json.loads(target.read_text())


def test_repair_exits_1_when_violations_remain(tmp_path: Path) -> None:
    """Duplicate ids are not a pairing problem: repair reports them and exits 1."""
    message = {"type": "message", "id": "msg_1", "role": "user", "content": "x"}
    path = write(tmp_path / "h.json", [message, message])
    result = run("repair", path, "-o", str(tmp_path / "o.json"))
    assert 1 == result.returncode
    assert "D1 400 param=input" in result.stdout


AGUI_ASKS = {
    "id": "m1",
    "role": "assistant",
    "content": "",
    "toolCalls": [
        {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    ],
}
AGUI_TOOL = {"id": "m2", "role": "tool", "content": "42", "toolCallId": "call_a"}


def test_repair_refuses_agui_messages_given_as_chat_in_one_line_and_exits_2(
    tmp_path: Path,
) -> None:
    """AG-UI messages with --api chat are not repaired (results would go as orphans): exit 2."""
    path = write(tmp_path / "agui.json", [USER, AGUI_ASKS, AGUI_TOOL])
    target = tmp_path / "fixed.json"
    result = run("repair", path, "--api", "chat", "-o", str(target))
    assert (2, "", False) == (result.returncode, result.stdout, target.exists())
    [line] = result.stderr.splitlines()
    assert line.startswith(f"tracker repair: {path}: Item at index 2 has keys")
    assert "(toolCallId): it looks like AG-UI messages" in line


AGUI_TEXT = {"id": "m3", "role": "assistant", "content": "Looking it up"}


def test_check_reports_agui_violations_by_message_path(tmp_path: Path) -> None:
    """An AG-UI RunAgentInput body is detected and checked; violations name messages[i]."""
    body = {"threadId": "th", "runId": "r", "messages": [USER, AGUI_ASKS, AGUI_TEXT, AGUI_TOOL]}
    path = write(tmp_path / "run.json", body)
    result = run("check", path)
    assert 1 == result.returncode
    assert f"{path}: 4 items (agui): 2 violation(s)" in result.stdout
    assert "param=messages[1].toolCalls" in result.stdout


@pytest.mark.parametrize("api", [[], ["--api", "agui"]])
def test_repair_agui_body_moves_the_result_and_keeps_the_body(
    tmp_path: Path, api: list[str]
) -> None:
    """tracker repair on a RunAgentInput body: the result follows its call; other keys kept."""
    body = {"threadId": "th", "runId": "r", "state": {"k": 1}, "messages": []}
    body["messages"] = [USER, AGUI_ASKS, AGUI_TEXT, AGUI_TOOL]
    path = write(tmp_path / "run.json", body)
    target = tmp_path / "fixed.json"
    result = run("repair", path, *api, "-o", str(target))
    assert (0, "") == (result.returncode, result.stderr)
    expected = {**body, "messages": [USER, AGUI_ASKS, AGUI_TOOL, AGUI_TEXT]}
    assert expected == json.loads(target.read_text())
    assert 0 == run("check", str(target)).returncode


def test_check_refuses_a_list_mixing_both_formats(tmp_path: Path) -> None:
    """Without --api, a list mixing Chat and Responses items exits 2 asking for --api."""
    path = write(tmp_path / "mixed.json", [USER, CALL, TOOL])
    result = run("check", path)
    assert (2, "") == (result.returncode, result.stdout)
    [line] = result.stderr.splitlines()
    assert line.startswith(f"tracker check: {path}: Cannot tell the history's format")
    assert "--api" in line
