"""Repair Chat Completions ``messages``: each ``tool_calls`` message followed by its results.

Chat Completions, unlike Responses, wants every tool message *directly* after the assistant
message that made the call. ``_ChatPlan`` pairs calls (owned by the first assistant message
that carries their id) and tool messages by id, pass by pass, then writes the list once,
emitting each assistant message followed by its block of results: those already there, then
the moved ones, then any placeholders, each in original order. All other messages keep their
order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._formats import refuse_unreadable_output
from ._items import field, to_plain
from ._repair_actions import PLACEHOLDER, RepairAction, RepairPolicy, by_index, placeholder_text

__all__ = ["repair_chat"]


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _has_content(message: Any) -> bool:
    content = field(message, "content")
    return content is not None and content not in ("", [])


def repair_chat(
    messages: Sequence[Any], policy: RepairPolicy
) -> tuple[list[Any], tuple[RepairAction, ...]]:
    """Repair a Chat Completions ``messages`` list; see ``tracker.repair_history``."""
    plan = _ChatPlan(messages, policy)
    plan.find_calls()
    plan.choose_results()
    plan.place_results()
    plan.settle_calls()
    return plan.write(), plan.sorted_actions()


class _ChatPlan:
    """One repair of a Chat ``messages`` list, pass by pass; ``write`` builds the list once.

    Indexes are positions in ``messages``; ``owner[call_id]`` is the assistant message that
    owns a call (the first to carry its id).
    """

    def __init__(self, messages: Sequence[Any], policy: RepairPolicy) -> None:
        self.messages = messages
        self.policy = policy
        self.roles = [field(m, "role") for m in messages]
        # Each tool message: (index, its tool_call_id or None).
        self.results = [
            (t, _str_or_none(field(messages[t], "tool_call_id")))
            for t, role in enumerate(self.roles)
            if role == "tool"
        ]
        self.actions: list[RepairAction] = []
        self.owner: dict[str, int] = {}
        # calls[i][pos]: the id of tool_calls[pos] of message i; "" for a call that repeats
        # an id already owned (dropped), None for a call with no id (left alone).
        self.calls: dict[int, list[str | None]] = {}
        self.keep: dict[str, int] = {}  # call_id -> the one tool message it keeps
        self.staying: dict[int, list[int]] = {}  # owner -> results already in its block
        self.moving: dict[int, list[int]] = {}  # owner -> results that move into its block
        self.written: dict[int, Any | None] = {}  # owner -> its message as written (None: gone)
        self.placeholders: dict[int, list[dict[str, Any]]] = {}  # owner -> placeholder results
        # The last orphan seen and the message its run follows (memo for _answered).
        self.last_orphan: tuple[int, tuple[int, ...]] = (-1, ())
        # Where the run of tool messages that starts at each index ends (exclusive).
        n = len(messages)
        self.run_stop = [n] * (n + 1)
        for i in range(n - 1, -1, -1):
            self.run_stop[i] = self.run_stop[i + 1] if self.roles[i] == "tool" else i

    def _act(self, kind: str, index: int, call_id: str | None, detail: str) -> None:
        self.actions.append(RepairAction(kind, index, call_id, None, detail))

    def _in_place(self, t: int, call_id: str) -> bool:
        """Whether tool message ``t`` sits in the block right after its call's message."""
        at = self.owner[call_id]
        return at < t < self.run_stop[at + 1]

    def _answered(self, t: int) -> tuple[int, ...]:
        """The message that the run of tool messages holding ``t`` follows (none at the start).

        Orphans come in list order; a walk back stops at the previous orphan of the same run,
        so all the walks together are linear.
        """
        j = t - 1
        while j >= 0 and self.roles[j] == "tool":
            if j == self.last_orphan[0]:
                self.last_orphan = (t, self.last_orphan[1])
                return self.last_orphan[1]
            j -= 1
        self.last_orphan = (t, (j,) if j >= 0 else ())
        return self.last_orphan[1]

    def find_calls(self) -> None:
        """Give each call id to the first assistant message carrying it; drop later repeats."""
        owner, roles = self.owner, self.roles
        for i, message in enumerate(self.messages):
            tool_calls = field(message, "tool_calls") if roles[i] == "assistant" else None
            if not isinstance(tool_calls, list | tuple):
                continue
            ids: list[str | None] = []
            for tool_call in tool_calls:
                call_id = _str_or_none(field(tool_call, "id"))
                if call_id is not None and call_id in owner:
                    ids.append("")
                    self._act("drop_duplicate_call", i, call_id, "id already used")
                else:
                    if call_id is not None:
                        owner[call_id] = i
                    ids.append(call_id)
            self.calls[i] = ids

    def choose_results(self) -> None:
        """Each call keeps one result: the first in place, else the first."""
        keep, owner = self.keep, self.owner
        for t, call_id in self.results:
            if call_id is None or call_id not in owner:
                continue
            current = keep.get(call_id)
            if current is None or (
                not self._in_place(current, call_id) and self._in_place(t, call_id)
            ):
                keep[call_id] = t

    def place_results(self) -> None:
        """Drop orphans and duplicates; the kept result stays in its block or moves there."""
        for t, call_id in self.results:
            if call_id is None or call_id not in self.owner:
                refuse_unreadable_output(self.messages, "chat", t, self._answered(t))
                self._act("drop_orphan_output", t, call_id, "no call with this call_id")
            elif self.keep[call_id] != t:
                self._act("drop_duplicate_output", t, call_id, "the call keeps one output")
            elif self._in_place(t, call_id):
                self.staying.setdefault(self.owner[call_id], []).append(t)
            else:
                at = self.owner[call_id]
                self.moving.setdefault(at, []).append(t)
                self._act("move_output", t, call_id, f"moved after its call [{at}]")

    def settle_calls(self) -> None:
        """Each call left without a result: a placeholder result, or the call goes."""
        for i, ids in self.calls.items():
            missing = [pos for pos, c in enumerate(ids) if c and c not in self.keep]
            remove = {pos for pos, c in enumerate(ids) if c == ""}
            if self.policy != PLACEHOLDER:
                remove.update(missing)
                for pos in missing:
                    self._act("drop_call", i, ids[pos], "the call had no output")
            self.written[i] = _without_calls(self.messages[i], remove, i, self.actions)
            if self.policy == PLACEHOLDER and self.written[i] is not None:
                self.placeholders[i] = [self._placeholder(i, ids, pos) for pos in missing]

    def _placeholder(self, i: int, ids: list[str | None], pos: int) -> dict[str, Any]:
        call_id = ids[pos]
        assert call_id  # missing holds only calls with an id
        function = field(field(self.messages[i], "tool_calls")[pos], "function")
        name = field(function, "name")
        self._act("add_placeholder", i, call_id, "the call had no output")
        text = placeholder_text(call_id, name if isinstance(name, str) else None)
        return {"role": "tool", "tool_call_id": call_id, "content": text}

    def write(self) -> list[Any]:
        """Each message in order; a calls message followed by its block of results."""
        messages, roles, written = self.messages, self.roles, self.written
        staying, moving, placeholders = self.staying, self.moving, self.placeholders
        out: list[Any] = []
        for i, message in enumerate(messages):
            if roles[i] == "tool":
                continue  # results are written in their call's block
            if i not in written:
                out.append(message)
                continue
            kept = written[i]
            if kept is None:
                continue
            out.append(kept)
            out.extend(messages[t] for t in staying.get(i, ()))
            out.extend(messages[t] for t in moving.get(i, ()))
            out.extend(placeholders.get(i, ()))
        return out

    def sorted_actions(self) -> tuple[RepairAction, ...]:
        """The actions in input order (stable: one message's actions keep the order taken)."""
        return tuple(sorted(self.actions, key=by_index))


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
