"""The chain a tracker continues: what it knows the server holds, and a turn's delta against it.

A ``Chain`` is the ledger (every key the server holds, as a snapshot keeps it), the id-less
objects sent or observed (held by reference, counted, each with the serial of its last
recording) and, in stateless mode, the transcript every request replays. ``record`` /
``unrecord`` / ``observe`` change it; ``prepare`` builds a request's ``Prepared`` from it and
changes nothing. An edited history restarts on a ``fresh`` chain (``_tracker_restart``), and a
rewind of that request puts the old chain back: the tracker swaps one object, never half of one.

Only those id-less objects (and id-less ``compaction_trigger``s) are held: an item with a
provider id or a call_id is matched by that string, as a restored tracker matches it, so its
object is released as soon as the caller drops it, and a fresh object born at its address is a
stranger (never a bare ``id()``). A long-lived tracker thus keeps alive what it needs and no
more: within 2x of a tracker restored from its snapshot (``benchmarks/bench_memory.py``). In
stateless mode the transcript keeps its own wire-form copies, never the caller's objects.
"""

from __future__ import annotations

from collections.abc import Iterable
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
    trigger_keys,
)
from ._errors import UsageError
from ._fingerprint import content_key
from ._identity import IdentityMap
from ._items import COMPACTION, COMPACTION_TRIGGER, field, read_item
from ._prepared import Prepared, SkipReason, anon_key, describe, keys_of
from ._repair_actions import RepairPolicy
from ._rule_options import DEFAULT_RULES
from ._rules import RuleOptions
from ._snapshot import Ledger
from ._tracker_compaction import with_window
from ._transcript import Transcript, chain_transcript

__all__ = ["Chain"]


