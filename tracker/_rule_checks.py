"""The phases of ``tracker._rules.check_context``, each over read items: duplicate ids (``D1``),
reasoning adjacency (``A1``-``A3``), tool-call pairing (``P1``-``P3``, ``M1``), and the check of
outputs whose call is sent by reference (``P4``), with the ``Violation`` builders they share.
The rule codes are tabled in ``tracker._rules``'s docstring.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._client_calls import is_client_call
from ._items import CALL_TO_OUTPUT, OUTPUT_TO_CALL, ItemInfo, field, read_item
from ._rule_options import Provenance, RuleOptions, Violation

if TYPE_CHECKING:  # _rules builds on this module; the prefix type is only named here
    from ._rules import CheckedPrefix


def _words(item_type: str) -> str:
    return item_type.replace("_", " ")


def _input_violation(
    rule: str,
    message: str,
    index: int | None,
    item_id: str | None = None,
    call_id: str | None = None,
) -> Violation:
    """A Responses history violation: the service answers 400 with ``param: "input"``."""
    return Violation(
        rule=rule,
        status=400,
        message=message,
        param="input",
        code=None,
        index=index,
        item_id=item_id,
        call_id=call_id,
    )


def duplicate_violation(item_id: str, index: int | None) -> Violation:
    """``D1``: an id that occurs twice in the context."""
    return _input_violation(
        "D1",
        f"Duplicate item found with id {item_id}. "
        "Remove duplicate items from your input and try again.",
        index,
        item_id=item_id,
    )


def _check_duplicates(
    infos: Sequence[ItemInfo], offset: int, known: Container[str] = frozenset()
) -> list[Violation]:
    """``D1``; ``known``: the ids of a checked prefix the items follow."""
    seen: set[str] = set()
    out: list[Violation] = []
    for i, info in enumerate(infos):
        if info.id is None:
            continue
        if info.id in seen or info.id in known:
            out.append(duplicate_violation(info.id, i + offset))
        seen.add(info.id)
    return out


def _check_reasoning(
    infos: Sequence[ItemInfo],
    provenance: Provenance,
    offset: int,
    seen_before: Container[str] = frozenset(),
) -> list[Violation]:
    """``A1``-``A3``; ``seen_before``: the ids in the window of a checked prefix."""
    out: list[Violation] = []
    seen_ids: set[str] = set()
    for i, info in enumerate(infos):
        if info.type == "reasoning" and info.id is not None and info.id in provenance.following:
            want = provenance.following[info.id]
            nxt = infos[i + 1] if i + 1 < len(infos) else None
            if nxt is None or nxt.id != want:
                out.append(
                    _input_violation(
                        "A1",
                        f"Item '{info.id}' of type 'reasoning' was provided without its "
                        "required following item.",
                        i + offset,
                        item_id=info.id,
                    )
                )
        elif info.id is not None and info.id in provenance.reasoning_for:
            rs_id = provenance.reasoning_for[info.id]
            if rs_id not in seen_ids and rs_id not in seen_before:
                out.append(
                    _input_violation(
                        "A2" if info.type == "function_call" else "A3",
                        f"Item '{info.id}' of type '{info.type}' was provided without its "
                        f"required 'reasoning' item: '{rs_id}'.",
                        i + offset,
                        item_id=info.id,
                        call_id=info.call_id,
                    )
                )
        if info.id is not None:
            seen_ids.add(info.id)
    return out


def missing_output_violation(
    call_type: str, call_id: str, index: int | None, item_id: str | None = None
) -> Violation:
    """``P1``: a tool call with no output in the context."""
    return _input_violation(
        "P1",
        f"No tool output found for {_words(call_type)} {call_id}.",
        index,
        item_id=item_id,
        call_id=call_id,
    )


def _check_pairing(
    items: Sequence[Any],
    infos: Sequence[ItemInfo],
    options: RuleOptions,
    at: Sequence[int],
    prefix: CheckedPrefix | None = None,
) -> list[Violation]:
    """``P1``-``P3`` and ``M1``; ``at[i]`` is the context index of ``items[i]``."""
    found = [
        *_check_outputs(infos, options, at, prefix),
        *_check_calls(items, infos, options, at, prefix),
    ]
    found.sort(key=lambda v: v.index if v.index is not None else -1)
    return found


def _check_outputs(
    infos: Sequence[ItemInfo],
    options: RuleOptions,
    at: Sequence[int],
    prefix: CheckedPrefix | None = None,
) -> list[Violation]:
    """``P2`` for an output with no call (before it, when order is strict); ``P3`` if on."""
    calls: set[str] = set()  # the calls before the current item, or all of them
    if not options.strict_order:
        calls = {info.call_id for info in infos if info.is_call and info.call_id}
    answered: set[str] = set()
    held_calls: Container[str] = prefix.calls if prefix else frozenset()
    held_answered: Container[str] = prefix.answered if prefix else frozenset()
    found: list[Violation] = []
    for i, info in enumerate(infos):
        cid = info.call_id
        if cid is None:
            continue
        if info.is_call:
            calls.add(cid)
        elif info.is_output:
            if cid not in calls and cid not in held_calls:
                found.append(
                    _input_violation(
                        "P2",
                        f"No tool call found for {_words(info.type)} with call_id {cid}.",
                        at[i],
                        item_id=info.id,
                        call_id=cid,
                    )
                )
            elif (cid in answered or cid in held_answered) and options.reject_duplicate_outputs:
                found.append(
                    _input_violation(
                        "P3",
                        f"Duplicate {info.type} for call_id '{cid}'. Each "
                        f"{OUTPUT_TO_CALL.get(info.type, 'call')} must have exactly one "
                        f"matching {info.type}",
                        at[i],
                        item_id=info.id,
                        call_id=cid,
                    )
                )
            answered.add(cid)
    return found


def _check_calls(
    items: Sequence[Any],
    infos: Sequence[ItemInfo],
    options: RuleOptions,
    at: Sequence[int],
    prefix: CheckedPrefix | None = None,
) -> list[Violation]:
    """``P1`` for a call with no output after it (anywhere, when order is not strict)."""
    earlier = prefix.answered if prefix is not None and not options.strict_order else set()
    last_output_at: dict[str, int] = {}
    for i, info in enumerate(infos):
        if info.is_output and info.call_id is not None:
            last_output_at[info.call_id] = i
    found: list[Violation] = []
    approvals: list[tuple[int, str]] = []  # unanswered MCP approval requests: one message
    for i, info in enumerate(infos):
        if not info.is_call or info.call_id is None:
            continue
        if options.async_exempt and field(items[i], "async") is True:
            continue
        last_output = last_output_at.get(info.call_id)
        answered = last_output is not None and (not options.strict_order or last_output > i)
        if answered or info.call_id in earlier:
            continue
        if info.type == "mcp_approval_request":
            approvals.append((at[i], info.call_id))
        else:
            found.append(missing_output_violation(info.type, info.call_id, at[i], info.id))
    if approvals:
        found.append(missing_approval_violation(approvals))
    return found


def missing_approval_violation(requests: Sequence[tuple[int | None, str]]) -> Violation:
    """``M1``: MCP approval requests with no ``mcp_approval_response`` in the context.

    The text for one request is the service's (openai-agents-js#131 [OBS]); for several the
    ids are joined with ``", "`` in context order [INF: no public body lists two]. The
    violation stands at the first request.
    """
    index, first = requests[0]
    return _input_violation(
        "M1",
        "The following MCP approval requests do not have an approval: "
        + ", ".join(request_id for _, request_id in requests),
        index,
        item_id=first,
        call_id=first,
    )


def check_input_references(
    items: Sequence[Any], stored: Mapping[str, Any] | None = None
) -> list[Violation]:
    """``P4``: outputs whose client-executed ``function_call`` is in the same input by id.

    ``items`` is a request's ``input`` as sent (before ``item_reference`` resolution);
    ``stored`` maps item ids to the items the server holds, to read what a reference names.
    A call counts when it is an ``item_reference`` to a client-executed call or an inline one
    that carries its item id (``fc_...``); its output by ``call_id`` later in the same input is
    then refused with the ``P2`` text (``RuleOptions.reject_referenced_client_calls``, [3P] for
    ``function_call``, [INF] for the other client call types: ``_client_calls.is_client_call``).
    Provider-executed calls and MCP approval requests are not concerned.
    """
    by_ref: set[str] = set()
    found: list[Violation] = []
    for i, item in enumerate(items):
        item_type = field(item, "type")
        call = item
        if item_type == "item_reference":
            call = (stored or {}).get(field(item, "id"))
            item_type = field(call, "type") if call is not None else None
            ref = True
        else:
            ref = isinstance(field(item, "id"), str)
        if ref and item_type in CALL_TO_OUTPUT and is_client_call(call):
            call_id = field(call, "call_id")
            if isinstance(call_id, str):
                by_ref.add(call_id)
            continue
        info = read_item(item, i)
        if info.is_output and info.call_id in by_ref:
            found.append(
                _input_violation(
                    "P4",
                    f"No tool call found for {_words(info.type)} with call_id {info.call_id}.",
                    i,
                    item_id=info.id,
                    call_id=info.call_id,
                )
            )
    return found
