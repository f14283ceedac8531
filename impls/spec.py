"""The net's configuration (NetSpec), its parameters, its data, and input checks shared by every implementation."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

PARAM_NAMES: tuple[str, ...] = ("W1", "b1", "W2", "b2")
HIDDEN_ACTIVATIONS: tuple[str, ...] = ("sigmoid", "tanh", "relu")
OUTPUT_ACTIVATIONS: tuple[str, ...] = ("identity", "sigmoid", "tanh")
#: an integer per activation, for compiled kernels that take it as a constant (numba, triton)
ACTIVATION_CODE: dict[str, int] = {"identity": 0, "sigmoid": 1, "tanh": 2, "relu": 3}
FLOAT_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float64)


#: what a loss is made of: "squared" scale/2 * sum (y - t)^2 of the outputs y = act(z) and float targets (N, C);
#: "softmax" softmax cross-entropy of the logits z against int64 class labels (N,); "binary" binary cross-entropy of
#: independent sigmoid outputs y = sigmoid(z) against float targets (N, C) in [0, 1] (0/1 labels)
LOSS_KINDS: tuple[str, ...] = ("squared", "softmax", "binary")


@dataclass(frozen=True)
class Loss:
    """What every implementation needs to know of a loss (the oracle keeps its own formulas on purpose; a test
    checks them against this table). Squared losses: loss = scale/2 * sum (y - t)^2 and dLoss/dy = scale * (y - t);
    softmax cross-entropy (over the C logits z): loss = scale * sum -log softmax(z)_t, dLoss/dz = scale *
    (softmax(z) - onehot(t)); binary cross-entropy (y = sigmoid(z) per output): loss = scale * sum -(t log y +
    (1 - t) log(1 - y)) = scale * sum (softplus(z) - t z), dLoss/dz = scale * (y - t); scale = factor, divided by the
    batch size N when over_n, by C when over_c."""

    name: str
    kind: str  # LOSS_KINDS
    factor: float
    over_n: bool  # a mean over the batch (else a sum, which grows with N)
    over_c: bool = False
    output: str | None = None  # the output activation the loss requires (None: any)
    min_classes: int = 1

    def __post_init__(self) -> None:
        if self.kind not in LOSS_KINDS:
            raise ValueError(f"loss kind {self.kind!r}: choose from {', '.join(LOSS_KINDS)}")

    @property
    def squared(self) -> bool:
        """A squared error of the outputs."""
        return self.kind == "squared"

    @property
    def labels(self) -> bool:
        """Targets are int64 class labels (N,) (softmax cross-entropy); else float targets (N, C)."""
        return self.kind == "softmax"

    @property
    def canonical(self) -> bool:
        """dLoss/dz = scale * (y - target): the output activation's derivative cancels against the loss's (softmax
        with cross-entropy, sigmoid with binary cross-entropy), so the backward never multiplies by it."""
        return self.kind != "squared"

    def scale(self, n: int, C: int) -> float:
        """The factor of the formulas above for a batch of n samples and C outputs."""
        return self.factor / (n if self.over_n else 1) / (C if self.over_c else 1)

    def scale_parts(self, C: int) -> tuple[float, bool]:
        """(numerator, over_n): scale(n, C) = numerator / n if over_n else numerator, for a compiled kernel that
        learns n at run time."""
        return self.factor / (C if self.over_c else 1), self.over_n


#: the one table of losses: NetSpec validation and every implementation read it. bce is the mean over the N x C
#: outputs (torch's BCEWithLogitsLoss, reduction "mean"); with C = 1 it is deeplearning.ai's planar classifier's cost
LOSS_TABLE: dict[str, Loss] = {
    "sse": Loss("sse", "squared", factor=2.0, over_n=False),
    "half_sse": Loss("half_sse", "squared", factor=1.0, over_n=False),  # Rumelhart et al. 1986
    "mse": Loss("mse", "squared", factor=2.0, over_n=True, over_c=True),  # mean over N*C
    "cross_entropy": Loss("cross_entropy", "softmax", factor=1.0, over_n=True, output="identity", min_classes=2),
    "bce": Loss("bce", "binary", factor=1.0, over_n=True, over_c=True, output="sigmoid"),
}
LOSSES: tuple[str, ...] = tuple(LOSS_TABLE)


class SpecError(ValueError):
    """A NetSpec that describes no sensible net (H=0, cross_entropy after a sigmoid, ...)."""


class InputError(ValueError):
    """Parameters or a batch that do not fit the spec: wrong shape, dtype, device, NaN/inf, bad labels."""


@dataclass(frozen=True)
class NetSpec:
    """One two-layer net: D inputs -> H hidden (activation) -> C outputs (activation), a loss and an L2 coefficient."""

    D: int
    H: int
    C: int
    hidden: str = "sigmoid"
    output: str = "identity"
    loss: str = "sse"
    l2: float = 0.0

    def __post_init__(self) -> None:
        for name in ("D", "H", "C"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SpecError(f"{name} must be a positive integer, got {value!r}")
        _one_of("hidden activation", self.hidden, HIDDEN_ACTIVATIONS)
        _one_of("output activation", self.output, OUTPUT_ACTIVATIONS)
        _one_of("loss", self.loss, LOSSES)
        loss = LOSS_TABLE[self.loss]
        if loss.output is not None and self.output != loss.output:
            raise SpecError(
                f"{self.loss} applies softmax to the output logits; output activation must be "
                f"{loss.output!r}, got {self.output!r}"
            )
        if self.C < loss.min_classes:
            raise SpecError(f"{self.loss} needs at least {loss.min_classes} classes, got C={self.C}")
        if not isinstance(self.l2, (int, float)) or not math.isfinite(self.l2) or self.l2 < 0:
            raise SpecError(f"l2 must be a finite number >= 0, got {self.l2!r}")

    @property
    def label(self) -> str:
        """Short human-readable name, e.g. '784-30-10 sigmoid/identity cross_entropy l2=0'."""
        return f"{self.D}-{self.H}-{self.C} {self.hidden}/{self.output} {self.loss} l2={self.l2:g}"

    @property
    def loss_fn(self) -> Loss:
        """This spec's row of LOSS_TABLE."""
        return LOSS_TABLE[self.loss]

    def as_dict(self) -> dict[str, object]:
        """Plain dict for CSV rows and benchmark extra_info."""
        return asdict(self)

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """Shapes in the nn.Linear layout: W1 (H, D), b1 (H,), W2 (C, H), b2 (C,)."""
        return {"W1": (self.H, self.D), "b1": (self.H,), "W2": (self.C, self.H), "b2": (self.C,)}

    def flops_per_step(self, n: int) -> int:
        """Matmul flops of one training step on n samples: forward 2nDH+2nHC, backward dW2, dh, dW1."""
        return 4 * n * self.D * self.H + 6 * n * self.H * self.C

    @property
    def n_params(self) -> int:
        """|theta|: the values in W1, b1, W2, b2."""
        return self.H * self.D + self.H + self.C * self.H + self.C

    def target_bytes(self, n: int, itemsize: int) -> int:
        """The targets of n samples: (n, C) floats, or (n,) int64 labels for softmax cross-entropy."""
        return n * 8 if self.loss_fn.labels else n * self.C * itemsize

    def bytes_per_step(self, n: int, itemsize: int) -> int:
        """Bytes a step must move at least (the roofline's): X read twice (forward and dW1, unless fused), targets
        once, and the parameters, gradients and momentum buffers each written once and read once (6 |theta|)."""
        return 2 * n * self.D * itemsize + self.target_bytes(n, itemsize) + 6 * self.n_params * itemsize

    def floor_bytes(
        self, n: int, itemsize: int, *, momentum: bool = True, per_sample: bool = False, nets: int = 1
    ) -> int:
        """Bytes a batched step must hold at its peak at least: the parameters, their gradient and (with momentum)
        velocities, the batch (x and targets), and what backward needs of the forward -- the hidden activations
        (n, H), from which each activation's derivative follows, and the output error (n, C). per_sample: the
        n x |theta| per-sample gradients instead of the batch gradient (no update is made); nets: K nets stepped
        together on one shared batch. A per-sample loop or a fused kernel holds one sample's or one tile's
        activations and can sit below it: the floor is the batched algorithm's, the one every row is compared to."""
        grads = n * self.n_params if per_sample else self.n_params
        per_net = self.n_params * (1 + int(momentum)) + grads + n * (self.H + self.C)
        return (nets * per_net + n * self.D) * itemsize + self.target_bytes(n, itemsize)


