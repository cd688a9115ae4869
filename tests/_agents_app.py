"""A small openai-agents app for the end-to-end tests of ``tracker.agents``.

Imported by ``tests/test_agents_e2e.py``, and run as a fresh process to resume a saved run::

    python tests/_agents_app.py resume BASE_URL STATE_FILE [STATE_FILE ...]

which installs our tracker and, for each file in turn, restores the ``RunState`` JSON, approves
every pending approval, finishes the run against the emulator at ``BASE_URL`` and prints
``{"final_output": ..., "last_response_id": ..., "tracker": <class used>}`` as one JSON line.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from pathlib import Path
from typing import Any

from agents import Agent, OpenAIResponsesModel, RunConfig, Runner, RunState, function_tool
from openai import AsyncOpenAI

MODEL = "emu-1"
RUN_CONFIG = RunConfig(tracing_disabled=True)


def churn(rounds: int = 3, *, full: bool = True) -> None:
    """Collect, then allocate and free many item-shaped dicts, so freed addresses get reused.

    ``full`` first collects every generation (once: it frees the cycles a finished run left,
    and a second full pass finds nothing new but costs as much, ~0.2 s on a worker's heap);
    each round's dicts die by refcount and a youngest-generation pass follows, cheap enough for
    every call (``full=False``: a tool's churn).
    """
    if full:
        gc.collect()
    for _ in range(rounds):
        garbage = [
            {"type": "function_call_output", "call_id": f"call_{i}", "output": str(i)}
            for i in range(2000)
        ]
        del garbage
        gc.collect(0)


@function_tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    churn(1, full=False)
    return a + b


@function_tool
def weather(city: str) -> str:
    """Report the weather in a city."""
    churn(1, full=False)
    return f"sunny in {city}"


@function_tool(needs_approval=True)
def delete_file(path: str) -> str:
    """Delete a file (needs a human's approval)."""
    churn(1, full=False)
    return f"deleted {path}"


def make_agent(client: AsyncOpenAI) -> Agent[Any]:
    """The agent under test: the Responses model on ``client`` with three function tools."""
    return Agent(
        name="assistant",
        model=OpenAIResponsesModel(model=MODEL, openai_client=client),
        tools=[add, weather, delete_file],
    )


def rounds_prompt(rounds: int, tag: str = "") -> str:
    """A scripted prompt: ``rounds`` rounds of two parallel calls each."""
    return " then ".join(
        f'add({{"a": {i}, "b": {len(tag)}}}) weather({{"city": "{tag}{i}"}})' for i in range(rounds)
    )


async def resume(state_file: Path, base_url: str) -> dict[str, Any]:
    """Finish a saved, interrupted run in this process, approving every pending call."""
    import agents.run

    import tracker.agents

    tracker.agents.install()
    async with AsyncOpenAI(base_url=base_url, api_key="test-key", max_retries=0) as client:
        agent = make_agent(client)
        state = await RunState.from_string(agent, state_file.read_text())
        for interruption in state.get_interruptions():
            state.approve(interruption)
        churn()
        result = await Runner.run(agent, state, run_config=RUN_CONFIG)
    cls = agents.run.OpenAIServerConversationTracker
    return {
        "final_output": result.final_output,
        "last_response_id": result.last_response_id,
        "interruptions": len(result.interruptions),
        "tracker": f"{cls.__module__}.{cls.__qualname__}",
    }


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] != "resume":
        sys.exit(__doc__)
    for state_file in sys.argv[3:]:
        print(json.dumps(asyncio.run(resume(Path(state_file), sys.argv[2]))))
