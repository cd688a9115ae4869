"""The per-request check: would the service accept this delta on top of what it holds?

``Tracker.prepare`` calls ``check_delta`` on every delta it builds. The server's side is
summarised by call ids (pending, known, answered); the delta is checked with the same rules
(``tracker._rules``) the service applies to the whole context, and optionally repaired as
``repair_history`` would.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from ._errors import HistoryError, UsageError
from ._items import CALL_TO_OUTPUT, OUTPUT_TO_CALL, PAIRING_FIELD, read_item
from ._repair import PLACEHOLDER_TYPES, check_policy, repair_responses
from ._repair_actions import PLACEHOLDER, RepairAction, RepairPolicy
from ._rules import Violation, check_context

__all__ = ["DeltaCheck", "check_delta"]

#: What ``check_delta`` does with a delta the service would reject.
DeltaCheck = Literal["raise", "repair", "off"]


def check_delta(
    delta: Iterable[Any],
    *,
    pending_call_ids: Iterable[str] | Mapping[str, str] = (),
    known_call_ids: Container[str] | None = None,
    answered_call_ids: Container[str] = frozenset(),
    mode: DeltaCheck = "raise",
    policy: RepairPolicy = PLACEHOLDER,
) -> tuple[list[Any], tuple[RepairAction, ...]]:
    """Check (``mode="raise"``) or repair (``"repair"``) a Responses delta before it is sent.

    The server's side is summarised by call ids: ``pending_call_ids`` are calls it holds with
    no output (a mapping gives each call's item type; empty or absent: ``function_call``, or
    ``mcp_approval_request`` for an ``mcpr_`` key);
    ``known_call_ids`` every call it holds (``None``: not known, so an output for a call
    outside the delta is trusted); ``answered_call_ids`` the calls it holds an output for.
    The delta is checked as the service checks the whole context, with the same rules
    (``tracker._rules``): a pending call the delta leaves unanswered is ``P1``, an output for
    a call neither side holds ``P2``. Cost is linear in the delta plus the pending calls.

    Returns ``(items, actions)``: ``mode="off"`` and a valid delta give the delta unchanged.
    ``"repair"`` repairs as ``repair_history`` does, except that a pending call cannot be
    unsent, so it is always answered with a placeholder (at the start of the delta); action
    indexes are delta positions (``None``: a call the server holds). Raises ``HistoryError``
    (with ``.violations``, indexes likewise) when the delta is invalid under ``"raise"``, or
    still invalid after ``"repair"``; ``UsageError`` for an unknown ``mode`` or ``policy``.
    """
    if mode not in ("raise", "repair", "off"):
        raise UsageError(f"mode must be 'raise', 'repair' or 'off', not {mode!r}.")
    check_policy(policy)
    items = list(delta)
    if mode == "off":
        return items, ()
    held = _held_context(items, pending_call_ids, known_call_ids, answered_call_ids)
    actions: tuple[RepairAction, ...] = ()
    if mode == "repair":
        items, actions = _repair_delta(held, items, policy)
    violations = [
        attrs.evolve(v, index=_delta_index(v.index, len(held)))
        for v in check_context([*held, *items])
    ]
    if violations:
        message = _delta_message(violations[0], mode, _held_types(held))
        raise HistoryError(message, violations=violations)
    return items, actions


def _held_types(held: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The type of each held stand-in call, by its pairing key."""
    return {
        str(item.get(PAIRING_FIELD.get(item["type"], "call_id"))): item["type"]
        for item in held
        if item["type"] in CALL_TO_OUTPUT
    }


def _repair_delta(
    held: list[dict[str, Any]], items: list[Any], policy: RepairPolicy
) -> tuple[list[Any], tuple[RepairAction, ...]]:
    """Repair the held stand-ins and the delta as one context; keep the delta's part."""
    n = len(held)
    placed, actions = repair_responses([*held, *items], policy, held=n)
    kept = [item for origin, item in placed if origin is None or origin >= n]
    return kept, tuple(attrs.evolve(a, index=_delta_index(a.index, n)) for a in actions)


def _delta_index(index: int | None, held: int) -> int | None:
    """A context index as a delta index; ``None`` for a held stand-in."""
    return None if index is None or index < held else index - held


def _held_context(
    items: Sequence[Any],
    pending: Iterable[str] | Mapping[str, str],
    known: Container[str] | None,
    answered: Container[str],
) -> list[dict[str, Any]]:
    """Stand-ins for the server-held calls (and outputs) the delta can interact with.

    First the pending calls the delta does not make itself, then, for each delta output whose
    call is neither pending nor in the delta, a stand-in call if the server holds it (and its
    held output, if the server has one).
    """
    infos = [read_item(item, i) for i, item in enumerate(items)]
    in_delta = {info.call_id for info in infos if info.is_call and info.call_id}
    given: Mapping[str, str] = pending if isinstance(pending, Mapping) else {}
    types = {c: given.get(c) or _held_type(c) for c in pending}
    held = [_stand_in(call_type, cid) for cid, call_type in types.items() if cid not in in_delta]
    seen = set(types) | in_delta
    for info in infos:
        cid = info.call_id
        if cid is None or not info.is_output or info.is_call or cid in seen:
            continue
        if known is None or cid in known:
            seen.add(cid)
            held.append(_stand_in(OUTPUT_TO_CALL.get(info.type, "function_call"), cid))
            if cid in answered:
                held.append({"type": info.type, "call_id": cid, "output": ""})
    return held


def _held_type(call_id: str) -> str:
    """The type of a held call known only by its key: approval requests are named ``mcpr_``."""
    return "mcp_approval_request" if call_id.startswith("mcpr_") else "function_call"


def _stand_in(call_type: str, call_id: str) -> dict[str, Any]:
    key = PAIRING_FIELD.get(call_type, "call_id")  # an approval request is named by its id
    return {"type": call_type, key: call_id, "name": "", "arguments": "{}"}


def _delta_message(first: Violation, mode: str, held_types: Mapping[str, str]) -> str:
    where = "a call the server holds" if first.index is None else f"input[{first.index}]"
    held_type = held_types.get(first.call_id or "") if first.index is None else None
    if held_type is not None and held_type not in PLACEHOLDER_TYPES:
        # no placeholder answers it (repair never invents an approval or a shell result)
        fix = f"send its {CALL_TO_OUTPUT[held_type]} in this request"
    elif mode == "repair":
        fix = "answer every pending call and send outputs only for calls the server holds"
    else:
        fix = "fix the items, or let the tracker repair them (check='repair')"
    return f"The service would reject this request at {where}: {first.message} To fix: {fix}."