@attrs.define(eq=False)
class Chain:
    """A tracker's ledger, held objects and (stateless mode) transcript, changed together."""

    ledger: Ledger
    transcript: Transcript | None = None
    held: IdentityMap[Held] = attrs.field(factory=IdentityMap)

    @classmethod
    def start(
        cls,
        previous_response_id: str | None,
        conversation_id: str | None,
        *,
        store: bool,
        rules: RuleOptions | None,
    ) -> Chain:
        """A new tracker's chain: it continues ``previous_response_id`` or ``conversation_id``
        (neither: it starts the chain, so it sees every call), statelessly unless ``store``."""
        ledger = Ledger(
            previous_response_id=previous_response_id,
            conversation_id=conversation_id,
            whole_chain=previous_response_id is None and conversation_id is None,
        )
        return cls(ledger, None if store else Transcript(options=rules))

    def fresh(self, rules: RuleOptions | None) -> Chain:
        """No chain yet, the same session (responses counted, prompt_cache_key): a restart's."""
        ledger = Ledger(responses_observed=self.ledger.responses_observed)
        if self.transcript is None:
            return Chain(ledger)
        key = self.transcript.prompt_cache_key
        return Chain(ledger, Transcript(options=rules, prompt_cache_key=key))

    def holds(self, item: Any) -> bool:
        """Whether ``item`` is held by reference or known to the ledger by its keys."""
        return item in self.held or self.ledger.knows(keys_of(read_item(item))) is not None

    # ------------------------------------------------------------------ recording

    def observation(self, items: list[Any]) -> list[tuple[Any, Keys]]:
        """Read every item and compute its keys before anything is recorded (all or nothing)."""
        observed = []
        for index, item in enumerate(items):
            keys = keys_of(read_item(item, index))
            if not keys and item not in self.held:
                keys = anon_key(content_key(item, index))
            observed.append((item, keys))
        return observed

    def observe(
        self, observed: list[tuple[Any, Keys]], serial: int, rules: RuleOptions | None = None
    ) -> None:
        """Record ``observation()``'s items; a compaction item is a boundary (``summarises``)."""
        summarise = self.summarises(rules)
        for item, keys in observed:
            if item not in self.held:  # an object already held was counted when recorded
                self.record(item, keys, serial)
            if field(item, "type") == COMPACTION:
                self.ledger.compact(read_item(item).id, summarise=summarise)

    def summarises(self, rules: RuleOptions | None) -> bool:
        """Whether a compaction item summarises the calls pending before it, so their outputs
        are never sent after it: the service pairs only from the latest compaction item on
        (``RuleOptions.compaction_boundary``, on by default [INF]), or a stateless transcript
        drops what came before it (unless ``replay_before_compaction``)."""
        opts = rules or DEFAULT_RULES
        trims = self.transcript is not None and not opts.replay_before_compaction
        return opts.compaction_boundary or trims

    def record_sent(self, prepared: Prepared, serial: int) -> None:
        """Record the items of ``prepared`` (marked sent at ``serial``)."""
        for item, item_keys in zip(prepared.delta, prepared._keys, strict=True):
            self.record(item, item_keys, serial)
        if self.transcript is not None:
            self.transcript.mark(prepared, prepared.delta)

    def unrecord_sent(self, prepared: Prepared) -> None:
        """Forget the items of ``prepared`` again (its request failed)."""
        for item, item_keys in zip(prepared.delta, prepared._keys, strict=True):
            self.unrecord(item, item_keys)
        if self.transcript is not None:
            self.transcript.unmark(prepared)

    def advance(
        self, response_id: Any, observed: list[tuple[Any, Keys]], *, window_sent: bool
    ) -> None:
        """After ``observe`` of a response's output: its id continues the chain (a stateless
        transcript takes its items instead); ``window_sent``: a request it answers carried the
        waiting window, which the new chain now holds."""
        ledger = self.ledger
        if self.transcript is not None:
            self.transcript.observe([item for item, _ in observed])
        elif ledger.conversation_id is None and response_id:
            ledger.previous_response_id = response_id
        ledger.responses_observed += 1
        if window_sent:
            ledger.window = None

    def go_stateless(self, history: Iterable[Any] | None, rules: RuleOptions | None) -> None:
        """Replay this chain from now on: its transcript is ``history`` (checked first)."""
        self.transcript = chain_transcript(self.ledger, history, rules)
        self.ledger.previous_response_id = None

    def check_unrecorded(self, prepared: Prepared) -> None:
        """``UsageError`` if an item of ``prepared`` was recorded since it was prepared."""
        for item, item_keys in zip(prepared.delta, prepared._keys, strict=True):
            if self.recorded_since(item, item_keys, prepared._serial):
                raise UsageError(
                    f"Item {describe(item)} was marked sent by another request after this one "
                    "was prepared: call prepare() again to get a fresh delta."
                )

    def recorded_since(self, item: Any, item_keys: Keys, serial: int) -> bool:
        """Whether ``item`` was recorded after the request was prepared (at ``serial``)."""
        entry = self.held.get(item)
        if entry is not None and entry.serial > serial:
            return True
        return self.ledger.knows(item_keys) is not None

    def record(self, item: Any, item_keys: Keys, serial: int) -> None:
        """Record ``item`` as held by the server (its object only if it has no id/call_id)."""
        self.ledger.add(item_keys, item)
        if not needs_identity(item_keys):
            return  # matched by its id or call_id from now on: its object is not kept
        entry = self.held.get(item)
        if entry is None:
            self.held.set(item, Held(item_keys, serial))
        else:
            entry.times += 1
            entry.serial = serial

    def unrecord(self, item: Any, item_keys: Keys) -> None:
        """Undo one ``record`` of ``item`` (its request was rewound)."""
        self.ledger.remove(item_keys)
        entry = self.held.get(item)
        if entry is not None:
            entry.times -= 1
            if entry.times < 1:
                self.held.pop(item)

    # ------------------------------------------------------------------ deciding

    def prepare(
        self,
        items: list[Any],
        *,
        check: DeltaCheck,
        repair_policy: RepairPolicy,
        origin: object,
        serial: int,
        content_match: bool,
        compact: bool,
        standalone: bool,
        rules: RuleOptions | None = None,
    ) -> Prepared:
        """The delta of ``items``; ``compact``: refuse pending calls and (unless
        ``standalone``) end with a ``compaction_trigger``. ``rules``: the tracker's switches
        (``reject_referenced_client_calls`` shapes what is sent, see ``_client_calls``)."""
        seq, trigger = split_triggers(items)
        used: dict[str, int] = {}  # fingerprint -> occurrences in seq counted as already sent
        reasons: dict[SkipReason, int] = {}
        old_triggers = len(items) - len(seq) - (trigger is not None)
        if old_triggers:
            reasons["old_trigger"] = old_triggers
        ledger = self.ledger
        unknown = skip_held(self.held, ledger, seq, used, reasons)
        send, keys = select(ledger, unknown, used, reasons, content_match=content_match)
        send, keys, dropped = drop_compacted_outputs(ledger, check, send, keys)
        trigger_key = TRIGGER_KEYS
        if trigger is not None:
            trigger_key, known = trigger_keys(trigger, ledger, trigger in self.held)
            if known is not None:
                reasons[known] = reasons.get(known, 0) + 1
                trigger = None
        if compact or trigger is not None:  # refused before the pairing check words it
            what = "a standalone compaction" if standalone else "a compaction_trigger"
            refuse_pending(ledger, send, keys, what)
        send, keys, repairs = checked_delta(ledger, check, repair_policy, send, keys)
        skipped = len(items) - len(send) - (trigger is not None)
        if (compact or trigger is not None) and not standalone:
            send.append({"type": COMPACTION_TRIGGER} if trigger is None else trigger)
            keys.append(TRIGGER_KEYS if trigger is None else trigger_key)
        send, keys, window = with_window(ledger, send, keys)
        chained = ledger.conversation_id is None and not window
        full = tuple(send) if self.transcript is None else self.transcript.replay(send)
        bare = rules is not None and rules.reject_referenced_client_calls
        return Prepared(
            input=full,
            replayed=len(full) - len(send),
            previous_response_id=ledger.previous_response_id if chained else None,
            conversation_id=ledger.conversation_id,
            skipped=max(0, skipped),
            skip_reasons=reasons,
            repairs=(*dropped, *repairs),
            keys=tuple(keys),
            origin=origin,
            serial=serial,
            compact=standalone,
            carries_window=bool(window),
            client_calls_without_ids=bare,
        )
