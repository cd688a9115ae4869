"""A tracker's edited histories: restarting the chain (``on_edit="restart"``), and settling.

``_edits`` finds an edit behind the chain in a whole history; this module decides what the
tracker does about it. With ``on_edit="raise"`` (and always in a conversation, which cannot be
restarted) ``prepare`` raises ``EditedHistoryError``. With ``"restart"`` it prepares the
edited history, regrouped (``_edits.regroup``), against a fresh chain; the tracker starts that
chain only when the request is marked sent (``restart``: refused while another request is in
flight or the tracker changed since), keeps the old chain until a response settles the
request, and puts it back when the request is rewound (``rewound``). ``settle`` adopts the
last whole history a settled request carried as the one the next turn is checked against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from ._delta_check import DeltaCheck
from ._edits import HeldHistory, OnEdit, edited_error, reasoning_groups, regroup
from ._errors import UsageError
from ._items import field
from ._prepared import Prepared
from ._rule_options import Provenance
from ._rules import RuleOptions
from ._tracker_chain import Chain

__all__ = ["Restarts"]


class Restarts:
    """The caller's last whole history, what an edit to it does, and the restarts in flight."""

    __slots__ = ("_following", "_reasoning_for", "_undo", "history", "on_edit")

    def __init__(self, on_edit: OnEdit, history: HeldHistory | None = None) -> None:
        self.on_edit: OnEdit = on_edit
        self.history = HeldHistory() if history is None else history
        # The reasoning groups of every response observed (``reasoning_groups``), so a
        # restart keeps them whole even when the caller's history left the reasoning out.
        # Not in the snapshot: after a restore only what the caller passes (or, stateless,
        # the transcript) is known.
        self._following: dict[str, str] = {}
        self._reasoning_for: dict[str, str] = {}
        # id(prepared) -> (prepared, the chain it replaced): the request is held, so its id()
        # is not reused while it is in flight, and a lookup checks it is that very object.
        self._undo: dict[int, tuple[Prepared, Chain]] = {}

    def decide(
        self,
        chain: Chain,
        items: list[Any],
        build: Callable[[Chain, list[Any]], Prepared],
        *,
        check: DeltaCheck,
        rules: RuleOptions | None,
    ) -> Prepared:
        """``build(chain, items)``, after checking the whole history ``items`` for edits.

        An edit raises ``EditedHistoryError`` (``on_edit="raise"``, or in a conversation) or
        builds the regrouped history against a fresh chain, as a request that restarts.
        """
        verdict = self.history.check(items)
        if verdict.edit is None:
            prepared = build(chain, items)
            return attrs.evolve(prepared, plan=(items, verdict)) if verdict.whole else prepared
        conversation_id = chain.ledger.conversation_id
        if self.on_edit == "raise" or conversation_id is not None:
            raise edited_error(verdict.edit, conversation_id=conversation_id)
        sent, dropped = regroup(items, self._groups(chain), check)
        prepared = build(chain.fresh(rules), sent)
        repairs = (*dropped, *prepared.repairs)
        return attrs.evolve(
            prepared, plan=(items, verdict), restarted=verdict.edit, repairs=repairs
        )

    def _groups(self, chain: Chain) -> Provenance:
        """The reasoning groups an edit must keep whole: every response observed, the history
        passed last and, in stateless mode, the transcript (which holds them after a restore
        too)."""
        held = self.history.groups()
        kept = reasoning_groups(() if chain.transcript is None else chain.transcript.items)
        return Provenance(
            following={**kept.following, **self._following, **held.following},
            reasoning_for={**kept.reasoning_for, **self._reasoning_for, **held.reasoning_for},
        )

    def restart(
        self, prepared: Prepared, chain: Chain, *, unchanged: bool, rules: RuleOptions | None
    ) -> Chain:
        """The new chain ``prepared`` restarts (``chain`` is kept for ``rewound``).

        ``unchanged``: no request is in flight and the tracker did not change since
        ``prepared`` was prepared; otherwise ``UsageError``, and nothing changes.
        """
        if not unchanged:
            raise UsageError(
                f"This request restarts the chain (history edited at {prepared.restarted}), but "
                "the tracker changed since it was prepared or another request is in flight: "
                "observe or rewind that request, then prepare() again."
            )
        self._undo[id(prepared)] = (prepared, chain)
        return chain.fresh(rules)

    def rewound(self, prepared: Prepared) -> Chain | None:
        """The chain to go back to when ``prepared`` restarted it and was rewound."""
        entry = self._undo.get(id(prepared))
        if entry is None or entry[0] is not prepared:
            return None
        del self._undo[id(prepared)]
        return entry[1]

    def settle(self, marked: Iterable[Prepared], output: Sequence[Any] = ()) -> None:
        """A response (its ``output``) answered the ``marked`` requests: adopt the last whole
        history sent, and note the response's reasoning groups."""
        if any(field(item, "type") == "reasoning" for item in output):  # else no group
            groups = reasoning_groups(output)
            self._following.update(groups.following)
            self._reasoning_for.update(groups.reasoning_for)
        plans = [p._plan for p in marked if p._plan is not None]
        if plans:
            items, verdict = plans[-1]
            self.history = self.history.adopted(items, verdict)
        self._undo.clear()
