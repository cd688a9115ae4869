"""Many workers, one session: through run_turn/arun_turn, no delta is ever sent twice.

Real stores (SQLite file, real redis-server), the real openai client and the emulator over
HTTP. Every worker has its own store connection and its own client, as separate machines would.
"""

from __future__ import annotations

import asyncio
import queue
import signal
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _fresh import FreshProcess
from _loop_helpers import ANSWER, PROMPT, TOOLS, request_bodies
from openai import AsyncOpenAI, OpenAI

from tracker import ConflictError
from tracker.emulator import Emulator, Fault
from tracker.loop import RetryPolicy, ToolFinished, arun_turn, run_turn
from tracker.stores import MemoryStore, claim_session, load_tracker, open_async_store, open_store

ROOT = Path(__file__).resolve().parents[1]
SESSIONS = ("s0", "s1", "s2")
TURNS = 4
WORKERS = 4
PLACEHOLDER = "[tracker placeholder]"


def prompt(session: str, n: int) -> str:
    """Turn ``n`` of ``session``: two parallel calls, then one; every argument is unique."""
    i = SESSIONS.index(session)
    return (
        f'weather({{"city": "{session}-{n}-a"}}) weather({{"city": "{session}-{n}-b"}}) '
        f'then add({{"a": {i}, "b": {n}}})'
    )


def jobs() -> list[tuple[str, int]]:
    """Turns in an order that makes workers collide: neighbours share a session."""
    return [(s, n + k) for n in range(0, TURNS, 2) for s in SESSIONS for k in (0, 1)]


