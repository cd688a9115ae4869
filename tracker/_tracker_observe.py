"""The tracker's checks of what it is handed, and what it drops: a response to observe (an
SDK ``Response`` or its dict form, continuing this tracker's conversation or chain), a
``Prepared`` from this very tracker, and the stale encrypted items of a standalone compaction's
waiting window (``strip_window``). Each raises (or returns) before the tracker changes.
"""

from __future__ import annotations

from typing import Any

from ._errors import ContinuationError, UsageError, shown
from ._items import COMPACTION, field
from ._prepared import Prepared
from ._responses import not_a_response
from ._snapshot import Ledger, check_id

__all__ = ["check_continuation", "check_origin", "response_id_of", "strip_window"]


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
