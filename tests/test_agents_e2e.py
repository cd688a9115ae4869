"""openai-agents runs through ``tracker.agents`` against the emulator over real HTTP.

Every test runs the SDK's ``Runner`` with ``OpenAIResponsesModel`` on an ``AsyncOpenAI`` client
pointed at the emulator, with our tracker installed and GC churn inside every tool call (that
is, between turns) and between runs; the emulator rejects duplicates and missing outputs as the
service does, and counts every tool output it accepted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import agents.run
import pytest
from _agents_app import RUN_CONFIG, churn, make_agent, rounds_prompt
from agents import Runner
from openai import AsyncOpenAI

import tracker.agents
from tracker.emulator import Emulator

OURS = "tracker.agents._conversation.OpenAIServerConversationTracker"


@pytest.fixture(autouse=True)
def _installed() -> Iterator[None]:
    with tracker.agents.installed():
        assert tracker.agents.OpenAIServerConversationTracker is (
            agents.run.OpenAIServerConversationTracker
        )
        yield


def once_each(emulator: Emulator) -> dict[str, int]:
    """The outputs count a correct run must produce: every issued call answered once."""
    return dict.fromkeys(emulator.issued_calls(), 1)


async def run_streamed(agent: Any, prompt: Any, **kwargs: Any) -> Any:
    """``Runner.run_streamed`` to completion; returns the finished result."""
    result = Runner.run_streamed(agent, prompt, run_config=RUN_CONFIG, **kwargs)
    async for _event in result.stream_events():
        pass
    return result


async def test_run_many_rounds_auto_previous_response_id(
    emulator: Emulator, async_client: AsyncOpenAI
) -> None:
    """Runner.run with auto chaining: 8 rounds of 2 calls, every output delivered once."""
    agent = make_agent(async_client)
    result = await Runner.run(
        agent, rounds_prompt(8), auto_previous_response_id=True, run_config=RUN_CONFIG
    )
    assert 16 == len(emulator.issued_calls())
    assert once_each(emulator) == emulator.received_outputs()
    assert once_each(emulator) == emulator.context_outputs(response_id=result.last_response_id)
    assert result.final_output.startswith("Done.")


async def test_run_streamed_many_rounds(emulator: Emulator, async_client: AsyncOpenAI) -> None:
    """Runner.run_streamed with auto chaining: every output delivered once, run completes."""
    agent = make_agent(async_client)
    result = await run_streamed(agent, rounds_prompt(8), auto_previous_response_id=True)
    assert 16 == len(emulator.issued_calls())
    assert once_each(emulator) == emulator.received_outputs()
    assert once_each(emulator) == emulator.context_outputs(response_id=result.last_response_id)
    assert result.is_complete


async def test_runs_chained_with_previous_response_id(
    emulator: Emulator, async_client: AsyncOpenAI
) -> None:
    """Four runs, each continuing the last by previous_response_id, plain and streamed."""
    agent = make_agent(async_client)
    # Without any chaining option the SDK resends the whole history by design: start chained.
    chain: dict[str, Any] = {"auto_previous_response_id": True}
    for run in range(4):
        prompt = rounds_prompt(4, tag=f"r{run}-")
        if run % 2:
            result = await run_streamed(agent, prompt, **chain)
        else:
            result = await Runner.run(agent, prompt, run_config=RUN_CONFIG, **chain)
        last_id = result.last_response_id
        chain = {"previous_response_id": last_id}
        churn()
    assert 32 == len(emulator.issued_calls())
    assert once_each(emulator) == emulator.received_outputs()
    assert once_each(emulator) == emulator.context_outputs(response_id=last_id)


async def test_runs_in_a_conversation(emulator: Emulator, async_client: AsyncOpenAI) -> None:
    """Three runs in one conversation (conversation_id): the conversation holds each output once."""
    agent = make_agent(async_client)
    conversation = await async_client.conversations.create()
    for run in range(3):
        prompt = rounds_prompt(4, tag=f"c{run}-")
        if run == 1:
            await run_streamed(agent, prompt, conversation_id=conversation.id)
        else:
            await Runner.run(agent, prompt, conversation_id=conversation.id, run_config=RUN_CONFIG)
        churn()
    assert 24 == len(emulator.issued_calls())
    assert once_each(emulator) == emulator.received_outputs()
    assert once_each(emulator) == emulator.context_outputs(conversation_id=conversation.id)


def sent_outputs(emulator: Emulator) -> Counter[str]:
    """call_id -> how many times a tool output with it appeared in a request body."""
    return Counter(
        item["call_id"]
        for body in emulator.requests_to("/v1/responses")
        for item in (body.get("input") if isinstance(body.get("input"), list) else [])
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    )


@pytest.mark.slow
async def test_approvals_saved_as_json_and_resumed_in_a_fresh_process(
    emulator: Emulator, async_client: AsyncOpenAI, tmp_path: Path
) -> None:
    """Runs stopped for approval (chained by auto_previous_response_id, and in a conversation)
    resume from RunState JSON in another process; no output lost."""
    agent = make_agent(async_client)
    prompt = (
        'add({"a": 1, "b": 2}) weather({"city": "Oslo"}) then delete_file({"path": "/tmp/x"}) '
        'add({"a": 3, "b": 4}) then add({"a": 5, "b": 6}) then weather({"city": "Rome"})'
    )
    conversation_id = (await async_client.conversations.create()).id
    chainings: list[dict[str, Any]] = [
        {"auto_previous_response_id": True},
        {"conversation_id": conversation_id},
    ]
    state_files = []
    for n, kwargs in enumerate(chainings):
        first = await Runner.run(agent, prompt, run_config=RUN_CONFIG, **kwargs)
        assert ["delete_file"] == [item.name for item in first.interruptions]
        state_files.append(tmp_path / f"state-{n}.json")
        state_files[-1].write_text(first.to_state().to_string())
        del first
    churn()

    # One new process resumes both runs: the process start (importing openai-agents) is the
    # cost, and neither run's objects exist in it.
    child = Path(__file__).with_name("_agents_app.py")
    done = subprocess.run(
        [sys.executable, str(child), "resume", emulator.base_url, *map(str, state_files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert 0 == done.returncode, done.stderr
    chained, in_conversation = (json.loads(line) for line in done.stdout.strip().splitlines())
    for resumed in (chained, in_conversation):
        assert OURS == resumed["tracker"]
        assert 0 == resumed["interruptions"]
        assert "deleted /tmp/x" in resumed["final_output"]
    assert 12 == len(emulator.issued_calls())
    assert once_each(emulator) == emulator.received_outputs()
    assert once_each(emulator) == sent_outputs(emulator)
    chain = emulator.context_outputs(response_id=chained["last_response_id"])
    conversation = emulator.context_outputs(conversation_id=conversation_id)
    assert 6 == len(chain) == len(conversation)
    assert once_each(emulator) == {**chain, **conversation}
