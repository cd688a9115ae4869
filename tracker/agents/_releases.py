"""Which openai-agents releases ``tracker.agents`` supports, and which tracker each one gets.

Three tracker surfaces, read from each release's wheel:

====================  =========================================  ================================
releases              the SDK's class                            what ``install()`` puts in place
====================  =========================================  ================================
0.4.0 - 0.7.x         ``agents.run._ServerConversationTracker``  the SDK's class, ids pinned
0.8.0 - 0.17.6        ``agents.run_internal.oai_conversation``   the SDK's class, ids pinned
                      ``.OpenAIServerConversationTracker``,
                      remembers bare ``id()`` integers
0.17.7 - 0.19.x       same, holds objects in lists               the SDK's class, O(1) lookups
0.20.0 - 0.24.x       same, 0.20 surface                         this package's own class
====================  =========================================  ================================

"ids pinned" and "O(1) lookups": see ``tracker.agents._legacy``. This module imports
``agents`` only inside ``detect()``.
"""

from __future__ import annotations

import importlib
import re
import types
from dataclasses import dataclass
from importlib import metadata

from .._errors import TrackerError

__all__ = [
    "SUPPORTED",
    "SUPPORTED_VERSIONS",
    "Surface",
    "UnsupportedVersionError",
    "check_version",
    "detect",
    "parse_version",
    "tracker_class",
]

#: Lowest supported openai-agents version (inclusive) and the first unsupported one.
SUPPORTED_VERSIONS = ((0, 4, 0), (0, 25, 0))
#: The same range as a pip requirement specifier.
SUPPORTED = ">=0.4.0,<0.25"
#: Environment variable that lets ``install()`` try an unsupported release.
ALLOW_ENV = "TRACKER_AGENTS_ALLOW_UNSUPPORTED"

_MODERN = (0, 8, 0)  # the class moved to agents.run_internal.oai_conversation
_OURS = (0, 20, 0)  # this package's own class matches the SDK's from here on
_CLASS = "OpenAIServerConversationTracker"
_OLD_CLASS = "_ServerConversationTracker"
# Modules that use the class by name (0.8.0 and later); install() imports them first.
_USERS = (
    "agents.run",
    "agents.run_internal.run_loop",
    "agents.run_internal.session_persistence",
    "agents.run_internal.agent_runner_helpers",
)


class UnsupportedVersionError(TrackerError, ImportError):
    """The installed openai-agents version is outside ``SUPPORTED_VERSIONS``."""

    def __init__(self, message: str, *, version: str) -> None:
        super().__init__(message)
        self.version = version


def parse_version(version: str) -> tuple[int, ...]:
    """Return ``(major, minor, patch)`` of a version string (``()`` if it has none)."""
    match = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version)
    if match is None:
        return ()
    return tuple(int(part or 0) for part in match.groups())


def installed_version() -> str:
    """Return the installed openai-agents distribution's version."""
    return metadata.version("openai-agents")


def check_version(version: str | None = None) -> str:
    """Return the openai-agents version if supported; raise ``UnsupportedVersionError`` if not.

    ``version`` defaults to the installed distribution's version.
    """
    found = version if version is not None else installed_version()
    low, high = SUPPORTED_VERSIONS
    if not low <= parse_version(found) < high:
        span = f"{'.'.join(map(str, low))} <= version < {'.'.join(map(str, high))}"
        raise UnsupportedVersionError(
            f"tracker.agents supports openai-agents {span}, but {found} is installed: install a "
            f"supported version (pip install 'openai-agents{SUPPORTED}'), or set {ALLOW_ENV}=1 "
            "to try this one at your own risk.",
            version=found,
        )
    return found


@dataclass(frozen=True)
class Surface:
    """Where the installed release keeps its tracker class and who uses it by name."""

    #: The SDK module that defines the class.
    module: str
    #: The class's name there (and in every module that imports it).
    name: str
    #: Modules to import before swapping, so the swap reaches them.
    users: tuple[str, ...]
    #: True when this package's own class serves the release (0.20 and later).
    ours: bool


def detect(version: str) -> Surface:
    """Return the tracker surface of openai-agents ``version`` (as installed).

    Unknown versions get the surface their modules show: the newest class if present.
    """
    parsed = parse_version(version)
    if parsed and parsed < _MODERN:
        return Surface("agents.run", _OLD_CLASS, ("agents.run",), ours=False)
    try:
        importlib.import_module("agents.run_internal.oai_conversation")
    except ModuleNotFoundError:
        return Surface("agents.run", _OLD_CLASS, ("agents.run",), ours=False)
    modern = not parsed or parsed >= _OURS
    return Surface("agents.run_internal.oai_conversation", _CLASS, _USERS, ours=modern)


def tracker_class(surface: Surface, version: str) -> tuple[types.ModuleType, type]:
    """Return the module and tracker class ``surface`` names in openai-agents ``version``.

    Raises ``UnsupportedVersionError`` (naming the version, what is missing and the fix) when
    the release does not have that class: a release before 0.4.0, or a newer one that moved it.
    """
    try:
        module = importlib.import_module(surface.module)
        found = getattr(module, surface.name)
    except (ImportError, AttributeError) as missing:
        raise UnsupportedVersionError(
            f"openai-agents {version} has no {surface.module}.{surface.name}, the tracker class "
            f"tracker.agents replaces: it supports openai-agents {SUPPORTED} only; install one "
            f"(pip install 'openai-agents{SUPPORTED}').",
            version=version,
        ) from missing
    return module, found
