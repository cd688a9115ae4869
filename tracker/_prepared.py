"""The delta a tracker decided, and the keys that identify a sent item.

``Prepared`` is a frozen value: the items to send (the caller's own objects), the
continuation, and how each item will be remembered once marked sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from ._items import ItemInfo, read_item, to_plain
from ._repair_actions import RepairAction

__all__ = [
    "Key",
    "KeyKind",
    "Prepared",
    "SkipReason",
    "anon_fingerprint",
    "anon_key",
    "describe",
    "keys_of",
]

#: How a sent item is remembered: ``"id"`` its provider id, ``"out"`` the call_id an output
#: answers, ``"call"`` a tool call's call_id, ``"anon"`` the content fingerprint of an id-less,
#: call-less item (whose object is held as well), ``"window"`` an item of a standalone
#: compaction's window and ``"trigger"`` a ``compaction_trigger`` (both sent as they are, never
#: remembered by the ledger). A ``Literal``, so mypy flags a misspelt kind.
KeyKind = Literal["id", "out", "call", "anon", "window", "trigger"]
Key = tuple[KeyKind, str]

#: Why ``prepare`` left an item out (the keys of ``Prepared.skip_reasons``).
SkipReason = Literal[
    "server_id",
    "answered_output",
    "known_call",
    "held_object",
    "content",
    "duplicate_in_input",
    "old_trigger",
]


@attrs.frozen(eq=False)
class Prepared:
    """The next request's delta, as decided by ``Tracker.prepare``.

    ``input`` holds the original item objects to send, in order; ``skipped`` counts the items
    left out because the server already holds them, and ``skip_reasons`` says why;
    ``repairs`` lists what ``check="repair"`` changed (placeholder outputs, dropped items).
    Pass it to ``Tracker.mark_sent`` (and to ``Tracker.rewind`` if the request fails).
    ``compact`` is true for ``Tracker.prepare_compact`` (send it to ``responses.compact``);
    ``carries_window`` when ``input`` starts with a standalone compaction's window (a new chain).
    """

    input: tuple[Any, ...]
    previous_response_id: str | None
    conversation_id: str | None
    skipped: int
    skip_reasons: Mapping[SkipReason, int]
    repairs: tuple[RepairAction, ...]
    _keys: tuple[tuple[Key, ...], ...] = attrs.field(repr=False, alias="keys")
    _origin: object = attrs.field(repr=False, alias="origin")
    _serial: int = attrs.field(default=0, repr=False, alias="serial")
    compact: bool = False
    carries_window: bool = False
    #: Stateless mode: how many leading items of ``input`` replay the transcript.
    replayed: int = attrs.field(default=0, kw_only=True)

    @property
    def delta(self) -> tuple[Any, ...]:
        """The new items of ``input`` (all of it unless a stateless transcript is replayed)."""
        return self.input[self.replayed :] if self.replayed else self.input

    def request_input(self) -> list[dict[str, Any]]:
        """The delta as plain wire-form dicts (SDK models dumped without ``None`` members)."""
        return [to_plain(item, i) for i, item in enumerate(self.input)]

    def request_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``client.responses.create``: ``input`` plus the continuation.

        Exactly one of ``previous_response_id`` and ``conversation`` is present when the
        tracker has a continuation; neither on the first turn of an auto-chained tracker. For
        ``prepare_compact`` they are the arguments of ``client.responses.compact`` (no
        ``input`` when there is nothing new to add to the chain).
        """
        kwargs: dict[str, Any] = {"input": self.request_input()}
        if self.compact and not kwargs["input"]:
            del kwargs["input"]  # compact the chain as the server holds it
        if self.conversation_id is not None:
            kwargs["conversation"] = self.conversation_id
        elif self.previous_response_id is not None:
            kwargs["previous_response_id"] = self.previous_response_id
        return kwargs


def keys_of(info: ItemInfo) -> tuple[Key, ...]:
    """The item's keys, strongest first; empty for an anonymous (id-less, call-less) item."""
    keys: list[Key] = []
    if info.id is not None:
        keys.append(("id", info.id))
    if info.call_id is not None:
        if info.is_output:
            keys.append(("out", info.call_id))
        elif info.is_call:
            keys.append(("call", info.call_id))
    return tuple(keys)


def anon_key(fp: str) -> tuple[Key]:
    """The keys of an anonymous item whose content fingerprint is ``fp``."""
    return (("anon", fp),)


def anon_fingerprint(keys: tuple[Key, ...]) -> str | None:
    """The content fingerprint if ``keys`` are an anonymous item's, else ``None``."""
    kind, value = keys[0]
    return value if kind == "anon" else None


def describe(item: Any) -> str:
    """A short label for an item in error messages: its type and strongest id."""
    info = read_item(item)
    for label, value in (("id", info.id), ("call_id", info.call_id)):
        if value is not None:
            return f"{info.type} {label}={value}"
    return f"{info.type} (no id)"
