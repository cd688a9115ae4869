"""Install the guard on an ``OpenAI`` / ``AsyncOpenAI`` client's resources.

The guard replaces, on one client's own resource objects, the methods that send a history
(``responses.create / parse / stream / compact``, ``chat.completions.create / parse /
stream``) with wrappers that check the request first. The SDK builds its
``with_raw_response`` and ``with_streaming_response`` views from those same attributes, the
first time they are read, so frameworks that call ``responses.with_raw_response.create`` are
guarded too; every other method is the client's own. This works the same on the httpx (2.x)
and httpx2 (3.x) SDKs, since it never touches the transport.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, TypeVar

import attrs
import openai

from .._errors import HistoryError, ItemError, UsageError
from .._repair_actions import RepairAction, RepairPolicy
from .._rules import Violation
from ._request import Api, Checked, check, fix_rejected, history_key

__all__ = ["GuardPolicy", "GuardReport", "guard"]

#: What the guard does with a request the service would reject.
GuardPolicy = Literal["repair", "raise", "report"]
_POLICIES: Final = ("repair", "raise", "report")

_RESPONSES_METHODS: Final = ("create", "parse", "stream", "compact")
_CHAT_METHODS: Final = ("create", "parse", "stream")

_log: Final = logging.getLogger("tracker.guard")

ClientT = TypeVar("ClientT", openai.OpenAI, openai.AsyncOpenAI)


@attrs.frozen
class GuardReport:
    """What the guard saw in one request and what it did.

    ``endpoint`` is the method called (``"responses.create"``, ``"chat.completions.stream"``,
    ...); ``outcome`` is ``"repaired"`` (sent repaired), ``"raised"`` (not sent: a
    ``HistoryError`` follows), ``"reported"`` (sent as it was: policy ``"report"``, or a
    violation the repair cannot fix, such as a duplicate item id) or ``"retried"`` (the service
    answered ``rejection`` with a pairing 400; the request was repaired and sent once more).
    ``violations`` are what ``tracker.validate_history`` found before sending (indices into the
    request's ``input`` / ``messages``), ``actions`` the ``RepairAction``s taken (an action with
    ``index=None`` answers a call the server holds).
    """

    endpoint: str
    api: Api
    outcome: Literal["repaired", "raised", "reported", "retried"]
    violations: tuple[Violation, ...]
    actions: tuple[RepairAction, ...] = ()
    rejection: str | None = None

    def __str__(self) -> str:
        what = f"{self.endpoint}: {self.outcome}"
        if self.rejection:
            what += f" after the service answered 400 {self.rejection!r}"
        if self.violations:
            first = self.violations[0]
            what += f"; {len(self.violations)} violation(s), first: {first.message}"
        if self.actions:
            what += "; " + "; ".join(str(action) for action in self.actions)
        return what


def _where(api: Api, violation: Violation) -> str:
    key = history_key(api)
    return key if violation.index is None else f"{key}[{violation.index}]"


@attrs.frozen
class _Guard:
    policy: GuardPolicy
    repair: RepairPolicy
    on_report: Callable[[GuardReport], None] | None
    retry_on_400: bool
    logger: logging.Logger

    def _emit(self, report: GuardReport) -> None:
        if report.outcome != "raised":
            self.logger.warning("%s", report)
        if self.on_report is not None:
            self.on_report(report)

    def before(self, api: Api, endpoint: str, kwargs: dict[str, Any]) -> Mapping[str, Any]:
        """The request to send (``kwargs`` itself when valid); raises under ``"raise"``."""
        try:
            checked = check(api, kwargs, repair=self.repair if self.policy == "repair" else None)
        except ItemError as error:
            if self.policy == "raise":
                raise
            # Never break a request over a history the guard cannot read: the service decides.
            self.logger.warning("%s: history not checked, sent as it was: %s", endpoint, error)
            return kwargs
        if not checked.violations:
            return checked.kwargs
        if self.policy == "repair" and checked.actions:
            self._emit(GuardReport(endpoint, api, "repaired", checked.violations, checked.actions))
            return checked.kwargs
        if self.policy != "raise":  # "report", or nothing the repair can change (D1, A1-A3)
            self._emit(GuardReport(endpoint, api, "reported", checked.violations))
            return checked.kwargs
        self._emit(GuardReport(endpoint, api, "raised", checked.violations))
        first = checked.violations[0]
        more = len(checked.violations) - 1
        raise HistoryError(
            f"{endpoint}: the service would reject this request with {first.status} at "
            f"{_where(api, first)}: {first.message}"
            + (f" ({more} more violation(s) in .violations)" if more else "")
            + f" Repair the history first (tracker.repair_history(items, api={api!r})), or "
            "guard the client with policy='repair'.",
            violations=checked.violations,
        )

    def after(
        self, api: Api, endpoint: str, kwargs: Mapping[str, Any], error: openai.BadRequestError
    ) -> Mapping[str, Any] | None:
        """The request to send again after a pairing 400, or ``None`` to re-raise ``error``."""
        if not self.retry_on_400:
            return None
        message = _error_message(error)
        checked: Checked | None = fix_rejected(api, kwargs, message, self.repair)
        if checked is None:
            return None
        self._emit(
            GuardReport(endpoint, api, "retried", checked.violations, checked.actions, message)
        )
        return checked.kwargs

    def wrap(self, method: Callable[..., Any], api: Api, endpoint: str) -> Callable[..., Any]:
        """``method`` with the check before it (and, if enabled, one retry after a 400)."""
        if inspect.iscoroutinefunction(method):

            @functools.wraps(method)
            async def guarded_async(*args: Any, **kwargs: Any) -> Any:
                sent = self.before(api, endpoint, kwargs)
                try:
                    return await method(*args, **sent)
                except openai.BadRequestError as error:
                    again = self.after(api, endpoint, sent, error)
                    if again is None:
                        raise
                    return await method(*args, **again)

            return guarded_async

        @functools.wraps(method)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            sent = self.before(api, endpoint, kwargs)
            try:
                return method(*args, **sent)
            except openai.BadRequestError as error:
                again = self.after(api, endpoint, sent, error)
                if again is None:
                    raise
                return method(*args, **again)

        return guarded

    def install(self, client: Any) -> None:
        """Wrap ``client``'s history-sending methods, and its ``copy`` / ``with_options``."""
        responses = client.responses
        for name in _RESPONSES_METHODS:
            method = getattr(responses, name, None)
            if method is not None:
                setattr(responses, name, self.wrap(method, "responses", f"responses.{name}"))
        completions = client.chat.completions
        for name in _CHAT_METHODS:
            method = getattr(completions, name, None)
            if method is not None:
                setattr(completions, name, self.wrap(method, "chat", f"chat.completions.{name}"))
        copy = client.copy

        @functools.wraps(copy)
        def guarded_copy(*args: Any, **kwargs: Any) -> Any:
            new = copy(*args, **kwargs)
            self.install(new)
            return new

        client.copy = guarded_copy
        client.with_options = guarded_copy
        client._tracker_unguarded_copy = copy  # so guard() of a guarded client guards once


