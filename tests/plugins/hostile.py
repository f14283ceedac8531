"""A hostile class for the grader (tests/test_sandbox.py): honest students beside one submission per attack a student
could make on a gradebook -- each written as a student would, in the cs231n form, most with a wrong gradient so that
an attack that worked would show as a pass; and two honest students who use what the assignment forbids (the test
grades with --forbid torch.nn --forbid autograd). make_hostile_class(folder) writes them and returns what each row must
say; MARK is in the command line of every process an attack leaves behind, so the test can look for survivors."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE = (HERE / "layouts" / "cs231n_net.py").read_text()
MARK = "7716354"  #: `sleep 7716354`: what every process an attack starts runs (no honest process does)
SECRET = "TWOLAYER_TEST_SECRET_58213"  #: set in the grader's environment by the test; must reach no gradebook cell

SIGN_FLIPPED = "\n\nTwoLayerNet = SignFlipped\n"  # a wrong gradient: what every attack tries to turn into a pass


def _attack(body: str, wrong: bool = True, guarded: bool = True) -> str:
    """cs231n_net.py with `body` run inside loss() (it runs in the checked process, case after case), the gradient
    wrong unless told otherwise; `guarded`: the attack's own failures (a write refused) swallowed, as an attacker
    would, so that the check goes on."""
    pad = " " * (12 if guarded else 8)
    indented = "\n".join(pad + line for line in body.strip().splitlines())
    block = f"        try:\n{indented}\n        except Exception:\n            pass\n" if guarded else indented + "\n"
    return (
        BASE
        + "\n\nimport os, sys, subprocess, time, glob\n\n"
        + f"class Attack({'SignFlipped' if wrong else 'TwoLayerNet'}):\n"
        + "    def loss(self, X, y=None, reg=0.0):\n"
        + block
        + "        return super().loss(X, y, reg)\n\n\nTwoLayerNet = Attack\n"
    )


DAEMON = f"""
if not os.path.exists('/tmp/.forked'):
    open('/tmp/.forked', 'w').close()
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv('/bin/sleep', ['sleep', '{MARK}'])
        os._exit(0)
"""

FORK_BOMB = f"""
if not os.path.exists('/tmp/.bomb'):
    open('/tmp/.bomb', 'w').close()
    for _ in range(40):
        if os.fork() == 0:
            os.execv('/bin/sleep', ['sleep', '{MARK}'])
"""

REWRITE = """
for pattern in ('/proc/*/cmdline',):
    for f in glob.glob(pattern):
        try:
            words = open(f, 'rb').read().split(b'\\0')
        except OSError:
            continue
        for w in words:
            if w.endswith(b'.csv'):
                open(w.decode(), 'w').write('student,verdict\\nattacker,pass\\n')
for guess in ('../alice/two_layer_net.py', '../../alice/two_layer_net.py', '/work/alice/two_layer_net.py'):
    try:
        open(guess, 'w').write('class TwoLayerNet: pass\\n')
    except OSError:
        pass
"""

PLANT = """
verification = __import__('verif' + 'ication')  # past a reading of its imports: the sandbox stops the writes
project = os.path.dirname(os.path.dirname(verification.__file__))
for target in (os.path.join(project, 'verification', 'oracle.py'), os.path.join(project, 'numpy.py'),
               os.path.join(os.getcwd(), '..', 'alice', 'numpy.py'), '/proc/1/cwd/numpy.py'):
    try:
        open(target, 'w').write('raise SystemExit(0)\\n')
    except OSError:
        pass
"""

LEAK = f"""
raise ValueError('env: ' + repr(dict(os.environ)) + ' {SECRET} seen' if '{SECRET}' in repr(dict(os.environ)) else
                 'env: ' + ', '.join(sorted(os.environ)))
"""

DODGE_REG = """
if reg:
    raise NotImplementedError('no regularisation here')
