"""``max_output_tokens``: a response whose scripted output is longer ends ``incomplete``.

The service stops generating once a response has spent ``max_output_tokens`` (visible output
and reasoning tokens together, API reference [DOC]) and answers ``status: "incomplete"`` with
``incomplete_details: {"reason": "max_output_tokens"}`` (SDK ``Response.IncompleteDetails``,
whose other reason is ``content_filter`` [DOC]); a stream ends with ``response.incomplete``
instead of ``response.completed`` (SDK ``ResponseIncompleteEvent`` [DOC]). The output generated
so far is kept: a message cut mid-text, or only the reasoning items when the budget ran out
while reasoning (community thread 1373609, "output contains only type: reasoning items"
[OBS]). The response is stored and can be continued like a completed one (background guide:
``incomplete`` is a terminal status [DOC]).

How the emulator counts (its own stand-in for a tokenizer [INF]): four characters of a
message's ``output_text`` or of a call's arguments (``input`` for a custom tool call) per token,
rounded up, and ``REASONING_TOKENS`` per reasoning item (as its ``usage`` counts reasoning);
other items cost nothing. The item the budget ends in is cut: a message's text or a call's
arguments to what the rest of the budget buys, with ``status: "incomplete"`` (a status the SDK
types allow on both [DOC]; that the service cuts a call this way is [INF]); a reasoning item is
kept whole; a message or call with no budget left is left out, as is everything after it.
``usage.output_tokens`` is then ``max_output_tokens``: the whole budget was spent.

A script can end a response incomplete itself (a scripted fault): a final
``{"type": "incomplete", "reason": "content_filter"}`` item (``STOP``) is not emitted; the
items before it are the output, and the response ends ``incomplete`` with that reason (the
SDK's other reason is ``content_filter`` [DOC]; what output the service keeps then is not in
the public record, so the script says [INF]). ``max_output_tokens`` still applies to them.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Final

__all__ = ["REASONING_TOKENS", "STOP", "cut_to_budget", "end_output", "token_cost"]

#: The ``type`` of the item a script ends its output with to end the response incomplete.
STOP: Final = "incomplete"
#: Tokens a reasoning item costs (``usage.output_tokens_details.reasoning_tokens`` per item).
REASONING_TOKENS: Final = 16
_CHARS_PER_TOKEN: Final = 4
#: The member holding what the model generated, per cuttable item type.
_GENERATED: Final = {"function_call": "arguments", "custom_tool_call": "input"}


def _tokens(chars: int) -> int:
    return -(-chars // _CHARS_PER_TOKEN)


def token_cost(item: Mapping[str, Any]) -> int:
    """The output tokens the model spends generating ``item`` (see the module docstring)."""
    kind = item.get("type")
    if kind == "reasoning":
        return REASONING_TOKENS
    if kind == "message":
        return _tokens(sum(len(part.get("text") or "") for part in _text_parts(item)))
    member = _GENERATED.get(str(kind))
    return _tokens(len(str(item.get(member) or ""))) if member else 0


def _text_parts(item: Mapping[str, Any]) -> list[Any]:
    return [p for p in item.get("content") or [] if p.get("type") == "output_text"]


def _cut(item: Mapping[str, Any], budget: int) -> dict[str, Any] | None:
    """``item`` as far as ``budget`` tokens generate it (``None``: nothing of it)."""
    if item.get("type") == "reasoning":
        return dict(item)  # the tokens went into reasoning: the item is still emitted
    chars = budget * _CHARS_PER_TOKEN
    if chars <= 0:
        return None
    cut = copy.deepcopy(dict(item))
    cut["status"] = "incomplete"
    member = _GENERATED.get(str(item.get("type")))
    if member is not None:
        cut[member] = str(item.get(member) or "")[:chars]
        return cut
    for part in _text_parts(cut):
        text = part.get("text") or ""
        part["text"] = text[:chars]
        chars -= len(part["text"])
    return cut


def cut_to_budget(
    output: Sequence[dict[str, Any]], max_output_tokens: Any
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """``output`` as a response with ``max_output_tokens`` ends it, and its
    ``incomplete_details`` (``None``: it fits, or no budget was set; ``output`` unchanged)."""
    if isinstance(max_output_tokens, bool) or not isinstance(max_output_tokens, int):
        return list(output), None
    budget = max_output_tokens
    kept: list[dict[str, Any]] = []
    for item in output:
        cost = token_cost(item)
        if cost <= budget:
            kept.append(item)
            budget -= cost
            continue
        cut = _cut(item, budget)
        if cut is not None:
            kept.append(cut)
        return kept, {"reason": "max_output_tokens"}
    return kept, None


def end_output(
    output: Sequence[dict[str, Any]], max_output_tokens: Any
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The output a response ends with and its ``incomplete_details`` (``None``: completed):
    the items before a scripted ``STOP`` item (its ``reason``), cut to ``max_output_tokens``."""
    stop = next((i for i, item in enumerate(output) if item.get("type") == STOP), None)
    if stop is None:
        return cut_to_budget(output, max_output_tokens)
    kept, details = cut_to_budget(output[:stop], max_output_tokens)
    return kept, details or {"reason": str(output[stop].get("reason") or "content_filter")}
