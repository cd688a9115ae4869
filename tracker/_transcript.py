"""Stateless mode: the transcript a ``store=False`` (or zero-data-retention) loop replays.

Theory of operation
-------------------
With ``store=False`` the service keeps nothing: every request must carry the whole history.
A stateless ``Tracker`` still decides the *delta* exactly as in chain mode (its ledger is
"what the transcript holds" instead of "what the server holds"), and the transcript supplies
the rest: ``Prepared.input`` is the transcript followed by the delta.

The transcript holds plain wire-form dicts, copied once when recorded: the items sent (marked)
and every observed response's output, in order. A replay of the same transcript is therefore
byte-identical from turn to turn, which keeps the prompt cache warm (``prompt_cache_key`` is a
stable key generated once per transcript and carried by the snapshot).

What the stateless service would refuse is kept out:

- an ``item_reference``, or a reasoning item without ``encrypted_content`` in the caller's new
  items: the service cannot look either up (404 R0): ``TranscriptError`` names the item;
- a reasoning item in a response without ``encrypted_content`` (the request lacked
  ``include=["reasoning.encrypted_content"]``): it is left out of the transcript and the items
  it was emitted with lose their ids, so neither R0 nor A2/A3 can fire (the reasoning is lost,
  the answer is not);
- with ``RuleOptions.lookup_complete_items_store_false`` every id is stripped, since the
  service would look it up; a reasoning item's too (its ``encrypted_content`` is what the
  service reads), or its stripped follower would break A1-A3. With
  ``RuleOptions.require_reasoning_id`` as well a reasoning item keeps its id: the two switches
  contradict each other for a reasoning model's replay (the emulator then answers A1).
- with ``RuleOptions.reject_referenced_client_calls`` a client call beside its output is sent
  without its id and its reasoning is left out (``_client_calls``); only what is sent changes
  (``Prepared.request_input``), and ``replay`` checks that.

Compaction: a ``compaction`` item stands for everything before it, so the transcript keeps
only the window from the latest one on (the guide: "you can drop items that came before the
most recent compaction item" [DOC]): when a response's output carries one (server-side
compaction with ``context_management``, or a ``compaction_trigger``'s output) the items before
it are dropped, and a standalone ``responses.compact`` result's window (its user messages and
the compaction item) replaces the transcript (``replace``). Every call before the boundary is
compacted in the ledger, so its output is never sent after it; reasoning is never split, since
the cut falls on the compaction item itself. ``RuleOptions.replay_before_compaction`` keeps the
whole history instead.

A transcript grows by the size of what is sent and received since the latest compaction: its
snapshot is the JSON of those items (about the size of the next request body), plus a few
fields. With compaction it stays bounded by the compacted window plus one compaction's worth
of turns.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._client_calls import leave_out, without_client_call_ids
from ._errors import HistoryError, StateError, TranscriptError, UsageError, shown
from ._items import COMPACTION, COMPACTION_TRIGGER, field, read_item, to_plain
from ._prepared import keys_of
from ._rule_options import DEFAULT_RULES
from ._rules import Provenance, RuleOptions, check_context, check_input_references

if TYPE_CHECKING:
    from ._snapshot import Ledger

__all__ = ["Transcript", "chain_transcript", "check_new_items", "check_switchable"]

#: The ``include`` value a stateless request needs so reasoning can be replayed.
INCLUDE_REASONING = "reasoning.encrypted_content"


def check_new_items(items: Sequence[Any]) -> None:
    """Refuse new items that a stateless service would have to look up (404 R0)."""
    for index, item in enumerate(items):
        item_type = field(item, "type")
        item_id = field(item, "id")
        if item_type == "item_reference":
            raise TranscriptError(
                f"input[{index}] is an item_reference to {shown(item_id)}: under store=False "
                "the service keeps no items to resolve it. Pass the item itself instead.",
                item_id=item_id,
            )
        if (
            item_type == "reasoning"
            and field(item, "encrypted_content") is None
            and not field(item, "content")
        ):
            raise TranscriptError(
                f"input[{index}] is reasoning item {shown(item_id)} without encrypted_content: "
                "under store=False it cannot be looked up. Request it with "
                f"include=[{INCLUDE_REASONING!r}] or leave the reasoning item out.",
                item_id=item_id,
            )


class Transcript:
    """The items a stateless tracker replays, settled ones first, then requests in flight."""

    __slots__ = ("_items", "_options", "_pending", "_saved", "_settled", "prompt_cache_key")

    def __init__(
        self,
        items: Iterable[dict[str, Any]] = (),
        *,
        prompt_cache_key: str | None = None,
        options: RuleOptions | None = None,
    ) -> None:
        self._options = options or DEFAULT_RULES
        self._items: list[dict[str, Any]] = [self._stored(i) for i in items]
        self._trim(0)
        self._settled = len(self._items)
        # id(request) -> (request, start, count): the request is held, so its id() is not
        # reused while it is in flight, and a lookup checks it is that very object.
        self._pending: dict[int, tuple[object, int, int]] = {}
        self.prompt_cache_key = prompt_cache_key or f"tracker-{uuid.uuid4().hex}"
        #: ``(token, settled count, last settled item)`` when ``dump()`` was last saved
        #: (``note_saved``); ``None``: not known.
        self._saved: tuple[object, int, dict[str, Any] | None] | None = None

    def __len__(self) -> int:
        return len(self._items)

    @property
    def items(self) -> tuple[dict[str, Any], ...]:
        """The items replayed before the next delta (settled and in flight), in order."""
        return tuple(self._items)

    def _stored(self, item: Any, index: int | None = None) -> dict[str, Any]:
        plain = copy.deepcopy(to_plain(item, index))
        opts = self._options
        if opts.lookup_complete_items_store_false and not (
            opts.require_reasoning_id and plain.get("type") == "reasoning"
        ):
            plain.pop("id", None)
        return plain

    # ---------------------------------------------------------------- building a request

    def replay(self, delta: Sequence[Any]) -> tuple[Any, ...]:
        """The whole input: the transcript, then ``delta``; checked against the service rules.

        Under ``RuleOptions.reject_referenced_client_calls`` what is checked is what is sent
        (``Prepared.request_input``): client calls without their ids beside their outputs,
        and their reasoning left out (``_client_calls``); the returned input is unchanged.

        Raises ``TranscriptError`` for a new item the service would look up, ``HistoryError``
        (with ``.violations``) for a context the stateless service would reject.
        """
        check_new_items(delta)
        full = (*self._items, *delta)
        sent: Sequence[Any] = full
        if self._options.reject_referenced_client_calls:
            sent = without_client_call_ids([to_plain(item, i) for i, item in enumerate(full)])
        violations = check_context(sent, options=self._options, provenance=self._provenance())
        if self._options.reject_referenced_client_calls:
            violations += check_input_references(sent)
        if violations:
            first = violations[0]
            raise HistoryError(
                f"The stateless request would be rejected ({first.rule}, status "
                f"{first.status}): {first.message} Fix the new items (the transcript holds "
                f"{len(self._items)} items replayed before them).",
                violations=violations,
            )
        return full

    def _provenance(self) -> Provenance:
        """Which item followed each replayed reasoning item (the service checks A1-A3)."""
        following: dict[str, str] = {}
        reasoning_for: dict[str, str] = {}
        items = self._items
        for i, item in enumerate(items[:-1]):
            if item.get("type") == "reasoning" and isinstance(item.get("id"), str):
                nxt = items[i + 1].get("id")
                if isinstance(nxt, str):
                    following[item["id"]] = nxt
                    reasoning_for[nxt] = item["id"]
        return Provenance(following=following, reasoning_for=reasoning_for)

    # ---------------------------------------------------------------- recording

    def mark(self, request: object, delta: Sequence[Any]) -> None:
        """Append ``request``'s new items (in flight until ``observe``; ``request`` is held)."""
        self._pending[id(request)] = (request, len(self._items), len(delta))
        self._items.extend(self._stored(item, i) for i, item in enumerate(delta))

    def unmark(self, request: object) -> bool:
        """Remove a failed request's items (``Tracker.rewind``); return whether ``request``
        (that very object) was in flight."""
        entry = self._pending.get(id(request))
        if entry is None or entry[0] is not request:
            return False
        del self._pending[id(request)]
        _, start, count = entry
        del self._items[start : start + count]
        for key, (other, s, c) in list(self._pending.items()):
            if s > start:
                self._pending[key] = (other, s - count, c)
        return True

    def observe(self, output: Sequence[Any]) -> None:
        """Append a response's output (plain copies) and settle every request in flight.

        A ``compaction_trigger`` sent is not kept: it must be the final input item, and its
        work is done (the output holds the compaction item).
        """
        if any(item.get("type") == COMPACTION_TRIGGER for item in self._items[self._settled :]):
            self._items[self._settled :] = [
                item
                for item in self._items[self._settled :]
                if item.get("type") != COMPACTION_TRIGGER
            ]
        self._items.extend(self._output(output))
        self._pending.clear()
        self._trim(self._settled)
        self._settled = len(self._items)

    def _trim(self, since: int) -> None:
        """Drop the items before the latest compaction item at or after ``since`` (if any).

        Only between requests: nothing in flight. O(items since ``since``) without a
        compaction; a cut costs O(what is kept).
        """
        if self._options.replay_before_compaction:
            return
        items = self._items
        for i in range(len(items) - 1, since - 1, -1):
            if items[i].get("type") == COMPACTION:
                if i:
                    del items[:i]
                    self._saved = None  # trimmed: the next save writes the transcript whole
                return

    def replace(self, window: Sequence[Any]) -> None:
        """Start over from a standalone compaction's ``window`` (its user messages, then the
        compaction item), which stands for everything the transcript held. Nothing in flight
        is kept (the compaction request was answered)."""
        self._items = [self._stored(item, i) for i, item in enumerate(window)]
        self._pending.clear()
        self._settled = len(self._items)
        self._saved = None  # replaced: the next save writes the transcript whole

    def _output(self, output: Sequence[Any]) -> list[dict[str, Any]]:
        """The output as stored; a reasoning item without encrypted_content is left out."""
        out: list[dict[str, Any]] = []
        strip = False
        for index, item in enumerate(output):
            plain = self._stored(item, index)
            if plain.get("type") == "reasoning":
                strip = plain.get("encrypted_content") is None and not plain.get("content")
                if strip:
                    continue
            elif strip:
                plain.pop("id", None)  # its reasoning is gone: no A2/A3 for an id-less item
            out.append(plain)
        return out

    def strip_encrypted(self, item_ids: Iterable[str] | None) -> tuple[str, ...]:
        """Leave out reasoning and compaction items carrying ``encrypted_content``.

        ``item_ids`` names them (``None``: every one). The model output emitted right after a
        dropped reasoning item loses its id, so the service finds no item missing its
        reasoning (A2/A3). Returns the dropped ids. Only between requests (none in flight).
        """
        wanted = None if item_ids is None else set(item_ids)

        def stale(_index: int, item: dict[str, Any]) -> bool:
            return (
                item.get("type") in ("reasoning", COMPACTION)
                and bool(item.get("encrypted_content"))
                and (wanted is None or item.get("id") in wanted)
            )

        kept, dropped = leave_out(self._items, stale)
        self._items = kept
        self._settled = len(kept)
        self._saved = None  # settled items may be gone or changed: the next save is whole
        return tuple(dropped)

    # ---------------------------------------------------------------- state

    def dump(self) -> dict[str, Any]:
        """The JSON-safe snapshot part: settled items only (requests in flight are resent)."""
        return {
            "items": copy.deepcopy(self._items[: self._settled]),
            "prompt_cache_key": self.prompt_cache_key,
        }

    def note_saved(self, token: object) -> None:
        """Note that ``dump()`` as it is now was saved, under ``token`` (``saved_changes``)."""
        count = self._settled
        self._saved = (token, count, self._items[count - 1] if count else None)

    def saved_changes(self, token: object) -> dict[str, Any]:
        """What changed in ``dump()`` since ``note_saved(token)``, in O(what changed).

        ``{"extend": [settled items appended since], "prompt_cache_key": key}`` while the
        settled items only grew, else ``{"whole": dump()}`` (another mark, no mark, or items
        dropped or replaced since: ``strip_encrypted``, a trim). Settled items are never
        changed in place, so the last one marked still at its index means none before it moved.
        """
        saved = self._saved
        if saved is not None and saved[0] is token:
            _, count, last = saved
            settled = self._settled
            if count <= settled and (count == 0 or self._items[count - 1] is last):
                return {
                    "extend": copy.deepcopy(self._items[count:settled]),
                    "prompt_cache_key": self.prompt_cache_key,
                }
        return {"whole": self.dump()}

    @classmethod
    def load(cls, data: Any, options: RuleOptions | None = None) -> Transcript:
        """Restore ``dump()`` output; ``StateError`` naming the malformed field."""
        if not isinstance(data, Mapping):
            raise StateError("transcript: must be an object with 'items'", path="transcript")
        items = data.get("items")
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise StateError(
                "transcript.items: must be a list of item objects", path="transcript.items"
            )
        key = data.get("prompt_cache_key")
        if not isinstance(key, str) or not key:
            raise StateError(
                "transcript.prompt_cache_key: must be a non-empty string",
                path="transcript.prompt_cache_key",
            )
        for index, item in enumerate(items):
            read_item(item, index)
        return cls(items, prompt_cache_key=key, options=options)


