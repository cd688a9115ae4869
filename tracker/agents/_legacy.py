"""Trackers for openai-agents releases before 0.20: the SDK's own class, made exact.

Before 0.20 the SDK's tracker surface changed in almost every minor release (attributes,
method signatures, which items hydrate marks, how filters are traced back), so this module
does not re-implement those decisions. It derives a subclass of the installed release's
class whose methods run the release's own code with two name lookups redirected:

* ``id`` becomes ``pinned_id``. Releases 0.4.0 through 0.17.6 remember sent and
  server-returned items by bare ``id()`` integers; when such an object dies, CPython gives its
  address to a later object (typically the next turn's fresh ``function_call_output`` dict),
  which then reads as "already sent" and is dropped. A ``PinnedId`` is the same integer (same
  hash, equal), but it holds its object, so the address cannot be reused while it is
  remembered. Every decision is otherwise the release's own, including its container types.
* 0.17.7 through 0.19.x already hold objects, in lists scanned per check; their three
  identity helpers are replaced by O(1) ones when the containers are ``TrackedObjects``
  (which the subclass puts in place of the default empty lists).

Nothing in the SDK is modified: the subclass carries rebound copies of the functions, built
from the SDK's code objects with a private copy of the defining module's namespace.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from ._objects import TrackedObjects, pinned_id

__all__ = ["IDENTITY_HELPERS", "adapt_tracker_class"]

#: The SDK's module-level identity helpers in 0.17.7 - 0.19.x (name -> our replacement).
IDENTITY_HELPERS: dict[str, Callable[..., Any]] = {}


def _is_tracked_object(items: Any, candidate: Any) -> bool:
    """Whether the very object ``candidate`` is among ``items`` (O(1) for TrackedObjects)."""
    if type(items) is TrackedObjects:
        return candidate in items
    return any(item is candidate for item in items)


def _track_object_once(items: Any, candidate: Any) -> None:
    """Add ``candidate`` to ``items`` unless that very object is there already."""
    if type(items) is TrackedObjects or not any(item is candidate for item in items):
        items.append(candidate)


def _untrack_object(items: Any, candidate: Any) -> None:
    """Remove the very object ``candidate`` from ``items`` if it is there."""
    if type(items) is TrackedObjects:
        items.discard(candidate)
        return
    for index, item in enumerate(items):
        if item is candidate:
            del items[index]
            return


IDENTITY_HELPERS.update(
    _is_tracked_object=_is_tracked_object,
    _track_object_once=_track_object_once,
    _untrack_object=_untrack_object,
)


def _rebind(function: types.FunctionType, namespace: dict[str, Any]) -> types.FunctionType:
    """Return ``function`` running the same code with ``namespace`` as its globals."""
    rebound = types.FunctionType(
        function.__code__,
        namespace,
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    rebound.__kwdefaults__ = function.__kwdefaults__
    rebound.__qualname__ = function.__qualname__
    rebound.__doc__ = function.__doc__
    rebound.__dict__.update(function.__dict__)
    return rebound


def _hold_objects(self: Any) -> None:
    """Put ``TrackedObjects`` in place of the default empty identity lists."""
    for name in ("sent_items", "server_items"):
        value = getattr(self, name, None)
        if type(value) is list:
            setattr(self, name, TrackedObjects(value))


def adapt_tracker_class(sdk_class: type, module: types.ModuleType) -> type:
    """Return a subclass of ``sdk_class`` (defined in ``module``) that never matches a stale id.

    The subclass has the same name, constructor and attributes; see the module docstring.
    """
    namespace = dict(vars(module))
    namespace["id"] = pinned_id
    holds_lists = all(name in namespace for name in IDENTITY_HELPERS)
    if holds_lists:
        namespace.update(IDENTITY_HELPERS)
    members: dict[str, Any] = {
        "__module__": __name__,
        "__doc__": (
            f"openai-agents' ``{sdk_class.__name__}`` whose identity checks cannot match a "
            "reused address (see ``tracker.agents._legacy``)."
        ),
    }
    for name, value in vars(sdk_class).items():
        if isinstance(value, types.FunctionType) and name != "__init__":
            members[name] = _rebind(value, namespace)
    if holds_lists:
        parent_init: Callable[..., None] = getattr(sdk_class, "__init__")  # noqa: B009

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            parent_init(self, *args, **kwargs)
            _hold_objects(self)

        __init__.__doc__ = parent_init.__doc__
        members["__init__"] = __init__
    return type(sdk_class.__name__, (sdk_class,), members)
