"""The tracker's checks of what it is handed, and what it drops: its constructor's settings,
a list of items, a response to observe (an SDK ``Response`` or its dict form, continuing this
tracker's conversation or chain), a ``Prepared`` from this very tracker, and the stale
encrypted items it carries inline (``strip_encrypted``). Each raises (or
returns) before the tracker changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ._edits import ON_EDIT
from ._errors import ContinuationError, UsageError, shown
from ._items import COMPACTION, field
from ._prepared import Prepared
from ._responses import not_a_response
from ._snapshot import Ledger, check_id

if TYPE_CHECKING:
    from ._tracker_chain import Chain

__all__ = [
    "check_continuation",
    "check_origin",
    "check_settings",
    "item_list",
    "response_id_of",
    "strip_encrypted",
    "strip_window",
    "turn_items",
]


def check_settings(
    previous_response_id: Any,
    conversation_id: Any,
    check: Any,
    store: bool,
    on_edit: Any,
) -> None:
    """``Tracker()``'s arguments: ``UsageError`` for an unknown ``check``/``on_edit``,
    ``ContinuationError`` for a malformed id, both ids, or an id with ``store=False``."""
    if on_edit not in ON_EDIT:
        raise UsageError(f"on_edit must be 'restart' or 'raise', not {shown(on_edit)}.")
    if not store and (previous_response_id is not None or conversation_id is not None):
        raise ContinuationError(
            "store=False keeps nothing on the server: it cannot continue "
            f"{shown(previous_response_id or conversation_id)}. Create the tracker with "
            "store=True and call go_stateless(history=...) to switch."
        )
    if check not in ("raise", "repair", "off"):
        raise UsageError(f"check must be 'raise', 'repair' or 'off', not {shown(check)}.")
    if previous_response_id is not None and conversation_id is not None:
        raise ContinuationError(
            f"previous_response_id {shown(previous_response_id)} and conversation_id "
            f"{shown(conversation_id)} are mutually exclusive (the API rejects both): pass one."
        )
    check_id(previous_response_id, "previous_response_id")
    check_id(conversation_id, "conversation_id")


def item_list(items: Any, method: str) -> list[Any]:
    """``items`` as a list; ``UsageError`` if it is not an iterable of items."""
    if type(items) is list:
        return list(items)
    if isinstance(items, str | bytes | bytearray | Mapping) or not isinstance(items, Iterable):
        raise UsageError(
            f"{method}() takes a list of items; got {type(items).__name__} (wrap a single item "
            "in a list; pass a response to observe_response())."
        )
    return list(items)


def turn_items(items: Any, method: str) -> list[Any]:
    """A turn's ``items`` as a list (a string is one user message); else as ``item_list``."""
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    return item_list(items, method)


def response_id_of(response: Any) -> Any:
    """The id of ``response``; ``UsageError`` if it is not a response, ``ContinuationError``
    for a malformed id."""
    problem = not_a_response(response)
    if problem is not None:
        raise UsageError(
            f"observe_response() takes a Responses API response (an openai Response or its "
            f"dict form with 'id' and 'output'); got {type(response).__name__}: {problem}."
        )
    response_id = field(response, "id")
    check_id(response_id, "response id")
    return response_id


def check_continuation(response: Any, response_id: Any, ledger: Ledger, *, stateless: bool) -> None:
    """``ContinuationError`` for a response from another conversation, or one created with
    ``store=False`` that a chain (not ``stateless``) would have to continue."""
    conv = field(response, "conversation")
    conv_id = field(conv, "id") if conv is not None and not isinstance(conv, str) else conv
    if ledger.conversation_id is not None and conv_id not in (None, ledger.conversation_id):
        raise ContinuationError(
            f"Response {response_id} belongs to conversation {shown(conv_id)}, not to this "
            f"tracker's {ledger.conversation_id!r}: use one tracker per conversation."
        )
    if field(response, "store") is False and ledger.conversation_id is None and not stateless:
        raise ContinuationError(
            f"Response {response_id} was created with store=False and cannot be continued "
            "with previous_response_id: create it with store=True (the default)."
        )


def strip_encrypted(chain: Chain, wanted: set[str] | None) -> tuple[str, ...]:
    """Drop the ``wanted`` (``None``: every) encrypted reasoning/compaction items the ``chain``
    carries inline (a stateless transcript's, the waiting window's); return their ids."""
    dropped: list[str] = []
    if chain.transcript is not None:
        dropped.extend(chain.transcript.strip_encrypted(wanted))
    dropped.extend(strip_window(chain.ledger, wanted))
    return tuple(dropped)


def strip_window(ledger: Ledger, wanted: set[str] | None) -> list[str]:
    """Drop the ``wanted`` (``None``: every) encrypted reasoning/compaction items of the
    waiting window; return their ids."""
    dropped: list[str] = []
    window = ledger.window
    if window:
        kept = []
        for item in window:
            stale = item.get("type") in ("reasoning", COMPACTION) and bool(
                item.get("encrypted_content")
            )
            if stale and (wanted is None or item.get("id") in wanted):
                dropped.append(str(item.get("id")))
            else:
                kept.append(item)
        ledger.window = kept or None
    return dropped


def check_origin(prepared: Prepared, origin: object, method: str) -> None:
    """``UsageError`` unless ``prepared`` is a ``Prepared`` made by the tracker of ``origin``."""
    if not isinstance(prepared, Prepared):
        raise UsageError(
            f"{method}() takes the Prepared returned by prepare(); got {type(prepared).__name__}."
        )
    if prepared._origin is not origin:
        raise UsageError(
            f"{method}(): this Prepared was made by another tracker (or before a restore); "
            "call prepare() on this tracker."
        )
