"""Values shared by the Responses and Chat Completions history repairs."""

from __future__ import annotations

from typing import Final, Literal

import attrs

__all__ = [
    "DROP",
    "PLACEHOLDER",
    "PLACEHOLDER_PREFIX",
    "POLICIES",
    "Api",
    "RepairAction",
    "RepairPolicy",
    "by_index",
    "placeholder_text",
]

Api = Literal["responses", "chat", "agui"]

#: What ``repair_history`` does with a tool call that has no output.
RepairPolicy = Literal["placeholder", "drop"]
#: Answer the call with a flagged, deterministic placeholder output.
PLACEHOLDER: Final = "placeholder"
#: Remove the call (and the reasoning item emitted just before it).
DROP: Final = "drop"
POLICIES: Final[tuple[RepairPolicy, ...]] = (PLACEHOLDER, DROP)

#: Every placeholder output starts with this, so code and models can tell it from a real result.
PLACEHOLDER_PREFIX: Final = "[tracker placeholder]"


def placeholder_text(call_id: str, name: str | None = None) -> str:
    """The placeholder output for a call that lost its result. Same call, same text, always."""
    what = f"tool call {call_id} ({name})" if name else f"tool call {call_id}"
    return (
        f"{PLACEHOLDER_PREFIX} No result was recorded for {what}; "
        "the history was repaired. Do not assume the call succeeded."
    )


@attrs.frozen
class RepairAction:
    """One change ``repair_history`` made.

    ``kind`` is one of ``move_output``, ``drop_orphan_output``, ``drop_duplicate_output``,
    ``drop_duplicate_call``, ``add_placeholder``, ``drop_call``, ``drop_reasoning``,
    ``strip_id`` (a call, or with ``strip_encrypted`` any item, whose round lost its
    reasoning item, sent on without its provider id), ``drop_message`` (a Chat assistant
    message left with no content and no calls),
    ``drop_empty_tool_calls`` (a Chat ``tool_calls: []`` removed) and
    ``unanswered_held_call`` (a call the server holds that cannot be answered by a
    placeholder). ``index`` is the position in the input list of the item acted on (for a
    placeholder: of its call); ``call_id`` / ``item_id`` name the ids concerned.
    """

    kind: str
    index: int | None
    call_id: str | None = None
    item_id: str | None = None
    detail: str = ""

    def __str__(self) -> str:
        where = "server" if self.index is None else f"[{self.index}]"
        ids = " ".join(x for x in (self.call_id, self.item_id) if x)
        text = f"{where} {self.kind}"
        if ids:
            text += f" {ids}"
        return f"{text}: {self.detail}" if self.detail else text


def by_index(action: RepairAction) -> int:
    """Sort key: actions on server-held items (no index) first, then in list order."""
    return -1 if action.index is None else action.index
