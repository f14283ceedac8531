"""Run a user's plug-in in a child process, so the code being checked cannot end, hang or crash the checker.

The parent plans the cases and decides the verdict; the child (verification.child: a fresh `python -I`, no inherited
state, started before the parent's own imports where it can) loads the plug-in and answers one case at a time over a
socket with what the function returned,
encoded as JSON and raw float64 bytes (never a pickle, which could run code in the parent); the parent compares
those values with its own float64 oracle. A child that exits (sys.exit,
os._exit, a segfault), stops answering within the timeout, or sends something other than rows turns the case
into an ERROR row naming it; the child is then restarted for the next case, and after MAX_DEATHS deaths in a row
the remaining cases are ERROR rows too, never silently skipped.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

import numpy as np
import torch

from reports.record import Status
from verification.child import Child, claim
from verification.compare import Returned
from verification.forms import Options
from verification.runner import Case, Matrix, Outputs, error_row, judge

DEFAULT_TIMEOUT_S = 60.0
STARTUP_TIMEOUT_S = 120.0  # importing torch and the plug-in in a fresh interpreter; not counted against cases
MAX_DEATHS = 3
TIMEOUT = "timeout"  #: how an error row that ran out of time begins (the grader's timeout verdict reads it)


class PluginLoadError(Exception):
    """The child could not load the plug-in (bad reference, import error, the import exited): a usage error."""


class BadAnswer(ValueError):
    """The child's answer does not decode as Outputs."""


#: what a child may answer: computed values, or that it could not (only the parent's judge() gives FAIL, and FRAGILE
#: is the parent's settle_fragile()'s; a child claiming either has taken over the channel)
CHILD_STATUSES = (Status.OK, Status.UNSUPPORTED, Status.ERROR)
HEADER_LIMIT = 1 << 20  #: bytes of JSON an answer may carry besides its values (hints, a problem line)


def answer_limit(case: Case) -> int:
    """The most bytes an honest answer to the case takes: float64 loss, gradients, parameters after the trajectory
    and after train() (4 x the parameter count), the K train losses, and the JSON header."""
    s = case.spec
    count = s.D * s.H + s.H + s.H * s.C + s.C
    return 8 * (4 * count + 64) + HEADER_LIMIT


