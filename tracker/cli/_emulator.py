"""``tracker emulator``: serve the emulator until interrupted."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from tracker._errors import StateError
from tracker._rules import RuleOptions
from tracker.emulator._server import Emulator, Fault

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``tracker emulator`` options to ``parser``."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8765, help="port (0 picks a free one)")
    parser.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY'")
    parser.add_argument("--seed", type=int, default=None, help="seed for reproducible ids")
    parser.add_argument(
        "--state",
        metavar="FILE",
        default=None,
        help="keep the state in this JSON file: loaded at start, rewritten after every change",
    )
    parser.add_argument(
        "--max-body-bytes", type=int, default=32 * 1024 * 1024, help="413 above this size"
    )
    parser.add_argument(
        "--model-delay", type=float, default=0.0, help="seconds each response 'thinks'"
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="inject faults into POST /v1/responses, e.g. '500x2', '429', 'drop-after', "
        "'drop-before', 'delay=0.5' (repeatable; applied in order)",
    )
    parser.add_argument(
        "--lenient-order",
        action="store_true",
        help="accept a tool output placed before its call (strict_order=False)",
    )
    parser.add_argument(
        "--zdr",
        action="store_true",
        help="act as a zero-data-retention organisation: nothing is stored (store=false)",
    )
    parser.add_argument(
        "--require-reasoning-id",
        action="store_true",
        help="reject reasoning input items without an id",
    )


def parse_fault(spec: str) -> tuple[Fault, int]:
    """Parse ``500``, ``429x3``, ``drop-after``, ``drop-before``, ``delay=0.5`` (``xN`` repeats)."""
    head, _, times = spec.partition("x") if not spec.startswith("delay") else (spec, "", "")
    count = int(times) if times else 1
    if head.isdigit():
        return Fault(status=int(head), should_retry=True), count
    if head in ("drop-after", "drop-before"):
        return Fault(drop="after" if head == "drop-after" else "before"), count
    if head.startswith("delay="):
        return Fault(delay=float(head.split("=", 1)[1])), count
    raise ValueError(f"Unknown fault {spec!r}: use e.g. 500x2, 429, drop-after, delay=0.5.")


def _bad_option(args: argparse.Namespace) -> str | None:
    """What is wrong with the numeric options, or ``None``."""
    if not 0 <= args.port <= 65535:
        return f"--port {args.port}: not a TCP port; use 0-65535 (0 picks a free one)"
    if args.max_body_bytes < 0:
        return f"--max-body-bytes {args.max_body_bytes}: must be 0 or more"
    if not args.model_delay >= 0:  # also refuses nan
        return f"--model-delay {args.model_delay}: must be 0 or more seconds"
    return None


def _start_error(args: argparse.Namespace, exc: OSError) -> str:
    """One line naming what could not be opened: the state file, or the address."""
    if exc.strerror is None:  # the state file's own errors already name it
        return str(exc)
    return f"cannot listen on {args.host}:{args.port} (--host/--port): {exc.strerror}"


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; print the base URL first. Returns the exit status."""
    try:
        faults = [parse_fault(spec) for spec in args.fault]
    except ValueError as exc:
        print(f"tracker emulator: {exc}", file=sys.stderr)
        return 2
    bad = _bad_option(args)
    if bad is not None:
        print(f"tracker emulator: {bad}", file=sys.stderr)
        return 2
    options = RuleOptions(
        strict_order=not args.lenient_order,
        require_reasoning_id=args.require_reasoning_id,
        zdr=args.zdr,
    )
    emulator = Emulator(
        args.host,
        args.port,
        options=options,
        api_key=args.api_key,
        max_body_bytes=args.max_body_bytes,
        model_delay=args.model_delay,
        seed=args.seed,
        state_path=args.state,
        record_requests=False,  # nobody reads the log of a command-line server: keep no bodies
    )
    try:
        emulator.start()
    except StateError as exc:
        print(f"tracker emulator: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"tracker emulator: {_start_error(args, exc)}", file=sys.stderr)
        return 2
    with emulator:
        for fault, count in faults:
            emulator.inject(fault, times=count)
        print(f"tracker emulator listening on {emulator.base_url}", flush=True)
        if args.state is not None:
            with emulator.state.lock:
                held = len(emulator.state.responses), len(emulator.state.conversations)
            print(
                f"state in {args.state}: {held[0]} responses, {held[1]} conversations",
                flush=True,
            )
            if emulator.state_warning is not None:
                print(f"tracker emulator: {emulator.state_warning}", file=sys.stderr)
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, lambda *_: stop.set())
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0
