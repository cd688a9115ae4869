"""The package as users meet it: public surface, import isolation, typing and lint, README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from _fresh import FreshProcess

import tracker

ROOT = Path(__file__).resolve().parent.parent


def test_public_api_is_exactly_the_intended_surface() -> None:
    """`tracker.__all__` lists the curated public names, and each is importable."""
    expected = {
        "STATE_VERSION",
        "CompactedCallError",
        "CompactionError",
        "ConflictError",
        "ContinuationError",
        "CorruptStateError",
        "EditedHistoryError",
        "HistoryError",
        "ItemError",
        "ItemInfo",
        "Prepared",
        "RepairAction",
        "SessionBusyError",
        "StateError",
        "StateVersionError",
        "StoreError",
        "Tracker",
        "TrackerError",
        "TranscriptError",
        "UsageError",
        "Violation",
        "fingerprint",
        "read_item",
        "repair_history",
        "strip_encrypted",
        "validate_history",
    }
    assert expected == set(tracker.__all__)
    assert all(hasattr(tracker, name) for name in expected)


def test_every_error_is_a_tracker_error_and_a_builtin() -> None:
    """Each exception refines TrackerError and a builtin, so either can be caught."""
    for name in tracker.__all__:
        obj = getattr(tracker, name)
        if (
            isinstance(obj, type)
            and issubclass(obj, BaseException)
            and obj is not tracker.TrackerError
        ):
            assert issubclass(obj, tracker.TrackerError)
            assert any(b in obj.__mro__ for b in (ValueError, RuntimeError, TypeError))


def test_import_tracker_pulls_in_no_integration() -> None:
    """`import tracker` imports neither openai-agents, redis, postgres (psycopg), a web server,
    openai, agent-framework, nor matplotlib (the benchmarks' charts only)."""
    code = (
        "import sys, tracker\n"
        "bad = [m for m in ('agents', 'redis', 'psycopg', 'http.server', 'socketserver', "
        "'openai', 'agent_framework', 'sqlite3', 'asyncio', 'matplotlib') if m in sys.modules]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "" == out.stdout.strip()


def test_public_functions_and_classes_are_documented() -> None:
    """Every public name exported by the package has a docstring."""
    undocumented = [
        name
        for name in tracker.__all__
        if callable(getattr(tracker, name)) and not (getattr(tracker, name).__doc__ or "").strip()
    ]
    assert [] == undocumented


def test_every_module_documents_its_public_names() -> None:
    """Each function, class and public method named in any module's __all__ (a module without
    one: each public name it defines) has a docstring."""
    import importlib
    import inspect
    import pkgutil

    missing = []
    for info in pkgutil.walk_packages(tracker.__path__, "tracker."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        defined = [
            n
            for n, o in vars(module).items()
            if not n.startswith("_") and getattr(o, "__module__", "") == info.name
        ]
        for name in getattr(module, "__all__", defined):
            obj = getattr(module, name)
            if not getattr(obj, "__module__", "").startswith("tracker"):
                continue
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and not inspect.getdoc(obj):
                missing.append(f"{info.name}.{name}")
            if inspect.isclass(obj):
                for attr, value in vars(obj).items():
                    func = value.fget if isinstance(value, property) else value
                    func = getattr(func, "__func__", func)
                    if not attr.startswith("_") and inspect.isfunction(func) and not func.__doc__:
                        missing.append(f"{info.name}.{name}.{attr}")
    assert [] == sorted(set(missing))


def _readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


@pytest.mark.parametrize("index", range(len(_readme_python_blocks())))
def test_readme_example_runs(index: int) -> None:
    """Each ```python block of the README runs as written, in a fresh interpreter."""
    block = _readme_python_blocks()[index]
    done = FreshProcess("_fresh", "run_code", block, cwd=ROOT)
    _out, err = done.communicate(timeout=120)
    assert 0 == done.returncode, err[-3000:]


def test_cli_version() -> None:
    """`tracker --version` prints the package version."""
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "--version"], capture_output=True, text=True, check=True
    )
    assert f"tracker {tracker.__version__}" == done.stdout.strip()


def test_cli_bench_prints_the_table() -> None:
    """`tracker bench` prints the per-turn table and zero drops for ours."""
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "bench", "--sizes", "100,1000", "--no-upstream"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert "| 1,000 |" in done.stdout
    assert "ours: 0 " in done.stdout


@pytest.mark.slow
def test_package_is_mypy_strict_and_ruff_clean() -> None:
    """mypy --strict and ruff (lint + format) pass on tracker/."""
    checks = [
        [sys.executable, "-m", "mypy", "tracker"],
        [sys.executable, "-m", "ruff", "check", "tracker", "tests", "benchmarks"],
        [sys.executable, "-m", "ruff", "format", "--check", "tracker"],
    ]
    # mypy with a cold cache (a fresh clone) is ~70 s of CPU, half of it in openai-agents'
    # agents.run_internal.oai_conversation; a busy machine stretched that past 600 s of wall.
    for cmd in checks:
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=3600)
        assert 0 == done.returncode, (
            f"{' '.join(cmd[2:])}:\n{done.stdout[-4000:]}{done.stderr[-2000:]}"
        )


CORE_MODULES = {
    "__init__.py",
    "__main__.py",
    "py.typed",
    "_agui.py",
    "_chat_rules.py",
    "_client_calls.py",
    "_delta_check.py",
    "_delta_select.py",
    "_edits.py",
    "_errors.py",
    "_fingerprint.py",
    "_formats.py",
    "_identity.py",
    "_items.py",
    "_prepared.py",
    "_repair.py",
    "_repair_actions.py",
    "_repair_chat.py",
    "_responses.py",
    "_rule_checks.py",
    "_rule_options.py",
    "_rules.py",
    "_snapshot.py",
    "_tracker.py",
    "_tracker_chain.py",
    "_tracker_compaction.py",
    "_tracker_observe.py",
    "_tracker_restart.py",
    "_tracker_state.py",
    "_transcript.py",
}


def test_package_top_level_holds_only_the_core() -> None:
    """tracker/ holds the core modules and the integration subpackages, nothing else."""
    package = ROOT / "tracker"
    files = {p.name for p in package.iterdir() if p.is_file()}
    dirs = {p.name for p in package.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert (CORE_MODULES, {"agents", "cli", "emulator", "guard", "loop", "stores"}) == (files, dirs)


def test_core_modules_never_import_the_shell_or_integrations() -> None:
    """No core module imports tracker.cli or an integration subpackage."""
    offenders = [
        name
        for name in sorted(CORE_MODULES)
        if name.endswith(".py")
        and name != "__main__.py"
        and re.search(
            r"^\s*(from|import)\s+(tracker\.|\.)(cli|agents|loop|stores|emulator|guard)\b",
            (ROOT / "tracker" / name).read_text(),
            re.M,
        )
    ]
    assert [] == offenders