def check_switchable(conversation_id: str | None, *, in_flight: int, stateless: bool) -> None:
    """``UsageError`` unless a tracker can switch to stateless mode (``Tracker.go_stateless``):
    not in a conversation, no request in flight, not stateless already."""
    if stateless:
        raise UsageError(
            "go_stateless(history) on a tracker that is already stateless: it replays its own "
            "transcript (tracker.transcript), which a history cannot replace here. Pass an "
            "edited whole history to prepare() instead (on_edit='restart' sends it as is), or "
            "call go_stateless() without one."
        )
    if conversation_id is not None:
        raise UsageError(
            f"go_stateless() / store=False: this tracker continues conversation "
            f"{shown(conversation_id)}, which only the service holds, so it cannot be continued "
            "statelessly. Drop store=False to continue the conversation, or start a "
            "Tracker(store=False) whose first input is the conversation's items "
            "(client.conversations.items.list(id, order='asc'))."
        )
    if in_flight:
        raise UsageError(
            f"go_stateless() with {in_flight} request(s) in flight: observe_response() their "
            "response (or rewind() a failed one) first."
        )


def _missing(ledger: Ledger, history: Sequence[Any]) -> list[tuple[str, str]]:
    """What the chain holds (as the ledger knows it) that ``history`` lacks: (what, its id).

    Id-less items are not checked: the service lists its copies of them with ids added.
    """
    ids: set[str] = set()
    calls: set[str] = set()
    outs: set[str] = set()
    for index, item in enumerate(history):
        for kind, value in keys_of(read_item(item, index)):
            {"id": ids, "call": calls, "out": outs}[kind].add(value)
    missing = [("item", i) for i in sorted(ledger.server_item_ids.keys() - ids)]
    missing += [("tool call", c) for c in sorted(set(ledger.calls) - calls)]
    missing += [("output for", c) for c in sorted(ledger.answered_call_ids.keys() - outs)]
    return missing


