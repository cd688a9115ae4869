"""AG-UI message histories: validated and repaired through a Chat Completions view.

AG-UI (the Agent-User Interaction protocol of agent-framework, CopilotKit and others) keeps a
conversation as ``messages``: each has an ``id``, a ``role`` and ``content``; an assistant
message carries ``toolCalls: [{id, type: "function", function: {name, arguments}}]`` and a
result is a ``tool`` message with ``toolCallId`` (and optionally ``error``). A request to an
agent is a ``RunAgentInput`` body: ``threadId``, ``runId``, ``messages``, ``tools``,
``state``, ... Whatever model a framework sends the messages to, they become Chat-style
tool-call pairs, so the pairing rule is the one Chat Completions states: each assistant
message's calls answered by tool messages directly after it.

Theory of operation. ``chat_view`` makes one Chat message per AG-UI message, index for
index (``toolCalls`` -> ``tool_calls``, ``toolCallId`` -> ``tool_call_id``). Validation runs
the Chat rules on the view and words each violation in AG-UI terms (``messages[i]``,
``toolCalls``, ``toolCallId``). Repair runs the Chat repair on the view and maps the result
back: a view message that comes back as the same object is its original AG-UI message (the
very same object); the Chat repair never reorders non-tool messages, so a changed assistant
message is the next original not dropped, rewritten with only the calls it kept; a Chat
placeholder becomes an AG-UI tool message whose ``id`` derives from the call id. A valid
history comes back unchanged, so the repair is idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from ._errors import UsageError
from ._formats import is_agui_model
from ._items import field, to_plain
from ._repair_actions import RepairAction, RepairPolicy
from ._repair_chat import repair_chat
from ._rules import Violation, check_chat

__all__ = [
    "AGUI_KEYS",
    "chat_view",
    "check_agui",
    "is_run_input",
    "placeholder_id",
    "refuse_other_mapping",
    "repair_agui",
]

#: Message keys only AG-UI uses for tool calls and their results.
AGUI_KEYS: Final = frozenset({"toolCalls", "toolCallId"})

#: Keys of an AG-UI ``RunAgentInput`` body besides ``messages``; one is enough to tell it. The
#: snake_case names are agent-framework's: its endpoint hands the adapter its request model
#: dumped with them (``AGUIRequest.model_dump()``).
_RUN_INPUT_KEYS: Final = (
    "threadId",
    "runId",
    "forwardedProps",
    "parentRunId",
    "thread_id",
    "run_id",
    "forwarded_props",
    "parent_run_id",
)

# Per Chat rule: what it means in AG-UI words, and the key it points at.
_WORDING: Final[Mapping[str, tuple[str, str]]] = {
    "CHAT_UNANSWERED": (
        "the assistant message's toolCalls {ids} have no tool message (toolCallId) directly "
        "after it; each call needs its result right after the message that made it",
        "toolCalls",
    ),
    "CHAT_ORPHAN_TOOL": (
        "a tool message (toolCallId {ids}) that does not follow an assistant message with "
        "toolCalls; a result must directly follow the message that made its call",
        "toolCallId",
    ),
    "CHAT_UNKNOWN_TOOL_CALL_ID": (
        "the tool message's toolCallId {ids} is not among the toolCalls of the assistant "
        "message its run of tool messages follows",
        "toolCallId",
    ),
    "CHAT_EMPTY_TOOL_CALLS": ("toolCalls is an empty list; leave it out instead", "toolCalls"),
}


def is_run_input(value: object) -> bool:
    """Whether ``value`` is an AG-UI ``RunAgentInput`` body (a mapping with ``messages``)."""
    return (
        isinstance(value, Mapping)
        and isinstance(value.get("messages"), list)
        and any(key in value for key in _RUN_INPUT_KEYS)
    )


def refuse_other_mapping(items: object, function: str) -> None:
    """Raise ``UsageError`` if ``items`` is a mapping: only a ``RunAgentInput`` body is read.

    Called once that body has been handled; any other mapping (a Chat or Responses request
    body, a body whose ``messages`` is not a list) would otherwise be read as its keys, and a
    ``RunAgentInput`` model (``ag_ui.core``) as its fields.
    """
    if not isinstance(items, Mapping):
        if hasattr(items, "model_dump") and isinstance(getattr(items, "messages", None), list):
            raise UsageError(
                f"{function}() reads an AG-UI RunAgentInput body as a dict, not a "
                f"{type(items).__name__} model: pass body.model_dump(by_alias=True, "
                "exclude_none=True), and build the model again from the repaired dict."
            )
        return
    keys = ", ".join(repr(key) for key in list(items)[:8])
    inner = next((key for key in ("messages", "input") if key in items), None)
    fix = f"pass its {inner!r} list" if inner else "pass the list of items or messages"
    raise UsageError(
        f"{function}() takes a list of items or messages, or an AG-UI RunAgentInput body "
        f"(threadId, runId and a 'messages' list); got a mapping with keys {keys}: {fix}."
    )


def placeholder_id(call_id: str) -> str:
    """The ``id`` of the placeholder tool message for ``call_id``: same call, same id."""
    return f"tracker-placeholder-{call_id}"


def _view(message: Any) -> Any:
    """One AG-UI message as a Chat message (an ``ag_ui`` model read in its camelCase wire
    form; other non-mappings are passed on for the Chat reader)."""
    if is_agui_model(message):
        message = to_plain(message)
    if not isinstance(message, Mapping):
        return message
    view: dict[str, Any] = {"role": message.get("role"), "content": message.get("content")}
    if "toolCalls" in message:
        view["tool_calls"] = message["toolCalls"]
    if "toolCallId" in message:
        view["tool_call_id"] = message["toolCallId"]
    return view


def chat_view(messages: Sequence[Any]) -> list[Any]:
    """The Chat Completions view of AG-UI ``messages``, one view message per message."""
    return [_view(m) for m in messages]


def check_agui(messages: Sequence[Any]) -> list[Violation]:
    """Check AG-UI ``messages`` against the tool-call pairing rules; violations in order.

    The rules are Chat's (``check_chat``), which every model API an AG-UI agent forwards to
    enforces in some form; ``rule`` keeps the Chat code, ``message`` and ``param`` name the
    AG-UI message (``messages[i].toolCalls`` / ``.toolCallId``).
    """
    out = []
    for v in check_chat(chat_view(messages)):
        text, key = _WORDING.get(v.rule, ("{ids}", "role"))
        ids = v.call_id or "(none)"
        if v.rule == "CHAT_UNANSWERED":
            ids = v.message.rsplit(": ", 1)[-1]
        where = f"messages[{v.index}]"
        out.append(
            Violation(
                rule=v.rule,
                status=v.status,
                message=f"AG-UI {where}: {text.format(ids=ids)}.",
                param=f"{where}.{key}",
                code=v.code,
                index=v.index,
                item_id=None if v.index is None else _str_or_none(field(messages[v.index], "id")),
                call_id=v.call_id,
            )
        )
    return out


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def repair_agui(
    messages: Sequence[Any], policy: RepairPolicy
) -> tuple[list[Any], tuple[RepairAction, ...]]:
    """Repair AG-UI ``messages`` in AG-UI shape; see ``tracker.repair_history``."""
    view = chat_view(messages)
    repaired, actions = repair_chat(view, policy)
    if not actions:
        return list(messages), actions
    origin = {id(v): i for i, v in enumerate(view)}
    dropped = {a.index for a in actions if a.kind == "drop_message"}
    others = iter(i for i, v in enumerate(view) if field(v, "role") != "tool" and i not in dropped)
    out: list[Any] = []
    for message in repaired:
        at = origin.get(id(message))
        if field(message, "role") == "tool":
            out.append(messages[at] if at is not None else _placeholder(message))
            continue
        i = next(others)
        out.append(messages[i] if at == i else _with_calls(to_plain(messages[i], i), message))
    return out, actions


def _placeholder(message: Mapping[str, Any]) -> dict[str, Any]:
    """A Chat placeholder result as an AG-UI tool message with a deterministic id."""
    call_id = message["tool_call_id"]
    return {
        "id": placeholder_id(call_id),
        "role": "tool",
        "toolCallId": call_id,
        "content": message["content"],
    }


def _with_calls(original: Mapping[str, Any], chat: Mapping[str, Any]) -> dict[str, Any]:
    """``original`` (an AG-UI assistant message) keeping only the calls ``chat`` still has."""
    plain = dict(original)
    kept = chat.get("tool_calls")
    if kept:
        plain["toolCalls"] = list(kept)
    else:
        plain.pop("toolCalls", None)
    return plain
