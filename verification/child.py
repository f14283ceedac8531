"""The process a user's code runs in: started first thing (its interpreter and torch load while the checker plans),
told what to load, then asked one case at a time.

Parent side, light to import (the standard library only): Child.start() launches `python -I` running main() below,
with one end of a socket pair as its only channel (its file descriptor number on the command line); prestart()
starts the children a command line will need before the checker imports torch, and claim() hands one to
verification.isolate. Child side, main(): the heavy imports, then messages from the parent (trusted: pickles that
way are fine), answers as bytes the parent decodes without unpickling (verification.isolate.encode).

    ("load", ref, layout, loss_ref, options, threads[, setup])  ->  b"R" + JSON of what was found where, or b"E" + one
                                                       line; setup: {"copy": (from, to), "chdir": dir} first
    ("case", case, matrix, options)                    ->  encoded Outputs
    None                                               ->  the child exits

`-I` keeps the user's environment variables and working directory out of the interpreter's set-up; the project's
own folder is put first on sys.path explicitly, so a `verification.py` beside the user's code is never the checker.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path

PROJECT = str(Path(__file__).resolve().parents[1])


class Child:
    """A started child process and the parent's end of its channel."""

    def __init__(self, proc: subprocess.Popen, conn: Connection) -> None:
        self.proc, self.conn = proc, conn

    @classmethod
    def start(
        cls,
        prefix: Sequence[str] = (),
        env: dict[str, str] | None = None,
        cwd: str | None = None,
        stdout: object = None,
        python: str = sys.executable,
        preexec: Callable[[], None] | None = None,
    ) -> Child:
        """Launch `[*prefix, python, -I, -c, ...]` (prefix: a sandbox's command line) with the child's end of a socket
        pair passed through, in a session of its own (its group is killed with it), dying with its parent; `preexec`
        runs in the new process first instead (a sandbox's rlimits, death with the parent included)."""
        mine, theirs = socket.socketpair()
        fd = theirs.fileno()
        code = f"import sys; sys.path.insert(0, {PROJECT!r}); from verification.child import main; main({fd})"
        try:
            proc = subprocess.Popen(
                [*prefix, python, "-I", "-c", code],
                stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.STDOUT if stdout is not None else None,
                pass_fds=(fd,), env=env, cwd=cwd, start_new_session=True, preexec_fn=preexec or _dies_with_parent,
            )  # fmt: skip
        finally:
            theirs.close()
        conn = Connection(os.dup(mine.fileno()))
        mine.close()
        return cls(proc, conn)

    def kill(self) -> int | None:
        """Kill the child and every process of its session; its exit code (None if it could not be reaped)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            code = self.proc.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        self.conn.close()
        return code


def _dies_with_parent() -> None:
    """In the child before it runs Python: killed when the thread that started it ends (Linux's PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


_PRESTARTED: list[Child] = []


def prestart(argv: Sequence[str]) -> None:
    """Start one child per plug-in of a command line (--impl FILE.py, hw.ipynb, pkg.mod:fn) before the checker's
    own imports, so both interpreters load torch at once; verification.isolate claims them."""
    refs = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--impl"] + [a[7:] for a in argv if a[:7] == "--impl="]
    for ref in refs:
        if ":" in ref or ref.endswith((".py", ".ipynb")):
            _PRESTARTED.append(Child.start())


def claim() -> Child | None:
    """A prestarted child that is still alive, or None."""
    while _PRESTARTED:
        child = _PRESTARTED.pop(0)
        if child.proc.poll() is None:
            return child
        child.kill()
    return None


def release_all() -> None:
    """Kill the prestarted children nobody claimed (a usage error ended the run first)."""
    while _PRESTARTED:
        _PRESTARTED.pop().kill()


def main(fd: int) -> None:
    """The child: import what running a case needs, then load the user's code and answer cases until told to stop."""
    conn = Connection(fd)
    import warnings

    import torch

    from reports.record import Status
    from verification.isolate import encode
    from verification.plugin import PluginError, plugin_class
    from verification.runner import Outputs, crash_line, execute

    try:
        msg = conn.recv()
    except EOFError:
        return
    _, ref, layout, loss_ref, options, threads, *setup = msg
    torch.set_num_threads(threads)
    for step in setup[:1]:  # a sandbox's: copy the read-only submission to the writable place, work there
        if "copy" in step:
            import shutil

            shutil.copytree(*step["copy"], symlinks=True, dirs_exist_ok=True)
        if "chdir" in step:
            os.chdir(step["chdir"])
    try:
        cls = plugin_class(ref, layout, loss_ref, options)
    except PluginError as exc:
        conn.send_bytes(b"E" + str(exc).encode())
        return
    except BaseException as exc:  # noqa: BLE001 - sys.exit() at import time is a failed load, reported in one line
        conn.send_bytes(b"E" + f"importing {ref.rpartition(':')[0] or ref} failed: {crash_line(exc)}".encode())
        return
    import json

    conn.send_bytes(b"R" + json.dumps(list(getattr(cls, "sources", ()))).encode())
    classes = {options: cls}
    warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's overflow warnings at the logit-800 data: the rows say it
    while True:
        try:
            msg = conn.recv()
        except EOFError:
            return
        if msg is None:
            return
        _, case, matrix, asked = msg
        try:
            if asked not in classes:  # the same code under other options (an L2 convention): loaded again
                classes[asked] = plugin_class(ref, layout, loss_ref, asked)
            out = execute(case, classes[asked], matrix)
        except BaseException as exc:  # noqa: BLE001 - sys.exit() inside the function: an error, not an exit
            problem = f"the function tried to exit: {crash_line(exc)}"
            out = Outputs(torch.get_num_threads(), status=Status.ERROR, problem=problem)
        conn.send_bytes(encode(out))
