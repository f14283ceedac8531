"""K independent nets of one spec, stepped together: the engine of many-start studies (Rumelhart's 1000 starts).

Parameters carry a leading K axis (W1 (K, H, D), b1 (K, H), W2 (K, C, H), b2 (K, C)); every net takes the same
step as the single-net implementations (hand-written backward, Rumelhart eq. 9 update), only all at once. When
the K nets share their inputs x (N, D), as in a many-start study, both big products are single GEMMs over all
nets: with W1 stored as (D, H*K), a1 = x @ W1 is (N, H*K) and dW1 = x.T @ da1 is (D, H*K), so the cost per
net-step falls with K until the arithmetic, not the dispatch of ~30 ops, dominates. Per-net inputs (K, N, D)
are supported too (einsum).

Registered as "many" with K = 1, so verification and benchmarks check and time it like any other step;
tests check that each of K > 1 nets follows the oracle step for step.
"""

from __future__ import annotations

import torch
from torch import Tensor

from impls import register
from impls.base import SGD, Grads, Implementation, apply_sgd
from impls.functional import activate, activation_grad, loss_and_delta
from impls.precision import TF32_ONLY
from impls.spec import PARAM_NAMES, InputError, NetSpec

#: the fewest nets select() leaves under torch.compile without a recompile (K = 1 is specialised by the compiler)
MIN_DYNAMIC_K = 2


