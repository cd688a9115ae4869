"""Run openai-agents' own tests against ``tracker.agents`` and against the SDK's class.

    python tests/upstream/run_upstream.py [--only-tracker-tests] [--json]

Downloads the source distribution of the *installed* openai-agents version with pip into
``.upstream/`` (or ``$TRACKER_UPSTREAM_CACHE``; once; gitignored), installs the few test-only
packages those tests import into ``.upstream/deps-<version>`` (with ``--target``, so the
environment is not touched), then runs the selected test files twice, in parallel: with the
SDK's class (baseline) and through the ``tracker_agents_plugin`` pytest plugin that installs
ours before collection.

Exit status: 0 when every test that passes with the SDK's class passes with ours; 1 when one
does not; 3 when the source distribution cannot be downloaded. Tests that fail with the SDK's
class too are listed, not hidden. ``--json`` ends the output with one JSON summary line
(release, files, passed with each class, collected, regressions). ``tests/upstream/matrix.py``
runs this across releases, one virtualenv each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import time
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CACHE = Path(os.environ.get("TRACKER_UPSTREAM_CACHE", REPO / ".upstream"))
EXIT_NO_DOWNLOAD = 3

#: Test files that construct the SDK's tracker directly.
TRACKER_TESTS = (
    "tests/test_server_conversation_tracker.py",
    "tests/test_oaiconv_resume_response_id.py",
    "tests/test_run_state_pending_input.py",
    "tests/test_agent_runner.py",
    "tests/test_agent_runner_streamed.py",
)
#: Test files that drive it through the runner (server-managed conversations, resume, HITL).
RUNNER_TESTS = (
    "tests/test_hitl_session_scenario.py",
    "tests/test_run_impl_resume_paths.py",
    "tests/test_run_state.py",
    "tests/test_call_model_input_filter.py",
    "tests/test_call_model_input_filter_unit.py",
    "tests/test_cancel_streaming.py",
    "tests/test_computer_tool_lifecycle.py",
    "tests/test_programmatic_tool_calling.py",
    "tests/test_agent_as_tool.py",
    "tests/test_handoff_history_duplication.py",
    "tests/memory/test_openai_conversations_session.py",
)
#: Modules the tests import that the runtime does not need: {import name: pip requirement}.
#: Installed without dependencies (theirs, anyio/certifi/idna/h11, come with openai).
TEST_ONLY_DEPS = {"httpx": "httpx<1", "httpcore": "httpcore<2"}


def _log(message: str) -> None:
    print(f"[upstream] {message}", flush=True)


def fetch_sources(version: str) -> Path:
    """Return the unpacked sdist of openai-agents ``version``, downloading it if needed.

    Raises ``OSError`` if pip cannot download it.
    """
    root = CACHE / f"openai_agents-{version}"
    if (root / "tests" / "conftest.py").exists():
        return root
    CACHE.mkdir(exist_ok=True)
    archive = CACHE / f"openai_agents-{version}.tar.gz"
    if not archive.exists():
        _log(f"downloading the openai-agents {version} source distribution with pip")
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        command += ["-d", str(CACHE), f"openai-agents=={version}"]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not archive.exists():
            raise OSError(f"pip download failed:\n{done.stdout}\n{done.stderr}")
    with tarfile.open(archive) as tar:
        tar.extractall(CACHE, filter="data")
    return root


def ensure_test_deps(version: str) -> Path:
    """Install the test-only modules that are missing into a private folder; return it."""
    target = CACHE / f"deps-{version}"
    missing = []
    for module, requirement in TEST_ONLY_DEPS.items():
        probe = [sys.executable, "-c", f"import {module}"]
        env = dict(os.environ, PYTHONPATH=str(target))
        if subprocess.run(probe, capture_output=True, env=env, check=False).returncode != 0:
            missing.append(requirement)
    if missing:
        _log(f"installing test-only packages into {target}: {', '.join(missing)}")
        command = [sys.executable, "-m", "pip", "install", "-q", "--no-deps"]
        command += ["--target", str(target), *missing]
        subprocess.run(command, check=True, capture_output=True)
    return target


def report_path(version: str, *, baseline: bool) -> Path:
    """Where the JUnit report of one run goes."""
    return CACHE / f"junit-{version}-{'sdk' if baseline else 'tracker'}.xml"


def run_pytest(
    root: Path, files: list[str], deps: Path, *, baseline: bool
) -> subprocess.Popen[str]:
    """Start pytest on ``files`` in the sdist; our plugin is loaded unless ``baseline``."""
    report = report_path(root.name.split("-", 1)[1], baseline=baseline)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(deps), str(HERE)])
    env["TRACKER_UPSTREAM_BASELINE"] = "1" if baseline else "0"
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "tracker_agents_plugin", "-c", str(root / "pyproject.toml")]
    command += ["--rootdir", str(root), f"--junitxml={report}", *files]
    return subprocess.Popen(
        command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def outcomes(report: Path) -> dict[str, str]:
    """Read ``{test id: passed|failed|skipped}`` from a JUnit XML report."""
    results: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        tags = {child.tag for child in case}
        if tags & {"failure", "error"}:
            results[name] = "failed"
        elif "skipped" in tags:
            results[name] = "skipped"
        else:
            results[name] = "passed"
    return results


def main(argv: list[str] | None = None) -> int:
    """Download, run both ways, compare; return the exit status described above."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--only-tracker-tests",
        action="store_true",
        help="run only the files that construct the tracker directly",
    )
    parser.add_argument("--json", action="store_true", help="end with a JSON summary line")
    args = parser.parse_args(argv)
    version = metadata.version("openai-agents")
    try:
        root = fetch_sources(version)
    except OSError as exc:
        _log(f"cannot get the openai-agents {version} sources: {exc}")
        return EXIT_NO_DOWNLOAD
    deps = ensure_test_deps(version)
    files = list(TRACKER_TESTS) + ([] if args.only_tracker_tests else list(RUNNER_TESTS))
    files = [name for name in files if (root / name).exists()]

    started = time.monotonic()
    runs = {"sdk": run_pytest(root, files, deps, baseline=True)}
    runs["tracker"] = run_pytest(root, files, deps, baseline=False)
    logs = {label: proc.communicate()[0] for label, proc in runs.items()}
    _log(
        f"openai-agents {version}: {len(files)} test files, both runs in "
        f"{time.monotonic() - started:.0f} s"
    )
    for label, log in logs.items():
        tail = [line for line in log.splitlines() if line.strip()][-1:]
        _log(f"{label:>7}: {tail[0] if tail else '(no output)'}")

    sdk = outcomes(report_path(version, baseline=True))
    ours = outcomes(report_path(version, baseline=False))
    regressions = sorted(t for t, r in sdk.items() if r == "passed" and ours.get(t) != "passed")
    both_fail = sorted(t for t, r in sdk.items() if r == "failed" and ours.get(t) == "failed")
    fixed = sorted(t for t, r in sdk.items() if r == "failed" and ours.get(t) == "passed")
    passed = sum(1 for r in ours.values() if r == "passed")
    _log(f"with tracker.agents: {passed} passed of {len(ours)} collected")
    if args.json:
        summary = {
            "version": version,
            "files": len(files),
            "sdk_passed": sum(1 for r in sdk.values() if r == "passed"),
            "ours_passed": passed,
            "collected": len(ours),
            "regressions": len(regressions),
            "seconds": round(time.monotonic() - started),
        }
        print(json.dumps(summary), flush=True)
    for name in both_fail:
        _log(f"fails with the SDK's class too (not ours to fix): {name}")
    for name in fixed:
        _log(f"fails with the SDK's class, passes with ours: {name}")
    if regressions or set(sdk) != set(ours):
        for name in regressions:
            _log(f"REGRESSION: passes with the SDK's class, not with ours: {name}")
        print(logs["tracker"][-20000:])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
