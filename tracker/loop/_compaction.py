"""Compaction in the loop: when a turn compacts, and its one recovery from stale encrypted items.

When (``run_turn(compact=...)``):

- ``compact=True`` compacts before the turn's first request. If calls are pending then (a turn
  cut short by ``MaxTurnsError`` or a crash), the compaction waits until the turn has
  delivered their outputs and runs after its final answer instead: the service would
  summarise the calls without their outputs, so the tracker refuses, and the loop waits.
- ``compact=N`` (a positive int) compacts after the turn's final answer when that response's
  ``usage.input_tokens`` (the context the model read) is at least ``N``. The next turn then
  starts from the compacted context. A response without usage never triggers it.

How: in a stored chain, a standalone ``responses.compact`` (the next request starts a new chain
carrying the window). In a conversation (``responses.compact`` takes none) and in a stateless
turn (``store=False``: the transcript is the context), a ``responses.create`` whose input ends
with a ``compaction_trigger``: its output is the one ``compaction`` item, which the
conversation or the transcript then holds. A compaction after the answer whose request fails
(any API error: a transient one, or e.g. a 400 for a model without compaction) is skipped
(listed in ``TurnResult.errors``; the next turn's end tries again): the turn's answer, which the
tracker already holds, is returned, not raised away.

Recovery: a 400 ``invalid_encrypted_content`` ("The encrypted content for item cmp_.../rs_...
could not be verified", after a key rotation or for an item from elsewhere) means an item the
request carried *inline* is refused: a stateless transcript's reasoning or compaction item, a
standalone compaction's window, or one the caller passed. The loop drops every reasoning and
compaction item with ``encrypted_content`` that the failed request carried (after a key
rotation none of them verifies, and the recovery is tried once per turn), through
``Tracker.strip_encrypted`` and from the turn's own new items, then resends the same delta
(every tool output of the failed request goes again, once: the 400 stored nothing). The turn's
``TurnResult.dropped_encrypted`` lists the ids, an ``EncryptedDropped`` event reports it.

What a chain or conversation holds on the server cannot be dropped by the client: when the
failed request carried no such item inline, the 400 is raised with a note saying so. This is
deliberate: in a stored chain the loop holds only what the server lacks, not the history, so
it could restart only by silently losing the context. Peers that restart (pydantic-ai sends its
full history when it cannot trust the chain, ``responses-api-2026.md`` 1.6) hold the whole
history; so does the caller, who can continue statelessly from it (``Tracker.go_stateless``
then ``strip_encrypted``) or start a new chain with it. The summarised context a dropped
compaction item stood for is lost to the model, in a stateless transcript too: it keeps only
what follows the latest compaction item (unless ``RuleOptions.replay_before_compaction``, which
keeps the items before it, so there only the summary is lost).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from tracker._errors import UsageError
from tracker._identity import IdentitySet
from tracker._items import COMPACTION, field

__all__ = [
    "ENCRYPTED_CODE",
    "compact_setting",
    "crossed",
    "is_stale_encrypted",
    "named_item",
    "strip_sent",
]

#: The error ``code`` of the 400 for encrypted content the service cannot verify.
ENCRYPTED_CODE: Final = "invalid_encrypted_content"
_NAMED = re.compile(r"\bitem ((?:cmp|rs)_[A-Za-z0-9_-]+)")


def compact_setting(compact: object) -> tuple[bool, int | None]:
    """``compact=`` as (compact before the turn, threshold after it); ``UsageError`` if bad."""
    if isinstance(compact, bool):
        return compact, None
    if isinstance(compact, int) and compact >= 1:
        return False, compact
    raise UsageError(
        f"compact must be True/False or a positive int (a usage.input_tokens threshold), "
        f"got {compact!r}."
    )


def crossed(response: Any, threshold: int | None) -> bool:
    """Whether ``response``'s ``usage.input_tokens`` reached ``threshold``."""
    if threshold is None:
        return False
    usage = field(response, "usage")
    tokens = field(usage, "input_tokens") if usage is not None else None
    return isinstance(tokens, int) and tokens >= threshold


def is_stale_encrypted(exc: BaseException) -> bool:
    """Whether ``exc`` is the service's 400 ``invalid_encrypted_content``."""
    return getattr(exc, "status_code", None) == 400 and getattr(exc, "code", None) == (
        ENCRYPTED_CODE
    )


def named_item(exc: BaseException) -> str | None:
    """The ``cmp_``/``rs_`` id the 400's message names, if it names one."""
    found = _NAMED.search(str(getattr(exc, "message", None) or exc))
    return found.group(1) if found else None


def _encrypted(item: Any) -> bool:
    return field(item, "type") in ("reasoning", COMPACTION) and bool(
        field(item, "encrypted_content")
    )


def strip_sent(items: list[Any], delta: Sequence[Any]) -> tuple[list[Any], list[str]]:
    """``items`` without the encrypted items the failed request sent from them (``delta``).

    Items the server or transcript already held were not in ``delta``: they stay, and the
    tracker keeps skipping them.
    """
    sent = IdentitySet()
    for item in delta:
        if _encrypted(item):
            sent.add(item)
    if not sent:
        return items, []
    kept = [item for item in items if item not in sent]
    dropped = [str(field(item, "id")) for item in items if item in sent]
    return kept, dropped
