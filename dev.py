#!/usr/bin/env python3
"""Bootstrap and run: the README's two quick-start commands.

    python3 dev.py demo [ARGS]   # the main job: `tracker demo` on the embedded emulator + SQLite
    python3 dev.py test [ARGS]   # the whole test suite (pytest)

Needs only Python >= 3.11. On first use it creates ``.venv`` beside this file and installs the
package with its test extras; it reinstalls when ``pyproject.toml`` changes.
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


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"demo", "test"}:
        print(__doc__, file=sys.stderr)
        return 2
    _ensure_env()
    command, rest = argv[0], argv[1:]
    env = dict(os.environ)
    if command == "demo":
        cmd = [str(PY), "-m", "tracker", "demo", *rest]
        env.setdefault("TRACKER_DEMO_COMMAND", "python3 dev.py demo")
    else:
        cmd = [str(PY), "-m", "pytest", *rest]
    return subprocess.call(cmd, cwd=ROOT, env=env)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
