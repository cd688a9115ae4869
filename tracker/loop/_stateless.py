"""Stateless turns (``store=False``): what the loop adds to each request, and when it switches.

With ``store=False`` the loop runs on a stateless tracker (``Tracker(store=False)``): every
request replays the tracker's transcript, so nothing has to be kept on the server, and a
session store persists the transcript with the session (the next turn may run elsewhere).
Each request gets ``store=False``, ``"reasoning.encrypted_content"`` added to the caller's
``include`` (reasoning can then be replayed) and the session's stable ``prompt_cache_key``
unless the caller passed one, so replays keep hitting the prompt cache.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tracker._errors import UsageError
from tracker._tracker import Tracker
from tracker._transcript import INCLUDE_REASONING

__all__ = ["enter_stateless", "stateless_kwargs"]


def enter_stateless(tracker: Tracker, options: Mapping[str, Any]) -> None:
    """Switch ``tracker`` to stateless mode when the turn asks for ``store=False``.

    A fresh tracker switches as is; one that continued a stored chain raises
    ``TranscriptError`` saying how to hand over the chain's items (``go_stateless``).
    ``store=True`` on a stateless tracker is a ``UsageError``: the turn would otherwise be
    sent with ``store=False`` against the caller's word (switching back is not supported).
    """
    store = options.get("store")
    if store is False and tracker.store:
        tracker.go_stateless(() if tracker.responses_observed == 0 else None)
    elif store is True and not tracker.store:
        raise UsageError(
            f"store=True on a stateless tracker (store=False, prompt_cache_key "
            f"{tracker.prompt_cache_key!r}): its turns replay a transcript and are sent with "
            "store=False. Drop store=True to continue it, or start a stored chain with a new "
            "Tracker() given the whole history (tracker.transcript) as input."
        )


def stateless_kwargs(kwargs: dict[str, Any], tracker: Tracker) -> dict[str, Any]:
    """Add what a stateless request needs to ``kwargs`` (the caller's values are kept)."""
    if tracker.store:
        return kwargs
    kwargs["store"] = False
    include = list(kwargs.get("include") or ())
    if INCLUDE_REASONING not in include:
        include.append(INCLUDE_REASONING)
    kwargs["include"] = include
    kwargs.setdefault("prompt_cache_key", tracker.prompt_cache_key)
    return kwargs
