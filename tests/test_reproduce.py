"""The reproduced experiments: data loading, the many-nets engine, and every exact part of the five experiments."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import impls
from impls.base import SGD
from impls.many import MIN_DYNAMIC_K, ManyNets
from impls.spec import NetSpec, all_specs, init_params, make_batch
from reports import reproduced
from verification import data as mnist
from verification import oracle
from verification.compare import tolerance, trajectory_tolerance
from verification.reproduce import EXPERIMENTS
from verification.reproduce.__main__ import main

ROOT = Path(__file__).resolve().parents[1]


# ---- data ------------------------------------------------------------------------------------------------------


def test_embedded_digits_checksum_and_stratified_split() -> None:
    d = mnist.load()
    assert d.x_train.shape == (4000, 784) and d.x_test.shape == (1000, 784) and d.x_train.dtype == np.uint8
    assert (np.bincount(d.y_train) == 400).all() and (np.bincount(d.y_test) == 100).all()
    assert d.x_train.max() == 255 and d.x_train.min() == 0


def test_corrupt_or_missing_embedded_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "mnist_5k.csv.gz"
    data = bytearray(mnist.EMBEDDED.read_bytes())
    data[1000] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(mnist.DataError, match="corrupt \\(SHA-256 mismatch\\)"):
        mnist.load_embedded(bad)
    with pytest.raises(mnist.DataError, match="embedded MNIST file missing"):
        mnist.load_embedded(tmp_path / "nope.csv.gz")


def _idx(path: Path, array: np.ndarray, compress: bool = False, magic: int = 0x08) -> None:
    header = bytes([0, 0, magic, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    body = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(body) if compress else body)


def _mnist_folder(root: Path, compress: bool) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    g = np.random.default_rng(0)
    suffix = ".gz" if compress else ""
    _idx(raw / f"train-images-idx3-ubyte{suffix}", g.integers(0, 256, (6, 28, 28)), compress)
    _idx(raw / f"train-labels-idx1-ubyte{suffix}", np.arange(6) % 10, compress)
    _idx(raw / f"t10k-images-idx3-ubyte{suffix}", g.integers(0, 256, (4, 28, 28)), compress)
    _idx(raw / f"t10k-labels-idx1-ubyte{suffix}", np.arange(4), compress)
    return raw


@pytest.mark.parametrize("compress", [False, True])
def test_idx_reader_reads_torchvision_layout(tmp_path: Path, compress: bool) -> None:
    raw = _mnist_folder(tmp_path, compress)
    d = mnist.load_idx_folder(tmp_path)
    assert d.x_train.shape == (6, 784) and d.x_test.shape == (4, 784) and list(d.y_train) == [0, 1, 2, 3, 4, 5]
    first = mnist.read_idx(raw / f"train-images-idx3-ubyte{'.gz' if compress else ''}")
    assert (d.x_train[0] == first[0].reshape(-1)).all()


def test_idx_reader_names_the_bad_or_missing_file(tmp_path: Path) -> None:
    raw = _mnist_folder(tmp_path, False)
    (raw / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(mnist.DataError, match=r"missing MNIST file: expected .*t10k-labels-idx1-ubyte"):
        mnist.load_idx_folder(tmp_path)
    _idx(raw / "t10k-labels-idx1-ubyte", np.arange(4), magic=0x0D)  # float32 magic
    with pytest.raises(mnist.DataError, match="t10k-labels-idx1-ubyte is not an IDX file of unsigned bytes"):
        mnist.load_idx_folder(tmp_path)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 9]) + bytes(4))  # says 9, holds 4
    with pytest.raises(mnist.DataError, match="header says \\(9,\\) = 9 bytes, the file holds 4"):
        mnist.load_idx_folder(tmp_path)


def test_load_falls_back_to_the_idx_reader(tmp_path: Path) -> None:
    _mnist_folder(tmp_path, True)
    d = mnist.load(tmp_path)
    assert d.x_train.shape == (6, 784) and ("IDX reader" in d.source or "torchvision" in d.source)


# ---- command line ----------------------------------------------------------------------------------------------


def test_help_lists_every_experiment(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    out = capsys.readouterr().out
    assert info.value.code == 0 and all(name in out for name in EXPERIMENTS) and "--quick" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "unknown experiment 'nope'; known: rumelhart, epfl, umons, cs231n, lab2, all"),
        (["umons", "--mnist", "/no/such/dir"], "--mnist /no/such/dir: not a folder"),
        (["lab2", "--threads", "0"], "--threads must be >= 1"),
        (
            ["all", "--device", "cuda"],
            "--device cuda: epfl, umons, lab2 run on cpu only; choose from rumelhart, cs231n",
        ),
        pytest.param(
            ["cs231n", "--device", "cuda"],
            "--device cuda: CUDA is not available",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here"),
        ),
    ],
)
def test_bad_usage_exits_2_with_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_missing_mnist_file_exits_2_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    raw = _mnist_folder(tmp_path, False)
    (raw / "train-images-idx3-ubyte").unlink()
    assert main(["umons", "--mnist", str(tmp_path)]) == 2
    assert "missing MNIST file: expected" in capsys.readouterr().err


def test_corrupt_embedded_data_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(mnist, "EMBEDDED_SHA256", "0" * 64)
    assert main(["lab2", "--quick"]) == 2
    assert "corrupt (SHA-256 mismatch)" in capsys.readouterr().err


def test_quick_experiment_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """lab2 --quick writes a schema-checked summary, its curves and a plot; the seed is recorded."""
    assert main(["lab2", "--quick", "--quiet", "--seed", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "reference:" in out and "ours:" in out
    df = reproduced.read_summary(tmp_path / "lab2" / "summary.csv")
    assert set(df["seed"]) == {"3"} and set(df["quick"]) == {"True"}
    assert (tmp_path / "lab2" / "curves.png").read_bytes()[:4] == b"\x89PNG"
    text, warnings = reproduced.section(tmp_path, tmp_path)
    assert "### lab2 (quick form)" in text and "| quantity | reference | ours | note |" in text and not warnings


def test_summary_with_another_schema_is_skipped_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    pd.DataFrame({"experiment": ["x"], "quantity": ["q"]}).to_csv(tmp_path / "x" / "summary.csv", index=False)
    frames, warnings = reproduced.find(tmp_path)
    assert frames == [] and "columns" in warnings[0] and "summary.csv" in warnings[0]


# ---- the many-nets engine --------------------------------------------------------------------------------------


@pytest.mark.parametrize("shared", [True, False], ids=["shared-x", "per-net-x"])
@pytest.mark.parametrize("spec", all_specs(5, 4, 3, l2_values=(0.1,))[::3], ids=lambda s: s.label)
def test_each_of_k_nets_follows_the_oracle_step_for_step(spec: NetSpec, shared: bool) -> None:
    """K = 4 nets with different weights (and inputs): every net's loss, gradients and parameters after each of 3
    momentum steps equal the float64 oracle's for that net alone (float64: tolerance 1e-12 relative)."""
    K, n = 4, 7
    per = [init_params(spec, seed=k, dtype=torch.float64) for k in range(K)]
    batches = [make_batch(spec, n, seed=10 + k, dtype=torch.float64) for k in range(K)]
    x = batches[0][0] if shared else torch.stack([b[0] for b in batches])
    t = batches[0][1] if shared else torch.stack([b[1] for b in batches])
    nets = ManyNets(spec, {p: torch.stack([q[p] for q in per]) for p in per[0]}, SGD(lr=0.05, momentum=0.9))
    states = [{p: v.numpy().copy() for p, v in q.items()} for q in per]
    vel = [{p: np.zeros_like(v) for p, v in s.items()} for s in states]
    for _ in range(3):
        loss, grads = nets.step(x, t)
        for k in range(K):
            xk, tk = batches[0] if shared else batches[k]
            ref_loss, ref = oracle.loss_and_grads(states[k], xk.numpy(), tk.numpy(), spec)
            assert float(loss[k]) == pytest.approx(ref_loss, rel=1e-12)
            for p in ref:
                np.testing.assert_allclose(grads[p][k].numpy(), ref[p], rtol=1e-10, atol=1e-12)
                vel[k][p] = 0.9 * vel[k][p] - 0.05 * ref[p]
                states[k][p] = states[k][p] + vel[k][p]
                np.testing.assert_allclose(nets.p[p][k].numpy(), states[k][p], rtol=1e-10, atol=1e-12)


