"""Plain-dict items and messages for tests: one definition each, shared by the test modules.

Responses items: ``user``, ``said`` (``said_as`` with an item id), ``call``, ``output``,
``reasoning``; numbered variants
``numbered_call`` / ``numbered_output`` (``call_<n>`` with item id ``fc_<n>``). Chat
Completions messages: ``chat_calls`` (an assistant message with ``tool_calls``) and ``tool``.
Extra keyword arguments become extra fields (``call("a", id="fc_a")``).
"""

from __future__ import annotations

from typing import Any


def user(text: str = "hi", **extra: Any) -> dict[str, Any]:
    """A user message in the short form (``role`` + string ``content``)."""
    return {"role": "user", "content": text, **extra}


def said(text: str = "done") -> dict[str, Any]:
    """An assistant output message (Responses ``message`` item with ``output_text``)."""
    return {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text}],
    }


def said_as(item_id: str, text: str) -> dict[str, Any]:
    """``said(text)`` carrying the server's item id ``item_id`` (``msg_...``)."""
    return {
        "type": "message",
        "id": item_id,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text}],
    }


def call(call_id: str, name: str = "f", **extra: Any) -> dict[str, Any]:
    """A ``function_call`` item with empty arguments."""
    return {"type": "function_call", "call_id": call_id, "name": name, "arguments": "{}", **extra}


def output(call_id: str, text: str = "ok", **extra: Any) -> dict[str, Any]:
    """The ``function_call_output`` answering ``call_id``."""
    return {"type": "function_call_output", "call_id": call_id, "output": text, **extra}


def reasoning(item_id: str) -> dict[str, Any]:
    """A ``reasoning`` item with an empty summary."""
    return {"type": "reasoning", "id": item_id, "summary": []}


def numbered_call(n: int, *, with_id: bool = True) -> dict[str, Any]:
    """Call ``call_<n>``, with item id ``fc_<n>`` unless ``with_id`` is false."""
    return call(f"call_{n}", id=f"fc_{n}") if with_id else call(f"call_{n}")


def numbered_output(n: int, text: str = "ok") -> dict[str, Any]:
    """The output answering ``numbered_call(n)``."""
    return output(f"call_{n}", text)


def chat_calls(*call_ids: str, content: str | None = None) -> dict[str, Any]:
    """A Chat Completions assistant message asking for one ``f`` call per id."""
    calls = [
        {"id": i, "type": "function", "function": {"name": "f", "arguments": "{}"}}
        for i in call_ids
    ]
    return {"role": "assistant", "content": content, "tool_calls": calls}


def tool(call_id: str, text: str = "ok") -> dict[str, Any]:
    """A Chat Completions ``tool`` message answering ``call_id``."""
    return {"role": "tool", "tool_call_id": call_id, "content": text}
