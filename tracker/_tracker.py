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

Id-less items are matched first by held reference, counted: an object sent M times and
occurring N times in ``items`` (a constant message reused as a later turn) is sent N - M more
times. Then, when the caller passes its whole history (``content_match=True``, the default), by
content: each fingerprint was sent some number of times, and that many occurrences in ``items``
count as already sent, in order. That is what makes a rebuilt or restored history dedupe
correctly while a *new* message with the same text as an old one is still sent. Tool outputs
are never matched by content: they are keyed by their call_id, so a fresh output can never be
mistaken for an old one.

Only those id-less objects (and ``compaction_trigger``s) are held: an item with a provider id
or a call_id is matched by that string, as a restored tracker matches it, so its object is
released as soon as the caller drops it, and a fresh object born at its address is a stranger
(never a bare ``id()``). A long-lived tracker thus keeps alive what it needs and no more:
within 2x of a tracker restored from its snapshot (``benchmarks/bench_memory.py``). In
stateless mode the transcript keeps its own wire-form copies, never the caller's objects.

Every lookup is a dict or set operation: a turn costs O(len(items)), and O(len(delta)) when the
caller passes only the new items. A whole history is walked once, each item looked up by
identity or by the id / call_id read straight off it (``known_dict``, ``known_object``).

Compaction
----------
A ``compaction`` item (``cmp_...``) is kept like any server item, by id, and is a boundary:
the server summarised everything before it. When one is observed, every call still pending is
*compacted*: never pending again, and an output for it is never sent (it would be ``No tool
call found``): ``check="raise"`` raises ``CompactedCallError`` naming the calls,
``check="repair"`` drops them and reports each in ``Prepared.repairs``. A compaction is refused
(``CompactionError``, naming the calls) while calls are pending: ``prepare(..., compact=True)``
(a ``compaction_trigger``, which must be the final input item) and ``prepare_compact`` (a
standalone ``responses.compact``). A standalone compaction's response cannot be continued, so
observing it starts a new chain: the next request carries its window (the user messages and
the compaction item) with no ``previous_response_id``. A conversation takes no standalone
compaction (the endpoint has no ``conversation`` parameter): use server-side compaction there.
In stateless mode the transcript keeps only what follows the latest compaction item, and a
standalone compaction's window replaces it (``_transcript``; ``RuleOptions.
replay_before_compaction`` keeps the whole history instead).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from ._delta_check import DeltaCheck
from ._delta_select import (
    TRIGGER_KEYS,
    Held,
    Keys,
    checked_delta,
    drop_compacted_outputs,
    needs_identity,
    refuse_pending,
    select,
    skip_held,
    split_triggers,
)
from ._edits import ON_EDIT, HeldHistory, OnEdit, edited_error, regroup
from ._errors import (
    ContinuationError,
    UsageError,
    shown,
)
from ._fingerprint import content_key
from ._identity import IdentityMap
from ._items import COMPACTION, COMPACTION_TRIGGER, field, read_item
from ._prepared import (
    Prepared,
    SkipReason,
    anon_key,
    describe,
    keys_of,
)
from ._repair_actions import PLACEHOLDER, RepairPolicy
from ._responses import COMPACTED_OBJECT, window_of
from ._rules import RuleOptions
from ._snapshot import Ledger, check_id, load_state
from ._tracker_observe import check_continuation, check_origin, response_id_of, strip_window
from ._tracker_state import snapshot, state_changes, state_mark
from ._transcript import Transcript, chain_transcript

__all__ = ["Prepared", "Tracker"]