def test_engine_net_equals_the_registered_single_net_step() -> None:
    spec = NetSpec(6, 2, 1, "sigmoid", "sigmoid", "half_sse")
    p = init_params(spec, seed=1)
    x, t = make_batch(spec, 64)
    single = impls.get("batched")(spec, p, SGD(0.1, 0.9))
    nets = ManyNets(spec, {k: torch.stack([init_params(spec, seed=9)[k], v]) for k, v in p.items()}, SGD(0.1, 0.9))
    for _ in range(20):
        single.step(x, t)
        nets.step(x, t)
    for k in p:
        torch.testing.assert_close(nets.p[k][1], single.params()[k], rtol=1e-5, atol=1e-6)


def test_select_keeps_the_chosen_nets_with_their_momentum() -> None:
    spec = NetSpec(6, 2, 1, "sigmoid", "sigmoid", "half_sse")
    params = {k: torch.stack([init_params(spec, seed=s)[k] for s in range(3)]) for k in spec.param_shapes()}
    x, t = make_batch(spec, 16)
    full = ManyNets(spec, params, SGD(0.1, 0.9))
    part = ManyNets(spec, params, SGD(0.1, 0.9))
    full.step(x, t)
    part.step(x, t)
    part.select(torch.tensor([True, False, True]))
    full.step(x, t)
    part.step(x, t)
    assert part.K == 2
    for k in params:
        torch.testing.assert_close(part.p[k], full.p[k][[0, 2]])


