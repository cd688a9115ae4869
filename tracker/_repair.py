"""Repair tool-call history so the service accepts it: a pure, linear-time transform.

Theory of operation. A history breaks the pairing rules (``tracker._rules``) in four ways: an
output with no call (an orphan), several outputs for one call, an output away from its call
(before it on Responses; not directly after the assistant ``tool_calls`` message on Chat
Completions), and a call with no output. ``repair_history`` pairs calls and outputs by
``call_id`` in two passes over the list, then writes the list once:

- orphans and every output but one per call are dropped (the one kept is the first that
  already sits where the service wants it, else the first one);
- a misplaced output moves to just after its call (Responses: after the run of calls the call
  stands in, where a loop puts outputs; Chat: into the block of tool messages right after the
  assistant message, after the results already there);
- a call with no output gets a placeholder output (policy ``"placeholder"``: a fixed text that
  names the call, so the same history always repairs to the same bytes and prompt caches stay
  warm) or is dropped with the reasoning item emitted just before it (policy ``"drop"``; the
  other calls of that round lose their provider ids, since the service would otherwise ask
  for the reasoning item; on Chat the call leaves its message's ``tool_calls``, and the
  message goes if nothing is left).

Every other item stays, in order. A valid history comes back unchanged (same objects, no
actions), so the repair is idempotent. Untouched items are returned as the very objects given
(dicts or ``openai`` SDK models); items that change are returned as new plain dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from ._errors import UsageError
from ._items import CALL_TO_OUTPUT, ItemInfo, field, read_item, to_plain
from ._repair_actions import (
    DROP,
    PLACEHOLDER,
    POLICIES,
    Api,
    RepairAction,
    RepairPolicy,
    by_index,
    placeholder_text,
)
from ._repair_chat import repair_chat

__all__ = [
    "DROP",
    "PLACEHOLDER",
    "POLICIES",
    "Api",
    "RepairAction",
    "RepairPolicy",
    "placeholder_text",
    "repair_history",
    "repair_responses",
]

# Call types whose output is a plain string, so a placeholder can stand in for a lost result.
_PLACEHOLDER_TYPES: Final = frozenset({"function_call", "custom_tool_call"})


def check_args(api: str, policy: str) -> None:
    if api not in ("responses", "chat"):
        raise UsageError(f"api must be 'responses' or 'chat', not {api!r}.")
    if policy not in POLICIES:
        raise UsageError(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}.")


def repair_history(
    items: Iterable[Any],
    *,
    api: Api = "responses",
    policy: RepairPolicy = PLACEHOLDER,
) -> tuple[list[Any], tuple[RepairAction, ...]]:
    """Return ``(repaired, actions)``: ``items`` made valid for tool-call pairing, and what changed.

    ``api="responses"``: ``items`` is a Responses context (input items); ``api="chat"``: a
    Chat Completions ``messages`` list. ``policy`` says what to do with a call that has no
    output: ``"placeholder"`` adds a flagged, deterministic output; ``"drop"`` removes the call
    (and the reasoning item just before it). ``actions`` are in input order; each ``index`` is a
    position in ``items``. Pure: ``items`` is not modified. Raises ``ItemError`` for an item
    that cannot be read and ``UsageError`` for an unknown ``api`` or ``policy``.
    """
    check_args(api, policy)
    seq = list(items)
    if api == "chat":
        return repair_chat(seq, policy)
    placed, actions = repair_responses(seq, policy)
    return [item for _, item in placed], actions


def repair_responses(
    items: Sequence[Any], policy: RepairPolicy, *, held: int = 0
) -> tuple[list[tuple[int | None, Any]], tuple[RepairAction, ...]]:
    """Repair a Responses context; return ``(origin, item)`` pairs and the actions.

    ``origin`` is the item's index in ``items`` (``None`` for a placeholder). The first
    ``held`` items are ones the server already holds: they are never dropped or moved, and
    their unanswered calls get placeholders whatever the policy, since they cannot be unsent.
    """
    infos = [read_item(item, i) for i, item in enumerate(items)]
    actions: list[RepairAction] = []
    dropped = [False] * len(items)

    call_at: dict[str, int] = {}
    for i, info in enumerate(infos):
        if info.is_call and info.call_id is not None:
            if info.call_id in call_at and i >= held:
                dropped[i] = True
                actions.append(_act("drop_duplicate_call", i, info, "a second call with this id"))
            else:
                call_at.setdefault(info.call_id, i)

    # The output each call keeps: the first one after the call, else the first one at all.
    keep: dict[str, int] = {}
    for i, info in enumerate(infos):
        cid = info.call_id
        if not info.is_output or info.is_call or cid is None or cid not in call_at:
            continue
        current = keep.get(cid)
        if current is None or (current < call_at[cid] < i):
            keep[cid] = i
    for i, info in enumerate(infos):
        cid = info.call_id
        if not info.is_output or info.is_call or cid is None or i < held or keep.get(cid) == i:
            continue
        dropped[i] = True
        if cid in call_at:
            actions.append(_act("drop_duplicate_output", i, info, "the call keeps one output"))
        else:
            actions.append(_act("drop_orphan_output", i, info, "no call with this call_id"))

    run_end = _run_ends(infos)
    lost_reasoning: list[int] = []
    after: dict[int, list[tuple[int | None, Any]]] = {}
    for cid, i in call_at.items():  # insertion order is list order: deterministic
        out_at = keep.get(cid)
        if out_at is not None and out_at > i:
            continue
        if out_at is not None:
            dropped[out_at] = True
            after.setdefault(run_end[i], []).append((out_at, items[out_at]))
            actions.append(
                _act("move_output", out_at, infos[out_at], f"moved after its call [{i}]")
            )
            continue
        if field(items[i], "async") is True:
            continue  # the service lets async calls wait for a later request
        info = infos[i]
        if info.type in _PLACEHOLDER_TYPES and (policy == PLACEHOLDER or i < held):
            after.setdefault(run_end[i], []).append((None, _placeholder(items[i], info)))
            actions.append(_act("add_placeholder", i, info, "the call had no output"))
        elif i < held:
            actions.append(_act("unanswered_held_call", i, info, "no placeholder form: answer it"))
        else:
            dropped[i] = True
            why = "the call had no output" if policy == DROP else "no placeholder form"
            actions.append(_act("drop_call", i, info, why))
            if i > held and infos[i - 1].type == "reasoning" and not dropped[i - 1]:
                dropped[i - 1] = True
                actions.append(_act("drop_reasoning", i - 1, infos[i - 1], f"emitted with [{i}]"))
                lost_reasoning.append(i - 1)

    # The service ties every call emitted after a reasoning item to it by their ids: calls of a
    # round whose reasoning went must lose their ids, or they are rejected as incomplete.
    # The round runs on through items this repair drops and through outputs (an orphan or a
    # misplaced output may sit between two calls of one round): stripping too many ids is
    # harmless, too few is an error.
    stripped: dict[int, dict[str, Any]] = {}
    for r in lost_reasoning:
        j = r + 2
        while j < len(items) and (infos[j].is_call or infos[j].is_output or dropped[j]):
            if (
                infos[j].is_call
                and not dropped[j]
                and infos[j].id is not None
                and j not in stripped
            ):
                plain = to_plain(items[j], j)
                stripped[j] = {k: v for k, v in plain.items() if k != "id"}
                actions.append(_act("strip_id", j, infos[j], f"its reasoning [{r}] was dropped"))
            j += 1

    placed: list[tuple[int | None, Any]] = []
    for i, item in enumerate(items):
        if not dropped[i]:
            placed.append((i, stripped.get(i, item)))
        placed.extend(after.get(i, ()))
    actions.sort(key=by_index)
    return placed, tuple(actions)


def _run_ends(infos: Sequence[ItemInfo]) -> list[int]:
    """For each index, the last index of the run of consecutive calls that starts there."""
    ends = list(range(len(infos)))
    for i in range(len(infos) - 2, -1, -1):
        if infos[i].is_call and infos[i + 1].is_call:
            ends[i] = ends[i + 1]
    return ends


def _act(kind: str, index: int, info: ItemInfo, detail: str) -> RepairAction:
    return RepairAction(
        kind=kind, index=index, call_id=info.call_id, item_id=info.id, detail=detail
    )


def _placeholder(call: Any, info: ItemInfo) -> dict[str, Any]:
    assert info.call_id is not None  # only calls with a call_id are paired
    name = field(call, "name")
    return {
        "type": CALL_TO_OUTPUT[info.type],
        "call_id": info.call_id,
        "output": placeholder_text(info.call_id, name if isinstance(name, str) else None),
    }
