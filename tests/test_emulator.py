"""End-to-end tests of the emulator with the real openai client (sync, async, streaming)."""

from __future__ import annotations

from typing import Any

from openai import AsyncOpenAI, OpenAI

from tracker.emulator import Emulator

TOOLS: list[Any] = [
    {"type": "function", "name": "weather", "parameters": {"type": "object", "properties": {}}},
    {"type": "function", "name": "add", "parameters": {"type": "object", "properties": {}}},
]
PROMPT = 'weather({"city": "Paris"}) weather({"city": "Rome"}) then add({"a": 1, "b": 2})'


def _outputs(response: Any) -> list[dict[str, Any]]:
    return [
        {"type": "function_call_output", "call_id": item.call_id, "output": f"out-{item.name}"}
        for item in response.output
        if item.type == "function_call"
    ]


def test_tool_loop_previous_response_id(client: OpenAI, emulator: Emulator) -> None:
    """Two rounds of calls then a text answer, chained by previous_response_id."""
    r1 = client.responses.create(model="emu-1", input=PROMPT, tools=TOOLS)
    assert ["weather", "weather"] == [o.name for o in r1.output if o.type == "function_call"]
    r2 = client.responses.create(
        model="emu-1", input=_outputs(r1), tools=TOOLS, previous_response_id=r1.id
    )
    assert ["add"] == [o.name for o in r2.output if o.type == "function_call"]
    r3 = client.responses.create(
        model="emu-1", input=_outputs(r2), tools=TOOLS, previous_response_id=r2.id
    )
    assert "Done. weather -> out-weather; weather -> out-weather; add -> out-add" == r3.output_text
    assert dict.fromkeys(emulator.issued_calls(), 1) == emulator.context_outputs(
        response_id=r3.id
    )


async def test_tool_loop_conversation_async_stream(
    async_client: AsyncOpenAI, emulator: Emulator
) -> None:
    """The same loop through a conversation, async and streaming."""
    conv = await async_client.conversations.create()
    items: Any = PROMPT
    for _ in range(3):
        async with async_client.responses.stream(
            model="emu-reason-1", input=items, tools=TOOLS, conversation=conv.id
        ) as stream:
            final = await stream.get_final_response()
        items = _outputs(final)
    assert final.output_text.startswith("Done. ")
    assert dict.fromkeys(emulator.issued_calls(), 1) == emulator.context_outputs(
        conversation_id=conv.id
    )
