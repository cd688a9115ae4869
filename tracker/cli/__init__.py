"""The ``tracker`` command: ``tracker demo | emulator | check | repair | bench``.

The shell around the core: every command lives in this subpackage, one module per command
(``_demo`` and its ``_demo_view``, ``_history`` for check and repair, ``_emulator``, ``_bench``).
The core never imports it. ``_COMMANDS`` is a static table: each entry's loader imports its
module only when that command runs, so ``tracker check`` never starts a web server, and mypy
and "find usages" can follow every name.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

import attrs

from tracker import __version__

__all__ = ["main"]

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


@attrs.frozen
class _Command:
    help: str
    load: Callable[[], tuple[AddArguments, Run]]


def _load_demo() -> tuple[AddArguments, Run]:
    from tracker.cli import _demo as module

    return module.add_arguments, module.run


def _load_emulator() -> tuple[AddArguments, Run]:
    from tracker.cli import _emulator as module

    return module.add_arguments, module.run


def _load_check() -> tuple[AddArguments, Run]:
    from tracker.cli import _history as module

    return module.add_check_arguments, module.run_check


def _load_repair() -> tuple[AddArguments, Run]:
    from tracker.cli import _history as module

    return module.add_repair_arguments, module.run_repair


def _load_bench() -> tuple[AddArguments, Run]:
    from tracker.cli import _bench as module

    return module.add_arguments, module.run


_COMMANDS: dict[str, _Command] = {
    "demo": _Command("run a multi-turn, multi-tool conversation and show each delta", _load_demo),
    "emulator": _Command("serve the local OpenAI-compatible emulator", _load_emulator),
    "check": _Command("validate a tool-call history file (exit 1 on violations)", _load_check),
    "repair": _Command("repair a tool-call history file", _load_repair),
    "bench": _Command("measure per-turn tracker cost as the history grows", _load_bench),
}


def _build_parser(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, Run | None]:
    parser = argparse.ArgumentParser(
        prog="tracker",
        description="Exact Responses-API deltas: no dropped tool outputs, no duplicate items.",
    )
    parser.add_argument("--version", action="version", version=f"tracker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    runner: Run | None = None
    for name, command in _COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.help)
        if name == wanted:
            add_arguments, runner = command.load()
            add_arguments(p)
    return parser, runner


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser, runner = _build_parser(args_list)
    args = parser.parse_args(args_list)
    if runner is None:  # pragma: no cover - argparse exits on an unknown command first
        parser.error(f"unknown command {args.command!r}")
    try:
        return int(runner(args))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # Output piped into a program that stopped reading (`tracker demo | head`): not an
        # error. Point stdout at devnull so the interpreter's final flush stays quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
