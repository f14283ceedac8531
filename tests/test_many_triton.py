"""impls.many_triton: the whole many-start study in one Triton kernel (the GPU engine of Rumelhart's study), checked
against ManyNets net by net. Without a GPU, tests/conftest.py sets TRITON_INTERPRET=1 and the same kernel runs on CPU
tensors through triton's interpreter."""

from __future__ import annotations

import pytest
import torch

from impls import many_triton
from impls.base import SGD
from impls.many import ManyNets
from impls.spec import InputError, NetSpec
from verification.reproduce import rumelhart as r

if many_triton.IMPORT_ERROR:
    pytest.skip(many_triton.IMPORT_ERROR, allow_module_level=True)
DEVICE = "cpu" if many_triton.INTERPRETED else "cuda"
if DEVICE == "cuda" and not torch.cuda.is_available():
    pytest.skip("triton runs on CUDA here (TRITON_INTERPRET is not 1) and no GPU is available", allow_module_level=True)
pytestmark = [pytest.mark.cuda] if DEVICE == "cuda" else []
FP32 = {"rtol": 1e-5, "atol": 1e-5}  # the same arithmetic summed in another order: fp32 noise after tens of sweeps


def torch_study(p: dict, x: torch.Tensor, t: torch.Tensor, alpha: torch.Tensor, cap: int) -> tuple:
    """The study's own loop (ManyNets, the sweep counted when the outputs at its starting weights are all right)."""
    nets = ManyNets(r.SPEC, {n: v.clone() for n, v in p.items()}, SGD(lr=0.1), momentum=alpha)
    sweeps = torch.full((alpha.shape[0],), -1, dtype=torch.int64, device=x.device)
    snap = {n: v.clone() for n, v in p.items()}
    for s in range(cap):
        nets.step(x, t)
        solved = ((nets.output > 0.5) == t.bool()[:, :, None]).all(0).all(0)
        newly = solved & (sweeps < 0)
        sweeps[newly] = s
        for n, v in nets.p.items():
            snap[n][newly] = v[newly]
    return sweeps, snap, nets.p


def test_every_net_follows_many_nets_sweep_for_sweep() -> None:
    """Both learning rules in one launch (per-net alpha), 18 nets over 5 blocks (the last one partial): the parameters
    after 60 sweeps equal ManyNets' to fp32 noise."""
    x, t = (v.to(DEVICE) for v in r.patterns())
    p = {n: v.to(DEVICE) for n, v in r.uniform_params(18, 3).items()}
    alpha = torch.tensor([0.9] * 9 + [0.0] * 9, device=DEVICE)
    _, _, last = many_triton.sweeps_to_solve(r.SPEC, p, x, t, 0.1, alpha, 60, stop_when_solved=False)
    _, _, want = torch_study(p, x, t, alpha, 60)
    for n in want:
        torch.testing.assert_close(last[n], want[n], **FP32)


def test_solved_sweep_and_snapshot_are_the_studys() -> None:
    """Nets warmed up 420 sweeps by ManyNets, then 80 more in both engines: the same net solves at the same sweep,
    with the same weights one sweep later; the others stay unsolved (-1)."""
    x, t = (v.to(DEVICE) for v in r.patterns())
    alpha = torch.full((8,), 0.9, device=DEVICE)
    warm = ManyNets(r.SPEC, {n: v.to(DEVICE) for n, v in r.uniform_params(8, 0).items()}, SGD(lr=0.1), momentum=alpha)
    for _ in range(420):
        warm.step(x, t)
    p = {n: v.clone() for n, v in warm.p.items()}
    sweeps, snap, _ = many_triton.sweeps_to_solve(r.SPEC, p, x, t, 0.1, alpha, 80)
    want_sweeps, want_snap, _ = torch_study(p, x, t, alpha, 80)
    assert sweeps.tolist() == want_sweeps.tolist() and (sweeps >= 0).any() and (sweeps < 0).any(), sweeps
    for n in want_snap:
        torch.testing.assert_close(snap[n], want_snap[n], **FP32)


def test_a_block_stops_once_its_nets_are_solved() -> None:
    """One net that solves at sweep s: with stop_when_solved the kernel runs s + 1 sweeps (its last weights are the
    snapshot); without, it runs them all."""
    x, t = (v.to(DEVICE) for v in r.patterns())
    alpha = torch.full((1,), 0.9, device=DEVICE)
    warm = ManyNets(r.SPEC, {n: v[:1].to(DEVICE) for n, v in r.uniform_params(8, 0).items()}, SGD(0.1), momentum=alpha)
    for _ in range(420):
        warm.step(x, t)
    p = {n: v.clone() for n, v in warm.p.items()}
    sweeps, snap, last = many_triton.sweeps_to_solve(r.SPEC, p, x, t, 0.1, alpha, 80)
    assert int(sweeps[0]) >= 0
    for n in snap:
        torch.testing.assert_close(last[n], snap[n], rtol=0, atol=0)
    _, _, ran_on = many_triton.sweeps_to_solve(r.SPEC, p, x, t, 0.1, alpha, 80, stop_when_solved=False)
    assert not torch.equal(ran_on["W1"], snap["W1"])


def test_the_study_runs_on_the_kernel_with_the_same_counts() -> None:
    """verification.reproduce.rumelhart.study with engine="triton" (what --device cuda uses) gives the torch
    engine's sweeps and snapshots for the same starts."""
    got, got_p = r.study((0.9, 0.0), 3, 40, seed=1, progress=False, device=DEVICE, engine="triton")
    want, want_p = r.study((0.9, 0.0), 3, 40, seed=1, progress=False, device=DEVICE, engine="torch")
    assert got.tolist() == want.tolist()
    for n in want_p:
        torch.testing.assert_close(torch.from_numpy(got_p[n]), torch.from_numpy(want_p[n]), **FP32)


def test_what_the_kernel_cannot_run_is_refused_in_one_line() -> None:
    x, t = r.patterns()
    ce = NetSpec(6, 2, 2, "sigmoid", "identity", "cross_entropy")
    assert "squared losses only" in many_triton.unsupported_reason(ce, 64, DEVICE)
    big = NetSpec(64, 64, 64, "sigmoid", "sigmoid", "sse")  # 4 x 64 x 64 x 64 elements: over triton's 2^20 too
    assert "register tiles of at most" in many_triton.unsupported_reason(big, 64, DEVICE)
    p = {n: v.to(DEVICE) for n, v in r.uniform_params(4, 0).items()}
    x, t, alpha = x.to(DEVICE), t.to(DEVICE), torch.zeros(4, device=DEVICE)
    with pytest.raises(InputError, match=r"momentum must have shape \(K,\) = \(4,\)"):
        many_triton.sweeps_to_solve(r.SPEC, p, x, t, 0.1, alpha[:3], 5)
    with pytest.raises(InputError, match=r"x must have shape \(N, D=6\)"):  # the kernel would read past x
        many_triton.sweeps_to_solve(r.SPEC, p, x[:, :5], t, 0.1, alpha, 5)
    with pytest.raises(InputError, match=r"b2 must have shape \(K, 1\) with K = 4"):
        many_triton.sweeps_to_solve(r.SPEC, {**p, "b2": p["b2"][:3]}, x, t, 0.1, alpha, 5)
