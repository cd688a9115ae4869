"""A turn's settings: ``TurnSpec`` and ``make_spec``, which checks them."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from tracker._errors import UsageError

from ._approvals import ApprovalHandler
from ._background import DEFAULT_POLL_TIMEOUT, CancelToken
from ._compaction import compact_setting
from ._retry import RetryPolicy
from ._tools import FunctionTool, function_tool

__all__ = ["DEFAULT_TOOL_WORKERS", "TurnSpec", "make_spec"]

DEFAULT_TOOL_WORKERS = 8
"""How many tool calls of one response run at the same time, by default."""

#: Keyword arguments the loop sets itself on every ``responses.create`` call.
_RESERVED = frozenset({"model", "input", "tools", "stream", "previous_response_id", "conversation"})


@attrs.frozen
class TurnSpec:
    """Everything about a turn except the tracker and the input; see ``make_spec``."""

    model: str
    tools: Mapping[str, FunctionTool]
    tool_specs: tuple[Mapping[str, Any], ...]
    stream: bool
    max_turns: int
    retry: RetryPolicy
    options: Mapping[str, Any]
    max_tool_workers: int
    compact: bool = False
    poll_interval: float = 1.0
    cancel: CancelToken | None = None
    clock: Callable[[], float] = time.monotonic
    #: Seconds a background response may stay queued/in progress (``None``: no bound).
    poll_timeout: float | None = DEFAULT_POLL_TIMEOUT
    #: Compact after the turn when its final response's ``usage.input_tokens`` reaches this.
    compact_after: int | None = None
    recover_encrypted: bool = True
    #: Answers each ``mcp_approval_request`` (``_approvals``); ``None``: the turn ends there.
    on_approval: ApprovalHandler | None = None


def make_spec(
    model: str,
    tools: Sequence[Any],
    *,
    stream: bool,
    max_turns: int,
    retry: RetryPolicy,
    options: Mapping[str, Any],
    max_tool_workers: int = DEFAULT_TOOL_WORKERS,
    compact: bool | int = False,
    recover_encrypted: bool = True,
    poll_interval: float = 1.0,
    cancel: CancelToken | None = None,
    clock: Callable[[], float] = time.monotonic,
    on_approval: ApprovalHandler | None = None,
    poll_timeout: float | None = DEFAULT_POLL_TIMEOUT,
) -> TurnSpec:
    """Check the turn's settings; raise ``UsageError`` naming the bad one.

    ``tools`` holds callables, ``FunctionTool``s, or tool dicts passed through unchanged (for
    tools the server runs, such as ``{"type": "web_search"}``).
    """
    if not isinstance(model, str) or not model:
        raise UsageError(f"model must be a non-empty model name, got {model!r}.")
    _check_positive("max_turns", max_turns, "model calls per turn")
    _check_positive("max_tool_workers", max_tool_workers, "tool calls run at once")
    _check_polling(poll_interval, poll_timeout)
    if cancel is not None and not isinstance(cancel, CancelToken):
        raise UsageError(f"cancel must be a tracker.loop.CancelToken, got {cancel!r}.")
    if on_approval is not None and not callable(on_approval):
        raise UsageError(f"on_approval must be a callable, got {on_approval!r}.")
    before, threshold = compact_setting(compact)
    clash = sorted(_RESERVED & set(options))
    if clash:
        raise UsageError(
            f"Option(s) {', '.join(clash)} are set by the loop itself: pass input=..., "
            "tools=..., stream=..., and a tracker (or conversation=...) instead."
        )
    functions: dict[str, FunctionTool] = {}
    specs: list[Mapping[str, Any]] = []
    for tool in tools:
        if isinstance(tool, Mapping):
            specs.append(tool)
            continue
        if not (callable(tool) or isinstance(tool, FunctionTool)):
            raise UsageError(f"Tool {tool!r} is neither a callable nor a tool dict.")
        ft: FunctionTool = function_tool(tool)
        if ft.name in functions:
            raise UsageError(f"Two tools are named {ft.name!r}: pass name=... to function_tool.")
        functions[ft.name] = ft
        specs.append(ft.spec())
    return TurnSpec(
        model=model,
        tools=functions,
        tool_specs=tuple(specs),
        stream=bool(stream),
        max_turns=max_turns,
        retry=retry,
        options=dict(options),
        max_tool_workers=max_tool_workers,
        poll_interval=float(poll_interval),
        poll_timeout=None if poll_timeout is None else float(poll_timeout),
        cancel=cancel,
        clock=clock,
        compact=before,
        compact_after=threshold,
        recover_encrypted=bool(recover_encrypted),
        on_approval=on_approval,
    )


def _check_polling(poll_interval: object, poll_timeout: object) -> None:
    """``poll_interval`` seconds >= 0; ``poll_timeout`` seconds > 0 or ``None``."""
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, int | float):
        raise UsageError(f"poll_interval must be seconds (a number), got {poll_interval!r}.")
    if poll_interval < 0:
        raise UsageError(f"poll_interval must be >= 0 seconds, got {poll_interval!r}.")
    if poll_timeout is not None and (
        isinstance(poll_timeout, bool)
        or not isinstance(poll_timeout, int | float)
        or not poll_timeout > 0
    ):
        raise UsageError(
            f"poll_timeout must be seconds > 0 (or None: no bound), got {poll_timeout!r}."
        )


def _check_positive(name: str, value: object, meaning: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{name} must be a positive int ({meaning}), got {value!r}.")
