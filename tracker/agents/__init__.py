"""Drop-in replacement for openai-agents' ``OpenAIServerConversationTracker``.

One line makes every ``Runner.run`` / ``Runner.run_streamed`` with ``previous_response_id``,
``conversation_id`` or ``auto_previous_response_id`` use it::

    import tracker.agents; tracker.agents.install()

or, scoped: ``with tracker.agents.installed(): ...``. Decisions are the SDK's own; the
difference is cost: each identity check is O(1) instead of a scan of every item sent so far.

Supported openai-agents versions: ``SUPPORTED_VERSIONS`` (0.20.0 up to, not including, 0.25;
the SDK's tracker module is the same in all of them; tested against 0.24.0). On any other
version ``install()`` raises ``UnsupportedVersionError``; set the environment variable
``TRACKER_AGENTS_ALLOW_UNSUPPORTED=1`` to try it anyway.

This module imports ``agents``; ``import tracker`` never imports it.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata

import agents.run_internal.oai_conversation as _sdk_module

from .._errors import TrackerError
from ._conversation import OpenAIServerConversationTracker
from ._support import TrackedObjects

__all__ = [
    "SUPPORTED_VERSIONS",
    "OpenAIServerConversationTracker",
    "TrackedObjects",
    "UnsupportedVersionError",
    "check_version",
    "install",
    "installed",
    "is_installed",
    "uninstall",
]

#: Lowest supported openai-agents version (inclusive) and the first unsupported one.
SUPPORTED_VERSIONS = ((0, 20, 0), (0, 25, 0))

_NAME = "OpenAIServerConversationTracker"
# Captured at import, before anything could have swapped it.
_SDK_CLASS: type = _sdk_module.OpenAIServerConversationTracker
# Modules that use the class by name; imported by install() so the swap reaches them.
_SDK_USERS = (
    "agents.run",
    "agents.run_internal.run_loop",
    "agents.run_internal.session_persistence",
    "agents.run_internal.agent_runner_helpers",
)
_ALLOW_ENV = "TRACKER_AGENTS_ALLOW_UNSUPPORTED"

# One entry per install() not yet undone: nested installs restore only at the outermost.
_active_installs: list[None] = []


class UnsupportedVersionError(TrackerError, ImportError):
    """The installed openai-agents version is outside ``SUPPORTED_VERSIONS``."""

    def __init__(self, message: str, *, version: str) -> None:
        super().__init__(message)
        self.version = version


def _parse(version: str) -> tuple[int, ...]:
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if match is None:
        return ()
    return tuple(int(part or 0) for part in match.groups())


def check_version(version: str | None = None) -> str:
    """Return the openai-agents version if supported; raise ``UnsupportedVersionError`` if not.

    ``version`` defaults to the installed distribution's version.
    """
    found = version if version is not None else metadata.version("openai-agents")
    low, high = SUPPORTED_VERSIONS
    if not low <= _parse(found) < high:
        span = f"{'.'.join(map(str, low))} <= version < {'.'.join(map(str, high))}"
        raise UnsupportedVersionError(
            f"tracker.agents supports openai-agents {span}, but {found} is installed: install a "
            f"supported version (pip install 'openai-agents>=0.20,<0.25'), or set {_ALLOW_ENV}=1 "
            "to try this one at your own risk.",
            version=found,
        )
    return found


def _agents_modules() -> list[object]:
    return [
        module
        for name, module in list(sys.modules.items())
        if module is not None and (name == "agents" or name.startswith("agents."))
    ]


def _swap(old: type, new: type) -> int:
    swapped = 0
    for module in _agents_modules():
        if getattr(module, "__dict__", {}).get(_NAME) is old:
            setattr(module, _NAME, new)
            swapped += 1
    return swapped


def install() -> None:
    """Make openai-agents use ``OpenAIServerConversationTracker`` from this package.

    Replaces the class in every loaded ``agents`` module that holds it by name (including the
    SDK's defining module, so later imports get ours too). Installing twice is harmless; each
    ``install()`` is undone by one ``uninstall()``. Raises ``UnsupportedVersionError`` (and
    changes nothing) on an unsupported openai-agents version.
    """
    if os.environ.get(_ALLOW_ENV) != "1":
        check_version()
    for name in _SDK_USERS:
        __import__(name)
    _swap(_SDK_CLASS, OpenAIServerConversationTracker)
    _active_installs.append(None)


def uninstall() -> None:
    """Undo ``install()``: every ``agents`` module holding our class gets the SDK's back.

    Only the last of nested installs restores; calling it when not installed does nothing.
    """
    if not _active_installs:
        return
    _active_installs.pop()
    if not _active_installs:
        _swap(OpenAIServerConversationTracker, _SDK_CLASS)


def is_installed() -> bool:
    """Return True while openai-agents' runner uses this package's tracker."""
    return getattr(_sdk_module, _NAME) is OpenAIServerConversationTracker


@contextmanager
def installed() -> Iterator[None]:
    """Install for the duration of a ``with`` block, then restore what was there before."""
    install()
    try:
        yield
    finally:
        uninstall()