def _same_trajectory_bound(steps: int) -> float:
    """Relative bound on two float32 runs of the same net that differ only in summation order (the bound `module`
    vs manual is held to: K(tol + 2u), verification.compare)."""
    return trajectory_tolerance(torch.float32, tolerance(torch.float32, 6, 2, 1, 64, 1.0), steps)


@pytest.mark.slow
@pytest.mark.parametrize("data", ["patterns", "random"])
def test_select_under_compile_drops_nets_without_recompiling_and_the_rest_follow_their_trajectory(data: str) -> None:
    """What the Rumelhart study relies on when it stops stepping solved nets: after select() (24 -> 16 -> 9 -> 2 nets),
    the compiled step (K dynamic) is not recompiled, and the kept nets' weights are those of the run that stepped
    every net, up to summation order (narrower GEMMs): within the same-trajectory bound K(tol + 2u)."""
    from verification.reproduce import rumelhart as r

    x, t = r.patterns() if data == "patterns" else make_batch(r.SPEC, 64, seed=5)
    p = r.uniform_params(24, seed=3)
    alpha = torch.tensor([0.9, 0.0]).repeat_interleave(12)  # (24,): both rules, as the study runs them
    full = ManyNets(r.SPEC, p, SGD(lr=0.1), compile=True, momentum=alpha)
    part = ManyNets(r.SPEC, p, SGD(lr=0.1), compile=True, momentum=alpha)
    kept = torch.arange(24)  # which of the 24 nets `part` still steps
    drops = {9: kept % 3 != 1, 19: torch.arange(16) < 9, 29: torch.arange(9) % 4 == 1}  # 24 -> 16 -> 9 -> 2
    steps = 40
    with torch._dynamo.config.patch(error_on_recompile=True):
        for step in range(steps):
            full.step(x, t)
            part.step(x, t)
            if step in drops:
                part.select(drops[step])
                kept = kept[drops[step]]
    assert part.K == MIN_DYNAMIC_K == len(kept)
    for k in p:
        diff = float((part.p[k] - full.p[k][kept]).abs().max())
        assert diff <= _same_trajectory_bound(steps) * float(full.p[k].abs().max()), (k, diff)


