"""The tracker: which items to send next, what was sent, what the server holds.

Theory of operation
-------------------
A Responses-API loop that continues on the server (``previous_response_id`` or a
``conversation``) must send, each turn, exactly the items the server does not hold yet. The
tracker remembers what the server holds under four keys, strongest first:

==================  ==========================================  ===============================
key                 remembered for                              survives ``to_state()``
==================  ==========================================  ===============================
provider item id    every item with an ``fc_``/``msg_``/``rs_``  yes
                    ... id (sent, or seen in a response)
output call_id      every tool output (``function_call_output``  yes
                    and the other ``*_output`` types)
call call_id        every tool call (with its item id, if any)  yes (the call_id -> id mapping)
held reference      every id-less, call-less item (messages     no: replaced by its content
                    typed by the user, ...), with its content   fingerprint, counted
                    fingerprint
==================  ==========================================  ===============================

``prepare(items)`` walks the items once and keeps those that match no key; it changes nothing.
``mark_sent(prepared)`` records the kept items; ``rewind(prepared)`` forgets them again when the
request failed, so the next ``prepare`` sends them once more; ``observe_response(response)``
records the response (its id continues the chain) and its output items, and settles every
marked request so it can no longer be rewound.

Id-less items are matched first by held reference and then, when the caller passes its whole
history (``content_match=True``, the default), by content: each fingerprint was sent some number
of times, and that many occurrences in ``items`` count as already sent, in order. That is what
makes a rebuilt or restored history dedupe correctly while a *new* message with the same text
as an old one is still sent. Tool outputs are never matched by content: they are keyed by their
call_id, so a fresh output can never be mistaken for an old one.

Every lookup is a dict or set operation: a turn costs O(len(items)), and O(len(delta)) when the
caller passes only the new items.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final, Literal

from ._delta_check import DeltaCheck, check_delta
from ._errors import ContinuationError, UsageError
from ._fingerprint import fingerprint
from ._identity import IdentityMap
from ._items import ItemInfo, field, is_async_call, read_item, to_plain
from ._prepared import Key, Prepared, describe, keys_of
from ._repair_actions import PLACEHOLDER, RepairAction, RepairPolicy
from ._snapshot import dump_state, load_state

__all__ = ["Prepared", "Tracker"]

_ID_CHARS: Final = re.compile(r"[A-Za-z0-9_-]+")

SkipReason = Literal["server_id", "answered_output", "known_call", "held_object", "content"]


def _check_id(value: str | None, name: str) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not _ID_CHARS.fullmatch(value) or len(value) > 128:
        raise ContinuationError(
            f"Invalid {name} {value!r}: expected an id made of letters, digits, '_' and '-' "
            f"(as returned by the API); pass the id string itself."
        )


class Tracker:
    """Decides, turn after turn, exactly which items a Responses request must carry.

    Continue either from a response chain (``previous_response_id``, advanced automatically to
    each observed response; ``None`` starts a new chain) or inside a conversation
    (``conversation_id``); the two are mutually exclusive. The tracker does no I/O and is not
    thread-safe: use one per conversation, or a store (``tracker.stores``) across workers.

    Every method either completes or raises leaving the tracker unchanged.
    """

    def __init__(
        self,
        *,
        previous_response_id: str | None = None,
        conversation_id: str | None = None,
        check: DeltaCheck = "raise",
        repair_policy: RepairPolicy = PLACEHOLDER,
    ) -> None:
        if check not in ("raise", "repair", "off"):
            raise UsageError(f"check must be 'raise', 'repair' or 'off', not {check!r}.")
        if previous_response_id is not None and conversation_id is not None:
            raise ContinuationError(
                f"previous_response_id {previous_response_id!r} and conversation_id "
                f"{conversation_id!r} are mutually exclusive (the API rejects both): pass one."
            )
        _check_id(previous_response_id, "previous_response_id")
        _check_id(conversation_id, "conversation_id")
        self._previous_response_id = previous_response_id
        self._conversation_id = conversation_id
        # Started the chain or conversation itself: then every call the server holds was
        # seen here, and an output for any other call_id is an error (P2), not a gap.
        self._whole_chain = previous_response_id is None and conversation_id is None
        self._check: DeltaCheck = check
        self._repair_policy: RepairPolicy = repair_policy
        self._server_ids: set[str] = set()
        self._answered: set[str] = set()
        self._calls: dict[str, str | None] = {}
        self._pending: dict[str, None] = {}  # calls without output, in arrival order
        # Every object sent or observed, with its keys: held, so its address is never reused.
        self._held: IdentityMap[tuple[Key, ...]] = IdentityMap()
        self._fp_counts: dict[str, int] = {}
        self._marked: dict[int, tuple[Prepared, tuple[Any, ...]]] = {}
        self._origin = object()
        self._responses = 0

    # ------------------------------------------------------------------ read-only views

    @property
    def previous_response_id(self) -> str | None:
        """The response the next request continues from (``None`` in conversation mode)."""
        return self._previous_response_id

    @property
    def conversation_id(self) -> str | None:
        """The conversation the requests run in, or ``None`` when chaining responses."""
        return self._conversation_id

    @property
    def pending_call_ids(self) -> tuple[str, ...]:
        """Call ids of tool calls the server holds (or was sent) that have no output yet.

        Calls to async tools (``async: true``) are not pending: the service lets them wait.
        """
        return tuple(self._pending)

    @property
    def responses_observed(self) -> int:
        """How many responses this tracker (and the ones it was restored from) observed."""
        return self._responses

    def item_id_for_call(self, call_id: str) -> str | None:
        """The provider item id (``fc_...``) of the call with ``call_id``, if known."""
        return self._calls.get(call_id)

    def holds(self, item: Any) -> bool:
        """Whether the server is known to hold ``item`` (by id, call id or held reference)."""
        return item in self._held or self._known_reason(keys_of(read_item(item))) is not None

    # ------------------------------------------------------------------ deciding

    def _known_reason(self, item_keys: tuple[Key, ...]) -> SkipReason | None:
        for kind, value in item_keys:  # known under any key: the server holds it
            if kind == "id" and value in self._server_ids:
                return "server_id"
            if kind == "out" and value in self._answered:
                return "answered_output"
            if kind == "call" and value in self._calls:
                return "known_call"
        return None

    def prepare(self, items: Iterable[Any] | str, *, content_match: bool = True) -> Prepared:
        """Return the delta of ``items`` that the server does not hold yet. Changes nothing.

        ``items`` is the turn's item list: the whole history, or only the new items (a string
        is one user message). Items with a provider id, tool outputs and tool calls are matched
        by id and call_id; other items by held reference and, with ``content_match`` (pass the
        whole history), by content fingerprint. Pass ``content_match=False`` when ``items``
        holds only new items, so a message repeating an earlier one word for word is sent.

        Raises ``ItemError`` (naming the index) for an item that is not a Responses item, and
        ``HistoryError`` when the delta breaks the tool-call rules under ``check="raise"``.
        """
        seq: list[Any] = (
            [{"role": "user", "content": items}] if isinstance(items, str) else list(items)
        )
        # Pass 1, one identity lookup per item: objects this tracker sent or observed are
        # known without being read. Held id-less objects claim their fingerprint occurrences
        # first, wherever they stand, so a rebuilt copy elsewhere only matches what remains.
        held = self._held
        used: dict[str, int] = {}
        unknown: list[tuple[int, Any]] = []
        for index, item in enumerate(seq):
            held_keys = held.get(item)
            if held_keys is None:
                unknown.append((index, item))
            elif held_keys[0][0] == "anon":
                fp = held_keys[0][1]
                used[fp] = used.get(fp, 0) + 1
        reasons: dict[str, int] = {}
        if len(unknown) < len(seq):
            reasons["held_object"] = len(seq) - len(unknown)

        # Pass 2, over the rest only: read, match by id / call_id / counted fingerprint.
        send: list[Any] = []
        keys: list[tuple[Key, ...]] = []
        batch_keys: set[Key] = set()
        batch_objs: IdentityMap[None] = IdentityMap()
        for index, item in unknown:
            item_keys = keys_of(read_item(item, index))
            reason = self._known_reason(item_keys)
            if not item_keys:
                fp = fingerprint(to_plain(item, index))
                if content_match and self._fp_counts.get(fp, 0) > used.get(fp, 0):
                    used[fp] = used.get(fp, 0) + 1
                    reason = "content"
                item_keys = (("anon", fp),)
            if reason is not None:
                reasons[reason] = reasons.get(reason, 0) + 1
                continue
            if item in batch_objs or any(k in batch_keys for k in item_keys if k[0] != "anon"):
                reasons["duplicate_in_input"] = reasons.get("duplicate_in_input", 0) + 1
                continue
            batch_objs.set(item, None)
            batch_keys.update(item_keys)
            send.append(item)
            keys.append(item_keys)

        repairs: tuple[RepairAction, ...] = ()
        if self._check != "off" and not self._clearly_valid(send, keys):
            checked, repairs = check_delta(
                send,
                pending_call_ids=tuple(self._pending),
                known_call_ids=self._calls if self._whole_chain else None,
                answered_call_ids=self._answered,
                mode=self._check,
                policy=self._repair_policy,
            )
            if repairs:
                key_of: IdentityMap[tuple[Key, ...]] = IdentityMap()
                for item, item_keys in zip(send, keys, strict=True):
                    key_of.set(item, item_keys)
                keys = [key_of.get(item) or keys_of(read_item(item)) for item in checked]
                send = checked

        return Prepared(
            input=tuple(send),
            previous_response_id=(
                None if self._conversation_id is not None else self._previous_response_id
            ),
            conversation_id=self._conversation_id,
            skipped=len(seq) - len(send),
            skip_reasons=reasons,
            repairs=repairs,
            keys=tuple(keys),
            origin=self._origin,
        )

    def _clearly_valid(self, send: list[Any], keys: list[tuple[Key, ...]]) -> bool:
        """True only when the delta surely passes the tool-call rules (the common turn).

        Every call in the delta is answered after it, every pending call is answered, and
        every output answers one of those. Anything else goes to the full check, which
        decides (and words the error) exactly as the service would.
        """
        open_calls: set[str] = set()
        answered_pending = 0
        for item, item_keys in zip(send, keys, strict=True):
            for kind, value in item_keys:
                if kind == "call" and not is_async_call(item):
                    open_calls.add(value)
                elif kind == "out":
                    if value in open_calls:
                        open_calls.discard(value)
                    elif value in self._pending:
                        answered_pending += 1
                    else:
                        return False
        return not open_calls and answered_pending == len(self._pending)

    # ------------------------------------------------------------------ recording

    def mark_sent(self, prepared: Prepared) -> None:
        """Record ``prepared``'s items as delivered, so no later ``prepare`` sends them again.

        Raises ``UsageError`` (tracker unchanged) if ``prepared`` came from another tracker,
        was already marked, or one of its items was meanwhile marked by another request.
        """
        self._check_origin(prepared, "mark_sent")
        serial = id(prepared)
        entry = self._marked.get(serial)
        if entry is not None and entry[0] is prepared:
            raise UsageError(
                "This request was already marked sent; rewind(prepared) first if it failed, "
                "or prepare() the next turn."
            )
        for item, item_keys in zip(prepared.input, prepared._keys, strict=True):
            if self._is_recorded(item, item_keys):
                raise UsageError(
                    f"Item {describe(item)} was marked sent by another request after this one "
                    "was prepared: call prepare() again to get a fresh delta."
                )
        for item, item_keys in zip(prepared.input, prepared._keys, strict=True):
            self._record(item, item_keys)
        self._marked[serial] = (prepared, prepared.input)

    def rewind(self, prepared: Prepared) -> None:
        """Forget ``prepared``'s items because its request failed; they will be sent again once.

        Raises ``UsageError`` (tracker unchanged) if ``prepared`` was not marked sent, or a
        response was observed since (its items are then held by the server).
        """
        self._check_origin(prepared, "rewind")
        entry = self._marked.get(id(prepared))
        if entry is None or entry[0] is not prepared:
            raise UsageError(
                "Cannot rewind a request that is not marked sent (or that a response already "
                "answered): only rewind after mark_sent() when the request itself failed."
            )
        del self._marked[id(prepared)]
        for item, item_keys in zip(prepared.input, prepared._keys, strict=True):
            self._unrecord(item, item_keys)

    def observe_response(self, response: Any) -> None:
        """Record a response: its output items are held by the server, its id continues.

        Accepts an SDK ``Response`` or its dict form. Every request marked sent before it is
        settled (can no longer be rewound). Raises ``ContinuationError`` (tracker unchanged)
        for a response from another conversation, or one created with ``store=False`` (it
        cannot be continued).
        """
        response_id = field(response, "id")
        output = field(response, "output")
        if output is None:
            output = []
        if not isinstance(response_id, str | None) or isinstance(output, str | bytes):
            raise UsageError(
                f"observe_response() takes a Responses API response; got {type(response).__name__}."
            )
        observed = self._observation(list(output))
        conv = field(response, "conversation")
        conv_id = field(conv, "id") if conv is not None and not isinstance(conv, str) else conv
        if self._conversation_id is not None and conv_id not in (None, self._conversation_id):
            raise ContinuationError(
                f"Response {response_id} belongs to conversation {conv_id!r}, not to this "
                f"tracker's {self._conversation_id!r}: use one tracker per conversation."
            )
        if field(response, "store") is False and self._conversation_id is None:
            raise ContinuationError(
                f"Response {response_id} was created with store=False and cannot be continued "
                "with previous_response_id: create it with store=True (the default)."
            )
        for item, info, keys in observed:
            self._observe_item(item, info, keys)
        if self._conversation_id is None and response_id:
            self._previous_response_id = response_id
        self._responses += 1
        self._marked.clear()

    def observe_items(self, items: Iterable[Any]) -> None:
        """Record items the server is known to hold (for example a conversation's items).

        Does not change the continuation. Raises ``ItemError`` (tracker unchanged) for an
        unreadable item.
        """
        for item, info, keys in self._observation(list(items)):
            self._observe_item(item, info, keys)

    # ------------------------------------------------------------------ internals

    def _observation(self, items: list[Any]) -> list[tuple[Any, ItemInfo, tuple[Key, ...]]]:
        """Read every item and compute its keys before anything is recorded (all or nothing)."""
        observed = []
        for index, item in enumerate(items):
            info = read_item(item, index)
            keys = keys_of(info)
            if not keys and item not in self._held:
                keys = (("anon", fingerprint(to_plain(item, index))),)
            observed.append((item, info, keys))
        return observed

    def _observe_item(self, item: Any, info: ItemInfo, keys: tuple[Key, ...]) -> None:
        if item in self._held:
            return
        if keys[0][0] == "anon":
            self._record(item, keys)
            return
        for kind, value in keys:
            if kind == "id":
                self._server_ids.add(value)
            elif kind == "out":
                self._answered.add(value)
                self._pending.pop(value, None)
            elif self._calls.get(value) is None:
                self._calls[value] = info.id
                if value not in self._answered and not is_async_call(item):
                    self._pending.setdefault(value, None)
        self._held.set(item, keys)

    def _is_recorded(self, item: Any, item_keys: tuple[Key, ...]) -> bool:
        if item in self._held:
            return True
        return item_keys[0][0] != "anon" and self._known_reason(item_keys) is not None

    def _record(self, item: Any, item_keys: tuple[Key, ...]) -> None:
        info_id = next((v for k, v in item_keys if k == "id"), None)
        for kind, value in item_keys:
            if kind == "id":
                self._server_ids.add(value)
            elif kind == "out":
                self._answered.add(value)
                self._pending.pop(value, None)
            elif kind == "call":
                self._calls[value] = info_id
                if value not in self._answered and not is_async_call(item):
                    self._pending.setdefault(value, None)
            else:
                self._fp_counts[value] = self._fp_counts.get(value, 0) + 1
        self._held.set(item, item_keys)

    def _unrecord(self, item: Any, item_keys: tuple[Key, ...]) -> None:
        self._held.pop(item)
        for kind, value in item_keys:
            if kind == "id":
                self._server_ids.discard(value)
            elif kind == "out":
                self._answered.discard(value)
                if value in self._calls:
                    self._pending.setdefault(value, None)
            elif kind == "call":
                self._calls.pop(value, None)
                self._pending.pop(value, None)
            else:
                left = self._fp_counts.get(value, 0) - 1
                if left > 0:
                    self._fp_counts[value] = left
                else:
                    self._fp_counts.pop(value, None)

    def _check_origin(self, prepared: Prepared, method: str) -> None:
        if not isinstance(prepared, Prepared):
            raise UsageError(
                f"{method}() takes the Prepared returned by prepare(); got "
                f"{type(prepared).__name__}."
            )
        if prepared._origin is not self._origin:
            raise UsageError(
                f"{method}(): this Prepared was made by another tracker (or before a restore); "
                "call prepare() on this tracker."
            )

    # ------------------------------------------------------------------ state

    def to_state(self) -> dict[str, Any]:
        """A JSON-safe, versioned snapshot; ``Tracker.from_state`` restores it anywhere.

        Held references are process-local: the snapshot keeps their content fingerprints
        instead, so a restored tracker recognises the same items when they are rebuilt.
        Requests marked sent but not yet answered by an observed response are left out: the
        snapshot stays consistent with its ``previous_response_id``, and a tracker restored
        from it sends those items again (never a dropped output, never a 400).
        """
        if not self._marked:
            return dump_state(self)
        settled = Tracker(check="off")
        settled._previous_response_id = self._previous_response_id
        settled._conversation_id = self._conversation_id
        settled._server_ids = set(self._server_ids)
        settled._answered = set(self._answered)
        settled._calls = dict(self._calls)
        settled._pending = dict(self._pending)
        settled._fp_counts = dict(self._fp_counts)
        settled._responses = self._responses
        settled._whole_chain = self._whole_chain
        for prepared, _ in self._marked.values():
            for item, item_keys in zip(prepared.input, prepared._keys, strict=True):
                settled._unrecord(item, item_keys)
        return dump_state(settled)

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        *,
        check: DeltaCheck = "raise",
        repair_policy: RepairPolicy = PLACEHOLDER,
    ) -> Tracker:
        """Restore a tracker from ``to_state()`` output (possibly from another process).

        ``check`` and ``repair_policy`` are settings, not state: give them as to ``Tracker``.
        Raises ``StateVersionError`` for an unknown or newer format version and ``StateError``
        naming the malformed field otherwise; nothing is half-restored.
        """
        return load_state(cls, state, check=check, repair_policy=repair_policy)
