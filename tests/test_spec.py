"""NetSpec validation, input checks and the flop count."""

from __future__ import annotations

import pytest
import torch

from impls.spec import InputError, NetSpec, SpecError, all_specs, check_inputs, init_params, make_batch


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"H": 0}, "H must be a positive integer"),
        ({"D": -1}, "D must be a positive integer"),
        ({"hidden": "gelu"}, "unknown hidden activation 'gelu'"),
        ({"output": "softmax"}, "unknown output activation 'softmax'"),
        ({"loss": "hinge"}, "unknown loss 'hinge'"),
        ({"loss": "cross_entropy", "output": "sigmoid"}, "output activation must be 'identity'"),
        ({"loss": "cross_entropy", "C": 1}, "at least 2 classes"),
        ({"l2": -0.1}, "l2 must be a finite number >= 0"),
        ({"l2": float("nan")}, "l2 must be a finite number >= 0"),
    ],
)
def test_nonsense_specs_are_rejected_with_one_clear_line(kwargs: dict, message: str) -> None:
    base = {"D": 3, "H": 2, "C": 2}
    with pytest.raises(SpecError, match=message) as info:
        NetSpec(**{**base, **kwargs})
    assert "\n" not in str(info.value)


def test_all_specs_covers_every_sensible_combination() -> None:
    specs = all_specs(l2_values=(0.0,))
    assert len(specs) == 33  # 3 hidden x (3 outputs x 3 squared losses + identity x cross_entropy + sigmoid x bce)
    assert not [s for s in specs if s.loss == "cross_entropy" and s.output != "identity"]
    assert not [s for s in specs if s.loss == "bce" and s.output != "sigmoid"]
    assert len(set(specs)) == len(specs)


def test_flops_count_forward_and_backward_matmuls() -> None:
    spec = NetSpec(784, 50, 10)
    # forward 2NDH + 2NHC, backward dW2 2NHC + dh 2NHC + dW1 2NDH
    assert spec.flops_per_step(1000) == 2 * 1000 * 784 * 50 * 2 + 2 * 1000 * 50 * 10 * 3


def test_init_and_batch_are_reproducible_and_shaped() -> None:
    spec = NetSpec(6, 2, 1, "sigmoid", "sigmoid", "half_sse")
    p1, p2 = init_params(spec, seed=3), init_params(spec, seed=3)
    assert all(torch.equal(p1[k], p2[k]) for k in p1)
    assert {k: tuple(v.shape) for k, v in p1.items()} == {"W1": (2, 6), "b1": (2,), "W2": (1, 2), "b2": (1,)}
    x, t = make_batch(spec, 64)
    assert x.shape == (64, 6) and t.shape == (64, 1) and float(t.min()) >= 0 and float(t.max()) <= 1
    ce = NetSpec(784, 30, 10, loss="cross_entropy")
    _, labels = make_batch(ce, 100)
    assert labels.dtype == torch.int64 and int(labels.max()) < 10


def _good(spec: NetSpec) -> tuple[dict, torch.Tensor, torch.Tensor]:
    return init_params(spec), *make_batch(spec, 4)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p, x, t: (p, x[:, :2], t), r"x must have shape \(N, D=3\)"),
        (lambda p, x, t: (p, x.double(), t.double()), "W1 is torch.float32 but x is torch.float64"),
        (lambda p, x, t: (p, x.to(torch.int32), t), "x must be float32 or float64"),
        (lambda p, x, t: ({**p, "W1": p["W1"].T}, x, t), r"W1 must have shape \(2, 3\)"),
        (lambda p, x, t: ({k: v for k, v in p.items() if k != "b2"}, x, t), "params lack b2"),
        (lambda p, x, t: (p, x.index_fill(0, torch.tensor([1]), float("nan")), t), "x contains NaN or inf"),
        (lambda p, x, t: ({**p, "b1": p["b1"] / 0}, x, t), "b1 contains NaN or inf"),
        (lambda p, x, t: (p, x, t[:, :1]), r"targets must have shape \(N=4, C=2\)"),
        (lambda p, x, t: (p, x, t.fill_(float("inf"))), "t contains NaN or inf"),
    ],
)
def test_bad_inputs_name_the_problem(mutate, message: str) -> None:
    spec = NetSpec(3, 2, 2)
    with pytest.raises(InputError, match=message):
        check_inputs(spec, *mutate(*_good(spec)))


def test_bad_class_labels() -> None:
    spec = NetSpec(3, 2, 2, loss="cross_entropy")
    p, x, t = _good(spec)
    with pytest.raises(InputError, match=r"class labels must lie in \[0, 2\)"):
        check_inputs(spec, p, x, t + 5)
    with pytest.raises(InputError, match="int64 class labels"):
        check_inputs(spec, p, x, t.float())
    check_inputs(spec, p, x, t)  # the good batch passes
