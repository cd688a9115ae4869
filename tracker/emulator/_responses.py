"""``POST /v1/responses``: validate, resolve the context, run the script, store, answer.

The request is handled in two short critical sections around the (optional) model delay, so a
conversation is *busy* while its turn runs and a second turn on it gets ``S5``, as on the
service. A request that fails validation changes nothing.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .._items import OUTPUT_TO_CALL, PAIRING_FIELD
from .._rules import (
    RuleOptions,
    Violation,
    check_input_references,
)
from ._compaction import (
    check_compaction_request,
    plan_compaction,
    unverified_message,
    verify_compaction,
)
from ._context import Context, ContextIndex
from ._incomplete import STOP, end_output
from ._reply import Reply, error_reply
from ._schema import bad_request, check_request, not_found
from ._script import Script
from ._state import State, StoredConversation, StoredResponse, normalize_item
from ._stream import response_events
from ._withheld import withheld_reasoning

if TYPE_CHECKING:
    from ._background import Background

__all__ = ["Turn", "create_response", "finish", "response_object", "think"]


def _state_violation(
    state: State, body: Mapping[str, Any], options: RuleOptions
) -> tuple[Violation | None, StoredConversation | None]:
    previous = body.get("previous_response_id")
    conversation = body.get("conversation")
    conv_id = conversation.get("id") if isinstance(conversation, Mapping) else conversation
    if previous is not None and conv_id is not None:
        return bad_request(
            "Mutually exclusive parameters: ''. Ensure you are only providing one of: "
            "'pre..._id' or 'conversation'.",
            None,
            "mutually_exclusive_parameters",
        ), None
    conv = None
    if conv_id is not None:
        conv = state.conversations.get(conv_id)
        if conv is None:
            return not_found(f"Conversation with id '{conv_id}' not found."), None
    if previous is not None:
        stored = state.responses.get(previous)
        chainable = stored is not None and stored.store
        if options.chain_from_compacted_response and previous in state.compacted:
            chainable = True  # a chain rooted at a compacted window
        if not chainable:
            return bad_request(
                f"Previous response with id '{previous}' not found.",
                "previous_response_id",
                "previous_response_not_found",
            ), None
    items = body["input"]
    if items in ("", []) and previous is None and conv is None and not body.get("prompt"):
        return bad_request(
            "One of \"input\" or \"previous_response_id\" or 'prompt' or 'conversation' must "
            "be provided.",
            None,
            "missing_required_parameter",
        ), None
    return None, conv


def _resolve(
    state: State, items: list[dict[str, Any]], store: bool, options: RuleOptions
) -> list[dict[str, Any]] | Violation:
    """Replace ``item_reference``s with stored items; check reasoning and hydrated ids (R0/R1)."""
    out: list[dict[str, Any]] = []
    for item in items:
        item_type = item.get("type")
        item_id = item.get("id")
        sealed = item.get("encrypted_content")
        if item_type == "compaction" and (found := verify_compaction(state, item)):
            return found
        if item_type == "reasoning" and isinstance(sealed, str):
            rs_id = sealed[6:].split(".", 1)[0]
            if not sealed.startswith("gAAAAA") or not state.ids.verify(rs_id, sealed):
                return bad_request(
                    unverified_message(item_id, sealed), None, "invalid_encrypted_content"
                )
        must_exist = item_type == "item_reference" or (
            item_type == "reasoning" and sealed is None and not item.get("content")
        )
        if not store and options.lookup_complete_items_store_false and item_id is not None:
            must_exist = True
        if must_exist and isinstance(item_id, str) and item_id not in state.items:
            suffix = (
                " Items are not persisted for Zero Data Retention organizations."
                if options.zdr
                else " Items are not persisted when `store` is set to false. Try again with "
                "`store` set to true, or remove this item from your input."
            )
            message = f"Item with id '{item_id}' not found." + ("" if store else suffix)
            return Violation("R0", 404, message, "input", None, None, item_id=item_id)
        if item_type == "item_reference":
            out.append(copy.deepcopy(state.items[str(item_id)]))
        else:
            out.append(item)
    return out


def _output_item(state: State, raw: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "message", "text": raw} if isinstance(raw, str) else dict(raw)
    item_type = item.setdefault("type", "message")
    if item_type == STOP:  # not an item: the script ends the response incomplete (``finish``)
        return item
    if item_type == "message":
        text = item.pop("text", "")
        item.setdefault("role", "assistant")
        item.setdefault(
            "content", [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
        )
    elif item_type == "function_call":
        item.setdefault("call_id", state.ids.call_id())
        item.setdefault("arguments", "{}")
    elif item_type == "reasoning":
        item.setdefault("summary", [])
    item.setdefault("id", state.ids.item_id(item_type))
    if item_type == "reasoning":
        item.setdefault("encrypted_content", state.ids.seal(item["id"]))
    elif item_type != "mcp_approval_request":  # the service's approval request has no status
        item.setdefault("status", "completed")
    return item


def _with_id(state: State, item: dict[str, Any]) -> dict[str, Any]:
    if item.get("id") is None:
        item = {"id": state.ids.item_id(item.get("type", "message")), **item}
    if item.get("type") != "reasoning":
        item.setdefault("status", "completed")
    return item


def _usage(context: Context, output: Sequence[Any]) -> dict[str, Any]:
    # Deterministic stand-in for token counts: about four characters of the rendered window's
    # JSON (``json.dumps`` of the list) per token.
    count, chars = context.window_chars(compact=False)
    input_tokens = (chars + 2 * max(0, count - 1) + 2) // 4
    output_tokens = len(json.dumps(list(output))) // 4
    reasoning = sum(1 for item in output if item.get("type") == "reasoning") * 16
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input_tokens + output_tokens,
    }


def response_object(
    response_id: str,
    body: Mapping[str, Any],
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
    *,
    status: str = "completed",
    created_at: int,
    incomplete_details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The Response object: request fields echoed (not ``include``), output, usage.

    ``incomplete_details`` (``_incomplete``) makes a finished response ``incomplete``.
    """
    if incomplete_details is not None and status == "completed":
        status = "incomplete"
    conversation = body.get("conversation")
    conv_id = conversation.get("id") if isinstance(conversation, Mapping) else conversation
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": bool(body.get("background", False)),
        "error": None,
        "incomplete_details": dict(incomplete_details) if incomplete_details else None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"),
        "model": body["model"],
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "conversation": {"id": conv_id} if conv_id is not None else None,
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", True) is not False,
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "usage": usage,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
        "completed_at": created_at if status == "completed" else None,
    }


