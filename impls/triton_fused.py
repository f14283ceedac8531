"""The whole training step -- forward, loss, backward, L2, momentum update -- in one Triton kernel launch, and K
steps in one launch for train() (below ROWS_FROM_N samples; above, three launches per step). Registered as "triton".

One program runs the step: the batch in row blocks of BLOCK_N, the inputs in column blocks of BLOCK_D. Pass 1 per
row block: a1 = x W1^T + b1 (accumulated over the column blocks), h, z, the loss and dz, then dW2, db2, db1 in
registers and da1 (BLOCK_N, H) to a scratch buffer. Pass 2 per column block: dW1 = da1^T x over the row blocks,
its L2 term, and the update of that block of W1 and its momentum. Then W2, b1, b2 are updated. X is read once per
product (twice per step), the parameters stay in registers or the L1/L2 cache across the K steps of a launch, and
no Python, no dispatcher and no second launch sits between the steps -- what the launch-bound GPU steps lack (the
tiny step: 65 us as a CUDA graph of ~30 kernels on an H200; one kernel launch costs ~2.5-6 us there).

Nets small enough to live in registers (TINY_TILE: rumelhart 64 x 6-2-1, the cs231n toy net) run _tiny_train_kernel
instead: the batch, parameters and momenta are loaded once and stay in registers for the K steps, and the products are
broadcast multiply-and-sum over unpadded power-of-two tiles (_tile_step, shared with the many-nets kernel) rather
than tl.dot, whose 16-wide minimum tile is 94% padding for a 6-2-1 net; one warp (few barriers). Compiled for sm_90,
its rumelhart step is about a fifth of the tiled kernel's SASS instructions, with no memory traffic but the loss and
far fewer barriers (tests/plugins/kernel_census.py counts them without a GPU; the numbers are in README).

Made for nets whose parameters fit one program (rumelhart 6-2-1, mnist-64 784-30-10, epfl 784-50-10). One
program uses one SM, so from ROWS_FROM_N samples on a step is three launches over many programs instead: (1) row
programs, a few per SM, each taking row blocks p, p + P, ...: forward, loss, dz, da1 (to scratch) and their partial
dW2, db2, db1 -- X read once; (2) dW1 = da1^T x with a program per (column block, row split) -- X read again;
(3) per column block, the splits of dW1 summed, L2 and W1's update, and program 0 sums the row partials and updates
W2, b2, b1. Partial sums, not atomics: the result does not depend on scheduling. K steps are 3K launches there.

Matrix products use tl.dot with input_precision="ieee" (true fp32); under precision tf32 x's two products use "tf32"
(tensor cores: a mnist-60000 step's 5.8 GFLOP take >= 86 us at the H200's 67 TFLOP/s of fp32 FMA, as long as reading
X twice, 88 us; TF32 removes that bound). The elementwise functions are written with exp (sigmoid 1/(1+e^-a); tanh
its odd series up to a^11 below |a| = 0.4, 1 - 2/(e^{2a}+1) above: at most 4.6 ulp from float64 over 4e5 points in
fp32), within the oracle's 8-ulp budget. float32 parameters; precision bf16-data reads x (and float targets) stored
in bf16, x's products in bf16 with fp32 accumulation (see BF16_DOT). H up to MAX_H and C up to MAX_C (one tile each:
the kernel does not loop over hidden units or classes). Where triton does not import, the implementation is
unsupported with that reason.

Without a GPU, TRITON_INTERPRET=1 (set before triton is imported) runs the kernel on CPU tensors through
triton's interpreter: then this implementation runs on "cpu" (and not on "cuda"), for verification and tests --
never for timing (benchmarks skip interpreted rows).
"""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from dataclasses import dataclass

import torch
from torch import Tensor

from impls import register
from impls.base import SGD, Grads, Implementation, SameInputs
from impls.precision import tf32_matmuls
from impls.spec import ACTIVATION_CODE, PARAM_NAMES, InputError, NetSpec, check_inputs

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
try:
    import triton
    import triton.language as tl

    IMPORT_ERROR = ""
except ImportError as exc:  # an optional extra: pip install -e '.[triton]'
    IMPORT_ERROR = f"triton does not import ({exc}); pip install -e '.[triton]'"


def _x_dot(x: Tensor) -> str:
    """tl.dot's input precision for x's two products: "tf32" where torch's own matmuls would use TF32 (CUDA tensors,
    and impls.precision.tf32_matmuls(), which precision tf32 sets), else "ieee" (true fp32)."""
    return "tf32" if x.is_cuda and tf32_matmuls() else "ieee"


def _pow2(n: int) -> int:
    """The power of two >= n: an edge of _tile_step's register tiles (which need no tl.dot minimum)."""
    return 1 << (max(n, 1) - 1).bit_length()


def _tiles(spec: NetSpec, n: int) -> tuple[dict[str, int], int]:
    """_tile_step's tile edges for one net on a batch of n (BN, BD, BH, BC: powers of two), and the elements of its
    largest tile (batch x hidden x inputs, or x outputs x hidden): what decides whether the tiles fit registers."""
    edges = {"BN": _pow2(n), "BD": _pow2(spec.D), "BH": _pow2(spec.H), "BC": _pow2(spec.C)}
    return edges, edges["BN"] * edges["BH"] * max(edges["BD"], edges["BC"])


def _block(n: int, cap: int) -> int:
    """A power-of-two tile edge >= 16 (tl.dot's minimum) covering n, at most cap."""
    return max(16, min(cap, 1 << max(0, math.ceil(math.log2(max(n, 1))))))


