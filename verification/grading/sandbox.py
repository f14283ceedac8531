"""The sandbox every submission's code runs in when a class is graded: bubblewrap (`bwrap`), the unprivileged
sandbox Flatpak uses (Debian's package `bubblewrap`), chosen over nsjail because it is one small setuid-free binary
in every distribution's registry, needs no configuration file, and does exactly what grading needs -- namespaces and
bind mounts -- with nothing to keep in step (nsjail's seccomp and cgroup features need a config and, for cgroups,
privileges a teacher's machine rarely grants).

One declarative table (SANDBOX below) and one function that builds the command line (command()), as snekbox builds
nsjail's. Per submission:
- its own copy is the only writable place: a tmpfs of --copy-mb (the submission is bound read-only at /sandbox/input
  and copied there by the child before anything of it runs); HOME and TMPDIR are on it too; besides it only a
  16 MiB /dev/shm -- the root and /dev that bwrap builds (tmpfs of half the RAM) are remounted read-only;
- the Python installation, the environment's interpreter and site-packages (not its logs) and the project's own
  packages (impls, verification, reports -- the child needs them) are bound read-only; the class folder, the other
  submissions, the gradebook, the grader's output folder, the rest of the project and the user's home are not there
  at all;
- no network (its own network namespace, with nothing in it), its own PID namespace (every process it starts dies
  with it; no signal reaches the grader), its own IPC, UTS and cgroup namespaces;
- uid and gid 65534 (nobody) inside, every capability dropped; an empty environment but PATH, HOME, TMPDIR and the
  thread count;
- the grader's limits as rlimits set before bwrap runs, inherited by everything inside: address space, CPU seconds,
  bytes a file may grow to (the output cap), no core files, and -- where the grader is not root, whose processes the
  kernel never counts -- the number of processes (a fork bomb stops there).

Where bubblewrap cannot start (macOS, a container without user namespaces), grading refuses in one line saying what
to install, unless the teacher passes --trusted-code (then each submission runs as the grader's user, in its own
process group, with the same rlimits: for code you trust).
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from verification.child import PROJECT

INSTALL = "install bubblewrap (Debian/Ubuntu: apt install bubblewrap; Fedora: dnf install bubblewrap)"
INSIDE = Path("/sandbox")  #: the writable tmpfs inside; the submission is copied to INSIDE / "submission"
INPUT = INSIDE / "input"  #: the submission, bound read-only
WORK = INSIDE / "submission"
NOBODY = 65534
#: the project's packages the child imports; the rest of the project (reports/results, docs, tests) is not bound
PACKAGES = ("impls", "verification", "reports")
#: system paths a Python with NumPy and torch needs, read-only (each bound only where it exists)
SYSTEM = ("/usr", "/etc/ld.so.cache", "/etc/alternatives", "/sys/devices/system/cpu")
SYMLINKS = {"/lib": "usr/lib", "/lib64": "usr/lib64", "/bin": "usr/bin", "/sbin": "usr/sbin"}
VENV_PARTS = ("pyvenv.cfg", "bin", "lib", "lib64")  #: what of a virtual environment a Python needs
SHM_BYTES = 16 << 20  #: /dev/shm inside (POSIX shared memory, semaphores): small, apart from --copy-mb


@dataclass(frozen=True)
class Limits:
    """What one submission may use: the grader's options, one table."""

    timeout_s: float = 300.0  # wall clock for the whole submission (the grader kills it past this)
    memory_bytes: int = 2048 << 20  # address space of each process (RLIMIT_AS)
    output_bytes: int = 16 << 20  # what its output file may grow to (RLIMIT_FSIZE): printing past it ends the check
    copy_bytes: int = 256 << 20  # the writable tmpfs its copy, HOME and TMPDIR live on
    processes: int = 64  # processes at once beyond what the grader's user already runs (RLIMIT_NPROC; not as root)

    @property
    def cpu_s(self) -> int:
        """CPU seconds (RLIMIT_CPU): a backstop twice the wall clock, should the grader be killed mid-run."""
        return int(2 * self.timeout_s) + 30


