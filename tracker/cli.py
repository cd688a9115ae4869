"""The ``tracker`` command: ``tracker demo | emulator | check | repair | bench``.

Each subcommand lives in the module that owns its feature and is imported only when used, so
``tracker check`` never starts a web server and ``import tracker`` never imports this file.
A subcommand module provides ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from tracker import __version__

__all__ = ["main"]

# name -> (module, one-line help)
_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("tracker._demo", "run a multi-turn, multi-tool conversation and show each delta"),
    "emulator": ("tracker.emulator._cli", "serve the local OpenAI-compatible emulator"),
    "check": ("tracker._history_cli", "validate a tool-call history file (exit 1 on violations)"),
    "repair": ("tracker._history_cli", "repair a tool-call history file"),
    "bench": ("tracker._bench", "measure per-turn tracker cost as the history grows"),
}


def _build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracker",
        description="Exact Responses-API deltas: no dropped tool outputs, no duplicate items.",
    )
    parser.add_argument("--version", action="version", version=f"tracker {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = next((a for a in argv if not a.startswith("-")), None)
    for name, (module_name, help_text) in _SUBCOMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == wanted:
            module = importlib.import_module(module_name)
            adder = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
            adder(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = _build_parser(args_list)
    args = parser.parse_args(args_list)
    module = importlib.import_module(_SUBCOMMANDS[args.command][0])
    runner = getattr(module, f"run_{args.command}", None) or module.run
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
