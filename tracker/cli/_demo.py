"""``tracker demo``: a multi-turn, multi-tool conversation that shows every delta it sends.

By default it starts the emulator in-process (``tracker.emulator``), keeps the session in
SQLite at ``$XDG_CACHE_HOME/tracker/demo.db`` (``~/.cache/tracker/demo.db``), and drives three
turns with ``tracker.loop.run_turn``: parallel tool calls, several rounds, one plain answer.
``--base-url`` (and ``OPENAI_API_KEY`` or ``--api-key``) points it at a real endpoint instead;
the key alone never does, so the quick start cannot spend money.

``--session NAME`` continues a session in a later run: the next turn continues from the saved
``previous_response_id`` or conversation. The embedded emulator keeps its state in a JSON file
next to the store (``demo.db`` -> ``demo.emulator.json``; under the cache directory for a Redis
store; nowhere for ``memory://`` and ``sqlite:///:memory:``, which forget the session anyway,
so the closing line says it cannot be continued), so a later run's emulator still holds the
chain. Should the server not hold it (the file was deleted), the demo says so and starts a new
chain (or conversation) in the same session, rather than pretend; the session's saved state
still continues (its version keeps growing).

``--compact-threshold N`` runs a longer session (``--turns``, default 12, each with tool
rounds) with server-side compaction (``context_management=[{"type": "compaction",
"compact_threshold": N}]``; the emulator takes N >= 1000 and counts about four characters of
JSON a token). It prints each compaction with the context before and after, and closes with
the compactions, the largest context, and, on the embedded emulator, a check that the
server's context holds exactly one output for every call of the session's chain or
conversation (a mismatch counts as an error).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai

from tracker._errors import StateError
from tracker._tracker import Tracker
from tracker.cli._demo_view import View
from tracker.loop import FunctionTool, RetryPolicy, TurnResult, function_tool, run_turn
from tracker.stores import load_tracker, save_tracker

__all__ = ["TURNS", "add_arguments", "continue_hint", "run", "turn_texts"]

#: The demo's user turns: plain words for a real model, call syntax for the scripted one.
TURNS = (
    "What is the weather in Paris and in Rome, and what is 2 + 3? "
    'weather({"city": "Paris"}) weather({"city": "Rome"}) then add({"a": 2, "b": 3})',
    "Check Tokyo, Oslo and Lima together, then add 21 and 4, then convert 25 C to F. "
    'weather({"city": "Tokyo"}) weather({"city": "Oslo"}) weather({"city": "Lima"}) '
    'then add({"a": 21, "b": 4}) then to_fahrenheit({"celsius": 25})',
    "Thanks, that is all.",
)


def weather(city: str) -> str:
    """Current weather in a city (a deterministic stand-in for a weather service)."""
    temp = 10 + sum(map(ord, city)) % 20
    sky = ("sunny", "cloudy", "rainy", "windy")[len(city) % 4]
    return f"{temp} C, {sky}"


def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


def to_fahrenheit(celsius: float) -> float:
    """Convert a temperature from Celsius to Fahrenheit."""
    return round(celsius * 9 / 5 + 32, 1)


_CITIES = ("Paris", "Rome", "Tokyo", "Oslo", "Lima", "Cairo", "Quito", "Seoul", "Dakar", "Perth")
#: User turns of the default demo and of one with --compact-threshold.
DEFAULT_TURNS, COMPACT_TURNS = len(TURNS), 12


def turn_texts(count: int) -> tuple[str, ...]:
    """``count`` user turns: the three ``TURNS`` when ``count`` is 3, else ``count - 1`` turns
    of two tool rounds (two cities' weather, then a sum) and the closing ``TURNS[-1]``."""
    if count == len(TURNS):
        return TURNS
    texts = []
    for k in range(max(count - 1, 0)):
        a, b = _CITIES[k % len(_CITIES)], _CITIES[(k + 3) % len(_CITIES)]
        texts.append(
            f"Weather in {a} and {b}, then add {k} and 1? "
            f'weather({{"city": "{a}"}}) weather({{"city": "{b}"}}) '
            f'then add({{"a": {k}, "b": 1}})'
        )
    return (*texts, TURNS[-1])[-count:] if count > 0 else ()


TOOLS: tuple[FunctionTool, ...] = tuple(function_tool(f) for f in (weather, add, to_fahrenheit))


def default_store_url() -> str:
    """``sqlite:///`` + ``$XDG_CACHE_HOME/tracker/demo.db`` (``~/.cache`` when unset)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return "sqlite:///" + str(Path(cache).resolve() / "tracker" / "demo.db")


def emulator_state_path(store_url: str) -> Path | None:
    """Where the embedded emulator keeps its state for sessions in ``store_url``.

    Next to a SQLite file (``demo.db`` -> ``demo.emulator.json``), in the cache directory for
    Redis (one file per URL), ``None`` for stores that do not outlive the process.
    """
    from tracker.stores._url import _parse

    if not _outlives_process(store_url):
        return None
    kind, target = _parse(store_url)
    if kind == "sqlite":
        db = Path(target)
        return db.with_name(db.stem + ".emulator.json")
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    key = hashlib.sha256(store_url.encode()).hexdigest()[:16]
    return Path(cache) / "tracker" / f"emulator-{key}.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the ``tracker demo`` options."""
    parser.add_argument(
        "--base-url", help="an OpenAI-compatible endpoint (default: the embedded emulator)"
    )
    parser.add_argument("--api-key", help="API key for --base-url (default: $OPENAI_API_KEY)")
    parser.add_argument(
        "--model", help="model name (default: emu-1 on the emulator, gpt-4.1-mini elsewhere)"
    )
    parser.add_argument(
        "--store", help="session store URL (default: sqlite:///$XDG_CACHE_HOME/tracker/demo.db)"
    )
    parser.add_argument("--session", help="session to continue (default: a new session)")
    parser.add_argument(
        "--conversation",
        action="store_true",
        help="run a new session in a conversation instead of a previous_response_id chain",
    )
    parser.add_argument(
        "--stream",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="stream the answers (default: on a terminal)",
    )
    parser.add_argument(
        "--faults",
        action="store_true",
        help="embedded emulator only: inject a 500 and a dropped connection to show the retries",
    )
    parser.add_argument(
        "--compact-threshold",
        type=int,
        metavar="N",
        help="compact the context on the server when it passes N tokens (context_management; "
        f"the emulator takes N >= 1000); runs {COMPACT_TURNS} turns unless --turns says",
    )
    parser.add_argument(
        "--turns",
        type=int,
        metavar="K",
        help=f"user turns to run (default: {DEFAULT_TURNS}, {COMPACT_TURNS} with "
        "--compact-threshold; other than 3: tool rounds, then a closing turn)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 on success, 1 when a turn fails (the error is printed)."""
    from tracker.stores import open_store

    view = View(sys.stdout, live=sys.stdout.isatty())
    store_url = args.store or default_store_url()
    if store_url == default_store_url():
        Path(store_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        embedded = args.base_url is None
        faults: list[Any] = []
        emulator: Any = None
        state_path = emulator_state_path(store_url) if embedded else None
        if embedded:
            from tracker.emulator import Emulator, Fault

            if state_path is not None:
                state_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                emulator = stack.enter_context(Emulator(state_path=state_path))
            except (StateError, OSError) as exc:
                print(f"tracker demo: {exc}", file=sys.stderr)
                return 1
            if args.faults:
                faults = [Fault(status=500, should_retry=False), Fault(drop="after")]
            base_url, where = emulator.base_url, f"embedded emulator at {emulator.base_url}"
            if state_path is not None:
                where += f" (state in {state_path})"
        else:
            base_url, where = args.base_url, args.base_url
        key = args.api_key or os.environ.get("OPENAI_API_KEY") or "demo-key"
        client = stack.enter_context(openai.OpenAI(base_url=base_url, api_key=key))
        store = open_store(store_url)
        stack.callback(store.close)
        model = args.model or ("emu-1" if embedded else "gpt-4.1-mini")
        session = args.session or time.strftime("demo-%Y%m%d-%H%M%S-") + secrets.token_hex(2)
        view.line(f"tracker demo: {where}, model {model}")
        demo = _Demo(client, store, session, model, view, embedded=embedded, state_path=state_path)
        demo.options.update(_compaction_options(args))
        if faults:

            def inject() -> None:
                for fault in faults:
                    emulator.inject(fault)

            demo.before_turn[2] = inject
        try:
            demo.open(conversation=args.conversation, store_url=store_url)
            stream = view.live if args.stream is None else args.stream
            for number, text in enumerate(turn_texts(_turn_count(args)), 1):
                demo.turn(number, text, stream=stream)
        except (openai.OpenAIError, ValueError, RuntimeError) as exc:
            view.line(f"error: {type(exc).__name__}: {exc}")
            view.line(demo.summary(errors=1))
            return 1
        errors = demo.report_compaction(emulator)
        view.line(demo.summary(errors=errors))
        if errors:
            return 1
        view.line(continue_hint(args, store_url, session))
    return 0


def _compaction_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.compact_threshold is None:
        return {}
    entry = {"type": "compaction", "compact_threshold": args.compact_threshold}
    return {"context_management": [entry]}


def _turn_count(args: argparse.Namespace) -> int:
    if args.turns is not None:
        return int(args.turns)
    return DEFAULT_TURNS if args.compact_threshold is None else COMPACT_TURNS


def continue_hint(args: argparse.Namespace, store_url: str, session: str) -> str:
    """The closing hint: a command that continues the session, or why there is none.

    A session in a store that dies with the process (``memory://``, ``sqlite:///:memory:``)
    cannot be continued, so the hint says so instead. Otherwise the command repeats every
    option the next run needs to reach the same session and server (never the API key).
    """
    if not _outlives_process(store_url):
        return (
            f"session {session} was kept in {store_url}, which ends with this run: "
            "pass --store sqlite:///FILE (or redis://...) to continue a session later"
        )
    # dev.py names itself, so the hint is a command that works in the user's shell.
    command = [os.environ.get("TRACKER_DEMO_COMMAND", "tracker demo"), "--session", session]
    if args.store is not None:
        command += ["--store", store_url]
    if args.base_url is not None:
        command += ["--base-url", args.base_url]
    if args.model is not None:
        command += ["--model", args.model]
    if getattr(args, "compact_threshold", None) is not None:
        command += ["--compact-threshold", str(args.compact_threshold)]
    return "continue it: " + " ".join(command)


def _outlives_process(store_url: str) -> bool:
    from tracker.stores._url import _parse

    kind, target = _parse(store_url)
    return not (kind == "memory" or (kind == "sqlite" and target == ":memory:"))


class _Demo:
    """One demo run: its session, its turns and their totals."""

    def __init__(
        self,
        client: openai.OpenAI,
        store: Any,
        session: str,
        model: str,
        view: View,
        *,
        embedded: bool,
        state_path: Path | None = None,
    ) -> None:
        self.client, self.store, self.session, self.model = client, store, session, model
        self.view, self.embedded, self.state_path = view, embedded, state_path
        self.results: list[TurnResult] = []
        self.before_turn: dict[int, Callable[[], object]] = {}
        #: Passed through to every ``responses.create`` (``context_management``).
        self.options: dict[str, Any] = {}

    def open(self, *, conversation: bool, store_url: str) -> None:
        """Start the session, or say where the saved one continues from."""
        saved, version = load_tracker(self.store, self.session)
        if version == 0:
            tracker = Tracker()
            if conversation:
                tracker = Tracker(conversation_id=self.client.conversations.create().id)
            save_tracker(self.store, self.session, tracker, 0)
            mode = f"conversation {tracker.conversation_id}" if conversation else "a new chain"
            self.view.line(f"session {self.session}: new, in {mode}; stored in {store_url}")
            return
        if conversation and saved.conversation_id is None:
            self.view.line("note: --conversation applies to new sessions; this one is a chain")
        place = (
            f"conversation {saved.conversation_id}"
            if saved.conversation_id
            else f"previous_response_id {saved.previous_response_id or '-'}"
        )
        self.view.line(
            f"session {self.session}: continuing at version {version} from {place}; "
            f"stored in {store_url}"
        )

    def turn(self, number: int, text: str, *, stream: bool) -> None:
        """Run one user turn and show it."""
        self.view.line(f"turn {number}: {text}")
        if number in self.before_turn:
            self.before_turn[number]()
        try:
            result = self._run(text, stream)
        except (openai.BadRequestError, openai.NotFoundError) as exc:
            if not (self.embedded and not self.results and _gone(exc)):
                raise
            self._restart(exc)
            result = self._run(text, stream)
        self.view.answer(result)
        self.results.append(result)

    def _run(self, text: str, stream: bool) -> TurnResult:
        return run_turn(
            self.client,
            model=self.model,
            input=text,
            tools=TOOLS,
            session_store=self.store,
            session_id=self.session,
            stream=stream,
            on_event=self.view.event,
            retry=RetryPolicy(initial_delay=0.2, max_delay=2.0),
            **self.options,
        )

    def _restart(self, exc: openai.APIStatusError) -> None:
        old, version = load_tracker(self.store, self.session)
        fresh = Tracker()
        what = f"response {old.previous_response_id}"
        if old.conversation_id is not None:
            fresh = Tracker(conversation_id=self.client.conversations.create().id)
            what = f"conversation {old.conversation_id}"
        save_tracker(self.store, self.session, fresh, version)
        kept = f"its state file {self.state_path}" if self.state_path else "memory only"
        self.view.line(
            f"  note: the server no longer holds {what}: the embedded emulator's state "
            f"({kept}) does not have it, e.g. the file was deleted. Starting a new chain in "
            "this session."
        )

    def report_compaction(self, emulator: Any) -> int:
        """With compaction asked for: print what it did and, on the embedded ``emulator``,
        whether the server's context holds one output per call. Returns the errors found."""
        if "context_management" not in self.options:
            return 0
        sizes = ", ".join(
            f"{before:,} -> {'(no later request)' if after is None else f'{after:,}'}"
            for before, after in self.view.compactions
        )
        threshold = self.options["context_management"][0]["compact_threshold"]
        self.view.line(
            f"compaction: {len(self.view.compactions)} on the server "
            f"(context tokens before -> after: {sizes or 'none'}); largest context "
            f"{self.view.peak_tokens:,} tokens (threshold {threshold:,})"
        )
        if emulator is None or not self.results:
            return 0
        tracker = self.results[-1].tracker
        items = emulator.context_items(
            response_id=None if tracker.conversation_id else tracker.previous_response_id,
            conversation_id=tracker.conversation_id,
        )
        calls = [i["call_id"] for i in items if i.get("type") == "function_call"]
        outputs = Counter(i["call_id"] for i in items if i.get("type") == "function_call_output")
        wrong = sorted(c for c in {*calls, *outputs} if outputs[c] != 1 or c not in calls)
        if wrong:
            self.view.line(f"tool outputs: not exactly once for {', '.join(wrong)}")
            return 1
        self.view.line(
            f"tool outputs: {len(calls)} calls in the server's context, each answered exactly once"
        )
        return 0

    def summary(self, *, errors: int) -> str:
        """The closing line: turns, items sent, items not re-sent, retries, errors."""
        requests = sum(len(r.requests) for r in self.results)
        sent = sum(r.items_sent for r in self.results)
        held = sum(r.items_not_resent for r in self.results)
        retries = sum(r.retries for r in self.results)
        tool_errors = sum(r.tool_errors for r in self.results)
        return (
            f"summary: {len(self.results)} turns, {requests} requests, {sent} items sent, "
            f"{held} already on the server (not re-sent), {retries} retries, "
            f"{tool_errors} tool errors, "
            f"errors: {errors}"
        )


def _gone(exc: openai.APIStatusError) -> bool:
    code = getattr(exc, "code", None)
    return code == "previous_response_not_found" or (
        exc.status_code == 404 and "Conversation with id" in str(exc)
    )
