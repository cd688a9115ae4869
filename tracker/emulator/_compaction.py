"""Compaction in the emulator: when a context is compacted, what a compaction item holds, and
the checks of the requests that ask for it. Sans-IO; the caller holds ``State.lock``.

Three ways in:

- **server-side**: ``context_management=[{"type": "compaction", "compact_threshold": N}]`` on
  ``POST /v1/responses``. When the rendered window holds more than ``N`` tokens, the output
  starts with a ``compaction`` item and the model continues from the compacted context ("the
  server triggers a compaction pass, emits a compaction output item in the same stream, and
  prunes context before continuing inference" [DOC compaction guide]);
- **``compaction_trigger``** as the final input item: the context is compacted whatever its
  size, and the output is that one ``compaction`` item (no model turn) [INF];
- **``POST /v1/responses/compact``** (``_compact.py``): the window's user messages followed by
  one ``compaction`` item, stored nowhere in the chain.

Token count (a documented approximation, not a tokenizer): the *window* is the context from its
latest ``compaction`` item on (``tracker._rules.window_start``); its tokens are
``(len(instructions) + sum(len(compact JSON of each item))) // 4``, four characters to a token.
A compaction item's ``encrypted_content`` has a fixed short length, so a compacted window is small.

When: at the start of a response, after the request's input was appended and checked. Pairing is
checked first, so no call is pending then except ``async: true`` calls; an unanswered async call
defers automatic compaction to a later turn (the service compacts between turns; it is not
documented what it does with a pending call, so the emulator never summarises one away [INF]).

A compaction item is ``{"type": "compaction", "id": "cmp_...", "encrypted_content": ...}``
(no ``created_by``: the field is optional and no public sample shows its value). Its content is
sealed with the emulator's key like its reasoning items' (``IdGen.seal``), so a replayed item
verifies until ``Emulator.rotate_keys()``; a stale or foreign one is answered with the real 400
(``invalid_encrypted_content``). ``State.compaction_memory`` keeps what it summarises for the
scripted model: the latest user message and what followed it, so a tool loop continues the same
task after a compaction.

The rules, with their source and how sure they are ([DOC] OpenAI docs or SDK 3.57 types, [OBS]
seen in public issues, [3P] a third party's claim, [INF] inferred; switches in ``RuleOptions``):

============================================== ============================== ================
rule                                           answer                         source
============================================== ============================== ================
window over ``compact_threshold``: compact     ``compaction`` item first      [DOC] guide
token count: 4 characters of JSON a token      (emulator's approximation)     [INF]
compact at turn start; pending async defers    (no compaction that turn)      [INF]
``compaction_trigger`` not the final item      400 ``invalid_value``          [DOC]; text [INF]
``compaction_trigger`` final: compact now      output: the compaction item    [DOC]; [INF]
stale or foreign ``cmp_``/``rs_`` content      400 ``invalid_encrypted_...``  [OBS] (1)
``created_by`` on an input compaction item     400 ``unknown_parameter``      [INF], switch
``compact_threshold`` below 1000               400 ``integer_below_min_...``  [3P], switch
``context_management`` type not compaction     400 ``invalid_value``          [DOC]; text [INF]
``/compact``: user messages + one compaction   ``response.compaction``        [DOC] SDK
``/compact`` id as ``previous_response_id``    400 S1 (not found)             [3P], switch
``/compact`` with a pending call               400 P1                         [INF]
output whose call lies before the boundary     400 P2                         [DOC]+[INF], switch
``response.compaction.compacting`` first       (stream event order)           [DOC]; order [INF]
============================================== ============================== ================

(1) codex#35334 (``cmp_``), unify-chat-provider#178 (``rs_``): ``The encrypted content for
item <id> could not be verified. Reason: Encrypted content could not be decrypted or parsed.``
(``unverified_message``); 2025 reports (codex#8119) showed ``The encrypted content gAAA...xx
could not be verified.``
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from .._rules import RuleOptions, Violation
from ._context import Context, ScriptContext
from ._schema import bad_request, invalid_type, missing, unknown
from ._state import State

__all__ = [
    "MIN_COMPACT_THRESHOLD",
    "Compaction",
    "check_compaction_request",
    "count_tokens",
    "new_compaction",
    "plan_compaction",
    "script_view",
    "unverified_message",
    "verify_compaction",
]

#: The smallest ``compact_threshold`` the service accepts [3P, litellm PR #21058].
MIN_COMPACT_THRESHOLD: Final = 1000
#: Characters of compact JSON counted as one token.
CHARS_PER_TOKEN: Final = 4


def count_tokens(items: Sequence[Mapping[str, Any]], instructions: Any = None) -> int:
    """The emulator's token count of a window: about four characters of JSON per token."""
    chars = len(instructions) if isinstance(instructions, str) else 0
    for item in items:
        chars += len(json.dumps(item, separators=(",", ":")))
    return chars // CHARS_PER_TOKEN


