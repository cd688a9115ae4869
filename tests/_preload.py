"""A pytest plugin (``python3 dev.py test`` passes ``-p tests._preload``): in an xdist worker,
import the big third-party libraries the test modules import before coverage starts.

Coverage measures ``tracker/`` only, but its tracer still sees every call in the code it does
not measure: importing openai-agents, openai and the AG-UI adapter under it costs each worker
~60% more CPU (about 8 s). Imported here, at plugin load, they are in ``sys.modules`` before
pytest-cov starts tracing, so the test modules' own imports are free. Nothing from ``tracker``
is imported here: its module-level lines must run under coverage. The controller process
imports nothing: it collects no tests.

The same tracer makes the code it does not measure about 2.3 times slower while it is on (3.11
traces every frame once ``sys.settrace`` is set). The worst of it is ``openai``'s request-body
transform (``openai._utils._transform``: every input item walked against every member of the
item union), which in a stateless run grows with the whole history at every request: it is
run with the thread's coverage tracer stopped (``_untraced``). It calls no code of ours, so
the coverage measured is the same, and it returns the very same body.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
from collections.abc import Callable, Coroutine, Generator
from typing import Any

LIBRARIES = (
    "openai",
    "agents",
    "agents.run",
    "agent_framework_ag_ui",
    "agent_framework_openai",
    "hypothesis",
    "redis",
    "psycopg",
)


@contextlib.contextmanager
def _tracer_stopped() -> Generator[None]:
    """This thread's coverage tracer (a CTracer: ``stop``/``start``) off for the block."""
    tracer = sys.gettrace()
    if not (hasattr(tracer, "stop") and hasattr(tracer, "start")):
        yield  # no coverage, or its sys.monitoring core (Python 3.12+), which costs little
        return
    tracer.stop()
    try:
        yield
    finally:
        tracer.start()


def _untraced(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (a pure function of openai's, calling none of ours) run untraced."""

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        with _tracer_stopped():
            return function(*args, **kwargs)

    return run


def _untraced_async(function: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    """The coroutine function ``function`` run untraced between its suspensions (the tracer is
    back on whenever it hands control to the event loop, so other tasks stay measured)."""

    @functools.wraps(function)
    async def run(*args: Any, **kwargs: Any) -> Any:
        return await _Stepped(function(*args, **kwargs))

    return run


class _Stepped:
    """Await ``coroutine``, each step of it with the tracer stopped."""

    def __init__(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        self.coroutine = coroutine

    def __await__(self) -> Generator[Any, Any, Any]:
        send: Any = None
        error: BaseException | None = None
        while True:
            try:
                with _tracer_stopped():
                    if error is None:
                        suspended = self.coroutine.send(send)
                    else:
                        suspended = self.coroutine.throw(error)
            except StopIteration as done:
                return done.value
            try:
                send, error = (yield suspended), None
            except BaseException as thrown:  # handed on to the coroutine, as an await would
                send, error = None, thrown


if os.environ.get("PYTEST_XDIST_WORKER"):
    for name in LIBRARIES:
        with contextlib.suppress(ImportError):  # an optional extra not installed: its tests skip
            importlib.import_module(name)
    with contextlib.suppress(ImportError):
        from openai._utils import _transform

        _transform.transform = _untraced(_transform.transform)
        _transform.async_transform = _untraced_async(_transform.async_transform)
