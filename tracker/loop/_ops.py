"""The operations ``drive`` yields for a driver to perform (``run_turn`` / ``arun_turn``), and
``Op``, their union. The background ones (``Retrieve``, ``Resume``, ``CancelResponse``) live in
``_background``, ``AskApproval`` in ``_approvals``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ._approvals import AskApproval
from ._background import CancelResponse, CancelToken, Resume, Retrieve
from ._results import LoopEvent
from ._tools import Invocation

__all__ = ["Checkpoint", "Compact", "Create", "Emit", "ListNewItems", "Op", "RunTools", "Sleep"]


@attrs.frozen
class Create:
    """Call ``responses.create(**kwargs)`` (streamed when ``stream``); send back the Response.

    A stream that stops before its terminal event raises ``StreamCut`` (``StreamReader``);
    so does a background stream whose ``cancel`` token is set.
    """

    kwargs: Mapping[str, Any]
    stream: bool
    index: int
    cancel: CancelToken | None = None


@attrs.frozen
class Compact:
    """Call ``responses.compact(**kwargs)``; send back the ``CompactedResponse``."""

    kwargs: Mapping[str, Any]


@attrs.frozen
class ListNewItems:
    """List the conversation's items newest first, stopping at the first one ``known``.

    Send back the items not known, oldest first.
    """

    conversation_id: str
    known: Callable[[Any], bool]


@attrs.frozen
class RunTools:
    """Run the invocations, at most ``max_workers`` at once; send back ``(output, is_error)``s.

    A ``str`` plan is already the (error) output for that call. The outcomes keep the plans'
    order, whatever order the tools finish in.
    """

    plans: tuple[Invocation | str, ...]
    max_workers: int


@attrs.frozen
class Sleep:
    """Wait ``seconds`` before the next try (less if ``cancel`` is cancelled meanwhile: the
    wait waits on the token, as ``Retrieve``'s does); send back ``None``."""

    seconds: float
    cancel: CancelToken | None = None


@attrs.frozen
class Emit:
    """Hand ``event`` to the caller's callback."""

    event: LoopEvent


@attrs.frozen
class Checkpoint:
    """The turn made progress worth saving (a store session saves it; others ignore it).

    ``outputs`` are the tool outputs computed for the calls now pending, not yet delivered:
    after a crash, whoever resumes the session sends them instead of running the tools again.
    """

    outputs: tuple[Mapping[str, Any], ...]


Op = (
    Create
    | Compact
    | ListNewItems
    | RunTools
    | Sleep
    | Emit
    | Checkpoint
    | Retrieve
    | Resume
    | CancelResponse
    | AskApproval
)
