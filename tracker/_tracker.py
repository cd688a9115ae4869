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

Every lookup is a dict or set operation: a turn costs O(len(items)), and O(len(delta)) when the
caller passes only the new items. A whole history is walked once, each item looked up by
identity or by the id / call_id read straight off it (``known_dict``, ``known_object``).

Compaction (``_tracker_compaction``) is a boundary: calls pending when it is observed are
never answered, and a standalone compaction's window starts a new chain. An edit behind the
chain in a whole history restarts the chain or raises (``_tracker_restart``, ``_edits``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._delta_check import DeltaCheck
from ._delta_select import Keys
from ._edits import HeldHistory, OnEdit
from ._errors import UsageError
from ._items import field
from ._prepared import Prepared
from ._repair import encrypted_ids
from ._repair_actions import PLACEHOLDER, RepairPolicy
from ._responses import COMPACTED_OBJECT
from ._rules import RuleOptions
from ._snapshot import load_state
from ._tracker_chain import Chain
from ._tracker_compaction import check_compactable, check_something_to_compact, observe_compacted
from ._tracker_observe import (
    check_continuation,
    check_origin,
    check_settings,
    item_list,
    response_id_of,
    strip_encrypted,
    turn_items,
)
from ._tracker_restart import Restarts
from ._tracker_state import snapshot, state_changes, state_mark
from ._transcript import Transcript, check_switchable

__all__ = ["Prepared", "Tracker"]


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
        check_settings(previous_response_id, conversation_id, check, store, on_edit)
        self._check: DeltaCheck = check
        self._repair_policy: RepairPolicy = repair_policy
        self._chain = Chain.start(previous_response_id, conversation_id, store=store, rules=rules)
        self._marked: dict[int, Prepared] = {}  # requests marked sent, not yet answered
        self._serial = 0  # bumped by every change, so mark_sent sees what changed since prepare
        self._origin = object()
        self._rules = rules
        self._restarts = Restarts(on_edit)  # the last whole history, restarts in flight

    # ------------------------------------------------------------------ read-only views

    @property
    def previous_response_id(self) -> str | None:
        """The response the next request continues from (``None`` in conversation mode)."""
        return self._chain.ledger.previous_response_id

    @property
    def conversation_id(self) -> str | None:
        """The conversation the requests run in, or ``None`` when chaining responses."""
        return self._chain.ledger.conversation_id

    @property
    def pending_call_ids(self) -> tuple[str, ...]:
        """Call ids of tool calls the server holds (or was sent) that have no output yet.

        Calls to async tools (``async: true``) are not pending: the service lets them wait.
        """
        return tuple(self._chain.ledger.pending_call_ids)

    @property
    def last_compaction_id(self) -> str | None:
        """The id of the latest compaction item observed (the boundary), if any."""
        return self._chain.ledger.last_compaction_id

    @property
    def responses_observed(self) -> int:
        """How many responses this tracker (and the ones it was restored from) observed."""
        return self._chain.ledger.responses_observed

    def item_id_for_call(self, call_id: str) -> str | None:
        """The provider item id (``fc_...``) of the call with ``call_id``, if known."""
        return self._chain.ledger.calls.get(call_id)

    def call_type(self, call_id: str) -> str | None:
        """The item type of the call with ``call_id`` (``function_call``,
        ``custom_tool_call``, ``shell_call``, ``mcp_approval_request`` ...; an approval
        request is keyed by its ``mcpr_`` id), or ``None`` if the tracker knows no such call.
        """
        ledger = self._chain.ledger
        if call_id not in ledger.calls:
            return None
        known = ledger.call_types.get(call_id)
        if known is not None:
            return known
        # a v1-v3 snapshot kept no types: an approval request's key is its own item id
        return "mcp_approval_request" if ledger.calls[call_id] == call_id else "function_call"

    def holds(self, item: Any) -> bool:
        """Whether the server is known to hold ``item`` (by id, call id or held reference)."""
        return self._chain.holds(item)

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
        seq = turn_items(items, "prepare")
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
        check_compactable(self._chain.ledger)
        seq = turn_items(items, "prepare_compact")
        prepared = self._decide(seq, content_match=content_match, compact=True, standalone=True)
        check_something_to_compact(prepared)
        return prepared

    def _decide(
        self, items: list[Any], *, content_match: bool, compact: bool, standalone: bool
    ) -> Prepared:
        """The delta of ``items``; a whole history is checked for edits behind the chain."""

        def build(chain: Chain, items: list[Any]) -> Prepared:
            return chain.prepare(
                items,
                check=self._check,
                repair_policy=self._repair_policy,
                origin=self._origin,
                serial=self._serial,
                content_match=content_match,
                compact=compact,
                standalone=standalone,
                rules=self._rules,
            )

        if not content_match:
            return build(self._chain, items)
        return self._restarts.decide(
            self._chain, items, build, check=self._check, rules=self._rules
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
            unchanged = not self._marked and prepared._serial == self._serial
            self._chain = self._restarts.restart(
                prepared, self._chain, unchanged=unchanged, rules=self._rules
            )
        chain = self._chain
        chain.check_unrecorded(prepared)
        self._serial += 1
        chain.record_sent(prepared, self._serial)
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
        self._chain.unrecord_sent(prepared)
        undo = self._restarts.rewound(prepared)
        if undo is not None:  # the restarted chain never started: back to the old one
            self._chain = undo

    def observe_response(self, response: Any) -> None:
        """Record a response: its output items are held by the server, its id continues.

        Accepts an SDK ``Response`` or its dict form (with ``id`` and an ``output`` list).
        Every request marked sent before it is settled (can no longer be rewound). Raises
        ``UsageError`` for anything else (an un-awaited coroutine, a stream, an exception, a
        list, a background response still running, a ``failed`` or ``cancelled`` response:
        the message says what to do), ``ContinuationError`` for a malformed response
        id, a response from another conversation, or one created with ``store=False`` (it
        cannot be continued), and ``ItemError`` for an unreadable output item; the tracker is
        then unchanged.
        """
        response_id = response_id_of(response)
        chain = self._chain
        if field(response, "object") == COMPACTED_OBJECT:
            observe_compacted(chain, response, self._rules)  # changes nothing if it raises
            self._serial += 1
            self._settle()
            return
        observed = chain.observation(list(field(response, "output")))
        stateless = chain.transcript is not None
        check_continuation(response, response_id, chain.ledger, stateless=stateless)
        self._observe(observed)
        window_sent = any(p.carries_window for p in self._marked.values())
        chain.advance(response_id, observed, window_sent=window_sent)
        self._settle([item for item, _ in observed])

    def _settle(self, output: list[Any] | None = None) -> None:
        """A response answered every request in flight: it can no longer be rewound."""
        self._restarts.settle(self._marked.values(), output or ())
        self._marked.clear()

    def observe_items(self, items: Iterable[Any]) -> None:
        """Record items the server is known to hold (for example a conversation's items).

        Does not change the continuation. Raises ``ItemError`` (tracker unchanged) for an
        unreadable item, ``UsageError`` when ``items`` is not a list of items.
        """
        self._observe(self._chain.observation(item_list(items, "observe_items")))

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
        the model. Raises ``UsageError`` (tracker unchanged) with a request in flight, or for
        ``item_ids`` that is not a list of ids (a single id as a string included).
        """
        if self._marked:
            raise UsageError(
                "strip_encrypted() with a request in flight: rewind(prepared) the failed "
                "request (or observe its response) first."
            )
        dropped = strip_encrypted(self._chain, encrypted_ids(item_ids, "strip_encrypted"))
        if dropped:
            self._serial += 1
        return dropped

    def _observe(self, observed: list[tuple[Any, Keys]]) -> None:
        self._serial += 1
        self._chain.observe(observed, self._serial, self._rules)

    # ------------------------------------------------------------------ state

    def to_state(self) -> dict[str, Any]:
        """A JSON-safe, versioned snapshot; ``Tracker.from_state`` restores it anywhere.

        Held references are process-local: the snapshot keeps their content fingerprints
        instead, so a restored tracker recognises the same items when they are rebuilt.
        Requests marked sent but not yet answered by an observed response are left out: the
        snapshot stays consistent with its ``previous_response_id``, and a tracker restored
        from it sends those items again (never a dropped output, never a 400).
        """
        return snapshot(self._chain, self._marked.values(), self._restarts.history)

    def _mark_state(self) -> object:
        """For ``tracker.stores``: a mark of the state as ``to_state()`` gives it now
        (``None`` while requests are in flight: ``to_state()`` then leaves out what the
        ledger already holds)."""
        return state_mark(self._chain, in_flight=bool(self._marked))

    def _state_changes(self, mark: object) -> dict[str, Any] | None:
        """For ``tracker.stores``: what changed in ``to_state()`` since ``mark``, in the time
        the changes take (see ``Ledger.changes``; a stateless tracker's ``"transcript"`` is
        ``Transcript.saved_changes``: the items appended, or the whole transcript after a
        trim), or ``None`` when not known (another mark since, a rewind, or requests in
        flight, which ``to_state()`` leaves out)."""
        if self._marked:
            return None
        return state_changes(self._chain, self._restarts.history, mark)

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
        tracker._restarts.history = HeldHistory(fps=ledger.history)
        ledger.history = []  # kept by tracker._restarts from now on
        tracker._chain.ledger = ledger
        if transcript is not None:
            tracker._chain.transcript = Transcript.load(transcript, rules)
        return tracker

    # ------------------------------------------------------------------ stateless mode

    @property
    def store(self) -> bool:
        """``False`` in stateless mode: every request replays the transcript, store=False."""
        return self._chain.transcript is None

    @property
    def transcript(self) -> tuple[dict[str, Any], ...]:
        """Stateless mode: the items replayed before the next delta (empty in chain mode)."""
        return () if self._chain.transcript is None else self._chain.transcript.items

    @property
    def prompt_cache_key(self) -> str | None:
        """Stateless mode: a stable per-session ``prompt_cache_key`` (kept by snapshots)."""
        return None if self._chain.transcript is None else self._chain.transcript.prompt_cache_key

    def go_stateless(self, history: Iterable[Any] | None = None) -> None:
        """Continue this chain statelessly (store=False), e.g. after a ZDR migration.

        ``history`` is every item the chain holds, in order (its inputs and outputs: your
        whole-history list, or for each response of the chain
        ``client.responses.input_items.list(id)`` followed by its output). Raises
        ``TranscriptError`` (tracker unchanged) when it is missing, lacks an item the chain
        holds (or is empty while the tracker joined an existing chain with
        ``previous_response_id=``: it never saw that chain's items, so cannot check a
        non-empty history against them), or holds an item the stateless service would look
        up; ``HistoryError`` when the history itself breaks the service's rules;
        ``UsageError`` in conversation mode, with requests in flight, or when given a
        history while already stateless (without one it is then a no-op).
        """
        stateless = self._chain.transcript is not None
        if stateless and history is None:
            return
        ledger = self._chain.ledger
        check_switchable(ledger.conversation_id, in_flight=len(self._marked), stateless=stateless)
        self._chain.go_stateless(history, self._rules)  # changes nothing if it raises
        self._serial += 1