def receive(conn: Connection, timeout: float, limit: int) -> bytes:
    """One message of multiprocessing's framing (a 4-byte size, -1 then 8 bytes for a large one), read within
    `timeout` seconds in all and no longer than `limit` bytes: a child that sends half a message and stops, or
    announces a terabyte, cannot hang or exhaust the checker. TimeoutError, EOFError or BadAnswer otherwise."""
    fd, deadline = conn.fileno(), time.monotonic() + timeout

    def read(n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(fd, min(n - len(buf), 1 << 20))
            if not chunk:
                raise EOFError
            buf += chunk
        return bytes(buf)

    (size,) = struct.unpack("!i", read(4))
    if size == -1:
        (size,) = struct.unpack("!Q", read(8))
    if not 0 <= size <= limit:
        raise BadAnswer(f"an answer announced as {size} bytes, more than the {limit} the case can take")
    return read(size)


def encode(out: Outputs) -> bytes:
    """Outputs as JSON + raw float64 bytes: the parent never unpickles what the checked code's process sends."""
    blob = bytearray()
    values: dict[str, object] = {}
    items = {"loss": out.loss, "train_loss": out.train_loss, **{f"grads.{k}": v for k, v in out.grads.items()}}
    items.update({f"params.{k}": v for k, v in out.params.items()})
    items.update({f"train.{k}": v for k, v in out.train.items()})
    for key, v in items.items():
        if isinstance(v, torch.Tensor):
            a = np.array(v.detach().to("cpu", torch.float64).numpy(), order="C")  # keeps 0-dim shapes
            values[key] = {"dtype": str(v.dtype).removeprefix("torch."), "shape": list(a.shape), "at": len(blob)}
            blob += a.tobytes()
        else:
            values[key] = None if v is None else {"returned": repr(v)}
    head = {k: getattr(out, k) for k in ("threads", "status", "problem", "update_skipped", "hints")}
    header = json.dumps({**head, "values": values}).encode()
    return struct.pack("<I", len(header)) + header + bytes(blob)


def decode(data: bytes) -> Outputs:
    """The inverse of encode(), validating every field; BadAnswer if anything is off."""
    try:
        (n,) = struct.unpack_from("<I", data)
        head = json.loads(data[4 : 4 + n])
        blob = memoryview(data)[4 + n :]
        status = Status(head["status"])  # ValueError (a BadAnswer below) on anything else
        if status not in CHILD_STATUSES:
            raise BadAnswer(f"a status only the checker gives: {status.value!r}")
        out = Outputs(threads=int(head["threads"]), status=status, problem=str(head["problem"]))
        out.update_skipped = str(head["update_skipped"])
        out.hints = {str(k): str(v) for k, v in dict(head["hints"]).items()}
        for key, v in head["values"].items():
            if v is None:
                value = None
            elif "returned" in v:
                value = Returned(None)
                value.text = str(v["returned"])
            else:
                dtype = getattr(torch, str(v["dtype"]))
                if not isinstance(dtype, torch.dtype):
                    raise BadAnswer(f"not a dtype: {v['dtype']!r}")
                shape = tuple(int(d) for d in v["shape"])
                count = int(np.prod(shape, dtype=np.int64))
                a = np.frombuffer(blob, np.float64, count, int(v["at"])).reshape(shape)
                value = torch.from_numpy(a.copy()).to(dtype)
            group, _, name = key.partition(".")
            if group in ("loss", "train_loss") and not name:
                setattr(out, group, value)
            elif group in ("grads", "params", "train") and name:
                getattr(out, group)[name] = value
            else:
                raise BadAnswer(f"unexpected field {key!r}")
        return out
    except BadAnswer:
        raise
    except Exception as exc:  # noqa: BLE001 - any malformed answer is one BadAnswer
        raise BadAnswer(f"{type(exc).__name__}: {exc}") from None


class Isolated:
    """Executor for one plug-in reference: same interface as runner.InProcess (compiles, run, close); its child
    process is verification.child's (a prestarted one where the command line started it)."""

    compiles = False

    def __init__(
        self,
        ref: str,
        timeout: float = DEFAULT_TIMEOUT_S,
        threads: int = 1,
        layout: str = "linear",
        loss_ref: str = "",
        options: Options | None = None,
        start: Callable[[], Child] | None = None,
        setup: dict | None = None,
        deadline: float | None = None,
    ) -> None:
        self.layout, self.loss_ref, self.options = layout, loss_ref or None, options or Options()
        self.sources: list[str] = []  # what the child found where (a notebook's cell), for the report
        self.ref, self.timeout, self.threads = ref, timeout, threads
        self._start_child = start or Child.start  # how a child starts (a sandbox's command: verification.grading)
        self._setup = setup  # what the child does before loading (a sandbox's copy of the submission)
        self.deadline = deadline  # time.monotonic() past which no case runs (a grader's time for the whole submission)
        self._child: Child | None = None
        self.deaths = 0  # consecutive
        self._start(claim() if start is None else None)  # the command line's prestarted child, where it has one

    def _start(self, child: Child | None = None) -> None:
        """Start a child (or take the one given) and wait until it has loaded the plug-in; PluginLoadError if not."""
        self._child = child or self._start_child()
        conn = self._child.conn
        load = ("load", self.ref, self.layout, self.loss_ref, self.options, self.threads)
        conn.send((*load, self._setup) if self._setup else load)
        wait = STARTUP_TIMEOUT_S
        if self.deadline is not None:  # a grader's time for the whole submission bounds its start too
            wait = max(0.1, min(wait, self.deadline - time.monotonic()))
        try:
            answer = receive(conn, wait, HEADER_LIMIT)
        except TimeoutError:
            self._kill()
            raise PluginLoadError(f"plug-in {self.ref}: no answer within {wait:.0f} s of starting") from None
        except (EOFError, OSError):
            code = self._kill()
            raise PluginLoadError(f"plug-in {self.ref}: its process exited (code {code}) while importing it") from None
        except BadAnswer as exc:
            self._kill()
            raise PluginLoadError(f"plug-in {self.ref}: a malformed answer to loading ({exc})") from None
        if answer[:1] != b"R":
            self._kill()
            text = answer[1:].decode(errors="replace") if answer[:1] == b"E" else f"unexpected answer {answer[:40]!r}"
            raise PluginLoadError(text.splitlines()[0] if text.strip() else "loading failed")
        try:
            self.sources = [str(s) for s in json.loads(answer[1:] or b"[]")]
        except (ValueError, TypeError):
            self._kill()
            raise PluginLoadError(f"plug-in {self.ref}: malformed load answer") from None

    @property
    def _conn(self) -> Connection | None:
        return self._child.conn if self._child is not None else None

    def _kill(self) -> int | None:
        code = self._child.kill() if self._child is not None else None
        self._child = None
        return code

    def with_options(self, options: Options) -> Isolated:
        """The same child, its cases run under other options (the code loaded again there, once)."""
        return _WithOptions(self, options)  # type: ignore[return-value]

    def run(self, case: Case, matrix: Matrix, options: Options | None = None) -> list[dict]:
        """The case's rows from the child, or one ERROR row saying why the child gave none."""
        if self.deaths >= MAX_DEATHS:
            return [error_row(case, f"not run: the plug-in's process died on {MAX_DEATHS} cases in a row")]
        timeout = self.timeout
        if self.deadline is not None:
            timeout = min(timeout, self.deadline - time.monotonic())
            if timeout <= 0:
                return [error_row(case, f"{TIMEOUT}: not run, the time for the whole check ran out")]
        if self._conn is None:
            try:
                self._start()
            except PluginLoadError as exc:
                self.deaths += 1
                return [error_row(case, f"not run: restarting the plug-in failed: {exc}")]
        start = time.monotonic()
        try:
            self._conn.send(("case", case, matrix, options or self.options))
            out = decode(receive(self._conn, timeout, answer_limit(case)))
        except TimeoutError:
            self._kill()
            self.deaths += 1
            return [error_row(case, f"{TIMEOUT}: no result within {timeout:.3g} s (the process was killed)")]
        except (EOFError, OSError):
            code = self._kill()
            self.deaths += 1
            return [
                error_row(case, f"the plug-in's process exited (code {code}) after {time.monotonic() - start:.1f} s")
            ]
        except BadAnswer as exc:
            self._kill()
            self.deaths += 1
            return [error_row(case, f"the plug-in's process sent a malformed answer: {exc}")]
        self.deaths = 0
        return judge(case, matrix, out)

    def close(self) -> None:
        """Stop the child and every process it started: killed at once, its answers all in (its interpreter's own
        shutdown, torch's included, would cost ~0.5 s of waiting for nothing)."""
        self._kill()


class _WithOptions:
    """An Isolated executor's child running its cases under other options (Isolated.with_options)."""

    compiles = False

    def __init__(self, inner: Isolated, options: Options) -> None:
        self.inner, self.options = inner, options

    def run(self, case: Case, matrix: Matrix) -> list[dict]:
        return self.inner.run(case, matrix, self.options)

    def close(self) -> None:
        """The inner executor's owner closes it."""
