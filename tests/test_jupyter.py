"""check_backprop inside Jupyter: a real notebook executed in a real kernel (nbclient + ipykernel), the student's
definitions checked through globals(); the failing one shows the HTML table with the parameter and the hint, the
fixed one says it passed. The failure message itself stays plain text (pytest's)."""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient", reason="nbclient (the dev extra) executes the notebook")
pytest.importorskip("ipykernel", reason="ipykernel (the dev extra) is the notebook's kernel")

ROOT = Path(__file__).resolve().parents[1]

DEFINITIONS = """
import torch

def sigma(x):
    return torch.tanh(x)

def dsigma(x):
    return 1 - torch.tanh(x) ** 2

def forward_pass(w1, b1, w2, b2, x):
    s1 = w1.mv(x) + b1
    x1 = sigma(s1)
    s2 = w2.mv(x1) + b2
    return x, s1, x1, s2, sigma(s2)

def backward_pass(w1, b1, w2, b2, t, x, s1, x1, s2, x2, dl_dw1, dl_db1, dl_dw2, dl_db2):
    dl_ds2 = dsigma(s2) * 2 * (x2 - t)
    dl_ds1 = dsigma({at}) * w2.t().mv(dl_ds2)
    dl_dw2.add_(torch.outer(dl_ds2, x1))
    dl_db2.add_(dl_ds2)
    dl_dw1.add_(torch.outer(dl_ds1, x))
    dl_db1.add_(dl_ds1)
"""
CHECK = (
    "from verification import check_backprop\n"
    'check_backprop(globals(), layout="epfl", hidden="tanh", output="tanh", loss="sse", l2=0.0, batches=(7,), '
    "sizes=[(5, 4, 3)])"
)


def run_notebook(at: str, tmp_path: Path) -> list[dict]:
    """Execute a two-cell notebook (the definitions, then the check) and return the check cell's outputs."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n" + DEFINITIONS.format(at=at)),
        nbformat.v4.new_code_cell(CHECK),
    ]
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3", allow_errors=True,
                                     resources={"metadata": {"path": str(tmp_path)}})  # fmt: skip
    client.execute()
    return nb.cells[1]["outputs"]


def html_of(outputs: list[dict]) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in outputs)


def test_a_planted_bug_shows_the_failing_parameter_and_the_hint_in_the_notebook(tmp_path: Path) -> None:
    outputs = run_notebook("x1", tmp_path)
    html = html_of(outputs)
    assert "<table>" in html and "MISMATCH" in html, outputs
    assert "W1" in html and "dsigma(x1)) instead of its input (dsigma(s1))" in html, html
    errors = [o for o in outputs if o["output_type"] == "error"]
    assert errors and errors[0]["ename"] == "BackpropMismatch"
    assert not any("site-packages" in line or "api.py" in line for line in errors[0]["traceback"])


def test_the_fixed_code_says_it_passed(tmp_path: Path) -> None:
    outputs = run_notebook("s1", tmp_path)
    assert not [o for o in outputs if o["output_type"] == "error"], outputs
    html = html_of(outputs)
    assert "OK: " in html and "match the float64 oracle" in html and "#1a7f37" in html, html
