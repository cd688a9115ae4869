"""Fresh worker processes that start in milliseconds instead of seconds.

A test that is about the process boundary (state restored from a store by another process, a
worker SIGKILLed mid-save) needs a process that shares no memory with the test. Starting
``python`` for each one costs 0.5 s (``tracker.stores``) to 2 s (``openai``) of CPU just
importing, and some tests start dozens. ``FreshProcess`` forks each worker instead from this
pytest worker's ``multiprocessing`` fork server: a separate interpreter, started once, that has
only imported the libraries in ``PRELOAD`` and never ran any test code. So each worker is still
a new process with no tracker, client, store or connection in it: only the import is shared.

The worker runs ``function(*args)`` from a module on the tests' path; what it prints comes
back through pipes (``proc.stdout``, ``proc.stderr``). The object offers the
``subprocess.Popen`` subset the tests use: ``stdout``, ``poll``, ``send_signal``,
``communicate`` (both outputs once it has ended) and ``returncode`` (``-signal.SIGKILL``
after a SIGKILL, ``1`` after an uncaught exception, whose traceback is in stderr).
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import runpy
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

PRELOAD = ["openai", "redis", "psycopg", "tracker", "tracker.stores", "tracker.loop"]

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(PRELOAD)


def run_code(code: str, *argv: str) -> None:
    """As ``python -c code *argv``: ``sys.argv`` set, ``code`` run as ``__main__``."""
    sys.argv = ["-c", *argv]
    exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})


def run_module(environ: dict[str, str], stdin: str | None, name: str, *argv: str) -> None:
    """As ``python -m name *argv`` with ``environ`` added to the environment and, unless None,
    ``stdin`` (a few KB: it is written to a pipe before the module runs) as standard input."""
    os.environ.update(environ)
    if stdin is not None:
        read, write = os.pipe()
        os.write(write, stdin.encode())
        os.close(write)
        os.dup2(read, 0)
        os.close(read)
        sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - the process's
    sys.argv = [name, *argv]
    runpy.run_module(name, run_name="__main__", alter_sys=True)


def _run(
    pipes: tuple[Connection, Connection], cwd: str | None, module: str, function: str, args: Any
) -> None:
    """In the worker: stdout and stderr into ``pipes``, then ``module.function(*args)``."""
    out, err = pipes
    if cwd is not None:
        os.chdir(cwd)
    os.dup2(out.fileno(), 1)
    os.dup2(err.fileno(), 2)
    out.close()
    err.close()
    status = getattr(importlib.import_module(module), function)(*args)
    sys.stdout.flush()
    if status:
        raise SystemExit(status)


class FreshProcess:
    """``module.function(*args)`` in a new process forked from the preloaded fork server.

    ``FreshProcess("_fresh", "run_code", CODE, *argv)`` is ``python -c CODE *argv``;
    ``FreshProcess("_fresh", "run_module", ENV, STDIN, NAME, *argv)`` is ``python -m NAME *argv``.
    """

    def __init__(self, module: str, function: str, *args: Any, cwd: Path | None = None) -> None:
        out_r, out_w = _CONTEXT.Pipe(duplex=False)
        err_r, err_w = _CONTEXT.Pipe(duplex=False)
        self._process: Any = _CONTEXT.Process(
            target=_run,
            args=((out_w, err_w), None if cwd is None else str(cwd), module, function, args),
            daemon=True,
        )
        self._process.start()
        out_w.close()
        err_w.close()
        self.pid: int = self._process.pid
        self.stdout = _text(out_r)
        self.stderr = _text(err_r)

    @property
    def returncode(self) -> int | None:
        """The exit status once ended (negative: killed by that signal), else None."""
        code: int | None = self._process.exitcode
        return code

    def poll(self) -> int | None:
        """The exit status if the process has ended, else None."""
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Send ``signum`` to the process."""
        os.kill(self.pid, signum)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the end (killed after ``timeout`` s: TimeoutError); its exit status."""
        self.communicate(timeout)
        code: int = self._process.exitcode
        return code

    def communicate(self, timeout: float | None = None) -> tuple[str, str]:
        """Its stdout and stderr once it has ended; killed (TimeoutError) after ``timeout`` s."""
        texts: dict[str, str] = {}
        readers = [
            threading.Thread(target=lambda n=n, f=f: texts.update({n: f.read()}), daemon=True)
            for n, f in (("out", self.stdout), ("err", self.stderr))
        ]
        for reader in readers:
            reader.start()
        self._process.join(timeout)
        timed_out = self._process.exitcode is None
        if timed_out:
            self._process.kill()
            self._process.join()
        for reader in readers:
            reader.join()
        self.stdout.close()
        self.stderr.close()
        if timed_out:
            raise TimeoutError(f"worker {self.pid} still running after {timeout} s: killed")
        return texts["out"], texts["err"]


def _text(pipe: Connection) -> Any:
    """The read end of a pipe as a text file (the Connection's own descriptor is closed)."""
    stream = open(os.dup(pipe.fileno()), encoding="utf-8")  # noqa: SIM115
    pipe.close()
    return stream