def _item_list(items: Any, method: str) -> list[Any]:
    """``items`` as a list; ``UsageError`` if it is not an iterable of items."""
    if type(items) is list:
        return list(items)
    if isinstance(items, str | bytes | bytearray | Mapping) or not isinstance(items, Iterable):
        raise UsageError(
            f"{method}() takes a list of items; got {type(items).__name__} (wrap a single item "
            "in a list; pass a response to observe_response())."
        )
    return list(items)


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
        store: bool = True,
        rules: RuleOptions | None = None,
        on_edit: OnEdit = "restart",
    ) -> None:
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
        self._check: DeltaCheck = check
        self._repair_policy: RepairPolicy = repair_policy
        # Everything a snapshot keeps; the rest below is process-local.
        self._ledger = Ledger(
            previous_response_id=previous_response_id,
            conversation_id=conversation_id,
            whole_chain=previous_response_id is None and conversation_id is None,
        )
        # Every id-less object sent or observed (the only ones matched by identity), with its
        # count: held, so its address is never reused. Keyed items are matched by the ledger.
        self._held: IdentityMap[Held] = IdentityMap()
        self._marked: dict[int, Prepared] = {}  # requests marked sent, not yet answered
        self._serial = 0  # bumped by every change, so mark_sent sees what changed since prepare
        self._origin = object()
        self._rules = rules
        # Stateless mode (store=False): the items every request replays.
        self._transcript = None if store else Transcript(options=rules)
        # The caller's last whole history (edits behind the chain), and restarts in flight.
        self._on_edit: OnEdit = on_edit
        self._history = HeldHistory()
        self._restarts: dict[int, tuple[Ledger, IdentityMap[Held], Transcript | None]] = {}

    # ------------------------------------------------------------------ read-only views

    @property
    def previous_response_id(self) -> str | None:
        """The response the next request continues from (``None`` in conversation mode)."""
        return self._ledger.previous_response_id

    @property
    def conversation_id(self) -> str | None:
        """The conversation the requests run in, or ``None`` when chaining responses."""
        return self._ledger.conversation_id

    @property
    def pending_call_ids(self) -> tuple[str, ...]:
        """Call ids of tool calls the server holds (or was sent) that have no output yet.

        Calls to async tools (``async: true``) are not pending: the service lets them wait.
        """
        return tuple(self._ledger.pending_call_ids)

    @property
    def last_compaction_id(self) -> str | None:
        """The id of the latest compaction item observed (the boundary), if any."""
        return self._ledger.last_compaction_id

    @property
    def responses_observed(self) -> int:
        """How many responses this tracker (and the ones it was restored from) observed."""
        return self._ledger.responses_observed

    def item_id_for_call(self, call_id: str) -> str | None:
        """The provider item id (``fc_...``) of the call with ``call_id``, if known."""
        return self._ledger.calls.get(call_id)

    def holds(self, item: Any) -> bool:
        """Whether the server is known to hold ``item`` (by id, call id or held reference)."""
        return item in self._held or self._ledger.knows(keys_of(read_item(item))) is not None

    # ------------------------------------------------------------------ deciding

    def prepare(
        self, items: Iterable[Any] | str, *, content_match: bool = True, compact: bool = False
    ) -> Prepared:
        """Return the delta of ``items`` that the server does not hold yet. Changes nothing.

        ``items`` is the turn's item list: the whole history, or only the new items (a string
        is one user message). Items with a provider id, tool outputs and tool calls are matched
        by id and call_id; other items by held reference (an object occurring more often than
        it was sent is sent again) and, with ``content_match`` (pass the whole history), by
        content fingerprint. Pass ``content_match=False`` when ``items`` holds only new items,
        so a message repeating an earlier one word for word is sent.

        ``compact=True`` ends the request with a ``compaction_trigger`` (the server compacts
        now); a trigger that is the final item of ``items`` does the same, and one anywhere
        else is from an earlier turn and is left out. A standalone compaction's window, when
        one is waiting, is put first (a new chain: no ``previous_response_id``).

        Raises ``ItemError`` (naming the index) for an item that is not a Responses item or
        whose content cannot be serialised, ``UsageError`` when ``items`` is not a list,
        ``HistoryError`` when the delta breaks the tool-call rules under ``check="raise"``
        (``CompactedCallError`` for an output whose call a compaction summarised), and
        ``CompactionError`` naming the calls when a compaction is asked for while any is
        pending.
        """
        seq: list[Any] = (
            [{"role": "user", "content": items}]
            if isinstance(items, str)
            else _item_list(items, "prepare")
        )
        return self._decide(seq, content_match=content_match, compact=compact, standalone=False)

    def prepare_compact(
        self, items: Iterable[Any] | str = (), *, content_match: bool = True
    ) -> Prepared:
        """Prepare a standalone compaction (``client.responses.compact``). Changes nothing.

        ``items`` are as for ``prepare`` (what the server lacks is added to the chain being
        compacted); pass ``prepared.request_kwargs()`` (plus ``model``) to
        ``responses.compact``, ``mark_sent`` it, and ``observe_response`` its result: the next
        request then starts a new chain carrying the compacted window. Raises
        ``CompactionError`` naming the calls while any is pending, ``UsageError`` in a
        conversation (the endpoint takes no ``conversation``: use ``context_management``
        there) or when there is nothing to compact.
        """
        if self._ledger.conversation_id is not None:
            raise UsageError(
                f"Cannot compact conversation {self._ledger.conversation_id} with "
                "responses.compact (it takes no conversation): pass context_management="
                "[{'type': 'compaction', 'compact_threshold': N}] to responses.create, or "
                "prepare(items, compact=True) to send a compaction_trigger."
            )
        seq = (
            [{"role": "user", "content": items}]
            if isinstance(items, str)
            else (_item_list(items, "prepare_compact"))
        )
        prepared = self._decide(seq, content_match=content_match, compact=True, standalone=True)
        if not prepared.input and prepared.previous_response_id is None:
            raise UsageError(
                "Nothing to compact: no response observed yet and no new items; run a turn first."
            )
        return prepared

    def _decide(
        self, items: list[Any], *, content_match: bool, compact: bool, standalone: bool
    ) -> Prepared:
        """``_build``, after checking a whole history for edits behind the chain (``_edits``)."""
        if not content_match:
            return self._build(items, content_match=False, compact=compact, standalone=standalone)
        verdict = self._history.check(items)
        if verdict.edit is None:
            prepared = self._build(
                items, content_match=True, compact=compact, standalone=standalone
            )
            return attrs.evolve(prepared, plan=(items, verdict)) if verdict.whole else prepared
        if self._on_edit == "raise" or self._ledger.conversation_id is not None:
            raise edited_error(verdict.edit, conversation_id=self._ledger.conversation_id)
        sent, dropped = regroup(items, self._history.following(), self._check)
        prepared = self._fresh()._build(
            sent, content_match=True, compact=compact, standalone=standalone
        )
        repairs = (*dropped, *prepared.repairs)
        return attrs.evolve(
            prepared, plan=(items, verdict), restarted=verdict.edit, repairs=repairs
        )

    def _fresh(self) -> Tracker:
        """A tracker with no chain, this one's settings, origin and serial: a restart's build."""
        fresh = Tracker(check=self._check, repair_policy=self._repair_policy, rules=self._rules)
        if self._transcript is not None:
            key = self._transcript.prompt_cache_key
            fresh._transcript = Transcript(options=self._rules, prompt_cache_key=key)
        fresh._ledger.responses_observed = self._ledger.responses_observed
        fresh._origin, fresh._serial = self._origin, self._serial
        return fresh

    def _build(
        self, items: list[Any], *, content_match: bool, compact: bool, standalone: bool
    ) -> Prepared:
        """The delta of ``items``; ``compact``: refuse pending calls and (unless
        ``standalone``) end with a ``compaction_trigger``."""
        seq, trigger = split_triggers(items)
        used: dict[str, int] = {}  # fingerprint -> occurrences in seq counted as already sent
        reasons: dict[SkipReason, int] = {}
        old_triggers = len(items) - len(seq) - (trigger is not None)
        if old_triggers:
            reasons["old_trigger"] = old_triggers
        unknown = skip_held(self._held, self._ledger, seq, used, reasons)
        send, keys = select(self._ledger, unknown, used, reasons, content_match=content_match)
        send, keys, dropped = drop_compacted_outputs(self._ledger, self._check, send, keys)
        if trigger is not None and (
            trigger in self._held or self._ledger.knows(keys_of(read_item(trigger)))
        ):
            reasons["held_object"] = reasons.get("held_object", 0) + 1
            trigger = None
        if compact or trigger is not None:  # refused before the pairing check words it
            what = "a standalone compaction" if standalone else "a compaction_trigger"
            refuse_pending(self._ledger, send, keys, what)
        send, keys, repairs = checked_delta(
            self._ledger, self._check, self._repair_policy, send, keys
        )
        skipped = len(items) - len(send) - (trigger is not None)
        if (compact or trigger is not None) and not standalone:
            send.append({"type": COMPACTION_TRIGGER} if trigger is None else trigger)
            keys.append(TRIGGER_KEYS)
        ledger = self._ledger
        window = ledger.window if ledger.conversation_id is None else None
        if window:
            send = [*window, *send]
            keys = [(("window", str(i)),) for i in range(len(window))] + keys
        chained = ledger.conversation_id is None and not window
        full = tuple(send) if self._transcript is None else self._transcript.replay(send)
        return Prepared(
            input=full,
            replayed=len(full) - len(send),
            previous_response_id=ledger.previous_response_id if chained else None,
            conversation_id=ledger.conversation_id,
            skipped=max(0, skipped),
            skip_reasons=reasons,
            repairs=(*dropped, *repairs),
            keys=tuple(keys),
            origin=self._origin,
            serial=self._serial,
            compact=standalone,
            carries_window=bool(window),
        )

    # ------------------------------------------------------------------ recording

    def mark_sent(self, prepared: Prepared) -> None:
        """Record ``prepared``'s items as delivered, so no later ``prepare`` sends them again.

        Raises ``UsageError`` (tracker unchanged) if ``prepared`` came from another tracker,
        was already marked, or one of its items was meanwhile marked by another request.
        """
        check_origin(prepared, self._origin, "mark_sent")
        if self._marked.get(id(prepared)) is prepared:
            raise UsageError(
                "This request was already marked sent; rewind(prepared) first if it failed, "
                "or prepare() the next turn."
            )
        if prepared.restarted is not None:
            self._restart(prepared)
        for item, item_keys in zip(prepared.delta, prepared._keys, strict=True):
            if self._recorded_since(item, item_keys, prepared._serial):
                raise UsageError(
                    f"Item {describe(item)} was marked sent by another request after this one "
                    "was prepared: call prepare() again to get a fresh delta."
                )
        self._serial += 1
        for item, item_keys in zip(prepared.delta, prepared._keys, strict=True):
            self._record(item, item_keys)
        if self._transcript is not None:
            self._transcript.mark(id(prepared), prepared.delta)
        self._marked[id(prepared)] = prepared  # held, so its id() is not reused meanwhile

    def rewind(self, prepared: Prepared) -> None:
        """Forget ``prepared``'s items because its request failed; they will be sent again once.

        Raises ``UsageError`` (tracker unchanged) if ``prepared`` was not marked sent, or a
        response was observed since (its items are then held by the server).
        """
        check_origin(prepared, self._origin, "rewind")
        if self._marked.get(id(prepared)) is not prepared:
            raise UsageError(
                "Cannot rewind a request that is not marked sent (or that a response already "
                "answered): only rewind after mark_sent() when the request itself failed."
            )
        del self._marked[id(prepared)]
        self._serial += 1
        for item, item_keys in zip(prepared.delta, prepared._keys, strict=True):
            self._unrecord(item, item_keys)
        if self._transcript is not None:
            self._transcript.unmark(id(prepared))
        undo = self._restarts.pop(id(prepared), None)
        if undo is not None:  # the restarted chain never started: back to the old one
            self._ledger, self._held, self._transcript = undo

    def observe_response(self, response: Any) -> None:
        """Record a response: its output items are held by the server, its id continues.

        Accepts an SDK ``Response`` or its dict form (with ``id`` and an ``output`` list).
        Every request marked sent before it is settled (can no longer be rewound). Raises
        ``UsageError`` for anything else (an un-awaited coroutine, a stream, an exception, a
        list: the message says what to pass), ``ContinuationError`` for a malformed response
        id, a response from another conversation, or one created with ``store=False`` (it
        cannot be continued), and ``ItemError`` for an unreadable output item; the tracker is
        then unchanged.
        """
        response_id = response_id_of(response)
        if field(response, "object") == COMPACTED_OBJECT:
            self._observe_compacted(response)
            return
        observed = self._observation(list(field(response, "output")))
        ledger = self._ledger
        check_continuation(response, response_id, ledger, stateless=self._transcript is not None)
        self._observe(observed)
        if self._transcript is not None:
            self._transcript.observe([item for item, _ in observed])
        elif ledger.conversation_id is None and response_id:
            ledger.previous_response_id = response_id
        ledger.responses_observed += 1
        if any(p.carries_window for p in self._marked.values()):
            ledger.window = None  # the new chain now holds it
        self._settle()

    def _observe_compacted(self, response: Any) -> None:
        """A ``responses.compact`` result: its window starts the next chain."""
        ledger = self._ledger
        if ledger.conversation_id is not None:
            raise UsageError(
                f"Compacted response {field(response, 'id')} cannot continue conversation "
                f"{ledger.conversation_id}: responses.compact takes no conversation; use "
                "server-side compaction (context_management) in a conversation."
            )
        window = window_of(response)
        observed = self._observation(window)
        self._serial += 1
        for item, keys in observed:
            if keys[0][0] != "anon":  # an id-less user message is the window's, not held
                self._ledger.add(keys, item)
        ledger.compact(field(window[-1], "id"))
        ledger.window = window
        transcript = self._transcript
        if transcript is not None and not (self._rules or RuleOptions()).replay_before_compaction:
            transcript.replace(window)  # the window stands for the whole transcript
            ledger.window = None
        ledger.previous_response_id = None  # a compacted response id cannot be continued
        self._settle()

    def _restart(self, prepared: Prepared) -> None:
        """Start the new chain ``prepared`` restarts (edited history); ``rewind`` undoes it."""
        if self._marked or prepared._serial != self._serial:
            raise UsageError(
                f"This request restarts the chain (history edited at {prepared.restarted}), but "
                "the tracker changed since it was prepared or another request is in flight: "
                "observe or rewind that request, then prepare() again."
            )
        self._restarts[id(prepared)] = (self._ledger, self._held, self._transcript)
        fresh = self._fresh()
        self._ledger, self._held, self._transcript = fresh._ledger, fresh._held, fresh._transcript

    def _settle(self) -> None:
        """A response answered every request in flight: adopt the last whole history sent."""
        plans = [p._plan for p in self._marked.values() if p._plan is not None]
        if plans:
            items, verdict = plans[-1]
            self._history = self._history.adopted(items, verdict)
        self._marked.clear()
        self._restarts.clear()

    def observe_items(self, items: Iterable[Any]) -> None:
        """Record items the server is known to hold (for example a conversation's items).

        Does not change the continuation. Raises ``ItemError`` (tracker unchanged) for an
        unreadable item, ``UsageError`` when ``items`` is not a list of items.
        """
        self._observe(self._observation(_item_list(items, "observe_items")))

    def strip_encrypted(self, item_ids: Iterable[str] | None = None) -> tuple[str, ...]:
        """Stop sending reasoning/compaction items whose encrypted content the service refuses.

        The fix for a 400 ``invalid_encrypted_content`` (a key rotation, an item from another
        organisation): the items this tracker carries inline are left out of every later
        request: a stateless transcript's (the output emitted right after a dropped reasoning
        item loses its id, so no A2/A3) and a standalone compaction's waiting window (the next
        request then carries the window's user messages only). ``item_ids`` names them;
        ``None`` drops every such item carrying ``encrypted_content``. Returns the ids dropped:
        empty when none is carried inline, since what a chain or conversation holds on the
        server cannot be taken back by the client. What a dropped item summarised is lost to
        the model. Raises ``UsageError`` (tracker unchanged) with a request in flight.
        """
        if self._marked:
            raise UsageError(
                "strip_encrypted() with a request in flight: rewind(prepared) the failed "
                "request (or observe its response) first."
            )
        wanted = None if item_ids is None else set(item_ids)
        dropped: list[str] = []
        if self._transcript is not None:
            dropped.extend(self._transcript.strip_encrypted(wanted))
        dropped.extend(strip_window(self._ledger, wanted))
        if dropped:
            self._serial += 1
        return tuple(dropped)

    # ------------------------------------------------------------------ internals

    def _observation(self, items: list[Any]) -> list[tuple[Any, Keys]]:
        """Read every item and compute its keys before anything is recorded (all or nothing)."""
        observed = []
        for index, item in enumerate(items):
            keys = keys_of(read_item(item, index))
            if not keys and item not in self._held:
                keys = anon_key(content_key(item, index))
            observed.append((item, keys))
        return observed

    def _observe(self, observed: list[tuple[Any, Keys]]) -> None:
        self._serial += 1
        for item, keys in observed:
            if item not in self._held:  # an object already held was counted when recorded
                self._record(item, keys)
            if field(item, "type") == COMPACTION:  # a boundary: calls before it are summarised
                self._ledger.compact(read_item(item).id)

    def _recorded_since(self, item: Any, item_keys: Keys, serial: int) -> bool:
        """Whether ``item`` was recorded after the request was prepared (at ``serial``)."""
        entry = self._held.get(item)
        if entry is not None and entry.serial > serial:
            return True
        return self._ledger.knows(item_keys) is not None

    def _record(self, item: Any, item_keys: Keys) -> None:
        self._ledger.add(item_keys, item)
        if not needs_identity(item_keys):
            return  # matched by its id or call_id from now on: its object is not kept
        entry = self._held.get(item)
        if entry is None:
            self._held.set(item, Held(item_keys, self._serial))
        else:
            entry.times += 1
            entry.serial = self._serial

    def _unrecord(self, item: Any, item_keys: Keys) -> None:
        self._ledger.remove(item_keys)
        entry = self._held.get(item)
        if entry is not None:
            entry.times -= 1
            if entry.times < 1:
                self._held.pop(item)

    # ------------------------------------------------------------------ state

    def to_state(self) -> dict[str, Any]:
        """A JSON-safe, versioned snapshot; ``Tracker.from_state`` restores it anywhere.

        Held references are process-local: the snapshot keeps their content fingerprints
        instead, so a restored tracker recognises the same items when they are rebuilt.
        Requests marked sent but not yet answered by an observed response are left out: the
        snapshot stays consistent with its ``previous_response_id``, and a tracker restored
        from it sends those items again (never a dropped output, never a 400).
        """
        return snapshot(self._ledger, self._marked.values(), self._history, self._transcript)

    def _mark_state(self) -> object:
        """For ``tracker.stores``: a mark of the state as ``to_state()`` gives it now
        (``None`` while requests are in flight: ``to_state()`` then leaves out what the
        ledger already holds)."""
        return state_mark(self._ledger, bool(self._marked), self._transcript)

    def _state_changes(self, mark: object) -> dict[str, Any] | None:
        """For ``tracker.stores``: what changed in ``to_state()`` since ``mark``, in the time
        the changes take (see ``Ledger.changes``; a stateless tracker's ``"transcript"`` is
        ``Transcript.saved_changes``: the items appended, or the whole transcript after a
        trim), or ``None`` when not known (another mark since, a rewind, or requests in
        flight, which ``to_state()`` leaves out)."""
        if self._marked:
            return None
        return state_changes(self._ledger, self._history, self._transcript, mark)

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        *,
        check: DeltaCheck = "raise",
        repair_policy: RepairPolicy = PLACEHOLDER,
        rules: RuleOptions | None = None,
        on_edit: OnEdit = "restart",
    ) -> Tracker:
        """Restore a tracker from ``to_state()`` output (possibly from another process).

        ``check``, ``repair_policy``, ``rules`` and ``on_edit`` are settings, not state: give
        them as to ``Tracker``. A stateless tracker's snapshot carries its transcript. Raises
        ``StateVersionError`` for an unknown or newer format version and ``StateError`` naming
        the malformed field otherwise; nothing is half-restored.
        """
        plain = dict(state) if isinstance(state, Mapping) else state
        transcript = plain.pop("transcript", None) if isinstance(plain, dict) else None
        ledger = load_state(plain)
        tracker = cls(check=check, repair_policy=repair_policy, rules=rules, on_edit=on_edit)
        tracker._history = HeldHistory(fps=ledger.history)
        ledger.history = []  # kept by tracker._history from now on
        tracker._ledger = ledger
        if transcript is not None:
            tracker._transcript = Transcript.load(transcript, rules)
        return tracker

    # ------------------------------------------------------------------ stateless mode

    @property
    def store(self) -> bool:
        """``False`` in stateless mode: every request replays the transcript, store=False."""
        return self._transcript is None

    @property
    def transcript(self) -> tuple[dict[str, Any], ...]:
        """Stateless mode: the items replayed before the next delta (empty in chain mode)."""
        return () if self._transcript is None else self._transcript.items

    @property
    def prompt_cache_key(self) -> str | None:
        """Stateless mode: a stable per-session ``prompt_cache_key`` (kept by snapshots)."""
        return None if self._transcript is None else self._transcript.prompt_cache_key

    def go_stateless(self, history: Iterable[Any] | None = None) -> None:
        """Continue this chain statelessly (store=False), e.g. after a ZDR migration.

        ``history`` is every item the chain holds, in order (its inputs and outputs: your
        whole-history list, or for each response of the chain
        ``client.responses.input_items.list(id)`` followed by its output). Raises
        ``TranscriptError`` (tracker unchanged) when it is missing, lacks an item the chain
        holds, or holds an item the stateless service would look up; ``UsageError`` in
        conversation mode or with requests in flight.
        """
        if self._transcript is not None:
            return
        if self._ledger.conversation_id is not None or self._marked:
            raise UsageError(
                "go_stateless() needs a response chain with no request in flight: observe the "
                "pending response first (a conversation cannot be continued statelessly)."
            )
        transcript = chain_transcript(self._ledger, history, self._rules)
        self._serial += 1
        self._transcript = transcript
        self._ledger.previous_response_id = None
