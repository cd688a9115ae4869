"""Run openai-agents' own tracker tests against ``tracker.agents`` on several releases.

    python tests/upstream/matrix.py [--releases 0.8.0 0.14.8 ...] [--only-tracker-tests]
        [--only-tracker-tests-for 0.24.0 ...]

For each release: a virtualenv under the cache folder (``$TRACKER_UPSTREAM_CACHE``, default
``.upstream/`` in the repo; kept between runs, rebuilt only if its install stamp is missing)
holding that openai-agents release, ``openai`` pinned to the release's own minimum (newer
``openai`` releases break older SDKs' models), ``attrs`` and the test runner; this repository
is imported from its folder, not installed. Virtualenvs are built a few at a time (pip is
mostly waiting on the network), then ``run_upstream.py`` runs each release's tests with the
SDK's class and with ours. Prints one summary line per release and exits 1 if any release
has a test that passes with the SDK's class and not with ours (or could not be set up).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import subprocess
import sys
import time
import venv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CACHE = Path(os.environ.get("TRACKER_UPSTREAM_CACHE", REPO / ".upstream"))
#: The releases CI checks: the first supported and the last with the pre-0.8 class
#: (``agents.run._ServerConversationTracker``), the first with the 0.8 layout, the id()-integer
#: trackers, the first list-holding minor, and the newest.
RELEASES = ("0.4.0", "0.7.0", "0.8.0", "0.14.8", "0.17.6", "0.19.4", "0.24.0")
#: What the upstream test files need besides the SDK (their own conftest imports these).
TEST_REQUIREMENTS = ("attrs>=23.1", "pytest>=8", "pytest-asyncio>=0.24", "pytest-mock>=3")
_PIN_OPENAI = (
    "import re, importlib.metadata as m; "
    "req = [r for r in m.requires('openai-agents') if re.match(r'openai\\b[^-]', r)][0]; "
    "print('openai==' + re.search(r'>=([0-9.]+)', req).group(1))"
)


def _log(message: str) -> None:
    print(f"[matrix] {message}", flush=True)


def venv_python(version: str) -> Path:
    """Return the python of the virtualenv for openai-agents ``version``."""
    return CACHE / f"venv-{version}" / "bin" / "python"


def _create_venv(folder: Path, attempts: int = 3) -> None:
    """Create a virtualenv whose python is a symlink, never a copy being written.

    Builds run in threads: a copied interpreter is a file open for writing while another thread
    forks pip, and the fork holds that descriptor until it execs, so running the new python
    fails with ETXTBSY ("Text file busy"; CI saw it on 0.14.8). A symlink writes no executable.
    The retry covers the same window for the scripts ensurepip writes.
    """
    for attempt in range(attempts):
        try:
            venv.EnvBuilder(with_pip=True, clear=True, symlinks=True).create(folder)
            return
        except OSError as exc:
            if exc.errno != errno.ETXTBSY or attempt == attempts - 1:
                raise
            time.sleep(0.5 * (attempt + 1))


def ensure_venv(version: str) -> Path:
    """Build (once) the virtualenv for ``version``; return its python. Raises on pip failure."""
    python = venv_python(version)
    stamp = python.parents[1] / ".tracker-stamp"
    want = json.dumps([version, *TEST_REQUIREMENTS])
    if stamp.exists() and stamp.read_text() == want:
        return python
    started = time.monotonic()
    _create_venv(python.parents[1])
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, f"openai-agents=={version}", *TEST_REQUIREMENTS], check=True)
    pin = subprocess.run(
        [str(python), "-c", _PIN_OPENAI], check=True, capture_output=True, text=True
    ).stdout.strip()
    subprocess.run([*pip, pin], check=True)
    stamp.write_text(want)
    _log(f"virtualenv for openai-agents {version} ({pin}) in {time.monotonic() - started:.0f} s")
    return python


def run_release(version: str, *, only_tracker_tests: bool) -> dict[str, object]:
    """Run the upstream comparison for one release; return its summary."""
    command = [str(venv_python(version)), str(HERE / "run_upstream.py"), "--json"]
    if only_tracker_tests:
        command.append("--only-tracker-tests")
    env = dict(os.environ, TRACKER_UPSTREAM_CACHE=str(CACHE))
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    summary: dict[str, object] = json.loads(lines[-1]) if lines else {"version": version}
    summary["exit"] = done.returncode
    if done.returncode != 0:
        print(done.stdout[-20000:], done.stderr[-5000:], flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    """Build the virtualenvs, run every release, print the summaries; see the module doc."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", nargs="+", default=list(RELEASES))
    parser.add_argument("--only-tracker-tests", action="store_true")
    parser.add_argument(
        "--only-tracker-tests-for",
        nargs="*",
        default=[],
        metavar="RELEASE",
        help="releases whose runner test files are skipped (the slow part)",
    )
    parser.add_argument("--jobs", type=int, default=3, help="virtualenvs built at once")
    args = parser.parse_args(argv)
    started = time.monotonic()
    CACHE.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        builds = {v: pool.submit(ensure_venv, v) for v in args.releases}
    for version, build in builds.items():
        if build.exception() is not None:
            _log(f"openai-agents {version}: cannot build its virtualenv: {build.exception()}")
            failed.append(version)
    _log(f"virtualenvs ready in {time.monotonic() - started:.0f} s")
    for version in args.releases:
        if version in failed:
            continue
        only = args.only_tracker_tests or version in args.only_tracker_tests_for
        summary = run_release(version, only_tracker_tests=only)
        _log(json.dumps(summary))
        if summary["exit"] != 0:
            failed.append(version)
    _log(f"{len(args.releases)} releases in {time.monotonic() - started:.0f} s; failed: {failed}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