def _one_of(what: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SpecError(f"unknown {what} {value!r}; choose one of: {', '.join(allowed)}")


def all_specs(D: int = 5, H: int = 4, C: int = 3, l2_values: tuple[float, ...] = (0.0, 0.1)) -> list[NetSpec]:
    """Every activation/output/loss combination that makes sense (no cross_entropy for C=1), with each L2 value."""
    specs = []
    for hidden in HIDDEN_ACTIVATIONS:
        for output in OUTPUT_ACTIVATIONS:
            for loss in LOSSES:
                rule = LOSS_TABLE[loss]
                if (rule.output is not None and output != rule.output) or C < rule.min_classes:
                    continue
                for l2 in l2_values:
                    specs.append(NetSpec(D, H, C, hidden, output, loss, l2))
    return specs


def init_params(
    spec: NetSpec, seed: int = 0, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> dict[str, Tensor]:
    """nn.Linear-style uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) init, reproducible from the seed on any device."""
    g = torch.Generator().manual_seed(seed)
    params = {}
    for name, shape in spec.param_shapes().items():
        fan_in = spec.D if name in ("W1", "b1") else spec.H
        bound = 1.0 / math.sqrt(fan_in)
        values = (torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1) * bound
        params[name] = values.to(dtype=dtype, device=device)
    return params


def make_batch(
    spec: NetSpec, n: int, seed: int = 1, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> tuple[Tensor, Tensor]:
    """A reproducible batch: x ~ N(0,1); targets in the output activation's range, class labels, or 0/1 labels as
    floats for binary cross-entropy."""
    if n < 1:
        raise InputError(f"batch size must be >= 1, got {n}")
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, spec.D, generator=g, dtype=torch.float64)
    if spec.loss_fn.labels:  # class labels
        t = torch.randint(0, spec.C, (n,), generator=g).to(device)
    elif spec.loss_fn.kind == "binary":  # 0/1 labels per output, as floats
        t = torch.randint(0, 2, (n, spec.C), generator=g).to(dtype=dtype, device=device)
    else:
        u = torch.rand(n, spec.C, generator=g, dtype=torch.float64)
        t = {"sigmoid": u, "tanh": 2 * u - 1, "identity": torch.randn(n, spec.C, generator=g, dtype=torch.float64)}[
            spec.output
        ]
        t = t.to(dtype=dtype, device=device)
    return x.to(dtype=dtype, device=device), t


def check_inputs(spec: NetSpec, params: dict[str, Tensor], x: Tensor, t: Tensor, finite: bool = True) -> None:
    """Raise InputError with one clear line if params/x/t do not fit the spec (shape, dtype, device, and with
    `finite` NaN/inf; without it non-finite values pass through, as in a torch step)."""
    if not isinstance(x, Tensor) or not isinstance(t, Tensor):
        raise InputError("x and t must be torch tensors")
    if x.dtype not in FLOAT_DTYPES:
        raise InputError(f"x must be float32 or float64, got {x.dtype}")
    if x.dim() != 2 or x.shape[1] != spec.D or x.shape[0] < 1:
        raise InputError(f"x must have shape (N, D={spec.D}) with N >= 1, got {tuple(x.shape)}")
    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        raise InputError(f"params lack {', '.join(missing)}; expected keys {', '.join(PARAM_NAMES)}")
    for name, shape in spec.param_shapes().items():
        p = params[name]
        if tuple(p.shape) != shape:
            raise InputError(f"{name} must have shape {shape} for {spec.label}, got {tuple(p.shape)}")
        if p.dtype != x.dtype:
            raise InputError(f"{name} is {p.dtype} but x is {x.dtype}; use one dtype")
        if p.device != x.device:
            raise InputError(f"{name} is on {p.device} but x is on {x.device}; use one device")
        if finite and not torch.isfinite(p).all():
            raise InputError(f"{name} contains NaN or inf")
    if finite and not torch.isfinite(x).all():
        raise InputError("x contains NaN or inf")
    n = x.shape[0]
    if t.device != x.device:
        raise InputError(f"t is on {t.device} but x is on {x.device}; use one device")
    if spec.loss_fn.labels:
        if t.dtype != torch.int64 or tuple(t.shape) != (n,):
            raise InputError(
                f"{spec.loss} targets must be int64 class labels of shape ({n},), got {t.dtype} {tuple(t.shape)}"
            )
        if n and (int(t.min()) < 0 or int(t.max()) >= spec.C):
            raise InputError(f"class labels must lie in [0, {spec.C}), got range [{int(t.min())}, {int(t.max())}]")
    else:
        if tuple(t.shape) != (n, spec.C):
            raise InputError(f"targets must have shape (N={n}, C={spec.C}), got {tuple(t.shape)}")
        if t.dtype != x.dtype:
            raise InputError(f"t is {t.dtype} but x is {x.dtype}; use one dtype")
        if finite and not torch.isfinite(t).all():
            raise InputError("t contains NaN or inf")