def _check_entry(entry: Any, at: str, options: RuleOptions) -> Violation | None:
    if not isinstance(entry, Mapping):
        return invalid_type(at, "an object", entry)
    for key in entry:
        if key not in ("type", "compact_threshold"):
            return unknown(f"{at}.{key}")
    if entry.get("type") is None:
        return missing(f"{at}.type")
    if entry["type"] != "compaction":
        return bad_request(
            f"Invalid value: '{entry['type']}'. Supported values are: 'compaction'.",
            f"{at}.type",
            "invalid_value",
        )
    threshold = entry.get("compact_threshold")
    if threshold is None:
        return None
    if not isinstance(threshold, int) or isinstance(threshold, bool):
        return invalid_type(f"{at}.compact_threshold", "an integer", threshold)
    if options.enforce_min_compact_threshold and threshold < MIN_COMPACT_THRESHOLD:
        # The service's wording for integer minimums elsewhere [INF for this field].
        return bad_request(
            f"Invalid '{at}.compact_threshold': integer below minimum value. Expected a value "
            f">= {MIN_COMPACT_THRESHOLD}, but got {threshold} instead.",
            f"{at}.compact_threshold",
            "integer_below_min_value",
        )
    return None


def _check_input(items: Any, options: RuleOptions) -> Violation | None:
    if not isinstance(items, list):
        return None
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            continue
        if item.get("type") == "compaction_trigger" and i != len(items) - 1:
            # "Compacts the current context. Must be the final input item." [DOC]; the wording
            # of the 400 is inferred [INF].
            return bad_request(
                f"Invalid 'input[{i}]': an item of type 'compaction_trigger' must be the final "
                "input item.",
                f"input[{i}]",
                "invalid_value",
            )
        stamped = item.get("type") == "compaction" and item.get("created_by") is not None
        if stamped and options.reject_compaction_created_by:
            return unknown(f"input[{i}].created_by")
    return None


def check_compaction_request(body: Mapping[str, Any], options: RuleOptions) -> Violation | None:
    """``context_management`` and the compaction items of a request (after ``check_request``)."""
    entries = body.get("context_management")
    if entries is not None:
        if not isinstance(entries, list):
            return invalid_type("context_management", "an array", entries)
        for i, entry in enumerate(entries):
            if found := _check_entry(entry, f"context_management[{i}]", options):
                return found
    return _check_input(body.get("input"), options)


def compact_threshold(body: Mapping[str, Any]) -> int | None:
    """The smallest ``compact_threshold`` the request sets (``None``: no automatic compaction)."""
    found: list[int] = []
    for entry in body.get("context_management") or []:
        threshold = entry.get("compact_threshold")
        if entry.get("type") == "compaction" and isinstance(threshold, int):
            found.append(threshold)
    return min(found) if found else None


def _sealed_id(item: Mapping[str, Any]) -> str | None:
    sealed = item.get("encrypted_content")
    if isinstance(sealed, str) and sealed.startswith("gAAAAA"):
        return sealed[6:].split(".", 1)[0]
    item_id = item.get("id")
    return item_id if isinstance(item_id, str) else None


