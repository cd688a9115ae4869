"""Read any Responses item (a plain dict or an ``openai`` SDK model) the same way.

Nothing here imports ``openai``: SDK models are recognised by their ``model_dump`` method, so
the core stays sans-IO and works with any pydantic-shaped item.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from ._errors import ItemError, shown

__all__ = [
    "CALL_TO_OUTPUT",
    "COMPACTION",
    "COMPACTION_TRIGGER",
    "FAKE_ID",
    "OUTPUT_TO_CALL",
    "PAIRING_FIELD",
    "SERVER_EXECUTABLE",
    "ItemInfo",
    "field",
    "is_async_call",
    "read_item",
    "to_plain",
    "unreadable",
]

#: Placeholder id that openai-agents puts on items from non-Responses providers; never a real id.
FAKE_ID: Final = "__fake_id__"

#: Each tool-call item type and the client-owned item that answers it (paired by ``call_id``,
#: except an MCP approval request: see ``PAIRING_FIELD``). The service lists the items a client
#: must supply (SDK 3.57 ``response_steer_required_input.py``): every ``*_output`` here and
#: ``mcp_approval_response``. A ``tool_search_call`` with ``execution: "server"`` (and the
#: server's own ``tool_search_output``) is neither side of a pair: the server answered it.
CALL_TO_OUTPUT: Final[Mapping[str, str]] = {
    "function_call": "function_call_output",
    "custom_tool_call": "custom_tool_call_output",
    "computer_call": "computer_call_output",
    "local_shell_call": "local_shell_call_output",
    "shell_call": "shell_call_output",
    "apply_patch_call": "apply_patch_call_output",
    "tool_search_call": "tool_search_output",
    "program": "program_output",
    "mcp_approval_request": "mcp_approval_response",
}
OUTPUT_TO_CALL: Final[Mapping[str, str]] = {v: k for k, v in CALL_TO_OUTPUT.items()}

#: The item a compaction leaves (``id`` ``cmp_...``, ``encrypted_content``): a boundary, since
#: the server summarised everything before it.
COMPACTION: Final = "compaction"
#: The input item that asks the server to compact now ("must be the final input item").
COMPACTION_TRIGGER: Final = "compaction_trigger"
#: The member that carries the pairing key, for the types that do not use ``call_id``: an
#: approval request is named by its own ``id`` (``mcpr_...``), its response by
#: ``approval_request_id``. ``ItemInfo.call_id`` holds that key for both.
PAIRING_FIELD: Final[Mapping[str, str]] = {
    "mcp_approval_request": "id",
    "mcp_approval_response": "approval_request_id",
}

#: The types a server may execute itself (``execution: "server"``): then neither side of a pair.
SERVER_EXECUTABLE: Final = frozenset({"tool_search_call", "tool_search_output"})


@attrs.frozen
class ItemInfo:
    """What the tracker needs to know about one item.

    ``id`` is the provider item id (``fc_...``, ``msg_...``, ``rs_...``) or ``None``;
    ``call_id`` the pairing key of a tool call or output (for an MCP approval pair the request
    id, see ``PAIRING_FIELD``); ``is_call`` / ``is_output`` say which side of a pair the item
    is on (neither for a server-executed ``tool_search_call`` / ``tool_search_output``).
    """

    type: str
    id: str | None
    call_id: str | None
    is_call: bool
    is_output: bool


def field(item: Any, name: str) -> Any:
    """Return ``item[name]`` for a mapping, ``item.name`` for an object, ``None`` if absent."""
    if type(item) is dict or isinstance(item, Mapping):  # the exact-type test skips the ABC
        return item.get(name)
    return getattr(item, name, None)


def is_async_call(item: Any) -> bool:
    """Whether a tool call was made to an async tool (``async: true``; SDK field ``async_``).

    The service lets such a call stay without output: its result may come in a later request.
    """
    if isinstance(item, Mapping):
        return item.get("async") is True
    return getattr(item, "async_", None) is True or getattr(item, "async", None) is True


def _describe(item: Any) -> str:
    return type(item).__name__


def unreadable(item: Any, index: int | None, problem: str, fix: str) -> ItemError:
    """An ``ItemError`` for ``item`` at ``index``: what is wrong with it and how to fix it."""
    where = f" at index {index}" if index is not None else ""
    return ItemError(f"Item{where} {problem}: {fix}", index=index, item_type=_describe(item))


def read_item(item: Any, index: int | None = None) -> ItemInfo:
    """Read an item's type, provider id, call id and side.

    Raises ``ItemError`` (naming ``index``) when ``item`` is neither a mapping nor an object
    with a ``type`` attribute, or when its type cannot be determined.
    """
    if type(item) is dict or isinstance(item, Mapping):
        raw_type = item.get("type")
        if raw_type is None and "role" in item:
            raw_type = "message"  # the "easy" input message form {role, content}
    elif hasattr(item, "type"):
        raw_type = item.type
    else:
        raise unreadable(
            item,
            index,
            f"is a {_describe(item)}, not a Responses item",
            "pass a dict (e.g. {'role': 'user', 'content': '...'}) or an openai SDK item model.",
        )
    if not isinstance(raw_type, str) or not raw_type:
        raise unreadable(
            item,
            index,
            f"has no 'type' (got {shown(raw_type)})",
            "give it a 'type' such as 'message' or 'function_call_output', or a 'role' for a "
            "message.",
        )
    raw_id = field(item, "id")
    item_id = raw_id if isinstance(raw_id, str) and raw_id and raw_id != FAKE_ID else None
    raw_call_id = field(item, PAIRING_FIELD.get(raw_type, "call_id"))
    call_id = raw_call_id if isinstance(raw_call_id, str) and raw_call_id else None
    is_output = raw_type in OUTPUT_TO_CALL
    is_call = raw_type in CALL_TO_OUTPUT
    if not is_output and not is_call and call_id is not None:
        # An unknown future output type: recognise it by its payload, as the service pairs it.
        is_output = (isinstance(item, Mapping) and "output" in item) or hasattr(item, "output")
    elif raw_type in SERVER_EXECUTABLE and field(item, "execution") == "server":
        is_call = is_output = False  # the server ran the search: nothing for the client to pair
    return ItemInfo(
        type=raw_type, id=item_id, call_id=call_id, is_call=is_call, is_output=is_output
    )


def to_plain(item: Any, index: int | None = None) -> dict[str, Any]:
    """Return the item as a plain JSON-ready dict in its wire form.

    A dict is returned as is (same object). An SDK model is dumped by alias without ``None``
    members, which the service may reject as unknown parameters. Raises ``ItemError`` (naming
    ``index``) for anything else, or a model that cannot be dumped.
    """
    if isinstance(item, dict):
        return item
    if isinstance(item, Mapping):
        return dict(item)
    dump = getattr(item, "model_dump", None)
    if callable(dump):
        try:
            plain = dump(mode="json", exclude_none=True, by_alias=True)
        except (RecursionError, ValueError, TypeError) as exc:
            raise unreadable(
                item,
                index,
                f"cannot be serialised ({type(exc).__name__}: {str(exc)[:200]})",
                "give it JSON content: no cycles, no deeper than a few hundred levels.",
            ) from None
        if isinstance(plain, dict):
            return plain
    raise unreadable(
        item,
        index,
        f"is a {_describe(item)} that cannot be turned into a dict",
        "pass a dict or an openai SDK item model.",
    )
