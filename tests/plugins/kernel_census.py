"""Compile the two one-program train kernels of the rumelhart net (64 x 6-2-1, sigmoid, squared error) for an sm_90
GPU without a GPU (triton's own ptxas and nvdisasm) and count the SASS of each loop: what a step executes per warp.
The GPU times them (benchmarks); this shows why one is faster before any GPU is lent -- and a test checks the tiny
kernel keeps its promise: no load or store in its step loop but the loss, at most 2 barriers. Run by
tests/test_triton.py in a subprocess (the interpreter must be off before triton is imported). Prints one JSON line
per kernel: {"kernel", "warps", "loops": [{"start", "end", "instructions", "barriers", "shuffles", "shared",
"global", "ffma", "mufu"}]} (loops innermost first, by end address)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.pop("TRITON_INTERPRET", None)
sys.path.insert(0, os.getcwd())
sys.path.insert(0, str(Path(__file__).parent))

import triton
from lower_triton_kernels import TARGET, signature
from triton.compiler.compiler import ASTSource

from impls import triton_fused
from impls.spec import ACTIVATION_CODE, NetSpec

KINDS = {  # a SASS category: the opcodes that count in it
    "barriers": r"\bBAR\b",
    "shuffles": r"\bSHFL\b",
    "shared": r"\b(LDS|STS)\b",
    "global": r"\b(LDG|STG)\b",
    "ffma": r"\bFFMA\b",
    "mufu": r"\bMUFU\b",
}


def sass(kernel: object, const: dict[str, object], warps: int) -> tuple[list[tuple[int, str]], dict[str, int]]:
    """(address, instruction) of the kernel compiled for sm_90 with `warps` warps, and the address of each label."""
    compiled = triton.compile(ASTSource(kernel, signature(kernel, const, False, False), constexprs=const),
                              target=TARGET, options={"num_warps": warps})  # fmt: skip
    nvdisasm = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "nvdisasm"
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(compiled.asm["cubin"])
        f.flush()
        text = subprocess.run([str(nvdisasm), "-c", f.name], capture_output=True, text=True, check=True).stdout
    labels, out, pending = {}, [], None
    for line in text.splitlines():
        if m := re.match(r"^\.(L_x_\d+):", line):
            pending = m.group(1)
        elif m := re.match(r"\s+/\*([0-9a-f]{4,})\*/\s+(.*?);", line):
            out.append((int(m.group(1), 16), m.group(2)))
            if pending:
                labels[pending], pending = out[-1][0], None
    return out, labels


def loops(kernel: object, const: dict[str, object], warps: int) -> list[dict[str, int]]:
    """Each loop (a backward branch) with its SASS instruction count per category, innermost first."""
    instructions, labels = sass(kernel, const, warps)
    found = []
    for addr, ins in instructions:
        target = re.search(r"\bBRA\b.*?(L_x_\d+)", ins)
        if target and labels.get(target.group(1), addr + 1) <= addr:
            start = labels[target.group(1)]
            body = [s for a, s in instructions if start <= a <= addr]
            counts = {kind: sum(bool(re.search(pat, s)) for s in body) for kind, pat in KINDS.items()}
            found.append({"start": start, "end": addr, "instructions": len(body), **counts})
    return sorted(found, key=lambda loop: (loop["end"] - loop["start"], loop["end"]))


def main() -> int:
    acts = {"HIDDEN": ACTIVATION_CODE["sigmoid"], "OUTPUT": ACTIVATION_CODE["sigmoid"], "SQUARED": True}
    n, d, h, c = 64, 6, 2, 1
    block = triton_fused._block
    tiles = triton_fused._tiles(NetSpec(d, h, c, "sigmoid", "sigmoid", "sse"), n)[0]
    tiny = {"D": d, "H": h, "C": c, **acts, **tiles}
    warps = triton_fused.TritonFused.TINY_WARPS
    print(json.dumps({"kernel": "_tiny_train_kernel", "warps": warps,
                      "loops": loops(triton_fused._tiny_train_kernel, tiny, warps)}))  # fmt: skip
    cls = triton_fused.TritonFused  # the tiled kernel's tiles, as TritonFused._launch sizes them
    edges = {
        "BLOCK_N": block(n, 32),
        "BLOCK_D": block(d, 64),
        "BLOCK_H": block(h, cls.MAX_H),
        "BLOCK_C": block(c, cls.MAX_C),
    }
    tiled = {**acts, "LOW": False, "X_DOT": "ieee", "STEPS": 100, **edges}
    print(json.dumps({"kernel": "_train_kernel", "warps": 4, "loops": loops(triton_fused._train_kernel, tiled, 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
