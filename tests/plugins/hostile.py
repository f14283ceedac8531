"""A hostile class for the grader (tests/test_sandbox.py): honest students beside one submission per attack a student
could make on a gradebook -- each written as a student would, in the cs231n form, most with a wrong gradient so that
an attack that worked would show as a pass; and two honest students who use what the assignment forbids (the test
grades with --forbid torch.nn --forbid autograd). make_hostile_class(folder) writes them and returns what each row must
say; MARK is in the command line of every process an attack leaves behind, so the test can look for survivors."""

from __future__ import annotations

import json
import os
import socket
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

CONN = """
f = sys._getframe()  # the checked process's channel to the grader, found up the stack
while f is not None and not hasattr(f.f_locals.get('conn'), 'send_bytes'):
    f = f.f_back
conn = f.f_locals['conn']
"""

FORGE = (
    CONN
    + """
import json, struct
head = json.dumps({'threads': 1, 'status': 'fragile', 'problem': 'fine', 'update_skipped': '', 'hints': {},
                   'values': {}}).encode()
conn.send_bytes(struct.pack('<I', len(head)) + head)  # 'fragile' with nothing computed: a pass, were it believed
while conn.recv() is not None:
    conn.send_bytes(struct.pack('<I', len(head)) + head)
os._exit(0)
"""
)

HALF_MESSAGE = (
    CONN
    + """
import struct
os.write(conn.fileno(), struct.pack('!i', 100) + b'x')  # 1 byte of a promised 100, then silence
time.sleep(10**6)
"""
)

TERABYTE = (
    CONN
    + """
import struct
os.write(conn.fileno(), struct.pack('!i', -1) + struct.pack('!Q', 1 << 40))  # announces a 1 TiB answer
time.sleep(10**6)
"""
)

SPACE = """
def room(d, mib):
    n = 0
    try:
        for i in range(mib):
            with open(f'{d}/fill{i}', 'wb') as f:
                f.write(b'\\1' * (1 << 20))
            n += 1
    except OSError:
        pass
    return n
log = os.path.exists(os.path.join(sys.prefix, 'log'))
raise ValueError(f'space: / {room("/", 2)} MiB, /dev {room("/dev", 2)} MiB, /dev/shm {room("/dev/shm", 64)} MiB; '
                 f'log {log}')
"""

ESCAPES = """
raise RuntimeError('see https://evil.example/regrade or www.evil.example \\x1b]0;PWNED\\x07\\x1b[2J\\u202eRED')
"""

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
    "forge": ("error", "a status only the checker gives: 'fragile'"),
    "half_message": ("timeout", "no result within"),
    "terabyte": ("error", "more than the"),
    "space": ("error", "space: / 0 MiB, /dev 0 MiB, /dev/shm "),  # /dev/shm's MiB: at most SHM_BYTES (the test)
    "escapes": ("error", "www.evil.example \\x1b]0;PWNED\\x07\\x1b[2J\\u202eRED"),
    "deep": ("error", "folders nested more than 32 deep"),
    "fifo": ("pass", "left out notes.txt (a FIFO)"),
    "socket": ("pass", "left out .jupyter.sock (a socket)"),
    "top_fifo": ("error", "a FIFO, not a file or folder"),
    "dup/": ("pass", ""),
    "dup.py": ("fail", "sign flipped"),
    "Jos\ufffd": ("pass", ""),
    "py2_flood": ("error", "MiB of source read from a file"),
    "nested_expr": ("error", "does not parse: RecursionError"),
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
    student("forge", _attack(FORGE, guarded=False))
    student("half_message", _attack(HALF_MESSAGE, guarded=False))
    student("terabyte", _attack(TERABYTE, guarded=False))
    student("space", _attack(SPACE, wrong=False, guarded=False))
    student("escapes", _attack(ESCAPES, wrong=False, guarded=False))
    deep = student("deep", BASE)
    os.makedirs(deep.joinpath(*["d"] * 40))  # a recursive walk of 1,100 would end Python 3.11's os.walk
    os.mkfifo(student("fifo", BASE) / "notes.txt")  # reading it would wait forever
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(student("socket", BASE) / ".jupyter.sock"))
    sock.close()
    os.mkfifo(root / "top_fifo.py")
    student("dup", BASE)
    (root / "dup.py").write_text(BASE + SIGN_FLIPPED)  # one student's name twice: two rows, never one lost
    (root / os.fsdecode(b"Jos\xe9")).mkdir()  # a Latin-1 name, as an unpacked Windows zip gives
    (root / os.fsdecode(b"Jos\xe9") / "two_layer_net.py").write_text(BASE)
    flood = student("py2_flood", BASE)
    (flood / "old.py").write_text("print 'hi'\n" * 200_000 + "def (\n")  # 2 MB of Python 2 that then fails
    student("nested_expr", BASE + SIGN_FLIPPED + "\nZ = 1" + " + 1" * 100_000 + "\n")  # past the parser's depth
    (root / "x\npass 99; fail 0; error 0.txt").write_text("x")  # a name that would forge a summary line
    (root / ".eve").mkdir()
    (root / ".eve" / "two_layer_net.py").write_text(BASE + SIGN_FLIPPED)
    return dict(EXPECTED)
