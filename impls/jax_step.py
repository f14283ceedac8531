"""JAX: the objective written once, jax.jit(jax.value_and_grad(...)) plus the same SGD/momentum update in one
jitted function; train() runs K steps in one jitted lax.scan. Registered as "jax": which framework's way is fastest
here, in the same table as torch's.

The batch is converted to JAX arrays once and kept while the caller passes the same unmodified tensors
(impls.base.SameInputs), so a timed step is JAX's step, not the conversion; loss and gradients come back as torch
tensors sharing JAX's memory (DLPack, no copy). float64 needs JAX's x64 mode, switched on when jax is first used
(explicit float32 arrays stay float32). An optional extra (pip install -e '.[jax]'): where jax is not installed, or
sees no GPU for a cuda case, the implementation is unsupported with that reason.
"""

from __future__ import annotations

import functools
import importlib.util
from types import ModuleType

import torch
from torch import Tensor

from impls import register
from impls.base import SGD, Grads, Implementation, SameInputs
from impls.spec import PARAM_NAMES, NetSpec, check_inputs

# jax is imported on first use, not at registration: importing it costs ~1.5 s, which every `import impls` would pay
IMPORT_ERROR = "" if importlib.util.find_spec("jax") else "jax is not installed; pip install -e '.[jax]'"


@functools.cache
def jax_modules() -> tuple[ModuleType, ModuleType]:
    """(jax, jax.numpy), imported once, with x64 mode on for float64 cases (explicit float32 arrays stay float32)."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    return jax, jnp


def activation(name: str) -> object:
    """The activation as a jax.numpy function; relu's derivative at 0 is 0 under jax.grad, torch's convention."""
    jax, jnp = jax_modules()
    return {"identity": lambda a: a, "sigmoid": jax.nn.sigmoid, "tanh": jnp.tanh, "relu": jax.nn.relu}[name]


def objective(spec: NetSpec, p: dict, x: object, t: object) -> object:
    """The spec's loss (impls.spec.LOSS_TABLE) plus L2, written directly in jax.numpy (jax differentiates it)."""
    jax, jnp = jax_modules()
    z = activation(spec.hidden)(x @ p["W1"].T + p["b1"]) @ p["W2"].T + p["b2"]  # (N, C)
    rule = spec.loss_fn
    scale = rule.scale(x.shape[0], spec.C)
    if rule.squared:
        loss = jnp.sum((activation(spec.output)(z) - t) ** 2) * (scale / 2)  # ()
    elif rule.kind == "binary":  # softplus(z) - t z: finite where sigmoid(z) saturates
        loss = jnp.sum(jax.nn.softplus(z) - t * z) * scale  # ()
    else:
        logp = jax.nn.log_softmax(z, axis=1)  # (N, C)
        loss = -jnp.sum(jnp.take_along_axis(logp, t[:, None], axis=1)) * scale  # ()
    if spec.l2:
        loss = loss + spec.l2 * (jnp.sum(p["W1"] ** 2) + jnp.sum(p["W2"] ** 2))
    return loss


@functools.lru_cache(maxsize=256)
def jitted(spec: NetSpec, lr: float, momentum: float) -> tuple[object, object]:
    """(step, train) jitted for these hyper-parameters (constants of the compiled functions), shared by instances."""
    jax, _ = jax_modules()
    grad_fn = jax.value_and_grad(functools.partial(objective, spec))

    def one(p: dict, v: dict, x: object, t: object) -> tuple:
        loss, g = grad_fn(p, x, t)
        v = jax.tree_util.tree_map(lambda vi, gi: momentum * vi - lr * gi, v, g)  # Rumelhart eq. 9
        p = jax.tree_util.tree_map(lambda pi, vi: pi + vi, p, v)
        return loss, g, p, v

    def train(p: dict, v: dict, x: object, t: object, steps: int) -> tuple:
        def body(carry: tuple, _: object) -> tuple:
            loss, _g, p2, v2 = one(*carry, x, t)
            return (p2, v2), loss

        (p, v), losses = jax.lax.scan(body, (p, v), None, length=steps)
        return losses, p, v

    return jax.jit(one), jax.jit(train, static_argnums=4)


def _torch(a: object) -> Tensor:
    """A JAX array as a torch tensor sharing its memory (DLPack)."""
    return torch.from_dlpack(a)


@register("jax")
class Jax(Implementation):
    """jax.jit of value_and_grad of the objective and the momentum update; K steps per call in one lax.scan."""

    summary = "JAX: jax.jit(jax.value_and_grad(objective)) + the same SGD momentum; K steps in one jitted scan"
    rank = 55
    compiles = True  # XLA compiles per (spec, shapes, dtype) on first use
    allocates = "xla"  # inside XLA's buffer assignment: neither torch's allocator nor tracemalloc sees it

    @classmethod
    def unsupported_reason(cls, spec: NetSpec, device: str, dtype: torch.dtype) -> str | None:
        if IMPORT_ERROR:
            return IMPORT_ERROR
        if device == "cuda" and not any(d.platform == "gpu" for d in jax_modules()[0].devices()):
            return "jax sees no GPU here (install jax[cuda12] for CUDA rows)"
        return super().unsupported_reason(spec, device, dtype)

    def __init__(self, spec: NetSpec, params: dict[str, Tensor], sgd: SGD = SGD()) -> None:
        super().__init__(spec, params, sgd)
        jax, jnp = jax_modules()
        self._device = jax.devices("gpu" if params["W1"].is_cuda else "cpu")[0]
        self._p = {k: jax.device_put(jnp.asarray(params[k].detach().cpu().numpy()), self._device) for k in PARAM_NAMES}
        self._v = {k: jnp.zeros_like(v) for k, v in self._p.items()}
        self._seen = SameInputs()
        self._xt: tuple = ()
        self.input_conversions = 0  # batches converted to JAX arrays (one per distinct or changed batch)

    def _inputs(self, x: Tensor, t: Tensor) -> tuple:
        """x and t as JAX arrays, converted once per batch (checked then: the jitted code does not check)."""
        if not self._seen.unchanged(x, t):
            check_inputs(self.spec, self.params(), x, t)
            jax, jnp = jax_modules()
            self._xt = tuple(jax.device_put(jnp.asarray(a.detach().cpu().numpy()), self._device) for a in (x, t))
            self._seen.remember(x, t)
            self.input_conversions += 1
        return self._xt

    def step(self, x: Tensor, t: Tensor) -> tuple[Tensor, Grads]:
        one, _ = jitted(self.spec, float(self.sgd.lr), float(self.sgd.momentum))
        loss, g, self._p, self._v = one(self._p, self._v, *self._inputs(x, t))
        return _torch(loss), {k: _torch(g[k]) for k in PARAM_NAMES}

    def train(self, x: Tensor, t: Tensor, steps: int) -> Tensor:
        """K steps in one jitted lax.scan (one compilation per distinct K)."""
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        _, train = jitted(self.spec, float(self.sgd.lr), float(self.sgd.momentum))
        losses, self._p, self._v = train(self._p, self._v, *self._inputs(x, t), steps)
        return _torch(losses)

    def xla_executable(self, x: Tensor, t: Tensor, steps: int | None = None) -> object:
        """The compiled XLA executable that step(x, t) (train of `steps` when given) calls, for these shapes."""
        one, train = jitted(self.spec, float(self.sgd.lr), float(self.sgd.momentum))
        args = (self._p, self._v, *self._inputs(x, t))
        return (one.lower(*args) if steps is None else train.lower(*args, steps)).compile()

    def params(self) -> dict[str, Tensor]:
        return {k: _torch(v) for k, v in self._p.items()}