def command(submission: Path, limits: Limits, threads: int = 1) -> list[str]:
    """The bwrap command line that runs `python ...` (appended by verification.child.Child.start) for a submission
    folder: the table in the module docstring."""
    cmd = [
        shutil.which("bwrap") or "bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        "--uid", str(NOBODY), "--gid", str(NOBODY), "--hostname", "sandbox",
        "--clearenv", "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
        "--setenv", "HOME", str(INSIDE / "home"), "--setenv", "TMPDIR", str(INSIDE / "tmp"),
        "--setenv", "OMP_NUM_THREADS", str(threads), "--setenv", "MPLBACKEND", "Agg",
        "--proc", "/proc", "--dev", "/dev", "--size", str(SHM_BYTES), "--tmpfs", "/dev/shm", "--remount-ro", "/dev",
    ]  # fmt: skip
    for path in SYSTEM:
        cmd += ["--ro-bind-try", path, path]
    for link, target in SYMLINKS.items():
        if Path(link).is_symlink():
            cmd += ["--symlink", target, link]
        else:
            cmd += ["--ro-bind-try", link, link]
    for path in _python_paths():
        cmd += ["--ro-bind", path, path]
    for package in PACKAGES:
        cmd += ["--ro-bind", str(Path(PROJECT) / package), str(Path(PROJECT) / package)]
    cmd += ["--tmpfs", str(Path(PROJECT) / "reports" / "results")]  # the committed results are no child's business
    cmd += ["--size", str(limits.copy_bytes), "--tmpfs", str(INSIDE), "--dir", str(INSIDE / "home")]
    cmd += ["--dir", str(INSIDE / "tmp"), "--ro-bind", str(submission), str(INPUT), "--chdir", str(INSIDE)]
    return [*cmd, "--remount-ro", "/"]  # the root bwrap builds is a tmpfs of half the RAM: read-only once built


def _python_paths() -> list[str]:
    """What of the Python installation is bound: the base installation whole; a virtual environment's interpreter,
    packages and pyvenv.cfg only (not its logs: tox writes the environment it ran with into <env>/log); packages
    outside both (a user site, a --system-site-packages base)."""
    out = [sys.base_prefix]
    if sys.prefix != sys.base_prefix:
        out += [str(p) for p in map(Path(sys.prefix).joinpath, VENV_PARTS) if p.exists()]
    return list(dict.fromkeys([*out, *_site_packages()]))


def _site_packages() -> list[str]:
    """Where this environment's packages are, when they are outside its prefix (a user site, a --system-site-packages
    venv's base): each bound read-only."""
    import site

    out = [p for p in site.getsitepackages() if Path(p).is_dir()]
    return [p for p in out if not p.startswith((sys.prefix, sys.base_prefix))]


def set_limits(limits: Limits) -> None:
    """In the process that becomes bwrap (a preexec function): the rlimits everything inside inherits, and death with
    the grader's thread that started it."""
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits.output_bytes, limits.output_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if os.getuid() != 0:  # the kernel never applies RLIMIT_NPROC to root's processes
        mine = _processes_of(os.getuid())
        resource.setrlimit(resource.RLIMIT_NPROC, (mine + limits.processes, mine + limits.processes))
    try:
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _processes_of(uid: int) -> int:
    """How many processes (threads count as the kernel counts them) the user runs now, from /proc."""
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(list((entry / "task").iterdir()))
            except OSError:
                continue
    return count


def unavailable() -> str | None:
    """None when bubblewrap runs here (tried once, for real), else one line saying why and what to install."""
    if sys.platform != "linux":
        return f"grading sandboxes each submission with bubblewrap, which needs Linux (this is {sys.platform})"
    if shutil.which("bwrap") is None:
        return f"grading sandboxes each submission with bubblewrap, which is not installed: {INSTALL}"
    probe = ["bwrap", "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "--proc", "/proc", "true"]
    try:
        r = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap did not start here ({exc})"
    if r.returncode != 0:
        why = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
        return f"bubblewrap cannot create its namespaces here ({why}): user namespaces must be enabled; {INSTALL}"
    return None
