"""Drop-in replacement for openai-agents' server-conversation tracker, for every release.

One line makes every ``Runner.run`` / ``Runner.run_streamed`` with ``previous_response_id``,
``conversation_id`` or ``auto_previous_response_id`` use it::

    import tracker.agents; tracker.agents.install()

or, scoped: ``with tracker.agents.installed(): ...``. Decisions are the SDK's own.

Supported openai-agents releases: ``SUPPORTED`` (``>=0.4.0,<0.25``). On 0.4.0 through 0.17.6
the SDK's tracker remembers sent items by bare ``id()`` integers and drops a fresh tool output
whenever CPython reuses a dead item's address; ``install()`` fixes that. On 0.17.7 - 0.19.x
it makes the SDK's identity checks O(1); on 0.20 and later it installs this package's own
class, whose every check is O(1) (see ``tracker.agents._releases`` for the table). On any
other version ``install()`` raises ``UnsupportedVersionError``; set the environment variable
``TRACKER_AGENTS_ALLOW_UNSUPPORTED=1`` to try it anyway. A release without the tracker class
this module replaces (before 0.4.0) raises it already at import.

Needs the ``agents`` extra (``pip install 'tracker[agents]'``); ``import tracker`` never
imports this module.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata

try:
    import agents as _agents  # noqa: F401 - fails early, with the fix, without the extra
except ImportError as _missing:
    raise ImportError(
        "tracker.agents needs openai-agents, which is not installed: pip install 'tracker[agents]'"
    ) from _missing

from ._objects import TrackedObjects
from ._releases import (
    ALLOW_ENV as _ALLOW_ENV,
)
from ._releases import (
    SUPPORTED,
    SUPPORTED_VERSIONS,
    UnsupportedVersionError,
    detect,
    tracker_class,
)
from ._releases import check_version as _check_version

__all__ = [
    "SUPPORTED",
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

_SURFACE = detect(metadata.version("openai-agents"))
# Captured at import, before anything could have swapped it; a release without the class
# (before 0.4.0, or one that moved it) is refused here, with the supported range.
_sdk_module, _SDK_CLASS = tracker_class(_SURFACE, metadata.version("openai-agents"))
_NAME = _SURFACE.name
_SDK_USERS = _SURFACE.users

if _SURFACE.ours:
    from ._conversation import OpenAIServerConversationTracker
else:
    from ._legacy import adapt_tracker_class

    #: The tracker ``install()`` puts in place for the installed openai-agents release.
    OpenAIServerConversationTracker = adapt_tracker_class(  # type: ignore[assignment,misc]
        _SDK_CLASS, _sdk_module
    )

# One entry per install() not yet undone: nested installs restore only at the outermost.
_active_installs: list[None] = []


def check_version(version: str | None = None) -> str:
    """Return the openai-agents version if supported; raise ``UnsupportedVersionError`` if not.

    ``version`` defaults to the installed distribution's version.
    """
    return _check_version(version if version is not None else metadata.version("openai-agents"))


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
    """Make openai-agents use ``OpenAIServerConversationTracker`` (this release's, see above).

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
