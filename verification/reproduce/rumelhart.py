"""Rumelhart, Hinton & Williams 1986: the mirror-symmetry 6-2-1 net, 1000 starts at once, and a homework's pitfall.

Setup (the paper): 6 inputs, 2 hidden, 1 output, logistic units everywhere; all 64 binary patterns, target 1 iff
the pattern is a palindrome (8 of 64); E = 1/2 sum (o - d)^2 over the 64 cases (half_sse); full batch; weights
and biases U(-0.3, 0.3); epsilon = 0.1. Two rules: eq. 9 with alpha = 0.9 (the paper: 1425 sweeps) and eq. 8,
plain gradient descent (alpha = 0). Solved = every output on the right side of 0.5, checked every sweep; cap
20000 sweeps. Computed in float32 with impls.many.ManyNets: both rules' 2 x 1000 nets (the same 1000 starts,
alpha 0.9 and 0 per net) as one step under torch.compile; a net stops stepping once solved (59% of the 40 M
net-steps remain: 1000 nets never solve within the cap; the others' numbers change only by summation order).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

import impls
from impls import many_triton
from impls.base import SGD
from impls.many import MIN_DYNAMIC_K, ManyNets
from impls.spec import NetSpec, init_params
from reports.reproduced import Plot, check
from verification.compare import tolerance, trajectory_tolerance
from verification.reproduce.common import Comparison, Options, Result, Timer, fmt, write_csv

NAME = "rumelhart"
TITLE = "Rumelhart, Hinton & Williams 1986: mirror symmetry (6-2-1)"
SOURCE = "Nature 323:533-536, fig. 2; a homework reproducing it and a lab write-up"

SPEC = NetSpec(6, 2, 1, "sigmoid", "sigmoid", "half_sse")
PAPER_SWEEPS = 1425  # the paper's one reported run (eq. 9, alpha 0.9)
RERUN_MEDIAN = 2715  # median sweeps of a public 1000-start rerun
PITFALL_LOSS = 0.10939  # the homework's final nn.MSELoss: it learned the best constant
PAPER_SERIES = "paper setup: ½Σ(o−d)², U(±0.3), α=0.9 (the median start)"
HOMEWORK_SERIES = "homework: nn.MSELoss(), default init, plain SGD"
MIRROR_PAIRS = ((0, 5), (1, 4), (2, 3))  # outer, middle, inner: the paper's figure has them 4 : 2 : 1
#: tolerances of the structure checks, relative: mirror weights equal and opposite within 10% of the unit's
#: largest weight; pair ratios within 25% of 1 : 2 : 4 (the paper's weights, 14.2 / 7.2 / 3.6, are within 2%)
MIRROR_TOL, RATIO_TOL = 0.10, 0.25


def patterns(dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """All 64 binary patterns (64, 6), most significant bit first, and the palindrome targets (64, 1)."""
    x = torch.tensor([[(i >> (5 - j)) & 1 for j in range(6)] for i in range(64)], dtype=dtype)
    return x, (x == x.flip(1)).all(1, keepdim=True).to(dtype)


def uniform_params(k: int, seed: int, dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """K sets of weights and biases, every one U(-0.3, 0.3) (the paper's initial range)."""
    g = torch.Generator().manual_seed(seed)
    return {
        n: (torch.rand((k, *s), generator=g, dtype=torch.float64) * 0.6 - 0.3).to(dtype)
        for n, s in SPEC.param_shapes().items()
    }


def engine_for(device: str) -> str:
    """The study's engine on `device`: on CUDA one Triton kernel for the whole study (where triton imports), else
    ManyNets compiled (one fused graph per sweep). The interpreter (TRITON_INTERPRET=1) runs the kernel on the CPU
    for tests, when asked by name: ~30 ms per sweep there, far too slow for the study itself."""
    usable = device == "cuda" and many_triton.unsupported_reason(SPEC, 64, device) is None
    return "triton" if usable else "torch"


def study(
    momenta: tuple[float, ...],
    k: int,
    cap: int,
    seed: int,
    progress: bool,
    device: str = "cpu",
    engine: str | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Train k nets per learning rule, every rule in one computation (net i of rule r has the weights of start i,
    and alpha = momenta[r]); per net the sweeps to solve (-1 if not within the cap) and its parameters one sweep
    after it solved (the step that showed it solved has already applied its update), K first, rule-major. A net
    stops stepping once solved (ManyNets.select, while at least MIN_DYNAMIC_K unsolved remain): what it would do
    after changes neither result; the others' numbers change only by summation order (narrower GEMMs), so a count
    can move by a sweep or two, as between any two float32 implementations (tests/test_reproduce.py bounds it
    against a run that drops none; at 2 x 1000 starts all 2000 counts came out identical).
    engine: "torch" (ManyNets) or "triton" (impls.many_triton); default engine_for(device)."""
    from tqdm import tqdm

    x, t = (v.to(device) for v in patterns())
    starts = uniform_params(k, seed)  # drawn on the CPU whatever the device: the same starts everywhere
    rules = len(momenta)
    alpha = torch.tensor(momenta, dtype=torch.float32, device=device).repeat_interleave(k)  # (rules * k,)
    params = {name: v.to(device).repeat(rules, *([1] * (v.dim() - 1))) for name, v in starts.items()}
    if (engine or engine_for(device)) == "triton":
        sweeps, snap, _ = many_triton.sweeps_to_solve(SPEC, params, x, t, 0.1, alpha, cap)
        return sweeps.cpu().numpy(), {name: v.double().cpu().numpy() for name, v in snap.items()}
    nets = ManyNets(SPEC, params, SGD(lr=0.1), momentum=alpha)
    target = t.bool()[:, :, None]  # (64, 1, 1)

    @torch.compile
    def sweep() -> torch.Tensor:
        """One step of every net still stepping, and which were solved at the weights it started from: one fused
        graph, compiled once for every K (ManyNets marks K dynamic; 0.39 us per net-step at K = 1000, 0.9 eager)."""
        nets.step(x, t)
        return ((nets.output > 0.5) == target).all(0).all(0)  # (K,)

    n = rules * k
    sweeps = torch.full((n,), -1, dtype=torch.int64, device=device)
    snap = {name: v.clone() for name, v in nets.p.items()}
    active = torch.arange(n, device=device)  # which start (rule-major) each of the nets still stepping is
    every = 250  # progress updates: one tqdm update per sweep measured ~0.3 ms, as long as the sweep itself
    with tqdm(total=cap, desc="rumelhart", unit="sweep", disable=None if progress else True) as bar:
        for s in range(cap):
            solved = sweep()  # (K,) of the active nets
            if solved.any():  # record the new ones, then stop stepping them: fewer nets, the same numbers for the rest
                newly = solved & (sweeps[active] < 0)  # below MIN_DYNAMIC_K nets, solved ones keep stepping
                sweeps[active[newly]] = s
                for name, v in nets.p.items():
                    snap[name][active[newly]] = v[newly]
                left = sweeps[active] < 0
                if not left.any():
                    break
                if int(left.sum()) >= MIN_DYNAMIC_K:
                    nets.select(left)
                    active = active[left]
            if s % every == every - 1:
                bar.update(every)
                bar.set_postfix_str(f"solved {int((sweeps >= 0).sum())}/{n}", refresh=False)
    return sweeps.cpu().numpy(), {name: v.double().cpu().numpy() for name, v in snap.items()}


def structure(p: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per net: does it show each property of the paper's solution (the tolerances are MIRROR_TOL, RATIO_TOL)?"""
    W1, b1, W2, b2 = p["W1"], p["b1"], p["W2"][:, 0, :], p["b2"][:, 0]  # (K,2,6) (K,2) (K,2) (K,)
    scale = np.abs(W1).max(axis=2, keepdims=True)  # (K, 2, 1)
    sums = np.stack([W1[:, :, i] + W1[:, :, j] for i, j in MIRROR_PAIRS], axis=2)  # (K, 2, 3)
    mags = np.stack([(np.abs(W1[:, :, i]) + np.abs(W1[:, :, j])) / 2 for i, j in MIRROR_PAIRS], axis=2)
    mirror = (np.abs(sums) <= MIRROR_TOL * scale).all(axis=(1, 2))

    def ratios_ok(m: np.ndarray) -> np.ndarray:  # m (K, 2, 3) ordered small..large -> 1 : 2 : 4
        r2, r4 = m[..., 1] / m[..., 0], m[..., 2] / m[..., 0]
        return ((np.abs(r2 / 2 - 1) <= RATIO_TOL) & (np.abs(r4 / 4 - 1) <= RATIO_TOL)).all(axis=1)

    paper_positions = ratios_ok(mags[:, :, ::-1])  # inner, middle, outer
    sorted_by_size = ratios_ok(np.sort(mags, axis=2))
    opposite = (np.sign(W1[:, 0, :]) == -np.sign(W1[:, 1, :])).all(axis=1)
    signs = (b1 < 0).all(axis=1) & (b2 > 0) & (W2 < 0).all(axis=1)
    return pd.DataFrame(
        {
            "mirror_equal_opposite": mirror,
            "ratio_124_paper_positions": paper_positions,
            "ratio_124_sorted": sorted_by_size,
            "hidden_units_opposite_sign": opposite,
            "biases_and_output_weights_signs": signs,
        }
    )


def accuracy_homework_bug(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """The homework's accuracy, as written: argmax over the single output column (always 0), compared with the
    (64, 1) targets, which broadcasts to 64 x 64; correct.sum() / len = 56.0 for any model on these targets."""
    predicted = outputs.argmax(dim=1)  # (64,), all zeros
    correct = predicted == targets  # (64,) vs (64, 1) -> (64, 64)
    return float(correct.sum() / len(targets))


def curve(impl: str, spec: NetSpec, params: dict, sgd: SGD, epochs: int, dtype: torch.dtype) -> tuple[list, object]:
    """Loss per pattern (E / 64, E as the spec defines it) over `epochs` full-batch steps of a registered impl."""
    x, t = patterns(dtype)
    net = impls.get(impl)(spec, {k: v.to(dtype) for k, v in params.items()}, sgd)
    losses = [float(net.step(x, t)[0]) for _ in range(epochs)]
    return losses, net


def paper_run(params: dict[str, torch.Tensor], sweeps: int) -> tuple[list[float], list[bool]]:
    """One net of the paper's setup through the registered `module` step (its nn.Module gives the outputs):
    E per sweep, and whether every output was on the right side of 0.5 at the weights that sweep started from."""
    x, t = patterns()
    net = impls.get("module")(SPEC, params, SGD(lr=0.1, momentum=0.9))
    losses, solved = [], []
    for _ in range(sweeps):
        with torch.no_grad():
            solved.append(bool(((net.net(x).sigmoid() > 0.5) == t.bool()).all()))
        losses.append(float(net.step(x, t)[0]))
    return losses, solved


RULES = (("eq9_momentum_0.9", 0.9, "eq. 9, alpha 0.9"), ("eq8_plain_gd", 0.0, "eq. 8, plain GD"))
STRUCTURE = (  # column of structure() -> what the row says
    ("mirror_equal_opposite", "mirror weights equal and opposite (±10% of the unit's largest)"),
    ("ratio_124_paper_positions", "pair magnitudes 1:2:4 in the paper's positions (±25%)"),
    ("ratio_124_sorted", "pair magnitudes 1:2:4 sorted by size (±25%)"),
    ("hidden_units_opposite_sign", "the two hidden units of opposite sign"),
    ("biases_and_output_weights_signs", "hidden biases < 0, output bias > 0, output weights < 0"),
)
PLOTS = [
    Plot(
        "histogram",
        "starts.csv",
        "sweeps_histogram.png",
        "Mirror symmetry 6-2-1: sweeps to solve over independent starts",
        x="starts",
        panels=(("sweeps", "sweeps to solve (every output on the right side of 0.5)"),),
        series="rule",
        refs=(
            (float(PAPER_SWEEPS), f"paper: {PAPER_SWEEPS} sweeps"),
            (float(RERUN_MEDIAN), f"1000-start rerun median: {RERUN_MEDIAN}"),
        ),
    ),
    Plot(
        "curves",
        "pitfall.csv",
        "pitfall.png",
        "The pitfall: a mean loss makes gradients 32× smaller; the net learns only the constant",
        x="epoch",
        panels=(("mse", "mean (o − d)² over the 64 patterns"),),
        refs=((0.109375, "best constant output (MSE 0.109375)"),),
        logy=True,
    ),
]


def measure_study(opts: Options, k: int, cap: int) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Both rules' k starts in one computation: per start its sweeps to solve (-1: not within the cap), per solved
    net its structure, and the study's seconds."""
    timer = Timer()
    all_sweeps, all_p = study(tuple(m for _, m, _ in RULES), k, cap, opts.seed, opts.progress, opts.device)
    starts, shapes = [], []
    for r, (rule, _, _) in enumerate(RULES):
        part = slice(r * k, (r + 1) * k)
        sweeps, p = all_sweeps[part], {n: v[part] for n, v in all_p.items()}
        starts.append(pd.DataFrame({"rule": rule, "start": np.arange(k), "sweeps": sweeps, "seed": opts.seed}))
        shapes.append(structure({n: v[sweeps >= 0] for n, v in p.items()}).assign(rule=rule))
    return pd.concat(starts), pd.concat(shapes), timer.seconds


def judge_study(starts: pd.DataFrame, shapes: pd.DataFrame, k: int, cap: int) -> list[Comparison]:
    """Per rule: sweeps to solve against the paper, how many solved, and the solved nets' structure."""
    rows = []
    for rule, _, label in RULES:
        sw = starts.loc[starts["rule"] == rule, "sweeps"].to_numpy()
        ok = sw[sw >= 0]
        q1, med, q3 = np.percentile(ok, [25, 50, 75]) if len(ok) else (np.nan,) * 3
        momentum = rule == RULES[0][0]  # the paper's run used eq. 9
        ref = f"{PAPER_SWEEPS} (paper, one run); median {RERUN_MEDIAN} (1000-start rerun)" if momentum else "–"
        rows += [
            Comparison(
                NAME,
                f"sweeps to solve, {label}: median (quartiles)",
                ref,
                f"{med:.0f} ({q1:.0f}–{q3:.0f})",
                f"{k} starts, cap {cap}",
            ),
            Comparison(
                NAME,
                f"solved within {cap} sweeps, {label}",
                "–",
                f"{len(ok)} of {k} ({len(ok) / k:.1%})",
                "every output on the right side of 0.5",
            ),
        ]
        s = shapes[shapes["rule"] == rule]
        meaning = {
            "ratio_124_paper_positions": f"{s['ratio_124_sorted'].mean() / 6:.0%} if the three pairs took the 1:2:4 "
            "sizes in a random one of 6 orders: the figure's order (outer pair largest) is one solution among six"
            if len(s)
            else "",
            "ratio_124_sorted": "what the solution needs: distinct pair weights in binary ratios, so no "
            "non-palindrome's pair differences can cancel to 0",
        }
        for col, what in STRUCTURE:
            ours = f"{s[col].mean():.0%} of {len(s)} solved nets" if len(s) else "no solved net"
            rows.append(Comparison(NAME, f"{what}, {label}", "yes (fig. 2)", ours, meaning.get(col, "")))
    return rows


def measure_pitfall(opts: Options, starts: pd.DataFrame, k: int) -> dict[str, object]:
    """The homework's setup (nn.MSELoss, PyTorch's default init, plain SGD, 1000 epochs, through `module`) next to
    the paper's (the median start of eq. 9, through `module`): curves to pitfall.csv, and what the table needs."""
    mse = NetSpec(6, 2, 1, "sigmoid", "sigmoid", "mse")
    pit, pit_net = curve("module", mse, init_params(mse, seed=opts.seed), SGD(lr=0.1), 1000, torch.float32)
    eq9 = starts.loc[starts["rule"] == RULES[0][0], "sweeps"].to_numpy()
    ok = np.flatnonzero(eq9 >= 0)
    median_start = int(ok[np.argsort(eq9[ok])[len(ok) // 2]])
    epochs = max(1000, int(1.5 * eq9[median_start]))
    paper, paper_solved = paper_run({n: v[median_start] for n, v in uniform_params(k, opts.seed).items()}, epochs)
    x, t = patterns()
    with torch.no_grad():
        out = pit_net.net(x).sigmoid()
    mse_paper = 2 * np.array(paper) / 64  # E = 1/2 sum (o - d)^2  ->  mean (o - d)^2
    curves = pd.concat(
        [
            pd.DataFrame({"epoch": np.arange(1, epochs + 1), "series": PAPER_SERIES, "mse": mse_paper}),
            pd.DataFrame({"epoch": np.arange(1, len(pit) + 1), "series": HOMEWORK_SERIES, "mse": pit}),
        ]
    )
    write_csv(opts.out / NAME, "pitfall.csv", curves)
    return {
        "final": pit[-1],
        "best_constant": float(((t - t.mean()) ** 2).mean()),  # 8/64 * 56/64 = 0.109375
        "acc_bug": accuracy_homework_bug(out, t),
        "acc_right": float(((out > 0.5) == t.bool()).float().mean()),
        "median_start": median_start,
        "engine_sweeps": int(eq9[median_start]),
        "single_sweeps": paper_solved.index(True) if True in paper_solved else -1,
    }


def judge_pitfall(m: dict[str, object], k: int) -> list[Comparison]:
    return [
        Comparison(
            NAME,
            "pitfall: final nn.MSELoss per pattern (module, default init, SGD 0.1, 1000 epochs)",
            f"{PITFALL_LOSS}",
            fmt(m["final"], 5),
            f"best constant output: {m['best_constant']:.6f} = 8/64 x 56/64",
        ),
        Comparison(
            NAME,
            "pitfall: the homework's accuracy function",
            "56.0",
            f"{m['acc_bug']:.1f}",
            "argmax of one column vs (64,1) targets broadcasts to 64x64: 56.0 for any model",
        ),
        Comparison(
            NAME,
            "pitfall: accuracy, threshold 0.5",
            "–",
            f"{m['acc_right']:.1%}",
            "= always 'not a palindrome' (56/64): nothing learned",
        ),
        Comparison(
            NAME,
            f"start #{m['median_start']} (the median): sweeps to solve, engine (K={k}) vs one net through `module`",
            "the same net: the same count",
            f"{m['engine_sweeps']} vs {m['single_sweeps']}",
            "float32 both; summation orders differ, so a count can move by a sweep or two",
        ),
    ]


def module_equals_manual(opts: Options) -> Comparison:
    """0.5 * MSELoss(reduction="sum") + torch.optim.SGD(0.1, 0.9) through `module` against the manual step, float64:
    a check row (FAIL when the trajectories part by more than the derived bound)."""
    steps = 300 if opts.quick else 2000
    p64 = {n: v[0].double() for n, v in uniform_params(1, opts.seed + 1, torch.float64).items()}
    _, mod = curve("module", SPEC, p64, SGD(0.1, 0.9), steps, torch.float64)
    _, man = curve("batched", SPEC, p64, SGD(0.1, 0.9), steps, torch.float64)
    diff = max(float((mod.params()[n] - man.params()[n]).abs().max()) for n in p64)
    bound = trajectory_tolerance(torch.float64, tolerance(torch.float64, 6, 2, 1, 64, 1.0), steps)
    scale = max(float(man.params()[n].abs().max()) for n in p64)
    return Comparison(
        NAME,
        f"module (0.5*MSELoss(sum), SGD 0.1/0.9) vs manual, {steps} sweeps, float64",
        "same trajectory",
        f"max |dw| = {diff:.2g} (rel {diff / scale:.2g})",
        f"bound K(tol+2u) = {bound:.2g}, relative to max|w|",
        status=check(diff / scale <= bound),
    )


def run(opts: Options) -> Result:
    """The study (both rules), the structure of solved nets, the pitfall, and module == manual."""
    timer = Timer()
    k, cap = (200, 3000) if opts.quick else (1000, 20000)
    starts, shapes, study_s = measure_study(opts, k, cap)
    write_csv(opts.out / NAME, "starts.csv", starts)
    write_csv(opts.out / NAME, "structure.csv", shapes)
    rows = judge_study(starts, shapes, k, cap)
    pitfall = judge_pitfall(measure_pitfall(opts, starts, k), k)
    rows += [*pitfall[:3], module_equals_manual(opts), pitfall[3]]
    rows.append(
        Comparison(
            NAME,
            f"time of the 2 x {k}-start study",
            STUDY_TARGET[opts.device],
            f"{study_s:.1f} s",
            f"{k} starts x cap {cap}, {ENGINES[engine_for(opts.device)]}, float32, on {opts.device}",
        )
    )
    return Result(NAME, rows, timer.seconds)


STUDY_TARGET = {"cpu": "<= 30 s on 2 cores", "cuda": "<= 1 s of GPU time"}  # issue 17's targets
ENGINES = {"torch": "ManyNets compiled, a net dropped once solved", "triton": "one Triton kernel (impls.many_triton)"}
USES_MNIST = False
DEVICES = ("cpu", "cuda")  # the study (the many-nets engine) runs on --device


def data_label(opts: Options) -> str:
    """What the experiment trained on, and where the study ran."""
    return f"the 64 binary 6-bit patterns (palindrome = 1); study on {opts.device}"