@pytest.mark.slow
def test_rumelhart_study_follows_a_run_that_drops_no_net() -> None:
    """study() drops solved nets; its counts and snapshots follow those of the same compiled sweep stepping every net
    for the whole cap: a count moves by at most 2 sweeps (summation order), and a net solved at the same sweep has
    its weights within the same-trajectory bound."""
    from verification.reproduce import rumelhart as r

    k, cap, seed = 12, 2500, 4
    sweeps, snap = r.study((0.9, 0.0), k, cap, seed=seed, progress=False)
    x, t = r.patterns()
    p = {n: v.repeat(2, *([1] * (v.dim() - 1))) for n, v in r.uniform_params(k, seed).items()}
    nets = ManyNets(r.SPEC, p, SGD(lr=0.1), momentum=torch.tensor([0.9, 0.0]).repeat_interleave(k))
    target = t.bool()[:, :, None]

    @torch.compile
    def sweep() -> torch.Tensor:
        nets.step(x, t)
        return ((nets.output > 0.5) == target).all(0).all(0)

    want = np.full(2 * k, -1)
    want_snap = {n: v.clone() for n, v in nets.p.items()}
    for s in range(cap):
        newly = sweep().numpy() & (want < 0)
        want[newly] = s
        for n, v in nets.p.items():
            want_snap[n][newly] = v[newly]
    assert 0 < (want >= 0).sum() < 2 * k  # some solved and some did not: both kinds are compared
    assert ((sweeps >= 0) == (want >= 0)).all() and np.abs(sweeps - want).max() <= 2, (sweeps, want)
    same = sweeps == want
    for n in p:
        diff = np.abs(snap[n][same] - want_snap[n].double().numpy()[same]).max()
        assert diff <= _same_trajectory_bound(cap) * np.abs(snap[n]).max(), (n, diff)


def test_select_refuses_a_mask_of_the_wrong_shape_or_no_net() -> None:
    spec = NetSpec(6, 2, 1, "sigmoid", "sigmoid", "half_sse")
    nets = ManyNets(spec, {k: torch.zeros(3, *s) for k, s in spec.param_shapes().items()})
    with pytest.raises(impls.InputError, match=r"keep must be a bool tensor of shape \(K,\) = \(3,\), got torch.int64"):
        nets.select(torch.tensor([1, 0, 1]))
    with pytest.raises(impls.InputError, match="keep selects no net"):
        nets.select(torch.zeros(3, dtype=torch.bool))
    x = torch.zeros(3, 4, 6)  # per-net inputs for 3 nets
    nets.select(torch.tensor([True, False, True]))
    with pytest.raises(
        impls.InputError, match=r"per-net x must have shape \(K, N, D\) with K = 2 nets, got \(3, 4, 6\)"
    ):
        nets.loss_and_grads(x, torch.zeros(3, 4, 1))


def test_per_net_momentum_equals_separate_engines() -> None:
    """One engine with alpha (0.9, 0) per net = two engines with momentum 0.9 and 0 (two rules, one computation)."""
    spec = NetSpec(6, 2, 1, "sigmoid", "sigmoid", "half_sse")
    p = {k: v.unsqueeze(0) for k, v in init_params(spec, seed=2, dtype=torch.float64).items()}
    x, t = make_batch(spec, 64, dtype=torch.float64)
    both = ManyNets(
        spec,
        {k: v.repeat(2, *([1] * (v.dim() - 1))) for k, v in p.items()},
        SGD(lr=0.1),
        momentum=torch.tensor([0.9, 0.0], dtype=torch.float64),
    )
    fast, plain = ManyNets(spec, p, SGD(0.1, 0.9)), ManyNets(spec, p, SGD(0.1, 0.0))
    for _ in range(10):
        both.step(x, t), fast.step(x, t), plain.step(x, t)
    for k in p:
        torch.testing.assert_close(both.p[k][0], fast.p[k][0], rtol=1e-14, atol=1e-14)
        torch.testing.assert_close(both.p[k][1], plain.p[k][0], rtol=1e-14, atol=1e-14)


def test_engine_rejects_misshapen_stacks() -> None:
    spec = NetSpec(6, 2, 1)
    bad = {k: torch.zeros(3, *s) for k, s in spec.param_shapes().items()}
    bad["b2"] = torch.zeros(2, 1)
    with pytest.raises(impls.InputError, match=r"b2 must have shape \(K, 1\), got \(2, 1\)"):
        ManyNets(spec, bad)


# ---- the experiments' exact parts ------------------------------------------------------------------------------


