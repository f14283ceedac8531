"""A generated class of submissions for verification.grade: correct cs231n solutions written several ways, each
planted bug, and the submissions that must cost only their own row (a hang, os._exit, a syntax error, a 2 GB
allocation, megabytes of output, a notebook that does not parse). make_class(folder, n) writes n of them and
returns what each row's verdict must be."""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE = (HERE / "layouts" / "cs231n_net.py").read_text()

#: kind -> (extra code appended to cs231n_net.py, the class graded as TwoLayerNet, expected verdict, hint part)
KINDS: dict[str, tuple[str, str, str, str]] = {
    "correct": ("", "TwoLayerNet", "pass", ""),
    "float64": ("", "Float64Accumulators", "pass", ""),
    "eecs498": ("", "EECS498Net", "fragile", "log-sum-exp"),
    "log_of_softmax": ("", "LogOfSoftmax", "fragile", "log-sum-exp"),
    "no_relu_mask": ("", "NoReluMask", "fail", "only the first layer is wrong"),
    "half_reg": ("", "HalfReg", "fail", "L2 gradient halved"),
    "half_convention": ("", "HalfConvention", "fragile", "the older cs231n L2 convention 0.5 * reg * sum W^2"),
    "sign": ("", "SignFlipped", "fail", "sign flipped"),
    "no_max_shift": ("", "NoMaxShift", "fragile", "no max shift in the softmax"),
    "hang": (
        "\nclass Hangs(TwoLayerNet):\n    def loss(self, X, y=None, reg=0.0):\n        while True:\n            pass\n",
        "Hangs",
        "timeout",
        "no verdict within",
    ),
    "exits": (
        "\nimport os\n\nclass Exits(TwoLayerNet):\n    def loss(self, X, y=None, reg=0.0):\n        os._exit(3)\n",
        "Exits",
        "error",
        "exited",
    ),
    "memory": (
        "\nclass Allocates(TwoLayerNet):\n    def loss(self, X, y=None, reg=0.0):\n"
        "        junk = np.ones(2 ** 28)  # 2 GiB\n        return super().loss(X, y, reg)\n",
        "Allocates",
        "error",
        "MemoryError",
    ),
    "prints": (
        "\nimport sys\n\nclass Prints(TwoLayerNet):\n    def loss(self, X, y=None, reg=0.0):\n"
        "        sys.stdout.write('x' * (40 << 20))\n        return super().loss(X, y, reg)\n",
        "Prints",
        "error",
        "MiB of output",
    ),
}


def _write_kind(folder: Path, kind: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "syntax_error":
        (folder / "two_layer_net.py").write_text("class TwoLayerNet(object):\n    def loss(self, X:\n        pass\n")
        return
    if kind == "bad_notebook":
        (folder / "homework.ipynb").write_text('{"cells": [{"cell_type": "code", "source": "class TwoLayerNet')
        return
    extra, cls, _, _ = KINDS[kind]
    text = BASE + extra + (f"\n\nTwoLayerNet = {cls}\n" if cls != "TwoLayerNet" else "")
    if kind == "correct_notebook":
        return
    (folder / "two_layer_net.py").write_text(text)


EXPECTED = {**{k: (v[2], v[3]) for k, v in KINDS.items()}, "syntax_error": ("error", "SyntaxError: '(' was never"),
            "bad_notebook": ("error", "not a readable notebook"), "notebook": ("pass", "")}  # fmt: skip


def _write_notebook(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cells = [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": 1,
         "source": "from google.colab import drive\ndrive.mount('/content/drive')\n%matplotlib inline"},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": 2, "source": BASE},
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": 3,
         "source": "net = TwoLayerNet(784, 50, 10)\nfor epoch in range(10**9):\n    net.loss(None)"},
    ]  # fmt: skip
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 4}
    (folder / "homework.ipynb").write_text(json.dumps(nb))


ORDER = (*KINDS, "syntax_error", "bad_notebook", "notebook")


def make_class(root: Path, n: int) -> dict[str, tuple[str, str]]:
    """n student folders cycling through every kind (the first len(ORDER) cover each once); student -> (verdict,
    a part of the hint or reason)."""
    expected = {}
    for i in range(n):
        kind = ORDER[i % len(ORDER)]
        student = f"s{i:03d}_{kind}"
        if kind == "notebook":
            _write_notebook(root / student)
        else:
            _write_kind(root / student, kind)
        expected[student] = EXPECTED[kind]
    return expected
