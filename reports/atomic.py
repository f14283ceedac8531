"""Atomic file writes (temp file in the same folder + os.replace): a results file is never half-written."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

STALE_TMP_S = 600  # a temp file this old was left by a killed writer (a live write takes seconds)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file here (mkstemp makes 0600)


def check_writable(folder: Path, what: str) -> None:
    """Raise OSError with one line if files cannot be created in `folder` (or the nearest existing parent the
    writer would create it under): probed by creating and removing a file, since os.access says yes to root."""
    probe = folder
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise OSError(f"{what} {folder}: {probe} is not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".twolayer-probe.", dir=probe)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise OSError(f"{what} {folder}: not writable ({exc.strerror})") from None


def _remove_stale(path: Path) -> None:
    """Temp files of `path` that a killed writer left behind."""
    now = time.time()
    for old in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            if now - old.stat().st_mtime > STALE_TMP_S:
                old.unlink()
        except OSError:
            pass


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call write(tmp_path) then rename tmp over `path`; on any error the temp file is removed, `path` untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def replace_folder(folder: Path, fill: Callable[[Path], None]) -> Path:
    """Fill a fresh temp folder beside `folder`, then swap it in: no file of an earlier run survives (stale
    plots), and a killed run leaves the old folder whole."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    new = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".new", dir=folder.parent))
    try:
        fill(new)
        os.chmod(new, 0o777 & ~_umask())
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            os.replace(folder, old)
        os.replace(new, folder)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    return folder