def chain_transcript(
    ledger: Ledger, history: Iterable[Any] | None, options: RuleOptions | None
) -> Transcript:
    """The transcript of a stored chain switched to stateless mode (``Tracker.go_stateless``).

    ``history`` must hold every item the chain holds; raises ``TranscriptError`` otherwise.
    What a chain held before this tracker joined it (``Tracker(previous_response_id=...)``)
    the tracker never saw: an empty history is refused, a non-empty one is taken as given.
    """
    chain = ledger.previous_response_id
    how = (
        "pass go_stateless(history=...) with every item of the chain, in order: your "
        "whole-history list, or for each response of the chain "
        "client.responses.input_items.list(id) followed by its output"
    )
    if history is None:
        raise TranscriptError(
            f"go_stateless(): the tracker does not keep the items of chain {shown(chain)}: {how}."
        )
    items = list(history)
    if not items and chain is not None:  # a chain this tracker joined: it never saw its items
        raise TranscriptError(
            f"go_stateless(): the history is empty but chain {shown(chain)} holds items "
            f"(it began before this tracker, which cannot list them): {how}."
        )
    missing = _missing(ledger, items)
    if missing:
        named = ", ".join(f"{what} {value}" for what, value in missing[:5])
        raise TranscriptError(
            f"go_stateless(): the history lacks what chain {shown(chain)} holds "
            f"({named}{', ...' if len(missing) > 5 else ''}): {how}.",
            item_id=missing[0][1],
        )
    check_new_items(items)
    transcript = Transcript(items, options=options)
    try:
        transcript.replay(())
    except HistoryError as exc:
        first = exc.violations[0]
        raise HistoryError(
            f"go_stateless(): the history of chain {shown(chain)} would be rejected as a "
            f"stateless request ({first.rule}, status {first.status}): {first.message} Pass the "
            "chain's items as the service holds them, in order (each call before its output, "
            "each reasoning item before the item it was emitted with).",
            violations=exc.violations,
        ) from None
    return transcript
