"""Many small nets on the GPU in one kernel: each program holds a block of nets' parameters and momenta in
registers and runs every sweep of a many-start study (forward, the solved test, backward, L2, Rumelhart eq. 9)
without leaving the kernel -- what `impls.many.ManyNets` does with ~30 torch ops per sweep, launched per sweep.

Made for Rumelhart's 1000-start study (6-2-1 nets on 64 patterns, verification.reproduce rumelhart --device cuda):
every net of a block, the block's patterns and the sweep loop live in one program, and a block stops as soon as all
its nets are solved (their later weights are not used by the study: each net's sweeps-to-solve and its weights one
sweep after it solved are recorded when it solves). Squared losses only (what the study uses); small nets only:
every quantity is a register tile (nets, patterns, units, inputs) of at most MAX_TILE elements.

Without a GPU, TRITON_INTERPRET=1 runs the same kernel on CPU tensors (tests check it against ManyNets, net by net
and sweep by sweep); not a registered implementation (`many` is, with K = 1), a study engine.
"""

from __future__ import annotations

import os

import torch
from torch import Tensor

from impls.spec import ACTIVATION_CODE, PARAM_NAMES, InputError, NetSpec, check_inputs
from impls.triton_fused import _tiles

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
try:
    import triton
    import triton.language as tl

    IMPORT_ERROR = ""
except ImportError as exc:  # an optional extra: pip install -e '.[triton]'
    IMPORT_ERROR = f"triton does not import ({exc}); pip install -e '.[triton]'"

BLOCK_K = 4  # nets per program: the 4-D register tiles (nets, patterns, units, inputs) scale with it, and so does
#: the generated code (16 nets per program: 137k lines of PTX and ~8 CPU-minutes of ptxas for 6-2-1, measured)
MAX_TILE = 2**13  # elements of the largest 4-D tile: Rumelhart's 6-2-1 on 64 patterns needs 4 x 64 x 2 x 8 = 4096


if not IMPORT_ERROR:
    from impls.triton_fused import _tile_step

    @triton.jit
    def _many_kernel(
        x_ptr, t_ptr,  # (N, D) shared inputs, (N, C) float targets
        w1_ptr, b1_ptr, w2_ptr, b2_ptr,  # (K, H, D), (K, H), (K, C, H), (K, C): in, and out after the last sweep
        s1_ptr, sb1_ptr, s2_ptr, sb2_ptr,  # the same shapes: each net's parameters one sweep after it solved
        alpha_ptr, solved_ptr,  # (K,) momentum per net; (K,) int64 sweep at which it was first solved, -1 if never
        K, N, cap, stop, lr, l2, scale,  # stop: 1 = a block ends once its nets are solved (a runtime flag: one compile)
        D: tl.constexpr, H: tl.constexpr, C: tl.constexpr, HIDDEN: tl.constexpr, OUTPUT: tl.constexpr,
        BLOCK_K: tl.constexpr, BN: tl.constexpr, BD: tl.constexpr, BH: tl.constexpr,
        BC: tl.constexpr,
    ):  # fmt: skip
        ks = tl.program_id(0) * BLOCK_K + tl.arange(0, BLOCK_K)
        k_ok = ks < K
        ns, ds, hs, cs = tl.arange(0, BN), tl.arange(0, BD), tl.arange(0, BH), tl.arange(0, BC)
        n_ok, d_ok, h_ok, c_ok = ns < N, ds < D, hs < H, cs < C
        # parameter tiles, net first: W1 (BLOCK_K, BH, BD), b1 (BLOCK_K, BH), W2 (BLOCK_K, BC, BH), b2 (BLOCK_K, BC)
        w1_off = ks[:, None, None] * (H * D) + hs[None, :, None] * D + ds[None, None, :]
        w1_ok = k_ok[:, None, None] & h_ok[None, :, None] & d_ok[None, None, :]
        b1_off = ks[:, None] * H + hs[None, :]
        b1_ok = k_ok[:, None] & h_ok[None, :]
        w2_off = ks[:, None, None] * (C * H) + cs[None, :, None] * H + hs[None, None, :]
        w2_ok = k_ok[:, None, None] & c_ok[None, :, None] & h_ok[None, None, :]
        b2_off = ks[:, None] * C + cs[None, :]
        b2_ok = k_ok[:, None] & c_ok[None, :]
        w1 = tl.load(w1_ptr + w1_off, mask=w1_ok, other=0.0)
        b1 = tl.load(b1_ptr + b1_off, mask=b1_ok, other=0.0)
        w2 = tl.load(w2_ptr + w2_off, mask=w2_ok, other=0.0)
        b2 = tl.load(b2_ptr + b2_off, mask=b2_ok, other=0.0)
        v1, vb1, v2, vb2 = tl.zeros_like(w1), tl.zeros_like(b1), tl.zeros_like(w2), tl.zeros_like(b2)
        s1, sb1, s2, sb2 = w1, b1, w2, b2
        alpha = tl.load(alpha_ptr + ks, mask=k_ok, other=0.0)  # (BLOCK_K,)
        x = tl.load(x_ptr + ns[:, None] * D + ds[None, :], mask=n_ok[:, None] & d_ok[None, :], other=0.0)  # (BN, BD)
        nc_ok = n_ok[:, None] & c_ok[None, :]
        t = tl.load(t_ptr + ns[:, None] * C + cs[None, :], mask=nc_ok, other=0.0)  # (BN, BC)
        solved_at = tl.where(k_ok, -1, 0).to(tl.int64)  # padded nets count as solved: they never hold a block
        sweep = 0
        open_nets = tl.sum(tl.where(solved_at < 0, 1, 0), axis=0)
        while (sweep < cap) & ((open_nets > 0) | (stop == 0)):
            _, y, g1, gb1, g2, gb2 = _tile_step(x, t, w1, b1, w2, b2, n_ok, h_ok, c_ok, l2, scale, HIDDEN, OUTPUT, True)
            wrong = nc_ok[None, :, :] & ((y > 0.5) != (t[None, :, :] > 0.5))
            solved = tl.sum(tl.sum(tl.where(wrong, 1, 0), axis=2), axis=1) == 0  # (BLOCK_K,) at the sweep's start
            v1 = alpha[:, None, None] * v1 - lr * g1  # Rumelhart eq. 9, alpha per net
            vb1 = alpha[:, None] * vb1 - lr * gb1
            v2 = alpha[:, None, None] * v2 - lr * g2
            vb2 = alpha[:, None] * vb2 - lr * gb2
            w1, b1, w2, b2 = w1 + v1, b1 + vb1, w2 + v2, b2 + vb2
            newly = solved & (solved_at < 0)
            solved_at = tl.where(newly, sweep, solved_at)
            s1 = tl.where(newly[:, None, None], w1, s1)
            sb1 = tl.where(newly[:, None], b1, sb1)
            s2 = tl.where(newly[:, None, None], w2, s2)
            sb2 = tl.where(newly[:, None], b2, sb2)
            open_nets = tl.sum(tl.where(solved_at < 0, 1, 0), axis=0)
            sweep += 1
        tl.store(w1_ptr + w1_off, w1, mask=w1_ok)
        tl.store(b1_ptr + b1_off, b1, mask=b1_ok)
        tl.store(w2_ptr + w2_off, w2, mask=w2_ok)
        tl.store(b2_ptr + b2_off, b2, mask=b2_ok)
        tl.store(s1_ptr + w1_off, s1, mask=w1_ok)
        tl.store(sb1_ptr + b1_off, sb1, mask=b1_ok)
        tl.store(s2_ptr + w2_off, s2, mask=w2_ok)
        tl.store(sb2_ptr + b2_off, sb2, mask=b2_ok)
        tl.store(solved_ptr + ks, solved_at, mask=k_ok)


