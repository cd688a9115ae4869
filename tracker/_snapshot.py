"""What a tracker persists (its ledger of what the server holds) and the snapshot format.

``Ledger`` is the one definition of the persisted fields: each attribute is named as its
snapshot key and carries its own dump and strict load, so adding a field is one line here.

Format (version 4; a version 1 to 3 snapshot, which lacks the later fields, still loads)::

    {
      "format": "tracker.state",
      "version": 4,
      "previous_response_id": "resp_..." | null,
      "conversation_id": "conv_..." | null,
      "server_item_ids": ["fc_...", "msg_...", ...],         # in first-seen order
      "calls": {"call_...": "fc_..." | null, ...},           # call_id -> provider item id
      "answered_call_ids": ["call_...", ...],                # in first-seen order
      "pending_call_ids": ["call_...", ...],                 # in arrival order
      "fingerprints": {"<hex>": count, ...},                 # id-less items sent, by content
      "responses_observed": 3,
      "whole_chain": true,                                   # every held call was seen
      "compacted_call_ids": ["call_...", ...],               # v2: summarised unanswered
      "last_compaction_id": "cmp_..." | null,                # v2: the latest boundary
      "window": [{...}, ...] | null,                         # v2: a standalone compaction's
                                                             #     window, not yet sent
      "history": ["<16 hex>", ...],                          # v3: the caller's last whole
                                                             #     history, a fingerprint per item
      "call_types": {"call_...": "custom_tool_call", ...}    # v4: the type of each call that
    }                                                        #     is not a function_call

The id lists are written in the order the tracker first saw each id (it keeps them as
insertion-ordered dicts), so writing a snapshot sorts nothing and a later snapshot's lists
extend an earlier one's; older releases wrote them sorted, and either order restores the
same decisions (the lists are sets to the tracker).

Restore validates everything before building anything, so a bad snapshot raises and leaves no
half-restored tracker behind. A continuation id is checked by ``check_id``, the same rule the
tracker applies when it is given or observes one, so every snapshot it writes restores.
"""

from __future__ import annotations

import copy
import itertools
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from ._errors import ContinuationError, StateError, StateVersionError, shown
from ._items import CALL_TO_OUTPUT, field, is_async_call
from ._prepared import Key, SkipReason

__all__ = [
    "FORMAT",
    "STATE_VERSION",
    "Journal",
    "Ledger",
    "check_id",
    "dump_state",
    "load_state",
]

FORMAT: Final = "tracker.state"
STATE_VERSION: Final = 4
#: Fields added by each version after the first (absent from older snapshots: defaults).
_ADDED_IN: Final = "since"

_ID_CHARS: Final = re.compile(r"[A-Za-z0-9_-]{1,128}")


def check_id(value: object, name: str) -> None:
    """Raise ``ContinuationError`` unless ``value`` is ``None`` or a well-formed API id."""
    if value is None:
        return
    if not isinstance(value, str) or not _ID_CHARS.fullmatch(value):
        raise ContinuationError(
            f"Invalid {name} {shown(value)}: expected an id of 1-128 letters, digits, '_' and '-' "
            f"(as returned by the API); pass the id string itself."
        )


# ---------------------------------------------------------------------- field codecs


def _fail(path: str, what: str) -> StateError:
    return StateError(
        f"Invalid tracker state: {path} {what}. Pass the dict from Tracker.to_state() "
        "(after json.loads if it was stored as text), unmodified.",
        path=path,
    )


