"""Bad input to the command line: one line on stderr naming the file or option, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _fresh import FreshProcess

from tracker.cli import main

ROOT = Path(__file__).resolve().parents[1]

USER = {"role": "user", "content": "hé"}
DEEP = "[" * 100_000 + "]" * 100_000


def _one_line(err: str) -> str:
    lines = err.splitlines()
    assert 1 == len(lines), err
    return lines[0]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x00\x01\xff\xfe binary", "not UTF-8 text (byte 0xff)"),
        (json.dumps([USER]).encode("utf-16"), "not UTF-8 text (a UTF-16 byte-order mark)"),
        (json.dumps([USER], ensure_ascii=False).encode("latin-1"), "not UTF-8 text (byte 0xe9)"),
        (DEEP.encode(), "JSON nested too deeply to read"),
        (b'{"role": "user", "content": "x"}\n' + DEEP.encode(), "JSON nested too deeply"),
    ],
    ids=["binary", "utf-16", "latin-1", "deep-json", "deep-jsonl"],
)
@pytest.mark.parametrize("command", ["check", "repair"])
def test_unreadable_history_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, why: str, command: str
) -> None:
    """Binary, UTF-16, Latin-1 or too-deep files: exit 2 and one line naming the file."""
    path = tmp_path / "history.json"
    path.write_bytes(data)
    out = ["-o", str(tmp_path / "out.json")] if command == "repair" else []
    assert 2 == main([command, str(path), *out])
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"tracker {command}: {path}")
    assert why in line
    assert not (tmp_path / "out.json").exists()


def test_a_utf8_byte_order_mark_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A UTF-8 file that starts with a byte-order mark (as Windows tools write it) is read."""
    path = tmp_path / "history.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps([USER]).encode())
    assert 0 == main(["check", str(path)])
    assert f"{path}: 1 items (responses): valid\n" == capsys.readouterr().out


@pytest.mark.parametrize(
    ("target", "why"),
    [("missing/out.json", "No such file or directory"), ("/dev/full", "No space left on device")],
)
def test_an_unwritable_output_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str, why: str
) -> None:
    """`repair -o` into a missing directory or onto a full disk: exit 2, the path named."""
    if target == "/dev/full" and not Path(target).exists():
        pytest.skip("no /dev/full on this system")
    path = tmp_path / "history.json"
    path.write_text(json.dumps([USER]))
    out = target if target.startswith("/") else str(tmp_path / target)
    assert 2 == main(["repair", str(path), "-o", out])
    assert f"tracker repair: cannot write {out}: {why}" == _one_line(capsys.readouterr().err)


def test_repair_can_write_over_its_input(tmp_path: Path) -> None:
    """`-o` naming the input file replaces it whole, keeping its permission bits."""
    path = tmp_path / "history.json"
    call = {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"}
    path.write_text(json.dumps([USER, call]))
    path.chmod(0o640)
    assert 0 == main(["repair", str(path), "--policy", "drop", "-o", str(path)])
    assert ([USER], 0o640) == (json.loads(path.read_text()), path.stat().st_mode & 0o777)
    assert [] == [p.name for p in tmp_path.iterdir() if p.name != path.name]


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\xff\xfe\x00garbage", "is unreadable: byte 0 is not UTF-8"),
        (DEEP.encode(), "is unreadable: JSON nested too deeply"),
        (b'{"format": "tracker.emulator.state"', "is unreadable: Expecting"),
    ],
    ids=["binary", "deep", "truncated"],
)
def test_emulator_bad_state_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: bytes, why: str
) -> None:
    """`tracker emulator --state BAD`: exit 2, one line naming the file; the file is kept."""
    path = tmp_path / "state.json"
    path.write_bytes(data)
    assert 2 == main(["emulator", "--port", "0", "--state", str(path)])
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"tracker emulator: Emulator state file {path} {why}")
    assert data == path.read_bytes()


def test_emulator_state_file_in_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --state path whose directory does not exist: exit 2, the state file named."""
    path = tmp_path / "missing" / "state.json"
    assert 2 == main(["emulator", "--port", "0", "--state", str(path)])
    assert (
        f"tracker emulator: Emulator state file {path} cannot be opened: No such file or "
        "directory." == _one_line(capsys.readouterr().err)
    )


@pytest.mark.parametrize(
    ("option", "value"),
    [("--port", "70000"), ("--port", "-1"), ("--max-body-bytes", "-5"), ("--model-delay", "-0.5")],
)
def test_emulator_out_of_range_option_is_one_line_and_exit_2(option: str, value: str) -> None:
    """An out-of-range number: exit 2 before serving, one line naming the option."""
    # Another process (forked from the preloaded fork server: `python -m tracker` without an
    # interpreter's start), so that an emulator that wrongly starts serving fails by timeout.
    args = ("tracker", "emulator", "--port", "0", option, value)
    process = FreshProcess("_fresh", "run_module", {}, None, *args, cwd=ROOT)
    _out, err = process.communicate(timeout=60)
    assert 2 == process.returncode
    assert _one_line(err).startswith(f"tracker emulator: {option} {value}: ")


def test_emulator_unusable_address_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """An address that cannot be bound: exit 2, one line naming --host/--port."""
    assert 2 == main(["emulator", "--host", "192.0.2.1", "--port", "0"])
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("tracker emulator: cannot listen on 192.0.2.1:0 (--host/--port): ")
