"""pytest plugin: run openai-agents' own tests with ``tracker.agents`` installed.

Loaded with ``-p tracker_agents_plugin`` (this folder on ``PYTHONPATH``). It installs our
tracker before any test module is collected, so modules that import the SDK's class by name get
ours, and fails the session if anything swapped the SDK's class back in the meantime.
``TRACKER_UPSTREAM_BASELINE=1`` leaves the SDK's class in place (the comparison run).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[2]
_BASELINE = os.environ.get("TRACKER_UPSTREAM_BASELINE") == "1"


def pytest_configure(config: pytest.Config) -> None:
    """Install our tracker before collection (appending the repo so ``tracker`` imports)."""
    if _BASELINE:
        return
    if str(_REPO) not in sys.path:
        # Appended, not prepended: the SDK's own ``tests`` package must win over ours.
        sys.path.append(str(_REPO))
    import tracker.agents

    tracker.agents.install()


def pytest_report_header(config: pytest.Config) -> str:
    """Say which tracker class the run uses."""
    import agents.run as run_module

    cls = run_module.OpenAIServerConversationTracker
    return f"conversation tracker under test: {cls.__module__}.{cls.__qualname__}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if our class was not in place until the end."""
    if _BASELINE:
        return
    import tracker.agents

    if not tracker.agents.is_installed():
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        sys.stderr.write("tracker.agents was uninstalled during the run\n")
