"""``tracker check FILE`` and ``tracker repair FILE -o OUT``: history validation from a shell.

A history file is JSON (a list of items, or a request body with ``input`` or ``messages``,
such as an AG-UI ``RunAgentInput``) or JSONL (one item per line); ``-`` reads standard input.
The API is detected when ``--api`` is left out. Exit status: 0 valid (or repaired to valid),
1 violations remain, 2 unreadable input.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, cast

import attrs

from tracker._agui import is_run_input
from tracker._errors import TrackerError
from tracker._formats import detect_api
from tracker._repair import repair_history
from tracker._repair_actions import POLICIES, Api
from tracker._rules import Violation, validate_history

__all__ = ["add_check_arguments", "add_repair_arguments", "run_check", "run_repair"]


@attrs.frozen
class _History:
    """A loaded file: its items, and how to write a list of items back in the same shape."""

    items: list[Any]
    api: Api
    jsonl: bool
    body: dict[str, Any] | None  # the request body the list came from, if any
    key: str | None

    def dump(self, items: list[Any]) -> str:
        if self.jsonl:
            return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)
        value: Any = items
        if self.body is not None and self.key is not None:
            value = {**self.body, self.key: items}
        return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


class _BadInput(TrackerError):
    """An input file the command cannot read; reported as one line, exit 2."""


def _read_text(path: str) -> str:
    """The file (or stdin) as text; ``_BadInput`` naming the file when it is not UTF-8."""
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise _BadInput(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return data.decode("utf-8-sig")  # JSON is UTF-8; a leading BOM is tolerated
    except UnicodeDecodeError as exc:
        bom = data[:2] in (b"\xff\xfe", b"\xfe\xff")
        why = "a UTF-16 byte-order mark" if bom else f"byte 0x{exc.object[exc.start]:02x}"
        raise _BadInput(f"{path}: not UTF-8 text ({why}); save it as UTF-8 JSON") from None


def _parse(text: str, where: str) -> Any:
    """``json.loads``, with nesting too deep for the parser reported as bad input."""
    try:
        return json.loads(text)
    except RecursionError:
        raise _BadInput(f"{where}: JSON nested too deeply to read") from None


def _load(path: str, api: str | None) -> _History:
    text = _read_text(path)
    jsonl = False
    try:
        value: Any = _parse(text, path)
    except json.JSONDecodeError:
        jsonl = True
        value = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    value.append(_parse(line, f"{path}:{n}"))
                except json.JSONDecodeError as exc:
                    raise _BadInput(f"{path}:{n}: not JSON or JSONL ({exc.msg})") from exc
    body, key = None, None
    if isinstance(value, dict):
        key = "messages" if "messages" in value else "input" if "input" in value else None
        if key is None or not isinstance(value[key], list):
            raise _BadInput(
                f"{path}: expected a list of items, or an object with a list in "
                "'input' (Responses) or 'messages' (Chat Completions)"
            )
        body, value = value, value[key]
        api = api or _body_api(body, key)
    if not isinstance(value, list) or not all(isinstance(x, dict) for x in value):
        raise _BadInput(f"{path}: expected a list of JSON objects (items or messages)")
    return _History(value, cast(Api, api) if api else detect_api(value), jsonl, body, key)


def _body_api(body: dict[str, Any], key: str) -> Api:
    """The format of a request body's list: ``input`` is Responses; ``messages`` is AG-UI
    when the body is a ``RunAgentInput`` or its messages say so, else Chat Completions."""
    if key == "input":
        return "responses"
    if is_run_input(body):
        return "agui"
    detected = detect_api(body[key]) if all(isinstance(x, dict) for x in body[key]) else "chat"
    return "agui" if detected == "agui" else "chat"


def _write_text(path: str, text: str) -> None:
    """Write ``path`` whole or not at all when it is (or will be) a regular file.

    A temporary file beside it replaces it only once complete, so a full disk never leaves
    half a history (``-o`` may name the input file itself). Anything else (``/dev/stdout``,
    a pipe) is written directly.
    """
    target = Path(os.path.realpath(path))  # replace a symlink's target, not the link
    if target.exists() and not target.is_file():
        with target.open("w", encoding="utf-8") as out:
            out.write(text)
        return
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    # os.open with 0o666 honours the umask, as a plain open() of the target would.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        if target.exists():
            shutil.copymode(target, tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _api_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="history as JSON or JSONL ('-': stdin)")
    parser.add_argument(
        "--api",
        choices=("responses", "chat", "agui"),
        help="Responses input items, Chat Completions messages or AG-UI messages "
        "(default: detected)",
    )


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``tracker check``."""
    _api_argument(parser)


def add_repair_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``tracker repair``."""
    _api_argument(parser)
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="repaired file")
    parser.add_argument(
        "--policy",
        choices=POLICIES,
        default=POLICIES[0],
        help="for a call with no output: add a placeholder output, or drop the call "
        "(default: %(default)s)",
    )


def _report(name: str, history: _History, violations: list[Violation]) -> str:
    head = f"{name}: {len(history.items)} items ({history.api})"
    if not violations:
        return f"{head}: valid\n"
    lines = [f"{head}: {len(violations)} violation(s); the service would answer the first"]
    for v in violations:
        where = "-" if v.index is None else str(v.index)
        lines.append(f"  [{where}] {v.rule} {v.status} param={v.param}")
        lines.append(f"      {v.message}")
    return "\n".join(lines) + "\n"


def run_check(args: argparse.Namespace) -> int:
    """Validate ``args.file``; print a report; return 1 if it has violations."""
    try:
        history = _load(args.file, args.api)
        violations = validate_history(history.items, api=history.api)
    except _BadInput as exc:
        print(f"tracker check: {exc}", file=sys.stderr)
        return 2
    except TrackerError as exc:
        print(f"tracker check: {args.file}: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(_report(args.file, history, violations))
    return 1 if violations else 0


def run_repair(args: argparse.Namespace) -> int:
    """Repair ``args.file`` into ``args.output``; print the actions; 1 if still invalid."""
    try:
        history = _load(args.file, args.api)
        repaired, actions = repair_history(history.items, api=history.api, policy=args.policy)
        remaining = validate_history(repaired, api=history.api)
    except _BadInput as exc:
        print(f"tracker repair: {exc}", file=sys.stderr)
        return 2
    except TrackerError as exc:  # e.g. messages of another format: refused, nothing written
        print(f"tracker repair: {args.file}: {exc}", file=sys.stderr)
        return 2
    try:
        _write_text(args.output, history.dump(repaired))
    except OSError as exc:
        print(f"tracker repair: cannot write {args.output}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"{args.file}: {len(history.items)} items ({history.api}), {len(actions)} action(s)")
    for action in actions:
        print(f"  {action}")
    print(f"wrote {len(repaired)} items to {args.output}")
    if remaining:
        sys.stdout.write(_report(args.output, attrs.evolve(history, items=repaired), remaining))
    return 1 if remaining else 0