@attrs.frozen
class Turn:
    """A validated request, between its two critical sections."""

    body: Mapping[str, Any]
    store: bool
    previous: str | None
    conv: StoredConversation | None
    resolved: list[dict[str, Any]]
    context: Context


def _begin(state: State, body: Mapping[str, Any], options: RuleOptions) -> Turn | Violation:
    """Check the request against the state and resolve its context (hold ``state.lock``)."""
    found, conv = _state_violation(state, body, options)
    if found is not None:
        return found
    store = body.get("store", True) is not False and not options.zdr
    raw = body["input"]
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else raw
    resolved = _resolve(state, [normalize_item(item) for item in items], store, options)
    if isinstance(resolved, Violation):
        return resolved
    previous = body.get("previous_response_id")
    if previous:
        index = state.chain_index(previous, options)
    elif conv is not None:
        index = state.conversation_index(conv, options)
    else:
        index = ContextIndex(options)
    context = Context.of(index, resolved)
    violations = context.check(options, state.provenance())
    if options.reject_referenced_client_calls:
        violations += check_input_references(items, state.items)
    if violations:
        return violations[0]
    if conv is not None and conv.busy:
        return bad_request(
            "Another process is currently operating on this conversation. Please retry in a "
            "few seconds.",
            "conversation",
            "conversation_locked",
        )
    return Turn(body, store, previous, conv, resolved, context)


