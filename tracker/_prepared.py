"""The delta a tracker decided, and the keys that identify a sent item.

``Prepared`` is a frozen value: the items to send (the caller's own objects), the
continuation, and how each item will be remembered once marked sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

import attrs

from ._client_calls import without_client_call_ids
from ._items import (
    CALL_TO_OUTPUT,
    OUTPUT_TO_CALL,
    PAIRING_FIELD,
    SERVER_EXECUTABLE,
    ItemInfo,
    read_item,
    to_plain,
)
from ._repair_actions import RepairAction

if TYPE_CHECKING:
    from ._edits import HistoryEdit
    from ._snapshot import Ledger

__all__ = [
    "Key",
    "KeyKind",
    "Prepared",
    "SkipReason",
    "anon_fingerprint",
    "anon_key",
    "describe",
    "keys_of",
    "known_by_key",
    "known_dict",
    "known_object",
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
    ``restarted`` names the edit when the whole history passed changed an item the chain holds
    and the tracker restarts the chain with it (``on_edit="restart"``): ``input`` is then the
    whole history, with no ``previous_response_id`` (nor replayed transcript).
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
    restarted: HistoryEdit | None = attrs.field(default=None, kw_only=True)
    #: ``RuleOptions.reject_referenced_client_calls``: ``request_input()`` sends a client call
    #: beside its output without its item id (``_client_calls.without_client_call_ids``).
    client_calls_without_ids: bool = attrs.field(default=False, kw_only=True)
    #: The whole history passed (and how it compared), adopted when the request is answered.
    _plan: Any = attrs.field(default=None, kw_only=True, repr=False, alias="plan")

    @property
    def delta(self) -> tuple[Any, ...]:
        """The new items of ``input`` (all of it unless a stateless transcript is replayed)."""
        return self.input[self.replayed :] if self.replayed else self.input

    def request_input(self) -> list[dict[str, Any]]:
        """The delta as plain wire-form dicts (SDK models dumped without ``None`` members).

        With ``client_calls_without_ids`` (``RuleOptions.reject_referenced_client_calls``) a
        client call whose output is in the same input is sent without its item id, and the
        reasoning item it was emitted with is left out (the other items emitted with it lose
        their ids): copies, ``input`` and what the tracker records are unchanged.
        """
        plain = [to_plain(item, i) for i, item in enumerate(self.input)]
        return without_client_call_ids(plain) if self.client_calls_without_ids else plain

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


#: For each call and output type: the member holding its pairing key, and the skip reason
#: when the ledger knows that key. Server-executable types are left to ``read_item``, which
#: reads their ``execution``.
_PAIRS: Final[dict[str, tuple[str, SkipReason]]] = {
    **{t: (PAIRING_FIELD.get(t, "call_id"), "known_call") for t in CALL_TO_OUTPUT},
    **{t: (PAIRING_FIELD.get(t, "call_id"), "answered_output") for t in OUTPUT_TO_CALL},
}
for _kind in SERVER_EXECUTABLE:
    del _PAIRS[_kind]
#: Item classes read by attribute (as ``field`` reads a non-mapping), by class.
_BY_ATTRIBUTE: dict[type, bool] = {}


def known_dict(item: dict[str, Any], ledger: Ledger) -> SkipReason | None:
    """``ledger.knows(keys_of(read_item(item)))`` when that is not ``None``, read in a hurry.

    ``prepare`` asks this of every item of a whole history, and most are known by a string
    key: a typed plain dict is looked up by its provider id and, for a tool call or output,
    its pairing key, exactly as ``keys_of`` would key it. ``None`` means "not known this way":
    the caller reads the item in full (which also decides the untyped, easy-form,
    server-executed and unknown future types left out here, and raises for an unreadable item).
    """
    kind = item.get("type")
    if kind.__class__ is not str or not kind:
        return None
    item_id = item.get("id")
    if item_id.__class__ is str and item_id in ledger.server_item_ids:
        return "server_id"  # never "" or FAKE_ID: the ledger only holds ids read_item accepts
    pair = _PAIRS.get(kind)
    if pair is None:
        return None
    key = item.get(pair[0])
    if key.__class__ is not str:
        return None
    if pair[1] == "known_call":
        return "known_call" if key in ledger.calls else None
    return "answered_output" if key in ledger.answered_call_ids else None


def known_object(item: Any, ledger: Ledger) -> SkipReason | None:
    """``known_dict`` for any other item: an SDK model is read by attribute, as ``field`` does.

    ``None`` for a mapping that is not a ``dict`` (the caller reads it in full).
    """
    cls = type(item)
    by_attribute = _BY_ATTRIBUTE.get(cls)
    if by_attribute is None:
        by_attribute = _BY_ATTRIBUTE[cls] = not issubclass(cls, Mapping)
    if not by_attribute:
        return None
    kind = getattr(item, "type", None)
    if kind.__class__ is not str or not kind:
        return None
    item_id = getattr(item, "id", None)
    if item_id.__class__ is str and item_id in ledger.server_item_ids:
        return "server_id"
    pair = _PAIRS.get(kind)
    if pair is None:
        return None
    key = getattr(item, pair[0], None)
    if key.__class__ is not str:
        return None
    if pair[1] == "known_call":
        return "known_call" if key in ledger.calls else None
    return "answered_output" if key in ledger.answered_call_ids else None


def known_by_key(item: Any, ledger: Ledger) -> SkipReason | None:
    """``known_dict`` or ``known_object``, whichever reads ``item``."""
    return known_dict(item, ledger) if type(item) is dict else known_object(item, ledger)


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