if not IMPORT_ERROR:
    #: bf16 data: products on bf16 tensor cores (fp32 accumulation) when compiled; the interpreter computes a bf16
    #: tl.dot wrongly (checked: errors of 1e10 on a 16x16 product), so there x is widened to fp32 in registers
    #: instead -- the same bytes read, the parameters and da1 not rounded to bf16 (within the bf16-data tolerance).
    #: A tl.constexpr: compiled kernels may read no other global (a plain bool fails to compile, tested)
    BF16_DOT = tl.constexpr(not INTERPRETED)

    @triton.jit
    def _act(a, CODE: tl.constexpr):
        if CODE == 1:
            return 1.0 / (1.0 + tl.exp(-a))
        elif CODE == 2:  # tanh: its odd series near 0, where 1 - 2/(e^2a + 1) cancels; <= 4.6 ulp (checked in fp32)
            a2 = a * a
            series = a * (
                1.0
                + a2 * (-1.0 / 3 + a2 * (2.0 / 15 + a2 * (-17.0 / 315 + a2 * (62.0 / 2835 + a2 * (-1382.0 / 155925)))))
            )
            return tl.where(tl.abs(a) < 0.4, series, 1.0 - 2.0 / (tl.exp(2.0 * a) + 1.0))
        elif CODE == 3:
            return tl.where(a > 0, a, 0.0)
        else:
            return a

    @triton.jit
    def _dact(a, y, CODE: tl.constexpr):
        if CODE == 1:
            return y * (1.0 - y)
        elif CODE == 2:
            return 1.0 - y * y
        elif CODE == 3:
            return tl.where(a > 0, 1.0, 0.0)  # relu'(0) = 0, torch's convention
        else:
            return tl.full(a.shape, 1.0, tl.float32)

    @triton.jit
    def _tile_step(
        x, t, w1, b1, w2, b2, n_ok, h_ok, c_ok, l2, scale,
        HIDDEN: tl.constexpr, OUTPUT: tl.constexpr, SQUARED: tl.constexpr,
    ):  # fmt: skip
        """Forward, loss and gradients (L2 included) of a block of nets held in registers, nets first: x (BN, BD)
        and t (BN, BC) float targets or the labels' one-hot, shared; W1 (BK, BH, BD), b1 (BK, BH), W2 (BK, BC, BH),
        b2 (BK, BC). Products are broadcast multiply-and-sum over unpadded power-of-two tiles (no tl.dot and its
        16-wide minimum: a 6-2-1 net would be 94% padding). Masks n_ok (BN,), h_ok (BH,), c_ok (BC,). Returns
        loss (BK,), y (BK, BN, BC) (the outputs, or the softmax), g1, gb1, g2, gb2."""
        nh_ok = n_ok[:, None] & h_ok[None, :]
        nc_ok = n_ok[:, None] & c_ok[None, :]
        a1 = tl.sum(w1[:, None, :, :] * x[None, :, None, :], axis=3) + b1[:, None, :]  # (BK, BN, BH)
        h = tl.where(nh_ok[None, :, :], _act(a1, HIDDEN), 0.0)  # padded rows and units contribute nothing
        z = tl.sum(w2[:, None, :, :] * h[:, :, None, :], axis=3) + b2[:, None, :]  # (BK, BN, BC)
        if SQUARED:
            y = _act(z, OUTPUT)
            diff = tl.where(nc_ok[None, :, :], y - t[None, :, :], 0.0)
            loss = tl.sum(tl.sum(diff * diff, axis=2), axis=1) * (scale * 0.5)  # (BK,)
            dz = diff * scale * _dact(z, y, OUTPUT)
        else:  # softmax cross-entropy on the logits, shifted by their max
            zc = tl.where(c_ok[None, None, :], z, -float("inf"))
            zmax = tl.max(zc, axis=2)  # (BK, BN)
            e = tl.exp(zc - zmax[:, :, None])  # padded classes: exp(-inf) = 0
            total = tl.sum(e, axis=2)
            picked = tl.sum(tl.where(nc_ok[None, :, :], z * t[None, :, :], 0.0), axis=2)  # z[label]: t is one-hot
            per_row = tl.where(n_ok[None, :], tl.log(total) + zmax - picked, 0.0)  # -log softmax[label]
            loss = tl.sum(per_row, axis=1) * scale
            y = e / total[:, :, None]
            dz = tl.where(nc_ok[None, :, :], (y - t[None, :, :]) * scale, 0.0)  # (BK, BN, BC)
        loss += l2 * (tl.sum(tl.sum(w1 * w1, axis=2), axis=1) + tl.sum(tl.sum(w2 * w2, axis=2), axis=1))
        g2 = tl.sum(dz[:, :, :, None] * h[:, :, None, :], axis=1) + 2.0 * l2 * w2  # (BK, BC, BH)
        gb2 = tl.sum(dz, axis=1)  # (BK, BC)
        dh = tl.sum(dz[:, :, :, None] * w2[:, None, :, :], axis=2)  # (BK, BN, BH)
        da = tl.where(nh_ok[None, :, :], dh * _dact(a1, h, HIDDEN), 0.0)
        g1 = tl.sum(da[:, :, :, None] * x[None, :, None, :], axis=1) + 2.0 * l2 * w1  # (BK, BH, BD)
        gb1 = tl.sum(da, axis=1)  # (BK, BH)
        return loss, y, g1, gb1, g2, gb2

    @triton.jit
    def _unit_tiles(H, C, BLOCK_H: tl.constexpr, BLOCK_C: tl.constexpr):
        """Hidden-unit and output indices with their masks, and W2's (BLOCK_C, BLOCK_H) offsets and mask."""
        hs = tl.arange(0, BLOCK_H)
        cs = tl.arange(0, BLOCK_C)
        h_ok = hs < H
        c_ok = cs < C
        return hs, cs, h_ok, c_ok, cs[:, None] * H + hs[None, :], c_ok[:, None] & h_ok[None, :]

    @triton.jit
    def _row_block(
        x_ptr, t_ptr, w1_ptr, da_ptr, b1, w2, b2, n0, N, D, H, C, scale,
        HIDDEN: tl.constexpr, OUTPUT: tl.constexpr, SQUARED: tl.constexpr, LOW: tl.constexpr, X_DOT: tl.constexpr,
        BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_C: tl.constexpr,
    ):  # fmt: skip
        """Rows n0..n0+BLOCK_N: forward, loss, dz, da1 (stored to da_ptr); their share of the loss, dW2, db2, db1.
        LOW: x and float targets are stored in bf16, and x's product runs in bf16 with fp32 accumulation. X_DOT: the
        input precision of x's product otherwise, "ieee" (fp32) or "tf32" (precision tf32)."""
        hs, cs, h_ok, c_ok, _, _ = _unit_tiles(H, C, BLOCK_H, BLOCK_C)
        rows = n0 + tl.arange(0, BLOCK_N)
        r_ok = rows < N
        a1 = tl.zeros((BLOCK_N, BLOCK_H), tl.float32)
        for d0 in range(0, D, BLOCK_D):
            ds = d0 + tl.arange(0, BLOCK_D)
            d_ok = ds < D
            xt = tl.load(x_ptr + rows[:, None] * D + ds[None, :], mask=r_ok[:, None] & d_ok[None, :], other=0.0)
            w1 = tl.load(w1_ptr + hs[:, None] * D + ds[None, :], mask=h_ok[:, None] & d_ok[None, :], other=0.0)
            if LOW and BF16_DOT:
                a1 += tl.dot(xt, tl.trans(w1).to(tl.bfloat16))  # (BLOCK_N, BLOCK_H), fp32 accumulation
            elif LOW:  # triton's interpreter: bf16 tl.dot is wrong there, so the bf16 x is widened in registers
                a1 += tl.dot(xt.to(tl.float32), tl.trans(w1), input_precision="ieee")
            else:
                a1 += tl.dot(xt, tl.trans(w1), input_precision=X_DOT)  # (BLOCK_N, BLOCK_H)
        a1 += b1[None, :]
        rh_ok = r_ok[:, None] & h_ok[None, :]
        h = tl.where(rh_ok, _act(a1, HIDDEN), 0.0)  # padded units and rows contribute nothing
        z = tl.dot(h, tl.trans(w2), input_precision="ieee") + b2[None, :]  # (BLOCK_N, BLOCK_C)
        rc_ok = r_ok[:, None] & c_ok[None, :]
        if SQUARED:
            y = _act(z, OUTPUT)
            tgt = tl.load(t_ptr + rows[:, None] * C + cs[None, :], mask=rc_ok, other=0.0).to(tl.float32)
            diff = tl.where(rc_ok, y - tgt, 0.0)
            loss = tl.sum(tl.sum(diff * diff, axis=1), axis=0) * (scale * 0.5)
            dz = diff * scale * _dact(z, y, OUTPUT)
        else:  # softmax cross-entropy on the logits, shifted by their max
            zc = tl.where(c_ok[None, :], z, -float("inf"))
            zmax = tl.max(zc, axis=1)  # (BLOCK_N,)
            e = tl.exp(zc - zmax[:, None])  # padded classes: exp(-inf) = 0
            total = tl.sum(e, axis=1)
            label = tl.load(t_ptr + rows, mask=r_ok, other=0)
            onehot = cs[None, :] == label[:, None]
            picked = tl.sum(tl.where(onehot, zc, 0.0), axis=1)
            per_row = tl.log(total) + zmax - picked  # -log softmax[label], finite at large logits
            loss = tl.sum(tl.where(r_ok, per_row, 0.0), axis=0) * scale
            dz = (e / total[:, None] - tl.where(onehot, 1.0, 0.0)) * scale
        dz = tl.where(rc_ok, dz, 0.0)  # (BLOCK_N, BLOCK_C)
        gw2 = tl.dot(tl.trans(dz), h, input_precision="ieee")  # (BLOCK_C, BLOCK_H)
        gb2 = tl.sum(dz, axis=0)
        dh = tl.dot(dz, w2, input_precision="ieee")  # (BLOCK_N, BLOCK_H)
        da1 = tl.where(rh_ok, dh * _dact(a1, h, HIDDEN), 0.0)
        tl.store(da_ptr + rows[:, None] * H + hs[None, :], da1, mask=rh_ok)
        return loss, gw2, gb2, tl.sum(da1, axis=0)

    @triton.jit
    def _dw1_block(
        x_ptr, da_ptr, d0, first, stride, N, D, H,
        LOW: tl.constexpr, X_DOT: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_H: tl.constexpr,
    ):  # fmt: skip
        """da1^T x for the columns d0..d0+BLOCK_D over the row blocks first, first + stride, ...: (BLOCK_H, BLOCK_D)."""
        hs = tl.arange(0, BLOCK_H)
        h_ok = hs < H
        ds = d0 + tl.arange(0, BLOCK_D)
        d_ok = ds < D
        g1 = tl.zeros((BLOCK_H, BLOCK_D), tl.float32)
        for n0 in range(first, N, stride):
            rows = n0 + tl.arange(0, BLOCK_N)
            r_ok = rows < N
            da1 = tl.load(da_ptr + rows[:, None] * H + hs[None, :], mask=r_ok[:, None] & h_ok[None, :], other=0.0)
            xt = tl.load(x_ptr + rows[:, None] * D + ds[None, :], mask=r_ok[:, None] & d_ok[None, :], other=0.0)
            if LOW and BF16_DOT:
                g1 += tl.dot(tl.trans(da1).to(tl.bfloat16), xt)  # (BLOCK_H, BLOCK_D), fp32 accumulation
            elif LOW:
                g1 += tl.dot(tl.trans(da1), xt.to(tl.float32), input_precision="ieee")
            else:
                g1 += tl.dot(tl.trans(da1), xt, input_precision=X_DOT)  # (BLOCK_H, BLOCK_D)
        return g1

    @triton.jit
    def _update_output_and_biases(
        w2_ptr, b2_ptr, b1_ptr, v2_ptr, vb2_ptr, vb1_ptr, g2_ptr, gb2_ptr, gb1_ptr,
        w2, b2, b1, gw2, gb2, gb1, H, C, lr, momentum,
        BLOCK_H: tl.constexpr, BLOCK_C: tl.constexpr,
    ):  # fmt: skip
        """Store the gradients of W2, b2, b1 and apply Rumelhart eq. 9 to them (W1 is updated per column block)."""
        hs, cs, h_ok, c_ok, w2_off, w2_ok = _unit_tiles(H, C, BLOCK_H, BLOCK_C)
        v2 = momentum * tl.load(v2_ptr + w2_off, mask=w2_ok, other=0.0) - lr * gw2
        vb2 = momentum * tl.load(vb2_ptr + cs, mask=c_ok, other=0.0) - lr * gb2
        vb1 = momentum * tl.load(vb1_ptr + hs, mask=h_ok, other=0.0) - lr * gb1
        tl.store(g2_ptr + w2_off, gw2, mask=w2_ok)
        tl.store(gb2_ptr + cs, gb2, mask=c_ok)
        tl.store(gb1_ptr + hs, gb1, mask=h_ok)
        tl.store(v2_ptr + w2_off, v2, mask=w2_ok)
        tl.store(vb2_ptr + cs, vb2, mask=c_ok)
        tl.store(vb1_ptr + hs, vb1, mask=h_ok)
        tl.store(w2_ptr + w2_off, w2 + v2, mask=w2_ok)
        tl.store(b2_ptr + cs, b2 + vb2, mask=c_ok)
        tl.store(b1_ptr + hs, b1 + vb1, mask=h_ok)

    @triton.jit
    def _train_kernel(
        x_ptr, t_ptr,  # (N, D) inputs; (N, C) float targets or (N,) int64 labels
        w1_ptr, b1_ptr, w2_ptr, b2_ptr,  # parameters, updated in place
        v1_ptr, vb1_ptr, v2_ptr, vb2_ptr,  # momentum buffers, updated in place
        g1_ptr, gb1_ptr, g2_ptr, gb2_ptr,  # gradients of the last step, at its parameters before the update
        da_ptr,  # (N, H) scratch: dLoss/da1 of the current step
        loss_ptr,  # (STEPS,) the loss before each step
        N, D, H, C,
        lr, momentum, l2, scale,  # scale: impls.spec.Loss.scale(N, C)
        STEPS: tl.constexpr, HIDDEN: tl.constexpr, OUTPUT: tl.constexpr, SQUARED: tl.constexpr,
        LOW: tl.constexpr, X_DOT: tl.constexpr,
        BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_C: tl.constexpr,
    ):  # fmt: skip
        hs, cs, h_ok, c_ok, w2_off, w2_ok = _unit_tiles(H, C, BLOCK_H, BLOCK_C)
        for step in range(STEPS):
            b1 = tl.load(b1_ptr + hs, mask=h_ok, other=0.0)  # (BLOCK_H,)
            w2 = tl.load(w2_ptr + w2_off, mask=w2_ok, other=0.0)  # (BLOCK_C, BLOCK_H)
            b2 = tl.load(b2_ptr + cs, mask=c_ok, other=0.0)  # (BLOCK_C,)
            loss = 0.0
            gw2 = tl.zeros((BLOCK_C, BLOCK_H), tl.float32)
            gb2 = tl.zeros((BLOCK_C,), tl.float32)
            gb1 = tl.zeros((BLOCK_H,), tl.float32)
            # pass 1: forward, loss, dz and da1, one row block at a time
            for n0 in range(0, N, BLOCK_N):
                part = _row_block(
                    x_ptr, t_ptr, w1_ptr, da_ptr, b1, w2, b2, n0, N, D, H, C, scale,
                    HIDDEN, OUTPUT, SQUARED, LOW, X_DOT, BLOCK_N, BLOCK_D, BLOCK_H, BLOCK_C,
                )  # fmt: skip
                loss += part[0]
                gw2 += part[1]
                gb2 += part[2]
                gb1 += part[3]
            tl.debug_barrier()  # da1 written by all threads before any reads it back
            # pass 2: dW1 = da1^T x per column block, its L2 term, and that block's update
            for d0 in range(0, D, BLOCK_D):
                ds = d0 + tl.arange(0, BLOCK_D)
                d_ok = ds < D
                hd_ok = h_ok[:, None] & d_ok[None, :]
                hd_off = hs[:, None] * D + ds[None, :]
                g1 = _dw1_block(x_ptr, da_ptr, d0, 0, BLOCK_N, N, D, H, LOW, X_DOT, BLOCK_N, BLOCK_D, BLOCK_H)
                w1 = tl.load(w1_ptr + hd_off, mask=hd_ok, other=0.0)
                g1 += 2.0 * l2 * w1
                loss += l2 * tl.sum(tl.sum(w1 * w1, axis=1), axis=0)
                v1 = momentum * tl.load(v1_ptr + hd_off, mask=hd_ok, other=0.0) - lr * g1  # Rumelhart eq. 9
                tl.store(g1_ptr + hd_off, g1, mask=hd_ok)
                tl.store(v1_ptr + hd_off, v1, mask=hd_ok)
                tl.store(w1_ptr + hd_off, w1 + v1, mask=hd_ok)
            gw2 += 2.0 * l2 * w2
            loss += l2 * tl.sum(tl.sum(w2 * w2, axis=1), axis=0)
            _update_output_and_biases(
                w2_ptr, b2_ptr, b1_ptr, v2_ptr, vb2_ptr, vb1_ptr, g2_ptr, gb2_ptr, gb1_ptr,
                w2, b2, b1, gw2, gb2, gb1, H, C, lr, momentum, BLOCK_H, BLOCK_C,
            )  # fmt: skip
            tl.store(loss_ptr + step, loss)
            tl.debug_barrier()  # the next step reads the parameters this one wrote

    @triton.jit
    def _tiny_train_kernel(
        x_ptr, t_ptr,  # (N, D) inputs; (N, C) float targets or (N,) int64 labels
        w1_ptr, b1_ptr, w2_ptr, b2_ptr,  # parameters, updated in place
        v1_ptr, vb1_ptr, v2_ptr, vb2_ptr,  # momentum buffers, updated in place
        g1_ptr, gb1_ptr, g2_ptr, gb2_ptr,  # gradients of the last step, at its parameters before the update
        loss_ptr,  # (steps,) the loss before each step
        N, steps, lr, momentum, l2, scale,
        D: tl.constexpr, H: tl.constexpr, C: tl.constexpr,
        HIDDEN: tl.constexpr, OUTPUT: tl.constexpr, SQUARED: tl.constexpr,
        BN: tl.constexpr, BD: tl.constexpr, BH: tl.constexpr, BC: tl.constexpr,
    ):  # fmt: skip
        """`steps` steps of a net small enough to live in registers (TritonFused.TINY_TILE): the batch, parameters
        and momenta are loaded once and stay there across the steps (no scratch, no barrier, no reload), the
        products use _tile_step's unpadded tiles. x (and float targets) may be bf16: widened once in registers."""
        ns, ds, hs, cs = tl.arange(0, BN), tl.arange(0, BD), tl.arange(0, BH), tl.arange(0, BC)
        n_ok, d_ok, h_ok, c_ok = ns < N, ds < D, hs < H, cs < C
        # _tile_step's tiles have a leading net axis: here of one net
        w1_off, w1_ok = (hs[:, None] * D + ds[None, :])[None, :, :], (h_ok[:, None] & d_ok[None, :])[None, :, :]
        w2_off, w2_ok = (cs[:, None] * H + hs[None, :])[None, :, :], (c_ok[:, None] & h_ok[None, :])[None, :, :]
        b1_off, b1_ok, b2_off, b2_ok = hs[None, :], h_ok[None, :], cs[None, :], c_ok[None, :]
        w1 = tl.load(w1_ptr + w1_off, mask=w1_ok, other=0.0)
        b1 = tl.load(b1_ptr + b1_off, mask=b1_ok, other=0.0)
        w2 = tl.load(w2_ptr + w2_off, mask=w2_ok, other=0.0)
        b2 = tl.load(b2_ptr + b2_off, mask=b2_ok, other=0.0)
        v1 = tl.load(v1_ptr + w1_off, mask=w1_ok, other=0.0)
        vb1 = tl.load(vb1_ptr + b1_off, mask=b1_ok, other=0.0)
        v2 = tl.load(v2_ptr + w2_off, mask=w2_ok, other=0.0)
        vb2 = tl.load(vb2_ptr + b2_off, mask=b2_ok, other=0.0)
        nd_ok = n_ok[:, None] & d_ok[None, :]
        x = tl.load(x_ptr + ns[:, None] * D + ds[None, :], mask=nd_ok, other=0.0).to(tl.float32)  # (BN, BD)
        nc_ok = n_ok[:, None] & c_ok[None, :]
        if SQUARED:
            t = tl.load(t_ptr + ns[:, None] * C + cs[None, :], mask=nc_ok, other=0.0).to(tl.float32)  # (BN, BC)
        else:
            label = tl.load(t_ptr + ns, mask=n_ok, other=0)
            t = tl.where(cs[None, :] == label[:, None], 1.0, 0.0)  # (BN, BC) one-hot
        g1, gb1, g2, gb2 = tl.zeros_like(w1), tl.zeros_like(b1), tl.zeros_like(w2), tl.zeros_like(b2)
        for step in range(steps):
            loss, _, g1, gb1, g2, gb2 = _tile_step(
                x, t, w1, b1, w2, b2, n_ok, h_ok, c_ok, l2, scale, HIDDEN, OUTPUT, SQUARED
            )  # fmt: skip
            tl.store(loss_ptr + step + tl.arange(0, 1), loss)  # loss (1,)
            v1 = momentum * v1 - lr * g1  # Rumelhart eq. 9
            vb1 = momentum * vb1 - lr * gb1
            v2 = momentum * v2 - lr * g2
            vb2 = momentum * vb2 - lr * gb2
            w1, b1, w2, b2 = w1 + v1, b1 + vb1, w2 + v2, b2 + vb2
        tl.store(w1_ptr + w1_off, w1, mask=w1_ok)
        tl.store(v1_ptr + w1_off, v1, mask=w1_ok)
        tl.store(g1_ptr + w1_off, g1, mask=w1_ok)
        tl.store(b1_ptr + b1_off, b1, mask=b1_ok)
        tl.store(vb1_ptr + b1_off, vb1, mask=b1_ok)
        tl.store(gb1_ptr + b1_off, gb1, mask=b1_ok)
        tl.store(w2_ptr + w2_off, w2, mask=w2_ok)
        tl.store(v2_ptr + w2_off, v2, mask=w2_ok)
        tl.store(g2_ptr + w2_off, g2, mask=w2_ok)
        tl.store(b2_ptr + b2_off, b2, mask=b2_ok)
        tl.store(vb2_ptr + b2_off, vb2, mask=b2_ok)
        tl.store(gb2_ptr + b2_off, gb2, mask=b2_ok)

    @triton.jit
    def _rows_kernel(
        x_ptr, t_ptr, w1_ptr, b1_ptr, w2_ptr, b2_ptr, da_ptr,
        part_loss, part_gw2, part_gb2, part_gb1,  # (P,), (P, C, H), (P, C), (P, H): one slot per program
        N, D, H, C, l2, scale,
        HIDDEN: tl.constexpr, OUTPUT: tl.constexpr, SQUARED: tl.constexpr, LOW: tl.constexpr, X_DOT: tl.constexpr,
        BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_C: tl.constexpr,
    ):  # fmt: skip
        """Large N, launch 1 of 3: program p takes row blocks p, p + P, ... (X read once), stores da1 and its partial
        loss, dW2, db2, db1; program 0 adds the L2 term of the loss (at the parameters before the update)."""
        pid = tl.program_id(0)
        progs = tl.num_programs(0)
        hs, cs, h_ok, c_ok, w2_off, w2_ok = _unit_tiles(H, C, BLOCK_H, BLOCK_C)
        b1 = tl.load(b1_ptr + hs, mask=h_ok, other=0.0)
        w2 = tl.load(w2_ptr + w2_off, mask=w2_ok, other=0.0)
        b2 = tl.load(b2_ptr + cs, mask=c_ok, other=0.0)
        loss = 0.0
        gw2 = tl.zeros((BLOCK_C, BLOCK_H), tl.float32)
        gb2 = tl.zeros((BLOCK_C,), tl.float32)
        gb1 = tl.zeros((BLOCK_H,), tl.float32)
        for n0 in range(pid * BLOCK_N, N, progs * BLOCK_N):
            part = _row_block(
                x_ptr, t_ptr, w1_ptr, da_ptr, b1, w2, b2, n0, N, D, H, C, scale,
                HIDDEN, OUTPUT, SQUARED, LOW, X_DOT, BLOCK_N, BLOCK_D, BLOCK_H, BLOCK_C,
            )  # fmt: skip
            loss += part[0]
            gw2 += part[1]
            gb2 += part[2]
            gb1 += part[3]
        if pid == 0:
            sq = tl.sum(tl.sum(w2 * w2, axis=1), axis=0)
            for d0 in range(0, D, BLOCK_D):
                ds = d0 + tl.arange(0, BLOCK_D)
                hd_ok = h_ok[:, None] & (ds < D)[None, :]
                w1 = tl.load(w1_ptr + hs[:, None] * D + ds[None, :], mask=hd_ok, other=0.0)
                sq += tl.sum(tl.sum(w1 * w1, axis=1), axis=0)
            loss += l2 * sq
        tl.store(part_loss + pid, loss)
        tl.store(part_gw2 + pid * C * H + w2_off, gw2, mask=w2_ok)
        tl.store(part_gb2 + pid * C + cs, gb2, mask=c_ok)
        tl.store(part_gb1 + pid * H + hs, gb1, mask=h_ok)

    @triton.jit
    def _dw1_kernel(
        x_ptr, da_ptr, part_g1,  # part_g1 (S, H, D): one slot per row split
        N, D, H,
        LOW: tl.constexpr, X_DOT: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_H: tl.constexpr,
    ):  # fmt: skip
        """Large N, launch 2 of 3: program (j, s) sums da1^T x over row blocks s, s + S, ... for column block j."""
        j = tl.program_id(0)
        split = tl.program_id(1)
        stride = tl.num_programs(1) * BLOCK_N
        g1 = _dw1_block(
            x_ptr, da_ptr, j * BLOCK_D, split * BLOCK_N, stride, N, D, H, LOW, X_DOT, BLOCK_N, BLOCK_D, BLOCK_H
        )
        hs = tl.arange(0, BLOCK_H)
        ds = j * BLOCK_D + tl.arange(0, BLOCK_D)
        hd_ok = (hs < H)[:, None] & (ds < D)[None, :]
        tl.store(part_g1 + split * H * D + hs[:, None] * D + ds[None, :], g1, mask=hd_ok)

    @triton.jit
    def _update_kernel(
        w1_ptr, b1_ptr, w2_ptr, b2_ptr, v1_ptr, vb1_ptr, v2_ptr, vb2_ptr, g1_ptr, gb1_ptr, g2_ptr, gb2_ptr,
        part_loss, part_gw2, part_gb2, part_gb1, part_g1, loss_ptr,
        P, S, D, H, C, lr, momentum, l2,
        BLOCK_D: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_C: tl.constexpr, BLOCK_P: tl.constexpr,
    ):  # fmt: skip
        """Large N, launch 3 of 3: program j reduces dW1's splits for column block j, adds L2 and updates that block
        (Rumelhart eq. 9); program 0 also reduces the row programs' partials and updates W2, b2, b1 and the loss."""
        j = tl.program_id(0)
        hs, cs, h_ok, c_ok, w2_off, w2_ok = _unit_tiles(H, C, BLOCK_H, BLOCK_C)
        ds = j * BLOCK_D + tl.arange(0, BLOCK_D)
        hd_ok = h_ok[:, None] & (ds < D)[None, :]
        hd_off = hs[:, None] * D + ds[None, :]
        g1 = tl.zeros((BLOCK_H, BLOCK_D), tl.float32)
        for split in range(0, S):
            g1 += tl.load(part_g1 + split * H * D + hd_off, mask=hd_ok, other=0.0)
        w1 = tl.load(w1_ptr + hd_off, mask=hd_ok, other=0.0)
        g1 += 2.0 * l2 * w1
        v1 = momentum * tl.load(v1_ptr + hd_off, mask=hd_ok, other=0.0) - lr * g1
        tl.store(g1_ptr + hd_off, g1, mask=hd_ok)
        tl.store(v1_ptr + hd_off, v1, mask=hd_ok)
        tl.store(w1_ptr + hd_off, w1 + v1, mask=hd_ok)
        if j == 0:
            w2 = tl.load(w2_ptr + w2_off, mask=w2_ok, other=0.0)
            gw2 = 2.0 * l2 * w2
            gb2 = tl.zeros((BLOCK_C,), tl.float32)
            gb1 = tl.zeros((BLOCK_H,), tl.float32)
            loss = tl.zeros((BLOCK_P,), tl.float32)
            for p0 in range(0, P, BLOCK_P):
                ps = p0 + tl.arange(0, BLOCK_P)
                loss += tl.load(part_loss + ps, mask=ps < P, other=0.0)
            for p in range(0, P):
                gw2 += tl.load(part_gw2 + p * C * H + w2_off, mask=w2_ok, other=0.0)
                gb2 += tl.load(part_gb2 + p * C + cs, mask=c_ok, other=0.0)
                gb1 += tl.load(part_gb1 + p * H + hs, mask=h_ok, other=0.0)
            b1 = tl.load(b1_ptr + hs, mask=h_ok, other=0.0)
            b2 = tl.load(b2_ptr + cs, mask=c_ok, other=0.0)
            _update_output_and_biases(
                w2_ptr, b2_ptr, b1_ptr, v2_ptr, vb2_ptr, vb1_ptr, g2_ptr, gb2_ptr, gb1_ptr,
                w2, b2, b1, gw2, gb2, gb1, H, C, lr, momentum, BLOCK_H, BLOCK_C,
            )  # fmt: skip
            tl.store(loss_ptr, tl.sum(loss, axis=0))


