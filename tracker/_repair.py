"""Repair tool-call history so the service accepts it: a pure, linear-time transform.

Theory of operation. A history breaks the pairing rules (``tracker._rules``) in four ways: an
output with no call (an orphan), several outputs for one call, an output away from its call
(before it on Responses; not directly after the assistant ``tool_calls`` message on Chat
Completions), and a call with no output. Each format's repair is a plan object that runs
named passes over the list (find the calls, choose the output each keeps, drop orphans and
duplicates, settle each call: move its output, add a placeholder or drop it) and then writes
the list once:

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

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, cast, overload

import attrs

from ._agui import is_run_input, refuse_other_mapping, repair_agui
from ._errors import UsageError
from ._formats import refuse_unreadable_output, resolve_api
from ._items import (
    CALL_TO_OUTPUT,
    COMPACTION,
    OUTPUT_TO_CALL,
    ItemInfo,
    field,
    read_item,
    to_plain,
)
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
    "PLACEHOLDER_TYPES",
    "POLICIES",
    "Api",
    "RepairAction",
    "RepairPolicy",
    "encrypted_ids",
    "placeholder_text",
    "repair_history",
    "repair_responses",
    "strip_encrypted",
    "window_start",
]

#: Call types whose output is a plain string, so a placeholder can stand in for a lost result.
PLACEHOLDER_TYPES: Final = frozenset({"function_call", "custom_tool_call"})


def check_policy(policy: str) -> None:
    """Raise ``UsageError`` unless ``policy`` is one of ``POLICIES``."""
    if policy not in POLICIES:
        raise UsageError(f"policy must be one of {', '.join(POLICIES)}, not {policy!r}.")


@overload
def repair_history(
    items: Mapping[str, Any],
    *,
    api: Api | None = None,
    policy: RepairPolicy = PLACEHOLDER,
    compaction_boundary: bool = True,
) -> tuple[dict[str, Any], tuple[RepairAction, ...]]: ...


@overload
def repair_history(
    items: Iterable[Any],
    *,
    api: Api | None = None,
    policy: RepairPolicy = PLACEHOLDER,
    compaction_boundary: bool = True,
) -> tuple[list[Any], tuple[RepairAction, ...]]: ...


def repair_history(
    items: Iterable[Any] | Mapping[str, Any],
    *,
    api: Api | None = None,
    policy: RepairPolicy = PLACEHOLDER,
    compaction_boundary: bool = True,
) -> tuple[Any, tuple[RepairAction, ...]]:
    """Return ``(repaired, actions)``: ``items`` made valid for tool-call pairing, and what changed.

    ``api="responses"``: ``items`` is a Responses context (input items); ``api="chat"``: a
    Chat Completions ``messages`` list; ``api="agui"``: AG-UI messages (``toolCalls`` /
    ``toolCallId``, repaired in AG-UI shape; ``tracker._agui``) or an AG-UI ``RunAgentInput``
    body, returned as a new dict with its ``messages`` repaired and every other key kept;
    ``None`` (the default): detected from the items (``tracker._formats.detect_api``; a
    ``RunAgentInput`` body is AG-UI). ``policy`` says what to do with a call that has no
    output: ``"placeholder"`` adds a flagged, deterministic output; ``"drop"`` removes the call
    (and the reasoning item just before it). On Responses the latest ``compaction`` item is a
    boundary: items before it are kept as they are (the service summarised them), and an
    output after it whose call lies before it is dropped as an orphan;
    ``compaction_boundary=False`` (``RuleOptions.compaction_boundary``: that the service pairs
    only from that item on is inferred) repairs the whole context instead, as
    ``validate_history(..., compaction_boundary=False)`` checks it. ``actions`` are in
    input order; each ``index`` is a position in ``items`` (in the body's ``messages``). Pure:
    ``items`` is not modified. Raises ``ItemError`` for an item that cannot be read (also, with
    ``api="chat"``, for a message whose tool keys are AG-UI's, rather than drop its result as
    an orphan) and ``UsageError`` for an unknown ``api`` or ``policy``, a list whose format
    cannot be told, or a mapping that is not a ``RunAgentInput`` body (pass its list).
    """
    check_policy(policy)
    if is_run_input(items) and api in (None, "agui"):
        body = cast("Mapping[str, Any]", items)
        messages, actions = repair_agui(body["messages"], policy)
        return ({**body, "messages": messages} if actions else body), actions
    refuse_other_mapping(items, "repair_history")
    seq = list(items)
    found = resolve_api(seq, api)
    if found == "agui":
        return repair_agui(seq, policy)
    if found == "chat":
        return repair_chat(seq, policy)
    start = window_start(seq) if compaction_boundary else 0
    placed, actions = repair_responses(seq[start:], policy)
    if not start:
        return [item for _, item in placed], actions
    summarised = _summarised_calls(seq[:start]) if actions else frozenset()
    shifted = tuple(
        attrs.evolve(
            a,
            index=None if a.index is None else a.index + start,
            detail=f"its call lies before the compaction item [{start}], which summarised it"
            if a.kind == "drop_orphan_output" and a.call_id in summarised
            else a.detail,
        )
        for a in actions
    )
    return [*seq[:start], *(item for _, item in placed)], shifted


def _summarised_calls(items: Sequence[Any]) -> frozenset[str]:
    """The call ids of the calls in ``items`` (those a compaction item after them summarised)."""
    return frozenset(
        str(field(item, "call_id"))
        for item in items  # read loosely: items before the boundary are kept as they are
        if field(item, "type") in CALL_TO_OUTPUT and field(item, "call_id")
    )


def window_start(items: Sequence[Any]) -> int:
    """The index of the latest ``compaction`` item (the boundary), or 0 when there is none.

    The service summarised everything before it: calls there are never answered after it.
    """
    for index in range(len(items) - 1, -1, -1):
        if field(items[index], "type") == COMPACTION:
            return index
    return 0


def encrypted_ids(item_ids: Iterable[str] | None, caller: str) -> set[str] | None:
    """The ``item_ids`` given to ``caller`` as a set (``None`` stays ``None``: every item).

    A single id passed as a string would be read as its characters and drop nothing:
    ``UsageError`` naming the fix, as for any other non-list.
    """
    if item_ids is None:
        return None
    if isinstance(item_ids, str | bytes) or not isinstance(item_ids, Iterable):
        raise UsageError(
            f"{caller}(item_ids={item_ids!r}): pass a list of item ids (e.g. "
            f"item_ids=['rs_...', 'cmp_...']), or None to drop every item with encrypted_content."
        )
    wanted = set(item_ids)
    if not all(isinstance(i, str) for i in wanted):
        raise UsageError(f"{caller}(item_ids=...): every id must be a string, got {wanted!r}.")
    return wanted


def strip_encrypted(
    items: Iterable[Any], item_ids: Iterable[str] | None = None
) -> tuple[list[Any], tuple[RepairAction, ...]]:
    """Drop ``reasoning`` and ``compaction`` items whose encrypted content cannot be used.

    ``item_ids`` names them (for example the ``rs_``/``cmp_`` id in a 400
    ``invalid_encrypted_content``); ``None`` drops every such item that carries
    ``encrypted_content`` (after a key rotation). The items emitted right after a dropped
    reasoning item (up to the next reasoning item, tool output or user message) are kept
    without their ids, as plain dicts: with an id, the service would refuse each as
    "provided without its required 'reasoning' item" (A2/A3). Returns ``(items, actions)``,
    one ``drop_encrypted`` action per item dropped and one ``strip_id`` per id removed;
    ``items`` is not modified. The summarised context the item stood for is lost to the
    model: this is the fix for a thread the service refuses, not a free one. ``UsageError``
    for ``item_ids`` that is not a list of ids (a single id as a string included).
    """
    wanted = encrypted_ids(item_ids, "strip_encrypted")
    kept: list[Any] = []
    actions: list[RepairAction] = []
    lost: int | None = None  # the dropped reasoning item the items now follow, if any
    for index, item in enumerate(items):
        kind, item_id = field(item, "type"), field(item, "id")
        encrypted = kind in ("reasoning", COMPACTION) and (
            item_id in wanted if wanted is not None else bool(field(item, "encrypted_content"))
        )
        if encrypted:
            actions.append(
                RepairAction(
                    kind="drop_encrypted",
                    index=index,
                    item_id=item_id,
                    detail="its encrypted content cannot be verified by the service",
                )
            )
            lost = index if kind == "reasoning" else lost
            continue
        if kind == "reasoning" or kind in OUTPUT_TO_CALL or field(item, "role") == "user":
            lost = None  # a new round: its items have their own reasoning, or need none
        if lost is None or item_id is None:
            kept.append(item)
        else:
            kept.append({k: v for k, v in to_plain(item, index).items() if k != "id"})
            actions.append(
                RepairAction(
                    kind="strip_id",
                    index=index,
                    item_id=item_id,
                    detail=f"its reasoning [{lost}] was dropped",
                )
            )
    return kept, tuple(actions)


def repair_responses(
    items: Sequence[Any], policy: RepairPolicy, *, held: int = 0
) -> tuple[list[tuple[int | None, Any]], tuple[RepairAction, ...]]:
    """Repair a Responses context; return ``(origin, item)`` pairs and the actions.

    ``origin`` is the item's index in ``items`` (``None`` for a placeholder). The first
    ``held`` items are ones the server already holds: they are never dropped or moved, and
    their unanswered calls get placeholders whatever the policy, since they cannot be unsent.
    """
    plan = _ResponsesPlan(items, policy, held)
    plan.find_calls()
    plan.choose_outputs()
    plan.drop_extra_outputs()
    plan.settle_calls()
    plan.strip_orphaned_ids()
    return plan.write(), plan.sorted_actions()


class _ResponsesPlan:
    """One repair of a Responses context, pass by pass; each pass reads what the last decided.

    Indexes are positions in ``items``. A pass only records decisions (``dropped``, ``after``,
    ``stripped``, ``actions``); ``write`` builds the list once at the end.
    """

    def __init__(self, items: Sequence[Any], policy: RepairPolicy, held: int) -> None:
        self.items = items
        self.policy = policy
        self.held = held
        self.infos = [read_item(item, i) for i, item in enumerate(items)]
        # Each output with a call id: (index, call_id).
        self.outputs = [
            (i, info.call_id)
            for i, info in enumerate(self.infos)
            if info.is_output and not info.is_call and info.call_id is not None
        ]
        self.actions: list[RepairAction] = []
        self.dropped = [False] * len(items)
        self.call_at: dict[str, int] = {}  # call_id -> index of the call that owns it
        self.keep: dict[str, int] = {}  # call_id -> index of the one output it keeps
        self.after: dict[int, list[tuple[int | None, Any]]] = {}  # written after that index
        self.lost_reasoning: list[int] = []
        self.stripped: dict[int, dict[str, Any]] = {}  # calls sent on without their id
        self.idless: list[int] = []  # calls without a call_id (it may be under another key)

    def _drop(self, kind: str, i: int, detail: str) -> None:
        self.dropped[i] = True
        self.actions.append(_act(kind, i, self.infos[i], detail))

    def find_calls(self) -> None:
        """Pair each call id with its first call; a later call with that id is dropped."""
        for i, info in enumerate(self.infos):
            if not info.is_call:
                continue
            if info.call_id is None:
                self.idless.append(i)
            elif info.call_id in self.call_at and i >= self.held:
                self._drop("drop_duplicate_call", i, "a second call with this id")
            else:
                self.call_at.setdefault(info.call_id, i)

    def choose_outputs(self) -> None:
        """The output each call keeps: the first one after the call, else the first one."""
        call_at, keep = self.call_at, self.keep
        for i, cid in self.outputs:
            if cid not in call_at:
                continue
            current = keep.get(cid)
            if current is None or (current < call_at[cid] < i):
                keep[cid] = i

    def drop_extra_outputs(self) -> None:
        """Drop orphans (no call) and every output but the kept one (not the held ones)."""
        for i, cid in self.outputs:
            if i < self.held or self.keep.get(cid) == i:
                continue
            if cid in self.call_at:
                self._drop("drop_duplicate_output", i, "the call keeps one output")
            else:
                suspects, self.idless = self.idless, []  # looked at once: linear time
                refuse_unreadable_output(self.items, "responses", i, suspects, held=self.held)
                self._drop("drop_orphan_output", i, "no call with this call_id")

    def settle_calls(self) -> None:
        """Give each call its output after it: move it there, or add a placeholder, or drop."""
        run_end = _run_ends(self.infos)
        for cid, i in self.call_at.items():  # insertion order is list order: deterministic
            out_at = self.keep.get(cid)
            if out_at is not None and out_at > i:
                continue
            if out_at is not None:
                self._move_output(out_at, i, run_end[i])
            elif field(self.items[i], "async") is not True:
                self._answer_lost_output(i, run_end[i])
            # else: the service lets async calls wait for a later request

    def _move_output(self, out_at: int, call: int, to: int) -> None:
        self.dropped[out_at] = True
        self.after.setdefault(to, []).append((out_at, self.items[out_at]))
        self.actions.append(
            _act("move_output", out_at, self.infos[out_at], f"moved after its call [{call}]")
        )

    def _answer_lost_output(self, i: int, to: int) -> None:
        info, held = self.infos[i], i < self.held
        if info.type in PLACEHOLDER_TYPES and (self.policy == PLACEHOLDER or held):
            self.after.setdefault(to, []).append((None, _placeholder(self.items[i], info)))
            self.actions.append(_act("add_placeholder", i, info, "the call had no output"))
        elif held:
            self.actions.append(
                _act("unanswered_held_call", i, info, "no placeholder form: answer it")
            )
        else:
            why = "the call had no output" if self.policy == DROP else "no placeholder form"
            if info.type == "mcp_approval_request":
                why = "no approval: an approval is never invented"
            self._drop("drop_call", i, why)
            before = i - 1
            if (
                i > self.held
                and self.infos[before].type == "reasoning"
                and not self.dropped[before]
            ):
                self._drop("drop_reasoning", before, f"emitted with [{i}]")
                self.lost_reasoning.append(before)

    def strip_orphaned_ids(self) -> None:
        """Calls of a round whose reasoning item went are sent on without their ids.

        The service ties every call emitted after a reasoning item to it by their ids, and
        rejects them as incomplete without it. The round runs on through items this repair
        drops and through outputs (an orphan or a misplaced output may sit between two calls
        of one round): stripping too many ids is harmless, too few is an error.
        """
        infos, dropped = self.infos, self.dropped
        for r in self.lost_reasoning:
            j = r + 2
            while j < len(infos) and (infos[j].is_call or infos[j].is_output or dropped[j]):
                if (
                    infos[j].is_call
                    and not dropped[j]
                    and infos[j].id is not None
                    and j not in self.stripped
                ):
                    plain = to_plain(self.items[j], j)
                    self.stripped[j] = {k: v for k, v in plain.items() if k != "id"}
                    self.actions.append(
                        _act("strip_id", j, infos[j], f"its reasoning [{r}] was dropped")
                    )
                j += 1

    def write(self) -> list[tuple[int | None, Any]]:
        """The repaired list: kept items in order, each followed by what moved after it."""
        placed: list[tuple[int | None, Any]] = []
        for i, item in enumerate(self.items):
            if not self.dropped[i]:
                placed.append((i, self.stripped.get(i, item)))
            placed.extend(self.after.get(i, ()))
        return placed

    def sorted_actions(self) -> tuple[RepairAction, ...]:
        """The actions in input order (stable: one item's actions keep the order taken)."""
        return tuple(sorted(self.actions, key=by_index))


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
