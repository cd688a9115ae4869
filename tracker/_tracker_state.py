"""A tracker's snapshot, as ``Tracker.to_state`` and the stores' incremental saves need it:
the settled ledger (requests in flight left out), the whole-history fingerprints and a stateless
tracker's transcript, and the marks that let a store save only what changed since a save.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from ._edits import HeldHistory
from ._prepared import Prepared
from ._snapshot import Journal, dump_state
from ._tracker_chain import Chain

__all__ = ["snapshot", "state_changes", "state_mark"]


def snapshot(chain: Chain, marked: Iterable[Prepared], history: HeldHistory) -> dict[str, Any]:
    """``Tracker.to_state``: the ledger without the ``marked`` requests' items (in flight)."""
    ledger, transcript = chain.ledger, chain.transcript
    marked = list(marked)
    settled = ledger
    if marked:
        settled = ledger.copy()
        for prepared in marked:
            for item_keys in prepared._keys:
                settled.remove(item_keys)
    state = dump_state(attrs.evolve(settled, history=history.fingerprints()))
    if transcript is not None:
        state["transcript"] = transcript.dump()
    return state


def state_mark(chain: Chain, *, in_flight: bool) -> object:
    """``Tracker._mark_state``: a mark of the state now (``None`` with requests ``in_flight``)."""
    ledger, transcript = chain.ledger, chain.transcript
    if in_flight:
        ledger.journal = None
        return None
    journal = ledger.mark()
    if transcript is not None:
        transcript.note_saved(journal)
    return journal


def state_changes(chain: Chain, history: HeldHistory, mark: object) -> dict[str, Any] | None:
    """``Tracker._state_changes`` with no request in flight: what changed since ``mark``."""
    ledger, transcript = chain.ledger, chain.transcript
    if not isinstance(mark, Journal):
        return None
    changes = ledger.changes(mark)
    if changes is not None:  # the history list, diffed by the store (an extended prefix)
        changes["scalars"]["history"] = history.fingerprints()
    if changes is not None and transcript is not None:
        changes["transcript"] = transcript.saved_changes(mark)
    return changes