def _load_opt_id(key: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise _fail(key, f"must be a string or null, got {type(value).__name__}")
    try:
        check_id(value, key)
    except ContinuationError as exc:
        raise StateError(f"Invalid tracker state: {exc}", path=key) from exc
    return value


def _load_strs(key: str, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise _fail(key, f"must be a list of strings, got {type(value).__name__}")
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v:
            raise _fail(f"{key}[{i}]", f"must be a non-empty string, got {shown(v)}")
    return value


def _load_mapping(key: str, value: Any) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        raise _fail(key, f"must be an object, got {type(value).__name__}")
    return value


def _load_calls(key: str, value: Any) -> dict[str, str | None]:
    for call_id, item_id in _load_mapping(key, value).items():
        if not isinstance(call_id, str) or not call_id:
            raise _fail(key, f"has a non-string key {shown(call_id)}")
        if item_id is not None and not isinstance(item_id, str):
            raise _fail(f"{key}[{call_id!r}]", f"must be a string or null, got {shown(item_id)}")
    return dict(value)


def _load_call_types(key: str, value: Any) -> dict[str, str]:
    for call_id, call_type in _load_mapping(key, value).items():
        if not isinstance(call_id, str) or not call_id:
            raise _fail(key, f"has a non-string key {shown(call_id)}")
        if not isinstance(call_type, str) or call_type not in CALL_TO_OUTPUT:
            raise _fail(f"{key}[{call_id!r}]", f"must be a call type, got {shown(call_type)}")
    return dict(value)


def _load_counts(key: str, value: Any) -> dict[str, int]:
    for fp, count in _load_mapping(key, value).items():
        if not isinstance(fp, str) or type(count) is not int or count < 1:
            raise _fail(f"{key}[{shown(fp)}]", f"must be a positive count, got {shown(count)}")
    return dict(value)


def _load_count(key: str, value: Any) -> int:
    if type(value) is not int or value < 0:
        raise _fail(key, f"must be a non-negative integer, got {shown(value)}")
    return value


def _load_bool(key: str, value: Any) -> bool:
    if type(value) is not bool:
        raise _fail(key, f"must be true or false, got {shown(value)}")
    return value


def _load_window(key: str, value: Any) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _fail(key, f"must be a list of items or null, got {type(value).__name__}")
    for i, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise _fail(f"{key}[{i}]", f"must be an item with a 'type', got {shown(item)}")
    return copy.deepcopy(value)


def _load_history(key: str, value: Any) -> list[str]:
    for i, fp in enumerate(_load_strs(key, value)):
        if len(fp) != 16 or fp.strip("0123456789abcdef"):
            raise _fail(f"{key}[{i}]", f"must be 16 lowercase hex digits, got {shown(fp)}")
    return list(value)


def _codec(
    dump: Callable[[Any], Any], load: Callable[[str, Any], Any], since: int = 1
) -> dict[str, Any]:
    return {"dump": dump, "load": load, _ADDED_IN: since}


_OPT_ID: Final = _codec(lambda v: v, _load_opt_id)
#: An id set kept as a dict (insertion-ordered): written in first-seen order, never sorted.
_STR_ORDER: Final = _codec(list, lambda k, v: dict.fromkeys(_load_strs(k, v)))


# ---------------------------------------------------------------------- the journal

#: Id sets written as lists in first-seen order: a snapshot's list extends an earlier one's
#: unless an id was removed since.
_ID_SETS: Final = ("server_item_ids", "answered_call_ids", "pending_call_ids", "compacted_call_ids")
#: Maps whose values change in place: written key by key.
_KEYED: Final = ("calls", "fingerprints", "call_types")


@attrs.define(eq=False)
class Journal:
    """What changed in a ledger since a mark (``Ledger.mark``), so a store can save only that.

    ``lengths`` are the id sets' sizes at the mark (what was added since is at their end, as
    long as nothing was removed); ``shrunk`` names those an id left; ``touched`` the keys of
    ``calls``/``fingerprints``/``call_types`` set since, in order. ``Ledger.remove`` (a
    rewind) drops it.
    """

    lengths: dict[str, int]
    shrunk: set[str] = attrs.field(factory=set)
    touched: dict[str, dict[str, None]] = attrs.field(factory=lambda: {k: {} for k in _KEYED})


# ---------------------------------------------------------------------- the ledger


@attrs.define
class Ledger:
    """What the server holds, as a tracker knows it: everything a snapshot keeps.

    Each attribute is a snapshot field of the same name (``metadata`` holds its dump and
    load). ``add`` / ``remove`` / ``knows`` are the only code that reads a key's kind.
    """

    previous_response_id: str | None = attrs.field(default=None, metadata=_OPT_ID)
    conversation_id: str | None = attrs.field(default=None, metadata=_OPT_ID)
    server_item_ids: dict[str, None] = attrs.field(factory=dict, metadata=_STR_ORDER)
    calls: dict[str, str | None] = attrs.field(factory=dict, metadata=_codec(dict, _load_calls))
    answered_call_ids: dict[str, None] = attrs.field(factory=dict, metadata=_STR_ORDER)
    #: Calls without output, in arrival order (a dict used as an ordered set).
    pending_call_ids: dict[str, None] = attrs.field(factory=dict, metadata=_STR_ORDER)
    #: Id-less items sent, counted by content fingerprint.
    fingerprints: dict[str, int] = attrs.field(factory=dict, metadata=_codec(dict, _load_counts))
    responses_observed: int = attrs.field(default=0, metadata=_codec(int, _load_count))
    #: Started the chain or conversation itself: every call the server holds was seen here,
    #: so an output for any other call_id is an error (P2), not a gap.
    whole_chain: bool = attrs.field(default=True, metadata=_codec(bool, _load_bool))
    #: Calls a compaction summarised before they were answered: never pending again, and an
    #: output for one is never sent (the service no longer holds the call).
    compacted_call_ids: dict[str, None] = attrs.field(
        factory=dict, metadata=_codec(list, _STR_ORDER["load"], since=2)
    )
    #: The id of the latest compaction item observed (the boundary), if any.
    last_compaction_id: str | None = attrs.field(
        default=None, metadata=_codec(lambda v: v, _load_opt_id, since=2)
    )
    #: A standalone compaction's window (its output items, as plain dicts) that the next
    #: request must carry to start a new chain; ``None`` once sent and answered.
    window: list[dict[str, Any]] | None = attrs.field(
        default=None, metadata=_codec(copy.deepcopy, _load_window, since=2)
    )

    #: The whole history the caller passed last (``tracker._edits``): a content fingerprint
    #: per position, so an edit behind the chain is still seen after a restore.
    history: list[str] = attrs.field(factory=list, metadata=_codec(list, _load_history, since=3))
    #: The item type of each call that is not a ``function_call`` (a ``custom_tool_call``, a
    #: ``shell_call``, an ``mcp_approval_request`` ...), so a held call is named, checked and
    #: answered as its type (a call missing here is a ``function_call``, or, in a snapshot
    #: older than v4, an approval request if its key is an ``mcpr_`` id).
    call_types: dict[str, str] = attrs.field(
        factory=dict, metadata=_codec(dict, _load_call_types, since=4)
    )

    #: Not a snapshot field: what changed since the last ``mark`` (``None``: not known).
    journal: Journal | None = attrs.field(default=None, eq=False, repr=False, metadata={})

    def copy(self) -> Ledger:
        """An independent copy (the containers are copied, not shared; no journal)."""
        return Ledger(**{a.name: copy.copy(getattr(self, a.name)) for a in _FIELDS})

    def mark(self) -> Journal:
        """Start a journal of the changes from now on (ending any earlier one); return it."""
        self.journal = Journal({name: len(getattr(self, name)) for name in _ID_SETS})
        return self.journal

    def changes(self, mark: Journal) -> dict[str, Any] | None:
        """The snapshot fields that changed since ``mark``, or ``None`` if that is not known.

        ``{"scalars": {field: value}`` (every field that is not a container, dumped),
        ``"extend": {field: [ids added since]}``, ``"whole": {field: [all ids]}`` (an id set an
        id left), ``"keys": {field: {key: value}}}`` (``calls``/``fingerprints``/``call_types``
        keys set since). Costs what changed, not the ledger's size.
        """
        if mark is not self.journal:
            return None
        scalars = {
            a.name: a.metadata["dump"](getattr(self, a.name))
            for a in _FIELDS
            if a.name not in _ID_SETS and a.name not in _KEYED
        }
        extend: dict[str, list[str]] = {}
        whole: dict[str, list[str]] = {}
        for name in _ID_SETS:
            ids: dict[str, None] = getattr(self, name)
            if name in mark.shrunk:
                whole[name] = list(ids)
            else:
                added = len(ids) - mark.lengths[name]
                extend[name] = list(itertools.islice(reversed(ids), added))[::-1]
        keys = {
            name: {key: getattr(self, name)[key] for key in touched}
            for name, touched in mark.touched.items()
        }
        return {"scalars": scalars, "extend": extend, "whole": whole, "keys": keys}

    def knows(self, keys: tuple[Key, ...]) -> SkipReason | None:
        """Why the server holds an item with ``keys`` (known under any key), else ``None``."""
        for kind, value in keys:
            if kind == "id":
                if value in self.server_item_ids:
                    return "server_id"
            elif kind == "out":
                if value in self.answered_call_ids:
                    return "answered_output"
            elif kind == "call" and value in self.calls:
                return "known_call"
        return None

    def add(self, keys: tuple[Key, ...], item: Any = None) -> None:
        """Record ``item``, sent or observed, under its ``keys`` (from ``keys_of``)."""
        item_id: str | None = None
        for kind, value in keys:  # the id, when there is one, comes first
            if kind == "id":
                self.server_item_ids[value] = None
                item_id = value
            elif kind == "out":
                self.answered_call_ids[value] = None
                if self.pending_call_ids.pop(value, _GONE) is not _GONE and self.journal:
                    self.journal.shrunk.add("pending_call_ids")
            elif kind == "call":
                if item_id is not None or value not in self.calls:  # never forget an item id
                    self.calls[value] = item_id
                    if self.journal:
                        self.journal.touched["calls"][value] = None
                self._add_type(value, item)
                if value not in self.answered_call_ids and not is_async_call(item):
                    self.pending_call_ids.setdefault(value, None)
            elif kind == "anon":
                self.fingerprints[value] = self.fingerprints.get(value, 0) + 1
                if self.journal:
                    self.journal.touched["fingerprints"][value] = None

    def _add_type(self, call_id: str, item: Any) -> None:
        """Record the type of the call ``item`` unless it is a ``function_call`` (the default)."""
        call_type = field(item, "type") if item is not None else None
        if not isinstance(call_type, str) or call_type == "function_call":
            return
        if not isinstance(call_type, str) or call_type not in CALL_TO_OUTPUT:
            return
        if self.call_types.get(call_id) != call_type:
            self.call_types[call_id] = call_type
            if self.journal:
                self.journal.touched["call_types"][call_id] = None

    def compact(self, compaction_id: str | None, *, summarise: bool = True) -> None:
        """Record a compaction boundary: every call pending now was summarised unanswered
        (``summarise=False``: they stay pending, the service pairing across the boundary)."""
        if summarise:
            self.compacted_call_ids.update(self.pending_call_ids)
            if self.pending_call_ids and self.journal:
                self.journal.shrunk.add("pending_call_ids")
            self.pending_call_ids.clear()
        if compaction_id is not None:
            self.last_compaction_id = compaction_id

    def remove(self, keys: tuple[Key, ...]) -> None:
        """Undo ``add(keys)`` (a request that failed). Ends the journal (changes unknown)."""
        self.journal = None
        for kind, value in keys:
            if kind == "id":
                self.server_item_ids.pop(value, None)
            elif kind == "out":
                self.answered_call_ids.pop(value, None)
                if value in self.calls:
                    self.pending_call_ids.setdefault(value, None)
            elif kind == "call":
                self.calls.pop(value, None)
                self.call_types.pop(value, None)
                self.pending_call_ids.pop(value, None)
            elif kind == "anon":
                left = self.fingerprints.get(value, 0) - 1
                if left > 0:
                    self.fingerprints[value] = left
                else:
                    self.fingerprints.pop(value, None)


_FIELDS: Final = tuple(a for a in attrs.fields(Ledger) if "dump" in a.metadata)
_GONE: Final = object()


# ---------------------------------------------------------------------- dump and load


def dump_state(ledger: Ledger) -> dict[str, Any]:
    """Return the snapshot of ``ledger`` (see the module docstring for the format)."""
    state: dict[str, Any] = {"format": FORMAT, "version": STATE_VERSION}
    for a in _FIELDS:
        state[a.name] = a.metadata["dump"](getattr(ledger, a.name))
    return state


def _check_version(state: Mapping[str, Any]) -> None:
    version = state.get("version")
    if type(version) is not int:
        raise StateVersionError(
            f"Invalid tracker state: version must be an integer, got {shown(version)}.",
            version=version,
        )
    if version > STATE_VERSION:
        raise StateVersionError(
            f"Tracker state version {version} is newer than this release supports "
            f"({STATE_VERSION}): upgrade tracker.",
            version=version,
        )
    if version < 1:
        raise StateVersionError(
            f"Tracker state version {version} is unknown (this release reads versions 1 to "
            f"{STATE_VERSION}).",
            version=version,
        )


def _check_consistent(ledger: Ledger) -> None:
    if ledger.previous_response_id is not None and ledger.conversation_id is not None:
        raise _fail("previous_response_id", "and conversation_id are both set (exclusive)")
    for call_id in ledger.pending_call_ids:
        if call_id not in ledger.calls or call_id in ledger.answered_call_ids:
            raise _fail("pending_call_ids", f"names {call_id!r}, which is not an open call")


def load_state(state: Any) -> Ledger:
    """Validate a snapshot field by field and return its ledger (nothing built on failure)."""
    if not isinstance(state, Mapping):
        raise StateError(
            f"Invalid tracker state: expected a dict from Tracker.to_state(), got "
            f"{type(state).__name__}.",
            path="",
        )
    if state.get("format") != FORMAT:
        raise _fail("format", f"must be {FORMAT!r}, got {shown(state.get('format'))}")
    _check_version(state)
    version: int = state["version"]
    fields = [a for a in _FIELDS if a.metadata[_ADDED_IN] <= version]
    expected = {"format", "version"} | {a.name for a in fields}
    missing = sorted(expected - state.keys())
    if missing:
        raise _fail(missing[0], "is missing")
    unknown = sorted(map(str, state.keys() - expected))
    if unknown:
        raise _fail(unknown[0], f"is not a field of version {version}")
    ledger = Ledger(**{a.name: a.metadata["load"](a.name, state[a.name]) for a in fields})
    _check_consistent(ledger)
    return ledger
