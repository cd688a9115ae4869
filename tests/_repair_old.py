"""The history repair and delta check as they were before the plan rewrite (issue #10).

Test-only: ``test_history_equivalence`` compares these with ``tracker`` on random histories.
Delete both once the rewrite is trusted.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping, Sequence
from typing import Any, Final, Literal

import attrs

from tracker._errors import HistoryError, UsageError
from tracker._items import CALL_TO_OUTPUT, OUTPUT_TO_CALL, ItemInfo, field, read_item, to_plain
from tracker._repair_actions import (
    DROP,
    PLACEHOLDER,
    POLICIES,
    Api,
    RepairAction,
    RepairPolicy,
    by_index,
    placeholder_text,
)
from tracker._rules import Violation, validate_history

DeltaCheck = Literal["raise", "repair", "off"]

# Call types whose output is a plain string, so a placeholder can stand in for a lost result.
_PLACEHOLDER_TYPES: Final = frozenset({"function_call", "custom_tool_call"})


def check_args(api: str, policy: str) -> None:
    if api not in ("responses", "chat"):
        raise UsageError(f"api must be 'responses' or 'chat', not {api!r}.")
    if policy not in POLICIES:
        raise UsageError(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}.")


def repair_history_old(
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


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _has_content(message: Any) -> bool:
    content = field(message, "content")
    return content is not None and content not in ("", [])


def repair_chat(
    messages: Sequence[Any], policy: RepairPolicy
) -> tuple[list[Any], tuple[RepairAction, ...]]:
    """Repair a Chat Completions ``messages`` list; see ``tracker.repair_history``."""
    roles = [field(m, "role") for m in messages]
    actions: list[RepairAction] = []

    # Pass 1: calls. calls[i][pos] is the id of tool_calls[pos] of message i, "" for a call
    # that repeats an id already owned (dropped), None for a call with no id (left alone).
    owner: dict[str, int] = {}
    calls: dict[int, list[str | None]] = {}
    for i, message in enumerate(messages):
        tool_calls = field(message, "tool_calls") if roles[i] == "assistant" else None
        if not isinstance(tool_calls, list | tuple):
            continue
        ids: list[str | None] = []
        for tool_call in tool_calls:
            call_id = _str_or_none(field(tool_call, "id"))
            if call_id is not None and call_id in owner:
                ids.append("")
                actions.append(
                    RepairAction("drop_duplicate_call", i, call_id, None, "id already used")
                )
            else:
                if call_id is not None:
                    owner[call_id] = i
                ids.append(call_id)
        calls[i] = ids

    # Where the run of tool messages that starts at each index ends (exclusive).
    run_stop = [len(messages)] * (len(messages) + 1)
    for i in range(len(messages) - 1, -1, -1):
        run_stop[i] = run_stop[i + 1] if roles[i] == "tool" else i

    def in_place(t: int, call_id: str) -> bool:
        at = owner[call_id]
        return at < t < run_stop[at + 1]

    # Pass 2: results. Each call keeps one: the first in place, else the first.
    keep: dict[str, int] = {}
    for t, role in enumerate(roles):
        call_id = _str_or_none(field(messages[t], "tool_call_id")) if role == "tool" else None
        if call_id is None or call_id not in owner:
            continue
        current = keep.get(call_id)
        if current is None or (not in_place(current, call_id) and in_place(t, call_id)):
            keep[call_id] = t
    staying: dict[int, list[int]] = {}
    moving: dict[int, list[int]] = {}
    for t, role in enumerate(roles):
        if role != "tool":
            continue
        call_id = _str_or_none(field(messages[t], "tool_call_id"))
        if call_id is None or call_id not in owner:
            actions.append(
                RepairAction("drop_orphan_output", t, call_id, None, "no call with this call_id")
            )
        elif keep[call_id] != t:
            actions.append(
                RepairAction("drop_duplicate_output", t, call_id, None, "the call keeps one output")
            )
        elif in_place(t, call_id):
            staying.setdefault(owner[call_id], []).append(t)
        else:
            moving.setdefault(owner[call_id], []).append(t)
            detail = f"moved after its call [{owner[call_id]}]"
            actions.append(RepairAction("move_output", t, call_id, None, detail))

    out: list[Any] = []
    for i, message in enumerate(messages):
        if roles[i] == "tool":
            continue  # results are written in their call's block
        if i not in calls:
            out.append(message)
            continue
        ids = calls[i]
        missing = [pos for pos, c in enumerate(ids) if c and c not in keep]
        remove = {pos for pos, c in enumerate(ids) if c == ""}
        if policy != PLACEHOLDER:
            remove.update(missing)
            actions.extend(
                RepairAction("drop_call", i, ids[pos], None, "the call had no output")
                for pos in missing
            )
        kept = _without_calls(message, remove, i, actions)
        if kept is None:
            continue
        out.append(kept)
        out.extend(messages[t] for t in staying.get(i, ()))
        out.extend(messages[t] for t in moving.get(i, ()))
        if policy == PLACEHOLDER:
            tool_calls = field(message, "tool_calls")
            for pos in missing:
                call_id = ids[pos]
                assert call_id  # missing holds only calls with an id
                name = field(field(tool_calls[pos], "function"), "name")
                text = placeholder_text(call_id, name if isinstance(name, str) else None)
                out.append({"role": "tool", "tool_call_id": call_id, "content": text})
                actions.append(
                    RepairAction("add_placeholder", i, call_id, None, "the call had no output")
                )
    actions.sort(key=by_index)
    return out, tuple(actions)


def _without_calls(
    message: Any, remove: set[int], index: int, actions: list[RepairAction]
) -> Any | None:
    """The message without the tool calls at ``remove``; ``None`` if nothing is left of it."""
    tool_calls = field(message, "tool_calls")
    if tool_calls and not remove:
        return message
    plain = dict(to_plain(message, index))
    left = [c for pos, c in enumerate(plain.get("tool_calls") or ()) if pos not in remove]
    if left:
        plain["tool_calls"] = left
        return plain
    del plain["tool_calls"]
    if not tool_calls:
        actions.append(RepairAction("drop_empty_tool_calls", index, None, None, "tool_calls: []"))
    if _has_content(plain) or field(plain, "refusal") or field(plain, "audio"):
        return plain
    actions.append(RepairAction("drop_message", index, None, None, "no content and no calls left"))
    return None


def check_delta_old(
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
    no output (a mapping gives each call's item type, default ``function_call``);
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
    check_args("responses", policy)
    items = list(delta)
    if mode == "off":
        return items, ()
    held = _held_context(items, pending_call_ids, known_call_ids, answered_call_ids)
    n = len(held)
    actions: tuple[RepairAction, ...] = ()
    if mode == "repair":
        placed, repaired = repair_responses([*held, *items], policy, held=n)
        items = [item for origin, item in placed if origin is None or origin >= n]
        actions = tuple(
            attrs.evolve(a, index=None if a.index is None or a.index < n else a.index - n)
            for a in repaired
        )
    violations = [
        attrs.evolve(v, index=None if v.index is None or v.index < n else v.index - n)
        for v in validate_history([*held, *items], api="responses")
    ]
    if violations:
        raise HistoryError(_delta_message(violations[0], mode), violations=violations)
    return items, actions


def _held_context(
    items: Sequence[Any],
    pending: Iterable[str] | Mapping[str, str],
    known: Container[str] | None,
    answered: Container[str],
) -> list[dict[str, Any]]:
    """Stand-ins for the server-held calls (and outputs) the delta can interact with."""
    infos = [read_item(item, i) for i, item in enumerate(items)]
    in_delta = {info.call_id for info in infos if info.is_call and info.call_id}
    types = (
        dict(pending) if isinstance(pending, Mapping) else dict.fromkeys(pending, "function_call")
    )
    held = [_stand_in(call_type, cid) for cid, call_type in types.items() if cid not in in_delta]
    seen = set(types)
    for info in infos:
        cid = info.call_id
        if not info.is_output or info.is_call or cid is None or cid in in_delta or cid in seen:
            continue
        if known is None or cid in known:
            seen.add(cid)
            call_type = OUTPUT_TO_CALL.get(info.type, "function_call")
            held.append(_stand_in(call_type, cid))
            if cid in answered:
                held.append({"type": info.type, "call_id": cid, "output": ""})
    return held


def _stand_in(call_type: str, call_id: str) -> dict[str, Any]:
    return {"type": call_type, "call_id": call_id, "name": "", "arguments": "{}"}


def _delta_message(first: Violation, mode: str) -> str:
    where = "a call the server holds" if first.index is None else f"input[{first.index}]"
    fix = (
        "answer every pending call and send outputs only for calls the server holds"
        if mode == "repair"
        else "fix the items, or let the tracker repair them (check='repair')"
    )
    return f"The service would reject this request at {where}: {first.message} To fix: {fix}."
