"""tracker.agents across openai-agents releases: the extra, the pinned ids, the 0.17.6 drops.

The release test builds a throwaway openai-agents 0.17.6 virtualenv (``tests/upstream/matrix.py``,
cached in ``.upstream/``); it takes minutes the first time, so it is marked ``upstream``:
``python3 dev.py upstream`` (a ``.ci/run`` step) runs it, the main suite does not.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tracker.agents._legacy import adapt_tracker_class
from tracker.agents._objects import PinnedId, TrackedObjects, pinned_id
from tracker.agents._releases import SUPPORTED

UPSTREAM = Path(__file__).parent / "upstream"

_BLOCK_AGENTS = """
import sys

class NoAgents:
    def find_spec(self, name, path=None, target=None):
        if name == "agents" or name.startswith("agents."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoAgents())
import tracker
tracker.Tracker()
try:
    import tracker.agents
except ImportError as exc:
    print(type(exc).__name__, exc)
"""


def test_import_without_the_extra_says_what_to_install() -> None:
    """Without openai-agents, ``import tracker`` works and ``tracker.agents`` names the extra."""
    done = subprocess.run(
        [sys.executable, "-c", _BLOCK_AGENTS], capture_output=True, text=True, check=True
    )
    assert done.stdout.startswith("ImportError tracker.agents needs openai-agents")
    assert "pip install 'tracker[agents]'" in done.stdout


def test_core_needs_openai_and_attrs_only_and_the_extras_carry_openai_agents() -> None:
    """pyproject: runtime deps are openai + attrs; `agents` and `test` pin SUPPORTED."""
    project = tomllib.loads((UPSTREAM.parents[1] / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[<>=!~\[;\s]", dep, maxsplit=1)[0] for dep in project["dependencies"]]
    extras = project["optional-dependencies"]
    assert ["openai", "attrs"] == names
    assert [f"openai-agents{SUPPORTED}"] == extras["agents"]
    assert f"openai-agents{SUPPORTED}" in extras["test"]


# ---- the pinned-id adapter, on a class with the 0.8 - 0.17.6 pattern --------------------


def _model_module() -> types.ModuleType:
    """A module defining a tracker that remembers bare ``id()`` integers (the old pattern)."""

    @dataclass
    class IdTracker:
        sent_items: set[int] = field(default_factory=set)

        def prepare_input(self, generated: list[Any]) -> list[Any]:
            return [item for item in generated if id(item) not in self.sent_items]

        def mark_input_as_sent(self, items: list[Any]) -> None:
            for item in items:
                self.sent_items.add(id(item))

    module = types.ModuleType("old_sdk")
    module.IdTracker = IdTracker  # type: ignore[attr-defined]
    IdTracker.__module__ = module.__name__
    return module


def _drops(tracker: Any, turns: int) -> int:
    """Send a fresh dict per turn after the previous turn's copies died; count those skipped."""
    drops = 0
    for turn in range(turns):
        copies = [{"type": "function_call_output", "call_id": f"c{turn}", "output": "1"}]
        tracker.mark_input_as_sent(copies)
        del copies
        fresh = {"type": "function_call_output", "call_id": f"n{turn}", "output": "2"}
        drops += not tracker.prepare_input([fresh])
        del fresh
    return drops


def test_the_old_id_pattern_drops_fresh_items_and_the_adapted_class_does_not() -> None:
    """Bare id() integers match a fresh object at a dead one's address; pinned ids never do."""
    module = _model_module()
    old = module.IdTracker  # type: ignore[attr-defined]
    adapted = adapt_tracker_class(old, module)
    assert 0 < _drops(old(), 200)
    assert 0 == _drops(adapted(), 200)
    assert issubclass(adapted, old)
    assert "IdTracker" == adapted.__name__


def test_a_pinned_id_is_the_integer_and_holds_its_object() -> None:
    """``pinned_id(x)`` equals and hashes as ``id(x)``, so sets of ids answer as before."""
    item = {"k": 1}
    pinned = pinned_id(item)
    assert isinstance(pinned, PinnedId)
    assert id(item) == pinned
    assert {id(item)} == {pinned}
    assert item is pinned.obj


def test_tracked_objects_answer_identity_like_the_sdk_lists() -> None:
    """The 0.17.7 - 0.19.x lists are replaced by containers equal to them."""
    a, b = {"x": 1}, {"x": 1}
    tracked = TrackedObjects([a, b])
    assert [a, b] == tracked
    assert a in tracked
    assert {"x": 1} not in tracked


# ---- releases in throwaway virtualenvs -------------------------------------------------


def _churn(python: Path, *extra: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), str(UPSTREAM / "churn_driver.py"), *extra],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
@pytest.mark.upstream
def test_openai_agents_0_17_6_drops_outputs_under_churn_and_not_with_install() -> None:
    """0.17.6's id() tracker drops fresh outputs in most churned runs; with install(), none."""
    sys.path.insert(0, str(UPSTREAM))
    try:
        import matrix
    finally:
        sys.path.remove(str(UPSTREAM))
    python = matrix.ensure_venv("0.17.6")
    without = _churn(python, "--runs", "40", "--turns", "8")
    with_install = _churn(python, "--runs", "40", "--turns", "8", "--install")
    print(json.dumps(without), json.dumps(with_install))
    assert "0.17.6" == without["version"]
    assert without["runs_with_drops"] > without["runs"] // 2
    assert 0 == with_install["drops"]