def test_rumelhart_patterns_and_the_paper_solution() -> None:
    from verification.reproduce import rumelhart as r

    x, t = r.patterns()
    assert x.shape == (64, 6) and int(t.sum()) == 8 and len({tuple(row) for row in x.tolist()}) == 64
    # a solution with fig. 2's pattern: input weights 14.2 / 7.2 / 3.6 in mirror pairs, unit 2 the negative of unit 1
    w = np.array([-14.2, 7.2, -3.6, 3.6, -7.2, 14.2])
    p = {
        "W1": np.stack([w, -w])[None],
        "b1": np.array([[-1.4, -1.4]]),
        "W2": np.array([[[-9.4, -9.4]]]),
        "b2": np.array([[6.4]]),
    }
    assert r.structure(p).all(axis=None)
    h = torch.sigmoid(x.double() @ torch.tensor(p["W1"][0]).T - 1.4)
    y = torch.sigmoid(h @ torch.tensor(p["W2"][0]).T + 6.4)
    assert ((y > 0.5) == t.bool()).all()  # it solves the task
    q = {**p, "W1": np.stack([w, w])[None]}  # same-sign units: not the paper's solution
    assert not r.structure(q)["hidden_units_opposite_sign"].any()


def test_rumelhart_homework_accuracy_prints_56_for_any_model() -> None:
    from verification.reproduce import rumelhart as r

    _, t = r.patterns()
    for outputs in (t.clone(), 1 - t, torch.rand(64, 1)):
        assert r.accuracy_homework_bug(outputs, t) == 56.0
    assert float(((t - t.mean()) ** 2).mean()) == 0.109375


def test_rumelhart_engine_and_single_net_count_the_same_sweeps() -> None:
    """The study's count for a start equals the registered `module` step's count for the same weights."""
    from verification.reproduce import rumelhart as r

    sweeps, _ = r.study((0.9, 0.0), 8, 2500, seed=4, progress=False)
    sweeps = sweeps[:8]  # the alpha = 0.9 half
    params = r.uniform_params(8, 4)
    for k in np.flatnonzero(sweeps >= 0)[:2]:
        _, solved = r.paper_run({n: v[k] for n, v in params.items()}, int(sweeps[k]) + 3)
        assert abs(solved.index(True) - int(sweeps[k])) <= 2


def test_cs231n_seed_check_on_cpu_draws() -> None:
    """The assignment drew its toy data on CUDA: CPU draws of the same seed give scores 5.6e-6 (sum |diff|) from its
    correct_scores; its float32 loss still rounds to the reference exactly (every logit is ~0, loss ~ ln 3)."""
    from verification.reproduce import cs231n as c

    diff, loss32 = c.seed_check("cpu")
    assert 5e-6 < diff < 6e-6 and loss32 == c.REFERENCE_LOSS


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available: torch.cuda.is_available() is False")
def test_cs231n_seed_check_on_cuda_draws_is_the_assignments() -> None:
    """Drawn on CUDA as the assignment did: its scores within 1e-10 (its printed 5 digits) and its float32 loss."""
    from verification.reproduce import cs231n as c

    diff, loss32 = c.seed_check("cuda")
    assert diff < 1e-10 and abs(loss32 - c.REFERENCE_LOSS) <= c.ULP32


def test_cs231n_toy_loss_gradient_check_and_training() -> None:
    from verification.reproduce import cs231n as c

    spec, p, x, y = c.toy(0.05)
    assert abs(c.loss_at(spec, p, x, y) - c.REFERENCE_LOSS) < 1e-4
    rel = c.numeric_check(spec, p, x, y, c.kink_safe_step(p, x))
    assert max(rel.values()) < 1e-4, rel
    tspec, tp, tx, ty = c.toy(1e-6)
    net = impls.get("batched")(tspec, tp, SGD(lr=0.1))
    losses = [float(net.step(tx, ty)[0]) for _ in range(200)]
    assert losses[-1] < 1.0


def test_epfl_targets_and_normalisation() -> None:
    from verification.reproduce import epfl
    from verification.reproduce.common import Options

    xtr, ttr, ytr, xte, _, _ = epfl.data(Options())
    assert xtr.shape == (1000, 784) and xte.shape == (1000, 784)
    assert abs(float(xtr.mean())) < 1e-5 and abs(float(xtr.std()) - 1) < 1e-5
    assert torch.allclose(ttr.abs(), torch.tensor(0.9)) and ((ttr > 0).sum(1) == 1).all()
    assert (ttr.argmax(1) == ytr).all() and (np.bincount(ytr.numpy()) == 100).all()


