"""Which errors are transient, and how long to wait before the next try.

The loop calls the client with ``max_retries=0`` and retries itself, because only the loop can
rewind the tracker between tries (and, in a conversation, look for a response the server
stored before the connection dropped). Transient: connection errors and timeouts, 408, 409,
429, 5xx, a 400 ``conversation_locked``, a stream cut before ``response.completed`` and a
``failed`` response with a server-side code. A server's ``x-should-retry: true`` header makes
any status transient; ``x-should-retry: false`` is ignored, since fault injectors send it to
stop the SDK's own retries, not ours. ``Retry-After`` sets the delay (capped at ``max_delay``).
"""

from __future__ import annotations

import random
from typing import Any

import attrs
import openai

from ._results import IncompleteStreamError, ResponseFailedError

__all__ = ["RetryPolicy", "is_transient"]

_RETRY_STATUSES = frozenset({408, 409, 429})
_RETRY_CODES = frozenset({"conversation_locked", "server_error", "rate_limit_exceeded"})


def is_transient(exc: BaseException) -> bool:
    """Whether retrying the same request later may succeed."""
    if isinstance(exc, openai.APIConnectionError | IncompleteStreamError):
        return True  # timeouts are APIConnectionError too
    if isinstance(exc, ResponseFailedError):
        return exc.code in _RETRY_CODES
    if isinstance(exc, openai.APIStatusError):
        if exc.response.headers.get("x-should-retry") == "true":
            return True
        status = exc.status_code
        return status in _RETRY_STATUSES or status >= 500 or exc.code == "conversation_locked"
    return False


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers: Any = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is not None:
            try:
                return max(0.0, float(raw) * scale)
            except ValueError:
                return None
    return None


@attrs.frozen
class RetryPolicy:
    """Exponential backoff with jitter for transient errors.

    ``max_attempts`` counts every try of one request (1 disables retries). The ``n``-th retry
    waits ``initial_delay * multiplier**n`` seconds, capped at ``max_delay``, times a random
    factor in ``[1 - jitter, 1]``; a ``Retry-After`` header replaces that (capped too).
    """

    max_attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    initial_delay: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    max_delay: float = attrs.field(default=8.0, validator=attrs.validators.ge(0))
    multiplier: float = attrs.field(default=2.0, validator=attrs.validators.ge(1))
    jitter: float = attrs.field(
        default=0.25,
        validator=attrs.validators.and_(attrs.validators.ge(0), attrs.validators.le(1)),
    )

    def delay(self, exc: BaseException, failed_attempts: int) -> float | None:
        """Seconds to wait before the next try, or ``None`` to give up and raise ``exc``.

        ``failed_attempts`` counts the tries that failed so far, this one included.
        """
        if failed_attempts >= self.max_attempts or not is_transient(exc):
            return None
        hinted = _retry_after(exc)
        if hinted is not None:
            return min(hinted, self.max_delay)
        base = min(self.initial_delay * self.multiplier ** (failed_attempts - 1), self.max_delay)
        return base * (1.0 - self.jitter * random.random())