def think(state: State, turn: Turn, script: Script, options: RuleOptions) -> list[dict[str, Any]]:
    """Compact if due, then run the script on what it may see (``_compaction``); the
    conversation stays busy until ``_finish`` (hold ``state.lock``)."""
    if turn.conv is not None:
        turn.conv.busy = True
    try:
        plan = plan_compaction(state, turn.body, turn.context, options)
        if plan.script_context is None:
            return plan.output
        return plan.output + [
            _output_item(state, raw) for raw in script(plan.script_context, turn.body)
        ]
    except BaseException:
        if turn.conv is not None:
            turn.conv.busy = False
        raise


def finish(
    state: State,
    turn: Turn,
    output: list[dict[str, Any]],
    options: RuleOptions,
    created: int,
    *,
    response_id: str | None = None,
) -> dict[str, Any]:
    """Store the response and extend the conversation; the Response object (hold the lock).

    ``response_id``: the id a background response was given when it was queued.
    """
    response_id = response_id or state.ids.response_id()
    limit = turn.body.get("max_output_tokens")
    output, incomplete = end_output(output, limit)
    stored_input = [_with_id(state, item) for item in turn.resolved]
    state.remember_output(output)
    for item in turn.resolved:
        key = item.get(PAIRING_FIELD.get(item.get("type", ""), "call_id"))
        if item.get("type") in OUTPUT_TO_CALL and isinstance(key, str):
            state.delivered_outputs[key] += 1
    conv = turn.conv
    context = turn.context
    if turn.store:
        state.responses[response_id] = StoredResponse(
            id=response_id,
            body=dict(turn.body),
            input_items=stored_input,
            output=output,
            previous_response_id=turn.previous,
            conversation_id=conv.id if conv is not None else None,
            store=True,
            incomplete_details=incomplete,
        )
        state.index_items(stored_input + output)
        if conv is None:
            old = turn.previous or None
            state.advance_index(
                old, response_id, context.index, context.length, output, passed=stored_input
            )
    if conv is not None:
        conv.busy = False
        live = state.conversations.get(conv.id) is conv
        if live and (turn.store or options.conversation_store_false_persists):
            held = len(conv.items)
            conv.items.extend(stored_input + output)
            state.index_items(stored_input + output)
            if state.indexes.get(conv.id) is context.index:
                state.advance_index(
                    conv.id, conv.id, context.index, held, output, passed=stored_input
                )
    usage = _usage(context, output)  # the rendered window
    if incomplete == {"reason": "max_output_tokens"}:  # the whole budget was spent
        usage["output_tokens"] = limit
        usage["total_tokens"] = usage["input_tokens"] + limit
    body = {**turn.body, "store": False} if not turn.store else turn.body
    response = response_object(
        response_id,
        body,
        copy.deepcopy(output),
        usage,
        created_at=created,
        incomplete_details=incomplete,
    )
    # The latest user message matters only when it is in the input: read the input alone.
    withheld = withheld_reasoning(turn.body, turn.context.new, len(turn.context.new))
    if withheld:
        response["input_transformations"] = withheld  # the SDK's field, absent when empty
    return response


def create_response(
    state: State,
    body: Any,
    *,
    script: Script,
    options: RuleOptions,
    model_delay: float = 0.0,
    background: Background | None = None,
) -> Reply:
    """Handle one ``POST /v1/responses`` body (already parsed JSON).

    ``background`` takes ``background: true`` requests once validated (``_background``), and
    is told of streamed ones (which it may keep to stream again).
    """
    found = check_request(body, options) or check_compaction_request(body, options)
    if found is not None:
        return error_reply(found)
    with state.lock:
        turn = _begin(state, body, options)
        if isinstance(turn, Violation):
            return error_reply(turn)
        output = think(state, turn, script, options)
    if model_delay > 0:
        time.sleep(model_delay)
    created = int(time.time())
    if background is not None and body.get("background") is True:
        return background.queue(turn, output, created)
    with state.lock:
        response = finish(state, turn, output, options, created)
    if body.get("stream"):
        if background is not None:
            background.streamed(response)
        return Reply(events=response_events(response))
    return Reply(body=response)