def _error_message(error: openai.BadRequestError) -> str:
    body = error.body
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping) and isinstance(inner.get("message"), str):
            return str(inner["message"])
    return str(error.message)


def guard(
    client: ClientT,
    *,
    policy: GuardPolicy = "repair",
    repair: RepairPolicy = "placeholder",
    on_report: Callable[[GuardReport], None] | None = None,
    retry_on_400: bool = False,
    logger: logging.Logger | None = None,
) -> ClientT:
    """Return a copy of ``client`` that checks every history it sends before sending it.

    Every ``responses.create`` / ``parse`` / ``stream`` / ``compact`` and
    ``chat.completions.create`` / ``parse`` / ``stream`` request (plain or ``stream=True``,
    also through ``with_raw_response`` / ``with_streaming_response``) has its ``input`` or
    ``messages`` checked with ``tracker.validate_history``. A request the service would reject
    is, by ``policy``: ``"repair"`` (the default) repaired with ``tracker.repair_history``
    (``repair="placeholder"``: a call without a result gets a flagged placeholder that says no
    result was recorded; ``"drop"``: the call goes) and sent; ``"raise"``d as a
    ``tracker.HistoryError`` naming the first violation, nothing sent; or ``"report"``ed and
    sent as it is. A valid request is sent as it was given (no copy). Each request that is not
    valid is logged at WARNING on the ``tracker.guard`` logger (or ``logger``) and passed to
    ``on_report`` as a ``GuardReport``; under ``"raise"`` only ``on_report`` sees it.

    ``retry_on_400=True``: when the service still answers a tool-pairing 400 (a call the server
    holds left without its output, an output it has no call for, or any Chat pairing error),
    the request is repaired by what the error names and sent once more; a second error is
    raised as it is. ``stream()`` helpers send lazily, so they are checked but not retried.

    The copy shares ``client``'s connection pool; ``client`` itself is left as it was, and
    every other method of the copy is the client's own. ``copy()`` / ``with_options()`` of the
    copy are guarded too; guarding a guarded client replaces its guard (one check per
    request). Raises ``tracker.UsageError`` for an unknown ``policy`` or ``repair``, or when
    ``client`` is not an ``openai.OpenAI`` / ``openai.AsyncOpenAI`` client.
    """
    if not isinstance(client, openai.OpenAI | openai.AsyncOpenAI):
        raise UsageError(
            f"guard() takes an openai.OpenAI or openai.AsyncOpenAI client, not "
            f"{type(client).__module__}.{type(client).__qualname__}: guard the openai client "
            "the framework sends through, and hand the framework the guarded copy (e.g. "
            "agent-framework's OpenAIChatClient(async_client=guard(AsyncOpenAI(...))))."
        )
    if policy not in _POLICIES:
        raise UsageError(f"policy must be one of {', '.join(_POLICIES)}, not {policy!r}.")
    if repair not in ("placeholder", "drop"):
        raise UsageError(f"repair must be 'placeholder' or 'drop', not {repair!r}.")
    guarded = getattr(client, "_tracker_unguarded_copy", client.copy)()
    _Guard(policy, repair, on_report, retry_on_400, logger or _log).install(guarded)
    return guarded