class Tools:
    """The tools, counting every run by its arguments (unique per call)."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self._lock = threading.Lock()

    def _ran(self, what: str) -> None:
        with self._lock:
            self.runs[what] += 1

    def tools(self) -> list[Callable[..., Any]]:
        """Plain callables with type hints, as run_turn takes them."""

        def weather(city: str) -> str:
            """The weather in a city."""
            self._ran(f"weather {city}")
            return f"sunny in {city}"

        def add(a: int, b: int) -> int:
            """Add two integers."""
            self._ran(f"add {a} {b}")
            return a + b

        return [weather, add]


def check_delivery(emu: Emulator, messages: list[str], tool_runs: Counter[str]) -> None:
    """Every user message and tool output went out exactly once; no 400; each tool ran once."""
    bodies = request_bodies(emu)
    users: Counter[str] = Counter()
    outputs: Counter[str] = Counter()
    for body in bodies:
        for item in body["input"]:
            if item.get("role") == "user":
                users[item["content"]] += 1
            if item.get("type") == "function_call_output":
                outputs[item["call_id"]] += 1
                assert not str(item["output"]).startswith(PLACEHOLDER)
    issued = emu.issued_calls()
    assert dict.fromkeys(messages, 1) == dict(users)
    assert dict.fromkeys(issued, 1) == dict(outputs)
    assert dict.fromkeys(issued, 1) == dict(emu.received_outputs())
    assert len(bodies) == len(emu.state.responses)  # every request was accepted: zero 400s
    assert len(issued) == sum(tool_runs.values())
    assert {1} == set(tool_runs.values())


def check_sessions(url: str) -> None:
    """Each session ended answered: nothing pending, no lease, no unfinished turn."""
    store = open_store(url)
    try:
        for session in SESSIONS:
            tracker, _ = load_tracker(store, session)
            assert () == tuple(tracker.pending_call_ids)
            loaded = store.load(session)
            assert loaded is not None
            assert (None, None) == (loaded.state["lease"], loaded.state["turn"])
    finally:
        store.close()


def _url(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> str:
    if kind == "redis":
        url: str = request.getfixturevalue("redis_url")
        return url
    return f"sqlite:///{tmp_path / 'sessions.db'}"


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_many_threaded_workers_never_send_a_delta_twice(
    kind: str, emulator: Emulator, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Workers serving interleaved turns of the same sessions: each item sent exactly once."""
    url = _url(request, kind, tmp_path)
    todo: queue.Queue[tuple[str, int]] = queue.Queue()
    for job in jobs():
        todo.put(job)
    tools = Tools()
    errors: list[BaseException] = []
    texts: list[str] = []

    def worker() -> None:
        store = open_store(url)
        try:
            with OpenAI(base_url=emulator.base_url, api_key="k", max_retries=0) as client:
                while True:
                    try:
                        session, n = todo.get_nowait()
                    except queue.Empty:
                        return
                    result = run_turn(
                        client,
                        model="emu-1",
                        input=prompt(session, n),
                        tools=tools.tools(),
                        session_store=store,
                        session_id=session,
                        lease_wait=30,
                    )
                    texts.append(result.text)
        except BaseException as exc:
            errors.append(exc)
        finally:
            store.close()

    threads = [threading.Thread(target=worker) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [] == errors
    assert len(jobs()) == sum(1 for text in texts if text.startswith("Done."))
    check_delivery(emulator, [prompt(s, n) for s, n in jobs()], tools.runs)
    check_sessions(url)


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
async def test_many_async_workers_never_send_a_delta_twice(
    kind: str, emulator: Emulator, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The same with arun_turn: concurrent tasks, each with its own async store and client."""
    url = _url(request, kind, tmp_path)
    todo = jobs()
    tools = Tools()

    async def worker() -> int:
        served = 0
        store = open_async_store(url)
        try:
            async with AsyncOpenAI(base_url=emulator.base_url, api_key="k", max_retries=0) as c:
                while todo:
                    session, n = todo.pop(0)
                    await arun_turn(
                        c,
                        model="emu-1",
                        input=prompt(session, n),
                        tools=tools.tools(),
                        session_store=store,
                        session_id=session,
                        lease_wait=30,
                    )
                    served += 1
        finally:
            await store.close()
        return served

    served = await asyncio.gather(*(worker() for _ in range(WORKERS)))
    assert len(jobs()) == sum(served)
    check_delivery(emulator, [prompt(s, n) for s, n in jobs()], tools.runs)
    check_sessions(url)


_CRASHING = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from openai import OpenAI
    from tracker.loop import RequestSent, ToolCalled, run_turn
    from tracker.stores import open_store

    base_url, url, marker, log, where = sys.argv[1:6]

    def stop_here():
        Path(marker).write_text("holding the lease")
        time.sleep(120)  # SIGKILLed here

    def weather(city: str) -> str:
        "The weather in a city."
        with open(log, "a") as f:
            f.write(city + "\\n")
        if where == "tool":
            stop_here()
        return f"sunny in {city}"

    def add(a: int, b: int) -> int:
        "Add two integers."
        return a + b

    def on_event(event):
        if where == "request" and isinstance(event, RequestSent) and event.index == 1:
            stop_here()

    with OpenAI(base_url=base_url, api_key="k", max_retries=0) as client:
        run_turn(client, model="emu-1", input=sys.argv[6], tools=[weather, add],
                 session_store=open_store(url), session_id="chat", lease_ttl=1.0, on_event=on_event,
                 max_tool_workers=1)  # one tool at a time: the kill point is deterministic
    """
)


@pytest.mark.parametrize(
    ("kind", "where"), [("sqlite", "request"), ("redis", "request"), ("sqlite", "tool")]
)
def test_a_worker_killed_mid_turn_is_taken_over_after_its_lease(
    kind: str, where: str, emulator: Emulator, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """SIGKILL while holding the lease; once it expires another worker finishes the turn.

    Killed before its second request: the outputs it saved are delivered, not re-computed.
    Killed inside a tool: the calls it never finished get placeholders. Either way no 400.
    """
    url = _url(request, kind, tmp_path)
    marker, log = tmp_path / "marker", tmp_path / "tools.log"
    args = [emulator.base_url, url, str(marker), str(log), where, PROMPT]
    child = FreshProcess("_fresh", "run_code", _CRASHING, *args, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert marker.exists(), "the crashing worker never reached its kill point"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert 1 == len(request_bodies(emulator))

    tools = Tools()
    store = open_store(url)
    try:
        with OpenAI(base_url=emulator.base_url, api_key="k", max_retries=0) as client:
            result = run_turn(
                client,
                model="emu-1",
                input=PROMPT,
                tools=tools.tools(),
                session_store=store,
                session_id="chat",
                lease_wait=30,
            )
    finally:
        store.close()

    bodies = request_bodies(emulator)
    assert len(bodies) == len(emulator.state.responses)  # zero 400s
    users = [i for b in bodies for i in b["input"] if i.get("role") == "user"]
    assert [PROMPT] == [u["content"] for u in users]  # resumed: the input was not sent again
    assert dict.fromkeys(emulator.issued_calls(), 1) == dict(emulator.received_outputs())
    assert Counter({"add 2 3": 1}) == tools.runs  # the weather calls are not run again
    if where == "request":
        assert ["Paris", "Rome"] == log.read_text().split()
        assert (ANSWER, 0) == (result.text, result.abandoned_calls)
    else:
        assert ["Paris"] == log.read_text().split()
        assert 2 == result.abandoned_calls
        assert PLACEHOLDER in result.text


def test_a_turn_that_lost_its_lease_stops_sending(client: OpenAI, emulator: Emulator) -> None:
    """When another worker took the session over, the turn raises and sends nothing more."""
    store = MemoryStore()
    later = time.time() + 10_000  # the other worker's clock: our lease has long expired

    def takeover(event: Any) -> None:
        if isinstance(event, ToolFinished) and store.load("s") is not None:
            claim_session(store, "s", owner="other", clock=lambda: later)

    with pytest.raises(ConflictError, match="lease"):
        run_turn(
            client,
            model="emu-1",
            input=PROMPT,
            tools=TOOLS,
            session_store=store,
            session_id="s",
            on_event=takeover,
            lease_owner="me",
        )
    assert 1 == len(request_bodies(emulator))
    loaded = store.load("s")
    assert loaded is not None
    assert "other" == loaded.state["lease"]["owner"]


def test_a_failed_turn_hands_its_tool_outputs_to_the_next(
    client: OpenAI, emulator: Emulator
) -> None:
    """Outputs computed before a failed request are sent by the next turn, not placeholders."""
    store = MemoryStore()
    injected: list[bool] = []

    def fail_next_request(event: Any) -> None:
        if isinstance(event, ToolFinished) and not injected:
            injected.append(True)
            emulator.inject(Fault(status=500), times=1)

    with pytest.raises(Exception, match="500"):
        run_turn(
            client,
            model="emu-1",
            input=PROMPT,
            tools=TOOLS,
            session_store=store,
            session_id="s",
            on_event=fail_next_request,
            retry=RetryPolicy(max_attempts=1),
        )
    result = run_turn(
        client, model="emu-1", input="hi", tools=TOOLS, session_store=store, session_id="s"
    )
    assert ("You said: hi", 0) == (result.text, result.abandoned_calls)
    sent = request_bodies(emulator)[-1]["input"]
    assert ["sunny in Paris", "sunny in Rome", None] == [i.get("output") for i in sent]