class ManyNets:
    """K nets of one spec with separate parameters; step(x, t) updates all of them and returns per-net losses.

    Internally the net index K is the last, contiguous axis of every tensor (W1 as (D, H, K), activations as
    (N, H, K)): every elementwise op then runs over K-long vectors, where an innermost axis of H = 2 or C = 1
    would defeat SIMD (measured: 2.6 us per net-step at K = 1000 with K first, see benchmarks/test_many.py).
    The API (params, gradients) keeps K first.
    """

    def __init__(
        self,
        spec: NetSpec,
        params: dict[str, Tensor],
        sgd: SGD = SGD(),
        compile: bool = False,
        momentum: Tensor | None = None,
    ) -> None:
        """compile=True runs the whole step through torch.compile (inductor fuses the ~25 elementwise ops: 0.84-0.95
        -> 0.37-0.41 us per net-step at K = 1000 on 2 cores, ~5 s to compile). K is marked dynamic for the compiler
        (_mark_k_dynamic), so select() never recompiles (measured: no slower than a static K at K = 2000).
        momentum (K,) gives every net its own alpha (overriding sgd.momentum): with K last, it simply broadcasts,
        so two learning rules run as one computation."""
        shapes = spec.param_shapes()
        K = params["W1"].shape[0]
        for k in PARAM_NAMES:
            if tuple(params[k].shape) != (K, *shapes[k]):
                want = ", ".join(map(str, shapes[k]))
                raise InputError(f"{k} must have shape (K, {want}), got {tuple(params[k].shape)}")
        self.spec, self.sgd, self.K = spec, sgd, K
        self._p = {k: _k_last(k, params[k].detach()) for k in PARAM_NAMES}
        if momentum is not None and tuple(momentum.shape) != (K,):
            raise InputError(f"momentum must have shape (K,) = ({K},), got {tuple(momentum.shape)}")
        self._alpha = None if momentum is None else momentum.to(params["W1"].dtype).clone()
        use_v = sgd.momentum or momentum is not None
        self._v = [torch.zeros_like(self._p[k]) for k in PARAM_NAMES] if use_v else []
        self.output: Tensor | None = None  # (N, C, K) outputs of the last forward pass (before its update)
        self._mark_k_dynamic()
        self._step = torch.compile(self._eager_step) if compile else self._eager_step

    def _mark_k_dynamic(self) -> None:
        """Tell torch.compile that the last (net) axis of every state tensor varies, so that a step compiled for one
        K serves every K that select() leaves (a hint: eager ignores it; K = 1 still specialises)."""
        for v in [*self._p.values(), *self._v, *([] if self._alpha is None else [self._alpha])]:
            torch._dynamo.maybe_mark_dynamic(v, v.dim() - 1)

    @property
    def p(self) -> dict[str, Tensor]:
        """Parameters with K first: W1 (K, H, D), b1 (K, H), W2 (K, C, H), b2 (K, C) (views)."""
        return {k: _k_first(k, v) for k, v in self._p.items()}

    def loss_and_grads(self, x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        """Per-net data+L2 losses (K,) and gradients (K first) at the current parameters; x (N, D) or (K, N, D)."""
        spec = self.spec
        W1, b1, W2, b2 = (self._p[k] for k in PARAM_NAMES)  # (D, H, K), (H, K), (C, H, K), (C, K)
        K = W1.shape[-1]  # not self.K: under torch.compile a Python int is a guard, a tensor's size can be dynamic
        n = x.shape[-2]
        if x.dim() == 3 and x.shape[0] != K:  # e.g. per-net inputs not indexed like the nets after select()
            raise InputError(f"per-net x must have shape (K, N, D) with K = {K} nets, got {tuple(x.shape)}")
        if x.dim() == 2:
            a1 = (x @ W1.view(spec.D, spec.H * K)).view(n, spec.H, K) + b1  # (N, H, K): one GEMM for all nets
        else:
            a1 = torch.einsum("knd,dhk->nhk", x, W1) + b1  # (N, H, K)
        h = activate(spec.hidden, a1)  # (N, H, K)
        z = (h.unsqueeze(1) * W2).sum(2) + b2  # (N, 1, H, K) * (C, H, K) -> (N, C, K)
        y = activate(spec.output, z)  # (N, C, K)
        if spec.loss_fn.labels:  # softmax over C: done with C last, then back
            labels = t[:, None].expand(n, K) if t.dim() == 1 else t.t()  # (N, K)
            loss, dzt = loss_and_delta(spec, z.transpose(1, 2), y.transpose(1, 2), labels, n, sum_dims=(0, 2))
            dz = dzt.transpose(1, 2)  # (N, C, K)
        else:
            target = t.unsqueeze(-1) if t.dim() == 2 else t.permute(1, 2, 0)  # (N, C, 1) or (N, C, K)
            loss, dz = loss_and_delta(spec, z, y, target, n, sum_dims=(0, 1))  # (K,), (N, C, K)
        dW2 = (dz.unsqueeze(2) * h.unsqueeze(1)).sum(0)  # (N, C, 1, K) * (N, 1, H, K) -> (C, H, K)
        db2 = dz.sum(0)  # (C, K)
        dh = (dz.unsqueeze(2) * W2).sum(1)  # (N, C, 1, K) * (C, H, K) -> (N, H, K)
        dact = activation_grad(spec.hidden, a1, h)
        da1 = dh if dact is None else dh * dact  # (N, H, K)
        if x.dim() == 2:
            dW1 = (x.t() @ da1.reshape(n, spec.H * K)).view(spec.D, spec.H, K)  # (D, H, K): one GEMM
        else:
            dW1 = torch.einsum("knd,nhk->dhk", x, da1)  # (D, H, K)
        db1 = da1.sum(0)  # (H, K)
        if spec.l2:
            loss = loss + spec.l2 * ((W1 * W1).sum((0, 1)) + (W2 * W2).sum((0, 1)))
            dW1 = dW1 + 2 * spec.l2 * W1
            dW2 = dW2 + 2 * spec.l2 * W2
        self.output = y
        self._g = [dW1, db1, dW2, db2]
        return loss, {k: _k_first(k, g) for k, g in zip(PARAM_NAMES, self._g, strict=True)}

    def step(self, x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        """One SGD step for every net; losses (K,) and gradients at the parameters before the update."""
        return self._step(x, t)

    def _eager_step(self, x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        loss, grads = self.loss_and_grads(x, t)
        ps = [self._p[k] for k in PARAM_NAMES]
        if self._alpha is None:
            apply_sgd(ps, self._g, self._v, self.sgd)
        else:  # Rumelhart eq. 9 with one alpha per net (K is the last axis of every tensor)
            for p, g, v in zip(ps, self._g, self._v, strict=True):
                v.mul_(self._alpha).sub_(g, alpha=self.sgd.lr)
                p.add_(v)
        return loss, grads

    def select(self, keep: Tensor) -> None:
        """Keep only the nets where `keep` (K,) is True (e.g. drop solved nets); momentum is kept with them. Per-net
        inputs (K, N, D) must then be indexed with `keep` too. The kept nets continue as they would have among all K
        up to summation order: a GEMM of another width, or a net moving between vector lanes and a scalar tail, may
        round differently (tests/test_reproduce.py bounds it; the Rumelhart study's 2000 counts came out identical).
        Under torch.compile no recompile while at least MIN_DYNAMIC_K nets remain."""
        if tuple(keep.shape) != (self.K,) or keep.dtype != torch.bool:
            got = f"{keep.dtype} {tuple(keep.shape)}"
            raise InputError(f"keep must be a bool tensor of shape (K,) = ({self.K},), got {got}")
        if not keep.any():
            raise InputError("keep selects no net: at least one must remain")
        idx = torch.nonzero(keep).flatten()
        self._p = {k: _canonical(v.index_select(-1, idx)) for k, v in self._p.items()}
        self._v = [_canonical(v.index_select(-1, idx)) for v in self._v]
        if self._alpha is not None:
            self._alpha = self._alpha.index_select(0, idx)
        self.K = int(idx.numel())
        self.output = None  # of the last step, for the nets before the selection
        self._mark_k_dynamic()


def _k_last(name: str, v: Tensor) -> Tensor:
    """(K, H, D) -> (D, H, K) for W1; otherwise the K axis moves from first to last: (K, C, H) -> (C, H, K). A copy."""
    return _canonical(v.permute(2, 1, 0) if name == "W1" else v.movedim(0, -1))


def _canonical(v: Tensor) -> Tensor:
    """A contiguous copy with the row-major strides even on size-1 axes (.contiguous() keeps a (1, K) view's stride
    1 on the first axis, index_select gives K there): torch.compile guards on strides, so they must not vary."""
    return torch.empty(v.shape, dtype=v.dtype, device=v.device).copy_(v)


def _k_first(name: str, v: Tensor) -> Tensor:
    """The inverse of _k_last, as a view."""
    return v.permute(2, 1, 0) if name == "W1" else v.movedim(-1, 0)


@register("many")
class Many(Implementation):
    """The many-nets engine with K = 1, so that verification and benchmarks treat it like every other step."""

    precisions = TF32_ONLY  # torch matmuls: TF32 applies on CUDA

    summary = "K nets stepped together (stacked parameters, one GEMM for all nets); K = 1 here"
    rank = 60

    def __init__(self, spec: NetSpec, params: dict[str, Tensor], sgd: SGD = SGD()) -> None:
        super().__init__(spec, params, sgd)
        self.nets = ManyNets(spec, {k: params[k].unsqueeze(0) for k in PARAM_NAMES}, sgd)

    def step(self, x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        loss, grads = self.nets.step(x, t)
        return loss[0], {k: g[0] for k, g in grads.items()}

    def params(self) -> dict[str, Tensor]:
        return {k: v[0] for k, v in self.nets.p.items()}

    def set_lr(self, lr: float) -> None:
        super().set_lr(lr)
        self.nets.sgd = self.sgd
