#!/usr/bin/env python3
"""Bootstrap and run: the README's two quick-start commands, and the linters.

    python3 dev.py demo [ARGS]      # the main job: `tracker demo` on the emulator + SQLite
    python3 dev.py test [ARGS]      # the whole test suite (pytest), in parallel, with coverage
    python3 dev.py upstream [ARGS]  # openai-agents' own tests against our class (~1 CPU-min)
    python3 dev.py lint             # ruff check, ruff format --check, mypy --strict (seconds)

``test`` runs pytest with one worker per core (pytest-xdist, ``-n auto``) and measures branch
coverage of ``tracker/``, printing the files below 100%. With no ARGS it is the whole suite and
fails if coverage falls under ``fail_under`` in pyproject.toml; ARGS (paths, ``-k``, ``-x``,
``-n 0`` ...) go to pytest as given, and the floor is not applied to a partial run. The two
tests marked ``upstream`` (the SDK's test files run twice, in two processes of their own; the
0.17.6 churn runs in that release's virtualenv) are left to ``upstream`` unless ARGS give a
``-m``; ``.ci/run`` runs both commands.

Needs only Python >= 3.11. On first use it creates ``.venv`` beside this file and installs the
package with its test extras; it reinstalls when ``pyproject.toml`` changes. Its commands run
with bytecode caching on, whatever ``PYTHONDONTWRITEBYTECODE`` says (``__pycache__``, ignored).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".tracker-install-stamp"


def _ensure_env() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - dev.py must explain itself on an old Python
        sys.exit(f"tracker needs Python >= 3.11; this is {sys.version.split()[0]}")
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PY.exists() and STAMP.exists() and STAMP.read_text() == want:
        return
    if not PY.exists():
        print("dev.py: creating .venv ...", file=sys.stderr, flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("dev.py: installing tracker[test] into .venv ...", file=sys.stderr, flush=True)
    subprocess.run(
        [str(PY), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-e", ".[test]"],
        cwd=ROOT,
        check=True,
    )
    STAMP.write_text(want)


LINT = (
    ("ruff", "check", "tracker", "tests", "benchmarks", "dev.py"),
    ("ruff", "format", "--check", "tracker"),
    ("mypy", "tracker"),
)


def _lint() -> int:
    failed = 0
    for tool in LINT:
        print("dev.py lint:", " ".join(tool), file=sys.stderr, flush=True)
        failed |= subprocess.call([str(PY), "-m", *tool], cwd=ROOT)
    return 1 if failed else 0


def _pytest_command(rest: list[str]) -> list[str]:
    cmd = [str(PY), "-m", "pytest"]
    if not any(a.startswith(("-n", "--numprocesses", "--dist")) or a == "no:xdist" for a in rest):
        cmd += ["-n", "auto", "--dist", "worksteal"]
    # tests/_preload.py: each xdist worker imports openai-agents & co. before coverage starts.
    # pytest-cov only measures and combines: asked for a report or a floor it analyses every
    # file twice (once for the total, once for the table, ~3 s of CPU each, after the last
    # test); _coverage_report() prints the table and applies the floor from one analysis.
    cmd += ["-p", "tests._preload", "--cov", "--cov-report=", "--cov-fail-under=0"]
    if "-m" not in rest:
        cmd += ["-m", "not upstream"]
    return [*cmd, *rest]


def _coverage_report(rest: list[str], env: dict[str, str]) -> int:
    """Print the files of tracker/ below 100% branch coverage; fail a whole run under the floor."""
    cmd = [str(PY), "-m", "coverage", "report"]  # the options are pyproject's [tool.coverage]
    if rest:  # a partial run: report coverage, but the floor is for the whole suite
        cmd += ["--fail-under=0"]
    print("dev.py test: branch coverage of tracker/", file=sys.stderr, flush=True)
    return subprocess.call(cmd, cwd=ROOT, env=env)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test", "upstream", "lint"}:
        print(__doc__, file=sys.stderr)
        return 2
    _ensure_env()
    command, rest = argv[0], argv[1:]
    env = dict(os.environ)
    # Cache bytecode even where the environment says not to: without it every process compiles
    # tracker/ again and pytest re-rewrites every test module and plugin package (~2.8 s of
    # CPU per pytest process, measured). The caches are __pycache__ dirs, ignored by git.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if command == "lint":
        return _lint()
    if command == "demo":
        cmd = [str(PY), "-m", "tracker", "demo", *rest]
        env.setdefault("TRACKER_DEMO_COMMAND", "python3 dev.py demo")
    elif command == "upstream":
        cmd = [str(PY), "-m", "pytest", "-m", "upstream", *rest]
    else:
        status = subprocess.call(_pytest_command(rest), cwd=ROOT, env=env)
        if status in (0, 1) and "--no-cov" not in rest:  # tests ran (passed or failed)
            covered = _coverage_report(rest, env)
            status = status or covered
        return status
    return subprocess.call(cmd, cwd=ROOT, env=env)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
