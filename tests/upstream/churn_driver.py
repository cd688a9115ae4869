"""Drive openai-agents' tracker with address churn between turns; count dropped tool outputs.

    python tests/upstream/churn_driver.py [--mode calls|runner] [--runs 40] [--turns 8] [--install]

Run by ``tests/test_agents_releases.py`` inside a throwaway virtualenv holding one openai-agents
release. Each run is one server-managed conversation (``previous_response_id``: only what the
server lacks is sent) in which the model asks for one tool call per turn; an output is dropped
when no request ever carries it. ``--install`` runs ``tracker.agents.install()`` first.

``--mode calls`` (default) makes the runner's tracker calls in the runner's order with the
objects the runner makes: ``prepare_input(original_input, generated_items)``, then
``mark_input_as_sent`` of the prepared list, the model's response to ``track_server_items``,
then a ``ToolCallItem`` and a ``ToolCallOutputItem`` whose raw item is a fresh dict built by
``ItemHelpers.tool_call_output_item``, as the runner builds it. Between turns the request list
dies and a seeded, varying number of short-lived dicts is allocated and freed: the churn any
process has between turns. ``--mode runner`` runs the real ``Runner.run`` against an in-process
model instead (the tool churns memory); its many allocations per turn bury freed addresses, so
it drops far less often. Prints one JSON line: ``{"version", "mode", "installed", "runs",
"runs_with_drops", "drops"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import random
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from agents import Agent, RunConfig, Runner, function_tool
from agents.items import ItemHelpers, ModelResponse, ToolCallItem, ToolCallOutputItem
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import (
    ResponseFunctionToolCall,
    ResponseOutputMessage,
    ResponseOutputText,
)

REPO = Path(__file__).resolve().parents[2]


def _churn() -> None:
    """Allocate and free item-shaped dicts, the way any tool's own work does."""
    garbage = [
        {"type": "function_call_output", "call_id": f"x{n}", "output": str(n)} for n in range(64)
    ]
    del garbage


#: The tool's result: long enough that the input filter below shortens it.
RESULT = "x" * 3000
#: What the input filter keeps of a tool output (a documented use of call_model_input_filter).
KEEP = 1000


@function_tool
def lookup() -> str:
    """A tool whose work churns memory."""
    _churn()
    return RESULT


def shorten(item: Any) -> Any:
    """A tool output with its text cut to ``KEEP`` characters (other items unchanged)."""
    if isinstance(item, dict) and isinstance(item.get("output"), str):
        return {**item, "output": item["output"][:KEEP]}
    return item


def shorten_outputs(data: Any) -> Any:
    """``call_model_input_filter``: shorten long tool outputs before they go to the model."""
    data.model_data.input = [shorten(item) for item in data.model_data.input]
    return data.model_data


class ScriptedModel(Model):
    """Asks for one ``lookup`` call per turn, then answers; records the inputs it was sent."""

    def __init__(self, run: int, turns: int) -> None:
        self.run, self.turns = run, turns
        self.requests: list[list[Any]] = []

    async def get_response(self, *args: Any, **kwargs: Any) -> ModelResponse:
        """Return the next scripted response (the model interface's keywords vary by release)."""
        given = kwargs["input"] if "input" in kwargs else args[1]
        self.requests.append(list(given) if isinstance(given, list) else [given])
        n = len(self.requests)
        if n <= self.turns:
            output: Any = ResponseFunctionToolCall(
                id=f"fc_{self.run}_{n}",
                type="function_call",
                call_id=f"call_{self.run}_{n}",
                name="lookup",
                arguments="{}",
                status="completed",
            )
        else:
            output = ResponseOutputMessage(
                id=f"msg_{self.run}",
                type="message",
                role="assistant",
                status="completed",
                content=[ResponseOutputText(type="output_text", text="done", annotations=[])],
            )
        return ModelResponse(output=[output], usage=Usage(), response_id=f"resp_{self.run}_{n}")

    def stream_response(self, *args: Any, **kwargs: Any) -> Any:
        """Not used: the driver runs non-streamed."""
        raise NotImplementedError


def _call_id(item: Any) -> Any:
    return item.get("call_id") if isinstance(item, dict) else getattr(item, "call_id", None)


def _is_output(item: Any) -> bool:
    kind = item.get("type") if isinstance(item, dict) else getattr(item, "type", None)
    return kind == "function_call_output"


async def one_run(run: int, turns: int) -> int:
    """Run one conversation; return how many tool outputs never reached the model."""
    model = ScriptedModel(run, turns)
    agent = Agent(name="churn", instructions="call lookup", tools=[lookup], model=model)
    config = RunConfig(call_model_input_filter=shorten_outputs)
    await Runner.run(
        agent,
        f"run {run}: call lookup",
        previous_response_id=f"resp_{run}_0",
        max_turns=turns + 5,
        run_config=config,
    )
    delivered = {
        _call_id(item) for request in model.requests for item in request if _is_output(item)
    }
    return sum(1 for n in range(1, turns + 1) if f"call_{run}_{n}" not in delivered)


def _fc(run: int, n: int) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        id=f"fc_{run}_{n}",
        type="function_call",
        call_id=f"call_{run}_{n}",
        name="lookup",
        arguments="{}",
        status="completed",
    )


def _tracker_class() -> Any:
    """The class the runner would construct now (``install()`` swaps it by name)."""
    try:
        module = importlib.import_module("agents.run_internal.oai_conversation")
        return module.OpenAIServerConversationTracker
    except ModuleNotFoundError:  # before 0.8.0
        return importlib.import_module("agents.run")._ServerConversationTracker


def calls_run(run: int, turns: int) -> int:
    """One conversation through the runner's tracker calls; return the outputs never sent."""
    rng = random.Random(run)
    agent = Agent(name="churn")
    tracker = _tracker_class()(previous_response_id=f"resp_{run}_0")
    original_input = f"run {run}: call lookup"
    generated: list[Any] = []
    sent: set[Any] = set()
    for n in range(1, turns + 2):
        prepared = [shorten(item) for item in tracker.prepare_input(original_input, generated)]
        if hasattr(tracker, "mark_input_as_sent"):
            tracker.mark_input_as_sent(prepared)
        sent.update(_call_id(item) for item in prepared if _is_output(item))
        call = _fc(run, n)
        tracker.track_server_items(
            ModelResponse(output=[call], usage=Usage(), response_id=f"resp_{run}_{n}")
        )
        del prepared
        garbage = [{"n": k} for k in range(rng.randrange(0, 6))]
        del garbage
        raw = ItemHelpers.tool_call_output_item(call, RESULT)
        generated.append(ToolCallItem(agent=agent, raw_item=call))
        generated.append(ToolCallOutputItem(agent=agent, raw_item=raw, output=RESULT))
    return sum(1 for n in range(1, turns + 1) if f"call_{run}_{n}" not in sent)


def main(argv: list[str] | None = None) -> int:
    """Run the runs; print the JSON summary line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--install", action="store_true")
    parser.add_argument("--mode", choices=("calls", "runner"), default="calls")
    args = parser.parse_args(argv)
    if args.install:
        sys.path.append(str(REPO))
        import tracker.agents

        tracker.agents.install()
    if args.mode == "calls":
        drops = [calls_run(run, args.turns) for run in range(args.runs)]
    else:
        drops = [asyncio.run(one_run(run, args.turns)) for run in range(args.runs)]
    summary = {
        "version": metadata.version("openai-agents"),
        "mode": args.mode,
        "installed": args.install,
        "runs": args.runs,
        "runs_with_drops": sum(1 for d in drops if d),
        "drops": sum(drops),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
