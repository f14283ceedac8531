"""Lower every Triton kernel of the project to Triton IR for an sm_90 GPU (H100/H200) without a GPU: the compiled
front end, which the interpreter (TRITON_INTERPRET=1, used by the other tests) skips. It catches what only a real
compile refuses -- a global that is not a tl.constexpr, a tile over triton's element limit, a type mismatch in
tl.dot -- for each configuration the implementations launch. Run by tests/test_triton.py in a subprocess (the
interpreter must be off before triton is imported). Prints one line per configuration; exit 1 if any failed."""

from __future__ import annotations

import os
import sys

os.environ.pop("TRITON_INTERPRET", None)
sys.path.insert(0, os.getcwd())

import triton._C.libtriton as libtriton
from triton.backends.compiler import GPUTarget
from triton.backends.nvidia.compiler import CUDABackend
from triton.compiler.compiler import ASTSource

from impls import many_triton, triton_fused
from impls.spec import ACTIVATION_CODE

TARGET = GPUTarget("cuda", 90, 32)
FLOATS = {"lr", "momentum", "l2", "scale"}


def signature(kernel: object, const: dict[str, object], low: bool, labels: bool) -> dict[str, str]:
    """Argument types as a launch would see them: x (and float targets) bf16 under bf16-data, int64 labels."""
    sig = {}
    for name in kernel.arg_names:
        if name in const:
            sig[name] = "constexpr"
        elif name in FLOATS:
            sig[name] = "fp32"
        elif name.endswith("_ptr") or name.startswith("part_"):
            data = "*bf16" if low else "*fp32"
            sig[name] = {"x_ptr": data, "t_ptr": "*i64" if labels else data, "solved_ptr": "*i64"}.get(name, "*fp32")
        else:
            sig[name] = "i32"
    return sig


def lower(label: str, kernel: object, const: dict[str, object], low: bool = False, labels: bool = False) -> bool:
    backend = CUDABackend(TARGET)
    options = backend.parse_options({})
    context = libtriton.ir.context()
    libtriton.ir.load_dialects(context)
    backend.load_dialects(context)
    source = ASTSource(kernel, signature(kernel, const, low, labels), constexprs=const)
    try:
        source.make_ir(TARGET, options, backend.get_codegen_implementation(options), backend.get_module_map(), context)
    except Exception as exc:  # noqa: BLE001 -- report every configuration, then fail
        cause = exc
        while cause.__cause__ or cause.__context__:
            cause = cause.__cause__ or cause.__context__
        print(f"FAIL {label}: {type(cause).__name__}: {str(cause).splitlines()[0][:200]}")
        return False
    print(f"ok   {label}")
    return True


def main() -> int:
    acts = {"HIDDEN": ACTIVATION_CODE["tanh"], "OUTPUT": ACTIVATION_CODE["sigmoid"]}
    tiles = {"BLOCK_N": 32, "BLOCK_D": 64, "BLOCK_H": 32, "BLOCK_C": 16}
    ok = True
    # precision -> (x stored in bf16, tl.dot's input precision for x's products): what _launch passes for each
    for precision, (low, x_dot) in {
        "fp32": (False, "ieee"),
        "tf32": (False, "tf32"),
        "bf16-data": (True, "ieee"),
    }.items():
        for squared in (True, False):
            tag = f"{precision} {'squared' if squared else 'cross-entropy'}"
            base = {**acts, "SQUARED": squared, "LOW": low, "X_DOT": x_dot}
            one = {**base, "STEPS": 2, **tiles}
            ok &= lower(f"_train_kernel {tag}", triton_fused._train_kernel, one, low, not squared)
            rows = {**base, **tiles, "BLOCK_N": 64}
            ok &= lower(f"_rows_kernel {tag}", triton_fused._rows_kernel, rows, low, not squared)
            tiny = {"D": 6, "H": 2, "C": 2, **acts, "SQUARED": squared, "BN": 64, "BD": 8, "BH": 2, "BC": 2}
            if x_dot == "ieee":  # the tiny kernel's products are not tl.dot: tf32 lowers the same as fp32
                ok &= lower(f"_tiny_train_kernel {tag}", triton_fused._tiny_train_kernel, tiny, low, not squared)
        dw1 = {"LOW": low, "X_DOT": x_dot, "BLOCK_N": 64, "BLOCK_D": 64, "BLOCK_H": 32}
        ok &= lower(f"_dw1_kernel {precision}", triton_fused._dw1_kernel, dw1, low)
    update = {"BLOCK_D": 64, "BLOCK_H": 32, "BLOCK_C": 16, "BLOCK_P": 1024}
    ok &= lower("_update_kernel", triton_fused._update_kernel, update)
    pow2 = triton_fused._pow2
    many = {"D": 6, "H": 2, "C": 1, **acts, "BLOCK_K": many_triton.BLOCK_K, "BN": 64, "BD": pow2(6), "BH": pow2(2)}
    ok &= lower("_many_kernel rumelhart 6-2-1", many_triton._many_kernel, {**many, "BC": pow2(1)})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
