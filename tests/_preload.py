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
the coverage measured is the same, and it returns the very same body. Likewise untraced:

- collection, but for the import of each test module (which imports the tracker modules whose
  module-level lines must be measured): pytest's own work, 1 s CPU a worker, and on a fresh
  clone its rewriting of the test modules' asserts (4 s) and Hypothesis' Unicode tables for
  ``text()`` (~15 s traced, 7 s not, in each worker that draws text first);
- the xdist controller after its conftest import: no code of ours runs in it after that.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
from collections.abc import Callable, Coroutine, Generator
from typing import Any

import pytest

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


def _ctracer() -> Any:
    """This thread's coverage tracer if it is a CTracer (``stop``/``start``), else None."""
    tracer = sys.gettrace()
    return tracer if hasattr(tracer, "stop") and hasattr(tracer, "start") else None


@contextlib.contextmanager
def _tracer_stopped() -> Generator[None]:
    """This thread's coverage tracer (a CTracer: ``stop``/``start``) off for the block."""
    tracer = _ctracer()
    if tracer is None:
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


#: The tracer stopped while this process collects tests (empty when none is).
_COLLECTING: list[Any] = []


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """In the xdist controller no code of ours runs after its conftest import: stop tracing."""
    if not session.config.pluginmanager.has_plugin("dsession"):
        return  # a worker, or a run without xdist: its tests run here
    tracer = _ctracer()
    if tracer is not None:
        tracer.stop()


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Generator[None, object, object]:
    """Collect with the tracer stopped, but for the import of each test module."""
    tracer = _ctracer()
    if tracer is None:
        return (yield)
    tracer.stop()
    _COLLECTING.append(tracer)
    try:
        return (yield)
    finally:
        _COLLECTING.clear()
        _build_hypothesis_tables()
        tracer.start()


def _build_hypothesis_tables() -> None:
    """Have Hypothesis build (or read from ``.hypothesis/``) the Unicode tables of ``text()``
    now, untraced: on a fresh clone it walks every code point, ~15 s of CPU under the tracer."""
    if "hypothesis" in sys.modules:
        from hypothesis import strategies

        strategies.text().validate()


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, object, object]:
    """Import a test module with the tracer on: the module-level lines of the tracker modules it
    imports first are measured (pytest's own collection work around it is not traced)."""
    if _COLLECTING and isinstance(collector, pytest.Module):
        _COLLECTING[0].start()
        try:
            collector.obj  # the import (pytest keeps the module)
        except BaseException:  # collect() imports it again and reports the error
            pass
        finally:
            _COLLECTING[0].stop()
    return (yield)


if os.environ.get("PYTEST_XDIST_WORKER"):
    for name in LIBRARIES:
        with contextlib.suppress(ImportError):  # an optional extra not installed: its tests skip
            importlib.import_module(name)
    # pytest's assertion rewriting of a test module (on a fresh clone, or after an edit) is
    # AST work of pytest's own, done inside the import that pytest_make_collect_report traces.
    from _pytest.assertion import rewrite

    if hasattr(rewrite, "_rewrite_test"):
        rewrite._rewrite_test = _untraced(rewrite._rewrite_test)
    with contextlib.suppress(ImportError):
        from openai._utils import _transform

        _transform.transform = _untraced(_transform.transform)
        _transform.async_transform = _untraced_async(_transform.async_transform)
