"""A pytest plugin (``python3 dev.py test`` passes ``-p tests._preload``): in an xdist worker,
import the big third-party libraries the test modules import before coverage starts.

Coverage measures ``tracker/`` only, but its tracer still sees every call in the code it does
not measure: importing openai-agents, openai and the AG-UI adapter under it costs each worker
~60% more CPU (about 8 s). Imported here, at plugin load, they are in ``sys.modules`` before
pytest-cov starts tracing, so the test modules' own imports are free. Nothing from ``tracker``
is imported here: its module-level lines must run under coverage. The controller process
imports nothing: it collects no tests.
"""

from __future__ import annotations

import contextlib
import importlib
import os

LIBRARIES = (
    "openai",
    "agents",
    "agents.run",
    "agent_framework_ag_ui",
    "agent_framework_openai",
    "hypothesis",
    "redis",
    "psycopg",
)

if os.environ.get("PYTEST_XDIST_WORKER"):
    for name in LIBRARIES:
        with contextlib.suppress(ImportError):  # an optional extra not installed: its tests skip
            importlib.import_module(name)
