"""Compaction in the tracker: the boundary, the refusals, and a standalone compaction's window.

Theory of operation
-------------------
A ``compaction`` item (``cmp_...``) is kept like any server item, by id, and is a boundary:
the server summarised everything before it. When one is observed, every call still pending is
*compacted*: never pending again, and an output for it is never sent (it would be ``No tool
call found``): ``check="raise"`` raises ``CompactedCallError`` naming the calls,
``check="repair"`` drops them and reports each in ``Prepared.repairs``. That the service pairs
only from the latest compaction item on is inferred [INF]: ``RuleOptions(compaction_boundary=
False)`` keeps such calls pending instead (``Chain.summarises``). A compaction is refused
(``CompactionError``, naming the calls) while calls are pending: ``prepare(..., compact=True)``
(a ``compaction_trigger``, which must be the final input item) and ``prepare_compact`` (a
standalone ``responses.compact``). A standalone compaction's response cannot be continued, so
observing it starts a new chain: the next request carries its window (the user messages and
the compaction item) with no ``previous_response_id``. A conversation takes no standalone
compaction (the endpoint has no ``conversation`` parameter): use server-side compaction there.
In stateless mode the transcript keeps only what follows the latest compaction item, and a
standalone compaction's window replaces it (``_transcript``; ``RuleOptions.
replay_before_compaction`` keeps the whole history instead).

The boundary, the dropped outputs and the refusal are applied where a delta is chosen
(``_delta_select``: ``drop_compacted_outputs``, ``refuse_pending``); this module holds what
``Tracker.prepare_compact`` refuses, what observing a ``responses.compact`` result changes
(``observe_compacted``), and how the waiting window leads the next request (``with_window``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import UsageError
from ._items import field
from ._prepared import Key, Prepared
from ._responses import window_of
from ._rule_options import DEFAULT_RULES
from ._rules import RuleOptions
from ._snapshot import Ledger

if TYPE_CHECKING:
    from ._tracker_chain import Chain

__all__ = ["check_compactable", "check_something_to_compact", "observe_compacted", "with_window"]


def check_compactable(ledger: Ledger) -> None:
    """``UsageError`` in a conversation: ``responses.compact`` takes no conversation."""
    if ledger.conversation_id is not None:
        raise UsageError(
            f"Cannot compact conversation {ledger.conversation_id} with "
            "responses.compact (it takes no conversation): pass context_management="
            "[{'type': 'compaction', 'compact_threshold': N}] to responses.create, or "
            "prepare(items, compact=True) to send a compaction_trigger."
        )


def check_something_to_compact(prepared: Prepared) -> None:
    """``UsageError`` when a standalone compaction would carry nothing to compact."""
    if not prepared.input and prepared.previous_response_id is None:
        raise UsageError(
            "Nothing to compact: no response observed yet and no new items; run a turn first."
        )


def observe_compacted(chain: Chain, response: Any, rules: RuleOptions | None) -> None:
    """A ``responses.compact`` result: its window starts the next chain.

    Raises (``UsageError`` in a conversation, ``ItemError`` for an unreadable item) before
    anything changes.
    """
    ledger = chain.ledger
    if ledger.conversation_id is not None:
        raise UsageError(
            f"Compacted response {field(response, 'id')} cannot continue conversation "
            f"{ledger.conversation_id}: responses.compact takes no conversation; use "
            "server-side compaction (context_management) in a conversation."
        )
    window = window_of(response)
    observed = chain.observation(window)
    for item, keys in observed:
        if keys[0][0] != "anon":  # an id-less user message is the window's, not held
            ledger.add(keys, item)
    ledger.compact(field(window[-1], "id"))
    ledger.window = window
    transcript = chain.transcript
    if transcript is not None and not (rules or DEFAULT_RULES).replay_before_compaction:
        transcript.replace(window)  # the window stands for the whole transcript
        ledger.window = None
    ledger.previous_response_id = None  # a compacted response id cannot be continued


def with_window(
    ledger: Ledger, send: list[Any], keys: list[tuple[Key, ...]]
) -> tuple[list[Any], list[tuple[Key, ...]], list[dict[str, Any]] | None]:
    """``send`` and its ``keys`` led by the waiting window, if any (not in a conversation)."""
    window = ledger.window if ledger.conversation_id is None else None
    if window:
        send = [*window, *send]
        keys = [(("window", str(i)),) for i in range(len(window))] + keys
    return send, keys, window