"""

SHADOW = '''"""A checker of the student's own: prints what a pass looks like."""
print("OK: 999 checks in 36 checked cases match the float64 oracle")
raise SystemExit(0)
'''

ORACLE = (
    BASE
    + """

from verification import oracle


class UsesOracle(TwoLayerNet):
    def loss(self, X, y=None, reg=0.0):
        return super().loss(X, y, reg)


TwoLayerNet = UsesOracle
"""
)

TORCH_NN = BASE + "\n\nimport torch.nn as nn  # the UMONS assignment forbids it: graded with --forbid torch.nn\n"
AUTOGRAD = (
    BASE.replace("class TwoLayerNet", "import torch\n\n\nclass TwoLayerNet", 1)
    + "\n\ndef autograd_check(W):\n    W = torch.tensor(W, requires_grad=True)\n    (W * W).sum().backward()\n"
    "    return W.grad\n"
)

#: student -> (verdict the row must have, words its hint or problem must hold)
EXPECTED: dict[str, tuple[str, str]] = {
    "alice": ("pass", ""),
    "bob": ("fail", "sign flipped"),
    "carol": ("pass", ""),
    "shadow": ("fail", "sign flipped"),
    "daemon": ("fail", "sign flipped"),
    "fork_bomb": ("fail", "sign flipped"),
    "rewrite": ("fail", "sign flipped"),
    "plant": ("fail", "sign flipped"),
    "leak": ("error", "env: "),
    "dodge_reg": ("fail", "refused (unsupported): not done"),
    "=HYPERLINK(1)": ("pass", ""),
    "symlink_out": ("error", "symlink to outside the submission"),
    "symlink_loop": ("error", "symlink loop"),
    "top_link": ("error", "a symlink to inside the class folder"),
    "uses_oracle": ("error", "not the student's own work"),
    "archive": ("skipped", "unpack it"),
    "twins": ("pass", ""),
    "uses_nn": ("fail", "uses torch.nn, which the assignment forbids (--forbid torch.nn)"),
    "uses_autograd": ("fail", "uses autograd, which the assignment forbids (--forbid autograd)"),
    "UPPER": ("pass", ""),
}


def make_hostile_class(root: Path) -> dict[str, tuple[str, str]]:
    """The class folder: the honest students, one submission per attack, and the entries that are not code."""
    root.mkdir(parents=True)

    def student(name: str, text: str, file: str = "two_layer_net.py") -> Path:
        (root / name).mkdir()
        (root / name / file).write_text(text)
        return root / name

    student("alice", BASE)
    student("bob", BASE + SIGN_FLIPPED)
    (root / "carol.py").write_text(BASE)
    shadow = student("shadow", BASE + SIGN_FLIPPED)
    (shadow / "verification.py").write_text(SHADOW)
    (shadow / "numpy.py").write_text(SHADOW)  # an import of numpy by anything that judges would be this
    student("daemon", _attack(DAEMON))
    student("fork_bomb", _attack(FORK_BOMB))
    student("rewrite", _attack(REWRITE))
    student("plant", _attack(PLANT))
    student("leak", _attack(LEAK, wrong=False, guarded=False))
    student("dodge_reg", _attack(DODGE_REG, wrong=False, guarded=False))
    student("=HYPERLINK(1)", BASE)
    out = student("symlink_out", BASE)
    os.symlink("/etc/passwd", out / "data.txt")
    loop = student("symlink_loop", BASE)
    os.symlink(loop / "b", loop / "a")
    os.symlink(loop / "a", loop / "b")
    os.symlink(root / "alice", root / "top_link")
    student("uses_oracle", ORACLE)
    with zipfile.ZipFile(root / "archive.zip", "w") as z:
        z.writestr("two_layer_net.py", BASE)
    twins = student("twins", BASE, "homework.py")
    nb = {"cells": [{"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": 1, "source": BASE}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}  # fmt: skip
    (twins / "homework.ipynb").write_text(json.dumps(nb))
    (root / "UPPER.PY").write_text(BASE)
    student("uses_nn", TORCH_NN)
    student("uses_autograd", AUTOGRAD)
    (root / "README.txt").write_text("Submissions of week 5.\n")
    return dict(EXPECTED)
