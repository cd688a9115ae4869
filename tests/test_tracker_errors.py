"""The exception tree drawn in ``tracker/_errors.py`` is every exception class in ``tracker``."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import textwrap

import tracker
from tracker import TrackerError, _errors

# A drawn line: tree prefix, branch, class name, (builtin it refines), [integration module].
_LINE = re.compile(r"^(?P<prefix>[│ ]*)(?P<branch>[├└]── )?(?P<name>[A-Z]\w*)\b")
_BUILTIN = re.compile(r"^\((?P<builtin>\w+)\)")
_MODULE = re.compile(r"^\s*\[(?P<module>[\w.]+)\]")


def drawn_tree() -> dict[str, tuple[str | None, str | None, str | None]]:
    """Each drawn class: (drawn parent, drawn builtin, drawn module marker)."""
    doc = _errors.__doc__ or ""
    block = textwrap.dedent(doc.split("::\n\n", 1)[1].split("\n\n", 1)[0])
    drawn: dict[str, tuple[str | None, str | None, str | None]] = {}
    parents: list[str] = []
    for line in block.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue  # a description continued from the line above
        depth = (len(match["prefix"]) + (4 if match["branch"] else 0)) // 4
        rest = line[match.end() :]
        builtin = _BUILTIN.match(rest)
        if builtin is not None:
            rest = rest[builtin.end() :]
        module = _MODULE.match(rest)
        del parents[depth:]
        drawn[match["name"]] = (
            parents[-1] if parents else None,
            builtin["builtin"] if builtin else None,
            module["module"] if module else None,
        )
        parents.append(match["name"])
    return drawn


def exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in any module of the package, by name."""
    found: dict[str, type[BaseException]] = {}
    for info in pkgutil.walk_packages(tracker.__path__, "tracker."):
        if info.name.endswith("__main__"):
            continue  # running it would start the command line
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == info.name
            ):
                found[name] = value
    return found


def test_every_exception_class_in_the_package_is_a_tracker_error() -> None:
    """Each exception class defined anywhere in tracker/ refines TrackerError."""
    assert [] == sorted(
        f"{cls.__module__}.{name}"
        for name, cls in exception_classes().items()
        if not issubclass(cls, TrackerError)
    )


def test_every_public_exception_class_is_drawn_where_it_sits() -> None:
    """Each public class is drawn under its parent, with its builtin and integration module."""
    actual = {}
    for name, cls in exception_classes().items():
        if name.startswith("_"):
            continue  # private to a module, never raised out of the package
        parent = next(b for b in cls.__bases__ if issubclass(b, TrackerError) or b is Exception)
        builtins = [b.__name__ for b in cls.__bases__ if not issubclass(b, TrackerError)]
        core = cls.__module__ == "tracker._errors"
        actual[name] = (
            None if parent is Exception else parent.__name__,
            builtins[0] if builtins else None,
            None if core else ".".join(cls.__module__.split(".")[:2]),
        )
    assert actual == drawn_tree()


def test_core_errors_are_exported() -> None:
    """Every class drawn without a module is importable from ``tracker`` itself."""
    core = [name for name, (_, _, module) in drawn_tree().items() if module is None]
    assert [] == [name for name in core if name not in tracker.__all__]