def test_gradients_accumulate_without_zeroing_and_the_autograd_step_zeroes() -> None:
    from verification.reproduce import lab2

    assert lab2.accumulation_error() == 0.0
    spec = NetSpec(5, 4, 3, "tanh", "identity", "cross_entropy")
    x, t = make_batch(spec, 7)
    step = impls.get("autograd")(spec, init_params(spec), SGD(lr=0.0))
    g1 = {k: v.clone() for k, v in step.step(x, t)[1].items()}
    g2 = step.step(x, t)[1]
    for k in g1:
        torch.testing.assert_close(g1[k], g2[k], rtol=0, atol=0)


def test_set_lr_changes_the_step_of_every_implementation() -> None:
    spec = NetSpec(5, 4, 3, "sigmoid", "identity", "mse")
    x, t = make_batch(spec, 7, dtype=torch.float64)
    for name in impls.names():
        cls = impls.get(name)
        if cls.unsupported_reason(spec, "cpu", torch.float64) or cls.compiles:
            continue
        a = cls(spec, init_params(spec, dtype=torch.float64), SGD(lr=0.1))
        b = cls(spec, init_params(spec, dtype=torch.float64), SGD(lr=0.3))
        a.set_lr(0.3)
        a.step(x, t)
        b.step(x, t)
        for k in a.params():
            torch.testing.assert_close(a.params()[k], b.params()[k], msg=name)


def test_a_failed_check_is_a_status_row_and_the_command_exits_1(monkeypatch, tmp_path: Path, capsys) -> None:
    """A check that must hold no longer raises inside an experiment: its row says FAIL in the table (and CSV), the
    other rows are kept, and the command exits 1 naming it."""
    from reports.reproduced import Comparison
    from verification.reproduce import lab2
    from verification.reproduce.common import Result

    rows = [Comparison("lab2", "a number", "–", "1.0"), Comparison("lab2", "a bound", "<= 1", "2", status="FAIL")]
    monkeypatch.setattr(lab2, "run", lambda opts: Result("lab2", rows, 0.1))
    monkeypatch.setattr(lab2, "PLOTS", [])
    assert main(["lab2", "--quiet", "--out", str(tmp_path)]) == 1
    assert "FAILED CHECK lab2: a bound" in capsys.readouterr().out
    df = reproduced.read_summary(tmp_path / "lab2" / "summary.csv")
    assert df["status"].tolist() == ["", "FAIL"]


def test_reports_draw_an_experiment_from_its_own_description(tmp_path: Path) -> None:
    """reports knows no experiment by name: a folder with summary.csv, a CSV and plots.json is drawn as described."""
    from reports.reproduced import Comparison, Plot, render, write_plots, write_summary

    folder = tmp_path / "any_new_experiment"
    folder.mkdir()
    pd.DataFrame({"series": ["a", "a", "b", "b"], "step": [1, 2, 1, 2], "loss": [3.0, 2.0, 4.0, 1.0]}).to_csv(
        folder / "c.csv", index=False
    )
    pd.DataFrame({"series": ["a"] * 3, "sweeps": [10, 2000, -1]}).to_csv(folder / "h.csv", index=False)  # -1: none
    hist = Plot("histogram", "h.csv", "h.png", "t", x="count", panels=(("sweeps", "sweeps"),), refs=((100.0, "ref"),))
    write_plots(folder, [Plot("curves", "c.csv", "c.png", "title", x="step", panels=(("loss", "loss"),)), hist])
    write_summary(folder, [Comparison("any_new_experiment", "q", "r", "o")], 7, 0, "data", False, 1.0)
    assert [p.name for p in render(folder)] == ["c.png", "h.png"] and (folder / "c.png").read_bytes()[:4] == b"\x89PNG"
    text, warnings = reproduced.section(tmp_path, tmp_path)
    assert "### any_new_experiment" in text and not warnings


def test_reports_modules_key_on_no_experiment_implementation_or_precision_name() -> None:
    """What the reports compare and order by travels in records; their code spells no such name as a key."""
    import re

    import impls
    from impls.precision import PRECISIONS

    names = {*EXPERIMENTS, *impls.names(), *PRECISIONS}
    root = Path(__file__).resolve().parents[1] / "reports"
    for path in root.glob("*.py"):
        if path.name == "record.py":  # the schema itself: a field's default value ("fp32"), never a key to match
            continue
        literals = set(re.findall(r"""["']([A-Za-z0-9_]+)["']""", path.read_text(encoding="utf-8")))
        assert not literals & names, f"{path.name} spells {sorted(literals & names)}"