@dataclass
class _Graph:
    """A captured call: its CUDA graph, the losses buffer it writes, the kernels it launches, and its replays."""

    graph: torch.cuda.CUDAGraph
    losses: Tensor
    kernels: Counter[str]
    replays: int = 0
    first: Tensor | None = None  # losses[0], made once: indexing a tensor costs ~1 us of Python per call

    def replay(self) -> Tensor:
        self.graph.replay()
        self.replays += 1
        return self.losses

    def ran(self) -> Counter[str]:
        """The kernel launches its replays so far amount to."""
        return Counter({k: v * self.replays for k, v in self.kernels.items()})


@register("triton")
class TritonFused(Implementation):
    """One Triton kernel launch per step (and per K steps in train()) for small batches, three per step for large
    ones: forward, loss, backward, L2 and update."""

    summary = "the whole step in one Triton kernel, K steps per launch (small batches); 3 launches per step (large)"
    rank = 97
    losses = ("sse", "half_sse", "mse", "cross_entropy")
    unsupported_losses = "its kernels branch on SQUARED (squared error or softmax); binary cross-entropy is not written"
    #: cpu only through triton's interpreter (tests, verification); nowhere when triton does not import
    devices = () if IMPORT_ERROR else (("cpu",) if INTERPRETED else ("cuda",))
    MAX_H, MAX_C = 128, 64  # one tile of hidden units and one of outputs (the kernel loops over rows and inputs)
    #: from this batch size on, a step is three launches over many programs (X streams through every SM) instead of
    #: one program: one SM streams ~30-60 GB/s, so a 256x784 batch read twice costs one program ~30-50 us, more than
    #: 3 launches (~3 x 2.5-6 us) plus the bytes at full bandwidth; below it one program (and K steps per launch) wins.
    #: An estimate until a GPU times both paths (benchmarks time the batch sweep through both sides)
    ROWS_FROM_N = 256
    #: a net whose largest register tile (batch x hidden x inputs, or x outputs x hidden, powers of two) has at most
    #: this many elements runs _tiny_train_kernel in one warp (32 elements of a tile per thread): batch, parameters
    #: and momenta in registers across the K steps of a launch, unpadded products (rumelhart, 64 x 2 x 8 = 1024;
    #: the cs231n toy net, 8 x 16 x 4 = 512). Larger tiles would need more warps, and with them barriers (sm_90
    #: SASS of a 4-warp 8-8-8 net at N = 64: 69 barriers per step, against the tiled kernel's 26): a GPU decides
    TINY_TILE = 1024
    TINY_WARPS = 1
    #: on CUDA, a call seen twice (_key: x's and t's storage, shapes and dtypes, steps, lr, momentum, precision) is
    #: captured in a CUDA graph and replayed from then on (_capture): one replay, ~2.5 us on an H200, against >= 6 us
    #: per launch through triton's Python launcher -- a rumelhart step call is launch-bound (its kernel: ~0.3-0.8 us)
    GRAPHS = True
    MAX_GRAPHS = 8  # graphs kept per instance (a graph per distinct call), and calls remembered as seen once

    dtypes = (torch.float32,)
    #: bf16-data: x (and float targets) read as bf16, x's products in bf16; tf32: x's products on TF32 tensor cores
    precisions = ("fp32", "tf32", "bf16-data")
    compiles = True  # triton compiles a kernel per (spec, block sizes, steps) on first use

    @classmethod
    def unsupported_reason(cls, spec: NetSpec, device: str, dtype: torch.dtype) -> str | None:
        if IMPORT_ERROR:
            return IMPORT_ERROR
        if device == "cpu" and not INTERPRETED:
            return "runs on cuda only, not cpu (TRITON_INTERPRET=1 runs it on the CPU through triton's interpreter)"
        if spec.H > cls.MAX_H or spec.C > cls.MAX_C:
            return f"one tile of at most {cls.MAX_H} hidden units and {cls.MAX_C} outputs, not H={spec.H}, C={spec.C}"
        return super().unsupported_reason(spec, device, dtype)

    @classmethod
    def timing_reason(cls, device: str) -> str | None:
        return "runs through triton's interpreter here (TRITON_INTERPRET=1): not a timing" if INTERPRETED else None

    def __init__(self, spec: NetSpec, params: dict[str, Tensor], sgd: SGD = SGD()) -> None:
        super().__init__(spec, params, sgd)
        self._p = [params[k].detach().clone().contiguous() for k in PARAM_NAMES]
        self._v = [torch.zeros_like(p) for p in self._p]
        self._g = [torch.zeros_like(p) for p in self._p]
        self._grads = dict(zip(PARAM_NAMES, self._g, strict=True))  # what step() returns: the buffers, made once
        self._scratch = torch.empty(0, device=self._p[0].device)
        self._seen = SameInputs()
        self._plan: dict[str, object] = {}
        self._launched: Counter[str] = Counter()  # eager launches per kernel, and those of dropped graphs' replays
        self._graphs: dict[tuple, _Graph] = {}
        self._seen_once: dict[tuple, None] = {}  # calls run eagerly once, oldest first: captured when seen again
        self._replayed: _Graph | None = None  # the graph whose buffer the last call returned
        self._tiles: dict[tuple[int, int], dict[str, int] | None] = {}
        self._keep_buffers = False  # a caller captured our launches in a graph of theirs: _retire keeps buffers
        self._retired: list[tuple] = []
        self.graph_failure = ""  # why a capture failed (then every call launches eagerly)

    def _tiny(self, n: int) -> dict[str, int] | None:
        """The register tiles of _tiny_train_kernel for a batch of n, or None when they exceed TINY_TILE (cached per
        n and TINY_TILE: this runs on every graph replay)."""
        known = self._tiles.get((n, self.TINY_TILE), False)
        if known is not False:
            return known
        edges, largest = _tiles(self.spec, n)
        self._tiles[n, self.TINY_TILE] = edges if largest <= self.TINY_TILE else None
        return self._tiles[n, self.TINY_TILE]

    def _key(self, x: Tensor, t: Tensor, steps: int) -> tuple:
        """What a graph of this call depends on, read on every call (what the kernels read must be where the graph
        reads it): x's and t's storage address, shape and dtype (contiguous: no strides), steps, lr, momentum and,
        but for the tiny kernel (no tl.dot; the read costs ~2 us), x's dot precision."""
        shape = x.shape
        x_dot = "ieee" if self._tiny(shape[0]) else _x_dot(x)
        return (x.data_ptr(), shape, x.dtype, t.data_ptr(), t.shape, t.dtype, steps, self.sgd.lr, self.sgd.momentum,
                x_dot)  # fmt: skip

    def _graphable(self, x: Tensor, t: Tensor) -> bool:
        """Whether this call goes through a CUDA graph: CUDA tensors, already contiguous (a contiguous copy would be
        a temporary), no failed capture, and no capture of the caller's own under way (a capture inside it would
        invalidate theirs: then the kernels are launched into their graph, and the buffers they read are never
        freed from then on: see _retire)."""
        if not x.is_cuda:
            return False
        if torch.cuda.is_current_stream_capturing():
            self._keep_buffers = True
            return False
        return self.GRAPHS and not self.graph_failure and x.is_contiguous() and t.is_contiguous()

    def _retire(self, *buffers: object) -> None:
        """Buffers about to be replaced: our graphs that read them are dropped; a caller's graph that captured our
        launches may read them still (we cannot know when it is gone), so then they are kept for good."""
        if self._keep_buffers:
            self._retired.append(buffers)
        self._drop_graphs()

    def _launch(self, x: Tensor, t: Tensor, steps: int) -> Tensor:
        """`steps` steps: one launch for all of them (one program), or three launches per step (large N); the
        losses (steps,). Through a CUDA graph when _graphable: then the losses are the graph's buffer."""
        self._replayed = None
        if not self._seen.unchanged(x, t):
            # the kernel reads without bounds checks; bf16 data (precision bf16-data) is checked as the float32 it holds
            x32, t32 = (a.float() if a.dtype == torch.bfloat16 else a for a in (x, t))
            check_inputs(self.spec, self.params(), x32, t32, finite=False)
            self._seen.remember(x, t)
        key = self._key(x, t, steps) if self._graphable(x, t) else None
        if key is not None and (graph := self._graphs.get(key)) is not None:  # checked when it was captured
            self._replayed = graph
            return graph.replay()
        x, t = x.contiguous(), t.contiguous()  # a copy only where they are not (and then no graph)
        spec, n = self.spec, x.shape[0]
        if n * max(spec.D, spec.H, spec.C) >= 2**31:  # the kernels index in int32
            raise InputError(f"N x D = {n} x {spec.D} exceeds the kernels' int32 indexing (2^31 elements)")
        if self._scratch.numel() < n * spec.H:
            self._retire(self._scratch)  # graphs read it
            self._scratch = torch.empty(n * spec.H, dtype=torch.float32, device=x.device)
        if not self._tiny(n) and n >= self.ROWS_FROM_N:
            self._rows_plan(n, x.device)  # made here, outside any capture: a new plan retires the old buffers
        return self._capture(x, t, steps, key) if key is not None else self._kernels(x, t, steps)

    def _capture(self, x: Tensor, t: Tensor, steps: int, key: tuple) -> Tensor:
        """A call with no graph yet: run eagerly the first time it is seen (which compiles the kernels), captured in
        a CUDA graph the second time and replayed from then on -- one replay instead of triton's Python launcher
        per kernel. A graph reads x and t where they lie now (a new storage is a new key: the values may change
        between calls, the storage may not) and the parameters, momenta and gradients in place."""
        if key not in self._seen_once:  # first time: triton compiles on this launch, which cannot happen in a capture
            self._seen_once[key] = None
            if len(self._seen_once) > self.MAX_GRAPHS:
                del self._seen_once[next(iter(self._seen_once))]
            return self._kernels(x, t, steps)
        before = self._launched.copy()
        cuda_graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(cuda_graph):  # records the launches without running them
                losses = self._kernels(x, t, steps)
        except Exception as exc:  # noqa: BLE001 -- any capture failure: eager launches from now on, said once
            self.graph_failure = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            warnings.warn(f"triton: CUDA graph capture failed, launching eagerly ({self.graph_failure})", stacklevel=3)
            self._launched = before
            return self._kernels(x, t, steps)
        kernels, self._launched = self._launched - before, before
        if len(self._graphs) >= self.MAX_GRAPHS:  # callers that pass ever new tensors: keep the memory bounded
            self._drop_graphs()
        del self._seen_once[key]
        self._graphs[key] = self._replayed = _Graph(cuda_graph, losses, kernels, first=losses[0])
        return self._replayed.replay()

    def _drop_graphs(self) -> None:
        """Forget every graph (what it reads is reallocated, or lr changed); their replays stay counted."""
        for g in self._graphs.values():
            self._launched.update(g.ran())
        self._graphs, self._replayed = {}, None

    @property
    def launched(self) -> Counter[str]:
        """Kernel launches so far per kernel name, a graph replay counting the kernels it holds."""
        return sum((g.ran() for g in self._graphs.values()), self._launched.copy())

    @property
    def replays(self) -> int:
        """Graph replays so far (of the graphs kept)."""
        return sum(g.replays for g in self._graphs.values())

    def _kernels(self, x: Tensor, t: Tensor, steps: int) -> Tensor:
        """Launch the kernels of `steps` steps on contiguous x, t; the losses (steps,)."""
        spec, n = self.spec, x.shape[0]
        losses = torch.empty(steps, dtype=torch.float32, device=x.device)
        codes = {"HIDDEN": ACTIVATION_CODE[spec.hidden], "OUTPUT": ACTIVATION_CODE[spec.output]}
        lr, momentum, l2 = float(self.sgd.lr), float(self.sgd.momentum), float(spec.l2)
        scale = spec.loss_fn.scale(n, spec.C)
        tiles = self._tiny(n)
        if tiles:
            _tiny_train_kernel[(1,)](
                x, t, *self._p, *self._v, *self._g, losses, n, steps, lr, momentum, l2, scale,
                D=spec.D, H=spec.H, C=spec.C, SQUARED=spec.loss_fn.squared, **codes, **tiles, num_warps=self.TINY_WARPS,
            )  # fmt: skip
            self._launched["_tiny_train_kernel"] += 1
            return losses
        blocks = {"BLOCK_H": _block(spec.H, self.MAX_H), "BLOCK_C": _block(spec.C, self.MAX_C)}
        bf16 = x.dtype == torch.bfloat16
        low = {"LOW": bf16, "X_DOT": "ieee" if bf16 else _x_dot(x)}  # bf16 x: its products are bf16 whatever X_DOT
        if n < self.ROWS_FROM_N:
            _train_kernel[(1,)](
                x, t, *self._p, *self._v, *self._g, self._scratch, losses,
                n, spec.D, spec.H, spec.C, lr, momentum, l2, scale,
                STEPS=steps, SQUARED=spec.loss_fn.squared, BLOCK_N=_block(n, 32), BLOCK_D=_block(spec.D, 64),
                **codes, **blocks, **low,
            )  # fmt: skip
            self._launched["_train_kernel"] += 1
            return losses
        rows = self._rows_plan(n, x.device)
        for k in range(steps):
            self._rows_step(x, t, rows, losses[k:], lr, momentum, l2, scale, {**codes, **low}, blocks)
        return losses

    def _rows_plan(self, n: int, device: torch.device) -> dict[str, object]:
        """Grid sizes and partial-sum buffers of the large-N path, made once per batch size: row programs P (a few
        per SM), dW1 programs per column block S, so that X streams through every SM twice per step."""
        if self._plan.get("n") == n:
            return self._plan
        self._retire(*self._plan.get("parts", ()), self._plan.get("part_g1"))  # graphs read them
        spec, block_n, block_d = self.spec, 64, 64
        # interpreted: 1 "SM", so programs take several row blocks each and the strided loops are exercised in tests
        sms = 1 if INTERPRETED else torch.cuda.get_device_properties(device).multi_processor_count
        row_blocks, col_blocks = triton.cdiv(n, block_n), triton.cdiv(spec.D, block_d)
        p, s = min(row_blocks, 4 * sms), min(row_blocks, max(1, 4 * sms // col_blocks))

        def buf(*shape: int) -> Tensor:
            return torch.empty(shape, dtype=torch.float32, device=device)

        self._plan = {
            "n": n, "P": p, "S": s, "BLOCK_N": block_n, "BLOCK_D": block_d, "col_blocks": col_blocks,
            "parts": (buf(p), buf(p, spec.C, spec.H), buf(p, spec.C), buf(p, spec.H)),
            "part_g1": buf(s, spec.H, spec.D),
        }  # fmt: skip
        return self._plan

    def _rows_step(
        self, x: Tensor, t: Tensor, plan: dict, loss_out: Tensor, lr: float, momentum: float, l2: float, scale: float,
        codes: dict[str, int | bool], blocks: dict[str, int],
    ) -> None:  # fmt: skip
        """One step of the large-N path: rows (X read once), dW1 (X read again), update: three launches."""
        spec, n = self.spec, x.shape[0]
        bn, bd, parts, part_g1 = plan["BLOCK_N"], plan["BLOCK_D"], plan["parts"], plan["part_g1"]
        _rows_kernel[(plan["P"],)](
            x, t, *self._p, self._scratch, *parts, n, spec.D, spec.H, spec.C, l2, scale,
            SQUARED=spec.loss_fn.squared, BLOCK_N=bn, BLOCK_D=bd, **codes, **blocks,
        )  # fmt: skip
        _dw1_kernel[(plan["col_blocks"], plan["S"])](
            x, self._scratch, part_g1, n, spec.D, spec.H, LOW=codes["LOW"], X_DOT=codes["X_DOT"],
            BLOCK_N=bn, BLOCK_D=bd, BLOCK_H=blocks["BLOCK_H"],
        )  # fmt: skip
        _update_kernel[(plan["col_blocks"],)](
            *self._p, *self._v, *self._g, *parts, part_g1, loss_out,
            plan["P"], plan["S"], spec.D, spec.H, spec.C, lr, momentum, l2,
            BLOCK_D=bd, BLOCK_P=_block(plan["P"], 1024), **blocks,
        )  # fmt: skip
        self._launched.update(("_rows_kernel", "_dw1_kernel", "_update_kernel"))

    @property
    def launches(self) -> int:
        """Kernel launches so far, all kernels."""
        return sum(self.launched.values())

    def step(self, x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        """One step (one launch, or a graph replay). The gradients are this instance's buffers, and on CUDA the loss
        is a graph's buffer: the next step overwrites both (clone them to keep them; the CPU path, interpreted,
        returns a new loss each call, so a test there cannot catch a missing clone)."""
        losses = self._launch(x, t, 1)
        return (self._replayed.first if self._replayed else losses[0]), self._grads

    def train(self, x: Tensor, t: Tensor, steps: int) -> Tensor:
        """`steps` steps: in one launch below ROWS_FROM_N samples (the tiled kernel is compiled per distinct `steps`,
        a loop bound there; the tiny one takes it at run time), else three launches per step."""
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        losses = self._launch(x, t, steps)
        return losses.clone() if self._replayed else losses  # a graph's buffer is overwritten by its next replay

    def set_lr(self, lr: float) -> None:
        """lr is an argument of the launches a graph recorded: the graphs are dropped (recaptured on use)."""
        super().set_lr(lr)
        self._drop_graphs()

    def params(self) -> dict[str, Tensor]:
        return dict(zip(PARAM_NAMES, self._p, strict=True))
