"""Which history format a list of items is in, and whether its tool calls can be read in it.

Three formats are read (``Api``): Responses input items, Chat Completions messages and AG-UI
messages (``toolCalls`` / ``toolCallId``; ``tracker._agui``). ``detect_api`` tells them apart
by the items that only one of them has; ``resolve_api`` is what ``validate_history`` and
``repair_history`` use when no ``api`` is given.

When the caller names a format explicitly, messages of another format may still be given to
it: ``FOREIGN_FORMATS`` lists the keys that give such messages away (AG-UI's, read as Chat).
Read as Chat, their results look like orphans, and a repair would drop them:
``refuse_unreadable_output`` is called before any output is dropped as an orphan and raises
``ItemError`` instead when a key the format does not know may hold its call (looked for only
then, on the items that could hold it: no cost for a history without orphans).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from ._errors import ItemError, UsageError, shown
from ._items import CALL_TO_OUTPUT, field
from ._repair_actions import Api

__all__ = [
    "FOREIGN_FORMATS",
    "ForeignFormat",
    "detect_api",
    "foreign_keys",
    "is_agui_model",
    "refuse_unreadable_output",
    "resolve_api",
]

_RESPONSES_ONLY_TYPES: Final = frozenset(
    [*CALL_TO_OUTPUT, *CALL_TO_OUTPUT.values(), "reasoning", "item_reference"]
)

_NAMES: Final[Mapping[str, str]] = {
    "responses": "Responses",
    "chat": "Chat Completions",
    "agui": "AG-UI",
}

# What one item of each format is, in the order a mixed list names them.
_KINDS: Final[Mapping[Api, str]] = {
    "chat": "a Chat Completions message",
    "agui": "an AG-UI message",
    "responses": "a Responses item",
}


@attrs.frozen
class ForeignFormat:
    """A history format that another format's reader cannot read, known by its tool-call keys.

    ``keys`` are message keys that only this format uses, for what Chat Completions calls
    ``tool_calls`` / ``tool_call_id`` and Responses ``call_id``; ``api`` is the value of
    ``api=`` that reads it.
    """

    name: str
    keys: frozenset[str]
    api: str


#: Formats refused when another one is asked for explicitly, by the keys that give them away.
FOREIGN_FORMATS: Final[tuple[ForeignFormat, ...]] = (
    ForeignFormat("AG-UI messages", frozenset({"toolCalls", "toolCallId"}), "agui"),
)

_FOREIGN_KEYS: Final = tuple(key for f in FOREIGN_FORMATS for key in sorted(f.keys))

#: The keys a Chat Completions tool message may have (``name`` is tolerated: some clients
#: send it). A tool message without ``tool_call_id`` but with another key is unreadable.
_CHAT_TOOL_KEYS: Final = frozenset({"role", "content", "tool_call_id", "name"})


def is_agui_model(item: object) -> bool:
    """Whether ``item`` is an ``ag_ui`` (AG-UI Python SDK) model, such as a message of a
    parsed ``RunAgentInput``: its attributes are snake_case, its wire form is camelCase."""
    return type(item).__module__.startswith("ag_ui.") and hasattr(item, "model_dump")


def _evidence(item: Any) -> Api | None:
    """The format one item belongs to, when it tells (``None``: it fits both)."""
    if type(item) is dict or isinstance(item, Mapping):
        if "toolCalls" in item or "toolCallId" in item:
            return "agui"
        if item.get("role") == "tool" or "tool_calls" in item or "tool_call_id" in item:
            return "chat"
        if item.get("type") in _RESPONSES_ONLY_TYPES:
            return "responses"
    elif is_agui_model(item):
        return "agui"
    elif hasattr(item, "tool_calls"):
        return "chat"
    elif field(item, "type") in _RESPONSES_ONLY_TYPES:
        return "responses"
    return None


def detect_api(items: Sequence[Any]) -> Api:
    """Tell whether ``items`` are Chat Completions, AG-UI or Responses messages/items.

    AG-UI: a ``toolCalls`` / ``toolCallId`` member, or an ``ag_ui`` message model. Chat: a
    ``tool`` role or a ``tool_calls`` / ``tool_call_id`` member (an SDK message with a
    ``tool_calls`` attribute). Responses: an
    item whose ``type`` only Responses has (a tool call or output, ``reasoning``,
    ``item_reference``). When no item tells (plain ``{role, content}`` messages, an empty
    list) the answer is ``"responses"``: without tool calls every format's rules find the
    same. Raises ``UsageError`` when items of two formats are mixed, naming one of each.
    """
    first: dict[Api, int] = {}
    for i, item in enumerate(items):
        api = _evidence(item)
        if api is not None:
            first.setdefault(api, i)
            if len(first) == 2:
                a, b = (k for k in _KINDS if k in first)
                raise UsageError(
                    f"Cannot tell the history's format: item [{first[a]}] is {_KINDS[a]} and "
                    f"item [{first[b]}] {_KINDS[b]}. Pass api='responses', 'chat' or 'agui' "
                    "(--api on the command line)."
                )
    return next(iter(first), "responses")


def resolve_api(items: Sequence[Any], api: object) -> Api:
    """``api`` checked, or detected from ``items`` when it is ``None``; else ``UsageError``."""
    if api is None:
        return detect_api(items)
    if api in ("responses", "chat", "agui"):
        return api
    raise UsageError(f"api must be 'responses', 'chat', 'agui' or None (detect), not {shown(api)}.")


def _key_list(keys: list[Any]) -> str:
    """Keys for a message: names as they are when short, else a bounded repr; five at most."""
    names = sorted(k if isinstance(k, str) and len(k) <= 40 else shown(k) for k in keys[:5])
    return ", ".join(names) + (", ..." if len(keys) > 5 else "")


def foreign_keys(item: Any) -> tuple[ForeignFormat, list[str]] | None:
    """The ``FOREIGN_FORMATS`` entry whose keys ``item`` carries, with those keys."""
    if type(item) is dict or isinstance(item, Mapping):
        for key in _FOREIGN_KEYS:  # a few lookups beat iterating the item's keys
            if key in item:
                foreign = next(f for f in FOREIGN_FORMATS if key in f.keys)
                return foreign, sorted(k for k in foreign.keys if k in item)
    return None


def refuse_unreadable_output(
    items: Sequence[Any], api: Api, orphan: int, suspects: Iterable[int] = (), *, held: int = 0
) -> None:
    """Raise ``ItemError`` if the output at ``orphan`` may have a call the format cannot read.

    Called before a repair drops an output whose call it cannot find. It is refused when it,
    or one of ``suspects`` (the items that could hold its call under a key the format does
    not read: on Chat the message its run of tool messages follows, on Responses the calls
    without ``call_id``), carries keys of a ``FOREIGN_FORMATS`` entry; and, on Chat, when it
    has no ``tool_call_id`` but keys Chat Completions does not know. Returns when the output
    is a true orphan. The first ``held`` items are the server's (``check_delta``'s
    stand-ins): indexes in the message count from the item after them.
    """
    api_name = _NAMES[api]
    for at in (orphan, *suspects):
        found = foreign_keys(items[at])
        if found is not None:
            foreign, keys = found
            raise ItemError(
                f"Item at index {at - held} has keys {api_name} does not know "
                f"({', '.join(keys)}): it looks like {foreign.name}. Refusing to repair, since "
                f"the output at index {orphan - held} would be dropped as an orphan; pass "
                f"api={foreign.api!r} (or leave api out to detect it), or convert the history "
                f"to {api_name} form first.",
                index=at - held,
                item_type=type(items[at]).__name__,
            )
    message = items[orphan]
    if api != "chat" or not isinstance(message, Mapping):
        return
    call_id = message.get("tool_call_id")
    unknown = [k for k in message if k not in _CHAT_TOOL_KEYS]
    if unknown and not (isinstance(call_id, str) and call_id):
        raise ItemError(
            f"Item at index {orphan} is a tool message without 'tool_call_id' but with keys "
            f"Chat Completions does not know ({_key_list(unknown)}). Refusing to drop it as an "
            "orphan: give it the 'tool_call_id' of its call.",
            index=orphan,
            item_type=type(message).__name__,
        )