def verify_compaction(state: State, item: Mapping[str, Any]) -> Violation | None:
    """``R1`` for a compaction input item whose ``encrypted_content`` this key did not seal."""
    sealed_id = state.ids.unseal(item.get("encrypted_content"))
    item_id = item.get("id")
    if sealed_id is not None and (item_id is None or item_id == sealed_id):
        return None
    shown = item_id if isinstance(item_id, str) else _sealed_id(item) or "cmp"
    return Violation(
        "R1",
        400,
        unverified_message(shown, item.get("encrypted_content")),
        None,
        "invalid_encrypted_content",
        None,
        item_id=item_id if isinstance(item_id, str) else None,
    )


def unverified_message(item_id: object, sealed: Any) -> str:
    """The 400 ``invalid_encrypted_content`` text for a ``cmp_``/``rs_`` item: the 2026 form
    names the item (``for item rs_...`` [OBS unify-chat-provider#178; codex#35334 for
    ``cmp_``]); an item without an id is shown by its content's ends [OBS EchoBird#255]."""
    named = isinstance(item_id, str) and item_id
    shown = f"for item {item_id}" if named else f"{str(sealed)[:4]}...{str(sealed)[-2:]}"
    return (
        f"The encrypted content {shown} could not be verified. Reason: Encrypted content "
        "could not be decrypted or parsed."
    )


def script_view(state: State, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What the scripted model reads: ``items`` with each compaction item replaced by what it
    summarises, and no ``compaction_trigger`` (copies)."""
    out: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type")
        if kind == "compaction":
            out.extend(copy.deepcopy(state.compaction_memory.get(_sealed_id(item) or "", [])))
        elif kind != "compaction_trigger":
            out.append(copy.deepcopy(dict(item)))
    return out


def new_compaction(state: State, window: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A sealed compaction item that summarises ``window``; remembers it for the script."""
    view = script_view(state, window)
    last_user = max(
        (
            i
            for i, item in enumerate(view)
            if item.get("type") == "message" and item.get("role") == "user"
        ),
        default=0,
    )
    item_id = state.ids.item_id("compaction")
    state.compaction_memory[item_id] = view[last_user:]
    return {"id": item_id, "type": "compaction", "encrypted_content": state.ids.seal(item_id)}


@attrs.frozen
class Compaction:
    """What a response does about compaction.

    ``output``: the items the output starts with (``[]`` or one compaction item);
    ``script_context``: what the scripted model reads, or ``None`` when there is no model turn
    (a ``compaction_trigger``).
    """

    output: list[dict[str, Any]]
    script_context: Sequence[dict[str, Any]] | None


def plan_compaction(
    state: State, body: Mapping[str, Any], context: Context, options: RuleOptions
) -> Compaction:
    """Decide whether this response compacts its (checked) ``context``; see the module doc.

    O(the request's input) unless it compacts (then O(window)).
    """
    boundary = options.compaction_boundary
    held = context.index.items[context.length - 1] if context.length else None
    last = context.new[-1] if context.new else held  # the window's last item
    if last is not None and last.get("type") == "compaction_trigger":
        return Compaction([new_compaction(state, context.window(boundary))], None)
    threshold = compact_threshold(body)
    instructions = body.get("instructions")
    _, chars = context.window_chars(boundary)
    tokens = (chars + (len(instructions) if isinstance(instructions, str) else 0)) // 4
    if threshold is not None and tokens > threshold and not context.pending(boundary):
        item = new_compaction(state, context.window(boundary))
        return Compaction([item], script_view(state, [item]))
    return Compaction([], _script_context(state, context, boundary))


def _script_context(state: State, context: Context, boundary: bool) -> Sequence[dict[str, Any]]:
    """``script_view`` of the window, read lazily from the held items when it can be."""
    start = context.window_start(boundary)
    if start >= context.length:
        return script_view(state, context.new[start - context.length :])
    first = context.index.items[start]
    skip = 1 if first.get("type") in ("compaction", "compaction_trigger") else 0
    held = context.held_view(start + skip)
    if held is None:
        return script_view(state, context.window(boundary))
    head = script_view(state, [first]) if skip else []
    return ScriptContext(head, held, script_view(state, context.new))
