"""What ``Tracker.observe_response`` is given: checking that it is a response, and reading one.

A caller may hand over almost anything by mistake (an un-awaited coroutine, a stream, an
exception, a list, a background response still ``queued``, one that ended ``failed`` or
``cancelled``); ``not_a_response`` says what it got and what to pass instead. A standalone
compaction's result (``responses.compact``) is read by ``window_of`` as the input items of the
next chain.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Final

from ._errors import UsageError
from ._items import COMPACTION, field, to_plain

__all__ = ["COMPACTED_OBJECT", "not_a_response", "window_of"]

#: The ``object`` of a ``responses.compact`` result.
COMPACTED_OBJECT = "response.compaction"


def _quiet_plain(item: Any, index: int) -> dict[str, Any]:
    """``to_plain``, without the SDK's warning about a user message parsed as output.

    The SDK reads a compacted window's user messages as output messages, whose content part
    type (``input_text``) its serializer warns about; the dict it gives is right.
    """
    dump = getattr(item, "model_dump", None)
    if not isinstance(item, Mapping) and callable(dump):
        try:
            plain = dump(mode="json", exclude_none=True, by_alias=True, warnings=False)
        except TypeError:  # a model_dump without the pydantic keywords
            plain = None
        if isinstance(plain, dict):
            return plain
    return to_plain(item, index)


def window_of(response: Any) -> list[dict[str, Any]]:
    """A compacted response's output as the input items of a new chain.

    ``created_by`` is output-only (the compaction input item has no such field), so it goes.
    """
    window = []
    for index, item in enumerate(field(response, "output")):
        plain = dict(_quiet_plain(item, index))
        plain.pop("created_by", None)
        if plain.get("type") == "message":
            plain.pop("status", None)
        window.append(plain)
    if not window or window[-1].get("type") != COMPACTION:
        raise UsageError(
            f"Compacted response {field(response, 'id')} does not end with a compaction item "
            "(got types "
            f"{[w.get('type') for w in window]}): pass the result of responses.compact as is."
        )
    return window


#: The statuses of a background response that has not finished: nothing to observe yet.
RUNNING: Final = frozenset({"queued", "in_progress"})
#: The statuses of a response that ended without a result to continue from.
ENDED_WITHOUT_RESULT: Final = frozenset({"failed", "cancelled"})
#: Statuses ``observe_response`` refuses.
_UNOBSERVABLE: Final = RUNNING | ENDED_WITHOUT_RESULT


def _still_running(response: Any) -> str | None:
    """Why a ``queued`` / ``in_progress`` (background) response cannot be observed yet, or a
    ``failed`` / ``cancelled`` one at all."""
    status = field(response, "status")
    if status not in _UNOBSERVABLE:
        return None
    rid = field(response, "id")
    if status in ENDED_WITHOUT_RESULT:
        # Whether the service would continue from one is not in the public record (the
        # emulator refuses both; RuleOptions.chain_from_cancelled_response): sending the
        # request again from the response before is right either way.
        return (
            f"response {rid} ended {status}, so nothing is chained from it (its output is not "
            "a result to continue from). rewind(prepared) the request it answered and send it "
            "again: its input, tool outputs included, goes once more"
        )
    return (
        f"response {rid} is still {status} (background=True): its output is not known yet, so "
        "nothing can be chained from it. Poll "
        f"client.responses.retrieve({rid!r}) until its status is completed (or incomplete), "
        "then observe that"
    )


def not_a_response(response: Any) -> str | None:
    """Why ``response`` cannot be a Responses API response (or cannot be observed: a
    background response still ``queued`` / ``in_progress``, or one that ended ``failed`` /
    ``cancelled``), or ``None`` if it can."""
    if type(response) is dict and type(response.get("output")) is list:
        rid = response.get("id")
        if (rid is None or type(rid) is str) and response.get("status") not in _UNOBSERVABLE:
            return None  # the common case, decided without the checks below
    if inspect.isawaitable(response):
        if inspect.iscoroutine(response):
            response.close()  # never awaited: close it so it leaves no warning behind
        return (
            "it was not awaited, so the request was never sent: await it "
            "(response = await client.responses.create(...)) and pass the result"
        )
    if isinstance(response, BaseException):
        return "the request failed: rewind(prepared) and retry it instead of observing the error"
    if isinstance(response, str | bytes | bytearray):
        return "pass the response object itself, not text"
    if isinstance(response, list | tuple):
        return "pass the response object, or observe_items(items) for a list of items"
    has_output = (
        "output" in response if isinstance(response, Mapping) else (hasattr(response, "output"))
    )
    if not has_output:
        stream_like = ("get_final_response", "__iter__", "__aiter__")
        if not isinstance(response, Mapping) and any(hasattr(response, a) for a in stream_like):
            return (
                "it is a stream: consume it and pass the final response "
                "(stream.get_final_response(), or the 'response.completed' event's .response)"
            )
        return "it has no 'output' list"
    if not isinstance(field(response, "output"), list | tuple):
        return f"its 'output' is a {type(field(response, 'output')).__name__}, not a list"
    if not isinstance(field(response, "id"), str | None):
        return f"its 'id' is a {type(field(response, 'id')).__name__}, not a string"
    return _still_running(response)