def unsupported_reason(spec: NetSpec, n: int, device: str) -> str | None:
    """Why this engine cannot run the study for `spec` on `device` with n patterns, or None."""
    if IMPORT_ERROR:
        return IMPORT_ERROR
    if device == "cpu" and not INTERPRETED:
        return "runs on cuda (TRITON_INTERPRET=1 runs it on the CPU through triton's interpreter)"
    if not spec.loss_fn.squared:
        return f"squared losses only (the study's), not {spec.loss}"
    tile = BLOCK_K * _tiles(spec, n)[1]
    if tile > MAX_TILE:
        return (
            f"register tiles of at most {MAX_TILE} elements (nets x patterns x units x inputs, powers of two): "
            f"{spec.D}-{spec.H}-{spec.C} on {n} patterns needs {tile}"
        )
    return None


def sweeps_to_solve(
    spec: NetSpec,
    params: dict[str, Tensor],
    x: Tensor,
    t: Tensor,
    lr: float,
    momentum: Tensor,
    cap: int,
    stop_when_solved: bool = True,
) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
    """K nets (params K-first, float32) trained on the shared batch (x, t) for up to `cap` sweeps, per-net momentum
    (K,): per net the sweep at which it was first solved (every output on the right side of 0.5 at the weights the
    sweep started from; -1 if never), its parameters one sweep later (the update of that sweep applied: as the
    torch study records them), and the parameters after the last sweep run (a block stops once all its nets are
    solved when stop_when_solved; else every net runs `cap` sweeps)."""
    reason = unsupported_reason(spec, x.shape[0], x.device.type)
    if reason:
        raise InputError(reason)
    k = params["W1"].shape[0]
    shapes = spec.param_shapes()
    for name in PARAM_NAMES:  # the kernel reads without bounds checks: every shape and device is checked here
        if tuple(params[name].shape) != (k, *shapes[name]):
            want = ", ".join(map(str, shapes[name]))
            raise InputError(f"{name} must have shape (K, {want}) with K = {k}, got {tuple(params[name].shape)}")
    check_inputs(spec, {name: params[name][0] for name in PARAM_NAMES}, x, t)  # x (N, D), t (N, C), dtypes, devices
    if tuple(momentum.shape) != (k,) or momentum.device != x.device:
        raise InputError(f"momentum must have shape (K,) = ({k},) on {x.device}, got {tuple(momentum.shape)} on "
                         f"{momentum.device}")  # fmt: skip
    last = {name: params[name].detach().to(torch.float32).contiguous().clone() for name in PARAM_NAMES}
    snap = {name: v.clone() for name, v in last.items()}
    solved = torch.empty(k, dtype=torch.int64, device=x.device)
    _many_kernel[(triton.cdiv(k, BLOCK_K),)](
        x.float().contiguous(), t.float().contiguous(),
        *(last[n] for n in PARAM_NAMES), *(snap[n] for n in PARAM_NAMES), momentum.float().contiguous(), solved,
        k, x.shape[0], cap, int(stop_when_solved), float(lr), float(spec.l2), spec.loss_fn.scale(x.shape[0], spec.C),
        D=spec.D, H=spec.H, C=spec.C, HIDDEN=ACTIVATION_CODE[spec.hidden], OUTPUT=ACTIVATION_CODE[spec.output],
        BLOCK_K=BLOCK_K, **_tiles(spec, x.shape[0])[0],
    )  # fmt: skip
    return solved, snap, last
