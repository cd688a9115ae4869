"""``POST /v1/responses/compact``: a standalone compaction of ``input`` and/or a chain.

The body takes ``model`` (required), ``input``, ``previous_response_id``, ``instructions`` and
the prompt-cache and tier fields of the SDK's ``ResponseCompactParams``; there is no
``conversation`` [DOC SDK 3.57]. The context (the chain, then the input) is resolved and checked
like a ``POST /v1/responses`` context (R0/R1, D1, A1-A3, P1/P2: a pending call is ``P1``).

The answer is the SDK's ``CompactedResponse``: ``object: "response.compaction"``, ``output``
"a list of all user messages, followed by a single compaction item" [DOC] (the user messages
of the window, from its latest compaction item on), ``usage`` (``_compaction.count_tokens``).
Nothing is added to the chain. Its id is a ``resp_`` id that cannot be a
``previous_response_id`` (``previous_response_not_found`` [3P pydantic-ai]) unless
``RuleOptions.chain_from_compacted_response``; the compacted window is kept for that switch.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import Any, Final

from .._rules import RuleOptions, Violation, check_context, window_start
from ._compaction import check_compaction_request, count_tokens, new_compaction
from ._reply import Reply, error_reply
from ._responses import _resolve, _with_id
from ._schema import bad_request, check_id, check_item, invalid_type, missing, unknown
from ._state import State, normalize_item

__all__ = ["COMPACT_KEYS", "compact_response"]

#: Body members of ``POST /v1/responses/compact`` (SDK 3.57 ``ResponseCompactParams``).
COMPACT_KEYS: Final = frozenset(
    [
        "image",
        "input",
        "instructions",
        "model",
        "previous_response_id",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "service_tier",
    ]
)


def _check_body(body: Any, options: RuleOptions) -> Violation | None:
    if not isinstance(body, Mapping):
        return invalid_type("body", "an object", body)
    if body.get("model") is None:
        return missing("model")
    for key in body:
        if key not in COMPACT_KEYS:
            return unknown(key)
    raw = body.get("input")
    if raw is not None and not isinstance(raw, (str, list)):
        return invalid_type("input", "one of a string or array of input items", raw)
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        if found := check_item(item, i, options):
            return found
    previous = body.get("previous_response_id")
    if previous is not None and (found := check_id(previous, "previous_response_id", "resp")):
        return found
    if raw in (None, "", []) and previous is None:
        return bad_request(  # the create endpoint's wording, shortened [INF]
            'One of "input" or "previous_response_id" must be provided.',
            None,
            "missing_required_parameter",
        )
    return check_compaction_request({"input": raw}, options)


def _prefix(state: State, previous: Any, options: RuleOptions) -> list[dict[str, Any]] | Violation:
    if previous is None:
        return []
    stored = state.responses.get(previous)
    chainable = stored is not None and stored.store
    if options.chain_from_compacted_response and previous in state.compacted:
        chainable = True
    if not chainable:
        return bad_request(
            f"Previous response with id '{previous}' not found.",
            "previous_response_id",
            "previous_response_not_found",
        )
    return state.chain(previous)


def compact_response(state: State, body: Any, options: RuleOptions) -> Reply:
    """Handle one ``POST /v1/responses/compact`` body (already parsed JSON)."""
    found = _check_body(body, options)
    if found is not None:
        return error_reply(found)
    raw = body.get("input")
    items = [{"role": "user", "content": raw}] if isinstance(raw, str) else list(raw or [])
    with state.lock:
        prefix = _prefix(state, body.get("previous_response_id"), options)
        if isinstance(prefix, Violation):
            return error_reply(prefix)
        resolved = _resolve(state, [normalize_item(item) for item in items], True, options)
        if isinstance(resolved, Violation):
            return error_reply(resolved)
        context = prefix + resolved
        violations = check_context(context, options=options, provenance=state.provenance())
        if violations:
            return error_reply(violations[0])
        window = context[window_start(context) :] if options.compaction_boundary else context
        window = [item for item in window if item.get("type") != "compaction_trigger"]
        users = [
            _with_id(state, copy.deepcopy(item))
            for item in window
            if item.get("type") == "message" and item.get("role") == "user"
        ]
        compaction = new_compaction(state, window)
        output = [*users, compaction]
        response_id = state.ids.response_id()
        state.compacted[response_id] = copy.deepcopy(output)
        state.index_items([compaction])
        input_tokens = count_tokens(window, body.get("instructions"))
        output_tokens = count_tokens(output)
    return Reply(
        body={
            "id": response_id,
            "object": "response.compaction",
            "created_at": int(time.time()),
            "output": output,
            "usage": {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + output_tokens,
            },
        }
    )
